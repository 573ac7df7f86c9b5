// PostgreSQL frontend/backend protocol v3 decoder: startup, SSL/GSS requests, simple and extended query (one
// roundtrip per Sync), CommandComplete / RowDescription / DataRow / ErrorResponse, ReadyForQuery ends a response.
// Runs on a worker lcore. Allocates only in the constructor (the prepared-statement table).
#include <algorithm>
#include <cstring>

#include "db_util.h"
#include "pgsql.h"
#include "pgsql_wire.h"
#include "statement_cache.h"
#include "text_memo.h"

#include "spanfeed/decoder.h"

namespace spanfeed {
namespace {

using db::be16;
using db::be32;
using namespace pgsql::wire;

constexpr Direction kReq = Direction::kClientToServer;
constexpr Direction kResp = Direction::kServerToClient;

constexpr size_t kQueryMax = 448;           // query text kept (normalized fits beside it)
constexpr size_t kNameMax = 64;
constexpr size_t kTagMax = 32;              // "INSERT 0 1234567890" and friends
constexpr size_t kStmtEntries = 1024;       // named statements remembered per worker
constexpr size_t kNormalizedMemo = 256;     // query texts whose normalized text is remembered per worker

enum class Phase : uint8_t { kHeader, kBody, kSkip, kSslAnswer };

// What a Sync-delimited batch of extended-query messages contained (bits).
constexpr uint8_t kHasParse = 1, kHasBind = 2, kHasExecute = 4, kHasDescribe = 8, kHasClose = 16;

struct Side {
  Message* msg = nullptr;
  uint64_t msg_start = 0;
  uint64_t hdr_start = 0;
  uint64_t hdr_ts = 0;  // capture time of the current message's first byte
  uint32_t len = 0;    // body length of the current message
  uint32_t skip = 0;   // body bytes to skip
  uint8_t type = 0;    // 0: untyped startup-phase message
  Phase phase = Phase::kHeader;
  bool checked = false;  // the first chunk was checked for a message boundary
  Resync resync;
};

struct State {
  Side side[2];
  uint64_t rows = 0;       // from CommandComplete tags
  uint64_t data_rows = 0;  // DataRow messages
  uint32_t gen = 0;
  uint16_t columns = 0;
  uint8_t batch = 0;       // kHas* of the extended batch in progress
  uint8_t tag_len = 0;
  bool started = false;    // the client's startup-phase message was seen (or skipped: mid-stream)
  bool ssl_answer = false; // the server's next byte answers an SSL/GSS request
  bool encrypted = false;
  bool error = false;
  bool has_tag = false;
  bool req_lost = false;   // the client side lost bytes (a gap, or skipped to resync) since its last record began
  char tag[kTagMax] = {};
};
static_assert(sizeof(State) <= kDecoderStateBytes, "pgsql state must fit the per-flow slot");

class PgsqlDecoder final : public Decoder {
 public:
  explicit PgsqlDecoder(const DecodeConfig& /*cfg*/) : stmts_(kStmtEntries) {}

  Protocol protocol() const override { return Protocol::kPgsql; }

  static SniffResult sniff(std::span<const std::byte> chunk, Transport t) {
    if (t != Transport::kTcp) return SniffResult::kNo;
    const uint8_t* p = db::u8p(chunk);
    const size_t n = chunk.size();
    if (looks_like_startup(p, n) && be32(p) == n) return SniffResult::kRequest;
    if (looks_like_midstream_request(p, n)) return SniffResult::kRequest;
    if (looks_like_midstream_response(p, n)) return SniffResult::kResponse;
    return SniffResult::kNo;
  }

  void open(FlowContext& ctx, uint64_t /*ts*/) override {
    State& st = ctx.state<State>();
    st = State{};
    st.gen = db::next_gen(gen_);
  }

