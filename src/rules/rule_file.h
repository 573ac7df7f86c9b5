// Rule specifications and the YAML rules file that declares them (conf/rules.yaml).
// Control core only (start-up and SIGHUP reload); allocates.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "spanfeed/decoder.h"  // kAllProtocols, protocol_bit

namespace spanfeed {

// Which side of a record a rule looks at.
enum class RuleSide : uint8_t { kRequest = 1, kResponse = 2, kBoth = 3 };
// How much of a message: all of it, or its header block (HTTP start line and
// headers; protocols without a header/body split count the whole message).
enum class RuleScope : uint8_t { kMessage, kHeaders };

struct RuleSpec {
  std::string id;       // unique in the set: the metrics label, and the tag unless `tag` is set
  std::string pattern;  // Hyperscan regex (PCRE syntax, no backreferences or lookaround)
  std::string flags;    // letters: i caseless, s dot-all, m multi-line, u UTF-8
  RuleSide side = RuleSide::kBoth;
  uint32_t protocols = kAllProtocols;  // protocol_bit()s; "unknown" = flows no decoder claimed
  RuleScope scope = RuleScope::kMessage;
  std::string tag;      // added to every record the rule matched in (default: id)
  bool redact = false;  // matched bytes of exported string fields become "<redacted>"
};

// Reads a rules file (YAML, see conf/rules.yaml). Throws ConfigError naming
// the file, the line and the rule.
std::vector<RuleSpec> load_rules_file(const std::string& path);

}  // namespace spanfeed
