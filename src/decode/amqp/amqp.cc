// AMQP 0-9-1 decoder: protocol header, frames (method / content header / body / heartbeat), connection,
// channel, exchange, queue, basic, tx and confirm methods; sync methods matched to their -ok per channel,
// publisher confirms matched to basic.ack / nack by delivery tag; bodies counted, never kept.
// Runs on a worker lcore; per-flow state in the builder's preallocated array; never allocates.
//
// Matching (by key, Message::key): a synchronous method waits on key = its channel; the server's -ok on that
// channel (or a channel.close / connection.close in its place, the server's way to refuse it) answers the
// oldest one. In confirm mode a basic.publish waits on key = kConfirmKey | channel << 16 | (sequence & 0xffff)
// for the server's basic.ack / nack (multiple: every unconfirmed publish up to the tag). Pushes from the
// server (basic.deliver, basic.return, server channel.flow / basic.cancel, connection.blocked) and async
// client methods (basic.ack / nack / reject, publishes without confirms, nowait methods) are no-reply records.
#include "amqp.h"

#include <algorithm>

#include "amqp_wire.h"
#include "db_util.h"

#include "spanfeed/decoder.h"

namespace spanfeed {
namespace {

using db::be16;
using db::be32;
using amqp::method_name;
using amqp::mid;

constexpr Direction kReq = Direction::kClientToServer;
constexpr Direction kResp = Direction::kServerToClient;

constexpr size_t kFrameHeader = 7;             // type, channel, size
constexpr uint32_t kMaxFrame = 16u << 20;      // frame_max is negotiated; larger sizes are garbage
constexpr size_t kKeepMax = 4096;              // method / content-header bytes parsed (tables after that skipped)
constexpr uint8_t kFrameEnd = 0xCE;
constexpr uint32_t kConfirmKey = 0x80000000u;  // keys of publishes waiting for a confirm (sync methods: < 2^16)
constexpr size_t kConfirmChannels = 4;         // channels in confirm mode tracked per connection
constexpr uint32_t kMaxConfirmBatch = 64;      // publishes one multiple ack completes at most (= pending cap)

enum FrameType : uint8_t { kMethod = 1, kHeader = 2, kBody = 3, kHeartbeat = 8 };

// A message with content (publish, deliver, get-ok, return): finished when its body has passed.
enum class Content : uint8_t { kNone, kPublish, kDeliver, kGetOk, kReturn };

struct Side {
  Message* msg = nullptr;  // the content message in progress
  uint64_t start = 0;      // stream offset of the frame being read
  uint64_t first_ts = 0;
  uint64_t msg_start = 0;  // stream offset of the content message's method frame
  uint64_t body_size = 0;  // from the content header
  uint64_t body_seen = 0;
  uint32_t size = 0;       // payload bytes of the frame being read
  uint32_t skip = 0;       // bytes left to skip (body frames, long payloads)
  uint16_t channel = 0;
  uint16_t msg_channel = 0;
  uint8_t type = 0;
  Content content = Content::kNone;
  bool header_seen = false;  // the content header came
  bool in_frame = false;     // header read: payload (or skip) in progress
  bool checked = false;
  Resync resync;
};

struct Confirm {
  uint32_t published = 0;  // publishes seen in confirm mode (their delivery tags: 1, 2, ...)
  uint32_t confirmed = 0;  // highest tag the server confirmed
  uint16_t channel = 0;
  bool used = false;
};

struct State {
  Side side[2];
  Confirm confirms[kConfirmChannels];
  uint32_t close_error = 0;  // 1 + channel of a client close with a non-200 code (its close-ok is an error)
};
static_assert(sizeof(State) <= kDecoderStateBytes, "amqp state must fit the per-flow slot");

// A connection seen mid-stream: a whole method frame (its frame-end octet in place) on a channel, of a method
// only one side sends: a client's request (channel.open, basic.publish, ...) or a server's reply or
// delivery. Methods either side sends (close, flow, cancel, ack, nack) do not tell the orientation.
SniffResult midstream_method(const uint8_t* p, size_t n) {
  if (n < kFrameHeader + 5 || p[0] != kMethod) return SniffResult::kNo;
  const uint32_t size = be32(p + 3);
  if (size < 4 || size > kMaxFrame || n < kFrameHeader + size + 1 || p[kFrameHeader + size] != kFrameEnd)
    return SniffResult::kNo;
  const uint16_t cls = be16(p + 7), m = be16(p + 9);
  if (cls == 10 || method_name(mid(cls, m)) == nullptr) return SniffResult::kNo;
  switch (mid(cls, m)) {
    case mid(20, 20): case mid(20, 21): case mid(20, 40): case mid(20, 41):
    case mid(60, 30): case mid(60, 31): case mid(60, 80): case mid(60, 120):
      return SniffResult::kNo;
    case mid(60, 50): case mid(60, 60): case mid(60, 71): case mid(60, 72):
      return SniffResult::kResponse;
    default:
      return m % 2 == 0 ? SniffResult::kRequest : SniffResult::kResponse;
  }
}

// Whether a chunk can start a frame (or the protocol header); a short chunk is judged on what it has.
bool plausible_frame(const uint8_t* p, size_t n) {
  if (n == 0) return false;
  if (p[0] == 'A') return std::string_view(reinterpret_cast<const char*>(p), std::min<size_t>(n, 4)) ==
                          std::string_view("AMQP").substr(0, std::min<size_t>(n, 4));
  const uint8_t t = p[0];
  if (t != kMethod && t != kHeader && t != kBody && t != kHeartbeat) return false;
  if (n < kFrameHeader) return true;
  const uint32_t size = be32(p + 3);
  if (size > kMaxFrame) return false;
  if (n >= kFrameHeader + size + 1 && p[kFrameHeader + size] != kFrameEnd) return false;
  return true;
}

// A close's reply code: 200 is a normal shutdown, and so is 0 (pika closes its channels with 0); any other
// (403 access refused, 404 not found, 406 precondition failed, 320 forced, 5xx ...) makes an `error` record.
bool close_is_error(uint64_t code) { return code != 200 && code != 0; }

uint32_t confirm_key(uint16_t channel, uint32_t seq) {
  return kConfirmKey | uint32_t{static_cast<uint16_t>(channel & 0x7fff)} << 16 | (seq & 0xffff);
}

// Whether a chunk met where framing was lost (or a direction's first chunk) starts a frame. Stricter than
// plausible_frame: content bytes chosen at random must not pass, since a false start sends the decoder
// skipping a frame as long as the size it read (16 MiB) and every reply after it is lost. A method names a
// method this decoder knows; a content header is on a channel, of class basic, weight 0; a body is on a
// channel and no longer than RabbitMQ's default frame_max; a heartbeat is empty, on channel 0.
constexpr uint32_t kResyncMaxFrame = 128u << 10;

bool resync_frame(const uint8_t* p, size_t n) {
  if (!plausible_frame(p, n)) return false;
  if (p[0] == 'A' || n < kFrameHeader) return true;
  const uint16_t channel = be16(p + 1);
  const uint32_t size = be32(p + 3);
  switch (p[0]) {
    case kMethod:
      if (size < 4 || size > kResyncMaxFrame) return false;
      return n < kFrameHeader + 4 || method_name(mid(be16(p + 7), be16(p + 9))) != nullptr;
    case kHeader:
      if (channel == 0 || size < 14 || size > kResyncMaxFrame) return false;
      return n < kFrameHeader + 4 || (be16(p + 7) == 60 && be16(p + 9) == 0);
    case kBody:
      return channel != 0 && size <= kResyncMaxFrame;
    default:  // heartbeat
      return channel == 0 && size == 0;
  }
}

class AmqpDecoder final : public Decoder {
 public:
  // PLAIN credentials: the user is kept, the password never read (whatever redact_secrets says).
  explicit AmqpDecoder(const DecodeConfig& /*cfg*/) {}

