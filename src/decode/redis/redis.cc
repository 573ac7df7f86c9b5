// Redis decoder: RESP2/RESP3 streaming parser (bulk payloads skipped, not buffered), inline commands, FIFO matching.
// Pub/sub: a SUBSCRIBE-family command pairs with its confirmations (one per channel argument, one record); what
// the server pushes on its own (a published message, a RESP3 `>` push) is a record without reply, `PUSH <kind>`.
// Runs on a worker lcore; per-flow state lives in the builder's preallocated array; never allocates.
#include "redis.h"

#include <algorithm>

#include "spanfeed/decoder.h"
#include "text_util.h"

namespace spanfeed {
namespace {

constexpr Direction kReq = Direction::kClientToServer;
constexpr Direction kResp = Direction::kServerToClient;
constexpr uint8_t kMaxDepth = 12;  // nested aggregates tracked; deeper replies are a decode error
// Longest bulk argument a server takes: Redis's proto-max-bulk-len default (512 MB). A longer one is answered
// "-ERR Protocol error: invalid bulk length" without reading its payload, so no payload follows: lose sync
// there (the request stays open until the next command line or the reply) instead of skipping up to 2^63
// bytes of what is really the next command.
constexpr int64_t kMaxBulkLen = 512LL * 1024 * 1024;

// What a pub/sub array / RESP3 push says it is (its first element), and the SUBSCRIBE-family commands.
enum Kind : uint8_t {
  kNoKind = 0,
  kSubscribe, kUnsubscribe, kPsubscribe, kPunsubscribe, kSsubscribe, kSunsubscribe,  // commands / confirmations
  kMessage, kPmessage, kSmessage,  // published messages
  kOtherKind,                      // any other push (RESP3 `invalidate`, ...)
};
constexpr bool is_confirmation(uint8_t k) { return k >= kSubscribe && k <= kSunsubscribe; }
constexpr bool is_message(uint8_t k) { return k >= kMessage && k <= kSmessage; }

// The pub/sub word `w` (a command or a push's first element), any case.
uint8_t kind_of(std::string_view w) {
  if (w.size() < 7 || w.size() > 12) return kNoKind;
  static constexpr std::string_view kNames[] = {"subscribe", "unsubscribe", "psubscribe", "punsubscribe",
                                                "ssubscribe", "sunsubscribe", "message", "pmessage", "smessage"};
  for (size_t i = 0; i < std::size(kNames); ++i) {
    if (text::iequals(w, kNames[i])) return static_cast<uint8_t>(kSubscribe + i);
  }
  return kNoKind;
}

enum class Phase : uint8_t {
  kLine,     // next line: a type line (or an inline command)
  kCapture,  // request: first `capture` bytes of a bulk argument (command / key); response: blob error text
  kSkip,     // `bulk_left` bytes of bulk payload + CRLF to skip
};

struct Side {
  Message* msg = nullptr;
  uint64_t start = 0;
  uint64_t bulk_left = 0;   // payload bytes + 2 (CRLF) still to come
  uint64_t line_start = 0;  // request: stream offset of the line being read
  uint32_t stack[kMaxDepth] = {};  // elements left per open aggregate (request: stack[0] = arguments left)
  uint32_t arg_index = 0;   // request: next argument index
  uint32_t nargs = 0;       // request: array size
  uint32_t capture = 0;     // bytes to capture from the current bulk
  uint8_t depth = 0;
  Resync resync;            // framing lost: skip to the next command / reply line
  Phase phase = Phase::kLine;
  bool in_message = false;
  bool error = false;       // response is an error reply
  bool is_auth = false;     // request: AUTH (its arguments are secrets)
  bool push = false;        // response: RESP3 push (out of band, not a reply)
  bool attr_top = false;    // response: top-level attribute seen, the reply itself follows
  bool refused = false;     // request: an argument's length no server takes: skip to the next command / the reply
  uint8_t sub = kNoKind;    // request: a SUBSCRIBE-family command (Kind)
};

// What we capture of an element of a reply that may be pub/sub (PubSub::capture).
enum Capture : uint8_t { kCapNone = 0, kCapKind, kCapKey, kCapPattern };

// Pub/sub state of the flow, and of the reply being parsed when it may be a pub/sub one.
struct PubSub {
  Message* held = nullptr;  // a SUBSCRIBE-family command's reply, waiting for its other confirmations
  uint32_t count = 0;       // reply being parsed: a confirmation's subscription count
  uint32_t payload = 0;     // reply being parsed: a message's payload size (saturating)
  uint16_t top_n = 0;       // reply being parsed: its element count (capped)
  uint16_t owed = 0;        // confirmations `held` still waits for
  uint16_t chans = 0, pats = 0, shards = 0;  // subscriptions, as the confirmations counted them
  uint8_t kind = kNoKind;   // reply being parsed: its first element (Kind)
  uint8_t held_kind = kNoKind;
  uint8_t capture = kCapNone;  // the bulk being captured (kCapture phase) is this element, not a blob error
  bool active = false;      // the reply being parsed may be pub/sub: its elements are looked at
  bool subscribed = false;  // a SUBSCRIBE-family command was sent and not all was unsubscribed (RESP2 pub/sub mode)
  bool unsure = false;      // a gap since the counts were last known (all zero): they may be wrong
};

struct State {
  Side side[2];
  PubSub ps;
};
static_assert(sizeof(State) <= kDecoderStateBytes);

bool is_resp_type(char c) {
  switch (c) {
    case '+': case '-': case ':': case '$': case '*': case '_': case '#': case ',': case '(':
    case '!': case '=': case '%': case '~': case '>': case '|':
      return true;
    default:
      return false;
  }
}

const char* type_name(char c) {
  switch (c) {
    case '+': return "simple";
    case '-': return "error";
    case ':': return "integer";
    case '$': return "bulk";
    case '*': return "array";
    case '_': return "null";
    case '#': return "boolean";
    case ',': return "double";
    case '(': return "big_number";
    case '!': return "blob_error";
    case '=': return "verbatim";
    case '%': return "map";
    case '~': return "set";
    case '>': return "push";
    default: return "unknown";
  }
}

class RedisDecoder final : public Decoder {
 public:
  explicit RedisDecoder(const DecodeConfig& cfg) : redact_(cfg.redact_secrets), key_max_(static_cast<uint32_t>(cfg.option(Protocol::kRedis, "key_max"))) {
    if (key_max_ == 0) key_max_ = 1;
    if (key_max_ > 512) key_max_ = 512;
  }

