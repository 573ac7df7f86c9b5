// TLS decoder: record layer, handshake reassembly, one record per handshake and one per closed session.
// Runs on a worker lcore; per-flow state lives in the builder's preallocated array. Handshake messages that
// do not arrive in one piece are joined in a per-worker pool of buffers made at start-up (Buffers); the only
// allocation after start-up is OpenSSL's, while it parses a server's certificates (crypto.cc).
//
// The shape (docs/records.md, "tls"):
//   both directions -> TLS records (5-byte headers; an SSLv2 CLIENT-HELLO as the client's first record) ->
//   plaintext handshake messages (split across records and segments: joined) -> ClientHello fields on the
//   request, ServerHello / Certificate / ServerKeyExchange fields on the response;
//   the handshake ends (record emitted) at the server's Finished (TLS <= 1.2: its first handshake record after
//   its ChangeCipherSpec), at the client's first encrypted record after the ServerHello (TLS 1.3: its Finished),
//   or at an alert that ends it (status `error`);
//   after it: application_data records counted per direction, reported by a `close` record when the flow ends.
#include "tls.h"

#include <cstring>
#include <vector>

#include "spanfeed/decoder.h"
#include "tls_wire.h"

namespace spanfeed {
namespace {

using tls::Crypto;
using tls::Reader;

constexpr Direction kReq = Direction::kClientToServer;
constexpr Direction kResp = Direction::kServerToClient;
constexpr uint32_t kNone = UINT32_MAX;
constexpr uint8_t kSslv2Hello = 0x80;   // pseudo handshake type: an SSLv2 CLIENT-HELLO record
constexpr size_t kMaxCerts = 4;         // certificates of a chain described (the rest counted)
constexpr size_t kArenaReserve = 96;    // response arena kept free of certificates: resumption, alert names

// The worker's buffers for handshake messages that arrive in pieces (ClientHellos over one record,
// certificate chains): `count` of `bytes` each, leased per direction while a message is incomplete.
class Buffers {
 public:
  // Not zeroed: a buffer is written before it is read, and untouched buffers stay out of the footprint.
  Buffers(uint32_t count, uint32_t bytes)
      : bytes_(bytes), mem_(std::make_unique_for_overwrite<std::byte[]>(static_cast<size_t>(count) * bytes)) {
    free_.reserve(count);
    for (uint32_t i = count; i > 0; --i) free_.push_back(i - 1);
  }
  uint32_t lease() {
    if (free_.empty()) return kNone;
    const uint32_t i = free_.back();
    free_.pop_back();
    return i;
  }
  void release(uint32_t& i) {
    if (i == kNone) return;
    free_.push_back(i);
    i = kNone;
  }
  std::byte* data(uint32_t i) { return mem_.get() + static_cast<size_t>(i) * bytes_; }
  uint32_t bytes() const { return bytes_; }

