// The built-in redaction rules: patterns, switches, issuer table and Luhn check.
// Patterns are read on the control core; the checks run on worker lcores and never allocate.
#include "rules/builtin_redaction.h"

#include <hs.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <bit>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

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

namespace {

enum : uint8_t { kDigit = 1, kSep = 2, kLead = 4 };

// Byte classes: most bytes are none of these and cost a load and a branch.
constexpr auto kClass = [] {
  std::array<uint8_t, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = kDigit;
  t[' '] = t['-'] = kSep;
  for (char c : {'b', 't', 'i', 'p'}) t[static_cast<unsigned char>(c)] = t[static_cast<unsigned char>(c - 32)] = kLead;
  return t;
}();

// Bytes [from, to) of s[0, n) one at a time; `digits` is the run of [0-9 -] so far (13 digits: a card may start).
bool may_match_bytes(const unsigned char* s, size_t n, size_t from, size_t to, size_t& digits) {
  for (size_t i = from; i < to; ++i) {
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

}  // namespace

// Every pattern in kBuiltinPatterns contains one of these literals (card
// numbers: 13 digits with at most single ' ' or '-' between them); keep this
// in step when a pattern is added (BuiltinPrefilterNeverHidesAMatch checks it).
bool builtin_may_match_bytewise(std::string_view sv) {
  size_t digits = 0;
  return may_match_bytes(reinterpret_cast<const unsigned char*>(sv.data()), sv.size(), 0, sv.size(), digits);
}

#ifdef __SSE2__
namespace {

// Bits set in a 16-bit mask (no popcnt instruction in the x86-64 baseline: no libgcc call).
inline unsigned bits16(unsigned x) {
  x = x - ((x >> 1) & 0x5555u);
  x = (x & 0x3333u) + ((x >> 2) & 0x3333u);
  x = (x + (x >> 4)) & 0x0f0fu;
  return (x + (x >> 8)) & 0x1fu;
}

// Bytes [i, i + 16) of s[0, n) (s readable to i + 18): 1 when a literal or a card may start, else 0
// with `digits` carried on. Bytes whose bit in `valid` is clear (past n) count as neither letters nor
// digits; a literal starting before them is checked against n by may_match_bytes.
inline bool may_match_chunk(const unsigned char* s, size_t n, size_t i, size_t& digits, unsigned valid = 0xffffu) {
  auto eq = [](__m128i v, char c) { return _mm_cmpeq_epi8(v, _mm_set1_epi8(c)); };
  const __m128i lower = _mm_set1_epi8(0x20);
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
  const __m128i l0 = _mm_or_si128(v, lower);
  const __m128i l1 = _mm_or_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 1)), lower);
  const __m128i l2 = _mm_or_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 2)), lower);
  // l0 == 'b' only for 'b' and 'B' (likewise each letter): the triples are exact, case ignored.
  auto starts = [&](char a, char b, char c) { return _mm_and_si128(_mm_and_si128(eq(l0, a), eq(l1, b)), eq(l2, c)); };
  const __m128i triples = _mm_or_si128(_mm_or_si128(starts('b', 'e', 'a'), starts('t', 'o', 'k')),
                                       _mm_or_si128(_mm_or_si128(starts('i', 'd', 'e'), starts('p', 'a', 's')),
                                                    starts('p', 'w', 'd')));
  const __m128i d = _mm_sub_epi8(v, _mm_set1_epi8('0'));
  const __m128i is_digit = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
  const __m128i is_sep = _mm_or_si128(eq(v, ' '), eq(v, '-'));
  const unsigned dm = static_cast<unsigned>(_mm_movemask_epi8(is_digit)) & valid;
  const unsigned run = (dm | static_cast<unsigned>(_mm_movemask_epi8(is_sep))) & valid;
  const unsigned breaks = ~run & 0xffffu;  // bytes that end a digit run
  if ((static_cast<unsigned>(_mm_movemask_epi8(triples)) & valid) == 0) {
    if (dm == 0) {  // no digit: the run goes on through separators only
      if (breaks != 0) digits = 0;
      return false;
    }
    const unsigned nd = bits16(dm);
    if (nd < 13) {
      if (breaks == 0) {
        digits += nd;
        return digits >= 13;
      }
      const int first = std::countr_zero(breaks);
      const int last = 31 - std::countl_zero(breaks);
      if (digits + bits16(dm & ((1u << first) - 1)) >= 13) return true;
      // Runs between two breaks hold fewer than 13 digits (the chunk has fewer).
      digits = bits16(dm >> (last + 1));
      return false;
    }
  }
  return may_match_bytes(s, n, i, std::min(i + 16, n), digits);  // rare: a literal's start, or 13+ digits
}

}  // namespace
#endif

