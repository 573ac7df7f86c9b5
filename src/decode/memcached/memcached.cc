// memcached decoder entry points: a TCP flow is text or binary (its first byte), UDP datagrams carry either;
// the message end shared by both encodings; the factory and structural check for the descriptor.
// Runs on a worker lcore; per-flow state lives in the builder's preallocated array; allocates only in the
// constructor (the UDP stash pool).
#include "memcached.h"

#include "memcached_decoder.h"

namespace spanfeed::memcached {

namespace {

constexpr uint32_t kStashBuffers = 128;  // out-of-order UDP datagrams held per worker (x 1500 B)

bool magic(std::span<const std::byte> b) {
  return !b.empty() && (std::to_integer<uint8_t>(b[0]) == 0x80 || std::to_integer<uint8_t>(b[0]) == 0x81);
}

}  // namespace

MemcachedDecoder::MemcachedDecoder(const DecodeConfig& cfg)
    : udp_timeout_ns_(cfg.option(Protocol::kMemcached, "udp_reassembly_ms") * 1'000'000ull),
      stash_count_(kStashBuffers),
      stash_(std::make_unique_for_overwrite<std::byte[]>(kStashBuffers * kStashBufBytes)),
      stash_free_(std::make_unique<uint32_t[]>(kStashBuffers)) {
  for (uint32_t i = 0; i < stash_count_; ++i) stash_free_[stash_free_n_++] = i;
}

SniffResult MemcachedDecoder::sniff(std::span<const std::byte> chunk, Transport t) {
  if (t == Transport::kUdp) {
    // memcached's frame header: request id, sequence, datagram count, reserved (0)
    if (chunk.size() < 8 + 5) return SniffResult::kNo;
    const auto* p = reinterpret_cast<const uint8_t*>(chunk.data());
    if (be16(p + 6) != 0 || be16(p + 4) == 0 || be16(p + 2) >= be16(p + 4)) return SniffResult::kNo;
    chunk = chunk.subspan(8);
  }
  const auto* h = reinterpret_cast<const uint8_t*>(chunk.data());
  if (plausible_binary(h, chunk.size(), false)) return SniffResult::kRequest;
  if (plausible_binary(h, chunk.size(), true)) return SniffResult::kResponse;
  if (text_request_start(chunk)) return SniffResult::kRequest;
  if (text_response_start(chunk)) return SniffResult::kResponse;
  return SniffResult::kNo;
}

void MemcachedDecoder::open(FlowContext& ctx, uint64_t /*ts*/) {
  ctx.state<State>() = State{};
  if (ctx.udp()) ctx.set_match_by_key(true);  // by the frame's request id
}

void MemcachedDecoder::data(FlowContext& ctx, Direction dir, std::span<const std::byte> bytes, uint64_t ts) {
  if (ctx.udp()) {
    udp_datagram(ctx, dir, bytes, ts);
    return;
  }
  State& st = ctx.state<State>();
  if (st.mode == Mode::kUnset) {
    // A flow is one protocol or the other from its first byte: a text command never starts with 0x80/0x81.
    st.mode = magic(bytes) ? Mode::kBinary : Mode::kText;
    if (st.mode == Mode::kBinary) {
      ctx.set_match_by_key(true);  // by the opaque
      st.side[0].phase = st.side[1].phase = Phase::kHeader;
    }
  } else if (st.mode == Mode::kText && !st.text_seen &&
             plausible_binary(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), dir == kResp)) {
    // A binary connection met mid-stream inside a value was taken for text; no text command has been read
    // since: a chunk that starts with a binary header makes it binary. (It stayed text, and no record of the
    // connection was made.)
    uint64_t skipped = 0;  // what was read as text: one decode error, framing found again here
    for (const Direction d : {kReq, kResp}) {
      end_in_progress(ctx, d, false, ctx.offset(d, d == dir ? bytes : std::span<const std::byte>{}), ts,
                      record_flag::kTruncated);
      skipped += ctx.kept(d).size() + st.side[index_of(d)].resync.skipped;
      ctx.drop_carry(d);
      st.side[index_of(d)] = Side{};
      st.side[index_of(d)].phase = Phase::kHeader;
    }
    st.mode = Mode::kBinary;
    ctx.set_match_by_key(true);
    ctx.count_decode_error();
    ctx.count_resync(skipped);
  }
  if (st.mode == Mode::kBinary) {
    binary_data(ctx, dir, bytes, ts);
    return;
  }
  const Side& resp = st.side[index_of(kResp)];
  if (dir == kResp && st.side[index_of(kReq)].in_message && ctx.pending_count() == 0 && !resp.in_message &&
      !ctx.has_carry(kResp)) {
    // A reply begins while a request is still incomplete and none waits: the server had all of it, we did
    // not (its tail missed by the capture, reported only when the client sends again). It ends here,
    // flagged truncated, and pairs with this reply (HTTP and Redis do the same). Else the reply was
    // `unmatched` and every later reply of the connection paired with the request before its own.
    end_in_progress(ctx, kReq, false, ctx.offset(kReq, {}), ts, record_flag::kTruncated);
    ctx.drop_carry(kReq);
  }
  text_data(ctx, dir, bytes, ts);
}

void MemcachedDecoder::end_in_progress(FlowContext& ctx, Direction dir, bool binary, uint64_t end, uint64_t ts,
                                       uint32_t flags) {
  Side& sd = ctx.state<State>().side[index_of(dir)];
  if (!sd.in_message) return;
  if (binary) {
    binary_end(ctx, sd, dir, {}, end, ts, flags);
  } else {
    finish(ctx, sd, dir, end, ts, flags);
  }
}

