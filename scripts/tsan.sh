#!/usr/bin/env bash
# ThreadSanitizer run: builds spanfeed with -fsanitize=thread into build-tsan
# (a separate meson tree, debugoptimized) and runs the unit and integration
# suites under it. Any data race TSan reports fails the test that hit it.
#   scripts/tsan.sh                 # unit + integration suites
#   scripts/tsan.sh metrics flow_soak   # only these meson tests
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
ninja -C build-tsan -j"$(nproc)" >/dev/null
# halt_on_error: the first race ends the process with exit code 66, so the
# test that hit it fails and its log shows the report.
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp halt_on_error=1 exitcode=66 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
# TSan's shadow memory needs the classic address layout: without ASLR the
# EAL's and TSan's mappings cannot collide.
if [ $# -eq 0 ]; then set -- --suite unit --suite integration; fi
exec setarch "$(uname -m)" -R meson test -C build-tsan --print-errorlogs --num-processes 1 \
  --timeout-multiplier 4 "$@"
