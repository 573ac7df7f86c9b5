#!/usr/bin/env python3
"""The registry is the one source of the protocol docs and the record schema.

docs/records.md (between the registry markers) and docs/record.schema.json must
equal what `spanfeed-protocols` prints from the descriptors, and every golden
record of every bundled capture must validate against that schema: a field a
decoder emits but its descriptor does not declare (or declares with another
type) fails here.
"""
import glob
import gzip
import json
import os
import subprocess
import sys

import jsonschema

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.environ["SPANFEED_PROTOCOLS"]
BEGIN, END = "<!-- registry:begin (spanfeed-protocols --markdown) -->", "<!-- registry:end -->"


def run(arg):
    return subprocess.run([TOOL, arg], check=True, capture_output=True, text=True).stdout


def main():
    failures = []
    doc = open(os.path.join(ROOT, "docs/records.md")).read()
    if BEGIN not in doc or END not in doc:
        failures.append("docs/records.md has no registry markers")
    else:
        section = doc[doc.index(BEGIN) + len(BEGIN):doc.index(END)].strip("\n")
        if section != run("--markdown").strip("\n"):
            failures.append("docs/records.md registry section differs from `spanfeed-protocols --markdown`")
    schema = json.loads(run("--schema"))
    on_disk = json.load(open(os.path.join(ROOT, "docs/record.schema.json")))
    if schema != on_disk:
        failures.append("docs/record.schema.json differs from `spanfeed-protocols --schema`")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    checked = 0
    protocols = set()
    files = sorted(glob.glob(os.path.join(ROOT, "tests/data/golden/**/*.jsonl*"), recursive=True))
    for path in files:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt") as f:
            for n, line in enumerate(f, 1):
                rec = json.loads(line)
                errors = list(validator.iter_errors(rec))
                if errors:
                    failures.append(f"{os.path.relpath(path, ROOT)}:{n}: {errors[0].message}")
                checked += 1
                protocols.add(rec["protocol"])
    # The schema must also reject what is not declared.
    bad = {"ts": "x", "id": "1", "protocol": "dns", "client": {"ip": "a", "port": 1},
           "server": {"ip": "b", "port": 53}, "latency_us": None, "status": "ok",
           "request": {"bytes": 1, "not_a_dns_field": 1}, "response": None, "tags": [], "flags": []}
    if validator.is_valid(bad):
        failures.append("the schema accepts an undeclared field")
    names = run("--names").strip().split(", ")
    if sorted(protocols) != sorted(names):
        failures.append(f"golden records cover {sorted(protocols)}, registry has {sorted(names)}")
    print(f"{checked} golden records of {len(files)} files validated against the registry's schema")
    for f in failures[:20]:
        print("FAIL:", f)
    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
