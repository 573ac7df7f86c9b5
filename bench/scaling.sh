#!/usr/bin/env bash
# Worker scaling of the records job: the same capture with 1, 2, 4... workers,
# each lcore (control, RX, every worker) on a CPU of its own where the machine
# has enough, ROUNDS rounds each (worker counts interleaved), medians printed as
# a markdown table. Per-worker packets per busy second (the summary's `worker
# lcore ... busy` lines) and per worker CPU-second (--log-level info) staying
# flat as workers are added is the evidence that workers do not slow each
# other down (docs/tuning.md, Scaling).
#   bench/scaling.sh PCAP [ROUNDS] [WORKERS...]      (default: 5 rounds, 1 2 4)
# Environment: SPANFEED (binary, default build/src/spanfeed), CPUS (CPUs to
# place lcores on, comma-separated; default this process's affinity).
set -euo pipefail
cd "$(dirname "$0")/.."
pcap=${1:?usage: bench/scaling.sh PCAP [ROUNDS] [WORKERS...]}
rounds=${2:-5}
shift $(($# < 2 ? $# : 2))
workers=("$@")
[ ${#workers[@]} -gt 0 ] || workers=(1 2 4)
spanfeed=${SPANFEED:-build/src/spanfeed}
[ -x "$spanfeed" ] || { echo "no spanfeed binary at $spanfeed (bash scripts/build.sh)" >&2; exit 2; }
IFS=, read -r -a cpus <<<"${CPUS:-$(python3 -c 'import os; print(",".join(map(str, sorted(os.sched_getaffinity(0)))))')}"
ncpu=${#cpus[@]}

# --cpus for N workers: lcore 0 control, 1 RX, 2.. workers (--cpus is
# round-robin over lcores). Enough CPUs: one each. Otherwise the control core
# (it sleeps between 20 ms turns) shares the first CPU with RX, and RX and the
# workers go round-robin over the CPUs.
placement() {
  local n=$1 list=() j
  if [ "$ncpu" -ge $((n + 2)) ]; then
    for ((j = 0; j < n + 2; j++)); do list+=("${cpus[j]}"); done
  else
    list+=("${cpus[0]}")
    for ((j = 0; j <= n; j++)); do list+=("${cpus[j % ncpu]}"); done
  fi
  (IFS=,; echo "${list[*]}")
}

work=$(mktemp -d /dev/shm/spanfeed-scaling.XXXXXX)
trap 'rm -rf "$work"' EXIT
results=$work/results.tsv
: >"$results"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 0; r < rounds; r++)); do
  for n in "${workers[@]}"; do
    place=$(placement "$n")
    rm -f "$work/records.jsonl"
    /usr/bin/time -o "$work/time" -f "%e %U %S" "$spanfeed" --pcap "$pcap" --job records -w "$n" --cpus "$place" \
      --output "jsonl:$work/records.jsonl" --metrics off --log-level info >"$work/err" 2>&1 ||
      { echo "spanfeed -w $n failed:" >&2; tail -5 "$work/err" >&2; exit 1; }
    read -r wall user sys < <(tail -1 "$work/time")
    # Per worker: packets and busy s (summary), CPU s (--log-level info line).
    per=$(python3 - "$work/err" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
cpu = {int(l): float(c) for l, c in re.findall(r"spanfeed: worker lcore (\d+): \d+ packets, ([\d.]+) CPU s", text)}
rows = re.findall(r"^\s+worker lcore (\d+)\s+packets\s+(\d+).*busy ([\d.]+) s", text, re.M)
rx = re.findall(r"spanfeed: RX lcore \d+: (\d+) packets, ([\d.]+) CPU s", text)
run = re.search(r"^spanfeed records: .*, ([\d.]+) s", text, re.M)
print(";".join(f"{p},{b},{cpu.get(int(l), 0)}" for l, p, b in rows) + "\t" + (f"{int(rx[0][0]) / float(rx[0][1]) / 1e6:.2f}" if rx and float(rx[0][1]) > 0 else "0") + "\t" + (run[1] if run else "0"))
PY
)
    echo -e "$n\t$place\t$wall\t$(echo "$user + $sys" | bc)\t$per" >>"$results"
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$results" "$pcap" "$rounds" "$ncpu" "$load_before" "$load_after" <<'PY'
import statistics as st, sys
med = st.median
runs = {}
for line in open(sys.argv[1]).read().splitlines():
    n, place, wall, cpu, per, rx, run = line.split("\t")
    ws = [tuple(map(float, w.split(","))) for w in per.split(";") if w]
    runs.setdefault(int(n), (place, []))[1].append((float(wall), float(cpu), ws, float(rx), float(run)))
print(f"{sys.argv[2]}: records job, medians of {sys.argv[3]} rounds; {sys.argv[4]} CPUs; "
      f"load average {sys.argv[5]} before, {sys.argv[6]} after")
print("| workers | --cpus (control,RX,workers) | wall s | run s | CPU s | M pkt per busy s per worker (min-max) "
      "| M pkt per CPU s per worker | packets / busiest busy s (M/s) | gain per added worker "
      "| packets / busiest CPU s (M/s) | gain per added worker | busiest worker's share | RX M pkt per CPU s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
base = None
for n in sorted(runs):
    place, rs = runs[n]
    per_busy = [p / b / 1e6 for _, _, ws, _, _ in rs for p, b, _ in ws if b > 0]
    per_cpu = [p / c / 1e6 for _, _, ws, _, _ in rs for p, _, c in ws if c > 0]
    thr_busy = med(sum(p for p, _, _ in ws) / max(b for _, b, _ in ws) / 1e6 for _, _, ws, _, _ in rs)
    thr_cpu = med(sum(p for p, _, _ in ws) / max(c for _, _, c in ws) / 1e6 for _, _, ws, _, _ in rs if ws and max(c for _, _, c in ws) > 0)
    note = "" if len(set(place.split(","))) >= n + 1 else " (oversubscribed)"
    if base is None:
        base = (n, thr_busy, thr_cpu)
    def gain(x, b):
        if n == base[0]:
            return "-"
        g = (x - b) / (n - base[0])
        return f"{g:+.2f} M/s ({100 * g / b:+.0f}% of {base[0]})"
    print(f"| {n} | {place}{note} | {med(r[0] for r in rs):.2f} | {med(r[4] for r in rs):.2f} | {med(r[1] for r in rs):.2f} "
          f"| {med(per_busy):.2f} ({min(per_busy):.2f}-{max(per_busy):.2f}) | {med(per_cpu):.2f} "
          f"| {thr_busy:.2f} | {gain(thr_busy, base[1])} | {thr_cpu:.2f} | {gain(thr_cpu, base[2])} "
          f"| {100 * med(max(p for p, _, _ in ws) / sum(p for p, _, _ in ws) for _, _, ws, _, _ in rs):.0f}% "
          f"| {med(r[3] for r in rs):.2f} |")
PY
