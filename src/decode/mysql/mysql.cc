// MySQL client/server protocol decoder: handshake/login, commands, result sets, OK/EOF/ERR, prepared statements,
// 16 MiB continuation packets and the zlib compressed protocol; FIFO matching, resync on the next client command.
// Runs on a worker lcore. Allocates only in the constructor (statement table, inflate contexts, their windows).
#include <zlib.h>

#include "spanfeed/inflate.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "db_util.h"
#include "mysql.h"

#include "spanfeed/decoder.h"

namespace spanfeed {
namespace {

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
constexpr size_t kInflateContexts = 8;      // compressed packets being inflated at once, per worker
constexpr size_t kInflateOut = 16384;       // inflate output block (parsed before the next block is made)
constexpr size_t kStmtWays = 4;
constexpr size_t kStmtEntries = 2048;       // prepared statements remembered per worker (all flows)
constexpr size_t kStmtText = 240;           // normalized SQL kept per statement

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

constexpr const char* kCommandNames[] = {
    "COM_SLEEP",        "COM_QUIT",           "COM_INIT_DB",       "COM_QUERY",          "COM_FIELD_LIST",
    "COM_CREATE_DB",    "COM_DROP_DB",        "COM_REFRESH",       "COM_SHUTDOWN",       "COM_STATISTICS",
    "COM_PROCESS_INFO", "COM_CONNECT",        "COM_PROCESS_KILL",  "COM_DEBUG",          "COM_PING",
    "COM_TIME",         "COM_DELAYED_INSERT", "COM_CHANGE_USER",   "COM_BINLOG_DUMP",    "COM_TABLE_DUMP",
    "COM_CONNECT_OUT",  "COM_REGISTER_SLAVE", "COM_STMT_PREPARE",  "COM_STMT_EXECUTE",   "COM_STMT_SEND_LONG_DATA",
    "COM_STMT_CLOSE",   "COM_STMT_RESET",     "COM_SET_OPTION",    "COM_STMT_FETCH",     "COM_DAEMON",
    "COM_BINLOG_DUMP_GTID", "COM_RESET_CONNECTION",
};

// Commands a client sends (server-internal ones excluded): what a resync accepts as a command boundary.
bool known_command(uint8_t c) {
  return c >= 1 && c <= 0x1F && c != 0x0B && c != 0x0F && c != 0x10 && c != 0x13 && c != 0x14 && c != 0x1D;
}
bool text_command(uint8_t c) {
  return c == kComQuery || c == kComInitDb || c == kComStmtPrepare || c == kComFieldList || c == kComCreateDb ||
         c == kComDropDb;
}
bool no_reply_command(uint8_t c) { return c == kComQuit || c == kComStmtClose || c == kComStmtSendLongData; }
bool stmt_command(uint8_t c) {
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
  uint32_t skipped = 0;     // bytes skipped while resyncing (saturates)
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
  uint8_t zctx = 0xFF;      // leased inflate context
  bool in_payload = false;
  bool cont = false;        // the current physical packet continues the logical one
  bool text_on = false;
  bool resync = true;       // framing unknown: wait for a boundary
  bool comp_raw = false;    // compressed packet carrying uncompressed payload
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

// Length-encoded integer at p[0..avail); false when it does not fit.
bool lenenc(const uint8_t* p, size_t avail, uint64_t* v, size_t* used) {
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

bool printable(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] < 0x20 || p[i] > 0x7E) return false;
  }
  return true;
}

// Greeting: [len][seq 0][0x0a]["5.7.x\0"]...
bool looks_like_greeting(const uint8_t* p, size_t n) {
  if (n < 4 + 1 + 2 + 1) return false;
  const uint32_t len = le24(p);
  if (p[3] != 0 || p[4] != 10 || len < 30 || len > 1024 || len + 4 < n) return false;
  const size_t lim = std::min<size_t>(n, 4 + len);
  size_t i = 5;
  while (i < lim && p[i] != 0) ++i;
  return i < lim && i > 5 && i - 5 <= kNameMax && printable(p + 5, i - 5);
}

// A client command packet starting at p (seq 0, known command, sane length).
bool looks_like_command(const uint8_t* p, size_t n) {
  if (n < 5) return false;
  const uint32_t len = le24(p);
  if (p[3] != 0 || len == 0 || !known_command(p[4])) return false;
  if (len + 4 == n) return true;
  if (len + 4 > n) return text_command(p[4]) || p[4] == kComStmtExecute;  // split over segments
  return false;  // followed by more bytes: pipelining is not MySQL's habit
}

// A compressed packet carrying a client command (raw or zlib) at p.
bool looks_like_compressed_command(const uint8_t* p, size_t n) {
  if (n < 11) return false;
  const uint32_t clen = le24(p);
  const uint32_t ulen = le24(p + 4);
  if (p[3] != 0 || clen == 0 || clen + 7 < n) return false;
  if (ulen == 0) return le24(p + 7) + 4 == clen && p[10] == 0 && n >= 12 && known_command(p[11]);
  return p[7] == 0x78 && ulen >= 5;
}

bool starts_with_sql_keyword(const uint8_t* p, size_t n) {
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

struct StmtEntry {
  uint32_t gen = 0;
  uint32_t id = 0;
  uint32_t hash = 0;
  uint16_t len = 0;
  uint16_t used = 0;  // 0: free
  char text[kStmtText] = {};
};

class MysqlDecoder final : public Decoder {
 public:
  explicit MysqlDecoder(const DecodeConfig& cfg) : redact_(cfg.redact_secrets) {
    stmts_.resize(kStmtEntries);
    out_.resize(kInflateOut);
    for (auto& z : zs_) {
      std::memset(&z.zs, 0, sizeof(z.zs));
      z.ok = inflateInit(&z.zs) == Z_OK;
      if (z.ok) warm_inflate(z.zs);
    }
  }
  ~MysqlDecoder() override {
    for (auto& z : zs_) {
      if (z.ok) inflateEnd(&z.zs);
    }
  }

  Protocol protocol() const override { return Protocol::kMysql; }

  static SniffResult sniff(std::span<const std::byte> chunk, Transport t) {
    if (t != Transport::kTcp) return SniffResult::kNo;
    const uint8_t* p = db::u8p(chunk);
    const size_t n = chunk.size();
    if (looks_like_greeting(p, n) && le24(p) + 4 == n) return SniffResult::kResponse;
    if (n >= 6 && le24(p) + 4 == n && p[3] == 0 && (p[4] == kComQuery || p[4] == kComStmtPrepare) &&
        starts_with_sql_keyword(p + 5, n - 5))
      return SniffResult::kRequest;
    return SniffResult::kNo;
  }

  void open(FlowContext& ctx, uint64_t /*ts*/) override {
    State& st = ctx.state<State>();
    st = State{};
    st.gen = db::next_gen(gen_);
  }

  void data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) override {
    State& st = ctx.state<State>();
    Side& sd = st.side[index_of(dir)];
    while (!bytes.empty()) {
      switch (st.mode) {
        case Mode::kEncrypted:
          ctx.counters().undecoded_bytes += bytes.size();
          return;
        case Mode::kUnknown:
          if (!detect(ctx, st, dir, bytes)) return;
          break;
        case Mode::kHandshake:
          if (!handshake(ctx, st, dir, bytes, ts)) return;
          break;
        case Mode::kCommand:
          if (sd.resync && !resync(ctx, st, dir, bytes)) return;
          if (st.compressed) {
            compressed(ctx, st, dir, bytes, ts);
          } else {
            const uint64_t off = ctx.offset(dir, bytes);
            feed(ctx, st, dir, bytes, ts, off, true, 0);
            bytes = {};
          }
          return;
      }
    }
  }

  void gap(FlowContext& ctx, Direction dir, uint64_t /*missing*/, uint64_t ts) override {
    State& st = ctx.state<State>();
    if (st.mode == Mode::kEncrypted) return;
    Side& sd = st.side[index_of(dir)];
    if (sd.msg != nullptr) sd.msg->flags |= record_flag::kGap;
    if (dir == kReq) {
      if (sd.msg != nullptr && st.mode == Mode::kCommand && sd.seq == 0) {
        // A command cut by the gap: what arrived of it is the request (its answer may still come).
        sd.msg->flags |= record_flag::kTruncated;
        end_request_packet(ctx, st, ctx.offset(kReq, {}), ts);
      } else if (sd.msg != nullptr && st.mode != Mode::kHandshake) {
        ctx.discard(sd.msg);
        sd.msg = nullptr;
      }
    } else {
      cut_response(ctx, st);
    }
    release_z(sd);
    reset_side(sd);
    sd.resync = true;
    if (st.mode == Mode::kHandshake || st.mode == Mode::kUnknown) {
      // the login exchange cannot be followed any more: wait for a command
      Side& c = st.side[0];
      if (c.msg != nullptr) {
        ctx.discard(c.msg);
        c.msg = nullptr;
      }
      st.mode = Mode::kUnknown;
    }
  }

  void fin(FlowContext& ctx, Direction dir, uint64_t ts) override {
    State& st = ctx.state<State>();
    if (dir == kResp) end_response(ctx, st, ts);
  }

  void close(FlowContext& ctx, uint64_t ts) override {
    State& st = ctx.state<State>();
    Side& r = st.side[1];
    if (r.msg == nullptr && st.mode == Mode::kCommand && !r.resync && (r.hdr_n > 0 || (r.in_payload && r.lpos == 0)))
      ctx.count_partial_at_close();  // a response cut inside its first packet header: its request times out
    end_response(ctx, st, ts);
    close_request(ctx, st, ts);
    for (Side& sd : st.side) {
      if (sd.msg != nullptr) {
        ctx.discard(sd.msg);
        sd.msg = nullptr;
      }
      release_z(sd);
    }
  }

 private:
  struct Inflater {
    z_stream zs;
    bool ok = false;
    bool used = false;
  };

  static void skip(Side& sd, size_t n) {
    sd.skipped = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{sd.skipped} + n, UINT32_MAX));
  }

  static void reset_side(Side& sd) {
    Message* m = sd.msg;
    const uint8_t z = sd.zctx;
    sd = Side{};
    sd.msg = m;
    sd.zctx = z;
  }

  void release_z(Side& sd) {
    if (sd.zctx < kInflateContexts) zs_[sd.zctx].used = false;
    sd.zctx = 0xFF;
  }

  // ---------------------------------------------------------------- detection / resync

  // Mode::kUnknown: a greeting starts the handshake, a client command the command phase.
  bool detect(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes) {
    const uint8_t* p = db::u8p(bytes);
    Side& sd = st.side[index_of(dir)];
    if (dir == kResp && !ctx.has_carry(kResp) && looks_like_greeting(p, bytes.size())) {
      st.mode = Mode::kHandshake;
      for (Side& s : st.side) {
        reset_side(s);
        s.resync = false;
      }
      return true;
    }
    if (dir == kReq && (looks_like_command(p, bytes.size()) || looks_like_compressed_command(p, bytes.size()))) {
      st.mode = Mode::kCommand;
      return true;  // resync() takes it from here
    }
    skip(sd, bytes.size());
    bytes = {};
    return false;
  }

  // Command phase, framing lost: the client side waits for a chunk starting with a command; the server side
  // waits for that command to be seen.
  bool resync(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes) {
    Side& sd = st.side[index_of(dir)];
    if (dir == kResp) {
      skip(sd, bytes.size());
      bytes = {};
      return false;
    }
    const uint8_t* p = db::u8p(bytes);
    bool comp = false;
    if (looks_like_compressed_command(p, bytes.size())) {
      comp = true;
    } else if (!looks_like_command(p, bytes.size())) {
      skip(sd, bytes.size());
      bytes = {};
      return false;
    }
    ctx.count_resync(uint64_t{sd.skipped} + st.side[1].skipped);
    st.compressed = comp;
    drop_response(ctx, st);
    for (Side& s : st.side) {
      release_z(s);
      reset_side(s);
      s.resync = false;
    }
    return true;
  }

  // ---------------------------------------------------------------- handshake (whole packets)

  bool handshake(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes, uint64_t ts) {
    Side& sd = st.side[index_of(dir)];
    if (!sd.in_payload) {
      if (!ctx.has_carry(dir)) sd.msg_start = ctx.offset(dir, bytes);
      std::span<const std::byte> out;
      const Take t = ctx.take(dir, bytes, 4, out);
      if (t == Take::kNeedMore) return false;
      if (t == Take::kNoMemory) {
        lost_handshake(ctx, st, bytes);
        return false;
      }
      sd.len = le24(db::u8p(out));
      sd.seq = db::u8p(out)[3];
      sd.in_payload = true;
    }
    const uint32_t cap = ctx.config().carry_bytes;
    const size_t want = std::min<size_t>(sd.len, cap);
    if (sd.lpos == 0) {
      std::span<const std::byte> out;
      const Take t = ctx.take(dir, bytes, want, out);
      if (t == Take::kNeedMore) return false;
      if (t == Take::kNoMemory) {
        lost_handshake(ctx, st, bytes);
        return false;
      }
      sd.lpos = 1;
      sd.left = static_cast<uint32_t>(sd.len - want);
      const uint64_t end = ctx.offset(dir, bytes) + sd.left;
      if (dir == kReq) {
        login_packet(ctx, st, db::u8p(out), out.size(), end, ts);
      } else {
        server_handshake_packet(ctx, st, db::u8p(out), out.size(), end, ts);
      }
      if (st.mode != Mode::kHandshake) {  // switched: skip what is left of this packet, then go on
        const size_t n = std::min<size_t>(sd.left, bytes.size());
        bytes = bytes.subspan(n);
        return true;
      }
    }
    const size_t n = std::min<size_t>(sd.left, bytes.size());
    bytes = bytes.subspan(n);
    sd.left -= static_cast<uint32_t>(n);
    if (sd.left == 0) {
      sd.in_payload = false;
      sd.lpos = 0;
    }
    return !bytes.empty();
  }

  // The flow ended inside a request: what arrived of it becomes a request flagged `truncated` (the builder
  // then makes it a timeout record), as HTTP does. Only a header with no command byte yet is too little.
  void close_request(FlowContext& ctx, State& st, uint64_t ts) {
    Side& c = st.side[0];
    if (st.mode == Mode::kCommand && !c.resync) {
      if (c.msg != nullptr && c.seq == 0) {
        c.msg->flags |= record_flag::kTruncated;
        end_request_packet(ctx, st, ctx.offset(kReq, {}), ts);
      } else if (c.msg == nullptr && (c.hdr_n > 0 || (c.in_payload && c.lpos == 0))) {
        ctx.count_partial_at_close();
      }
      return;
    }
    if (st.mode == Mode::kHandshake && c.msg != nullptr && c.msg->aux == kAuxLogin &&
        (c.in_payload || ctx.has_carry(kReq))) {
      Message* m = c.msg;  // the login packet was cut
      c.msg = nullptr;
      const uint64_t end = ctx.offset(kReq, {});
      m->first_ts_ns = std::min(m->first_ts_ns, ts);
      m->bytes = end - std::min(end, c.msg_start);
      m->stream_end = end;
      m->last_ts_ns = ts;
      m->flags |= record_flag::kTruncated;
      ctx.commit_request(m);
    }
  }

  void lost_handshake(FlowContext& ctx, State& st, std::span<const std::byte>& bytes) {
    ctx.count_decode_error();
    Side& c = st.side[0];
    if (c.msg != nullptr) ctx.discard(c.msg);
    c.msg = nullptr;
    st.mode = Mode::kUnknown;
    for (Side& s : st.side) {
      reset_side(s);
      s.resync = true;
    }
    bytes = {};
  }

  void server_handshake_packet(FlowContext& ctx, State& st, const uint8_t* p, size_t n, uint64_t end, uint64_t ts) {
    Side& c = st.side[0];
    Side& sd = st.side[1];
    if (n > 0 && p[0] == 10 && sd.seq == 0) {  // greeting
      size_t i = 1;
      while (i < n && p[i] != 0) ++i;
      const std::string_view version(reinterpret_cast<const char*>(p + 1), i - 1);
      uint32_t caps = 0;
      if (i + 1 + 4 + 8 + 1 + 2 <= n) caps = le16(p + i + 14);
      if (i + 1 + 19 + 2 <= n) caps |= static_cast<uint32_t>(le16(p + i + 19)) << 16;
      st.server_caps = caps;
      if (c.msg == nullptr) c.msg = ctx.new_message(ts);
      if (c.msg != nullptr) {
        c.msg->fields.clear();
        c.msg->fields.add_string("command", "LOGIN");
        c.msg->fields.add_string("server_version", version, kNameMax);
        c.msg->aux = kAuxLogin;
      }
      return;
    }
    if (n > 0 && p[0] == 0xFF && sd.seq == 0 && ctx.pending_count() == 0) {
      // ERR instead of a greeting (too many connections, host blocked): a response without a request
      Message* m = ctx.new_message(ts);
      if (m == nullptr) return;
      m->bytes = end - sd.msg_start;
      m->stream_end = end;
      m->last_ts_ns = ts;
      err_fields(m->fields, p, n);
      ctx.complete_response(m, RoundtripStatus::kError);
      return;
    }
    if (ctx.pending_count() == 0) return;  // auth exchange without a login request seen
    if (n > 0 && (p[0] == 0x00 || p[0] == 0xFF)) {
      Message* m = sd.msg != nullptr ? sd.msg : ctx.new_message(ts);
      sd.msg = nullptr;
      if (m == nullptr) return;
      m->bytes = end - std::min(sd.msg_start, end);
      m->stream_end = end;
      m->last_ts_ns = ts;
      if (p[0] == 0xFF) {
        err_fields(m->fields, p, n);
        ctx.complete_response(m, RoundtripStatus::kError);
        return;
      }
      ctx.complete_response(m, RoundtripStatus::kOk);
      // command phase; the compressed protocol starts with the next packet when both sides asked for it
      st.mode = Mode::kCommand;
      st.compressed = (st.server_caps & st.client_caps & kCapCompress) != 0;
      for (Side& s : st.side) {
        reset_side(s);
        s.resync = false;
      }
      return;
    }
    // auth switch / more data: the login goes on; the response started here
    if (sd.msg == nullptr) {
      sd.msg = ctx.new_message(ts);
      if (sd.msg != nullptr) sd.msg->fields.add_bool("auth_switch", true);
    }
  }

  void login_packet(FlowContext& ctx, State& st, const uint8_t* p, size_t n, uint64_t end, uint64_t ts) {
    Side& c = st.side[0];
    if (c.seq != 1 || c.msg == nullptr || c.msg->aux != kAuxLogin || n < 4) return;  // auth continuation
    const uint32_t caps = le32(p);
    if ((caps & kCapSsl) != 0 && n <= 32) {  // SSLRequest: TLS follows
      ++ctx.counters().encrypted_flows;
      ctx.discard(c.msg);
      c.msg = nullptr;
      st.mode = Mode::kEncrypted;
      return;
    }
    Message* m = c.msg;
    c.msg = nullptr;
    m->first_ts_ns = m->last_ts_ns = ts;
    m->bytes = end - c.msg_start;
    m->stream_end = end;
    FieldList& f = m->fields;
    if ((caps & kCapProtocol41) != 0 && n >= 32) {
      size_t i = 32;
      size_t u = i;
      while (u < n && p[u] != 0) ++u;
      f.add_string("user", std::string_view(reinterpret_cast<const char*>(p + i), u - i), kNameMax);
      i = u + 1;
      uint64_t alen = 0;
      size_t used = 0;
      if ((caps & kCapPluginAuthLenenc) != 0) {
        if (!lenenc(p + std::min(i, n), n - std::min(i, n), &alen, &used)) alen = n;
      } else if ((caps & kCapSecureConnection) != 0) {
        if (i < n) alen = p[i];
        used = 1;
      } else {
        while (i + alen < n && p[i + alen] != 0) ++alen;
        used = 0;
        alen += 1;
      }
      i += used + alen;  // the auth response: never exported
      if ((caps & kCapConnectWithDb) != 0 && i < n) {
        size_t e = i;
        while (e < n && p[e] != 0) ++e;
        f.add_string("database", std::string_view(reinterpret_cast<const char*>(p + i), e - i), kNameMax);
      }
    } else if (n >= 5) {  // HandshakeResponse320: caps(2) max_packet(3) user\0 auth
      size_t u = 5;
      while (u < n && p[u] != 0) ++u;
      f.add_string("user", std::string_view(reinterpret_cast<const char*>(p + 5), u - 5), kNameMax);
    }
    if ((caps & st.server_caps & kCapCompress) != 0) f.add_bool("compressed", true);
    st.deprecate_eof = (caps & st.server_caps & kCapDeprecateEof) != 0;
    st.client_caps = caps;  // kept for the switch to the compressed protocol
    (void)redact_;  // the auth response is never exported, whatever redact_secrets says
    ctx.commit_request(m);
  }

  // ---------------------------------------------------------------- compressed protocol

  void compressed(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes, uint64_t ts) {
    Side& sd = st.side[index_of(dir)];
    while (!bytes.empty() && !sd.resync) {
      if (sd.comp_left == 0) {
        if (!ctx.has_carry(dir)) sd.comp_start = ctx.offset(dir, bytes);
        std::span<const std::byte> out;
        const Take t = ctx.take(dir, bytes, 7, out);
        if (t == Take::kNeedMore) return;
        if (t == Take::kNoMemory) {
          lose_sync(ctx, st, dir, bytes);
          return;
        }
        const uint8_t* h = db::u8p(out);
        sd.comp_left = le24(h);
        sd.comp_raw = le24(h + 4) == 0;
        release_z(sd);
        if (!sd.comp_raw) {
          for (uint8_t i = 0; i < kInflateContexts; ++i) {
            if (zs_[i].ok && !zs_[i].used) {
              zs_[i].used = true;
              sd.zctx = i;
              inflateReset(&zs_[i].zs);
              break;
            }
          }
          if (sd.zctx == 0xFF) {  // no inflate context free: this packet cannot be decoded
            ctx.count_decode_error();
            lose_sync(ctx, st, dir, bytes);
            return;
          }
        }
        continue;
      }
      const size_t n = std::min<size_t>(sd.comp_left, bytes.size());
      std::span<const std::byte> in = bytes.first(n);
      bytes = bytes.subspan(n);
      sd.comp_left -= static_cast<uint32_t>(n);
      const uint64_t comp_end = ctx.offset(dir, bytes) + sd.comp_left;
      if (sd.zctx == 0xFF && !sd.comp_raw) continue;  // bytes after the deflate stream ended: ignored
      if (sd.comp_raw) {
        ctx.content(dir, in, false);  // the rules see the payload, not the compressed framing
        feed(ctx, st, dir, in, ts, sd.comp_start, false, comp_end);
        continue;
      }
      z_stream& z = zs_[sd.zctx].zs;
      z.next_in = const_cast<Bytef*>(reinterpret_cast<const Bytef*>(in.data()));
      z.avail_in = static_cast<uInt>(in.size());
      bool done = false;
      while (!done) {
        z.next_out = reinterpret_cast<Bytef*>(out_.data());
        z.avail_out = static_cast<uInt>(out_.size());
        const int rc = inflate(&z, Z_NO_FLUSH);
        const size_t produced = out_.size() - z.avail_out;
        if (produced > 0) {
          ctx.content(dir, std::span<const std::byte>(out_.data(), produced), false);  // what the rules scan
          feed(ctx, st, dir, std::span<const std::byte>(out_.data(), produced), ts, sd.comp_start, false, comp_end);
          if (sd.resync) return;
        }
        if (rc == Z_STREAM_END) {
          release_z(sd);
          done = true;
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
          ctx.count_decode_error();  // corrupt deflate data: resync on the next command
          lose_sync(ctx, st, dir, bytes);
          return;
        } else if (z.avail_in == 0 && z.avail_out != 0) {
          done = true;  // needs the next chunk
        }
      }
      if (sd.comp_left == 0 && sd.zctx != 0xFF) {
        release_z(sd);
        ctx.count_decode_error();  // the packet ended before its deflate stream
        lose_sync(ctx, st, dir, bytes);
        return;
      }
    }
  }

  void lose_sync(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes) {
    Side& sd = st.side[index_of(dir)];
    if (dir == kReq) {
      if (sd.msg != nullptr) ctx.discard(sd.msg);
      sd.msg = nullptr;
    } else {
      cut_response(ctx, st);
    }
    release_z(sd);
    reset_side(sd);
    sd.resync = true;
    skip(sd, bytes.size());
    bytes = {};
  }

  // ---------------------------------------------------------------- packet layer (command phase)

  // Packet bytes of `dir`. exact: stream offsets are off0 + index; else (compressed) a message spans
  // [off0, off_end) of the compressed packets it came in.
  void feed(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte> bytes, uint64_t ts, uint64_t off0,
            bool exact, uint64_t off_end) {
    Side& sd = st.side[index_of(dir)];
    const uint8_t* p = db::u8p(bytes);
    size_t i = 0;
    const size_t n = bytes.size();
    while (i < n && !sd.resync) {
      if (!sd.in_payload) {
        if (sd.hdr_n == 0 && !sd.cont) sd.pkt_start = exact ? off0 + i : off0;
        while (sd.hdr_n < 4 && i < n) sd.hdr[sd.hdr_n++] = p[i++];
        if (sd.hdr_n < 4) return;
        sd.hdr_n = 0;
        sd.len = le24(sd.hdr);
        sd.left = sd.len;
        sd.in_payload = true;
        if (!sd.cont) {
          sd.seq = sd.hdr[3];
          sd.lpos = 0;
          sd.head_n = 0;
          sd.text_on = false;
          sd.text_total = 0;
        }
        if (sd.len == 0) {
          end_physical(ctx, st, dir, exact ? off0 + i : off_end, ts);
          continue;
        }
      }
      if (i == n) return;  // the chunk ended right after a header: the payload comes next time
      const size_t k = std::min<size_t>(sd.left, n - i);
      const uint8_t* q = p + i;
      if (sd.lpos < kHead) {
        const size_t h = std::min<size_t>(kHead - sd.lpos, k);
        std::memcpy(sd.head + sd.lpos, q, h);
        sd.head_n = static_cast<uint8_t>(sd.lpos + h);
      }
      if (sd.lpos == 0) first_byte(ctx, st, dir, q[0], ts);
      if (sd.text_on) stream_text(sd, q, k);
      sd.lpos = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{sd.lpos} + k, UINT32_MAX));
      sd.left -= static_cast<uint32_t>(k);
      i += k;
      if (sd.msg != nullptr) sd.msg->last_ts_ns = ts;
      if (sd.left == 0) end_physical(ctx, st, dir, exact ? off0 + i : off_end, ts);
    }
  }

  void stream_text(Side& sd, const uint8_t* q, size_t k) {
    // bytes q[0..k) sit at logical positions [lpos, lpos + k); text starts at text_from
    size_t skip = sd.lpos >= sd.text_from ? 0 : sd.text_from - sd.lpos;
    if (skip >= k || sd.msg == nullptr) return;
    const size_t avail = k - skip;
    sd.text_total += static_cast<uint32_t>(avail);
    const size_t cap = sd.text_from == 1 ? kQueryMax : kErrorMax;
    size_t room = cap > sd.text_len ? cap - sd.text_len : 0;
    room = std::min(room, sd.msg->fields.arena_left());
    const size_t take = std::min(room, avail);
    if (take > 0) {
      sd.msg->fields.raw_append(std::string_view(reinterpret_cast<const char*>(q + skip), take));
      sd.text_len = static_cast<uint16_t>(sd.text_len + take);
    }
  }

  void end_physical(FlowContext& ctx, State& st, Direction dir, uint64_t end, uint64_t ts) {
    Side& sd = st.side[index_of(dir)];
    sd.in_payload = false;
    if (sd.len == kMaxPayload) {
      sd.cont = true;  // the logical packet goes on in the next physical one
      return;
    }
    sd.cont = false;
    if (dir == kReq) {
      end_request_packet(ctx, st, end, ts);
    } else {
      end_response_packet(ctx, st, end, ts);
    }
  }

  // First payload byte of a logical packet: start messages, decide what text to stream.
  void first_byte(FlowContext& ctx, State& st, Direction dir, uint8_t b, uint64_t ts) {
    Side& sd = st.side[index_of(dir)];
    if (dir == kReq) {
      if (sd.seq != 0) return;  // LOCAL INFILE data, auth continuation: not a command
      if (sd.msg != nullptr) ctx.discard(sd.msg);
      // A new command: whatever the server side had in progress is over.
      finish_lazy(ctx, st);
      if (st.side[1].resync) {
        Side& s = st.side[1];
        ctx.count_resync(0);
        release_z(s);
        reset_side(s);
        s.resync = false;
      }
      sd.msg = ctx.new_message(ts);
      sd.msg_start = sd.pkt_start;
      if (sd.msg == nullptr) return;
      sd.msg->aux = b;
      sd.msg->fields.add_string("command", b < std::size(kCommandNames) ? kCommandNames[b] : "COM_UNKNOWN");
      if (text_command(b)) {
        sd.text_on = true;
        sd.text_from = 1;
        sd.text_len = 0;
        sd.text_begin = static_cast<uint16_t>(sd.msg->fields.raw_begin());
      }
      return;
    }
    if (sd.msg == nullptr) {
      sd.msg = ctx.new_message(ts);
      sd.msg_start = sd.pkt_start;
      st.rows = 0;
      st.columns = 0;
      st.error = false;
      if (st.resp != Resp::kFirst) st.resp = Resp::kFirst;
    }
    if (b == 0xFF && sd.msg != nullptr && !sd.msg->fields.has("error_code")) {
      sd.text_on = true;
      sd.text_from = 3;
      sd.text_len = 0;
      sd.text_begin = static_cast<uint16_t>(sd.msg->fields.raw_begin());
    }
  }

  uint8_t pending_command(FlowContext& ctx) {
    Message* q = ctx.front_request();
    return q == nullptr ? 0 : static_cast<uint8_t>(q->aux & 0xFF);
  }

  void end_request_packet(FlowContext& ctx, State& st, uint64_t end, uint64_t ts) {
    Side& sd = st.side[0];
    Message* m = sd.msg;
    if (sd.seq != 0 || m == nullptr) return;
    sd.msg = nullptr;
    m->bytes = end - sd.msg_start;
    m->stream_end = end;
    m->last_ts_ns = ts;
    const uint8_t cmd = static_cast<uint8_t>(m->aux);
    FieldList& f = m->fields;
    if (sd.text_on) {
      sd.text_on = false;
      std::string_view text;
      if (sd.text_len > 0) {
        const char* key = cmd == kComInitDb || cmd == kComCreateDb || cmd == kComDropDb ? "database"
                          : cmd == kComFieldList                                       ? "table"
                                                                                       : "query";
        size_t len = sd.text_len;
        if (cmd == kComFieldList) {  // table\0wildcard
          const char* a = f.string_of(Field{nullptr, FieldKind::kString, sd.text_begin, sd.text_len, 0}).data();
          const void* z = std::memchr(a, 0, len);
          if (z != nullptr) len = static_cast<size_t>(static_cast<const char*>(z) - a);
        }
        size_t begin = sd.text_begin;
        if (cmd == kComQuery && len >= 2) {
          // CLIENT_QUERY_ATTRIBUTES (MySQL 8): parameter_count 0, parameter_set_count 1 precede the text
          const std::string_view t = f.string_of(Field{nullptr, FieldKind::kString, sd.text_begin, sd.text_len, 0});
          if (t[0] == '\0' && t[1] == '\1') begin += 2;
        }
        f.raw_abort(sd.text_begin + len);
        f.raw_commit(key, begin, FieldKind::kString);
        text = f.get_string(key);
        if (key == std::string_view("query") || cmd == kComStmtPrepare) {
          if (sd.text_total > sd.text_len) {
            f.add_uint("query_bytes", sd.text_total);
            m->flags |= record_flag::kTruncated;
          }
          add_normalized(f, text);
        }
      }
    }
    if (stmt_command(cmd) && sd.head_n >= 5) {
      const uint32_t id = le32(sd.head + 1);
      f.add_uint("statement_id", id);
      if (const StmtEntry* e = find_stmt(st.gen, id)) {
        f.add_string("normalized", std::string_view(e->text, e->len));
      }
      if (cmd == kComStmtClose) forget_stmt(st.gen, id);
    }
    if (no_reply_command(cmd)) {
      ctx.emit_no_reply(m);
      return;
    }
    ctx.commit_request(m);
  }

  static void add_normalized(FieldList& f, std::string_view text) {
    char buf[kQueryMax];
    const size_t n = db::normalize_sql(text, buf, sizeof(buf), db::SqlDialect::kMysql);
    f.add_string("normalized", std::string_view(buf, n));
  }

  // ---------------------------------------------------------------- responses

  static void ok_fields(FieldList& f, const uint8_t* p, size_t n) {
    uint64_t affected = 0, last_id = 0;
    size_t u1 = 0, u2 = 0;
    if (n < 1 || !lenenc(p + 1, n - 1, &affected, &u1) || !lenenc(p + 1 + u1, n - 1 - u1, &last_id, &u2)) return;
    f.add_uint("affected_rows", affected);
    f.add_uint("last_insert_id", last_id);
    const size_t w = 1 + u1 + u2 + 2;
    if (w + 2 <= n) f.add_uint("warnings", le16(p + w));
  }

  static uint16_t ok_status(const uint8_t* p, size_t n) {
    uint64_t v = 0;
    size_t u1 = 0, u2 = 0;
    if (n < 1 || !lenenc(p + 1, n - 1, &v, &u1) || !lenenc(p + 1 + u1, n - 1 - u1, &v, &u2)) return 0;
    const size_t s = 1 + u1 + u2;
    return s + 2 <= n ? le16(p + s) : 0;
  }

  // ERR from a whole packet (handshake phase).
  static void err_fields(FieldList& f, const uint8_t* p, size_t n) {
    if (n < 3) return;
    f.add_uint("error_code", le16(p + 1));
    size_t i = 3;
    if (n >= 9 && p[3] == '#') {
      f.add_string("sql_state", std::string_view(reinterpret_cast<const char*>(p + 4), 5));
      i = 9;
    }
    f.add_string("error_message", std::string_view(reinterpret_cast<const char*>(p + i), n - i), kErrorMax);
  }

  void end_response_packet(FlowContext& ctx, State& st, uint64_t end, uint64_t ts) {
    Side& sd = st.side[1];
    Message* m = sd.msg;
    if (m == nullptr) return;
    m->bytes = end - std::min(end, sd.msg_start);
    m->stream_end = end;
    const uint8_t* h = sd.head;
    const size_t hn = sd.head_n;
    const uint32_t len = sd.lpos;  // logical length (saturated)
    const uint8_t b0 = hn > 0 ? h[0] : 0;
    FieldList& f = m->fields;
    const uint8_t cmd = pending_command(ctx);
    const bool is_eof = b0 == 0xFE && len < 9;
    const bool is_term = b0 == 0xFE && len < kMaxPayload;  // EOF, or OK with the 0xfe header (DEPRECATE_EOF)

    if (b0 == 0xFF) {  // ERR: ends the response whatever state it was in
      if (hn >= 3) f.add_uint("error_code", le16(h + 1));
      if (sd.text_on) {
        sd.text_on = false;
        size_t b = sd.text_begin;
        size_t l = sd.text_len;
        const std::string_view t = f.string_of(Field{nullptr, FieldKind::kString, sd.text_begin, sd.text_len, 0});
        std::string_view state;
        if (l >= 6 && t[0] == '#') {
          state = t.substr(1, 5);
          b += 6;
          l -= 6;
        }
        f.raw_commit("error_message", b, FieldKind::kString);
        if (!state.empty()) f.add_string("sql_state", state);
      }
      finish_response(ctx, st, ts, RoundtripStatus::kError);
      return;
    }
    switch (st.resp) {
      case Resp::kFirst:
        if (b0 == 0x00 && cmd == kComStmtPrepare && hn >= 9) {
          const uint32_t id = le32(h + 1);
          const uint16_t cols = le16(h + 5), params = le16(h + 7);
          f.add_uint("statement_id", id);
          f.add_uint("columns", cols);
          f.add_uint("params", params);
          if (hn >= 12) f.add_uint("warnings", le16(h + 10));
          remember_stmt(ctx, st.gen, id);
          st.remaining = static_cast<uint32_t>(params) + cols;
          st.params = params;
          st.columns = cols;
          if (st.remaining == 0) {
            finish_response(ctx, st, ts, RoundtripStatus::kOk);
          } else {
            st.resp = Resp::kPrepDefs;
          }
          return;
        }
        if (b0 == 0x00 && len >= 7) {
          ok_fields(f, h, hn);
          if (ok_status(h, hn) & kStatusMoreResults) return;  // next result of a multi-statement
          finish_response(ctx, st, ts, RoundtripStatus::kOk);
          return;
        }
        if (is_eof || cmd == kComStatistics || cmd == kComBinlogDump || cmd == kComBinlogDumpGtid) {
          finish_response(ctx, st, ts, RoundtripStatus::kOk);
          return;
        }
        if (cmd == kComFieldList) {
          st.columns = 1;
          st.resp = Resp::kFieldList;
          return;
        }
        if (b0 == 0xFB) {
          f.add_bool("local_infile", true);
          st.resp = Resp::kUntilOk;
          return;
        }
        if (cmd == kComChangeUser || cmd == kComResetConnection) {
          st.resp = Resp::kUntilOk;  // auth switch / more data, then OK or ERR
          return;
        }
        if (cmd == kComStmtFetch) {
          st.rows = 1;
          st.resp = Resp::kRows;
          return;
        }
        {
          uint64_t ncol = 0;
          size_t used = 0;
          if (!lenenc(h, hn, &ncol, &used) || ncol == 0) {
            ctx.count_decode_error();
            finish_response(ctx, st, ts, RoundtripStatus::kOk);
            m->flags |= record_flag::kTruncated;
            return;
          }
          st.columns += static_cast<uint32_t>(ncol);
          if (len > used && hn > used && h[used] == 0) {
            // MariaDB with MARIADB_CLIENT_CACHE_METADATA: a "metadata follows"
            // byte after the count; 0 = the client has the column definitions
            // cached and none are sent (prepared statement executes).
            st.resp = Resp::kAfterDefs;
          } else {
            st.remaining = static_cast<uint32_t>(ncol);
            st.resp = Resp::kDefs;
          }
        }
        return;
      case Resp::kDefs:
        if (--st.remaining == 0) st.resp = Resp::kAfterDefs;
        return;
      case Resp::kAfterDefs:
        if (b0 == 0xFE && len == 5) {  // classic EOF after the definitions
          st.resp = Resp::kRows;
          return;
        }
        if (is_term) {  // DEPRECATE_EOF: terminator right away (empty result set)
          st.deprecate_eof = true;
          end_rows(ctx, st, ts);
          return;
        }
        st.deprecate_eof = true;
        ++st.rows;
        st.resp = Resp::kRows;
        return;
      case Resp::kRows:
        if (is_term) {
          end_rows(ctx, st, ts);
          return;
        }
        ++st.rows;
        return;
      case Resp::kPrepDefs:
        if (is_eof) return;  // EOF between the parameter and the column definitions
        if (st.remaining > 0 && --st.remaining == 0) {
          if (st.deprecate_eof) {
            finish_response(ctx, st, ts, RoundtripStatus::kOk);
          } else {
            st.resp = Resp::kMaybeEof;  // an EOF follows in classic mode; a new command ends it otherwise
          }
        }
        return;
      case Resp::kMaybeEof:
        if (is_eof) {
          finish_response(ctx, st, ts, RoundtripStatus::kOk);
        } else {
          ctx.count_decode_error();
        }
        return;
      case Resp::kFieldList:
        if (is_term) {
          finish_response(ctx, st, ts, RoundtripStatus::kOk);
          return;
        }
        ++st.columns;
        return;
      case Resp::kUntilOk:
        if (b0 == 0x00) {
          ok_fields(f, h, hn);
          finish_response(ctx, st, ts, RoundtripStatus::kOk);
        }
        return;
    }
  }

  void end_rows(FlowContext& ctx, State& st, uint64_t ts) {
    Side& sd = st.side[1];
    const uint8_t* h = sd.head;
    const size_t hn = sd.head_n;
    uint16_t status = 0;
    if (sd.lpos == 5 && hn >= 5) {
      status = le16(h + 3);
    } else {
      status = ok_status(h, hn);
    }
    if (hn >= 3 && sd.lpos == 5 && sd.msg != nullptr) sd.msg->fields.set_uint("warnings", le16(h + 1));
    if (status & kStatusMoreResults) {
      st.resp = Resp::kFirst;
      return;
    }
    finish_response(ctx, st, ts, RoundtripStatus::kOk);
  }

  void finish_response(FlowContext& ctx, State& st, uint64_t ts, RoundtripStatus status) {
    Side& sd = st.side[1];
    Message* m = sd.msg;
    sd.msg = nullptr;
    st.resp = Resp::kFirst;
    if (m == nullptr) return;
    m->last_ts_ns = ts;
    FieldList& f = m->fields;
    const uint8_t cmd = pending_command(ctx);
    if (st.columns > 0 && cmd != kComStmtPrepare) {
      f.add_uint("columns", st.columns);
      if (cmd != kComFieldList) f.add_uint("rows", st.rows);
    }
    st.columns = 0;
    st.rows = 0;
    ctx.complete_response(m, status);
  }

  // The prepare response ended without its (classic) EOF: a new command came.
  void finish_lazy(FlowContext& ctx, State& st) {
    Side& sd = st.side[1];
    if (st.resp == Resp::kMaybeEof && sd.msg != nullptr && !sd.in_payload) {
      finish_response(ctx, st, sd.msg->last_ts_ns, RoundtripStatus::kOk);
    }
  }

  void end_response(FlowContext& ctx, State& st, uint64_t ts) {
    Side& sd = st.side[1];
    if (sd.msg == nullptr) return;
    if (st.resp == Resp::kMaybeEof && !sd.in_payload) {
      finish_response(ctx, st, sd.msg->last_ts_ns, RoundtripStatus::kOk);
      return;
    }
    sd.msg->flags |= record_flag::kTruncated;
    const bool err = sd.in_payload && sd.head_n > 0 && sd.head[0] == 0xFF;  // an ERR packet was cut
    finish_response(ctx, st, ts, err ? RoundtripStatus::kError : RoundtripStatus::kOk);
  }

  // The response direction lost bytes (gap, undecodable compressed data): a response in progress is
  // recorded with what arrived (status from it, rows so far) flagged `gap`, as an HTTP body cut by a gap;
  // requests still waiting lost their answers in the hole.
  void cut_response(FlowContext& ctx, State& st) {
    Side& sd = st.side[1];
    if (sd.msg != nullptr) {
      Message* m = sd.msg;
      const uint64_t end = ctx.offset(kResp, {});
      m->flags |= record_flag::kGap;
      m->bytes = end - std::min(end, sd.msg_start);
      m->stream_end = end;
      const bool err = sd.in_payload && sd.head_n > 0 && sd.head[0] == 0xFF;
      finish_response(ctx, st, m->last_ts_ns, err ? RoundtripStatus::kError : RoundtripStatus::kOk);
    }
    drop_response(ctx, st);
    ctx.flush_pending(TimeoutCause::kGap, record_flag::kGap);
  }

  void drop_response(FlowContext& ctx, State& st) {
    Side& sd = st.side[1];
    if (sd.msg != nullptr) ctx.discard(sd.msg);
    sd.msg = nullptr;
    st.resp = Resp::kFirst;
    st.rows = 0;
    st.columns = 0;
  }

  // ---------------------------------------------------------------- prepared statements

  StmtEntry* set_of(uint32_t gen, uint32_t id) {
    const uint32_t h = (gen * 0x9E3779B1u) ^ (id * 0x85EBCA6Bu);
    return &stmts_[(h % (kStmtEntries / kStmtWays)) * kStmtWays];
  }
  const StmtEntry* find_stmt(uint32_t gen, uint32_t id) {
    StmtEntry* s = set_of(gen, id);
    for (size_t w = 0; w < kStmtWays; ++w) {
      if (s[w].used != 0 && s[w].gen == gen && s[w].id == id) return &s[w];
    }
    return nullptr;
  }
  void forget_stmt(uint32_t gen, uint32_t id) {
    StmtEntry* s = set_of(gen, id);
    for (size_t w = 0; w < kStmtWays; ++w) {
      if (s[w].used != 0 && s[w].gen == gen && s[w].id == id) s[w].used = 0;
    }
  }
  void remember_stmt(FlowContext& ctx, uint32_t gen, uint32_t id) {
    Message* q = ctx.front_request();
    if (q == nullptr) return;
    const std::string_view text = q->fields.get_string("normalized");
    StmtEntry* s = set_of(gen, id);
    StmtEntry* victim = &s[0];
    for (size_t w = 0; w < kStmtWays; ++w) {
      if (s[w].used != 0 && s[w].gen == gen && s[w].id == id) {
        victim = &s[w];
        break;
      }
      if (s[w].used == 0) victim = &s[w];
      else if (victim->used != 0 && s[w].used < victim->used) victim = &s[w];  // oldest stamp goes
    }
    victim->gen = gen;
    victim->id = id;
    victim->hash = db::fnv1a(text);
    victim->len = static_cast<uint16_t>(std::min(text.size(), kStmtText));
    std::memcpy(victim->text, text.data(), victim->len);
    victim->used = static_cast<uint16_t>(++stamp_ == 0 ? ++stamp_ : stamp_);
    q->fields.add_uint("statement_id", id);
  }

  bool redact_;
  uint32_t gen_ = 0;
  uint16_t stamp_ = 0;
  std::vector<StmtEntry> stmts_;
  std::vector<std::byte> out_;
  std::array<Inflater, kInflateContexts> zs_{};
};

}  // namespace

namespace mysql {

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg) { return std::make_unique<MysqlDecoder>(cfg); }
SniffResult confirm(std::span<const std::byte> chunk, Transport t) { return MysqlDecoder::sniff(chunk, t); }

}  // namespace mysql

}  // namespace spanfeed