 private:
  uint32_t bytes_;
  std::unique_ptr<std::byte[]> mem_;
  std::vector<uint32_t> free_;  // capacity for every buffer: never reallocates
};

// One direction's record layer.
struct Side {
  uint64_t seen = 0;          // stream bytes so far (lost ones included)
  uint64_t app_bytes = 0;     // application_data payload bytes after the handshake
  uint32_t app_records = 0;
  uint32_t rec_left = 0;      // payload bytes left in the current record (0: a header comes next)
  uint32_t hs_left = 0;       // body bytes left of the current handshake message
  uint32_t hs_len = 0;        // its body length
  uint32_t buf = kNone;       // pooled buffer joining it (kNone: parsed in place, or skipped)
  uint8_t hdr[5] = {};        // record header being read
  uint8_t hdr_len = 0;
  uint8_t type = 0;           // content type of the current record
  uint8_t hs_hdr[4] = {};     // handshake header being read (may straddle records)
  uint8_t hs_hdr_len = 0;
  uint8_t hs_type = 0;
  uint8_t alert[2] = {};
  uint8_t alert_len = 0;
  bool in_msg = false;        // inside a handshake message's body
  bool keep = false;          // ... which is wanted (parsed), else skipped by count
  bool records = false;       // a record header was read (only the client's first may be SSLv2)
  bool encrypted = false;     // sent ChangeCipherSpec (TLS <= 1.2): later handshake / alert records are encrypted
  bool lost = false;          // record boundaries lost (gap across a header, garbage): the rest is skipped
  bool hs_lost = false;       // handshake message boundaries lost (gap inside a handshake record)
};

enum class Phase : uint8_t {
  kHandshake,    // handshake in progress: nothing emitted yet
  kEstablished,  // handshake record emitted (ok): application data counted until the close record
  kEnded,        // handshake record emitted with an error / truncated, or nothing to decode: bytes ignored
};

struct State {
  Side side[2];
  Message* req = nullptr;    // ClientHello fields, held until the handshake ends
  Message* resp = nullptr;   // server fields, held likewise
  uint64_t ch_ts = 0;        // first client handshake record (latency start)
  uint64_t done_ts = 0;      // handshake end
  uint64_t sid_hash = 0;     // client's session id (resumption by id: echoed)
  uint16_t version = 0;      // negotiated (ServerHello), 0 before
  uint16_t record_version = 0;  // of the client's first record
  uint8_t sid_len = 0;
  Phase phase = Phase::kHandshake;
  bool ticket_offered = false;  // client: non-empty session_ticket extension
  bool server_hello = false;    // a ServerHello (not a HelloRetryRequest)
  bool retry = false;           // a HelloRetryRequest was sent
  bool psk = false;             // server accepted a PSK (TLS 1.3 resumption)
  bool sid_echo = false;        // server echoed the client's non-empty session id
  bool server_done = false;     // ServerHelloDone seen (a full TLS <= 1.2 handshake)
  bool abbreviated = false;     // server's ChangeCipherSpec came without ServerHelloDone: resumed (<= 1.2)
  bool ticket_issued = false;   // NewSessionTicket in clear (TLS <= 1.2)
  bool gap = false;             // bytes lost somewhere in the flow
};
static_assert(sizeof(State) <= kDecoderStateBytes);
static_assert(std::is_trivially_copyable_v<State>);

Side& side_of(State& st, Direction d) { return st.side[d == kReq ? 0 : 1]; }

class TlsDecoder final : public Decoder {
 public:
  explicit TlsDecoder(const DecodeConfig& cfg)
      : bufs_(static_cast<uint32_t>(cfg.option(Protocol::kTls, "buffers")),
              static_cast<uint32_t>(cfg.option(Protocol::kTls, "max_handshake_bytes"))) {
    scratch_.reserve(FieldList::kArenaBytes + 512);
  }

  Protocol protocol() const override { return Protocol::kTls; }

  // A TLS record carrying a ClientHello (request) or ServerHello (response), or an SSLv2 CLIENT-HELLO.
  static SniffResult sniff(std::span<const std::byte> chunk, Transport t) {
    if (t != Transport::kTcp || chunk.size() < 6) return SniffResult::kNo;
    const auto* p = reinterpret_cast<const uint8_t*>(chunk.data());
    if (p[0] == tls::kHandshake && p[1] == 3 && p[2] <= 4) {
      const uint32_t len = static_cast<uint32_t>(p[3]) << 8 | p[4];
      if (len < 4 || len > tls::kMaxRecordPayload) return SniffResult::kNo;
      if (chunk.size() >= 11 && p[6] != 0) return SniffResult::kNo;  // hello bodies are < 64 KiB in practice
      if (p[5] == tls::kClientHello && (chunk.size() < 10 || p[9] == 3)) return SniffResult::kRequest;
      if (p[5] == tls::kServerHello && (chunk.size() < 10 || p[9] == 3)) return SniffResult::kResponse;
      return SniffResult::kNo;
    }
    // SSLv2 record header (2 bytes, high bit set), CLIENT-HELLO, version 0x0002 or 0x03xx.
    const uint32_t len = (p[0] & 0x7fu) << 8 | p[1];
    if ((p[0] & 0x80) != 0 && len >= 9 && p[2] == 1 && ((p[3] == 0 && p[4] == 2) || (p[3] == 3 && p[4] <= 4)))
      return SniffResult::kRequest;
    return SniffResult::kNo;
  }

