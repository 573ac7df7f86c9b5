#!/usr/bin/env bash
# Whole-process comparison: spanfeed against the Debian-packaged peers that
# read the same capture (tcpflow: TCP reassembly to files; ndpiReader: flow
# DPI; tshark: two-pass dissection of the same protocols). The capture is
# copied to /dev/shm first; the tools run paired (A/B/A/B, one of each per
# round, order rotated every round) and the script prints medians of wall,
# CPU (user+sys) and peak RSS, and each peer's ratio to spanfeed.
#   bench/compare.sh PCAP [ROUNDS]
# Environment: SPANFEED (binary, default build/src/spanfeed), WORKERS
# (default 1), METRICS (default 127.0.0.1:0: /metrics served as by default,
# on a free port; off: --metrics off), TSHARK_ROUNDS (tshark is slow: rounds
# it joins, default 1; 0 skips it), NO_INSTALL=1 (do not apt-get the peers).
set -euo pipefail
cd "$(dirname "$0")/.."
pcap=${1:?usage: bench/compare.sh PCAP [ROUNDS]}
rounds=${2:-5}
spanfeed=${SPANFEED:-build/src/spanfeed}
workers=${WORKERS:-1}
metrics=${METRICS:-127.0.0.1:0}
tshark_rounds=${TSHARK_ROUNDS:-1}

# The peers are installed here only (not by install-deps: spanfeed does not need them).
if [ "${NO_INSTALL:-0}" != 1 ]; then
  need=()
  command -v tcpflow >/dev/null || need+=(tcpflow)
  command -v ndpiReader >/dev/null || need+=(libndpi-bin)
  command -v tshark >/dev/null || need+=(tshark)
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi
[ -x "$spanfeed" ] || { echo "no spanfeed binary at $spanfeed (bash scripts/build.sh)" >&2; exit 2; }

work=$(mktemp -d /dev/shm/spanfeed-compare.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$pcap" "$work/in.pcap"
cap=$work/in.pcap
results=$work/results.tsv
: >"$results"

# One timed run: appends "tool wall cpu rss_kb" to the results.
run() {
  local tool=$1
  shift
  rm -rf "$work/out" && mkdir -p "$work/out"
  /usr/bin/time -o "$work/time" -f "%e %U %S %M" "$@" >/dev/null 2>&1 || true
  read -r wall user sys rss < <(tail -1 "$work/time")
  grep -q "exited with non-zero" "$work/time" && echo "warning: $tool: $(head -1 "$work/time")" >&2
  echo -e "$tool\t$wall\t$(echo "$user + $sys" | bc)\t$rss" >>"$results"
}

tools=(spanfeed tcpflow ndpiReader tshark)
for ((r = 0; r < rounds; r++)); do
  for ((k = 0; k < ${#tools[@]}; k++)); do
    tool=${tools[$(((k + r) % ${#tools[@]}))]}
    case $tool in
      spanfeed)
        run spanfeed "$spanfeed" --pcap "$cap" --job records --workers "$workers" \
          --output "jsonl:$work/out/records.jsonl" -q --metrics "$metrics" ;;
      tcpflow)
        command -v tcpflow >/dev/null && run tcpflow tcpflow -r "$cap" -o "$work/out" ;;
      ndpiReader)
        command -v ndpiReader >/dev/null && run ndpiReader ndpiReader -i "$cap" -q -C "$work/out/ndpi.csv" ;;
      tshark)
        if command -v tshark >/dev/null && [ "$r" -lt "$tshark_rounds" ]; then
          run tshark tshark -n -2 -r "$cap" -T fields -e frame.number -e http.request.method \
            -e http.response.code -e dns.qry.name -e mysql.query -e pgsql.query -e resp.bulk_string.value \
            -e memcache.command -Y "http or dns or mysql or pgsql or resp or memcache"
        fi ;;
    esac
  done
done

python3 - "$results" "$pcap" "$rounds" "$workers" "$metrics" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines() if l]
by = {}
for tool, wall, cpu, rss in rows:
    by.setdefault(tool, []).append((float(wall), float(cpu), int(rss)))
med = {t: tuple(statistics.median(x[i] for x in v) for i in range(3)) for t, v in by.items()}
print(f"{sys.argv[2]}: medians of {sys.argv[3]} paired rounds (spanfeed: --workers {sys.argv[4]}, --metrics {sys.argv[5]}, records to a JSON-lines file)")
print(f"| tool | runs | wall s | cpu s | peak RSS MiB | wall / spanfeed | cpu / spanfeed |")
print(f"|---|---|---|---|---|---|---|")
base = med.get("spanfeed")
for t in ["spanfeed", "tcpflow", "ndpiReader", "tshark"]:
    if t not in med:
        continue
    w, c, r = med[t]
    rw = f"{w / base[0]:.2f}" if base and base[0] > 0 else "-"
    rc = f"{c / base[1]:.2f}" if base and base[1] > 0 else "-"
    print(f"| {t} | {len(by[t])} | {w:.2f} | {c:.2f} | {r / 1024:.0f} | {rw} | {rc} |")
PY