  Protocol protocol() const override { return Protocol::kAmqp; }
  bool matches_by_key() const override { return true; }  // per channel, and by delivery tag

  static SniffResult sniff(std::span<const std::byte> chunk, Transport t) {
    if (t != Transport::kTcp || chunk.size() < 8) return SniffResult::kNo;
    const uint8_t* p = db::u8p(chunk);
    // The protocol header: "AMQP" 0 0 9 1.
    if (p[0] == 'A' && p[1] == 'M' && p[2] == 'Q' && p[3] == 'P' && p[4] == 0 && p[5] == 0 && p[6] == 9 && p[7] == 1)
      return SniffResult::kRequest;
    // The server's connection.start on channel 0, version 0-9.
    if (chunk.size() >= 13 && p[0] == kMethod && p[1] == 0 && p[2] == 0 && be32(p + 3) <= kMaxFrame &&
        be16(p + 7) == 10 && be16(p + 9) == 10 && p[11] == 0 && p[12] == 9)
      return SniffResult::kResponse;
    return midstream_method(p, chunk.size());
  }

  void open(FlowContext& ctx, uint64_t /*ts*/) override { ctx.state<State>() = State{}; }

  void data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) override {
    State& st = ctx.state<State>();
    Side& sd = st.side[index_of(dir)];
    // The first chunk of a direction (and the first after lost sync) must start a frame.
    if (!sd.checked || sd.resync.lost) {
      sd.checked = true;
      if (!ctx.has_carry(dir) && !sd.in_frame) {
        if (!resync_frame(db::u8p(bytes), bytes.size())) {
          sd.resync.skip(ctx, bytes.size());
          return;
        }
        sd.resync.found(ctx);
      }
    }
    const size_t cap = std::min<size_t>(kKeepMax, ctx.config().carry_bytes);
    while (!bytes.empty()) {
      if (sd.skip > 0) {  // a body frame or the unparsed tail of a long frame: counted, not kept
        const size_t n = std::min<size_t>(sd.skip, bytes.size());
        bytes = bytes.subspan(n);
        sd.skip -= static_cast<uint32_t>(n);
        if (sd.skip == 0) frame_done(ctx, st, dir, ctx.offset(dir, bytes), ts);
        continue;
      }
      if (!sd.in_frame) {
        if (!ctx.has_carry(dir)) {
          sd.start = ctx.offset(dir, bytes);
          sd.first_ts = ts;
        }
        // The protocol header ("AMQP" 0 0 9 1; from the server: the version it speaks instead).
        const bool carried = ctx.has_carry(dir);
        if ((!carried && static_cast<uint8_t>(bytes[0]) == 'A') || (carried && sd.type == 'A')) {
          sd.type = 'A';
          std::span<const std::byte> out;
          const Take t = ctx.take(dir, bytes, 8, out);
          if (t == Take::kNeedMore) return;
          if (t != Take::kOk || !protocol_header(ctx, st, dir, db::u8p(out), ctx.offset(dir, bytes), ts)) {
            lose_sync(ctx, st, dir, bytes, ts);
            return;
          }
          sd.type = 0;
          continue;
        }
        std::span<const std::byte> out;
        const Take t = ctx.take(dir, bytes, kFrameHeader, out);
        if (t == Take::kNeedMore) return;
        const uint8_t* h = db::u8p(out);
        if (t != Take::kOk || !plausible_frame(h, out.size())) {
          if (t == Take::kOk) ctx.count_decode_error();
          lose_sync(ctx, st, dir, bytes, ts);
          return;
        }
        sd.type = h[0];
        sd.channel = be16(h + 1);
        sd.size = be32(h + 3);
        sd.in_frame = true;
        if (sd.type == kBody) {  // skipped by count; its content message learns the bytes
          body_frame(ctx, st, dir, ts);
          sd.skip = sd.size + 1;
          continue;
        }
      }
      // Method / content header / heartbeat: its first bytes (and the frame end when they are all of it).
      const size_t total = size_t{sd.size} + 1;
      const size_t want = std::min(total, cap);
      std::span<const std::byte> out;
      const Take t = ctx.take(dir, bytes, want, out);
      if (t == Take::kNeedMore) return;
      if (t != Take::kOk) {
        lose_sync(ctx, st, dir, bytes, ts);
        return;
      }
      const uint8_t* p = db::u8p(out);
      if (want == total && p[sd.size] != kFrameEnd) {
        ctx.count_decode_error();
        lose_sync(ctx, st, dir, bytes, ts);
        return;
      }
      sd.skip = static_cast<uint32_t>(total - want);
      const uint64_t end = ctx.offset(dir, bytes) + sd.skip;
      const size_t n = std::min<size_t>(sd.size, out.size());
      if (sd.type == kMethod) {
        method(ctx, st, dir, p, n, end, ts);
      } else if (sd.type == kHeader) {
        content_header(ctx, st, dir, p, n, end, ts);
      }  // heartbeat: nothing to record
      if (sd.skip == 0) frame_done(ctx, st, dir, end, ts);
    }
  }