  void open(FlowContext& ctx, uint64_t /*ts*/) override { ctx.state<State>() = State{}; }

  void data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) override {
    State& st = ctx.state<State>();
    Side& s = side_of(st, dir);
    s.seen += bytes.size();
    while (!bytes.empty()) {
      if (st.phase == Phase::kEnded || s.lost) {
        ctx.counters().undecoded_bytes += bytes.size();
        return;
      }
      if (s.rec_left == 0) {
        if (!header(ctx, st, dir, bytes, ts)) return;
        continue;
      }
      const size_t n = bytes.size() < s.rec_left ? bytes.size() : s.rec_left;
      payload(ctx, st, dir, bytes.first(n), ts);
      s.rec_left -= static_cast<uint32_t>(n);
      bytes = bytes.subspan(n);
    }
  }

  void gap(FlowContext& ctx, Direction dir, uint64_t missing, uint64_t /*ts*/) override {
    State& st = ctx.state<State>();
    Side& s = side_of(st, dir);
    s.seen += missing;
    st.gap = true;
    if (st.phase == Phase::kEnded || s.lost) return;
    if (s.hdr_len == 0 && s.rec_left >= missing && s.rec_left > 0) {
      // Inside a record's payload: the record layer goes on after it.
      ctx.count_gap_absorbed();
      s.rec_left -= static_cast<uint32_t>(missing);
      if (s.type == tls::kApplicationData && st.phase == Phase::kEstablished) s.app_bytes += missing;
      if (s.type == tls::kAlert) s.alert_len = 0;
      if (s.type == tls::kHandshake && !s.encrypted) {
        if (s.in_msg && missing <= s.hs_left) {  // this message is lost, the next one starts where it ends
          s.hs_left -= static_cast<uint32_t>(missing);
          s.keep = false;
          bufs_.release(s.buf);
          if (s.hs_left == 0) s.in_msg = false;
        } else {
          s.hs_lost = true;
          bufs_.release(s.buf);
        }
      }
      return;
    }
    // Across a record header: this direction's record boundaries are gone (its app bytes stop counting).
    s.lost = true;
    bufs_.release(s.buf);
  }

  void fin(FlowContext& /*ctx*/, Direction /*dir*/, uint64_t /*ts*/) override {}

  void close(FlowContext& ctx, uint64_t ts) override {
    State& st = ctx.state<State>();
    for (Side& s : st.side) bufs_.release(s.buf);
    if (st.phase == Phase::kHandshake) {
      if (st.req == nullptr && st.side[0].in_msg && st.side[0].hs_type == tls::kClientHello)
        ctx.count_partial_at_close();  // the flow ended inside the ClientHello: too little for a record
      // What was seen of the handshake (a ClientHello alone becomes a `timeout` record at close).
      finish(ctx, st, ts, RecordStatus::kOk, record_flag::kTruncated);
      return;
    }
    if (st.phase != Phase::kEstablished) return;
    // The session's record: application data per direction after the handshake.
    Message* m = ctx.new_message(ts);
    if (m == nullptr) return;
    m->fields.add_string("kind", "close");
    m->fields.add_uint("app_bytes_client", st.side[0].app_bytes);
    m->fields.add_uint("app_bytes_server", st.side[1].app_bytes);
    m->fields.add_uint("app_records_client", st.side[0].app_records);
    m->fields.add_uint("app_records_server", st.side[1].app_records);
    m->fields.add_uint("duration_us", ts > st.ch_ts ? (ts - st.ch_ts) / kNsPerUs : 0);
    if (st.gap) m->flags |= record_flag::kGap;
    m->stream_end = m->bytes = st.side[0].seen;  // the client's whole stream
    m->last_ts_ns = ts;
    ctx.emit_no_reply(m);
  }

