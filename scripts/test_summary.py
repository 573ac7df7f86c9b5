#!/usr/bin/env python3
"""One line from a meson test run: "N passed, N failed, N skipped" (scripts/test.sh, scripts/tsan.sh).
Usage: test_summary.py BUILD_DIR [PREFIX] [SECONDS]"""
import json
import sys

build, prefix = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
passed = failed = skipped = 0
with open(f"{build}/meson-logs/testlog.json") as f:
    for line in f:
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
took = f" in {int(sys.argv[3]) // 60} min" if len(sys.argv) > 3 else ""
print(f"{prefix}{passed} passed, {failed} failed, {skipped} skipped{took}")