  void gap(FlowContext& ctx, Direction dir, uint64_t missing, uint64_t ts) override {
    State& st = ctx.state<State>();
    Side& sd = st.side[index_of(dir)];
    // Inside a body frame (or a long frame's skipped tail): skip the hole, the content goes on.
    if (sd.in_frame && sd.skip > 0 && missing <= sd.skip) {
      ctx.count_gap_absorbed();
      if (sd.msg != nullptr) sd.msg->flags |= record_flag::kGap;
      sd.skip -= static_cast<uint32_t>(missing);
      if (sd.skip == 0) frame_done(ctx, st, dir, ctx.offset(dir, {}) + missing, ts);
      return;
    }
    // Elsewhere: what was in progress ends here; requests stay pending (their replies carry the channel).
    finish_content(ctx, st, dir, ctx.offset(dir, {}), ts, record_flag::kGap);
    restart_after_gap(sd);
  }

  void fin(FlowContext& /*ctx*/, Direction /*dir*/, uint64_t /*ts*/) override {}

  void close(FlowContext& ctx, uint64_t ts) override {
    State& st = ctx.state<State>();
    for (Direction dir : {kReq, kResp}) {
      Side& sd = st.side[index_of(dir)];
      if (!sd.resync.lost && !sd.in_frame && ctx.has_carry(dir)) ctx.count_partial_at_close();
      finish_content(ctx, st, dir, ctx.offset(dir, {}), ts, record_flag::kTruncated);
    }
  }

