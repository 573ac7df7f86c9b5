// Helpers shared by the database decoders (MySQL, PostgreSQL, MongoDB): byte readers and SQL normalisation.
// Pure functions over caller-owned buffers; run on worker lcores; never allocate.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstring>
#include <cstdint>
#include <span>
#include <string_view>

#include "decode/fnv.h"

namespace spanfeed::db {

// The next flow generation from a decoder's counter (never 0: 0 marks "none").
inline uint32_t next_gen(uint32_t& counter) {
  if (++counter == 0) ++counter;
  return counter;
}

inline const uint8_t* u8p(std::span<const std::byte> b) { return reinterpret_cast<const uint8_t*>(b.data()); }
inline uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
inline uint32_t le24(const uint8_t* p) { return static_cast<uint32_t>(p[0] | p[1] << 8 | p[2] << 16); }
inline uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}
inline uint64_t le64(const uint8_t* p) { return le32(p) | static_cast<uint64_t>(le32(p + 4)) << 32; }
inline uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 |
         static_cast<uint32_t>(p[3]);
}

// FNV-1a: a PostgreSQL statement name -> its 32-bit key in the prepared-statement table.
inline uint32_t fnv1a(std::string_view s) { return fnv1a32(s); }

// Byte classes of SQL text (one load per test in normalize_sql's loop).
enum : uint8_t { kSqlIdent = 1, kSqlBlank = 2, kSqlDigit = 4, kSqlHex = 8, kSqlPlainStart = 16, kSqlPunct = 32 };
inline constexpr auto kSqlClass = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    if (letter || digit || c == '_' || c == '$' || c >= 0x80) t[c] |= kSqlIdent;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') t[c] |= kSqlBlank;
    if (digit) t[c] |= kSqlDigit;
    if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) t[c] |= kSqlHex;
    // Starts an identifier and nothing else: not a digit, '$' (dollar quotes) or a literal prefix (X'..' B'..' E'..' N'..').
    const bool prefix = c == 'x' || c == 'X' || c == 'b' || c == 'B' || c == 'e' || c == 'E' || c == 'n' || c == 'N';
    if ((letter && !prefix) || c == '_' || c >= 0x80) t[c] |= kSqlPlainStart;
    // Copied as it is and nothing else (operators, parentheses, commas, ';'): not an identifier, blank or
    // digit, and starts no comment, quote, dollar quote or number.
    const bool special = c == '-' || c == '#' || c == '/' || c == '\'' || c == '"' || c == '`' || c == '$' || c == '.';
    if (!(t[c] & (kSqlIdent | kSqlBlank | kSqlDigit)) && !special) t[c] |= kSqlPunct;
  }
  return t;
}();
inline uint8_t sql_class(char c) { return kSqlClass[static_cast<uint8_t>(c)]; }

inline bool is_ident_char(char c) { return (sql_class(c) & kSqlIdent) != 0; }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_hex(char c) { return (sql_class(c) & kSqlHex) != 0; }
inline bool is_blank(char c) { return (sql_class(c) & kSqlBlank) != 0; }

// The high bit of each byte of `w` (eight bytes of text, the first in the low
// byte) set where that byte is_ident_char: normalize_sql copies identifiers a
// word at a time. Each test runs on the low seven bits of every byte at once,
// where no sum carries into the next byte; bytes >= 0x80 (UTF-8) are
// identifier characters by their own high bit.
inline uint64_t ident_bytes(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = kOnes * 0x80;
  constexpr uint64_t kLow7 = kOnes * 0x7f;
  const uint64_t x = w & kLow7;
  auto at_least = [](uint64_t v, uint8_t lo) { return v + kOnes * (0x80 - lo); };  // high bit: v >= lo
  auto above = [](uint64_t v, uint8_t hi) { return v + kOnes * (0x7f - hi); };      // high bit: v > hi
  auto equal = [](uint64_t v, uint8_t c) { return ~((v ^ kOnes * c) + kLow7); };    // high bit: v == c
  const uint64_t folded = x | kOnes * 0x20;  // 'A'..'Z' -> 'a'..'z' (and nothing else into that range)
  const uint64_t letter = at_least(folded, 'a') & ~above(folded, 'z');
  const uint64_t digit = at_least(x, '0') & ~above(x, '9');
  return (w | letter | digit | equal(x, '_') | equal(x, '$')) & kHigh;
}

enum class SqlDialect : uint8_t { kMysql, kPgsql };