  Protocol protocol() const override { return Protocol::kRedis; }

  static SniffResult sniff(std::span<const std::byte> chunk, Transport t) {
    if (t != Transport::kTcp) return SniffResult::kNo;
    // "*<n>\r\n$<len>\r\n": a command array of bulk strings
    std::string_view s = text::as_sv(chunk);
    if (s.size() < 8 || s[0] != '*' || !text::is_digit(s[1]) || s[1] == '0') return SniffResult::kNo;
    size_t i = 1;
    while (i < s.size() && i < 8 && text::is_digit(s[i])) ++i;
    if (s.substr(i, 3) != "\r\n$" || i + 3 >= s.size() || !text::is_digit(s[i + 3])) return SniffResult::kNo;
    return SniffResult::kRequest;
  }

  void open(FlowContext& ctx, uint64_t /*ts*/) override { ctx.state<State>() = State{}; }

  void data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) override {
    State& st = ctx.state<State>();
    Side& sd = st.side[index_of(dir)];
    while (!bytes.empty()) {
      if (sd.in_message && sd.msg != nullptr) sd.msg->last_ts_ns = ts;
      switch (sd.phase) {
        case Phase::kLine:
          // Inside a command / an aggregate reply: most elements are bulk strings whose whole
          // "$<len>\r\n<payload>\r\n" is in this chunk (LRANGE: 100 of them): one step each.
          if (sd.in_message && !sd.refused && (dir == kReq || sd.depth > 0) && !ctx.has_carry(dir) &&
              whole_bulk(ctx, sd, dir, bytes, ts))
            break;
          if (dir == kReq) {
            request_line(ctx, sd, bytes, ts);
          } else {
            response_line(ctx, sd, bytes, ts);
          }
          break;
        case Phase::kCapture: capture(ctx, sd, dir, bytes); break;
        case Phase::kSkip: {
          const size_t n = bytes.size() < sd.bulk_left ? bytes.size() : static_cast<size_t>(sd.bulk_left);
          bytes = bytes.subspan(n);
          sd.bulk_left -= n;
          if (sd.bulk_left == 0) {
            sd.phase = Phase::kLine;
            element_done(ctx, sd, dir, ctx.offset(dir, bytes), ts);
          }
          break;
        }
      }
    }
  }