 private:
  // Bytes that are no frame: what was in progress ends (truncated); wait for a chunk that starts a frame.
  void lose_sync(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes, uint64_t ts) {
    Side& sd = st.side[index_of(dir)];
    ctx.drop_carry(dir);
    finish_content(ctx, st, dir, ctx.offset(dir, bytes), ts, record_flag::kTruncated);
    sd.in_frame = false;
    sd.skip = 0;
    sd.type = 0;
    sd.resync.lose(bytes.size());
    bytes = {};
  }

  // ---------------------------------------------------------------- frames

  void frame_done(FlowContext& ctx, State& st, Direction dir, uint64_t end, uint64_t ts) {
    Side& sd = st.side[index_of(dir)];
    const bool body = sd.type == kBody;
    sd.in_frame = false;
    sd.type = 0;
    if (body && sd.content != Content::kNone && sd.header_seen && sd.body_seen >= sd.body_size)
      finish_content(ctx, st, dir, end, ts, 0);
  }

  void body_frame(FlowContext& ctx, State& st, Direction dir, uint64_t ts) {
    Side& sd = st.side[index_of(dir)];
    if (sd.content == Content::kNone || !sd.header_seen || sd.channel != sd.msg_channel) {
      ctx.count_decode_error();  // a body nobody announced: skipped
      return;
    }
    sd.body_seen += sd.size;
    if (sd.msg != nullptr) sd.msg->last_ts_ns = ts;
  }

