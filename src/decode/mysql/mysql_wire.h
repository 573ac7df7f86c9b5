// MySQL wire format, internal to src/decode/mysql/: constants, command classes, per-flow state, packet checks.
// Shared by the decoder's files; any thread (constant data and pure functions); no allocation.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "db_util.h"

#include "spanfeed/decoder.h"

namespace spanfeed::mysql {

using db::le16;
using db::le24;
using db::le32;

constexpr Direction kReq = Direction::kClientToServer;
constexpr Direction kResp = Direction::kServerToClient;

constexpr uint32_t kMaxPayload = 0xFFFFFF;  // a packet of this length continues in the next one (>= 16 MiB)
constexpr size_t kHead = 24;                // first bytes of each packet kept (OK: <= 23 bytes before its info)
constexpr size_t kQueryMax = 448;           // query text kept (normalized fits beside it in the field arena)
constexpr size_t kErrorMax = 256;           // error message kept
constexpr size_t kNameMax = 64;             // user / database / server version / table
constexpr uint32_t kInflateContexts = 8;    // compressed packets being inflated at once, per worker
constexpr uint8_t kNoZctx = 0xFF;           // Side::zctx: no inflate context leased
constexpr size_t kInflateOut = 16384;       // inflate output block (parsed before the next block is made)
constexpr size_t kStmtEntries = 2048;       // prepared statements remembered per worker (all flows)
constexpr size_t kNormalizedMemo = 256;     // statement texts whose normalized text is remembered per worker

// Capability flags.
constexpr uint32_t kCapConnectWithDb = 0x8;
constexpr uint32_t kCapCompress = 0x20;
constexpr uint32_t kCapProtocol41 = 0x200;
constexpr uint32_t kCapSsl = 0x800;
constexpr uint32_t kCapSecureConnection = 0x8000;
constexpr uint32_t kCapPluginAuthLenenc = 0x200000;
constexpr uint32_t kCapDeprecateEof = 0x1000000;
constexpr uint16_t kStatusMoreResults = 0x0008;

// Commands.
constexpr uint8_t kComQuit = 0x01;
constexpr uint8_t kComInitDb = 0x02;
constexpr uint8_t kComQuery = 0x03;
constexpr uint8_t kComFieldList = 0x04;
constexpr uint8_t kComCreateDb = 0x05;
constexpr uint8_t kComDropDb = 0x06;
constexpr uint8_t kComStatistics = 0x09;
constexpr uint8_t kComPing = 0x0E;
constexpr uint8_t kComChangeUser = 0x11;
constexpr uint8_t kComBinlogDump = 0x12;
constexpr uint8_t kComStmtPrepare = 0x16;
constexpr uint8_t kComStmtExecute = 0x17;
constexpr uint8_t kComStmtSendLongData = 0x18;
constexpr uint8_t kComStmtClose = 0x19;
constexpr uint8_t kComStmtReset = 0x1A;
constexpr uint8_t kComStmtFetch = 0x1C;
constexpr uint8_t kComBinlogDumpGtid = 0x1E;
constexpr uint8_t kComResetConnection = 0x1F;
constexpr uint32_t kAuxLogin = 0x100;  // Message::aux of the login request (command bytes are < 0x100)

// Commands a client sends (server-internal ones excluded): what a resync accepts as a command boundary.
inline bool known_command(uint8_t c) {
  return c >= 1 && c <= 0x1F && c != 0x0B && c != 0x0F && c != 0x10 && c != 0x13 && c != 0x14 && c != 0x1D;
}
inline bool text_command(uint8_t c) {
  return c == kComQuery || c == kComInitDb || c == kComStmtPrepare || c == kComFieldList || c == kComCreateDb ||
         c == kComDropDb;
}
inline bool no_reply_command(uint8_t c) { return c == kComQuit || c == kComStmtClose || c == kComStmtSendLongData; }
inline bool stmt_command(uint8_t c) {
  return c == kComStmtExecute || c == kComStmtClose || c == kComStmtReset || c == kComStmtSendLongData ||
         c == kComStmtFetch;
}

enum class Mode : uint8_t {
  kUnknown,    // no greeting seen: waiting for a client command (mid-stream capture)
  kHandshake,  // greeting seen: login exchange, whole packets
  kCommand,    // command phase
  kEncrypted,  // TLS after an SSLRequest: not decoded
};

enum class Resp : uint8_t {
  kFirst,       // next server packet starts a response (or the next result set of a multi-result response)
  kDefs,        // column definitions (`remaining` left), then EOF / rows
  kAfterDefs,   // the packet after the column definitions: EOF (classic) or a row / terminator (DEPRECATE_EOF)
  kRows,        // rows until EOF / OK / ERR
  kPrepDefs,    // STMT_PREPARE OK: parameter + column definitions (`remaining`), EOFs in between (classic)
  kMaybeEof,    // prepare definitions done: an EOF may follow (classic) or the response is over
  kFieldList,   // COM_FIELD_LIST: definitions until EOF
  kUntilOk,     // LOCAL INFILE / auth switch in CHANGE_USER: wait for OK / ERR
};

struct Side {
  Message* msg = nullptr;
  uint64_t msg_start = 0;   // stream offset where the message began
  uint64_t pkt_start = 0;   // ... where the current logical packet began
  uint64_t comp_start = 0;  // compressed packet: its wire start
  uint32_t len = 0;         // current physical packet payload length
  uint32_t left = 0;        // of it still to come
  uint32_t lpos = 0;        // position in the logical packet (saturates)
  uint32_t comp_left = 0;   // compressed payload bytes still to come
  uint16_t text_begin = 0;  // raw field being streamed into msg's arena
  uint16_t text_len = 0;
  uint32_t text_total = 0;  // text bytes seen (kept or not)
  uint8_t hdr[4] = {};
  uint8_t hdr_n = 0;
  uint8_t seq = 0;          // sequence id of the logical packet
  uint8_t head_n = 0;
  uint8_t text_from = 0;    // payload offset where the text starts
  uint8_t zctx = kNoZctx;   // leased inflate context (InflatePool index)
  bool in_payload = false;
  bool cont = false;        // the current physical packet continues the logical one
  bool text_on = false;
  bool comp_raw = false;    // compressed packet carrying uncompressed payload
  Resync resync{.lost = true};  // framing unknown: wait for a boundary (both sides' skipped bytes count)
  uint8_t head[kHead] = {};
};

struct State {
  Side side[2];
  uint32_t gen = 0;            // flow generation: key of the statement table
  uint32_t server_caps = 0;
  uint32_t client_caps = 0;
  uint32_t remaining = 0;      // definitions left
  uint32_t columns = 0;
  uint32_t params = 0;
  uint64_t rows = 0;
  Mode mode = Mode::kUnknown;
  Resp resp = Resp::kFirst;
  bool compressed = false;
  bool deprecate_eof = false;  // known from the handshake; else learned from result sets
  bool error = false;          // the response in progress is an error
};
static_assert(sizeof(State) <= kDecoderStateBytes, "mysql state must fit the per-flow slot");
static_assert(std::is_trivially_copyable_v<State>, "per-flow state lives in raw bytes");

// Length-encoded integer at p[0..avail); false when it does not fit.
inline bool lenenc(const uint8_t* p, size_t avail, uint64_t* v, size_t* used) {
  if (avail == 0) return false;
  const uint8_t b = p[0];
  size_t n = 0;
  if (b < 0xFB) {
    *v = b;
    *used = 1;
    return true;
  }
  if (b == 0xFC) n = 2;
  else if (b == 0xFD) n = 3;
  else if (b == 0xFE) n = 8;
  else return false;  // 0xFB NULL, 0xFF: not an integer
  if (avail < 1 + n) return false;
  uint64_t r = 0;
  for (size_t i = 0; i < n; ++i) r |= static_cast<uint64_t>(p[1 + i]) << (8 * i);
  *v = r;
  *used = 1 + n;
  return true;
}

inline bool printable(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] < 0x20 || p[i] > 0x7E) return false;
  }
  return true;
}