  void gap(FlowContext& ctx, Direction dir, uint64_t missing, uint64_t ts) override {
    State& st = ctx.state<State>();
    Side& sd = st.side[index_of(dir)];
    const uint64_t at = ctx.offset(dir, {});
    if (sd.in_message) {
      if (sd.msg != nullptr) sd.msg->flags |= record_flag::kGap;
      if (sd.phase == Phase::kSkip && missing <= sd.bulk_left) {
        sd.bulk_left -= missing;  // inside a bulk payload: skip the hole
        ctx.count_gap_absorbed();
        if (sd.bulk_left == 0) {
          sd.phase = Phase::kLine;
          element_done(ctx, sd, dir, at + missing, ts);
        }
        return;
      }
      finish_message(ctx, sd, dir, at, ts, record_flag::kGap);
    }
    sd = Side{};
    sd.resync.lose();
    st.ps.unsure = true;  // a confirmation or a SUBSCRIBE-family command may be in the hole
    if (dir == kResp) {
      st.ps.active = false;
      close_group(ctx, st, record_flag::kGap);  // confirmations still owed may be in the hole
      ctx.flush_pending(TimeoutCause::kGap, record_flag::kGap);
    }
  }

  void fin(FlowContext& ctx, Direction dir, uint64_t ts) override {
    State& st = ctx.state<State>();
    Side& sd = st.side[index_of(dir)];
    if (sd.in_message) finish_message(ctx, sd, dir, ctx.offset(dir, {}), ts, record_flag::kTruncated);
    if (dir == kResp) close_group(ctx, st, record_flag::kTruncated);  // confirmations that never came
  }

  void close(FlowContext& ctx, uint64_t ts) override {
    for (Direction dir : {kReq, kResp}) {
      const Side& sd = ctx.state<State>().side[index_of(dir)];
      // a first line cut by the end of the flow: too little to make a record of
      if (!sd.in_message && !sd.resync.lost && ctx.has_carry(dir)) ctx.count_partial_at_close();
      fin(ctx, dir, ts);
    }
  }

 private:
  // The next elements are "$<digits>\r\n" with their payload and CRLF all in `bytes`: the same steps as
  // request_line / response_line, capture and skip would take (no field of a nested reply element, the
  // command and key of a request), done in place, one element after the other while the command / the
  // aggregate lasts (LRANGE: 100 of them without a pass of data()'s loop each). False (nothing consumed):
  // the first is anything else.
  bool whole_bulk(FlowContext& ctx, Side& sd, Direction dir, std::span<const std::byte>& bytes, uint64_t ts) {
    bool any = false;
    PubSub& ps = ctx.state<State>().ps;
    const bool pubsub = dir == kResp && ps.active;  // a reply that may be pub/sub: its elements are looked at
    do {
      const auto* p = reinterpret_cast<const char*>(bytes.data());
      const size_t n = bytes.size();
      if (n < 5 || p[0] != '$') return any;
      const size_t lim = n < 11 ? n : 11;
      size_t i = 1;
      uint64_t len = 0;
      while (i < lim && text::is_digit(p[i])) len = len * 10 + static_cast<uint64_t>(p[i++] - '0');
      if (i == 1 || i + 1 >= n || p[i] != '\r' || p[i + 1] != '\n' || len > static_cast<uint64_t>(kMaxBulkLen))
        return any;
      const size_t head = i + 2;
      if (n - head < len + 2) return any;
      if (dir == kReq) {
        sd.line_start = ctx.offset(kReq, bytes);
        const size_t cap = sd.arg_index <= 1 ? (len < key_max_ ? len : key_max_) : 0;
        if (cap > 0) {
          const std::string_view v(p + head, cap);
          if (sd.arg_index == 0) {
            set_command(sd, v);
          } else {
            set_key(sd, v);
          }
        }
      }
      if (pubsub && sd.depth == 1) [[unlikely]] {
        const size_t cap = element_bulk(ps, sd, len);
        if (cap > 0) store(ps, sd.msg, std::string_view(p + head, cap));
      }
      bytes = bytes.subspan(head + len + 2);
      any = true;
      if (dir == kResp && sd.stack[sd.depth - 1] > 1) {  // not the aggregate's last element: element_done's step
        --sd.stack[sd.depth - 1];
        continue;
      }
      element_done(ctx, sd, dir, ctx.offset(dir, bytes), ts);
    } while (sd.in_message && (dir == kReq || sd.depth > 0) && !bytes.empty());
    return true;
  }

  void begin(FlowContext& ctx, Side& sd, uint64_t start, uint64_t ts) {
    sd = Side{};
    sd.start = start;
    sd.in_message = true;
    sd.msg = ctx.new_message(ts);
  }