  void data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) override {
    State& st = ctx.state<State>();
    if (st.encrypted) {
      ctx.counters().undecoded_bytes += bytes.size();
      return;
    }
    Side& sd = st.side[index_of(dir)];
    if (!sd.checked) {
      sd.checked = true;
      const uint8_t* p = db::u8p(bytes);
      const bool ok = dir == kReq ? (looks_like_startup(p, bytes.size()) || looks_like_message(p, bytes.size(), true))
                                  : (st.ssl_answer || looks_like_message(p, bytes.size(), false));
      if (!ok) sd.resync.lose();
      if (dir == kReq && !looks_like_startup(p, bytes.size())) st.started = true;  // mid-stream
    }
    if (sd.resync.lost) {
      const uint8_t* p = db::u8p(bytes);
      if (!looks_like_message(p, bytes.size(), dir == kReq)) {
        sd.resync.add(bytes.size());
        return;
      }
      sd.resync.found(ctx);
      Message* keep = sd.msg;  // a batch kept open across the gap (lose_sync)
      const uint64_t keep_start = sd.msg_start;
      sd = Side{};
      sd.checked = true;
      sd.msg = keep;
      sd.msg_start = keep_start;
      if (dir == kReq) st.started = true;
    }
    while (!bytes.empty() && !st.encrypted) {
      switch (sd.phase) {
        case Phase::kSslAnswer: {
          const uint8_t b = db::u8p(bytes)[0];
          bytes = bytes.subspan(1);
          sd.phase = Phase::kHeader;
          ssl_answer(ctx, st, b, ts);
          break;
        }
        case Phase::kHeader: {
          if (whole_message(ctx, st, sd, dir, bytes, ts)) break;
          if (dir == kResp && st.ssl_answer && !ctx.has_carry(dir)) {
            st.ssl_answer = false;
            sd.phase = Phase::kSslAnswer;
            break;
          }
          if (!ctx.has_carry(dir)) {
            sd.hdr_start = ctx.offset(dir, bytes);
            sd.hdr_ts = ts;
          }
          const bool untyped = dir == kReq && !st.started;
          std::span<const std::byte> out;
          const Take t = ctx.take(dir, bytes, untyped ? 4 : 5, out);
          if (t == Take::kNeedMore) return;
          if (t == Take::kNoMemory) {
            lose_sync(ctx, st, dir, bytes);
            return;
          }
          const uint8_t* h = db::u8p(out);
          sd.type = untyped ? 0 : h[0];
          const uint32_t len = be32(untyped ? h : h + 1);
          if (len < 4 || len > kMaxMessage || (untyped && len < 8) ||
              (!untyped && !(dir == kReq ? client_type(sd.type) : server_type(sd.type)))) {
            ctx.count_decode_error();
            lose_sync(ctx, st, dir, bytes);
            return;
          }
          sd.len = len - 4;
          if ((dir == kResp && sd.type == 'D') || sd.type == 'd' || (dir == kReq && sd.type == 'p')) {
            // rows and COPY data are counted, passwords never read (a client's 'D' is Describe: read)
            if (dir == kResp && sd.type == 'D') {
              begin_response(ctx, st, ts);
              ++st.data_rows;
            }
            sd.skip = sd.len;
            sd.phase = Phase::kSkip;
          } else {
            sd.phase = Phase::kBody;
          }
          if (sd.len == 0 && sd.phase == Phase::kSkip) sd.phase = Phase::kHeader;
          if (sd.len == 0 && sd.phase == Phase::kBody) {  // Sync, ReadyForQuery...: nothing more to wait for
            sd.phase = Phase::kHeader;
            const uint64_t end = ctx.offset(dir, bytes);
            static const uint8_t kNone[1] = {0};
            if (dir == kReq) {
              client_message(ctx, st, kNone, 0, false, end, ts);
            } else {
              server_message(ctx, st, kNone, 0, end, ts);
            }
          }
          break;
        }
        case Phase::kBody: {
          const size_t want = std::min<size_t>(sd.len, ctx.config().carry_bytes);
          std::span<const std::byte> out;
          const Take t = ctx.take(dir, bytes, want, out);
          if (t == Take::kNeedMore) return;
          if (t == Take::kNoMemory) {
            lose_sync(ctx, st, dir, bytes);
            return;
          }
          sd.skip = static_cast<uint32_t>(sd.len - want);
          const uint64_t end = ctx.offset(dir, bytes) + sd.skip;
          sd.phase = sd.skip > 0 ? Phase::kSkip : Phase::kHeader;
          if (dir == kReq) {
            client_message(ctx, st, db::u8p(out), out.size(), sd.skip > 0, end, ts);
          } else {
            server_message(ctx, st, db::u8p(out), out.size(), end, ts);
          }
          break;
        }
        case Phase::kSkip: {
          const size_t n = std::min<size_t>(sd.skip, bytes.size());
          bytes = bytes.subspan(n);
          sd.skip -= static_cast<uint32_t>(n);
          if (sd.skip == 0) sd.phase = Phase::kHeader;
          break;
        }
      }
      if (sd.msg != nullptr) sd.msg->last_ts_ns = ts;
    }
    if (st.encrypted) ctx.counters().undecoded_bytes += bytes.size();
  }

