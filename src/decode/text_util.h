// Small ASCII helpers shared by the text-protocol decoders (HTTP, RESP, memcached).
// Pure functions on string_views; run on worker lcores; never allocate.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace spanfeed::text {

inline std::string_view as_sv(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
inline char upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_space(char c) { return c == ' ' || c == '\t'; }

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// b must be lower case.
inline bool icontains(std::string_view a, std::string_view b) {
  if (b.size() > a.size()) return false;
  for (size_t i = 0; i + b.size() <= a.size(); ++i) {
    size_t k = 0;
    while (k < b.size() && lower(a[i + k]) == b[k]) ++k;
    if (k == b.size()) return true;
  }
  return false;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && (is_space(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Next space-separated token; s advances past it and the spaces after it.
inline std::string_view next_token(std::string_view& s) {
  size_t i = 0;
  while (i < s.size() && !is_space(s[i])) ++i;
  std::string_view t = s.substr(0, i);
  while (i < s.size() && is_space(s[i])) ++i;
  s.remove_prefix(i);
  return t;
}

// Decimal without sign; false on empty, non-digits or overflow past 2^63.
inline bool parse_u64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;  // 19 digits always fit
  uint64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return false;
  *out = v;
  return true;
}

// Optional leading '-'.
inline bool parse_i64(std::string_view s, int64_t* out) {
  bool neg = false;
  if (!s.empty() && s.front() == '-') {
    neg = true;
    s.remove_prefix(1);
  }
  uint64_t v = 0;
  if (!parse_u64(s, &v)) return false;
  *out = neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
  return true;
}

// Hex chunk size (HTTP); false on empty, non-hex or more than 15 digits.
inline bool parse_hex(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 15) return false;
  uint64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return false;
  *out = v;
  return true;
}

}  // namespace spanfeed::text
