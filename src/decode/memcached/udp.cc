// memcached over UDP: the 8-byte frame header (request id, sequence, datagram count, reserved), text or binary
// inside; responses reassembled by request id and sequence (out-of-order datagrams stashed, bounded in count,
// bytes and time); lost datagrams end the response flagged `gap` with `missing_datagrams`, never dropped.
// Runs on a worker lcore; per-flow state in the builder's array, stashed datagrams in the decoder's fixed pool.
#include <cstring>

#include "memcached_decoder.h"

namespace spanfeed::memcached {

namespace {

constexpr size_t kFrameBytes = 8;

}  // namespace

void MemcachedDecoder::udp_datagram(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) {
  State& st = ctx.state<State>();
  UdpRx& u = st.udp;
  if (u.active && ts > u.first_ts + udp_timeout_ns_) udp_end(ctx, ts);  // the rest is not coming
  if (bytes.size() < kFrameBytes) {
    ctx.count_decode_error();
    return;
  }
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const uint16_t rid = be16(p);
  const uint16_t seq = be16(p + 2);
  const uint16_t count = be16(p + 4);
  std::span<const std::byte> payload = bytes.subspan(kFrameBytes);
  if (dir == kReq) {
    // One request per datagram (memcached drops requests announcing more than one): parsed on its own.
    key_ = rid;
    Side& sd = st.side[index_of(kReq)];
    ctx.drop_carry(kReq);
    sd = Side{};
    if (payload.empty()) {
      ctx.count_decode_error();
      return;
    }
    const bool binary = std::to_integer<uint8_t>(payload[0]) == 0x80;
    st.in_sync = true;  // a datagram starts a request
    if (binary) {
      sd.phase = Phase::kHeader;
      binary_data(ctx, kReq, payload, ts);
    } else {
      text_data(ctx, kReq, payload, ts);
      if (ctx.datagram_cut() != 0 && ctx.has_carry(kReq) && !sd.in_message && !sd.resync.lost) {
        // The capture cut the command line (snaplen): what it holds is the request, flagged truncated,
        // so that its answer still pairs with it.
        static constexpr char kEndOfLine[] = "\r\n";
        line_cut_ = true;
        text_data(ctx, kReq, std::as_bytes(std::span(kEndOfLine, 2)), ts);
        line_cut_ = false;
      }
    }
    if (sd.in_message) {
      end_in_progress(ctx, kReq, binary, ctx.offset(kReq, {}), ts, record_flag::kTruncated);
    } else if (ctx.has_carry(kReq) && !sd.resync.lost) {
      ctx.count_decode_error();  // an unterminated line / a header cut by the datagram's end
    }
    (void)seq;
    (void)count;
    ctx.drop_carry(kReq);
    sd = Side{};
    return;
  }
  if (u.active && rid != u.rid) udp_end(ctx, ts);  // the answer to another request: the last one is over
  if (!u.active) {
    if (u.has_last && rid == u.last_rid) return;  // a duplicate / straggler of a response already recorded
    const uint16_t last = u.last_rid;
    const bool has_last = u.has_last;
    u = UdpRx{};
    u.last_rid = last;
    u.has_last = has_last;
    u.active = true;
    u.rid = rid;
    u.first_ts = ts;
    st.side[index_of(kResp)] = Side{};
    st.udp_mode = Mode::kUnset;
    ctx.drop_carry(kResp);
  }
  // Every datagram announced so far is in, nothing waits: a "0 of n" now starts the next key's answer.
  const bool all_in = !u.broken && u.nstash == 0 && u.next >= u.count;
  if (count > u.count) u.count = count;
  key_ = rid;
  if (u.broken) {
    udp_late(u, seq);  // a datagram was lost: the message was recorded at the hole; the rest is only counted
  } else if (seq == u.next) {
    ++u.next;
    udp_feed(ctx, payload, ts);
    udp_drain(ctx, ts);
  } else if (seq < u.next) {
    // memcached 1.6 answers a multi-key get key by key, each numbered from 0: "0 of 0" (empty) for a miss,
    // "0 of 1" for a small VALUE, "0 of n" .. "n-1 of n" for a large one; the response goes on until END.
    // Any other repeated sequence number is a duplicate.
    if (seq != 0 || !(all_in || count <= 1)) return;
    if (!all_in) {
      // A small answer of the next key ("0 of 0", "0 of 1") before the rest of this key's datagrams: the
      // mirror reordered them. Fed now, its bytes would land inside this key's value; the response ends
      // here flagged gap (what arrives after is only counted), not silently short of values.
      udp_hole(ctx, static_cast<uint16_t>(u.count - u.next), ts);
      udp_late(u, seq);
    } else {
      if (count > 1) {
        u.next = 1;  // the next key's datagrams
        u.count = count;
      }
      udp_feed(ctx, payload, ts);
      udp_drain(ctx, ts);
    }
  } else if (u.nstash < kStashPerFlow && stash_free_n_ > 0 && payload.size() <= kStashBufBytes) {
    for (uint8_t i = 0; i < u.nstash; ++i) {
      if (u.stash[i].seq == seq) return;  // duplicate
    }
    const uint32_t b = stash_free_[--stash_free_n_];
    std::memcpy(stash_.get() + static_cast<size_t>(b) * kStashBufBytes, payload.data(), payload.size());
    u.stash[u.nstash++] = Stashed{seq, static_cast<uint16_t>(payload.size()), b};
    ++u.received;
  } else {
    // no room to wait for the datagrams before this one: they are lost
    udp_flush(ctx, ts);
    if (u.broken) {
      udp_late(u, seq);
    } else {
      udp_hole(ctx, static_cast<uint16_t>(seq - u.next), ts);
      udp_late(u, seq);
    }
  }
  if (ctx.datagram_cut() != 0) udp_cut(ctx, ts);
  const Side& rs = st.side[index_of(kResp)];
  if (u.broken) {
    if (u.next >= u.count) udp_end(ctx, ts);
  } else if (u.any_done && !rs.in_message && u.next >= u.count && u.nstash == 0) {
    u.active = false;  // complete
    u.has_last = true;
    u.last_rid = u.rid;
  }
}

// The next datagram in sequence into the response parser.
void MemcachedDecoder::udp_feed(FlowContext& ctx, std::span<const std::byte> payload, uint64_t ts) {
  State& st = ctx.state<State>();
  UdpRx& u = st.udp;
  ++u.received;
  if (u.broken || payload.empty()) return;
  u.payload_bytes += payload.size();
  if (st.udp_mode == Mode::kUnset) {
    st.udp_mode = std::to_integer<uint8_t>(payload[0]) == 0x81 ? Mode::kBinary : Mode::kText;
    if (st.udp_mode == Mode::kBinary) st.side[index_of(kResp)].phase = Phase::kHeader;
  }
  if (st.udp_mode == Mode::kBinary) {
    binary_data(ctx, kResp, payload, ts);
  } else {
    text_data(ctx, kResp, payload, ts);
  }
}

// Every stashed datagram, in sequence order, across the holes between them (the holes are lost datagrams).
void MemcachedDecoder::udp_flush(FlowContext& ctx, uint64_t ts) {
  UdpRx& u = ctx.state<State>().udp;
  while (u.nstash > 0) {
    uint8_t lo = 0;
    for (uint8_t i = 1; i < u.nstash; ++i) {
      if (u.stash[i].seq < u.stash[lo].seq) lo = i;
    }
    const Stashed s = u.stash[lo];
    u.stash[lo] = u.stash[--u.nstash];
    if (s.seq > u.next) udp_hole(ctx, static_cast<uint16_t>(s.seq - u.next), ts);
    if (s.seq >= u.next) u.next = static_cast<uint16_t>(s.seq + 1);
    --u.received;  // counted when stashed
    udp_feed(ctx, {stash_.get() + static_cast<size_t>(s.buf) * kStashBufBytes, s.len}, ts);
    stash_free_[stash_free_n_++] = s.buf;
  }
}

// A datagram after a loss: counted (one announced lost that arrives late is no longer missing).
void MemcachedDecoder::udp_late(UdpRx& u, uint16_t seq) {
  ++u.received;
  if (seq >= u.next) {
    u.missing = static_cast<uint16_t>(u.missing + (seq - u.next));
    u.next = static_cast<uint16_t>(seq + 1);
  } else if (u.missing > 0) {
    --u.missing;
  }
}

// Stashed datagrams that are next in sequence now.
void MemcachedDecoder::udp_drain(FlowContext& ctx, uint64_t ts) {
  UdpRx& u = ctx.state<State>().udp;
  for (bool found = true; found;) {
    found = false;
    for (uint8_t i = 0; i < u.nstash; ++i) {
      if (u.stash[i].seq != u.next) continue;
      const Stashed s = u.stash[i];
      u.stash[i] = u.stash[--u.nstash];
      ++u.next;
      --u.received;  // counted when stashed
      udp_feed(ctx, {stash_.get() + static_cast<size_t>(s.buf) * kStashBufBytes, s.len}, ts);
      stash_free_[stash_free_n_++] = s.buf;
      found = true;
      break;
    }
  }
}

// `lost` datagrams will not come: the message in progress ends here, flagged; the rest is only counted.
void MemcachedDecoder::udp_hole(FlowContext& ctx, uint16_t lost, uint64_t ts) {
  State& st = ctx.state<State>();
  UdpRx& u = st.udp;
  u.missing = static_cast<uint16_t>(u.missing + lost);
  if (u.broken) return;
  u.broken = true;
  end_in_progress(ctx, kResp, st.udp_mode == Mode::kBinary, ctx.offset(kResp, {}), ts, record_flag::kGap);
  ctx.drop_carry(kResp);
  st.side[index_of(kResp)] = Side{};
}

// The capture cut a datagram of the response (snaplen): what was read of it ends here, flagged truncated;
// the rest of the response is only counted.
void MemcachedDecoder::udp_cut(FlowContext& ctx, uint64_t ts) {
  State& st = ctx.state<State>();
  UdpRx& u = st.udp;
  if (u.broken) return;
  u.broken = true;
  end_in_progress(ctx, kResp, st.udp_mode == Mode::kBinary, ctx.offset(kResp, {}), ts, record_flag::kTruncated);
  ctx.drop_carry(kResp);
  st.side[index_of(kResp)] = Side{};
}

// The response reassembled so far is over (another request id answered, reassembly time up, flow closed):
// stashed datagrams are fed across the holes, what is in progress ends flagged, and a response with
// datagrams but no message (its first datagram lost) still becomes one, so the request is not a timeout.
void MemcachedDecoder::udp_end(FlowContext& ctx, uint64_t ts) {
  State& st = ctx.state<State>();
  UdpRx& u = st.udp;
  if (!u.active) return;
  key_ = u.rid;
  udp_flush(ctx, ts);
  if (u.count > u.next) udp_hole(ctx, static_cast<uint16_t>(u.count - u.next), ts);
  end_in_progress(ctx, kResp, st.udp_mode == Mode::kBinary, ctx.offset(kResp, {}), ts, record_flag::kTruncated);
  if (!u.any_done && u.received > 0) {
    Message* m = ctx.new_message(u.first_ts);
    if (m != nullptr) {
      m->flags |= u.missing > 0 ? record_flag::kGap : record_flag::kTruncated;
      m->last_ts_ns = ts;
      m->stream_end = ctx.offset(kResp, {});
      udp_response_fields(ctx, m);
      ctx.complete_response_by_key(m, RecordStatus::kOk, u.rid);
    }
  }
  if (u.missing > 0) ++ctx.counters().gaps;
  udp_release(u);
  ctx.drop_carry(kResp);
  st.side[index_of(kResp)] = Side{};
  u.active = false;
  u.has_last = true;
  u.last_rid = u.rid;
}

void MemcachedDecoder::udp_release(UdpRx& u) {
  for (uint8_t i = 0; i < u.nstash; ++i) stash_free_[stash_free_n_++] = u.stash[i].buf;
  u.nstash = 0;
}

void MemcachedDecoder::udp_response_fields(FlowContext& ctx, Message* m) {
  const UdpRx& u = ctx.state<State>().udp;
  m->bytes = u.payload_bytes;
  m->fields.add_uint("datagrams", u.received);
  if (u.missing > 0) {
    m->fields.add_uint("missing_datagrams", u.missing);
    m->flags |= record_flag::kGap;
  }
}

}  // namespace spanfeed::memcached