  void gap(FlowContext& ctx, Direction dir, uint64_t missing, uint64_t /*ts*/) override {
    State& st = ctx.state<State>();
    if (st.encrypted) return;
    Side& sd = st.side[index_of(dir)];
    if (sd.phase == Phase::kSkip && missing <= sd.skip) {  // inside DataRow / COPY / a long body: skip it
      sd.skip -= static_cast<uint32_t>(missing);
      if (sd.skip == 0) sd.phase = Phase::kHeader;
      if (sd.msg != nullptr) sd.msg->flags |= record_flag::kGap;
      ctx.count_gap_absorbed();
      return;
    }
    std::span<const std::byte> none;
    lose_sync(ctx, st, dir, none);
  }

  void fin(FlowContext& ctx, Direction dir, uint64_t ts) override {
    State& st = ctx.state<State>();
    if (dir == kResp) end_response(ctx, st, ts);
  }

  void close(FlowContext& ctx, uint64_t ts) override {
    State& st = ctx.state<State>();
    if (st.encrypted) return;
    Side& r = st.side[1];
    if (r.msg == nullptr && !r.resync.lost && mid_message(ctx, r, kResp)) {
      // The flow ended inside the response's first message: an answer cut short (truncated), or, with no
      // request waiting, bytes too few to make a record of.
      if (ctx.pending_count() > 0) {
        begin_response(ctx, st, ts);
      } else {
        ctx.count_partial_at_close();
      }
    }
    end_response(ctx, st, ts);
    close_request(ctx, st, ts);
  }

