// Redactor: replaces what the redaction rules match in a message's exported string fields with
// "<redacted>" (Hyperscan block scan over the joined values) and records the redacting rules as
// the message's rule hits. Runs on a worker lcore; its buffers are reserved at construction.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "decode/text_memo.h"
#include "rules/rule_set.h"
#include "rules/rules_report.h"
#include "spanfeed/record.h"

struct hs_scratch;  // hs.h: rules sources only

namespace spanfeed {

// Adds `rule` to the message's rule hits once; false when there was no room.
bool add_rule_hit(Message& m, uint32_t rule);

// The rule set a redaction runs with: its database, the worker's scratch, its per-rule counters.
struct RedactWith {
  const RuleSet::Impl& im;  // im.redact_db is not null
  hs_scratch* scratch;
  std::span<RuleCounters> per_rule;
};

class Redactor {
 public:
  Redactor();  // control core: reserves the buffers
  void redact(const RedactWith& with, Message& m, Protocol p, Direction dir, RulesCounters& c);

 private:
  struct Ctx;  // one message's string fields being checked

  static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags, void* ctx);
  bool scan(const RedactWith& with, Ctx& ctx, RulesCounters& c);
  void apply(const RedactWith& with, Message& m, size_t field, const Ctx& ctx, size_t first, size_t last,
             RulesCounters& c);

  // Arenas in which builtin_may_match found nothing (messages repeat: the same request line,
  // headers, statement): hashing one costs a seventh of scanning it. Two ways per set, the key
  // bytes only: a mixed capture's few hundred recurring arenas stay (a direct-mapped memo of 256
  // lost a third of them to conflicts), in about the memory the 256 text-to-text slots took.
  class CleanSet {
   public:
    static constexpr size_t kKeyMax = 256;  // longer arenas are not remembered
    static constexpr size_t kSets = 256;
    // `key` is a message's arena: 64 bytes are readable from its start (FieldList's arena and slack).
    bool find(std::string_view key, uint64_t h) const {
      static_assert(FieldList::kArenaBytes + FieldList::kArenaSlack >= 64 && kKeyMax >= 64);
      const Slot* set = &slots_[(h & (kSets - 1)) * 2];
      for (size_t w = 0; w < 2; ++w) {
        const Slot& s = set[w];
        if (s.hash == h && s.len == key.size() && same(s.key, key.data(), key.size())) return true;
      }
      return false;
    }
    // Into the set's way 0; its entry moves to way 1 (the older of two is replaced).
    void remember(std::string_view key, uint64_t h) {
      Slot* set = &slots_[(h & (kSets - 1)) * 2];
      set[1].hash = set[0].hash;
      set[1].len = set[0].len;
      std::memcpy(set[1].key, set[0].key, set[0].len);
      set[0].hash = h;
      set[0].len = static_cast<uint16_t>(key.size());
      std::memcpy(set[0].key, key.data(), key.size());
    }

   private:
    // n bytes of a slot's key and of an arena equal? Keys of up to 48 bytes (most arenas) are compared
    // 16 bytes at a time inline (both have 64 readable bytes), where a memcmp call cost ~21
    // instructions a lookup.
    static bool same(const char* a, const char* b, size_t n) {
#ifdef __SSE2__
      if (n <= 48) {
        for (size_t i = 0; i < n; i += 16) {
          const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
          const __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i));
          unsigned diff = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(x, y))) ^ 0xffffu;
          if (n - i < 16) diff &= (1u << (n - i)) - 1;  // bytes past n do not count
          if (diff != 0) return false;
        }
        return true;
      }
#endif
      return std::memcmp(a, b, n) == 0;
    }
    struct Slot {
      uint64_t hash = 0;
      uint16_t len = 0;  // 0: empty (the key is never empty)
      char key[kKeyMax];
    };
    std::vector<Slot> slots_ = std::vector<Slot>(kSets * 2);
  };
  CleanSet clean_;
  std::string redact_buf_;  // reused: a field value being rewritten
  std::string join_buf_;    // reused: a message's string values joined for one scan
};

}  // namespace spanfeed
