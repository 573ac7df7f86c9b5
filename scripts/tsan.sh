#!/usr/bin/env bash
# ThreadSanitizer run: builds spanfeed with -fsanitize=thread into build-tsan
# (a separate meson tree, debugoptimized) and runs the unit and integration
# suites under it. Any data race TSan reports fails the test that hit it.
#   scripts/tsan.sh                     # unit + integration suites (~55 min on 2 cores)
#   scripts/tsan.sh metrics flow_soak   # only these meson tests
#   scripts/tsan.sh --suite unit        # any other `meson test` arguments
# A report fails the test: its log (build-tsan/meson-logs/testlog.txt) has the
# two stacks. DPDK stays linked as configured (dpdk_link=static): TSan
# instruments only what is compiled with -fsanitize=thread, so a shared DPDK
# would be no more visible to it, and the static start-up path is the one the
# tests check.
# DPDK, librdkafka, Hyperscan and prometheus-cpp are not instrumented: their
# own synchronisation is invisible to TSan. Where spanfeed relies on it (an
# mbuf handed over an rte_ring or recycled through the mempool) the code tells
# TSan so itself (src/dpdk/tsan_sync.h); tests/tsan.supp lists the rest, each
# entry with its reason. spanfeed's own code is never suppressed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -f build-tsan/build.ninja ]; then
  meson setup build-tsan --buildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false \
    -Dbench=disabled >/dev/null
fi
nice ninja -C build-tsan -j"$(nproc)" >/dev/null
# halt_on_error: the first race ends the process with exit code 66, so the
# test that hit it fails and its log shows the report.
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp halt_on_error=1 exitcode=66 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
# The instrumented binary runs 5-15x slower and holds ~5x the memory: the
# integration tests multiply their wall-time and peak-RSS bounds by these
# (tests/integration/common.py); every other assertion stays exact.
export SPANFEED_TEST_TIME_SCALE="${SPANFEED_TEST_TIME_SCALE:-10}"
export SPANFEED_TEST_MEMORY_SCALE="${SPANFEED_TEST_MEMORY_SCALE:-6}"
# fuzz_smoke builds and runs its own clang ASan binaries: nothing of this build.
if [ $# -eq 0 ]; then set -- --suite unit --suite integration --no-suite fuzz; fi
start=$SECONDS
rc=0
# TSan's shadow memory needs the classic address layout: without ASLR the
# EAL's and TSan's mappings cannot collide.
setarch "$(uname -m)" -R meson test -C build-tsan --print-errorlogs --num-processes 1 \
  --timeout-multiplier "$SPANFEED_TEST_TIME_SCALE" "$@" || rc=$?
python3 scripts/test_summary.py build-tsan "tsan: " "$((SECONDS - start))"
exit $rc