 private:
  // ---------------------------------------------------------------- record layer

  // Reads (part of) a record header; false when the chunk ended inside it or the bytes are no TLS.
  bool header(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes, uint64_t ts) {
    Side& s = side_of(st, dir);
    // An SSLv2 CLIENT-HELLO: the client's first byte has its high bit set (2-byte header).
    const bool v2 = dir == kReq && !s.records && (s.hdr_len > 0 ? s.hdr[0] : static_cast<uint8_t>(bytes[0])) & 0x80;
    const size_t need = v2 ? 2 : 5;
    while (s.hdr_len < need && !bytes.empty()) {
      s.hdr[s.hdr_len++] = static_cast<uint8_t>(bytes[0]);
      bytes = bytes.subspan(1);
    }
    if (s.hdr_len < need) return false;
    s.hdr_len = 0;
    const bool first = !s.records;
    s.records = true;
    if (v2) {
      const uint32_t len = (s.hdr[0] & 0x7fu) << 8 | s.hdr[1];
      if (len < 9) return garbage(ctx, st, dir, ts);
      if (st.ch_ts == 0) st.ch_ts = ts;
      st.record_version = 0x0002;
      s.type = tls::kHandshake;
      s.rec_left = len;
      start_message(ctx, st, dir, kSslv2Hello, len, ts);  // the record is the message
      return true;
    }
    const uint8_t type = s.hdr[0];
    const uint32_t len = static_cast<uint32_t>(s.hdr[3]) << 8 | s.hdr[4];
    const bool known = type >= tls::kChangeCipherSpec && type <= tls::kHeartbeat;
    if (!known || s.hdr[1] != 3 || s.hdr[2] > 4 || len > tls::kMaxRecordPayload ||
        (len == 0 && type != tls::kApplicationData))
      return garbage(ctx, st, dir, ts);
    s.type = type;
    s.rec_left = len;
    if (dir == kReq && first) st.record_version = static_cast<uint16_t>(s.hdr[1] << 8 | s.hdr[2]);
    if (dir == kReq && type == tls::kHandshake && st.ch_ts == 0) st.ch_ts = ts;
    const bool tls13 = st.version >= tls::kTls13;
    switch (type) {
      case tls::kChangeCipherSpec:
        // TLS 1.3 sends a dummy one (middlebox compatibility): nothing changes.
        if (!tls13) s.encrypted = true;
        if (dir == kResp && st.server_hello && !st.server_done && !tls13) st.abbreviated = true;
        break;
      case tls::kHandshake:
        // TLS <= 1.2: the server's first encrypted handshake record is its Finished: the handshake is done.
        if (s.encrypted && dir == kResp && st.phase == Phase::kHandshake) finish(ctx, st, ts, RecordStatus::kOk, 0);
        break;
      case tls::kAlert:
        if (s.encrypted && st.phase == Phase::kHandshake) alert(ctx, st, dir, 0xff, 0xff, ts);  // in the handshake
        s.alert_len = 0;
        break;
      case tls::kApplicationData:
        if (st.phase == Phase::kEstablished) {
          ++s.app_records;
        } else if (tls13 && dir == kReq && st.server_hello && st.phase == Phase::kHandshake) {
          // TLS 1.3: the client's first encrypted record after the ServerHello is its Finished.
          finish(ctx, st, ts, RecordStatus::kOk, 0);
          s.type = 0;  // not application data: skipped, not counted
          return true;
        }
        break;
      default: break;
    }
    return true;
  }

  void payload(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte> piece, uint64_t ts) {
    Side& s = side_of(st, dir);
    switch (s.type) {
      case tls::kApplicationData:
        if (st.phase == Phase::kEstablished) s.app_bytes += piece.size();
        return;
      case tls::kHandshake:
        if (!s.encrypted && !s.hs_lost && st.phase == Phase::kHandshake) handshake(ctx, st, dir, piece, ts);
        return;
      case tls::kAlert:
        if (s.encrypted) return;
        for (std::byte b : piece) {
          s.alert[s.alert_len++] = static_cast<uint8_t>(b);
          if (s.alert_len == 2) {
            s.alert_len = 0;
            alert(ctx, st, dir, s.alert[0], s.alert[1], ts);
            if (st.phase == Phase::kEnded) return;
          }
        }
        return;
      default: return;  // ChangeCipherSpec, heartbeat
    }
  }