  void content_header(FlowContext& ctx, State& st, Direction dir, const uint8_t* p, size_t n, uint64_t end,
                      uint64_t ts) {
    Side& sd = st.side[index_of(dir)];
    if (sd.content == Content::kNone || sd.header_seen || sd.channel != sd.msg_channel || n < 12) {
      ctx.count_decode_error();
      return;
    }
    sd.header_seen = true;
    sd.body_size = db::be32(p + 4);
    sd.body_size = sd.body_size << 32 | be32(p + 8);
    if (sd.body_size == 0) finish_content(ctx, st, dir, end, ts, 0);
  }

  // "AMQP" 0 0 9 1 from the client: a request the server's connection.start answers. From the server: the
  // version it wants instead (it closes the connection): an error response.
  bool protocol_header(FlowContext& ctx, State& /*st*/, Direction dir, const uint8_t* p, uint64_t end, uint64_t ts) {
    if (p[0] != 'A' || p[1] != 'M' || p[2] != 'Q' || p[3] != 'P') {
      ctx.count_decode_error();
      return false;
    }
    const Side& sd = ctx.state<State>().side[index_of(dir)];
    Message* m = ctx.new_message(sd.first_ts);
    if (m == nullptr) return true;
    m->fields.add_string("method", "protocol-header");
    char ver[12] = {static_cast<char>('0' + p[5] % 10), '-', static_cast<char>('0' + p[6] % 10), '-',
                    static_cast<char>('0' + p[7] % 10)};
    m->fields.add_string("version", std::string_view(ver, 5));
    m->end_span(sd.start, end, ts);
    if (dir == kReq) {
      m->key = 0;
      m->aux = kHeaderAux;  // connection.start answers it (align_channel)
      ctx.commit_request(m);
    } else {
      ctx.complete_response_by_key(m, RecordStatus::kError, 0);
    }
    return true;
  }

  Confirm* confirm_of(State& st, uint16_t ch) {
    for (Confirm& c : st.confirms) {
      if (c.used && c.channel == ch) return &c;
    }
    return nullptr;
  }

  // ---------------------------------------------------------------- methods

  void method(FlowContext& ctx, State& st, Direction dir, const uint8_t* p, size_t n, uint64_t end, uint64_t ts) {
    Side& sd = st.side[index_of(dir)];
    if (n < 4) {
      ctx.count_decode_error();
      return;
    }
    const uint16_t cls = be16(p), mth = be16(p + 2);
    const uint32_t id = mid(cls, mth);
    const uint16_t ch = sd.channel;
    // A method on the same channel (or another content method: one is tracked per side) ends the content
    // before it: its body frames did not all come. Other channels' frames may interleave (AMQP 4.2.6).
    const bool content_method = id == mid(60, 40) || id == mid(60, 50) || id == mid(60, 60) || id == mid(60, 71);
    if (sd.content != Content::kNone && (sd.msg_channel == ch || content_method))
      finish_content(ctx, st, dir, sd.start, ts, record_flag::kTruncated);
    const char* name = method_name(id);
    if (name == nullptr) ctx.count_decode_error();
    // A client's -ok answers a server push (tune, close, flow, cancel) that is already a record: no record.
    if (dir == kReq && (id == mid(10, 31) || id == mid(10, 51) || id == mid(20, 41) || id == mid(20, 21) ||
                        id == mid(60, 31)))
      return;
    Message* m = ctx.new_message(sd.first_ts);
    WireReader a{p + 4, n - 4};
    // The pool was empty (counted): the arguments still steer the flow (no-wait, confirms), into scratch.
    if (m == nullptr) scratch_.clear();
    FieldList& fl = m != nullptr ? m->fields : scratch_;
    fl.add_string("method", name != nullptr ? name : "unknown");
    if (name == nullptr) {
      fl.add_uint("class_id", cls);
      fl.add_uint("method_id", mth);
    }
    if (ch != 0) fl.add_uint("channel", ch);
    if (m != nullptr) m->end_span(sd.start, end, ts);
    const bool nowait = amqp::method_arguments(fl, id, a);
    if (dir == kReq) {
      client_method(ctx, st, m, id, ch, nowait);
    } else {
      server_method(ctx, st, m, id, ch, ts);
    }
  }

