#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs every unit and
# integration test (meson test), and ends with one "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
rc=0
meson test -C build --print-errorlogs --num-processes 1 "$@" || rc=$?
python3 scripts/test_summary.py build
exit $rc