 private:
  // Typed messages whose header and body are both in `bytes` (nothing kept, bodies within the carry cap), one
  // after the other while they last: the steps of the header, body and skip phases for each (most messages are
  // a few bytes, and a chunk holds dozens: one pass of data()'s loop for them all, their offsets counted from
  // the chunk's). False, nothing consumed: the first is anything else (startup phase, SSL answer, a bad header,
  // a message split over chunks); a later one such ends the run, data()'s loop takes it. (Nothing a whole
  // message does keeps bytes, starts the startup phase or an SSL answer: what was checked first holds.)
  bool whole_message(FlowContext& ctx, State& st, Side& sd, Direction dir, std::span<const std::byte>& bytes,
                     uint64_t ts) {
    if (bytes.size() < 5 || ctx.has_carry(dir) || (dir == kReq ? !st.started : st.ssl_answer)) return false;
    const uint8_t* const first = db::u8p(bytes);
    const uint64_t base = ctx.offset(dir, bytes);
    const size_t cap = ctx.config().carry_bytes;
    const uint8_t* h = first;
    size_t left = bytes.size();
    do {
      const uint8_t type = h[0];
      const uint32_t len = be32(h + 1);
      if (len < 4 || len > kMaxMessage || !(dir == kReq ? client_type(type) : server_type(type))) break;
      const size_t body = len - 4;
      if (left - 5 < body || body > cap) break;
      const uint64_t at = base + static_cast<uint64_t>(h - first);
      const uint8_t* const p = h + 5;
      h += 5 + body;
      left -= 5 + body;
      sd.hdr_start = at;
      sd.hdr_ts = ts;
      sd.type = type;
      sd.len = static_cast<uint32_t>(body);
      sd.skip = 0;
      if (dir == kResp) {
        if (type == 'D') {  // counted, as kSkip does
          begin_response(ctx, st, ts);
          ++st.data_rows;
          continue;
        }
        if (type == 'd') continue;  // COPY data: skipped, as kSkip does
        if (type != 'Z' && type != 'C' && type != 'T' && type != 'E') {  // what server_message does with the rest
          open_response(ctx, st, type, ts);
          continue;
        }
      } else if (type == 'd' || type == 'p') {  // skipped, as kSkip does (passwords never read)
        continue;
      }
      static const uint8_t kNone[1] = {0};
      const uint64_t end = at + 5 + body;
      if (dir == kReq) {
        client_message(ctx, st, body == 0 ? kNone : p, body, false, end, ts);
      } else {
        server_message(ctx, st, body == 0 ? kNone : p, body, end, ts);
      }
    } while (left >= 5);
    if (h == first) return false;
    bytes = bytes.subspan(static_cast<size_t>(h - first));
    return true;
  }

  void lose_sync(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes) {
    Side& sd = st.side[index_of(dir)];
    // An extended-query batch open on the client side (Parse/Bind/Execute... before its Sync) stays open,
    // flagged `gap`: the messages after the resync and its Sync complete it, and its answer pairs with it.
    // Dropped, its remainder made a record of its own without the flag (a pipelined executemany whose
    // middle was lost came out as a clean record with a third of its bytes).
    Message* keep = dir == kReq ? sd.msg : nullptr;
    const uint64_t keep_start = sd.msg_start;
    if (keep != nullptr) {
      keep->flags |= record_flag::kGap;
    } else if (sd.msg != nullptr) {
      ctx.discard(sd.msg);
    }
    if (dir == kReq) {
      if (keep == nullptr) {
        st.batch = 0;
        st.req_lost = true;  // the next record may have begun in the lost bytes (request())
      }
    } else {
      ctx.flush_pending(TimeoutCause::kGap, record_flag::kGap);
      reset_response(st);
      // An extended-query batch still open on the client side may have had answers already (a Flush: asyncpg
      // prepares with Parse+Describe+Flush, then Binds and a Sync): they were in the hole, and its response is
      // what comes after it.
      if (st.side[0].msg != nullptr) st.side[0].msg->flags |= record_flag::kGap;
    }
    sd = Side{};
    sd.checked = true;
    sd.msg = keep;
    sd.msg_start = keep_start;
    sd.resync.lose(bytes.size());
    bytes = {};
  }

  static bool mid_message(FlowContext& ctx, const Side& sd, Direction dir) {
    return sd.phase == Phase::kBody || sd.phase == Phase::kSkip || (sd.phase == Phase::kHeader && ctx.has_carry(dir));
  }