  void client_method(FlowContext& ctx, State& st, Message* m, uint32_t id, uint16_t ch, bool nowait) {
    Side& sd = st.side[index_of(kReq)];
    switch (id) {
      case mid(60, 40): {  // basic.publish: its content header and body follow
        begin_content(sd, m, Content::kPublish, ch);
        return;
      }
      case mid(60, 80):
      case mid(60, 90):
      case mid(60, 120):
      case mid(60, 100):  // consumer ack / reject / nack, recover-async: no reply
        ctx.emit_no_reply(m);
        return;
      case mid(20, 10): {  // channel.open: a new channel (the number may be reused) starts without confirms
        if (Confirm* c = confirm_of(st, ch); c != nullptr) *c = Confirm{};
        break;
      }
      case mid(85, 10): {  // confirm.select: publishes on the channel now wait for the server's ack
        if (confirm_of(st, ch) == nullptr) {
          for (Confirm& c : st.confirms) {
            if (!c.used) {
              c = Confirm{0, 0, ch, true};
              break;
            }
          }
        }
        break;
      }
      case mid(10, 50):
      case mid(20, 40):
        if (m != nullptr) {
          const Field* code = m->fields.find("reply_code");
          if (code != nullptr && close_is_error(code->num)) st.close_error = 1u + ch;
        }
        break;
      default: break;
    }
    if (nowait || method_name(id) == nullptr) {
      ctx.emit_no_reply(m);
      return;
    }
    if (m != nullptr) {
      m->key = ch;
      m->aux = id;  // the reply names it (align_channel)
    }
    ctx.commit_request(m);
  }

  // Message::aux of the client's protocol header (no method has class 0).
  static constexpr uint32_t kHeaderAux = mid(0, 1);

  // Whether a synchronous reply can answer the request whose Message::aux is `request` (0: a request made
  // up for a close, not judged): the method before it in its class, but for basic.get (get-ok and
  // get-empty), exchange.unbind (unbind-ok is 51) and the connection class's handshake (start answers
  // the header, secure and tune answer start-ok or secure-ok). Replies not listed are not judged.
  static bool answers(uint32_t reply, uint32_t request) {
    if (request == 0) return true;
    switch (reply) {
      case mid(60, 71):
      case mid(60, 72): return request == mid(60, 70);
      case mid(40, 51): return request == mid(40, 40);
      case mid(10, 10): return request == kHeaderAux;
      case mid(10, 20):
      case mid(10, 30): return request == mid(10, 11) || request == mid(10, 21);
      case mid(10, 41):
      case mid(10, 51): return request == reply - 1;
      default: break;
    }
    if ((reply >> 16) == 10 || (reply & 1u) == 0) return true;
    return request == reply - 1;
  }

  // `q` or the first pending request after it on channel `ch` (nullptr: none).
  static Message* on_channel(FlowContext& ctx, Message* q, uint16_t ch) {
    while (q != nullptr && q->key != ch) q = ctx.next_request(q);
    return q;
  }

  // A reply pairs with the oldest request pending on its channel. When that request is not one the reply
  // can answer but a later one on the channel is, the replies of those before it were lost (a gap on the
  // server side): they become timeouts flagged gap, instead of taking the next replies one off. When none
  // is, the reply answers a request the capture lost (the client side lost bytes): false, it is unmatched
  // and the requests wait for their own replies. When the one it pairs with may have lost its own reply to
  // such a gap and a later one could take this reply too (two basic.gets, one get-empty), `resp` is
  // flagged gap: which of them it answers, the capture cannot tell.
  static bool align_channel(FlowContext& ctx, uint16_t ch, uint32_t reply, Message* resp) {
    Message* const first = on_channel(ctx, ctx.front_request(), ch);
    Message* match = first;
    while (match != nullptr && !answers(reply, match->aux)) match = on_channel(ctx, ctx.next_request(match), ch);
    if (match == nullptr) return first == nullptr;
    if (resp != nullptr && ctx.answer_may_be_lost(match)) {
      for (Message* q = on_channel(ctx, ctx.next_request(match), ch); q != nullptr;
           q = on_channel(ctx, ctx.next_request(q), ch)) {
        if (answers(reply, q->aux)) {
          resp->flags |= record_flag::kGap;
          break;
        }
      }
    }
    for (Message* q = first; q != match;) {
      Message* next = ctx.next_request(q);
      if (q->key == ch) ctx.give_up(q);
      q = next;
    }
    return true;
  }

