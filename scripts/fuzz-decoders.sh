#!/usr/bin/env bash
# Builds the protocol-decoder libFuzzer targets with clang (ASan + UBSan) and runs each for N seconds.
# Usage: scripts/fuzz-decoders.sh [SECONDS_PER_TARGET=20] [TARGET...]   (targets: every tests/decode/fuzz_<name>.cc)
# Needs clang++ and libclang-rt (Debian: apt-get install -y clang libclang-rt-14-dev). Single job per target, -j1 friendly.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$root"/tests/decode/fuzz_*.cc; do
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

status=0
for t in "${targets[@]}"; do
  bin="$out/fuzz_$t"
  "$cxx" "${flags[@]}" "$root/tests/decode/fuzz_$t.cc" "${objs[@]}" -lz -lcrypto -lnghttp2 -o "$bin"  # zlib: MySQL compressed protocol; libcrypto: TLS; nghttp2: HPACK
  corpus="$out/corpus-$t"
  mkdir -p "$corpus"
  cp -n "$root/tests/decode/corpus/$t/"* "$corpus/" 2>/dev/null || true
  echo "== fuzz_$t: ${secs}s (corpus $corpus, crashes in $out)"
  if ! "$bin" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$out/crash-$t-" -print_final_stats=1 "$corpus" 2>"$out/fuzz_$t.log"; then
    echo "fuzz_$t FAILED: see $out/fuzz_$t.log and $out/crash-$t-*" >&2
    tail -30 "$out/fuzz_$t.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "$out/fuzz_$t.log" | tail -2
  fi
done
exit $status