  bool garbage(FlowContext& ctx, State& st, Direction dir, uint64_t ts) {
    ctx.count_decode_error();
    side_of(st, dir).lost = true;
    bufs_.release(side_of(st, dir).buf);
    if (st.phase == Phase::kHandshake && (st.req != nullptr || st.resp != nullptr)) {
      finish(ctx, st, ts, RecordStatus::kOk, record_flag::kTruncated);
    } else if (st.phase == Phase::kHandshake) {
      st.phase = Phase::kEnded;  // no TLS at all: nothing to record
    }
    return false;
  }

  // ---------------------------------------------------------------- handshake messages

  static bool wanted(Direction dir, uint8_t type) {
    if (dir == kReq) return type == tls::kClientHello || type == kSslv2Hello;
    return type == tls::kServerHello || type == tls::kCertificate || type == tls::kServerKeyExchange;
  }

  void start_message(FlowContext& ctx, State& st, Direction dir, uint8_t type, uint32_t len, uint64_t ts) {
    Side& s = side_of(st, dir);
    s.in_msg = true;
    s.hs_type = type;
    s.hs_len = s.hs_left = len;
    s.keep = wanted(dir, type);
    if (s.keep && len > bufs_.bytes()) {
      ++ctx.counters().carry_overflow;  // over decode.tls.max_handshake_bytes: skipped by count
      s.keep = false;
    }
    if (len == 0) end_message(ctx, st, dir, {}, ts);
  }

  void handshake(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte> piece, uint64_t ts) {
    Side& s = side_of(st, dir);
    while (!piece.empty() && st.phase == Phase::kHandshake) {
      if (!s.in_msg) {
        while (s.hs_hdr_len < 4 && !piece.empty()) {
          s.hs_hdr[s.hs_hdr_len++] = static_cast<uint8_t>(piece[0]);
          piece = piece.subspan(1);
        }
        if (s.hs_hdr_len < 4) return;
        s.hs_hdr_len = 0;
        start_message(ctx, st, dir, s.hs_hdr[0],
                      static_cast<uint32_t>(s.hs_hdr[1]) << 16 | static_cast<uint32_t>(s.hs_hdr[2]) << 8 | s.hs_hdr[3],
                      ts);
        continue;
      }
      const size_t n = piece.size() < s.hs_left ? piece.size() : s.hs_left;
      std::span<const std::byte> whole;
      if (s.keep) {
        if (s.buf == kNone && n == s.hs_left && s.hs_left == s.hs_len) {
          whole = piece.first(n);  // all of it in this piece: parsed in place
        } else {
          if (s.buf == kNone && (s.buf = bufs_.lease()) == kNone) {
            ++ctx.counters().carry_pool_exhausted;  // every buffer of the worker is joining a message
            s.keep = false;
          }
          if (s.buf != kNone) std::memcpy(bufs_.data(s.buf) + (s.hs_len - s.hs_left), piece.data(), n);
        }
      }
      s.hs_left -= static_cast<uint32_t>(n);
      piece = piece.subspan(n);
      if (s.hs_left > 0) continue;
      if (s.keep && s.buf != kNone) whole = {bufs_.data(s.buf), s.hs_len};
      end_message(ctx, st, dir, whole, ts);
      bufs_.release(s.buf);
    }
  }

