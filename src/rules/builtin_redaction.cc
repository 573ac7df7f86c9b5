// The built-in redaction rules: patterns, switches, issuer table and Luhn check.
// Patterns are read on the control core; the checks run on worker lcores and never allocate.
#include "rules/builtin_redaction.h"

#include <hs.h>

#include "decode/text_util.h"

namespace spanfeed {

namespace {

constexpr BuiltinPattern kBuiltinPatterns[] = {
    {"credit_card", "[0-9](?:[ -]?[0-9]){12,18}", 0, RedactKind::kCard},
    {"bearer_token", "\\bbearer\\s+[a-z0-9._~+/-]+=*", HS_FLAG_CASELESS, RedactKind::kAfterKeyword},
    {"bearer_token", "\\b(?:access_token|id_token|refresh_token)=[^&\\s\"'\\x00]+", HS_FLAG_CASELESS,
     RedactKind::kAfterEquals},
    {"password", "\\bidentified\\s+(?:with\\s+[^\\s\\x00]+\\s+)?by\\s+(?:password\\s+)?(?:'[^'\\x00]*'|\"[^\"\\x00]*\")",
     HS_FLAG_CASELESS, RedactKind::kQuoted},
    {"password", "\\bpassword\\s*(?:=|\\()?\\s*(?:'[^'\\x00]*'|\"[^\"\\x00]*\")", HS_FLAG_CASELESS, RedactKind::kQuoted},
    {"password", "\\b(?:password|passwd|pwd|pass)=[^&\\s\"'\\x00]+", HS_FLAG_CASELESS, RedactKind::kAfterEquals},
};

// Issuer prefixes (IIN ranges) of the major card schemes with the lengths
// they issue, as data-loss-prevention tools check them: a digit run of another
// length or prefix (an order id, a timestamp) is not a card number.
bool known_issuer(const char* d, size_t n) {
  auto pre = [&](size_t k) {
    int v = 0;
    for (size_t i = 0; i < k && i < n; ++i) v = v * 10 + (d[i] - '0');
    return v;
  };
  const int p2 = pre(2), p3 = pre(3), p4 = pre(4);
  if (d[0] == '4') return n == 13 || n == 16 || n == 19;                             // Visa
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return n == 16;          // Mastercard
  if (p2 == 34 || p2 == 37) return n == 15;                                          // American Express
  if ((p3 >= 300 && p3 <= 305) || p2 == 36) return n == 14;                          // Diners Club
  if (p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649)) return n == 16;            // Discover
  if (p4 >= 3528 && p4 <= 3589) return n == 16;                                      // JCB
  if (p2 == 62) return n >= 16 && n <= 19;                                           // UnionPay
  return false;
}

bool luhn_ok(const char* d, size_t n) {
  unsigned sum = 0;
  bool dbl = false;
  for (size_t i = n; i-- > 0;) {
    unsigned v = static_cast<unsigned>(d[i] - '0');
    if (dbl) {
      v *= 2;
      if (v > 9) v -= 9;
    }
    sum += v;
    dbl = !dbl;
  }
  return sum % 10 == 0;
}

}  // namespace

std::span<const BuiltinPattern> builtin_patterns() { return kBuiltinPatterns; }

bool builtin_enabled(std::string_view rule, const BuiltinRedaction& b) {
  if (rule == "credit_card") return b.credit_cards;
  if (rule == "bearer_token") return b.bearer_tokens;
  if (rule == "password") return b.passwords;
  return false;
}

bool card_number(std::string_view s, size_t from, size_t to) {
  if (from > 0 && text::is_digit(s[from - 1])) return false;
  if (to < s.size() && text::is_digit(s[to])) return false;
  char digits[20];
  size_t n = 0;
  for (size_t i = from; i < to; ++i) {
    if (!text::is_digit(s[i])) continue;
    if (n == sizeof(digits)) return false;
    digits[n++] = s[i];
  }
  return n >= 13 && n <= 19 && known_issuer(digits, n) && luhn_ok(digits, n);
}

}  // namespace spanfeed
