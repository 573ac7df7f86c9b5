// The Hyperscan side of a RuleSet: databases and per-rule lookup tables. Included by the rules
// sources only (the one place hs.h is seen); built on the control core, read by workers.
#pragma once

#include <hs.h>

#include <array>
#include <cstdint>
#include <vector>

#include "rules/rule_set.h"

namespace spanfeed {

inline constexpr uint32_t kNoIndex = UINT32_MAX;  // end of an index-linked list, or no pool entry

struct RedactPattern {
  uint32_t rule;
  RedactKind kind;
};

struct RuleSet::Impl {
  std::array<hs_database_t*, 2> stream_db{};  // per side: rules that scan requests / responses
  std::array<size_t, 2> stream_size{};
  hs_database_t* redact_db = nullptr;         // block mode, start of match: field values
  bool redact_builtin_only = false;           // redact_db holds built-in patterns only (builtin_may_match applies)
  std::vector<RedactPattern> redact;          // hs id -> rule and how to cut
  std::vector<uint32_t> protocols;            // per rule: protocol_bit()s
  std::vector<uint8_t> sides;                 // per rule: RuleSide bits
  std::vector<uint8_t> headers_only;          // per rule: scope == headers

  ~Impl() {
    for (hs_database_t* d : stream_db) hs_free_database(d);
    hs_free_database(redact_db);
  }
};

}  // namespace spanfeed