  void request_line(FlowContext& ctx, Side& sd, std::span<const std::byte>& bytes, uint64_t ts) {
    if (!ctx.has_carry(kReq)) {
      sd.line_start = ctx.offset(kReq, bytes);
      if (!sd.in_message) sd.start = sd.line_start;
    }
    const size_t before = bytes.size();
    std::string_view line;
    bool cut = false;
    if (ctx.next_line(kReq, bytes, line, &cut) != Take::kOk) {
      if (sd.resync.lost || sd.refused) sd.resync.add(before - bytes.size());
      return;
    }
    if (sd.refused) {
      int64_t n = 0;
      if (line.size() < 2 || line[0] != '*' || !text::parse_i64(line.substr(1), &n) || n <= 0 || n > (1 << 20)) {
        sd.resync.add(before - bytes.size());
        return;
      }
      // the next command: the refused one ended where it starts
      const uint64_t line_start = sd.line_start;
      const Resync resync = sd.resync;
      finish_message(ctx, sd, kReq, line_start, ts, record_flag::kTruncated);
      sd.resync = resync;
      sd.resync.lose();
      sd.start = sd.line_start = line_start;
    }
    if (sd.in_message) {
      // expecting "$<len>" of the next argument
      int64_t len = -1;
      if (line.size() < 2 || line[0] != '$' || !text::parse_i64(line.substr(1), &len)) {
        ctx.count_decode_error();
        lost_sync(ctx, sd, kReq, ctx.offset(kReq, bytes), ts);
        return;
      }
      if (len < 0) {  // null argument (not sent by real clients): counts as an argument
        element_done(ctx, sd, kReq, ctx.offset(kReq, bytes), ts);
        return;
      }
      if (len > kMaxBulkLen) {
        ctx.count_decode_error();
        sd.refused = true;
        if (sd.msg != nullptr) sd.msg->flags |= record_flag::kTruncated;
        return;
      }
      sd.bulk_left = static_cast<uint64_t>(len) + 2;
      sd.capture = sd.arg_index <= 1 ? static_cast<uint32_t>(len < key_max_ ? len : key_max_) : 0;
      sd.phase = sd.capture > 0 ? Phase::kCapture : Phase::kSkip;
      return;
    }
    const uint64_t start = sd.start;
    if (line.empty()) return;  // blank line between inline commands
    if (line[0] == '*') {
      int64_t n = 0;
      if (!text::parse_i64(line.substr(1), &n) || n <= 0 || n > (1 << 20)) {
        sd.resync.skip(ctx, before - bytes.size());
        return;
      }
      sd.resync.found(ctx);
      begin(ctx, sd, start, ts);
      sd.nargs = static_cast<uint32_t>(n);
      sd.stack[0] = sd.nargs;
      return;
    }
    // Inline command: words separated by spaces. Not accepted while resyncing
    // (too easy to mistake payload for commands).
    std::string_view rest = line;
    std::string_view cmd = text::next_token(rest);
    bool plausible = !cmd.empty() && cmd.size() <= 32 && !cut;
    for (char c : cmd) plausible = plausible && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
    if (!plausible || sd.resync.lost) {
      sd.resync.skip(ctx, before - bytes.size());
      return;
    }
    begin(ctx, sd, start, ts);
    set_command(sd, cmd);
    uint32_t args = 0;
    while (!rest.empty()) {
      std::string_view a = text::next_token(rest);
      if (args == 0) set_key(sd, a);
      ++args;
    }
    sd.nargs = args + 1;
    sd.arg_index = sd.nargs;
    finish_message(ctx, sd, kReq, ctx.offset(kReq, bytes), ts, 0);
  }

  void capture(FlowContext& ctx, Side& sd, Direction dir, std::span<const std::byte>& bytes) {
    std::span<const std::byte> out;
    const Take t = ctx.take(dir, bytes, sd.capture, out);
    if (t == Take::kNeedMore) return;
    if (t == Take::kOk) {
      std::string_view v = text::as_sv(out);
      if (dir == kReq) {
        if (sd.arg_index == 0) {
          set_command(sd, v);
        } else {
          set_key(sd, v);
        }
      } else if (PubSub& ps = ctx.state<State>().ps; ps.capture != kCapNone) {
        store(ps, sd.msg, v);
      } else if (sd.msg != nullptr) {
        sd.msg->fields.add_string("error", v, 512);
      }
      sd.bulk_left -= out.size();
    }
    sd.phase = Phase::kSkip;
  }

  void set_command(Side& sd, std::string_view v) {
    char up[32];
    size_t n = v.size() < sizeof(up) ? v.size() : sizeof(up);
    for (size_t i = 0; i < n; ++i) up[i] = text::upper(v[i]);
    std::string_view cmd(up, n);
    sd.is_auth = cmd == "AUTH";
    const uint8_t k = kind_of(cmd);
    sd.sub = is_confirmation(k) ? k : kNoKind;
    if (sd.msg != nullptr) sd.msg->fields.add_string("command", cmd, 32);
  }