// The same answer 16 bytes at a time (SSE2): a chunk where no literal's first
// three bytes start ("bea", "tok", "ide", "pas", "pwd", case ignored) and that has
// fewer than 13 digits settles the digit run with bit masks; other chunks
// (rare) go through may_match_bytes. The last bytes are copied into a padded
// buffer so short values take the same path.
bool builtin_may_match(std::string_view sv) {
  const auto* s = reinterpret_cast<const unsigned char*>(sv.data());
  const size_t n = sv.size();
  size_t digits = 0;
#ifdef __SSE2__
  size_t i = 0;
  for (; i + 18 <= n; i += 16) {
    if (may_match_chunk(s, n, i, digits)) return true;
  }
  // Fewer than 18 bytes left: zero padding (a byte no literal or digit run takes) behind them.
  unsigned char tail[48] = {};
  const size_t rest = n - i;
  std::memcpy(tail, s + i, rest);
  for (size_t j = 0; j < rest; j += 16) {
    if (may_match_chunk(tail, rest, j, digits)) return true;
  }
  return false;
#else
  return may_match_bytes(s, n, 0, n, digits);
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
namespace {

// 32 bytes at a time where the CPU has AVX2 (chosen at run time: the build targets baseline x86-64).
// A chunk with no literal's start and fewer than 13 digits is settled with its 32-bit masks, as
// may_match_chunk settles 16 bytes; any other chunk goes through may_match_chunk as two halves.
// Bytes [0, n) of s[0, n + 2) readable; returns where it stopped (a multiple of 32) in `i`.
[[gnu::target("avx2")]] inline __m256i eq32(__m256i v, char c) { return _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c)); }

// Lanes where the bytes l0, l1, l2 (already lower-cased) start "abc".
[[gnu::target("avx2")]] inline __m256i starts32(__m256i l0, __m256i l1, __m256i l2, char a, char b, char c) {
  return _mm256_and_si256(_mm256_and_si256(eq32(l0, a), eq32(l1, b)), eq32(l2, c));
}

[[gnu::target("avx2,popcnt")]] bool may_match_avx2(const unsigned char* s, size_t n, size_t& i, size_t& digits) {
  const __m256i lower = _mm256_set1_epi8(0x20);
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i));
    const __m256i l0 = _mm256_or_si256(v, lower);
    const __m256i l1 = _mm256_or_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i + 1)), lower);
    const __m256i l2 = _mm256_or_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i + 2)), lower);
    const __m256i triples = _mm256_or_si256(
        _mm256_or_si256(starts32(l0, l1, l2, 'b', 'e', 'a'), starts32(l0, l1, l2, 't', 'o', 'k')),
        _mm256_or_si256(_mm256_or_si256(starts32(l0, l1, l2, 'i', 'd', 'e'), starts32(l0, l1, l2, 'p', 'a', 's')),
                        starts32(l0, l1, l2, 'p', 'w', 'd')));
    const __m256i d = _mm256_sub_epi8(v, _mm256_set1_epi8('0'));
    const __m256i is_digit = _mm256_cmpeq_epi8(_mm256_min_epu8(d, _mm256_set1_epi8(9)), d);
    const __m256i is_sep = _mm256_or_si256(eq32(v, ' '), eq32(v, '-'));
    const auto dm = static_cast<uint32_t>(_mm256_movemask_epi8(is_digit));
    const uint32_t breaks = ~(dm | static_cast<uint32_t>(_mm256_movemask_epi8(is_sep)));  // bytes that end a digit run
    if (_mm256_movemask_epi8(triples) == 0) {
      if (dm == 0) {  // no digit: the run goes on through separators only
        if (breaks != 0) digits = 0;
        continue;
      }
      const auto nd = static_cast<unsigned>(__builtin_popcount(dm));
      if (nd < 13) {
        if (breaks == 0) {
          digits += nd;
          if (digits >= 13) return true;
          continue;
        }
        const int first = std::countr_zero(breaks);
        const int last = 31 - std::countl_zero(breaks);
        if (digits + static_cast<unsigned>(__builtin_popcount(dm & ((1u << first) - 1))) >= 13) return true;
        // Runs between two breaks hold fewer than 13 digits (the chunk has fewer).
        digits = static_cast<unsigned>(__builtin_popcountll(uint64_t{dm} >> (last + 1)));
        continue;
      }
    }
    if (may_match_chunk(s, n, i, digits) || may_match_chunk(s, n, i + 16, digits)) return true;
  }
  return false;
}

const bool kHaveAvx2 = [] {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
}();

}  // namespace
#endif

bool builtin_may_match_slack(std::string_view sv) {
#ifdef __SSE2__
  // The bytes past n are loaded but masked out of the last chunk: no copy into a padded buffer.
  const auto* s = reinterpret_cast<const unsigned char*>(sv.data());
  const size_t n = sv.size();
  size_t digits = 0;
  size_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
  if (kHaveAvx2 && n >= 32 && may_match_avx2(s, n, i, digits)) return true;
#endif
  for (; i + 16 <= n; i += 16) {
    if (may_match_chunk(s, n, i, digits)) return true;
  }
  if (i < n) return may_match_chunk(s, n, i, digits, (1u << (n - i)) - 1);
  return false;
#else
  return builtin_may_match(sv);
#endif
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
