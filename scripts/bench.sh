#!/usr/bin/env bash
# Benchmarks: builds a release tree in build-release, runs the Google
# Benchmark micro-benchmarks, then the end-to-end throughput run.
#   scripts/bench.sh            # everything
#   scripts/bench.sh micro      # micro-benchmarks only
#   scripts/bench.sh e2e [PCAP] [SECONDS] [WORKERS] [JOB]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -f build-release/build.ninja ]; then
  meson setup build-release --buildtype=release -Db_ndebug=true >/dev/null
fi
ninja -C build-release -j"$(nproc)" >/dev/null
what=${1:-all}
if [ "$what" = all ] || [ "$what" = micro ]; then
  ./build-release/bench/bench_parse_hash --benchmark_min_time=1
  ./build-release/bench/bench_ring --benchmark_min_time=1
  ./build-release/bench/bench_export
  for b in build-release/bench/flow/bench_* build-release/bench/decode/bench_*; do
    [ -x "$b" ] && "$b" --benchmark_min_time=0.5
  done
fi
if [ "$what" = all ] || [ "$what" = e2e ]; then
  pcap=${2:-tests/data/pcaps/mysql/171-mysql.pcap}
  secs=${3:-10}
  workers=${4:-1}
  job=${5:-payload-sum}
  out=$(mktemp)
  ./build-release/src/spanfeed --pcap "$pcap" --infinite --duration "$secs" \
    --workers "$workers" --job "$job" -q --summary-json "$out"
  python3 - "$out" "$pcap" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
rx = s["rx_lcores"]
print(f"e2e {s['job']}, {sys.argv[2]} replayed from memory, {len(s['workers'])} worker(s), "
      f"{s['elapsed_s']:.2f} s")
for r in rx:
    print(f"  rx lcore {r['lcore']}: {r['received']/s['elapsed_s']/1e6:.2f} Mpps "
          f"({r['bytes']*8/s['elapsed_s']/1e9:.2f} Gbit/s captured bytes)")
led = s["ledger"]["rx"]
print(f"  delivered {led['delivered']}  ring_full {led['ring_full']}  "
      f"ledger balanced: {s['ledger']['balanced']}")
PY
  rm -f "$out"
fi