  void set_key(Side& sd, std::string_view v) {
    if (sd.msg == nullptr) return;
    sd.msg->fields.add_string("key", (sd.is_auth && redact_) ? std::string_view("<redacted>") : v, key_max_);
  }

  void response_line(FlowContext& ctx, Side& sd, std::span<const std::byte>& bytes, uint64_t ts) {
    if (!sd.in_message && !ctx.has_carry(kResp)) sd.start = ctx.offset(kResp, bytes);
    const size_t before = bytes.size();
    std::string_view line;
    bool cut = false;
    if (ctx.next_line(kResp, bytes, line, &cut) != Take::kOk) {
      if (sd.resync.lost) sd.resync.add(before - bytes.size());
      return;
    }
    const char type = line.empty() ? '\0' : line[0];
    int64_t n = 0;
    bool numeric = !line.empty() && text::parse_i64(line.substr(1), &n);
    bool valid = is_resp_type(type);
    if (valid && (type == '$' || type == '*' || type == '%' || type == '~' || type == '>' || type == '|' ||
                  type == '!' || type == '=' || type == ':'))
      valid = numeric;
    if (!valid) {
      if (sd.in_message) {
        ctx.count_decode_error();
        lost_sync(ctx, sd, kResp, ctx.offset(kResp, bytes), ts);
      } else {
        sd.resync.skip(ctx, before - bytes.size());
      }
      return;
    }
    const bool top = !sd.in_message || (sd.depth == 0 && sd.attr_top);
    PubSub& ps = ctx.state<State>().ps;
    if (!sd.in_message) {
      // (in RESP2 pub/sub mode an array is a push, not the answer to a request being written)
      if (type != '>' && !(type == '*' && ps.subscribed)) answered_early(ctx, ts);
      const uint64_t start = sd.start;
      sd.resync.found(ctx);
      begin(ctx, sd, start, ts);
    }
    // (ps.active is false at every reply's start: finish_message)
    if (top && (type == '>' || (type == '*' && (n == 3 || n == 4)))) [[unlikely]] begin_pubsub(ctx, ps, type, n);
    // An element of a reply that may be pub/sub: its kind, channel, pattern, count, payload size.
    const bool element = ps.active && sd.depth == 1;
    if (element && type == ':' && ps.top_n - sd.stack[0] == 2 && is_confirmation(ps.kind))
      ps.count = n < 0 ? 0 : static_cast<uint32_t>(n > UINT32_MAX ? UINT32_MAX : n);
    Message* m = sd.msg;
    if (cut && m != nullptr) m->flags |= record_flag::kTruncated;
    if (top && type != '|') {
      sd.attr_top = false;
      if (m != nullptr) m->fields.add_string("type", type_name(type));
    }
    std::string_view body = line.substr(1);
    switch (type) {
      case '+':
        if (top && m != nullptr) m->fields.add_string("value", body, key_max_);
        if (element) {  // a push's kind or channel as a simple string
          const size_t cap = element_bulk(ps, sd, body.size());
          if (cap > 0) store(ps, m, body.substr(0, cap));
        }
        break;
      case '-':
        if (top) {
          sd.error = true;
          if (m != nullptr) m->fields.add_string("error", body, 512);
        }
        break;
      case ':':
        if (top && m != nullptr) m->fields.add_int("value", n);
        break;
      case '$': case '!': case '=':
        if (n < 0) {
          if (top && m != nullptr) m->fields.add_null("size");
          break;
        }
        if (top && m != nullptr) m->fields.add_uint("size", static_cast<uint64_t>(n));
        if (top && type == '!') sd.error = true;
        sd.bulk_left = static_cast<uint64_t>(n) + 2;
        sd.capture = (top && type == '!') ? static_cast<uint32_t>(n < 512 ? n : 512) : 0;
        if (element && type == '$') sd.capture = static_cast<uint32_t>(element_bulk(ps, sd, static_cast<uint64_t>(n)));
        sd.phase = sd.capture > 0 ? Phase::kCapture : Phase::kSkip;
        return;  // element_done when the payload has been skipped
      case '*': case '%': case '~': case '>': case '|': {
        if (top && type == '>') sd.push = true;
        if (n < 0) {
          if (top && m != nullptr) m->fields.add_null("elements");
          break;
        }
        if (top && type != '|' && m != nullptr) m->fields.add_uint("elements", static_cast<uint64_t>(n));
        uint64_t elems = static_cast<uint64_t>(n) * ((type == '%' || type == '|') ? 2 : 1);
        if (type == '|') {
          // An attribute precedes the value it annotates: the parent (or the
          // reply) still expects that value after the attribute's elements.
          if (sd.depth == 0) {
            sd.attr_top = true;
          } else {
            ++sd.stack[sd.depth - 1];
          }
        }
        if (elems == 0) break;
        if (sd.depth >= kMaxDepth) {
          ctx.count_decode_error();
          lost_sync(ctx, sd, kResp, ctx.offset(kResp, bytes), ts);
          return;
        }
        sd.stack[sd.depth++] = static_cast<uint32_t>(elems > UINT32_MAX ? UINT32_MAX : elems);
        return;
      }
      default:  // '_' '#' ',' '(' : one line
        if (top && m != nullptr && type == '#') m->fields.add_bool("value", body == "t");
        if (top && m != nullptr && (type == ',' || type == '(')) m->fields.add_string("value", body, 64);
        break;
    }
    element_done(ctx, sd, kResp, ctx.offset(kResp, bytes), ts);
  }

