#!/usr/bin/env python3
"""The house has one direction: no #include runs from a lower module to a higher one.

Modules by floor (a module may include its own floor and those below):
  0 core     src/core, and the cross-module contracts in include/spanfeed/ it owns
  1 dpdk     src/dpdk            (the adapter at the bottom: core only)
  1 flow     src/flow
  2 decode   src/decode          (the protocol registry and decoders)
  3 rules    src/rules   3 export  src/export   3 red  src/red (RED metrics from records)
  4 jobs     src/jobs
  5 metrics  src/metrics
  6 app      src/app     6 tools   src/tools
Every include/spanfeed/ header is assigned to one module below. KNOWN lists
the upward arrows that remain (each is work left in issue 11); the test fails
on any other upward arrow, and on a KNOWN arrow that no longer exists (so the
list only shrinks). `core` is the floor everything stands on: an arrow out of
it fails even when listed in KNOWN.
"""
import os
import re
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLOOR = {"core": 0, "dpdk": 1, "flow": 1, "decode": 2, "rules": 3, "export": 3, "red": 3, "jobs": 4,
         "metrics": 5, "app": 6, "tools": 6}
HEADER_MODULE = {
    "capture_policy.h": "core", "config.h": "core", "counters.h": "core",
    "flow_hash.h": "core", "fragment_steer.h": "core", "word_hash.h": "core", "packet.h": "core", "packet_handler.h": "core", "counter_list.h": "core",
    "defrag_counters.h": "core", "red_config.h": "core",
    "flow_table.h": "flow", "tcp_reassembly.h": "flow", "duplicate_filter.h": "flow",
    "decoder.h": "decode", "protocol.h": "decode", "record.h": "decode", "protocols.def": "decode", "endpoint.h": "decode",
    "rules.h": "rules", "gelf.h": "export", "sink_counters.h": "export", "engine.h": "dpdk",
}
# Upward arrows still in the code: (from file, included header). Remove an entry when its arrow goes.
KNOWN = {}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of(path, root):
    rel = os.path.relpath(path, root)
    parts = rel.split(os.sep)
    if parts[0] == "src":
        return parts[1] if parts[1] in FLOOR else None
    if parts[0] == "include":
        return HEADER_MODULE.get(parts[-1], "?")
    return None


def target_module(inc, src_path, root):
    if inc.startswith("spanfeed/"):
        return HEADER_MODULE.get(inc.split("/")[-1], "?")
    first = inc.split("/")[0]
    if first in FLOOR and "/" in inc:  # "decode/detect/...", "rules/...": src/ on the include path
        return first
    return module_of(src_path, root)  # a header next to the file: same module


def check(root, known):
    """(upward arrows, problems) of the tree at `root`."""
    arrows, problems = {}, []
    for base in ("src", "include"):
        for dirpath, _, files in os.walk(os.path.join(root, base)):
            for name in files:
                if not name.endswith((".cc", ".h", ".def")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                mod = module_of(path, root)
                if mod is None:
                    continue
                if mod == "?":
                    problems.append(f"{rel}: header not assigned to a module")
                    continue
                for inc in INCLUDE.findall(open(path, errors="replace").read()):
                    tgt = target_module(inc, path, root)
                    if tgt == "?":
                        problems.append(f"{rel} includes {inc}: header not assigned")
                        continue
                    if FLOOR[tgt] > FLOOR[mod] or (FLOOR[tgt] == FLOOR[mod] and tgt != mod and mod != "app"):
                        arrows[(rel, inc)] = f"{mod} -> {tgt}"
    for key, what in sorted(arrows.items()):
        if what.startswith("core ->"):
            problems.append(f"{key[0]} includes {key[1]}: {what}; core includes nothing above it")
        elif key not in known:
            problems.append(f"{key[0]} includes {key[1]}: {what} runs against the layering")
    for key, why in sorted(known.items()):
        if key not in arrows:
            problems.append(f"KNOWN arrow {key} is gone: remove it from the list ({why})")
    return arrows, problems


def self_check():
    """The checker itself: a tree with one upward include out of core (listed as known, even) must fail."""
    with tempfile.TemporaryDirectory() as t:
        for rel, text in {"src/core/config.cc": '#include "spanfeed/config.h"\n#include "spanfeed/decoder.h"\n',
                          "include/spanfeed/config.h": '#include "spanfeed/packet.h"\n',
                          "src/decode/record_builder.cc": '#include "spanfeed/config.h"\n'}.items():
            os.makedirs(os.path.dirname(os.path.join(t, rel)), exist_ok=True)
            with open(os.path.join(t, rel), "w") as f:
                f.write(text)
        arrows, problems = check(t, {("src/core/config.cc", "spanfeed/decoder.h"): "listed"})
        want = "src/core/config.cc includes spanfeed/decoder.h: core -> decode; core includes nothing above it"
        if list(arrows) != [("src/core/config.cc", "spanfeed/decoder.h")] or problems != [want]:
            return [f"self-check: a core -> decode include gave arrows {arrows} and problems {problems}"]
    return []


def main():
    arrows, problems = check(ROOT, KNOWN)
    problems += self_check()
    print(f"{len(arrows)} upward arrows, {len(KNOWN)} known")
    for p in problems:
        print("FAIL:", p)
    print(f"{0 if problems else 1} passed, {1 if problems else 0} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
