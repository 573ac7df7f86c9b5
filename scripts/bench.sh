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
if [ "$what" = pipeline ]; then
  # Whole pipeline on a capture read once (offline), per worker core:
  #   scripts/bench.sh pipeline PCAP [WORKERS] [JOB] [CONFIG]
  pcap=${2:?capture file}
  workers=${3:-1}
  job=${4:-records}
  cfgarg=()
  [ -n "${5:-}" ] && cfgarg=(-c "$5")
  out=$(mktemp)
  outarg=()
  [ "$job" = records ] && outarg=(--output jsonl:/dev/null)
  ./build-release/src/spanfeed --pcap "$pcap" --workers "$workers" --job "$job" -q --metrics off \
    "${cfgarg[@]}" "${outarg[@]}" --summary-json "$out"
  python3 - "$out" "$pcap" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"pipeline {s['job']}, {sys.argv[2]}: {s['rx_packets']} packets in {s['elapsed_s']:.2f} s "
      f"({s['rx_packets']/s['elapsed_s']/1e6:.2f} Mpps wall, bounded by reading the file)")
for i, w in enumerate(s["workers"]):
    extra = ""
    if "records" in w:
        extra = f", {w['records']['records_emitted']} records"
    print(f"  worker {i}: {w['received']} packets, busy {w['busy_s']:.3f} s -> "
          f"{w['received']/max(w['busy_s'],1e-9)/1e6:.2f} M packets/s per worker core{extra}")
print(f"  ledger balanced: {s['ledger']['balanced']}")
PY
  rm -f "$out"
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
for i, w in enumerate(s["workers"]):
    if w["busy_s"] > 0:
        print(f"  worker {i}: {w['received']/w['busy_s']/1e6:.2f} M packets per busy second "
              f"({w['busy_s']:.2f} s busy of {s['elapsed_s']:.2f} s)")
led = s["ledger"]["rx"]
print(f"  delivered {led['delivered']}  ring_full {led['ring_full']}  "
      f"ledger balanced: {s['ledger']['balanced']}")
PY
  rm -f "$out"
fi
