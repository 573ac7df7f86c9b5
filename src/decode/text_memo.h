// TextMemo: a direct-mapped memo of short text -> short text (plus a 64-bit value), for pure functions
// of text that repeat from record to record (SQL normalization, SQL fingerprints). One per user per
// worker lcore; allocates only in the constructor. A miss (or a text over the caps) costs the hash.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "spanfeed/word_hash.h"

namespace spanfeed {

class TextMemo {
 public:
  static constexpr size_t kKeyMax = 256;    // longer texts are not remembered
  static constexpr size_t kValueMax = 256;

  struct Hit {
    std::string_view value;
    uint64_t extra;
  };

  // entries: rounded up to a power of two.
  explicit TextMemo(size_t entries) : slots_(std::bit_ceil(entries == 0 ? 1 : entries)) {}

  // Word-at-a-time hash of the key (not FNV's byte loop): mixes 8 bytes per step.
  static uint64_t hash(std::string_view s) { return word_hash::bytes(s.data(), s.size(), 0x243f6a8885a308d3ull); }

  // A cheaper slot hash for texts that mostly differ at their start or end (messages, statements, paths):
  // the length and six words (the first 16 bytes, 16 around the middle, the last 16) rather than every
  // byte. find() compares the key whole, so texts that share the sample cost only misses.
  static uint64_t sample_hash(std::string_view s) {
    const size_t n = s.size();
    if (n <= 48) return hash(s);
    const char* p = s.data();
    using word_hash::load64;
    using word_hash::mix;
    uint64_t h = 0x243f6a8885a308d3ull ^ (n * word_hash::kMul);
    h = mix(h, load64(p));
    h = mix(h, load64(p + 8));
    h = mix(h, load64(p + n / 2 - 8));
    h = mix(h, load64(p + n / 2));
    h = mix(h, load64(p + n - 16));
    h = mix(h, load64(p + n - 8));
    return word_hash::fmix64(h);
  }

  // The value remembered for `key` (h = hash(key)), if any.
  bool find(std::string_view key, uint64_t h, Hit* out) const {
    const Slot& s = slots_[h & (slots_.size() - 1)];
    if (s.hash != h || s.key_len != key.size() || s.key_len == 0 ||
        std::memcmp(s.key, key.data(), key.size()) != 0) {
      return false;
    }
    *out = {std::string_view(s.value, s.value_len), s.extra};
    return true;
  }

  // Remembers value (and extra) for key, replacing the slot's entry; nothing when either is over its cap.
  void remember(std::string_view key, uint64_t h, std::string_view value, uint64_t extra) {
    if (key.empty() || key.size() > kKeyMax || value.size() > kValueMax) return;
    Slot& s = slots_[h & (slots_.size() - 1)];
    s.hash = h;
    s.extra = extra;
    s.key_len = static_cast<uint16_t>(key.size());
    s.value_len = static_cast<uint16_t>(value.size());
    std::memcpy(s.key, key.data(), key.size());
    std::memcpy(s.value, value.data(), value.size());
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint64_t extra = 0;
    uint16_t key_len = 0;  // 0: empty
    uint16_t value_len = 0;
    char key[kKeyMax];
    char value[kValueMax];
  };
  std::vector<Slot> slots_;
};

}  // namespace spanfeed
