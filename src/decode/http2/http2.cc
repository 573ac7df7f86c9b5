// HTTP/2 cleartext (h2c) decoder: entry points, per-flow lifecycle (open, upgrade from HTTP/1.1, data, gaps,
// close) and the structural check. Framing is in frames.cc, streams and records in streams.cc.
// Runs on a worker lcore; allocates only in the constructor (the connection pool).
#include "http2.h"

#include <algorithm>

#include "http2_decoder.h"

namespace spanfeed::http2 {
namespace {

const uint8_t* u8(std::span<const std::byte> s) { return reinterpret_cast<const uint8_t*>(s.data()); }

}  // namespace

Http2Decoder::Http2Decoder(const DecodeConfig& cfg, Protocol as)
    : as_(as),
      redact_(cfg.redact_secrets),
      header_table_max_(static_cast<uint32_t>(cfg.option(Protocol::kHttp2, "header_table_bytes"))),
      // A connection is a flow: never more at once than the worker's flow table holds (a small
      // capture sizes that table from the file, so it needs no 256 x 32 stream table).
      pool_(static_cast<uint32_t>(std::min<uint64_t>(cfg.option(Protocol::kHttp2, "connections"),
                                                     std::max<uint32_t>(cfg.flow_capacity, 1))),
            static_cast<uint32_t>(cfg.option(Protocol::kHttp2, "max_streams")),
            cfg.option(Protocol::kHttp2, "hpack_memory_bytes")) {}

// A flow's first chunk: the client preface, or (a capture that starts mid-connection) a HEADERS frame whose
// first header is a request's :method or a response's :status from the static table, or the server's
// first SETTINGS.
SniffResult Http2Decoder::sniff(std::span<const std::byte> chunk, Transport t) {
  if (t != Transport::kTcp) return SniffResult::kNo;
  const std::string_view s(reinterpret_cast<const char*>(chunk.data()), chunk.size());
  if (s.size() >= 16 && s.substr(0, 16) == kPreface.substr(0, 16)) return SniffResult::kRequest;
  const uint8_t* p = u8(chunk);
  size_t at = 0;
  // Connection-level frames (SETTINGS, PING, WINDOW_UPDATE) may come first: the first few are skipped.
  for (int k = 0; k < 4; ++k) {
    if (!plausible_frame(p + at, chunk.size() - at, kDefaultMaxFrame)) return SniffResult::kNo;
    const uint8_t* f = p + at;
    const uint32_t len = uint32_t{f[0]} << 16 | uint32_t{f[1]} << 8 | f[2];
    const bool whole = chunk.size() - at >= kFrameHeader + len;
    if (f[3] == kSettings && at == 0 && len >= 6 && len <= 60 && (f[4] & fflag::kEndStream) == 0 && whole)
      return SniffResult::kResponse;  // a server's first SETTINGS
    if ((f[3] == kSettings || f[3] == kPing || f[3] == kWindowUpdate) && whole) {
      at += kFrameHeader + len;
      continue;
    }
    if (f[3] != kHeaders || len == 0) return SniffResult::kNo;
    size_t i = at + kFrameHeader;
    if (f[4] & fflag::kPadded) ++i;
    if (f[4] & fflag::kPriority) i += 5;
    if (i >= chunk.size() || i >= at + kFrameHeader + len) return SniffResult::kNo;
    const uint8_t b = p[i];
    // Request pseudo-headers of the static table first (:authority .. :path, indices 1-7), indexed or as a
    // literal's name; or :status (indices 8-14).
    const uint8_t name = (b & 0xc0) == 0x40 ? (b & 0x3f) : (b & 0xf0) <= 0x10 ? (b & 0x0f) : 0;
    if ((b >= 0x81 && b <= 0x87) || (b < 0x80 && name >= 1 && name <= 7)) return SniffResult::kRequest;
    if ((b >= 0x88 && b <= 0x8e) || (b < 0x80 && name == 8)) return SniffResult::kResponse;
    return SniffResult::kNo;
  }
  return SniffResult::kNo;
}

void Http2Decoder::open(FlowContext& ctx, uint64_t /*ts*/) {
  State& st = ctx.state<State>();
  st = State{};
  st.d[index_of(kReq)].phase = Phase::kPreface;
  st.conn = pool_.lease();
  if (st.conn == ConnPool::kNone) ++ctx.counters().h2_connections_untracked;
}

// HTTP/1.1 `Upgrade: h2c` answered by 101: the request that asked is stream 1, its response comes as
// HTTP/2 (RFC 7540 3.2); the client sends the preface next.
void Http2Decoder::upgraded(FlowContext& ctx, const Message* origin, uint64_t ts) {
  State& st = ctx.state<State>();
  st.upgraded = true;
  st.d[0].max_frame = st.d[1].max_frame = kDefaultMaxFrame;
  if (st.conn == ConnPool::kNone) return;
  Stream* s = open_stream(ctx, st, 1, ts);
  StreamSide& q = s->side[0];
  q.ended = true;
  q.msg = ctx.new_message(origin != nullptr ? origin->first_ts_ns : ts);
  if (q.msg == nullptr) return;
  if (origin == nullptr) return;
  q.msg->last_ts_ns = origin->last_ts_ns;
  q.frame_bytes = origin->bytes;
  FieldList& f = q.msg->fields;
  const FieldList& o = origin->fields;
  f.add_string("method", o.get_string("method"), 24);
  f.add_string("scheme", "http", 16);
  f.add_string("authority", o.get_string("host"), 128);
  f.add_string("path", o.get_string("path"), 512);
  if (o.has("user_agent")) f.add_string("user_agent", o.get_string("user_agent"), 256);
  if (o.has("content_type")) f.add_string("content_type", o.get_string("content_type"), 128);
  if (o.has("authorization")) f.add_string("authorization", o.get_string("authorization"), 256);
  if (o.has("cookie")) f.add_string("cookie", o.get_string("cookie"), 256);
}

void Http2Decoder::data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) {
  State& st = ctx.state<State>();
  DirState& d = st.d[index_of(dir)];
  if (st.conn == ConnPool::kNone) {
    ctx.counters().undecoded_bytes += bytes.size();
    return;
  }
  if (d.phase == Phase::kLost) {
    // Framing lost: a segment that starts with a plausible frame header starts a frame again (senders
    // write whole frames; a segment boundary is usually a frame boundary). Headers stay undecodable.
    if (!plausible_frame(u8(bytes), bytes.size(), d.max_frame)) {
      d.resync.add(bytes.size());
      return;
    }
    d.resync.found(ctx);
    d.phase = Phase::kHeader;
  }
  while (!bytes.empty()) {
    switch (d.phase) {
      case Phase::kPreface: preface(ctx, st, bytes); break;
      case Phase::kHeader: frame_header(ctx, st, dir, bytes, ts); break;
      case Phase::kPayload: payload(ctx, st, dir, bytes, ts); break;
      case Phase::kControl: control(ctx, st, dir, bytes, ts); break;
      case Phase::kSkip: {
        const size_t n = std::min<size_t>(d.left, bytes.size());
        bytes = bytes.subspan(n);
        d.left -= static_cast<uint32_t>(n);
        if (d.left == 0) frame_end(ctx, st, dir, ts);
        break;
      }
      case Phase::kLost:
        d.resync.add(bytes.size());
        return;
    }
  }
}

