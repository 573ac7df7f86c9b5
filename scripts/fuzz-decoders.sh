#!/usr/bin/env bash
# Builds the protocol-decoder libFuzzer targets with clang (ASan + UBSan) and runs each for N seconds.
# Usage: scripts/fuzz-decoders.sh [SECONDS_PER_TARGET=20] [TARGET...]
#   (targets: every tests/decode/fuzz_<name>.cc, and tests/core/fuzz_packet.cc: the packet parser; seeds in
#   the folder's corpus/<name>)
# FUZZ_RUNS=N instead runs each target for N inputs from a fixed seed (FUZZ_SEED, default 1), starting
# from the checked-in corpus only: the same inputs on every machine, so a failure reproduces with the
# same command (the suite's fuzz_smoke). Without it, each target explores for SECONDS from a random seed,
# its corpus growing in FUZZ_OUT across runs.
# Needs clang++ and libclang-rt (Debian: apt-get install -y clang libclang-rt-14-dev). Single job per target, -j1 friendly.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$root"/tests/decode/fuzz_*.cc "$root"/tests/core/fuzz_*.cc; do
    b="$(basename "$f" .cc)"
    [ "$b" = fuzz_replay_test ] || targets+=("${b#fuzz_}")
  done
fi
out="${FUZZ_OUT:-/tmp/spanfeed-fuzz}"
cxx="${CXX_FUZZ:-clang++}"
command -v "$cxx" >/dev/null || { echo "fuzz-decoders: $cxx not found (apt-get install -y clang libclang-rt-14-dev)" >&2; exit 2; }
mkdir -p "$out"

# The decode library as meson builds it (the registry, the builder, every protocol folder),
# without the Hyperscan detection adapter (the builder asks every decoder's check instead) and
# the pcap harness, plus the address formatting it uses from the packet layer.
srcs=("$root/src/core/packet.cc" "$root/src/core/decap.cc")
while IFS= read -r f; do srcs+=("$f"); done < <(find "$root/src/decode" -name '*.cc' ! -path '*/detect/*' ! -name pcap_replay.cc ! -name decode_config.cc | sort)
flags=(-std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$root/include" -I"$root/src" -I"$root/src/decode" -I"$root/tests/decode" -DSPANFEED_LIBFUZZER)

# The decoder sources once (objects shared by all targets, compiled FUZZ_JOBS at a time, default
# every CPU), then one binary per target.
objs=()
stale=()
for src in "${srcs[@]}"; do
  rel="${src#"$root"/src/}"
  o="$out/obj/${rel%.cc}.o"
  mkdir -p "$(dirname "$o")"
  if [ ! -f "$o" ] || [ "$src" -nt "$o" ] || [ -n "$(find "$root/include/spanfeed" "$root/src" -newer "$o" \( -name '*.h' -o -name '*.def' \) | head -1)" ]; then
    stale+=("$src" "$o")
  fi
  objs+=("$o")
done
if [ ${#stale[@]} -gt 0 ]; then
  export CXX_FUZZ_CMD="$cxx ${flags[*]/-fsanitize=fuzzer,/-fsanitize=fuzzer-no-link,}"
  printf '%s\0' "${stale[@]}" | xargs -0 -n 2 -P "${FUZZ_JOBS:-$(nproc)}" sh -c '$CXX_FUZZ_CMD -c "$0" -o "$1"'
fi

# A fixed-seed run is repeatable only with the same addresses (pointer comparisons feed the fuzzer's
# dictionary): without address-space randomisation where the machine allows it.
same_addresses=()
if [ -n "${FUZZ_RUNS:-}" ] && setarch -R true 2>/dev/null; then same_addresses=(setarch -R); fi

status=0
for t in "${targets[@]}"; do
  target_src="$root/tests/decode/fuzz_$t.cc"
  [ -f "$target_src" ] || target_src="$root/tests/core/fuzz_$t.cc"
  seeds="$(dirname "$target_src")/corpus/$t"
  bin="$out/fuzz_$t"
  "$cxx" "${flags[@]}" "$target_src" "${objs[@]}" -lz -lcrypto -lnghttp2 -o "$bin"  # zlib: MySQL compressed protocol; libcrypto: TLS; nghttp2: HPACK
  if [ -n "${FUZZ_RUNS:-}" ]; then
    # New inputs go to a fresh directory (the first one given); the checked-in corpus is only read.
    corpus="$out/runs-$t"
    rm -rf "$corpus"
    mkdir -p "$corpus"
    how=(-runs="$FUZZ_RUNS" -seed="${FUZZ_SEED:-1}" -reload=0 "$corpus")
    [ -d "$seeds" ] && how+=("$seeds")
    echo "== fuzz_$t: $FUZZ_RUNS inputs, seed ${FUZZ_SEED:-1} (crashes in $out)"
  else
    corpus="$out/corpus-$t"
    mkdir -p "$corpus"
    cp -n "$seeds/"* "$corpus/" 2>/dev/null || true
    how=(-max_total_time="$secs" "$corpus")
    echo "== fuzz_$t: ${secs}s (corpus $corpus, crashes in $out)"
  fi
  if ! "${same_addresses[@]}" "$bin" "${how[@]}" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$out/crash-$t-" -print_final_stats=1 2>"$out/fuzz_$t.log"; then
    echo "fuzz_$t FAILED: see $out/fuzz_$t.log and $out/crash-$t-*" >&2
    tail -30 "$out/fuzz_$t.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "$out/fuzz_$t.log" | tail -2
  fi
done
exit $status