  // The flow ended inside a request (a message cut, or an extended-query batch without its Sync): what
  // arrived becomes a request flagged `truncated` (a timeout record), as HTTP does. A typed message cut
  // inside its 5-byte header is too little to tell (counted).
  void close_request(FlowContext& ctx, State& st, uint64_t ts) {
    Side& c = st.side[0];
    if (c.resync.lost && c.msg == nullptr) return;
    const bool cut = !c.resync.lost && mid_message(ctx, c, kReq);  // lost: only a batch kept across the gap
    if (cut && c.phase == Phase::kBody) {
      const std::span<const std::byte> kept = ctx.kept(kReq);
      const uint8_t* p = db::u8p(kept);
      const size_t n = kept.size();
      size_t pos = 0;
      if ((c.type == 'Q' || c.type == 'F') && c.msg != nullptr) {
        c.msg->fields.clear();  // as in client_message: the simple query replaces an unsynced batch
        st.batch = 0;
      }
      if (c.type == 0 && !st.started) {
        request(ctx, st, c, ts, "STARTUP");
      } else if (c.type == 'Q') {
        if (Message* m = request(ctx, st, c, ts, "QUERY")) add_query(m->fields, cstr(p, n, &pos), true, m);
      } else if (c.type == 'P') {
        Message* m = request(ctx, st, c, ts, nullptr);
        st.batch |= kHasParse;
        const std::string_view name = cstr(p, n, &pos);
        if (m != nullptr && !m->fields.has("query")) {
          if (!name.empty()) m->fields.add_string("statement", name, kNameMax);
          if (pos < n) add_query(m->fields, cstr(p, n, &pos), true, m);
        }
      } else if (c.type == 'F') {
        request(ctx, st, c, ts, "FUNCTION_CALL");
      } else if (c.type != 'X' && c.type != 'H' && c.type != 'd' && c.type != 'c' && c.type != 'f' && c.type != 'p') {
        request(ctx, st, c, ts, nullptr);  // part of an extended-query batch
      }
    } else if (cut && c.phase == Phase::kHeader && c.msg == nullptr) {
      ctx.count_partial_at_close();
      return;
    }
    Message* m = c.msg;
    if (m == nullptr) return;
    if (!m->fields.has("command")) {
      m->fields.add_string("command", (st.batch & kHasExecute)    ? "EXECUTE"
                                      : (st.batch & kHasParse)    ? "PARSE"
                                      : (st.batch & kHasBind)     ? "BIND"
                                      : (st.batch & kHasDescribe) ? "DESCRIBE"
                                      : (st.batch & kHasClose)    ? "CLOSE"
                                                                  : "SYNC");
    }
    st.batch = 0;
    m->flags |= record_flag::kTruncated;
    finish_request(ctx, c, ctx.offset(kReq, {}), ts, false);
  }

  // ---------------------------------------------------------------- client

  // The request in progress, begun by the message in sd.type when there is none. The first one begun after the
  // client side lost bytes is flagged `gap` unless its first message is a whole request of its own (startup,
  // simple query, function call, terminate): an extended-query message may continue a batch whose start was in
  // the hole (Parse+Describe+Flush lost: the Sync after it made a clean SYNC record carrying the lost
  // statement's error).
  Message* request(FlowContext& ctx, State& st, Side& sd, uint64_t ts, const char* command) {
    if (sd.msg == nullptr) {
      sd.msg = ctx.new_message(sd.hdr_ts != 0 ? sd.hdr_ts : ts);  // a message cut across segments: its first
      sd.msg_start = sd.hdr_start;
      if (st.req_lost) {
        st.req_lost = false;
        const bool whole = sd.type == 0 || sd.type == 'Q' || sd.type == 'F' || sd.type == 'X';
        if (sd.msg != nullptr && !whole) sd.msg->flags |= record_flag::kGap;
      }
      if (sd.msg != nullptr && command != nullptr) sd.msg->fields.add_string("command", command);
    } else if (command != nullptr && !sd.msg->fields.has("command")) {
      sd.msg->fields.add_string("command", command);  // a batch without its Sync, cleared by a simple query
    }
    return sd.msg;
  }

  void finish_request(FlowContext& ctx, Side& sd, uint64_t end, uint64_t ts, bool no_reply) {
    Message* m = sd.msg;
    sd.msg = nullptr;
    if (m == nullptr) return;
    m->end_span(sd.msg_start, end, ts);
    if (no_reply) {
      ctx.emit_no_reply(m);
    } else {
      ctx.commit_request(m);
    }
  }