void Http2Decoder::gap(FlowContext& ctx, Direction dir, uint64_t missing, uint64_t ts) {
  State& st = ctx.state<State>();
  DirState& d = st.d[index_of(dir)];
  if (st.conn == ConnPool::kNone) return;
  const bool inside = (d.phase == Phase::kPayload || d.phase == Phase::kSkip) && d.prefix_got == d.prefix &&
                      missing <= d.left;
  // Bytes lost outside a DATA payload (frames, a header block): header blocks of this direction are
  // undecodable from here on because of the gap, and a stream's HEADERS may have been in it (streams.cc).
  if (!inside || (d.phase == Phase::kPayload && d.type != kData)) d.gap_lost = true;
  if (d.phase == Phase::kLost) return;
  if (!inside) {  // a frame header (or several frames) in the hole: framing and HPACK state are gone
    lose_framing(ctx, st, dir, false);
    return;
  }
  // Inside one frame's payload: framing holds. DATA: the body skips the hole; a header block: the
  // dynamic table may miss what the hole carried, so this direction's header blocks are undecodable.
  ctx.count_gap_absorbed();
  const uint32_t sid = d.type == kPushPromise || (d.type == kContinuation && d.block_push) ? d.promised : d.sid;
  if (Stream* s = find(st, sid)) {
    StreamSide& sd = s->side[index_of(d.block_push ? kReq : dir)];
    if (sd.msg != nullptr) sd.msg->flags |= record_flag::kGap;
    s->gap = true;  // (DATA of a side whose HEADERS were not seen has no message to flag yet)
    if (d.type == kData && d.phase == Phase::kPayload) {
      sd.body_bytes += std::min<uint64_t>(missing, d.left - std::min(d.left, uint32_t{d.pad}));
      sd.grpc.left = UINT32_MAX;
    }
    if (d.type != kData && d.phase == Phase::kPayload) mark_undecodable(ctx, *s);
  }
  if (d.phase == Phase::kPayload && d.type != kData) {
    d.hpack_lost = true;
    d.block_skip = true;
  }
  d.left -= static_cast<uint32_t>(missing);
  if (d.left == 0) frame_end(ctx, st, dir, ts);
}

void Http2Decoder::fin(FlowContext& /*ctx*/, Direction /*dir*/, uint64_t /*ts*/) {}

// Streams still open end here, flagged truncated: one with a response makes a record, one without is left
// pending (the builder makes it a `timeout` record).
void Http2Decoder::close(FlowContext& ctx, uint64_t ts) {
  State& st = ctx.state<State>();
  if (st.conn == ConnPool::kNone) return;
  for (Stream& s : pool_.streams(st.conn)) {
    if (s.id != 0) finish(ctx, st, s, ts, record_flag::kTruncated);
  }
  for (Direction dir : {kReq, kResp}) {
    const DirState& d = st.d[index_of(dir)];
    if (d.phase == Phase::kHeader && ctx.has_carry(dir)) ctx.count_partial_at_close();
  }
  pool_.release(st.conn);
  st.conn = ConnPool::kNone;
}

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg, Protocol as) {
  return std::make_unique<Http2Decoder>(cfg, as);
}
std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg) { return make_decoder(cfg, Protocol::kHttp2); }
SniffResult confirm(std::span<const std::byte> chunk, Transport t) { return Http2Decoder::sniff(chunk, t); }

}  // namespace spanfeed::http2