// Greeting: [len][seq 0][0x0a]["5.7.x\0"]...
inline bool looks_like_greeting(const uint8_t* p, size_t n) {
  if (n < 4 + 1 + 2 + 1) return false;
  const uint32_t len = le24(p);
  if (p[3] != 0 || p[4] != 10 || len < 30 || len > 1024 || len + 4 < n) return false;
  const size_t lim = std::min<size_t>(n, 4 + len);
  size_t i = 5;
  while (i < lim && p[i] != 0) ++i;
  return i < lim && i > 5 && i - 5 <= kNameMax && printable(p + 5, i - 5);
}

// A client command packet starting at p (seq 0, known command, sane length).
inline bool looks_like_command(const uint8_t* p, size_t n) {
  if (n < 5) return false;
  const uint32_t len = le24(p);
  if (p[3] != 0 || len == 0 || !known_command(p[4])) return false;
  if (len + 4 == n) return true;
  if (len + 4 > n) return text_command(p[4]) || p[4] == kComStmtExecute;  // split over segments
  return false;  // followed by more bytes: pipelining is not MySQL's habit
}

// A compressed packet carrying a client command (raw or zlib) at p.
inline bool looks_like_compressed_command(const uint8_t* p, size_t n) {
  if (n < 11) return false;
  const uint32_t clen = le24(p);
  const uint32_t ulen = le24(p + 4);
  if (p[3] != 0 || clen == 0 || clen + 7 < n) return false;
  if (ulen == 0) return le24(p + 7) + 4 == clen && p[10] == 0 && n >= 12 && known_command(p[11]);
  return p[7] == 0x78 && ulen >= 5;
}

inline bool starts_with_sql_keyword(const uint8_t* p, size_t n) {
  static constexpr std::string_view kWords[] = {"select", "insert", "update", "delete", "set ", "show", "use ",
                                                "begin", "commit", "rollback", "create", "drop", "alter", "call",
                                                "replace", "start", "with", "desc", "explain"};
  for (std::string_view w : kWords) {
    if (n < w.size()) continue;
    size_t k = 0;
    while (k < w.size() && (p[k] | 0x20) == static_cast<uint8_t>(w[k] | 0x20)) ++k;
    if (k == w.size()) return true;
  }
  return false;
}

}  // namespace spanfeed::mysql