  void add_query(FieldList& f, std::string_view q, bool cut, Message* m) {
    f.add_string("query", q, kQueryMax);
    if (q.size() > kQueryMax || cut) {
      m->flags |= record_flag::kTruncated;
      if (q.size() > kQueryMax) q = q.substr(0, kQueryMax);
    }
    // Statements repeat: their normalized text is remembered (normalizing costs ~15 instructions a byte).
    const uint64_t h = TextMemo::hash(q);
    TextMemo::Hit hit;
    if (normalized_.find(q, h, &hit)) {
      f.add_string("normalized", hit.value);
      return;
    }
    char buf[kQueryMax];
    const size_t n = db::normalize_sql(q, buf, sizeof(buf), db::SqlDialect::kPgsql);
    f.add_string("normalized", std::string_view(buf, n));
    normalized_.remember(q, h, std::string_view(buf, n), 0);
  }

  void client_message(FlowContext& ctx, State& st, const uint8_t* p, size_t n, bool cut, uint64_t end,
                      uint64_t ts) {
    Side& sd = st.side[0];
    if (sd.type == 0) {  // startup phase: StartupMessage / SSLRequest / GSSENCRequest / CancelRequest
      const uint32_t code = n >= 4 ? be32(p) : 0;
      if (code == kSslRequest || code == kGssRequest) {
        Message* m = request(ctx, st, sd, ts, code == kSslRequest ? "SSL_REQUEST" : "GSSENC_REQUEST");
        (void)m;
        finish_request(ctx, sd, end, ts, false);
        st.ssl_answer = true;  // the answer is one unframed byte
        return;
      }
      st.started = true;
      if (code == kCancelRequest) {
        request(ctx, st, sd, ts, "CANCEL");
        finish_request(ctx, sd, end, ts, true);
        return;
      }
      Message* m = request(ctx, st, sd, ts, "STARTUP");
      if (m != nullptr) {
        size_t pos = 4;
        while (pos < n && p[pos] != 0) {
          const std::string_view k = cstr(p, n, &pos);
          const std::string_view v = cstr(p, n, &pos);
          if (k == "user") m->fields.add_string("user", v, kNameMax);
          else if (k == "database") m->fields.add_string("database", v, kNameMax);
          else if (k == "application_name") m->fields.add_string("application_name", v, kNameMax);
        }
      }
      finish_request(ctx, sd, end, ts, false);
      return;
    }
    size_t pos = 0;
    if ((sd.type == 'Q' || sd.type == 'F') && sd.msg != nullptr) {
      // An extended-query batch ended by Flush, not Sync (asyncpg prepares a COPY that way before sending it
      // as a simple query): the server answers both before one ReadyForQuery, so they are one roundtrip, and
      // the simple query is what it ran last. Its fields replace the batch's (a second `query` would repeat
      // the key in the record).
      sd.msg->fields.clear();
      st.batch = 0;
    }
    switch (sd.type) {
      case 'Q': {
        Message* m = request(ctx, st, sd, ts, "QUERY");
        if (m != nullptr) add_query(m->fields, cstr(p, n, &pos), cut, m);
        finish_request(ctx, sd, end, ts, false);
        return;
      }
      case 'P': {
        Message* m = request(ctx, st, sd, ts, nullptr);
        st.batch |= kHasParse;
        const std::string_view name = cstr(p, n, &pos);
        const std::string_view q = cstr(p, n, &pos);
        if (m != nullptr && !m->fields.has("query")) {
          if (!name.empty()) m->fields.add_string("statement", name, kNameMax);
          add_query(m->fields, q, cut, m);
          stmts_.remember(st.gen, db::fnv1a(name), m->fields.get_string("normalized"));
        }
        return;
      }
      case 'B': {
        Message* m = request(ctx, st, sd, ts, nullptr);
        st.batch |= kHasBind;
        cstr(p, n, &pos);  // portal
        const std::string_view name = cstr(p, n, &pos);
        if (m != nullptr && !m->fields.has("query") && !m->fields.has("normalized") && !m->fields.has("statement")) {
          // (a batch of Binds of a statement whose Parse was not seen: its name once)
          if (!name.empty()) m->fields.add_string("statement", name, kNameMax);
          if (const auto text = stmts_.find(st.gen, db::fnv1a(name))) m->fields.add_string("normalized", *text);
        }
        return;
      }
      case 'E': request(ctx, st, sd, ts, nullptr); st.batch |= kHasExecute; return;
      case 'D': request(ctx, st, sd, ts, nullptr); st.batch |= kHasDescribe; return;
      case 'C': request(ctx, st, sd, ts, nullptr); st.batch |= kHasClose; return;
      case 'H': return;  // Flush: part of the batch, no reply of its own
      case 'S': {
        // Sync: one roundtrip per Sync. The command says what the batch did.
        Message* m = request(ctx, st, sd, ts, nullptr);
        if (m != nullptr) {
          m->fields.add_string("command", (st.batch & kHasExecute)    ? "EXECUTE"
                                          : (st.batch & kHasParse)    ? "PARSE"
                                          : (st.batch & kHasBind)     ? "BIND"
                                          : (st.batch & kHasDescribe) ? "DESCRIBE"
                                          : (st.batch & kHasClose)    ? "CLOSE"
                                                                      : "SYNC");
        }
        st.batch = 0;
        finish_request(ctx, sd, end, ts, false);
        return;
      }
      case 'X':
        request(ctx, st, sd, ts, "TERMINATE");
        finish_request(ctx, sd, end, ts, true);
        return;
      case 'F':
        request(ctx, st, sd, ts, "FUNCTION_CALL");
        finish_request(ctx, sd, end, ts, false);
        return;
      default: return;  // COPY data / done / fail: part of the statement already sent
    }
  }