  // A reply begins while a request is still incomplete and none waits: as far as the server is concerned
  // the request is over (it refused it, e.g. an invalid bulk length); what we did not see of it was not
  // sent or not captured. It ends here, flagged truncated, and pairs with this reply (HTTP does the same).
  void answered_early(FlowContext& ctx, uint64_t ts) {
    Side& req = ctx.state<State>().side[index_of(kReq)];
    if (!req.in_message || ctx.pending_count() != 0) return;
    lost_sync(ctx, req, kReq, ctx.offset(kReq, {}), ts);
    ctx.drop_carry(kReq);  // the tail of the refused request, not the start of a command
  }

  // One element (argument / value) finished at stream offset `end`.
  void element_done(FlowContext& ctx, Side& sd, Direction dir, uint64_t end, uint64_t ts) {
    if (dir == kReq) {
      ++sd.arg_index;
      if (sd.arg_index >= sd.nargs) finish_message(ctx, sd, dir, end, ts, 0);
      return;
    }
    while (sd.depth > 0) {
      if (--sd.stack[sd.depth - 1] != 0) return;
      --sd.depth;
    }
    if (sd.attr_top) return;  // the attribute is done, the reply comes next
    finish_message(ctx, sd, dir, end, ts, 0);
  }

  void finish_message(FlowContext& ctx, Side& sd, Direction dir, uint64_t end, uint64_t ts, uint32_t flags) {
    Message* m = sd.msg;
    struct {
      uint64_t start;
      uint32_t nargs;
      bool push, error;
      uint8_t sub;
    } const done{sd.start, sd.nargs, sd.push, sd.error, sd.sub};  // what is read of the side it resets
    sd = Side{};
    State& st = ctx.state<State>();
    const bool pubsub = dir == kResp && st.ps.active;
    if (dir == kResp) {
      st.ps.active = false;
      st.ps.capture = kCapNone;
    }
    if (m == nullptr) return;
    m->flags |= flags;
    m->end_span(done.start, end, ts);
    if (dir == kReq) {
      if (!m->fields.has("command")) {  // nothing recognisable survived (gap right after "*N")
        ctx.discard(m);
        return;
      }
      const uint32_t args = done.nargs > 0 ? done.nargs - 1 : 0;
      m->fields.add_uint("args", args);
      if (done.sub != kNoKind) {  // its confirmations pair with it (reply()): how many it asks for
        m->aux = uint32_t{done.sub} << 24 | (args < 0xFFFFFF ? args : 0xFFFFFF);
        if (done.sub == kSubscribe || done.sub == kPsubscribe || done.sub == kSsubscribe) st.ps.subscribed = true;
      }
      ctx.commit_request(m);
      return;
    }
    if ((pubsub || done.push) && pubsub_reply(ctx, st, m, done.push)) return;
    close_group(ctx, st, 0);  // a reply of another kind: the confirmations waited for are all there
    ctx.complete_response(m, done.error ? RecordStatus::kError : RecordStatus::kOk);
  }

  // ---------------------------------------------------------------- pub/sub

