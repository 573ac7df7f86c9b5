// Redactor: replaces what the redaction rules match in a message's exported string fields with
// "<redacted>" (Hyperscan block scan over the joined values) and records the redacting rules as
// the message's rule hits. Runs on a worker lcore; its buffers are reserved at construction.
#pragma once

#include <cstdint>
#include <span>
#include <string>

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
  // headers, statement): hashing one costs a seventh of scanning it.
  TextMemo clean_{256};
  std::string redact_buf_;  // reused: a field value being rewritten
  std::string join_buf_;    // reused: a message's string values joined for one scan
};

}  // namespace spanfeed