void MemcachedDecoder::gap(FlowContext& ctx, Direction dir, uint64_t missing, uint64_t ts) {
  if (ctx.udp()) return;  // datagrams: a cut one was parsed as far as it went
  State& st = ctx.state<State>();
  Side& sd = st.side[index_of(dir)];
  const bool binary = st.mode == Mode::kBinary;
  const uint64_t at = ctx.offset(dir, {});
  if (sd.in_message) {
    if (sd.msg != nullptr) sd.msg->flags |= record_flag::kGap;
    const bool skipping = binary ? sd.phase == Phase::kValue && !sd.keep_value : sd.phase == Phase::kData;
    if (skipping && missing <= sd.remaining) {
      sd.remaining -= missing;  // inside a data block / value: skip the hole
      ctx.count_gap_absorbed();
      if (sd.remaining == 0) {
        if (binary) {
          binary_end(ctx, sd, dir, {}, at + missing, ts, 0);
        } else {
          sd.phase = Phase::kLine;
          if (sd.done_after_data) finish(ctx, sd, dir, at + missing, ts, 0);
        }
      }
      return;
    }
    end_in_progress(ctx, dir, binary, at, ts, record_flag::kGap);
  }
  sd = Side{};
  sd.resync.lose();
  if (binary) {
    sd.phase = Phase::kHeader;
    // Responses name their request: the pending ones still pair (or time out). A quiet one's answer (a hit,
    // an error) may have been in the hole: a later response no longer proves what it got (resolve_quiet).
    // A quiet one pending when the client side lost bytes: the request after it that the server answered
    // may be among them; the next answered one implies its outcome, later (kAuxReqGap: flagged gap).
    for (Message* q = ctx.front_request(); q != nullptr; q = ctx.next_request(q)) {
      if ((q->aux & kAuxQuiet) != 0) {
        if (dir == kResp) q->flags |= record_flag::kGap;
        else q->aux |= kAuxReqGap;
      }
    }
    return;
  }
  if (dir == kReq) {
    st.in_sync = false;
    if (!st.after_hole) {
      st.after_hole = true;
      st.before_hole = static_cast<uint32_t>(ctx.pending_count());
    }
  }
  if (dir == kResp) {
    ctx.flush_pending(TimeoutCause::kGap, record_flag::kGap);
    st.before_hole = 0;
  }
}

void MemcachedDecoder::fin(FlowContext& ctx, Direction dir, uint64_t ts) {
  if (ctx.udp()) return;
  end_in_progress(ctx, dir, ctx.state<State>().mode == Mode::kBinary, ctx.offset(dir, {}), ts,
                  record_flag::kTruncated);
}

void MemcachedDecoder::close(FlowContext& ctx, uint64_t ts) {
  if (ctx.udp()) {
    udp_end(ctx, ts);
    return;
  }
  for (Direction dir : {kReq, kResp}) {
    const Side& sd = ctx.state<State>().side[index_of(dir)];
    // a command / reply line or a binary header cut by the end of the flow: too little to make a record of
    if (!sd.in_message && !sd.resync.lost && ctx.has_carry(dir)) ctx.count_partial_at_close();
    fin(ctx, dir, ts);
  }
}

void MemcachedDecoder::finish(FlowContext& ctx, Side& sd, Direction dir, uint64_t end, uint64_t ts, uint32_t flags) {
  State& st = ctx.state<State>();
  Message* m = sd.msg;
  Side done = sd;
  const bool binary_phase = sd.phase == Phase::kHeader || sd.phase == Phase::kHead || sd.phase == Phase::kValue;
  sd = Side{};
  if (binary_phase) sd.phase = Phase::kHeader;
  if (m == nullptr) return;
  m->flags |= flags;
  m->end_span(done.start, end, ts);
  if (dir == kReq) {
    if (ctx.udp()) {
      m->fields.add_string("transport", "udp");
      m->fields.add_uint("request_id", key_);
    }
    if (done.noreply) {
      ctx.emit_no_reply(m);
    } else {
      ctx.commit_request(m);
    }
    return;
  }
  const bool binary = ctx.udp() ? st.udp_mode == Mode::kBinary : st.mode == Mode::kBinary;
  if (!binary) text_finish_response(ctx, done, m);
  const RecordStatus status = done.error ? RecordStatus::kError : RecordStatus::kOk;
  if (ctx.udp()) {
    udp_response_fields(ctx, m);
    st.udp.any_done = true;
    ctx.complete_response_by_key(m, status, st.udp.rid);
    return;
  }
  if (binary) {
    ctx.complete_response_by_key(m, status, done.opaque);
    return;
  }
  if (st.after_hole) {
    // After a client-side hole: the replies of the requests made before it pair as usual; the next ones
    // may answer requests the hole took. One that cannot answer the request it would pair with answers a
    // lost one (unmatched, the request waits); one that can is paired, flagged gap, until the requests
    // pending drain (a client waiting for its replies: its next request comes after the lost ones').
    if (st.before_hole > 0) {
      --st.before_hole;
    } else if (const Message* q = ctx.front_request(); q != nullptr) {
      if (!text_reply_fits(q->fields.get_string("command"), m->fields.get_string("response"))) {
        ctx.complete_unmatched(m);
        return;
      }
      m->flags |= record_flag::kGap;
    }
  }
  ctx.complete_response(m, status);
  if (st.after_hole && ctx.pending_count() == 0) st.after_hole = false;
}

std::unique_ptr<Decoder> make_decoder(const DecodeConfig& cfg) { return std::make_unique<MemcachedDecoder>(cfg); }
SniffResult confirm(std::span<const std::byte> chunk, Transport t) { return MemcachedDecoder::sniff(chunk, t); }

}  // namespace spanfeed::memcached
