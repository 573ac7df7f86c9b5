// The built-in redaction rules (card numbers, bearer tokens, passwords): their patterns, their
// switches, and the checks that cut a match down to the secret. Patterns are read on the control
// core when a rule set compiles; the checks run on worker lcores and never allocate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace spanfeed {

// The built-in redaction rules, each switchable (rules.redact_* in the config).
struct BuiltinRedaction {
  bool credit_cards = true;   // 13-19 digit card numbers with a known issuer prefix and a valid Luhn digit
  bool bearer_tokens = true;  // "Bearer <token>" and access/id/refresh_token=<token>
  bool passwords = true;      // passwords in query text: IDENTIFIED BY '...', PASSWORD '...', password=...
};

// What of a redaction match is replaced.
enum class RedactKind : uint8_t {
  kWhole,         // the whole match (user rules)
  kCard,          // card number: issuer prefix, length and Luhn checked
  kAfterKeyword,  // "Bearer <token>": what follows the first word and its spaces
  kAfterEquals,   // name=value: what follows the first '='
  kQuoted,        // keyword '...': the content of the first quoted string
};

struct BuiltinPattern {
  const char* rule;  // built-in rule id (also its tag)
  const char* pattern;
  unsigned flags;    // Hyperscan compile flags
  RedactKind kind;
};

// Every built-in pattern; several patterns may make one rule.
std::span<const BuiltinPattern> builtin_patterns();
bool builtin_enabled(std::string_view rule, const BuiltinRedaction& b);

// False when no built-in pattern can match anywhere in `s`: it holds none of
// the literals every built-in pattern needs ("bearer", "token=", "identified",
// "pass", "pwd=", ASCII case ignored) and no run of [0-9 -] with 13 digits.
// One pass, no Hyperscan call: a message without them skips the scan.
bool builtin_may_match(std::string_view s);
// The same answer for a text that has kBuiltinMayMatchSlack readable bytes (any content) past its
// end, as a FieldList's arena has: no copy of its last bytes.
inline constexpr size_t kBuiltinMayMatchSlack = 17;
bool builtin_may_match_slack(std::string_view s);
// The same, one byte at a time (the reference the tests hold builtin_may_match to).
bool builtin_may_match_bytewise(std::string_view s);

// [from, to) of `s` holds a card number: whole digit run, 13-19 digits,
// known issuer, valid check digit.
bool card_number(std::string_view s, size_t from, size_t to);

}  // namespace spanfeed