  // ---------------------------------------------------------------- server

  void ssl_answer(FlowContext& ctx, State& st, uint8_t b, uint64_t ts) {
    Message* m = ctx.new_message(ts);
    if (m != nullptr) {
      m->bytes = 1;
      m->fields.add_string("ssl", b == 'S' || b == 'G' ? "accepted" : b == 'N' ? "refused" : "invalid");
      ctx.complete_response(m, b == 'S' || b == 'G' || b == 'N' ? RecordStatus::kOk : RecordStatus::kError);
    }
    if (b == 'S' || b == 'G') {
      st.encrypted = true;  // TLS / GSS from here: counted, not decoded
      ++ctx.counters().encrypted_flows;
    } else if (b != 'N') {
      ctx.count_decode_error();
    }
  }

  void reset_response(State& st) {
    st.rows = st.data_rows = 0;
    st.columns = 0;
    st.error = st.has_tag = false;
    st.tag_len = 0;
  }

  // A server message of type `t` opens the response, unless it is asynchronous (ParameterStatus, Notice,
  // Notification) with none open: then it is not a response. Returns whether one is open.
  bool open_response(FlowContext& ctx, State& st, uint8_t t, uint64_t ts) {
    if ((t == 'S' || t == 'N' || t == 'A') && st.side[1].msg == nullptr) return false;
    begin_response(ctx, st, ts);
    return true;
  }

  void begin_response(FlowContext& ctx, State& st, uint64_t ts) {
    Side& sd = st.side[1];
    if (sd.msg != nullptr) return;
    sd.msg = ctx.new_message(sd.hdr_ts != 0 ? sd.hdr_ts : ts);
    sd.msg_start = sd.hdr_start;
    reset_response(st);
  }

