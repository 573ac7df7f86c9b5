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
list only shrinks).
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLOOR = {"core": 0, "dpdk": 1, "flow": 1, "decode": 2, "rules": 3, "export": 3, "red": 3, "jobs": 4,
         "metrics": 5, "app": 6, "tools": 6}
HEADER_MODULE = {
    "capture_file.h": "core", "capture_policy.h": "core", "config.h": "core", "counters.h": "core",
    "flow_hash.h": "core", "packet.h": "core", "packet_handler.h": "core", "summary.h": "core",
    "yaml_file.h": "core", "fnv.h": "core", "host_port.h": "core", "counter_list.h": "core",
    "defrag_counters.h": "core", "red_config.h": "core",
    "flow_table.h": "flow", "tcp_reassembly.h": "flow", "duplicate_filter.h": "flow",
    "decoder.h": "decode", "protocol.h": "decode", "record.h": "decode", "protocols.def": "decode",
    "inflate.h": "decode", "record.h": "decode", "endpoint.h": "decode", "pcap_replay.h": "decode",
    "rules.h": "rules",
    "export.h": "export", "gelf.h": "export",
    "jobs.h": "jobs", "metrics.h": "metrics", "engine.h": "dpdk",
}
# Upward arrows still in the code: (from file, included header). Remove an entry when its arrow goes.
KNOWN = {
    ("src/core/config.cc", "spanfeed/protocol.h"): "config validates decode.ports against the registry",
    ("src/core/config.cc", "spanfeed/tcp_reassembly.h"): "reassembler_config lives with the config",
    ("include/spanfeed/summary.h", "spanfeed/decoder.h"): "the run report embeds component counters",
    ("include/spanfeed/summary.h", "spanfeed/tcp_reassembly.h"): "the run report embeds component counters",
    ("include/spanfeed/summary.h", "rules/rules_report.h"): "the run report embeds component counters",
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def module_of(path):
    rel = os.path.relpath(path, ROOT)
    parts = rel.split(os.sep)
    if parts[0] == "src":
        return parts[1] if parts[1] in FLOOR else None
    if parts[0] == "include":
        return HEADER_MODULE.get(parts[-1], "?")
    return None


def target_module(inc, src_path):
    if inc.startswith("spanfeed/"):
        return HEADER_MODULE.get(inc.split("/")[-1], "?")
    first = inc.split("/")[0]
    if first in FLOOR and "/" in inc:  # "decode/detect/...", "rules/...": src/ on the include path
        return first
    return module_of(src_path)  # a header next to the file: same module


def main():
    arrows, problems = {}, []
    for base in ("src", "include"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, base)):
            for name in files:
                if not name.endswith((".cc", ".h", ".def")):
                    continue
                path = os.path.join(dirpath, name)
                mod = module_of(path)
                if mod is None:
                    continue
                if mod == "?":
                    problems.append(f"{os.path.relpath(path, ROOT)}: header not assigned to a module")
                    continue
                for inc in INCLUDE.findall(open(path, errors="replace").read()):
                    tgt = target_module(inc, path)
                    if tgt == "?":
                        problems.append(f"{os.path.relpath(path, ROOT)} includes {inc}: header not assigned")
                        continue
                    if FLOOR[tgt] > FLOOR[mod] or (FLOOR[tgt] == FLOOR[mod] and tgt != mod and mod != "app"):
                        arrows[(os.path.relpath(path, ROOT), inc)] = f"{mod} -> {tgt}"
    for key, what in sorted(arrows.items()):
        if key not in KNOWN:
            problems.append(f"{key[0]} includes {key[1]}: {what} runs against the layering")
    for key, why in sorted(KNOWN.items()):
        if key not in arrows:
            problems.append(f"KNOWN arrow {key} is gone: remove it from the list ({why})")
    print(f"{len(arrows)} upward arrows, {len(KNOWN)} known")
    for p in problems:
        print("FAIL:", p)
    print(f"{0 if problems else 1} passed, {1 if problems else 0} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