  void server_method(FlowContext& ctx, State& st, Message* m, uint32_t id, uint16_t ch, uint64_t ts) {
    Side& sd = st.side[index_of(kResp)];
    switch (id) {
      case mid(60, 60): begin_content(sd, m, Content::kDeliver, ch); return;
      case mid(60, 50): begin_content(sd, m, Content::kReturn, ch); return;
      case mid(60, 71):
        align_channel(ctx, ch, id, m);
        begin_content(sd, m, Content::kGetOk, ch);
        return;
      case mid(60, 80):
      case mid(60, 120): confirm(ctx, st, m, id, ch); return;
      case mid(20, 20):
      case mid(60, 30):
      case mid(10, 60):
      case mid(10, 61):  // server pushes: channel.flow, consumer cancelled, connection blocked / unblocked
        ctx.emit_no_reply(m, kResp);
        return;
      case mid(10, 50):
      case mid(20, 40): {  // the server closes: the answer to the request it refuses (else to an async one)
        const Field* code = m != nullptr ? m->fields.find("reply_code") : nullptr;
        const bool error = code != nullptr && close_is_error(code->num);
        if (!ctx.has_pending_key(ch)) {
          // Nothing pending on the channel (a publish to a missing exchange, a forced close): a 0-byte
          // request names the method the close blames, so the ledger pairs it.
          Message* q = ctx.new_message(m != nullptr ? m->first_ts_ns : ts);
          if (q != nullptr) {
            const std::string_view failed = m != nullptr ? m->fields.get_string("failed_method") : "";
            q->fields.add_string("method", failed.empty() ? std::string_view("connection") : failed);
            if (ch != 0) q->fields.add_uint("channel", ch);
            q->key = ch;
            q->stream_end = ctx.offset(kReq, {});
            ctx.commit_request(q);
          }
        }
        // It pairs with the oldest request on the channel; if that one's own reply may have been lost (the
        // server side lost bytes while it waited), the close may refuse a later one: flagged gap.
        const Message* refused = on_channel(ctx, ctx.front_request(), ch);
        if (m != nullptr && refused != nullptr && ctx.answer_may_be_lost(refused)) m->flags |= record_flag::kGap;
        ctx.complete_response_by_key(m, error ? RecordStatus::kError : RecordStatus::kOk, ch);
        return;
      }
      case mid(10, 51):
      case mid(20, 41): {  // close-ok to the client's close: an error when that close carried one
        if (!align_channel(ctx, ch, id, m)) {
          ctx.complete_unmatched(m);
          return;
        }
        const bool error = st.close_error == 1u + ch;
        if (error) st.close_error = 0;
        ctx.complete_response_by_key(m, error ? RecordStatus::kError : RecordStatus::kOk, ch);
        return;
      }
      default: break;
    }
    if (method_name(id) == nullptr) {
      ctx.emit_no_reply(m, kResp);
      return;
    }
    // connection.start / secure / tune / open-ok and every other -ok: the answer on the channel.
    if (!align_channel(ctx, ch, id, m)) {
      ctx.complete_unmatched(m);
      return;
    }
    ctx.complete_response_by_key(m, RecordStatus::kOk, ch);
  }