// Single pass: literals (quoted strings, numbers, hex/bit literals, PG $$ strings) become '?', a parenthesised
// list of literals collapses to "(?)", comments go, whitespace runs become one space. Identifiers (also
// `quoted`, and "quoted" for PostgreSQL), keywords, placeholders (?, $1) are kept. Writes at most in.size()
// bytes to out (cap out_cap); returns the length written.
inline size_t normalize_sql(std::string_view in, char* out, size_t out_cap, SqlDialect dialect) {
  size_t n = 0;
  const size_t len = in.size();
  auto put = [&](char c) {
    if (n < out_cap) out[n++] = c;
  };
  auto put_space = [&]() {
    if (n > 0 && out[n - 1] != ' ' && out[n - 1] != '(') put(' ');
  };
  // A literal: '?' unless the output ends in "(?," (a list of literals so far): then the comma goes and the
  // list stays "(?".
  auto put_literal = [&]() {
    size_t k = n;
    while (k > 0 && out[k - 1] == ' ') --k;
    if (k > 0 && out[k - 1] == ',') {
      size_t j = k - 1;
      while (j > 0 && out[j - 1] == ' ') --j;
      if (j >= 2 && out[j - 1] == '?' && out[j - 2] == '(') {
        n = j;
        return;
      }
    }
    put('?');
  };
  // An identifier or keyword: copied whole (put's cap: what does not fit is dropped).
  auto put_ident = [&](size_t& i) {
    size_t j = i + 1;
    if (out_cap - n >= len - i) {  // room for all the input left (the usual case): copied as it is scanned
      out[n++] = in[i];
      if constexpr (std::endian::native == std::endian::little) {
        // Eight bytes at a time while eight remain: all of them stored (out
        // has room for every byte left), n advanced past the identifier's.
        while (j + 8 <= len) {
          uint64_t w;
          std::memcpy(&w, in.data() + j, sizeof(w));
          std::memcpy(out + n, &w, sizeof(w));
          const uint64_t other = ~ident_bytes(w) & 0x8080808080808080ull;
          if (other != 0) {
            const size_t k = static_cast<size_t>(std::countr_zero(other)) / 8;
            n += k;
            i = j + k;
            return;
          }
          n += 8;
          j += 8;
        }
      }
      while (j < len && is_ident_char(in[j])) out[n++] = in[j++];
      i = j;
      return;
    }
    while (j < len && is_ident_char(in[j])) ++j;
    const size_t k = std::min(j - i, out_cap > n ? out_cap - n : 0);
    std::memcpy(out + n, in.data() + i, k);
    n += k;
    i = j;
  };
  size_t i = 0;
  while (i < len) {
    const char c = in[i];
    const uint8_t cls = sql_class(c);
    if (cls & kSqlPlainStart) {  // the common case first: none of the branches below takes it
      put_ident(i);
      continue;
    }
    if (cls & kSqlPunct) {  // what the last branch does, without the tests none of them passes
      put(c);
      ++i;
      continue;
    }
    if (cls & kSqlBlank) {
      ++i;  // c is one
      while (i < len && is_blank(in[i])) ++i;
      put_space();
      continue;
    }
    // comments
    if ((c == '-' && i + 1 < len && in[i + 1] == '-') || (c == '#' && dialect == SqlDialect::kMysql)) {
      while (i < len && in[i] != '\n') ++i;
      continue;
    }
    if (c == '/' && i + 1 < len && in[i + 1] == '*') {
      i += 2;
      while (i + 1 < len && !(in[i] == '*' && in[i + 1] == '/')) ++i;
      i = i + 2 <= len ? i + 2 : len;
      put_space();
      continue;
    }
    // quoted strings ('...'; "..." in MySQL; E'...' handled by the identifier path + quote)
    if (c == '\'' || (c == '"' && dialect == SqlDialect::kMysql)) {
      ++i;
      while (i < len) {
        if (in[i] == '\\' && i + 1 < len) {
          i += 2;
          continue;
        }
        if (in[i] == c) {
          if (i + 1 < len && in[i + 1] == c) {
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        ++i;
      }
      put_literal();
      continue;
    }
    // quoted identifiers: kept verbatim
    if (c == '`' || c == '"') {
      size_t j = i + 1;
      while (j < len && in[j] != c) ++j;
      j = j < len ? j + 1 : len;
      for (size_t k = i; k < j; ++k) put(in[k]);
      i = j;
      continue;
    }
    // PostgreSQL dollar-quoted string $$...$$ / $tag$...$tag$ (not $1 placeholders)
    if (c == '$' && dialect == SqlDialect::kPgsql && !(i + 1 < len && is_digit(in[i + 1])) &&
        (n == 0 || !is_ident_char(out[n - 1]))) {
      size_t j = i + 1;
      while (j < len && in[j] != '$' && is_ident_char(in[j])) ++j;
      if (j < len && in[j] == '$') {
        const std::string_view tag = in.substr(i, j - i + 1);
        const size_t end = in.find(tag, j + 1);
        i = end == std::string_view::npos ? len : end + tag.size();
        put_literal();
        continue;
      }
    }
    // numbers / hex / bit literals, only where an identifier cannot be going on
    const bool prev_ident = n > 0 && (is_ident_char(out[n - 1]) || out[n - 1] == '.');
    if (!prev_ident && (is_digit(c) || (c == '.' && i + 1 < len && is_digit(in[i + 1])))) {
      if (c == '0' && i + 1 < len && (in[i + 1] == 'x' || in[i + 1] == 'X' || in[i + 1] == 'b' || in[i + 1] == 'B')) {
        i += 2;
        while (i < len && is_hex(in[i])) ++i;
      } else {
        while (i < len && (is_digit(in[i]) || in[i] == '.')) ++i;
        if (i < len && (in[i] == 'e' || in[i] == 'E')) {
          size_t j = i + 1;
          if (j < len && (in[j] == '+' || in[j] == '-')) ++j;
          if (j < len && is_digit(in[j])) {
            i = j;
            while (i < len && is_digit(in[i])) ++i;
          }
        }
      }
      if (i < len && is_ident_char(in[i])) {  // "1abc": an identifier after all (MySQL allows it)
        put('?');
        continue;
      }
      put_literal();
      continue;
    }
    if (!prev_ident && (c == 'x' || c == 'X' || c == 'b' || c == 'B' || c == 'e' || c == 'E' || c == 'n' ||
                        c == 'N') &&
        i + 1 < len && in[i + 1] == '\'') {
      ++i;  // X'..' B'..' E'..' N'..': the quote path turns the rest into '?'
      continue;
    }
    if (is_ident_char(c)) {
      put_ident(i);
      continue;
    }
    put(c);
    ++i;
  }
  while (n > 0 && out[n - 1] == ' ') --n;
  return n;
}

}  // namespace spanfeed::db