  // A top-level array (`*`, RESP2) or push (`>`, RESP3) of `n` elements begins: a push always says what it is
  // in its first element; an array may be pub/sub only with 3 or 4 elements, in pub/sub mode, or answering no
  // request, or while a SUBSCRIBE-family command waits for its confirmations.
  // Out of line (as the other pub/sub steps): most replies are none of this.
  [[gnu::noinline]] void begin_pubsub(FlowContext& ctx, PubSub& ps, char type, int64_t n) {
    ps.active = false;
    ps.kind = kNoKind;
    ps.capture = kCapNone;
    ps.count = ps.payload = 0;
    ps.top_n = static_cast<uint16_t>(n <= 0 ? 0 : n < UINT16_MAX ? n : UINT16_MAX);
    if (n <= 0) return;
    if (type == '*') {
      if (n != 3 && n != 4) return;
      const Message* front = ctx.front_request();
      if (!ps.subscribed && ctx.pending_count() != 0 && (front == nullptr || (front->aux >> 24) == kNoKind)) return;
    }
    ps.active = true;
  }

  // A bulk element of `len` bytes directly in the pub/sub candidate (depth 1): the bytes of it to capture
  // (0: none; ps.capture says what they are), its size when it is a message's payload.
  [[gnu::noinline]] static size_t element_bulk(PubSub& ps, const Side& sd, uint64_t len) {
    ps.capture = kCapNone;
    if (sd.stack[0] > ps.top_n) return 0;
    const uint32_t i = ps.top_n - sd.stack[0];
    const bool pm = ps.kind == kPmessage;
    if (i == 0) {
      ps.capture = kCapKind;
    } else if (i == 1 && (is_confirmation(ps.kind) || is_message(ps.kind))) {
      ps.capture = pm ? kCapPattern : kCapKey;
    } else if (i == 2 && pm) {
      ps.capture = kCapKey;
    } else if (is_message(ps.kind) && i == (pm ? 3u : 2u)) {
      ps.payload = static_cast<uint32_t>(len < UINT32_MAX ? len : UINT32_MAX);
    }
    if (ps.capture == kCapNone) return 0;
    const uint64_t max = ps.capture == kCapKind ? 24 : 512;
    if (len == 0) ps.capture = kCapNone;  // nothing to capture (an empty channel name stays absent)
    return static_cast<size_t>(len < max ? len : max);
  }

  // The captured bytes of a pub/sub candidate's element, kept in the message's fields until the reply ends
  // (pubsub_reply makes its fields).
  [[gnu::noinline]] void store(PubSub& ps, Message* m, std::string_view v) {
    const uint8_t what = ps.capture;
    ps.capture = kCapNone;
    if (what == kCapKind) ps.kind = kind_of(v) != kNoKind ? kind_of(v) : kOtherKind;
    if (m == nullptr) return;
    if (what == kCapKind) m->fields.add_string("command", v, 24);
    else if (what == kCapKey) m->fields.add_string("key", v, key_max_);
    else if (what == kCapPattern) m->fields.add_string("pattern", v, key_max_);
  }

