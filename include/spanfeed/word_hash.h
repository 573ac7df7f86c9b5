// Word-at-a-time hashing for per-worker tables (flow duplicates, RED
// series, text memos): eight bytes per multiply-rotate step, MurmurHash3's
// 64-bit finaliser at the end. Not a wire format: values may change between
// releases; nothing outside the process sees them.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace spanfeed::word_hash {

inline constexpr uint64_t kMul = 0x9ddfea08eb382d69ull;

inline uint64_t load64(const void* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// One step: the word folded into the state.
inline uint64_t mix(uint64_t h, uint64_t w) { return std::rotl((h ^ w) * kMul, 29); }

inline uint64_t fmix64(uint64_t k) {  // MurmurHash3's finaliser
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ull;
  k ^= k >> 33;
  return k;
}

// The `n` bytes at `data`, from `seed`; never reads past data + n.
inline uint64_t bytes(const void* data, size_t n, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = seed ^ (n * kMul);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) h = mix(h, load64(p + i));
  if (i < n) {
    uint64_t w = 0;
    if (n >= 8) {
      w = load64(p + n - 8) >> (8 * (8 - (n - i)));  // the last bytes, read without going past n
    } else {
      std::memcpy(&w, p + i, n - i);
    }
    h = mix(h, w);
  }
  return fmix64(h);
}

}  // namespace spanfeed::word_hash