  // A whole handshake message of `dir` (`body` empty when not wanted or not kept).
  void end_message(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte> body, uint64_t ts) {
    Side& s = side_of(st, dir);
    s.in_msg = false;
    const bool kept = s.keep;
    const uint8_t type = s.hs_type;
    if (dir == kReq) {
      if (type == tls::kClientHello || type == kSslv2Hello) client_hello(ctx, st, type, body, kept, ts);
      return;
    }
    switch (type) {
      case tls::kServerHello: server_hello(ctx, st, body, kept, ts); return;
      case tls::kCertificate:
        if (kept && st.resp != nullptr && st.version < tls::kTls13) certificates(ctx, st, body, ts);
        return;
      case tls::kServerKeyExchange:  // ECDHE: curve_type 3 (named_curve) + the group
        if (kept && st.resp != nullptr && body.size() >= 3 && static_cast<uint8_t>(body[0]) == 3 &&
            !st.resp->fields.has("group")) {
          const uint16_t g = static_cast<uint16_t>(static_cast<uint8_t>(body[1]) << 8 | static_cast<uint8_t>(body[2]));
          const std::string_view name = tls::group_name(g);
          char buf[6] = {'0', 'x'};
          tls::hex4(g, buf + 2);
          st.resp->fields.add_string("group", name.empty() ? std::string_view(buf, 6) : name);
        }
        return;
      case tls::kServerHelloDone: st.server_done = true; return;
      case tls::kNewSessionTicket: st.ticket_issued = true; return;
      default: return;
    }
  }

  void client_hello(FlowContext& ctx, State& st, uint8_t type, std::span<const std::byte> body, bool kept,
                    uint64_t ts) {
    if (st.req != nullptr) {
      if (!st.retry || st.server_hello) return;  // a second ClientHello in clear outside a retry: ignored
      st.req->fields.clear();                    // after a HelloRetryRequest: the second one is the record's
    } else {
      st.req = ctx.new_message(st.ch_ts != 0 ? st.ch_ts : ts);
      if (st.req == nullptr) return;
    }
    FieldList& f = st.req->fields;
    char vbuf[8];
    f.add_string("kind", "handshake");
    f.add_string("record_version", tls::version_name(st.record_version, vbuf));
    st.req->last_ts_ns = ts;
    tls::ClientInfo info;
    const bool ok = kept && (type == kSslv2Hello ? tls::parse_sslv2_hello(body, f, &info)
                                                 : tls::parse_client_hello(body, f, crypto_, &info));
    if (!ok) {
      if (kept) ctx.count_decode_error();
      st.req->flags |= record_flag::kTruncated;  // too long, no buffer, or malformed: its fields are missing
      f.add_uint("hello_bytes", side_of(st, kReq).hs_len + (type == kSslv2Hello ? 2u : 4u));
      return;
    }
    st.sid_hash = info.sid_hash;
    st.sid_len = info.sid_len;
    st.ticket_offered = info.ticket;
  }

  void server_hello(FlowContext& ctx, State& st, std::span<const std::byte> body, bool kept, uint64_t ts) {
    if (st.server_hello) return;  // one per handshake
    if (st.resp == nullptr) {
      st.resp = ctx.new_message(ts);
      if (st.resp == nullptr) return;
    } else if (st.retry) {
      st.resp->fields.clear();  // the ServerHello after a HelloRetryRequest replaces it
    }
    st.resp->last_ts_ns = ts;
    tls::ServerInfo info;
    if (!kept || !tls::parse_server_hello(body, st.resp->fields, crypto_, &info)) {
      if (kept) ctx.count_decode_error();
      st.resp->flags |= record_flag::kTruncated;
      st.server_hello = true;
      return;
    }
    st.version = info.version;
    if (info.retry) {
      st.retry = true;  // a second ClientHello and the real ServerHello follow
      return;
    }
    st.server_hello = true;
    st.psk = info.psk;
    st.sid_echo = info.sid_len > 0 && info.sid_len == st.sid_len && info.sid_hash == st.sid_hash;
    if (st.retry) st.resp->fields.add_bool("hello_retry", true);
  }

