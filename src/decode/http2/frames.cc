// HTTP/2 framing: the client preface, 9-byte frame headers, payloads streamed (padding, priority, promised
// ids stripped), control frames (SETTINGS, RST_STREAM, ...), lost framing and its resynchronisation.
// Runs on a worker lcore; never allocates (nghttp2 may, inside the connection's budget: streams.cc).
#include <algorithm>

#include "http2_decoder.h"

namespace spanfeed::http2 {
namespace {

const uint8_t* u8(std::span<const std::byte> s) { return reinterpret_cast<const uint8_t*>(s.data()); }
uint32_t be24(const uint8_t* p) { return uint32_t{p[0]} << 16 | uint32_t{p[1]} << 8 | p[2]; }
uint32_t be32(const uint8_t* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }

// Flags a frame type defines (RFC 9113 6): others set on a frame make it implausible when resyncing.
uint8_t known_flags(uint8_t type) {
  switch (type) {
    case kData: return fflag::kEndStream | fflag::kPadded;
    case kHeaders: return fflag::kEndStream | fflag::kEndHeaders | fflag::kPadded | fflag::kPriority;
    case kSettings: case kPing: return fflag::kEndStream;  // ACK
    case kPushPromise: return fflag::kEndHeaders | fflag::kPadded;
    case kContinuation: return fflag::kEndHeaders;
    default: return 0;
  }
}

}  // namespace

bool Http2Decoder::plausible_frame(const uint8_t* p, size_t n, uint32_t max_frame) {
  if (n < kFrameHeader) return false;
  const uint32_t len = be24(p);
  const uint8_t type = p[3];
  const uint32_t sid = be32(p + 5) & 0x7fffffffu;
  if (len > std::min(max_frame, kDefaultMaxFrame * 64) || type > kContinuation || (p[5] & 0x80)) return false;
  if ((p[4] & ~known_flags(type)) != 0) return false;
  const bool conn_frame = type == kSettings || type == kPing || type == kGoaway;
  if (conn_frame != (sid == 0) && type != kWindowUpdate) return false;
  if (type == kSettings && len % 6 != 0) return false;
  return true;
}

void Http2Decoder::lose_framing(FlowContext& ctx, State& st, Direction dir, bool count) {
  DirState& d = st.d[index_of(dir)];
  if (count) ctx.count_decode_error();
  ctx.drop_carry(dir);
  d.phase = Phase::kLost;
  d.resync.lose();
  d.hpack_lost = true;  // a header block may have been in what is lost
  d.block_sid = 0;
  d.left = 0;
  // What the lost bytes carried of the open streams is gone: their records say so.
  for (Stream& s : pool_.streams(st.conn)) {
    if (s.id == 0) continue;
    for (StreamSide& sd : s.side) {
      if (sd.msg != nullptr) sd.msg->flags |= record_flag::kGap;
    }
    s.gap = true;
    s.side[index_of(dir)].grpc.left = UINT32_MAX;  // message boundaries are gone too
  }
}

void Http2Decoder::preface(FlowContext& ctx, State& st, std::span<const std::byte>& bytes) {
  DirState& d = st.d[index_of(kReq)];
  if (d.preface_got == 0 && static_cast<char>(bytes[0]) != 'P') {
    d.phase = Phase::kHeader;  // no preface: a capture that starts mid-connection (or a port-mapped flow)
    return;
  }
  while (!bytes.empty() && d.preface_got < kPreface.size()) {
    if (static_cast<char>(bytes[0]) != kPreface[d.preface_got]) {
      lose_framing(ctx, st, kReq, true);
      return;
    }
    bytes = bytes.subspan(1);
    ++d.preface_got;
  }
  if (d.preface_got == kPreface.size()) {
    d.phase = Phase::kHeader;
    // Both peers start from the initial SETTINGS values: frames are bounded by 16 KiB until they say more.
    st.d[0].max_frame = st.d[1].max_frame = kDefaultMaxFrame;
  }
}

void Http2Decoder::frame_header(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes,
                                uint64_t ts) {
  DirState& d = st.d[index_of(dir)];
  std::span<const std::byte> out;
  const Take t = ctx.take(dir, bytes, kFrameHeader, out);
  if (t == Take::kNeedMore) return;
  if (t == Take::kNoMemory) {
    lose_framing(ctx, st, dir, false);
    d.resync.add(bytes.size());
    bytes = {};
    return;
  }
  const uint8_t* h = u8(out);
  const uint32_t len = be24(h);
  if (len > d.max_frame) {  // over the receiver's SETTINGS_MAX_FRAME_SIZE: not HTTP/2 (or not in sync)
    lose_framing(ctx, st, dir, true);
    d.resync.add(bytes.size());
    bytes = {};
    return;
  }
  d.len = d.left = len;
  d.type = h[3];
  d.flags = h[4];
  d.sid = be32(h + 5) & 0x7fffffffu;
  d.pad = 0;
  d.prefix = 0;
  d.prefix_got = 0;
  d.promised = 0;
  // A header block in progress must go on with CONTINUATION frames of its stream (RFC 9113 6.10).
  if (d.block_sid != 0 && (d.type != kContinuation || d.sid != d.block_sid)) {
    ctx.count_decode_error();
    d.hpack_lost = true;  // the block was cut: the dynamic table may miss its entries
    d.block_sid = 0;
  }
  const bool padded = (d.flags & fflag::kPadded) != 0;
  d.phase = Phase::kPayload;
  switch (d.type) {
    case kData: d.prefix = padded ? 1 : 0; break;
    case kHeaders:
      d.prefix = static_cast<uint8_t>((padded ? 1 : 0) + ((d.flags & fflag::kPriority) ? 5 : 0));
      break;
    case kPushPromise: d.prefix = static_cast<uint8_t>((padded ? 1 : 0) + 4); break;
    case kContinuation:
      if (d.block_sid == 0) {  // no block to continue
        ctx.count_decode_error();
        d.phase = Phase::kSkip;
      }
      break;
    case kPriority: case kRstStream: case kSettings: case kPing: case kGoaway: case kWindowUpdate:
      d.phase = Phase::kControl;
      break;
    default: d.phase = Phase::kSkip; break;  // extension frames are skipped (RFC 9113 5.5)
  }
  if (d.phase == Phase::kPayload && ((d.sid == 0) || d.len < d.prefix)) {
    ctx.count_decode_error();  // stream frames on stream 0, or shorter than their own fields
    if (d.type == kHeaders || d.type == kPushPromise) d.hpack_lost = true;
    d.phase = Phase::kSkip;
  }
  // Frames of a stream count towards its direction's bytes; a HEADERS opens its header block.
  if (d.phase == Phase::kPayload && d.type == kHeaders) block_start(ctx, st, dir, d.sid, ts);
  if (d.phase == Phase::kPayload && (d.type == kData || d.type == kHeaders || d.type == kContinuation)) {
    if (Stream* s = find(st, d.type == kContinuation && d.block_push ? d.promised : d.sid)) {
      StreamSide& sd = s->side[index_of(d.type == kContinuation && d.block_push ? kReq : dir)];
      sd.frame_bytes += kFrameHeader + len;
      if (sd.msg != nullptr) sd.msg->last_ts_ns = ts;
    }
  }
  if (d.left == 0) {
    if (d.phase == Phase::kControl) control(ctx, st, dir, bytes, ts);
    else frame_end(ctx, st, dir, ts);
  }
}

void Http2Decoder::payload(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes,
                           uint64_t ts) {
  DirState& d = st.d[index_of(dir)];
  const bool padded = (d.flags & fflag::kPadded) != 0;
  while (!bytes.empty() && d.left > 0) {
    if (d.prefix_got < d.prefix) {
      const auto b = static_cast<uint8_t>(bytes[0]);
      bytes = bytes.subspan(1);
      --d.left;
      const uint8_t i = d.prefix_got++;
      if (padded && i == 0) {
        d.pad = b;
      } else if (d.type == kPushPromise) {
        d.promised = (d.promised << 8) | b;  // the 4 bytes after the pad length (HEADERS' priority: skipped)
      }
      if (d.prefix_got < d.prefix) continue;
      if (d.pad > d.left) {  // more padding than payload: a protocol error
        lose_framing(ctx, st, dir, true);
        d.resync.add(bytes.size());
        bytes = {};
        return;
      }
      if (d.type == kPushPromise) {
        d.promised &= 0x7fffffffu;
        block_start(ctx, st, dir, d.sid, ts);
        if (Stream* s = find(st, d.promised)) s->side[0].frame_bytes += kFrameHeader + d.len;
      }
      continue;
    }
    const uint32_t content = d.left > d.pad ? d.left - d.pad : 0;  // 0: in the padding
    const size_t n = std::min<size_t>(bytes.size(), content > 0 ? content : d.left);
    if (content > 0) {
      if (d.type == kData) {
        data_bytes(ctx, st, dir, bytes.first(n));
      } else if (d.block_sid != 0) {
        block_bytes(ctx, st, dir, bytes.first(n), false);
      }
    }
    bytes = bytes.subspan(n);
    d.left -= static_cast<uint32_t>(n);
  }
  if (d.left == 0) frame_end(ctx, st, dir, ts);
}

void Http2Decoder::control(FlowContext& ctx, State& st, Direction dir, std::span<const std::byte>& bytes,
                           uint64_t ts) {
  DirState& d = st.d[index_of(dir)];
  const uint32_t want = std::min(d.len, kControlMax);
  std::span<const std::byte> out;
  if (want > 0) {
    const Take t = ctx.take(dir, bytes, want, out);
    if (t == Take::kNeedMore) return;
    if (t == Take::kNoMemory) {
      lose_framing(ctx, st, dir, false);
      bytes = {};
      return;
    }
  }
  d.left = d.len - want;
  d.phase = d.left > 0 ? Phase::kSkip : Phase::kHeader;
  const uint8_t* p = u8(out);
  const Direction other = opposite(dir);
  switch (d.type) {
    case kRstStream:
      if (want >= 4 && d.sid != 0) {
        if (Stream* s = find(st, d.sid)) {
          s->rst = true;
          s->rst_code = be32(p);
          finish(ctx, st, *s, ts, 0);
        }
      }
      break;
    case kSettings:
      if (d.flags & fflag::kEndStream) break;  // ACK
      // What a peer says it accepts bounds what the other peer sends: its HPACK table, its frames.
      for (uint32_t i = 0; i + 6 <= want; i += 6) {
        const uint32_t id = uint32_t{p[i]} << 8 | p[i + 1];
        const uint32_t v = be32(p + i + 2);
        if (id == 1) {
          if (v > header_table_max_) ++ctx.counters().h2_hpack_capped;
          nghttp2_hd_inflate_change_table_size(pool_.conn(st.conn).hd[index_of(other)], std::min(v, header_table_max_));
        } else if (id == 5) {
          st.d[index_of(other)].max_frame = std::clamp<uint32_t>(v, kDefaultMaxFrame, kUnknownMaxFrame);
        }
      }
      break;
    default: break;  // PRIORITY, PING, GOAWAY, WINDOW_UPDATE: nothing a record needs
  }
  if (d.phase == Phase::kHeader) d.left = 0;
}

void Http2Decoder::frame_end(FlowContext& ctx, State& st, Direction dir, uint64_t ts) {
  DirState& d = st.d[index_of(dir)];
  d.phase = Phase::kHeader;
  switch (d.type) {
    case kData:
      if (d.flags & fflag::kEndStream) end_stream(ctx, st, dir, d.sid, ts);
      break;
    case kHeaders: case kPushPromise: case kContinuation:
      if (d.block_sid != 0 && (d.flags & fflag::kEndHeaders)) {
        block_bytes(ctx, st, dir, {}, true);
        block_end(ctx, st, dir, ts);
      }
      break;
    default: break;
  }
}

}  // namespace spanfeed::http2
