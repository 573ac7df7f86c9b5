// The built-in redaction rules: patterns, switches, issuer table and Luhn check.
// Patterns are read on the control core; the checks run on worker lcores and never allocate.
#include "rules/builtin_redaction.h"

#include <hs.h>

#include <array>

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

// `lit` (lower case; letters compared without ASCII case, the rest exactly) at the start of s[0, n).
template <size_t N>
bool starts_with_caseless(const unsigned char* s, size_t n, const char (&lit)[N]) {
  if (n < N - 1) return false;
  for (size_t k = 0; k < N - 1; ++k) {
    const unsigned char l = static_cast<unsigned char>(lit[k]);
    const unsigned char c = (l >= 'a' && l <= 'z') ? (s[k] | 0x20) : s[k];
    if (c != l) return false;
  }
  return true;
}

}  // namespace

// Every pattern in kBuiltinPatterns contains one of these literals (card
// numbers: 13 digits with at most single ' ' or '-' between them); keep this
// in step when a pattern is added (BuiltinPrefilterNeverHidesAMatch checks it).
bool builtin_may_match(std::string_view sv) {
  // Byte classes: most bytes are none of these and cost a load and a branch.
  enum : uint8_t { kDigit = 1, kSep = 2, kLead = 4 };
  static constexpr auto kClass = [] {
    std::array<uint8_t, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = kDigit;
    t[' '] = t['-'] = kSep;
    for (char c : {'b', 't', 'i', 'p'}) t[static_cast<unsigned char>(c)] = t[static_cast<unsigned char>(c - 32)] = kLead;
    return t;
  }();
  const auto* s = reinterpret_cast<const unsigned char*>(sv.data());
  const size_t n = sv.size();
  size_t digits = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t k = kClass[s[i]];
    if (k == 0) {
      digits = 0;
      continue;
    }
    if (k == kDigit) {
      if (++digits >= 13) return true;
      continue;
    }
    if (k == kSep) continue;
    digits = 0;
    switch (s[i] | 0x20) {
      case 'b':
        if (starts_with_caseless(s + i, n - i, "bearer")) return true;
        break;
      case 't':
        if (starts_with_caseless(s + i, n - i, "token=")) return true;
        break;
      case 'i':
        if (starts_with_caseless(s + i, n - i, "identified")) return true;
        break;
      default:  // 'p'
        if (starts_with_caseless(s + i, n - i, "pass") || starts_with_caseless(s + i, n - i, "pwd=")) return true;
        break;
    }
  }
  return false;
}

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