  void certificates(FlowContext& ctx, State& st, std::span<const std::byte> body, uint64_t ts) {
    FieldList& f = st.resp->fields;
    scratch_.clear();
    uint32_t total = 0, described = 0;
    uint8_t leaf = 3;
    const size_t left = f.arena_left() > kArenaReserve ? f.arena_left() - kArenaReserve : 0;
    const bool ok = crypto_.describe_chain(body, static_cast<int64_t>(ts / kNsPerSec), kMaxCerts, left, scratch_,
                                           &total, &described, &leaf);
    if (!ok) ctx.count_decode_error();
    f.add_uint("cert_count", total);
    if (described > 0 && !f.add_raw_json("certificates", scratch_)) ++ctx.counters().field_truncated;
    if (described < total && total <= kMaxCerts) ++ctx.counters().field_truncated;
    if (total > 0 && leaf < 3) f.add_bool("cert_expired", leaf != 0);  // leaf expired or not yet valid
  }

  void alert(FlowContext& ctx, State& st, Direction dir, uint8_t level, uint8_t desc, uint64_t ts) {
    if (st.phase != Phase::kHandshake) return;  // after the handshake: its end, not the record's
    // The alert goes on its sender's message; a record needs a response to be `error`, so a client alert
    // before any server message gets an empty one.
    Message*& m = dir == kReq ? st.req : st.resp;
    if (m == nullptr) m = ctx.new_message(ts);
    if (st.resp == nullptr) st.resp = ctx.new_message(ts);
    if (m != nullptr) {
      if (level == 0xff) {
        m->fields.add_string("alert", "encrypted");
      } else {
        const std::string_view name = tls::alert_name(desc);
        char buf[6] = {'0', 'x'};
        tls::hex4(desc, buf + 2);
        m->fields.add_string("alert", name.empty() ? std::string_view(buf, 6) : name);
        m->fields.add_string("alert_level", level == 1 ? "warning" : level == 2 ? "fatal" : "unknown");
      }
    }
    // A fatal alert (or a warning that closes: close_notify, user_canceled) ends the handshake.
    if (level != 1 || desc == 0 || desc == 90) finish(ctx, st, ts, RecordStatus::kError, 0);
  }

  // The handshake's record: the request (ClientHello) and response (server fields) paired now.
  void finish(FlowContext& ctx, State& st, uint64_t ts, RecordStatus status, uint32_t flags) {
    if (st.phase != Phase::kHandshake) return;
    st.phase = status == RecordStatus::kOk && flags == 0 ? Phase::kEstablished : Phase::kEnded;
    st.done_ts = ts;
    for (Side& s : st.side) bufs_.release(s.buf);
    if (st.gap) flags |= record_flag::kGap;
    Message* req = st.req;
    Message* resp = st.resp;
    st.req = st.resp = nullptr;
    if (req != nullptr) {
      req->flags |= flags;
      req->stream_end = req->bytes = st.side[0].seen;
      ctx.commit_request(req);
    }
    if (resp == nullptr) return;  // the ClientHello waits: a `timeout` record
    FieldList& f = resp->fields;
    if (st.server_hello) {
      const bool tls13 = st.version >= tls::kTls13;
      const bool resumed = tls13 ? st.psk : st.abbreviated;
      f.add_bool("resumed", resumed);
      if (resumed) f.add_string("resumption", tls13 ? "psk" : st.ticket_offered ? "ticket" : "session_id");
      if (!tls13) f.add_bool("session_id_echoed", st.sid_echo);
      if (st.ticket_issued) f.add_bool("ticket_issued", true);
    }
    resp->flags |= flags;
    resp->last_ts_ns = ts;
    resp->stream_end = resp->bytes = st.side[1].seen;
    ctx.complete_response(resp, status);
  }

  Buffers bufs_;
  Crypto crypto_;
  std::string scratch_;  // certificate JSON being built (reserved: does not grow)
};

}  // namespace

namespace tls {

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg) { return std::make_unique<TlsDecoder>(cfg); }
SniffResult confirm(std::span<const std::byte> chunk, Transport t) { return TlsDecoder::sniff(chunk, t); }

}  // namespace tls

}  // namespace spanfeed
