// FNV-1a, 32 and 64 bit: connection keys (records), stream digests (flows), statement ids
// (MySQL, PostgreSQL). Pure functions, any thread, no allocation. Not for hash tables an
// attacker fills (use the flow hash there).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace spanfeed {

inline constexpr uint32_t kFnv1a32Basis = 2166136261u;
inline constexpr uint64_t kFnv1a64Basis = 0xcbf29ce484222325ull;

// Continues hash `h` over `n` bytes at `p` (start from the basis).
inline uint32_t fnv1a32(const void* p, size_t n, uint32_t h = kFnv1a32Basis) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 16777619u;
  return h;
}
inline uint64_t fnv1a64(const void* p, size_t n, uint64_t h = kFnv1a64Basis) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

inline uint32_t fnv1a32(std::string_view s, uint32_t h = kFnv1a32Basis) { return fnv1a32(s.data(), s.size(), h); }
inline uint64_t fnv1a64(std::span<const std::byte> s, uint64_t h = kFnv1a64Basis) {
  return fnv1a64(s.data(), s.size(), h);
}

}  // namespace spanfeed