  void server_message(FlowContext& ctx, State& st, const uint8_t* p, size_t n, uint64_t end, uint64_t ts) {
    Side& sd = st.side[1];
    const uint8_t t = sd.type;
    if (!open_response(ctx, st, t, ts)) return;
    Message* m = sd.msg;
    switch (t) {
      case 'Z':
        sd.msg = nullptr;
        // ReadyForQuery answering the last request seen before the client side lost bytes (or none, the
        // lost bytes' own request), with nothing begun since: the server has answered all it was sent, so
        // the client was waiting for this and its next request starts clean (a lost SASL message, a lost
        // whole query). Not when the client wrote the start of a batch into the hole before this answer and
        // its rest only after (pipelined): that rest would then come out unflagged.
        if (st.req_lost && st.side[0].msg == nullptr && ctx.pending_count() <= 1) st.req_lost = false;
        if (m == nullptr) return;
        m->end_span(sd.msg_start, end, ts);
        add_summary(st, m->fields);
        ctx.complete_response(m, st.error ? RecordStatus::kError : RecordStatus::kOk);
        reset_response(st);
        return;
      case 'C': {
        size_t pos = 0;
        const std::string_view tag = cstr(p, n, &pos);
        st.tag_len = static_cast<uint8_t>(std::min(tag.size(), kTagMax));
        std::memcpy(st.tag, tag.data(), st.tag_len);
        st.has_tag = true;
        // rows: the last number of the tag (INSERT oid rows, SELECT rows, UPDATE rows, COPY rows, ...)
        const size_t sp = tag.rfind(' ');
        uint64_t v = 0;
        bool any = false;
        for (size_t i = sp == std::string_view::npos ? tag.size() : sp + 1; i < tag.size() && db::is_digit(tag[i]);
             ++i) {
          v = v * 10 + static_cast<uint64_t>(tag[i] - '0');
          any = true;
        }
        if (any) st.rows += v;
        return;
      }
      case 'T':
        if (n >= 2) st.columns = be16(p);
        return;
      case 'E': {
        st.error = true;
        if (m == nullptr || m->fields.has("sql_state")) return;  // the first error tells
        size_t pos = 0;
        std::string_view sev, code, msg;
        while (pos < n && p[pos] != 0) {
          const uint8_t k = p[pos++];
          const std::string_view v = cstr(p, n, &pos);
          if (k == 'V' || (k == 'S' && sev.empty())) sev = v;
          else if (k == 'C') code = v;
          else if (k == 'M') msg = v;
        }
        if (!sev.empty()) m->fields.add_string("severity", sev, 16);
        if (!code.empty()) m->fields.add_string("sql_state", code, 8);
        m->fields.add_string("error_message", msg, 256);
        return;
      }
      default: return;
    }
  }

  void add_summary(const State& st, FieldList& f) {
    if (st.has_tag) {
      f.add_string("tag", std::string_view(st.tag, st.tag_len));
      f.add_uint("rows", st.rows);
    }
    if (st.columns > 0) f.add_uint("columns", st.columns);
    if (st.columns > 0 || st.data_rows > 0) f.add_uint("data_rows", st.data_rows);
  }

  // The flow ended inside a response (a fatal error closes the connection without ReadyForQuery).
  void end_response(FlowContext& ctx, State& st, uint64_t ts) {
    Side& sd = st.side[1];
    Message* m = sd.msg;
    if (m == nullptr) return;
    sd.msg = nullptr;
    m->end_span(sd.msg_start, ctx.offset(kResp, {}), ts);
    if (!st.error) m->flags |= record_flag::kTruncated;
    add_summary(st, m->fields);
    ctx.complete_response(m, st.error ? RecordStatus::kError : RecordStatus::kOk);
    reset_response(st);
  }

  uint32_t gen_ = 0;
  db::StatementCache stmts_;  // named statements (key: FNV-1a of the name)
  TextMemo normalized_{kNormalizedMemo};  // query text -> normalized text
};

}  // namespace

namespace pgsql {

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg) { return std::make_unique<PgsqlDecoder>(cfg); }
SniffResult confirm(std::span<const std::byte> chunk, Transport t) { return PgsqlDecoder::sniff(chunk, t); }

}  // namespace pgsql

}  // namespace spanfeed