  // Publisher confirms: basic.ack / nack from the server for the publishes up to delivery_tag.
  void confirm(FlowContext& ctx, State& st, Message* m, uint32_t id, uint16_t ch) {
    Confirm* c = confirm_of(st, ch);
    const Field* tagf = m != nullptr ? m->fields.find("delivery_tag") : nullptr;
    if (c == nullptr || tagf == nullptr) {  // not in confirm mode (or no arguments): an unexplained ack
      ctx.complete_response_by_key(m, RecordStatus::kOk, kConfirmKey);
      return;
    }
    const uint64_t tag = tagf->num;
    const bool multiple = m->fields.has("multiple");
    const RecordStatus status = id == mid(60, 120) ? RecordStatus::kError : RecordStatus::kOk;
    uint64_t from = multiple ? uint64_t{c->confirmed} + 1 : tag;
    if (tag >= kMaxConfirmBatch && from < tag - kMaxConfirmBatch + 1) from = tag - kMaxConfirmBatch + 1;
    if (tag > c->confirmed) c->confirmed = static_cast<uint32_t>(tag);
    // One response per publish it confirms (the first is the frame's own message, the others its copies).
    bool used = false;
    // Counted, not `t <= tag`: a tag of 2^64-1 would never end that loop (found by fuzz_smoke).
    const uint64_t count = from <= tag ? tag - from + 1 : 0;  // at most kMaxConfirmBatch
    for (uint64_t i = 0; i < count; ++i) {
      const uint64_t t = from + i;
      const uint32_t key = confirm_key(ch, static_cast<uint32_t>(t));
      if (t != tag && !ctx.has_pending_key(key)) continue;  // confirmed before, or never seen
      Message* r = m;
      if (used || t != tag) {
        r = ctx.new_message(m->first_ts_ns);
        if (r == nullptr) continue;
        r->fields.add_string("method", m->fields.get_string("method"));
        r->fields.add_uint("channel", ch);
        r->fields.add_uint("delivery_tag", t);
        if (multiple) r->fields.add_bool("multiple", true);
        r->last_ts_ns = m->last_ts_ns;
      } else {
        used = true;
      }
      ctx.complete_response_by_key(r, status, key);
    }
    if (!used) ctx.discard(m);
  }

  static void begin_content(Side& sd, Message* m, Content kind, uint16_t ch) {
    sd.msg = m;
    sd.content = kind;
    sd.msg_channel = ch;
    sd.msg_start = sd.start;
    sd.body_size = 0;
    sd.body_seen = 0;
    sd.header_seen = false;
  }

  void finish_content(FlowContext& ctx, State& st, Direction dir, uint64_t end, uint64_t ts, uint32_t flags) {
    Side& sd = st.side[index_of(dir)];
    if (sd.content == Content::kNone) return;
    Message* m = sd.msg;
    const Content kind = sd.content;
    const uint16_t ch = sd.msg_channel;
    const bool complete = sd.header_seen && sd.body_seen >= sd.body_size;
    sd.msg = nullptr;
    sd.content = Content::kNone;
    Confirm* c = kind == Content::kPublish ? confirm_of(st, ch) : nullptr;
    if (c != nullptr) ++c->published;  // its delivery tag, also when the pool had no message for it
    if (m == nullptr) return;
    m->flags |= flags;
    if (!complete) m->flags |= record_flag::kTruncated;
    m->fields.add_uint("body_bytes", complete ? sd.body_size : sd.body_seen);
    m->end_span(sd.msg_start, end, ts);
    switch (kind) {
      case Content::kPublish: {
        if (c == nullptr) {
          ctx.emit_no_reply(m);
          return;
        }
        m->key = confirm_key(ch, c->published);
        ctx.commit_request(m);
        return;
      }
      case Content::kGetOk: ctx.complete_response_by_key(m, RecordStatus::kOk, ch); return;
      default: ctx.emit_no_reply(m, kResp); return;
    }
  }

  FieldList scratch_;  // arguments of a method whose message the pool could not give
};

}  // namespace

namespace amqp {

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg) { return std::make_unique<AmqpDecoder>(cfg); }
SniffResult confirm(std::span<const std::byte> chunk, Transport t) { return AmqpDecoder::sniff(chunk, t); }

}  // namespace amqp

}  // namespace spanfeed
