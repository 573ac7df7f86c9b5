// PostgreSQL protocol v3 wire helpers: startup codes, message types, boundary checks and C strings.
// Internal to src/decode/pgsql/; pure functions over bytes, run on worker lcores, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "db_util.h"

namespace spanfeed::pgsql::wire {

constexpr uint32_t kProtocol3 = 196608;  // StartupMessage protocol 3.0
constexpr uint32_t kSslRequest = 80877103;
constexpr uint32_t kCancelRequest = 80877102;
constexpr uint32_t kGssRequest = 80877104;
constexpr uint32_t kMaxMessage = 1u << 30;  // the server refuses longer messages

inline bool client_type(uint8_t t) {
  switch (t) {
    case 'Q': case 'P': case 'B': case 'E': case 'D': case 'S': case 'C': case 'H': case 'X': case 'F':
    case 'p': case 'd': case 'c': case 'f':
      return true;
    default: return false;
  }
}
inline bool server_type(uint8_t t) {
  switch (t) {
    case 'R': case 'S': case 'K': case 'Z': case 'T': case 'D': case 'C': case 'E': case 'I': case 'N':
    case 'A': case 'G': case 'H': case 'W': case 'c': case 'd': case '1': case '2': case '3': case 'n':
    case 's': case 't': case 'V': case 'v':
      return true;
    default: return false;
  }
}

// A typed message starts at p: plausible type and length, and if it ends inside the chunk, another one follows.
inline bool looks_like_message(const uint8_t* p, size_t n, bool client) {
  if (n < 5) return false;
  if (!(client ? client_type(p[0]) : server_type(p[0]))) return false;
  const uint32_t len = db::be32(p + 1);
  if (len < 4 || len > kMaxMessage) return false;
  if (len + 1 < n) return (client ? client_type(p[len + 1]) : server_type(p[len + 1]));
  return true;
}

inline bool looks_like_startup(const uint8_t* p, size_t n) {
  if (n < 8) return false;
  const uint32_t len = db::be32(p), code = db::be32(p + 4);
  if (len < 8 || len > 10000) return false;
  return code == kProtocol3 || code == kSslRequest || code == kCancelRequest || code == kGssRequest;
}

// Statement text as clients send it: no control bytes but tab, CR and LF (UTF-8 passes).
inline bool statement_text(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') return false;
  }
  return n > 0;
}

// A connection seen mid-stream, on a port of no protocol: a client's whole Query or Parse first (statement
// text, NUL-terminated exactly at the message's end; a Parse's parameter types fill the rest), followed by
// nothing or another client message.
inline bool looks_like_midstream_request(const uint8_t* p, size_t n) {
  if (n < 6 || (p[0] != 'Q' && p[0] != 'P')) return false;
  const uint32_t len = db::be32(p + 1);
  if (len < 6 || len > n - 1) return false;
  const uint8_t* body = p + 5;
  const size_t blen = len - 4;
  bool ok = false;
  if (p[0] == 'Q') {
    ok = p[len] == 0 && statement_text(body, blen - 1);
  } else {
    const auto* z = static_cast<const uint8_t*>(std::memchr(body, 0, blen));
    if (z == nullptr) return false;
    const size_t name = static_cast<size_t>(z - body);
    const auto* q = static_cast<const uint8_t*>(std::memchr(z + 1, 0, blen - name - 1));
    if (q == nullptr || (name > 0 && !statement_text(body, name))) return false;
    const size_t qlen = static_cast<size_t>(q - z - 1);
    const size_t rest = blen - name - 1 - qlen - 1;  // int16 count, then int32 type oids
    ok = statement_text(z + 1, qlen) && rest >= 2 && rest == 2 + 4 * size_t{db::be16(q + 1)};
  }
  return ok && (len + 1 == n || looks_like_message(p + len + 1, n - len - 1, true));
}

// The server side of the same: whole messages up to the chunk's end, the last a ReadyForQuery (status idle,
// in a transaction or failed), which ends every response.
inline bool looks_like_midstream_response(const uint8_t* p, size_t n) {
  size_t off = 0;
  while (n - off >= 5) {
    const uint32_t len = db::be32(p + off + 1);
    if (!server_type(p[off]) || len < 4 || len > n - off - 1) return false;
    if (off + 1 + len == n) {
      return p[off] == 'Z' && len == 5 && (p[off + 5] == 'I' || p[off + 5] == 'T' || p[off + 5] == 'E');
    }
    off += 1 + len;
  }
  return false;
}

inline std::string_view cstr(const uint8_t* p, size_t n, size_t* pos) {
  const size_t b = *pos;
  if (b >= n) {
    *pos = n;
    return std::string_view(reinterpret_cast<const char*>(p + b), 0);
  }
  // memchr: statements run to hundreds of bytes, a byte loop costs three instructions each
  const auto* z = static_cast<const uint8_t*>(std::memchr(p + b, 0, n - b));
  const size_t e = z != nullptr ? static_cast<size_t>(z - p) : n;
  *pos = z != nullptr ? e + 1 : n;
  return std::string_view(reinterpret_cast<const char*>(p + b), e - b);
}

}  // namespace spanfeed::pgsql::wire
