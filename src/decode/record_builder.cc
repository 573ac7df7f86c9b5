// RecordBuilder: per-worker session layer between the Reassembler and the protocol decoders: the session table,
// the Reassembler callbacks, FlowContext's plain services (carry: carry.cc, detection: detect.cc, matching and
// emission: matcher.cc). Runs on one worker lcore; allocates only in the constructor, never per packet.
#include <algorithm>
#include <cstring>

#include "record_builder_internal.h"

#include "spanfeed/decoder.h"

namespace spanfeed {

using namespace builder;

std::string validate(const DecodeConfig& cfg) {
  if (cfg.worker_id > 255) return "decode: worker_id must be < 256 (it is the high byte of record ids)";
  if (cfg.flow_capacity == 0) return "decode: flow_capacity must be > 0 (= flow table capacity)";
  if (cfg.message_pool_size == 0) return "decode: message_pool_size must be > 0";
  if (cfg.max_pending_per_flow == 0) return "decode: max_pending_per_flow must be > 0";
  if (cfg.carry_bytes < 512 || cfg.carry_bytes > (1u << 20))
    return "decode: carry_bytes must be in [512, 1 MiB] (longest line / split DNS message kept)";
  if (cfg.carry_buffer_count == 0) return "decode: carry_buffer_count must be > 0";
  if (cfg.response_timeout_ns == 0) return "decode: response_timeout_ns must be > 0";
  for (const PortBinding& b : cfg.ports) {
    if (b.port == 0) return "decode: port 0 in the protocol port map";
    if (b.protocol == Protocol::kUnknown || b.protocol == Protocol::kCount)
      return "decode: unknown protocol in the port map";
  }
  for (const ProtocolOptionSetting& o : cfg.options) {
    std::string e = check_protocol_option(o.protocol, o.name, o.value);
    if (!e.empty()) return "decode." + std::string(to_string(o.protocol)) + "." + o.name + ": " + e;
  }
  return {};
}

std::string_view to_string(DetectOutcome o) {
  switch (o) {
    case DetectOutcome::kByPort: return "by_port";
    case DetectOutcome::kBySniff: return "by_sniff";
    case DetectOutcome::kNoDecoder: return "no_decoder";
    case DetectOutcome::kUnknown: return "unknown";
    case DetectOutcome::kNoData: return "no_data";
    case DetectOutcome::kCount: break;
  }
  return "?";
}

std::string_view to_string(TimeoutCause c) {
  switch (c) {
    case TimeoutCause::kExpired: return "expired";
    case TimeoutCause::kOverflow: return "overflow";
    case TimeoutCause::kGap: return "gap";
    case TimeoutCause::kClose: return "close";
    case TimeoutCause::kCount: break;
  }
  return "?";
}

// ---------------------------------------------------------------- FlowContext

bool FlowContext::udp() const { return s_.udp; }
uint32_t FlowContext::datagram_cut() const { return s_.datagram_cut; }
void FlowContext::set_match_by_key(bool on) { s_.by_key = on; }
DecodeCounters& FlowContext::counters() { return b_.counters_; }
Protocol FlowContext::protocol() const { return s_.protocol; }
void FlowContext::content(Direction dir, std::span<const std::byte> bytes, bool compressed) {
  StreamObserver* c = b_.observer_;
  if (c == nullptr) return;
  if (compressed) {
    c->body(slot_, s_.protocol, dir, bytes);
  } else {
    c->decoded(slot_, s_.protocol, dir, bytes);
  }
}

void FlowContext::count_decode_error() { ++b_.counters_.decode_errors[static_cast<size_t>(s_.protocol)]; }

void FlowContext::count_resync(uint64_t skipped_bytes) {
  ++b_.counters_.resyncs;
  b_.counters_.resync_skipped_bytes += skipped_bytes;
}

void FlowContext::count_gap_absorbed() { ++b_.counters_.gaps_absorbed; }

void FlowContext::count_partial_at_close() { ++b_.counters_.partial_at_close; }

// ---------------------------------------------------------------- RecordBuilder

RecordBuilder::RecordBuilder(const DecodeConfig& cfg, RecordSink& sink)
    : cfg_(cfg),
      sink_(&sink),
      tcp_port_map_(65536, static_cast<uint8_t>(Protocol::kUnknown)),
      udp_port_map_(65536, static_cast<uint8_t>(Protocol::kUnknown)) {
  // Clamp instead of failing (validate() reports these at start-up).
  cfg_.flow_capacity = std::max<uint32_t>(cfg_.flow_capacity, 1);
  cfg_.message_pool_size = std::max<uint32_t>(cfg_.message_pool_size, 1);
  cfg_.max_pending_per_flow = std::max<uint32_t>(cfg_.max_pending_per_flow, 1);
  cfg_.carry_bytes = std::clamp<uint32_t>(cfg_.carry_bytes, 512, 1u << 20);
  cfg_.carry_buffer_count = std::max<uint32_t>(cfg_.carry_buffer_count, 1);
  cfg_.worker_id &= 0xFF;
  for (const PortBinding& b : cfg_.ports) {
    if (b.protocol == Protocol::kUnknown || b.protocol == Protocol::kCount) continue;
    auto& map = b.transport == Transport::kTcp ? tcp_port_map_ : udp_port_map_;
    map[b.port] = static_cast<uint8_t>(b.protocol);
  }
  // Reserved, not constructed: grow_sessions() makes them as slots are reached.
  sessions_.reserve(cfg_.flow_capacity);
  // Reserved, not constructed: a slot's memory is touched (made resident) the first time the pool
  // reaches it (alloc_message), so a small capture keeps a small footprint. No reallocation ever
  // happens (the capacity is the pool size): messages never move.
  slots_.reserve(cfg_.message_pool_size);
  held_ = std::make_unique<HeldResponse[]>(kHeldRing);
  // Not zeroed, for the same reason: carry buffers are written before they are read.
  carry_arena_ = std::make_unique_for_overwrite<std::byte[]>(static_cast<size_t>(cfg_.carry_bytes) *
                                                             cfg_.carry_buffer_count);
  carry_free_.reserve(cfg_.carry_buffer_count);
  for (uint32_t i = cfg_.carry_buffer_count; i-- > 0;) carry_free_.push_back(i);

  for (const ProtocolDescriptor* d : protocol_registry()) register_decoder(d->make(cfg_));
}

RecordBuilder::~RecordBuilder() = default;

FlowSession& RecordBuilder::grow_sessions(uint32_t slot) {
  while (sessions_.size() <= slot) sessions_.emplace_back().carry = {kNoBuf, kNoBuf};
  sessions_made_ = static_cast<uint32_t>(sessions_.size());
  return sessions_[slot];
}

void RecordBuilder::register_decoder(std::unique_ptr<Decoder> d) {
  if (!d) return;
  const auto p = static_cast<size_t>(d->protocol());
  if (p == 0 || p >= kProtocolCount) return;
  decoders_[p] = std::move(d);
}
void RecordBuilder::on_open(const Flow& flow, uint64_t ts_ns) {
  FlowSession& s = session(flow);
  if (s.open) close_session(flow.slot, ts_ns);  // defensive: a slot reused without on_close
  s.base = {0, 0};
  s.pending_head = s.pending_tail = kNone;
  s.pending_count = 0;
  s.owed_evicted = 0;
  s.early = kNone;
  s.datagram_cut = 0;
  s.by_key = false;
  s.client = {flow.client_addr(), flow.client_port()};
  s.server = {flow.server_addr(), flow.server_port()};
  s.ip_version = flow.key.ip_version;
  s.tunnel = flow.tunnel;
  s.udp = flow.key.proto == kProtoUdp;
  s.protocol = Protocol::kUnknown;
  s.detect_state = kDetectNone;
  s.sniff_chunks = 0;
  sniff_prefix(s).len = {0, 0};
  s.swapped = false;
  s.conflict = {false, false};
  s.gap_before = {false, false};
  s.resp_unsynced = false;
  s.open = true;
  ++counters_.flows_opened;
  ++counters_.flows_undetected_now;
  const auto& map = s.udp ? udp_port_map_ : tcp_port_map_;
  auto by_server = static_cast<Protocol>(map[s.server.port]);
  auto by_client = static_cast<Protocol>(map[s.client.port]);
  if (by_server != Protocol::kUnknown) {
    s.protocol = by_server;
    s.detect_state = kDetectPort;
  } else if (by_client != Protocol::kUnknown) {
    s.protocol = by_client;  // the flow's "client" owns the service port: swap roles
    s.swapped = true;
    std::swap(s.client, s.server);
    s.detect_state = kDetectPort;
  }
}
void RecordBuilder::on_data(const Flow& flow, Direction dir, std::span<const std::byte> data, uint64_t ts_ns,
                            uint64_t peer_acked) {
  FlowSession& s = session(flow);
  chunk_acked_ = peer_acked;
  // The common chunk: the flow's decoder runs (decode_chunk inline, one call
  // and one frame less per chunk).
  if (s.detect_state == kDetectActive && s.open && !data.empty()) [[likely]] {
    decode_chunk(flow, s, dir, data, ts_ns);
    return;
  }
  on_data_detect(flow, s, dir, data, ts_ns);
}

void RecordBuilder::on_data_detect(const Flow& flow, FlowSession& s, Direction dir, std::span<const std::byte> data,
                                   uint64_t ts_ns) {
  if (!s.open || data.empty()) return;
  if (s.detect_state != kDetectActive) {
    std::span<const std::byte> replay;
    switch (detect(flow, s, dir, data, &replay, ts_ns)) {
      case Detected::kKept:
        s.datagram_cut = 0;
        return;
      case Detected::kNo:
        s.datagram_cut = 0;
        counters_.undecoded_bytes += data.size();
        // Not decoded: rules still count their matches (no record to tag).
        if (observer_ != nullptr) observer_->scan(flow.slot, s.protocol, false, s.udp, logical(s, dir), 0, data);
        return;
      case Detected::kDecode:
        if (!replay.empty()) decode_chunk(flow, s, dir, replay, ts_ns);
        break;
    }
  }
  decode_chunk(flow, s, dir, data, ts_ns);
}

[[gnu::always_inline]] inline void RecordBuilder::decode_chunk(const Flow& flow, FlowSession& s, Direction dir,
                                                               std::span<const std::byte> data, uint64_t ts_ns) {
  const Direction ld = logical(s, dir);
  const size_t d = index_of(ld);
  // Scan before decoding: the messages this chunk completes find their matches waiting.
  if (observer_ != nullptr) observer_->scan(flow.slot, s.protocol, true, s.udp, ld, s.base[d], data);
  {
    FlowContext ctx(*this, s, flow.slot, ld, data.size());
    decoders_[static_cast<size_t>(s.protocol)]->data(ctx, ld, data, ts_ns);
  }
  s.base[d] += data.size();
  s.datagram_cut = 0;
  if (s.carry_mode[d] & kCarryClearPending) release_carry(s, d);
  // expire() only when the oldest deadline has passed (after nearly every chunk it has not).
  if (oldest_due(ts_ns)) expire(ts_ns, cfg_.timeout_budget);
  if (held_due(ts_ns)) [[unlikely]] release_held(ts_ns);
}

void RecordBuilder::on_gap(const Flow& flow, Direction dir, uint64_t missing_bytes, GapReason /*reason*/,
                           uint64_t ts_ns) {
  FlowSession& s = session(flow);
  if (!s.open) return;
  // A datagram cut by the snaplen: told before it, for its decoder (reset once it is decoded).
  if (s.udp) s.datagram_cut = static_cast<uint32_t>(std::min<uint64_t>(missing_bytes, UINT32_MAX));
  if (observer_ != nullptr) observer_->gap(flow.slot, logical(s, dir));
  if (s.detect_state == kDetectSniffing) drop_prefix(flow.slot, s, index_of(dir));  // kept bytes end at a hole
  if (s.detect_state == kDetectPort) {
    // Bytes lost before the first data (e.g. the out-of-order buffer gave up on a hole at the stream's
    // start): the decoder starts now so that it hears of the gap and resyncs, instead of taking the tail
    // of a lost message for the start of one.
    const bool has = decoders_[static_cast<size_t>(s.protocol)] != nullptr;
    start_decoder(flow, s, s.protocol, has ? DetectOutcome::kByPort : DetectOutcome::kNoDecoder, s.swapped, ts_ns);
  }
  // Told to the decoder a sniff starts later, or to one that takes the flow over (FlowContext::hand_over).
  s.gap_before[index_of(dir)] = true;
  if (s.detect_state != kDetectActive) return;
  const Direction ld = logical(s, dir);
  const size_t d = index_of(ld);
  ++counters_.gaps;
  counters_.gap_bytes += missing_bytes;
  release_carry(s, d);  // bytes kept before the gap cannot be completed
  const uint64_t absorbed = counters_.gaps_absorbed;
  {
    FlowContext ctx(*this, s, flow.slot);
    decoders_[static_cast<size_t>(s.protocol)]->gap(ctx, ld, missing_bytes, ts_ns);
  }
  // Server bytes lost outside a message the decoder could skip them in: a response owed to any request
  // still pending may have been among them, or among the bytes after them until the decoder finds its
  // way again. Should such a request time out, its record says so (flag gap).
  if (ld == Direction::kServerToClient && counters_.gaps_absorbed == absorbed) {
    s.resp_unsynced = true;
    for (uint32_t qi = s.pending_head; qi != kNone; qi = slots_[qi].flow_next) slots_[qi].answer_in_gap = true;
  }
  s.base[d] += missing_bytes;
  release_carry(s, d);
}

void RecordBuilder::on_overlap_conflict(const Flow& flow, Direction dir, uint64_t /*ts_ns*/) {
  FlowSession& s = session(flow);
  if (s.open) s.conflict[index_of(dir)] = true;
}

void RecordBuilder::on_fin(const Flow& flow, Direction dir, uint64_t ts_ns) {
  FlowSession& s = session(flow);
  if (!s.open || s.detect_state != kDetectActive) return;
  const Direction ld = logical(s, dir);
  FlowContext ctx(*this, s, flow.slot);
  decoders_[static_cast<size_t>(s.protocol)]->fin(ctx, ld, ts_ns);
  if (s.carry_mode[index_of(ld)] & kCarryClearPending) release_carry(s, index_of(ld));
}

void RecordBuilder::on_rst(const Flow& /*flow*/, Direction /*dir*/, uint64_t /*ts_ns*/) {
  // on_close(kRst) follows: messages in progress are flushed there.
}

void RecordBuilder::on_close(const Flow& flow, CloseReason /*reason*/, uint64_t ts_ns) {
  close_session(flow.slot, ts_ns);
}

void RecordBuilder::close_session(uint32_t slot, uint64_t ts_ns) {
  if (slot >= sessions_.size()) return;  // never opened
  FlowSession& s = sessions_[slot];
  if (!s.open) return;
  if (s.detect_state == kDetectActive) {
    FlowContext ctx(*this, s, slot);
    decoders_[static_cast<size_t>(s.protocol)]->close(ctx, ts_ns);
    release_early(s);
    ctx.flush_pending(TimeoutCause::kClose, 0);
  } else if (s.detect_state == kDetectNone || s.detect_state == kDetectPort) {
    --counters_.flows_undetected_now;
    ++counters_.detect[static_cast<size_t>(DetectOutcome::kNoData)];
  } else if (s.detect_state == kDetectSniffing) {
    drop_prefix(slot, s, 0);
    drop_prefix(slot, s, 1);
    --counters_.flows_undetected_now;
    ++counters_.detect[static_cast<size_t>(DetectOutcome::kUnknown)];
  }
  if (observer_ != nullptr) observer_->close(slot);
  release_carry(s, 0);
  release_carry(s, 1);
  s.open = false;
  s.detect_state = kDetectNone;
}
void RecordBuilder::advance_time(uint64_t now_ns) {
  expire(now_ns, UINT32_MAX);
  release_held(now_ns);
}

void RecordBuilder::finish(uint64_t now_ns) {
  for (uint32_t i = 0; i < sessions_.size(); ++i) {
    if (sessions_[i].open) close_session(i, now_ns);
  }
}
}  // namespace spanfeed