  // The reply `m` (a pub/sub candidate, or a RESP3 push) is complete. A confirmation pairs with the
  // SUBSCRIBE-family command that waits for it (its first one makes the response, the others extend it);
  // a published message, a push, or a confirmation no command waits for is a record of its own without
  // reply, sent by the server. False: `m` is an ordinary reply (its fields are those of any array).
  [[gnu::noinline]] bool pubsub_reply(FlowContext& ctx, State& st, Message* m, bool push) {
    PubSub& ps = st.ps;
    const uint8_t k = ps.kind;
    const uint16_t n = ps.top_n;
    if (!push && !((is_confirmation(k) || k == kMessage || k == kSmessage) ? n == 3 : k == kPmessage && n == 4)) {
      if (m->fields.size() > 2) {  // what was captured goes: the fields any array reply has
        m->fields.clear();
        m->fields.add_string("type", type_name('*'));
        m->fields.add_uint("elements", n);
      }
      return false;
    }
    if (is_confirmation(k)) {
      const uint32_t c = ps.count;
      // Before this confirmation: what an UNSUBSCRIBE without arguments has to undo (one confirmation each).
      const uint16_t before = (k == kUnsubscribe) ? ps.chans : (k == kPunsubscribe) ? ps.pats : ps.shards;
      auto sat = [](uint32_t v) { return static_cast<uint16_t>(v < UINT16_MAX ? v : UINT16_MAX); };
      if (k == kSubscribe || k == kUnsubscribe) ps.chans = sat(c > ps.pats ? c - ps.pats : 0);
      else if (k == kPsubscribe || k == kPunsubscribe) ps.pats = sat(c > ps.chans ? c - ps.chans : 0);
      else ps.shards = sat(c);
      ps.subscribed = ps.chans + ps.pats + ps.shards > 0 || k == kSubscribe || k == kPsubscribe || k == kSsubscribe;
      const bool unsure = ps.unsure;
      const bool subscribes = k == kSubscribe || k == kPsubscribe || k == kSsubscribe;
      if (ps.chans + ps.pats + ps.shards == 0) ps.unsure = false;  // nothing subscribed: the counts are known
      if (ps.held != nullptr && ps.held_kind == k && ps.owed > 0) {  // the next confirmation of the command
        Message* h = ps.held;
        h->bytes += m->stream_end - h->stream_end;
        h->stream_end = m->stream_end;
        h->last_ts_ns = m->last_ts_ns;
        h->flags |= m->flags;
        h->aux = c;
        ctx.discard(m);
        --ps.owed;
        if (ps.owed == 0 || (c == 0 && !subscribes)) close_group(ctx, st, 0);  // nothing left to undo
        return true;
      }
      close_group(ctx, st, 0);
      const Message* front = ctx.front_request();
      if (front != nullptr && (front->aux >> 24) == k) {
        const uint32_t args = front->aux & 0xFFFFFF;
        const uint32_t owed = args > 0 ? args : (before > 0 ? before : 1);
        m->fields.clear();
        m->fields.add_string("type", type_name(push ? '>' : '*'));
        m->fields.add_uint("elements", n);
        m->aux = c;
        // Without arguments, the confirmations expected are the subscriptions counted: after a gap, a guess.
        if (args == 0 && unsure) m->flags |= record_flag::kGap;
        ps.held = m;
        ps.held_kind = k;
        ps.owed = static_cast<uint16_t>(owed - 1 < UINT16_MAX ? owed - 1 : UINT16_MAX);
        if (ps.owed == 0 || (c == 0 && !subscribes)) close_group(ctx, st, 0);
        return true;
      }
      // No command waits for it: a capture begun after the command, or (after a gap) the command or the
      // count of what it undid was lost.
      if (unsure) m->flags |= record_flag::kGap;
    }
    // Sent by the server on its own: `PUSH <kind>`, its channel (`key`), pattern, payload size. (A server
    // writes a command's confirmations together: anything between them ends the wait.)
    close_group(ctx, st, 0);
    char key[512], pattern[512], cmd[32] = "PUSH";
    const std::string_view kv = m->fields.get_string("key"), pv = m->fields.get_string("pattern");
    const std::string_view word = m->fields.get_string("command");
    const size_t kn = std::min(kv.size(), sizeof(key)), pn = std::min(pv.size(), sizeof(pattern));
    std::copy_n(kv.data(), kn, key);
    std::copy_n(pv.data(), pn, pattern);
    size_t cn = 4;
    if (!word.empty()) {
      cmd[cn++] = ' ';
      for (size_t i = 0; i < word.size() && cn < sizeof(cmd); ++i) cmd[cn++] = word[i];
    }
    FieldList& f = m->fields;
    f.clear();
    f.add_string("command", std::string_view(cmd, cn), 32);
    if (kn > 0) f.add_string("key", std::string_view(key, kn), key_max_);
    if (pn > 0) f.add_string("pattern", std::string_view(pattern, pn), key_max_);
    f.add_uint("args", n > 0 ? n - 1 : 0);
    if (is_message(k)) f.add_uint("payload_bytes", ps.payload);
    f.add_bool("from_server", true);
    ctx.emit_no_reply(m, kResp);
    return true;
  }

  // The SUBSCRIBE-family reply waiting for more confirmations is done (they all came, or something else did,
  // or the stream broke: `flags`): it answers its command, with the subscription count the last one reported.
  void close_group(FlowContext& ctx, State& st, uint32_t flags) {
    if (st.ps.held != nullptr) [[unlikely]] complete_group(ctx, st, flags);
  }
  [[gnu::noinline]] void complete_group(FlowContext& ctx, State& st, uint32_t flags) {
    Message* h = st.ps.held;
    st.ps.held = nullptr;
    if (st.ps.owed > 0) h->flags |= flags;
    st.ps.owed = 0;
    h->fields.add_uint("subscriptions", h->aux);
    ctx.complete_response(h, RecordStatus::kOk);
  }

  // Unparseable data inside a message: end it (truncated) and skip to a boundary.
  void lost_sync(FlowContext& ctx, Side& sd, Direction dir, uint64_t end, uint64_t ts) {
    finish_message(ctx, sd, dir, end, ts, record_flag::kTruncated);
    sd.resync.lose();
  }

  bool redact_;
  uint32_t key_max_;
};

}  // namespace

namespace redis {

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg) { return std::make_unique<RedisDecoder>(cfg); }
SniffResult confirm(std::span<const std::byte> chunk, Transport t) { return RedisDecoder::sniff(chunk, t); }

}  // namespace redis

}  // namespace spanfeed
