// RecordBuilder: per-worker session layer between the Reassembler and the protocol decoders; FlowContext services.
// Runs on one worker lcore; allocates only in the constructor (pools, per-flow arrays), never per packet.
#include <algorithm>
#include <cstring>

#include "spanfeed/decoder.h"

namespace spanfeed {

namespace {

// FlowSession::detect_state
constexpr uint8_t kDetectNone = 0;       // no data yet, no port match
constexpr uint8_t kDetectPort = 1;       // port matched at open, no data yet
constexpr uint8_t kDetectSniffing = 2;   // data seen, no decoder yet
constexpr uint8_t kDetectActive = 3;     // decoder running
constexpr uint8_t kDetectIgnored = 4;    // unknown / no decoder: bytes are not decoded

// FlowSession::carry_mode bits
constexpr uint8_t kCarryClearPending = 1;  // carry content was handed out: empty it on the next call
constexpr uint8_t kCarrySkipLine = 2;      // line over the cap: carry holds its cut prefix, skip to '\n'

constexpr uint32_t kNoBuf = UINT32_MAX;

// While a flow is sniffed (no decoder yet), FlowSession::state keeps each
// direction's first bytes when they arrive in chunks too short to classify
// ("GE" then "T / HTTP/1.1"); a decoder that takes the flow gets them first.
constexpr size_t kSniffPrefixBytes = 120;
struct SniffPrefix {
  std::array<uint8_t, 2> len;
  std::array<uint8_t, 6> pad;
  std::array<std::array<std::byte, kSniffPrefixBytes>, 2> bytes;
};
static_assert(sizeof(SniffPrefix) <= kDecoderStateBytes);
SniffPrefix& sniff_prefix(FlowSession& s) { return *reinterpret_cast<SniffPrefix*>(s.state.data()); }
constexpr uint64_t kIdMask = (1ull << 56) - 1;

std::string_view strip_cr(std::string_view s) {
  if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
  return s;
}

}  // namespace

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
const DecodeConfig& FlowContext::config() const { return b_.cfg_; }
DecodeCounters& FlowContext::counters() { return b_.counters_; }
Protocol FlowContext::protocol() const { return s_.protocol; }

uint64_t FlowContext::offset(Direction dir, std::span<const std::byte> rest) const {
  if (dir != chunk_dir_) return s_.base[index_of(dir)];
  const size_t consumed = chunk_len_ >= rest.size() ? chunk_len_ - rest.size() : 0;
  return s_.base[index_of(dir)] + consumed;
}

bool FlowContext::has_carry(Direction dir) const {
  const size_t d = index_of(dir);
  return s_.carry_len[d] != 0 && (s_.carry_mode[d] & kCarryClearPending) == 0;
}

void FlowContext::drop_carry(Direction dir) { b_.release_carry(s_, index_of(dir)); }

std::span<const std::byte> FlowContext::kept(Direction dir) const {
  const size_t d = index_of(dir);
  if (!has_carry(dir) || s_.carry[d] == kNoBuf) return {};
  return {b_.carry_data(s_.carry[d]), s_.carry_len[d]};
}

Take FlowContext::next_line(Direction dir, std::span<const std::byte>& data, std::string_view& line, bool* cut) {
  const size_t d = index_of(dir);
  const size_t cap = b_.cfg_.carry_bytes;
  *cut = false;
  if (s_.carry_mode[d] & kCarryClearPending) b_.release_carry(s_, d);
  const auto* begin = reinterpret_cast<const char*>(data.data());
  const auto* nl = static_cast<const char*>(data.empty() ? nullptr : std::memchr(begin, '\n', data.size()));

  auto carry_view = [&]() {
    const char* p = s_.carry[d] == kNoBuf ? "" : reinterpret_cast<const char*>(b_.carry_data(s_.carry[d]));
    return std::string_view(p, s_.carry_len[d]);
  };
  auto append = [&](const char* p, size_t n) -> bool {  // false: no buffer
    if (n == 0) return true;
    if (s_.carry[d] == kNoBuf) {
      s_.carry[d] = b_.alloc_carry();
      if (s_.carry[d] == kNoBuf) {
        ++b_.counters_.carry_pool_exhausted;
        return false;
      }
    }
    std::memcpy(b_.carry_data(s_.carry[d]) + s_.carry_len[d], p, n);
    s_.carry_len[d] += static_cast<uint32_t>(n);
    return true;
  };

  if (s_.carry_mode[d] & kCarrySkipLine) {
    if (nl == nullptr) {
      data = {};
      return Take::kNeedMore;
    }
    data = data.subspan(static_cast<size_t>(nl - begin) + 1);
    s_.carry_mode[d] = kCarryClearPending;
    line = strip_cr(carry_view());
    *cut = true;
    return Take::kOk;
  }

  if (s_.carry_len[d] == 0) {
    if (nl != nullptr) {
      size_t len = static_cast<size_t>(nl - begin);
      line = strip_cr(std::string_view(begin, len));
      if (len > cap) {
        line = std::string_view(begin, cap);
        *cut = true;
        ++b_.counters_.carry_overflow;
      }
      data = data.subspan(len + 1);
      return Take::kOk;
    }
    if (data.size() > cap) {
      ++b_.counters_.carry_overflow;
      append(begin, cap);
      s_.carry_mode[d] = kCarrySkipLine;
    } else if (!append(begin, data.size())) {
      s_.carry_mode[d] = kCarrySkipLine;  // the line comes out cut (empty)
    }
    data = {};
    return Take::kNeedMore;
  }

  const size_t n = nl != nullptr ? static_cast<size_t>(nl - begin) : data.size();
  const size_t room = cap - s_.carry_len[d];
  bool over = false;
  if (n <= room) {
    append(begin, n);
  } else {
    append(begin, room);
    over = true;
    ++b_.counters_.carry_overflow;
  }
  if (nl != nullptr) {
    data = data.subspan(n + 1);
    line = strip_cr(carry_view());
    *cut = over;
    s_.carry_mode[d] = kCarryClearPending;
    return Take::kOk;
  }
  data = {};
  if (over) s_.carry_mode[d] = kCarrySkipLine;
  return Take::kNeedMore;
}

Take FlowContext::take(Direction dir, std::span<const std::byte>& data, size_t n, std::span<const std::byte>& out) {
  const size_t d = index_of(dir);
  if (s_.carry_mode[d] & kCarryClearPending) b_.release_carry(s_, d);
  if (n > b_.cfg_.carry_bytes) n = b_.cfg_.carry_bytes;  // callers never ask for more; keep the arena safe
  if (s_.carry_len[d] == 0 && data.size() >= n) {
    out = data.first(n);
    data = data.subspan(n);
    return Take::kOk;
  }
  if (s_.carry[d] == kNoBuf) {
    s_.carry[d] = b_.alloc_carry();
    if (s_.carry[d] == kNoBuf) {
      ++b_.counters_.carry_pool_exhausted;
      return Take::kNoMemory;
    }
  }
  const size_t k = std::min(n - s_.carry_len[d], data.size());
  std::memcpy(b_.carry_data(s_.carry[d]) + s_.carry_len[d], data.data(), k);
  s_.carry_len[d] += static_cast<uint32_t>(k);
  data = data.subspan(k);
  if (s_.carry_len[d] == n) {
    out = std::span<const std::byte>(b_.carry_data(s_.carry[d]), n);
    s_.carry_mode[d] = kCarryClearPending;
    return Take::kOk;
  }
  return Take::kNeedMore;
}

Message* FlowContext::new_message(uint64_t ts_ns) {
  const uint32_t i = b_.alloc_message(ts_ns);
  if (i == RecordBuilder::kNone) return nullptr;
  b_.slots_[i].flow_slot = slot_;
  return &b_.slots_[i].msg;
}

void FlowContext::discard(Message* m) {
  if (m != nullptr) b_.free_message(b_.slot_index(m));
}

void FlowContext::commit_request(Message* req) {
  if (req == nullptr) return;
  b_.mark(s_, Direction::kClientToServer, req);
  const uint32_t i = b_.slot_index(req);
  if (s_.pending_count >= b_.cfg_.max_pending_per_flow && s_.pending_head != RecordBuilder::kNone) {
    ++b_.counters_.pending_overflow;
    b_.emit_timeout(s_.pending_head, TimeoutCause::kOverflow, 0);
    // FIFO: its response is still coming, ahead of those of the requests left; it must not pair with them
    if (!s_.by_key) ++s_.owed_evicted;
  }
  auto& sl = b_.slots_[i];
  sl.pending = true;
  sl.flow_slot = slot_;
  sl.flow_prev = s_.pending_tail;
  sl.flow_next = RecordBuilder::kNone;
  if (s_.pending_tail != RecordBuilder::kNone) {
    b_.slots_[s_.pending_tail].flow_next = i;
  } else {
    s_.pending_head = i;
  }
  s_.pending_tail = i;
  ++s_.pending_count;
  sl.age_prev = b_.age_tail_;
  sl.age_next = RecordBuilder::kNone;
  if (b_.age_tail_ != RecordBuilder::kNone) {
    b_.slots_[b_.age_tail_].age_next = i;
  } else {
    b_.age_head_ = i;
  }
  b_.age_tail_ = i;
  ++b_.counters_.requests[static_cast<size_t>(s_.protocol)];
  ++b_.counters_.pending_now;
}

void FlowContext::emit_no_reply(Message* req) {
  if (req == nullptr) return;
  b_.mark(s_, Direction::kClientToServer, req);
  ++b_.counters_.no_reply[static_cast<size_t>(s_.protocol)];
  b_.emit(s_, req, nullptr, RoundtripStatus::kOk);
  b_.free_message(b_.slot_index(req));
}

Message* FlowContext::front_request() {
  if (s_.owed_evicted != 0) return nullptr;
  return s_.pending_head == RecordBuilder::kNone ? nullptr : &b_.slots_[s_.pending_head].msg;
}

size_t FlowContext::pending_count() const { return s_.pending_count + s_.owed_evicted; }

void FlowContext::complete_response(Message* resp, RoundtripStatus status) {
  if (resp == nullptr) return;
  if (s_.owed_evicted != 0) {
    --s_.owed_evicted;
    b_.consume_evicted(s_, resp);
    return;
  }
  b_.complete(s_, s_.pending_head, resp, status);
}

void FlowContext::complete_response_by_key(Message* resp, RoundtripStatus status, uint32_t key) {
  if (resp == nullptr) return;
  uint32_t qi = s_.pending_head;
  while (qi != RecordBuilder::kNone && b_.slots_[qi].msg.key != key) qi = b_.slots_[qi].flow_next;
  b_.complete(s_, qi, resp, status);
}

void FlowContext::flush_pending(TimeoutCause cause, uint32_t extra_flags) {
  while (s_.pending_head != RecordBuilder::kNone) b_.emit_timeout(s_.pending_head, cause, extra_flags);
  s_.owed_evicted = 0;  // a gap took their responses too (or the flow ends)
}

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
  sessions_.resize(cfg_.flow_capacity);
  for (FlowSession& s : sessions_) {
    s.carry = {kNoBuf, kNoBuf};
  }
  slots_.resize(cfg_.message_pool_size);
  for (uint32_t i = cfg_.message_pool_size; i-- > 0;) {
    slots_[i].flow_next = msg_free_;
    msg_free_ = i;
  }
  carry_arena_ = std::make_unique<std::byte[]>(static_cast<size_t>(cfg_.carry_bytes) * cfg_.carry_buffer_count);
  carry_free_.reserve(cfg_.carry_buffer_count);
  for (uint32_t i = cfg_.carry_buffer_count; i-- > 0;) carry_free_.push_back(i);

  for (const ProtocolDescriptor* d : protocol_registry()) register_decoder(d->make(cfg_));
}

RecordBuilder::~RecordBuilder() = default;

void RecordBuilder::register_decoder(std::unique_ptr<Decoder> d) {
  if (!d) return;
  const auto p = static_cast<size_t>(d->protocol());
  if (p == 0 || p >= kProtocolCount) return;
  decoders_[p] = std::move(d);
}

uint32_t RecordBuilder::slot_index(const Message* m) const {
  // Every message lives inside a Slot of slots_: its index follows from its address.
  const auto diff = reinterpret_cast<const char*>(m) - reinterpret_cast<const char*>(&slots_[0].msg);
  return static_cast<uint32_t>(static_cast<size_t>(diff) / sizeof(Slot));
}

uint32_t RecordBuilder::alloc_message(uint64_t ts_ns) {
  if (msg_free_ == kNone) {
    ++counters_.message_pool_exhausted;
    return kNone;
  }
  const uint32_t i = msg_free_;
  Slot& sl = slots_[i];
  msg_free_ = sl.flow_next;
  sl.msg.reset();
  sl.msg.first_ts_ns = sl.msg.last_ts_ns = ts_ns;
  sl.flow_slot = kNone;
  sl.flow_prev = sl.flow_next = sl.age_prev = sl.age_next = kNone;
  sl.pending = false;
  ++msg_in_use_;
  return i;
}

void RecordBuilder::free_message(uint32_t i) {
  Slot& sl = slots_[i];
  if (sl.pending) unlink_pending(i);
  sl.flow_slot = kNone;
  sl.flow_next = msg_free_;
  msg_free_ = i;
  --msg_in_use_;
}

void RecordBuilder::unlink_pending(uint32_t i) {
  Slot& sl = slots_[i];
  if (!sl.pending) return;
  FlowSession& s = sessions_[sl.flow_slot];
  if (sl.flow_prev != kNone) {
    slots_[sl.flow_prev].flow_next = sl.flow_next;
  } else {
    s.pending_head = sl.flow_next;
  }
  if (sl.flow_next != kNone) {
    slots_[sl.flow_next].flow_prev = sl.flow_prev;
  } else {
    s.pending_tail = sl.flow_prev;
  }
  if (sl.age_prev != kNone) {
    slots_[sl.age_prev].age_next = sl.age_next;
  } else {
    age_head_ = sl.age_next;
  }
  if (sl.age_next != kNone) {
    slots_[sl.age_next].age_prev = sl.age_prev;
  } else {
    age_tail_ = sl.age_prev;
  }
  sl.flow_prev = sl.flow_next = sl.age_prev = sl.age_next = kNone;
  sl.pending = false;
  --s.pending_count;
  --counters_.pending_now;
}

void RecordBuilder::complete(FlowSession& s, uint32_t qi, Message* resp, RoundtripStatus status) {
  mark(s, Direction::kServerToClient, resp);
  ++counters_.responses[static_cast<size_t>(s.protocol)];
  const uint32_t ri = slot_index(resp);
  if (qi != kNone) {
    unlink_pending(qi);
    ++counters_.matched[static_cast<size_t>(s.protocol)];
    emit(s, &slots_[qi].msg, resp, status);
    free_message(qi);
  } else {
    ++counters_.unmatched;
    emit(s, nullptr, resp, RoundtripStatus::kUnmatched);
  }
  free_message(ri);
}

void RecordBuilder::consume_evicted(FlowSession& s, Message* resp) {
  mark(s, Direction::kServerToClient, resp);
  ++counters_.responses[static_cast<size_t>(s.protocol)];
  ++counters_.responses_of_evicted;
  free_message(slot_index(resp));
}

void RecordBuilder::mark(FlowSession& s, Direction dir, Message* m) {
  // An overlap conflict seen in this direction goes on the next message finished in it: the conflicting
  // bytes were delivered right after the report, so they belong to the message in progress (or the next).
  bool& conflict = s.conflict[index_of(logical(s, dir))];
  if (conflict) {
    m->flags |= record_flag::kOverlapConflict;
    conflict = false;
  }
  if (observer_ != nullptr) observer_->mark(static_cast<uint32_t>(&s - sessions_.data()), dir, *m);
}

void RecordBuilder::emit(const FlowSession& s, Message* req, Message* resp, RoundtripStatus status) {
  Roundtrip r;
  r.ts_ns = req != nullptr ? req->first_ts_ns : resp->first_ts_ns;
  r.id = (static_cast<uint64_t>(cfg_.worker_id) << 56) | (++next_id_ & kIdMask);
  r.protocol = s.protocol;
  r.ip_version = s.ip_version;
  r.client = s.client;
  r.server = s.server;
  r.status = status;
  if (req != nullptr && resp != nullptr) {
    r.has_latency = true;
    r.latency_us = resp->last_ts_ns > req->first_ts_ns ? (resp->last_ts_ns - req->first_ts_ns) / kNsPerUs : 0;
  }
  r.request = req;
  r.response = resp;
  r.flags = (req != nullptr ? req->flags : 0) | (resp != nullptr ? resp->flags : 0);
  if ((req != nullptr && req->fields.truncated()) || (resp != nullptr && resp->fields.truncated()))
    ++counters_.field_truncated;
  const size_t ntags = observer_ != nullptr ? observer_->annotate(s.protocol, req, resp, tags_) : 0;
  r.tags = std::span<const std::string_view>(tags_.data(), ntags);
  r.recording_id = cfg_.recording_id;
  ++counters_.roundtrips[static_cast<size_t>(s.protocol)][static_cast<size_t>(status)];
  ++counters_.records_emitted;
  sink_->emit(r);
}

void RecordBuilder::emit_timeout(uint32_t i, TimeoutCause cause, uint32_t extra_flags) {
  Slot& sl = slots_[i];
  const FlowSession& s = sessions_[sl.flow_slot];
  unlink_pending(i);
  sl.msg.flags |= extra_flags;
  ++counters_.timeouts[static_cast<size_t>(cause)];
  emit(s, &sl.msg, nullptr, RoundtripStatus::kTimeout);
  free_message(i);
}

uint32_t RecordBuilder::alloc_carry() {
  if (carry_free_.empty()) return kNoBuf;
  const uint32_t b = carry_free_.back();
  carry_free_.pop_back();
  ++carry_in_use_;
  return b;
}

void RecordBuilder::free_carry(uint32_t buf) {
  carry_free_.push_back(buf);  // capacity reserved for every buffer: never reallocates
  --carry_in_use_;
}

void RecordBuilder::release_carry(FlowSession& s, size_t d) {
  if (s.carry[d] != kNoBuf) free_carry(s.carry[d]);
  s.carry[d] = kNoBuf;
  s.carry_len[d] = 0;
  s.carry_mode[d] = 0;
}

void RecordBuilder::on_open(const Flow& flow, uint64_t ts_ns) {
  FlowSession& s = session(flow);
  if (s.open) close_session(flow.slot, ts_ns);  // defensive: a slot reused without on_close
  s.base = {0, 0};
  s.pending_head = s.pending_tail = kNone;
  s.pending_count = 0;
  s.owed_evicted = 0;
  s.by_key = false;
  s.client = {flow.client_addr(), flow.client_port()};
  s.server = {flow.server_addr(), flow.server_port()};
  s.ip_version = flow.key.ip_version;
  s.udp = flow.key.proto == kProtoUdp;
  s.protocol = Protocol::kUnknown;
  s.detect_state = kDetectNone;
  s.sniff_chunks = 0;
  sniff_prefix(s).len = {0, 0};
  s.swapped = false;
  s.conflict = {false, false};
  s.gap_before = {false, false};
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

void RecordBuilder::start_decoder(const Flow& f, FlowSession& s, Protocol p, DetectOutcome how, bool swap,
                                  uint64_t ts_ns) {
  --counters_.flows_undetected_now;
  ++counters_.detect[static_cast<size_t>(how)];
  s.protocol = p;
  if (how == DetectOutcome::kBySniff && swap != s.swapped) {
    s.swapped = swap;
    std::swap(s.client, s.server);
  }
  Decoder* d = decoders_[static_cast<size_t>(p)].get();
  if (d == nullptr || how == DetectOutcome::kNoDecoder || how == DetectOutcome::kUnknown) {
    s.detect_state = kDetectIgnored;
    return;
  }
  s.detect_state = kDetectActive;
  s.by_key = d->matches_by_key();
  s.state.fill(std::byte{0});
  FlowContext ctx(*this, s, f.slot);
  d->open(ctx, ts_ns);
}

void RecordBuilder::drop_prefix(uint32_t slot, FlowSession& s, size_t pd) {
  SniffPrefix& pre = sniff_prefix(s);
  if (pre.len[pd] == 0) return;
  const std::span<const std::byte> bytes(pre.bytes[pd].data(), pre.len[pd]);
  counters_.undecoded_bytes += bytes.size();
  const Direction dir = pd == 0 ? Direction::kClientToServer : Direction::kServerToClient;
  if (observer_ != nullptr) observer_->scan(slot, s.protocol, false, s.udp, logical(s, dir), 0, bytes);
  pre.len[pd] = 0;
}

RecordBuilder::Detected RecordBuilder::detect(const Flow& f, FlowSession& s, Direction dir,
                                              std::span<const std::byte> data, std::span<const std::byte>* replay,
                                              uint64_t ts_ns) {
  if (s.detect_state == kDetectPort) {
    const bool has = decoders_[static_cast<size_t>(s.protocol)] != nullptr;
    start_decoder(f, s, s.protocol, has ? DetectOutcome::kByPort : DetectOutcome::kNoDecoder, s.swapped, 0);
    return has ? Detected::kDecode : Detected::kNo;
  }
  if (s.detect_state != kDetectNone && s.detect_state != kDetectSniffing) return Detected::kNo;
  s.detect_state = kDetectSniffing;
  if (!cfg_.sniff_unknown_ports) {
    if (++s.sniff_chunks >= cfg_.sniff_max_chunks) start_decoder(f, s, Protocol::kUnknown, DetectOutcome::kUnknown, false, 0);
    return Detected::kNo;
  }
  SniffPrefix& pre = sniff_prefix(s);
  const size_t pd = index_of(dir);
  // What to classify: the kept first bytes of this direction, then this chunk.
  std::span<const std::byte> view = data;
  if (pre.len[pd] > 0) {
    const size_t n = std::min(data.size(), sniff_view_.size() - pre.len[pd]);
    std::memcpy(sniff_view_.data(), pre.bytes[pd].data(), pre.len[pd]);
    std::memcpy(sniff_view_.data() + pre.len[pd], data.data(), n);
    view = std::span<const std::byte>(sniff_view_.data(), pre.len[pd] + n);
  }
  // The signatures pick the candidates; each protocol's structural check
  // confirms (in registry order, so the first that agrees wins).
  const Transport t = s.udp ? Transport::kUdp : Transport::kTcp;
  const uint32_t candidates = signatures_ != nullptr ? signatures_->candidates(view, t) : kAllProtocols;
  for (const ProtocolDescriptor* desc : protocol_registry()) {
    const Decoder* d = decoders_[static_cast<size_t>(desc->id)].get();
    if (d == nullptr || (candidates & protocol_bit(desc->id)) == 0) continue;
    const SniffResult r = desc->confirm(view, t);
    if (r == SniffResult::kNo) {
      if (signatures_ != nullptr) ++counters_.detect_rejected;  // a signature said yes, the check no
      continue;
    }
    ++counters_.detected_by_payload[static_cast<size_t>(d->protocol())];
    drop_prefix(f.slot, s, 1 - pd);  // the other side's kept bytes: order unknown, not decoded
    // This side's kept bytes go to the decoder first (copied out: the
    // decoder's state takes their place).
    std::memcpy(replay_.data(), pre.bytes[pd].data(), pre.len[pd]);
    *replay = std::span<const std::byte>(replay_.data(), pre.len[pd]);
    pre.len[pd] = 0;
    // Physical direction of a request: C2S unless the sniff says otherwise.
    const bool is_req = r == SniffResult::kRequest;
    const bool swap = (dir == Direction::kClientToServer) != is_req;
    start_decoder(f, s, d->protocol(), DetectOutcome::kBySniff, swap, 0);
    if (s.gap_before[1 - pd]) {
      // The other direction lost bytes before this: its next bytes may be the tail of a message.
      // (This direction starts at the message the sniff recognised.)
      s.gap_before = {false, false};
      ++counters_.gaps;
      FlowContext ctx(*this, s, f.slot);
      decoders_[static_cast<size_t>(desc->id)]->gap(ctx, logical(s, opposite(dir)), 0, ts_ns);
    }
    return Detected::kDecode;
  }
  if (++s.sniff_chunks >= cfg_.sniff_max_chunks) {  // every chunk is an attempt, kept or not
    drop_prefix(f.slot, s, 0);
    drop_prefix(f.slot, s, 1);
    start_decoder(f, s, Protocol::kUnknown, DetectOutcome::kUnknown, false, 0);
    return Detected::kNo;
  }
  if (!s.udp && pre.len[pd] + data.size() <= kSniffPrefixBytes) {
    // Perhaps too little to tell yet: keep it for the next chunk's try.
    std::memcpy(pre.bytes[pd].data() + pre.len[pd], data.data(), data.size());
    pre.len[pd] = static_cast<uint8_t>(pre.len[pd] + data.size());
    return Detected::kKept;
  }
  drop_prefix(f.slot, s, pd);
  return Detected::kNo;
}

void RecordBuilder::on_data(const Flow& flow, Direction dir, std::span<const std::byte> data, uint64_t ts_ns) {
  FlowSession& s = session(flow);
  if (!s.open || data.empty()) return;
  if (s.detect_state != kDetectActive) {
    std::span<const std::byte> replay;
    switch (detect(flow, s, dir, data, &replay, ts_ns)) {
      case Detected::kKept: return;
      case Detected::kNo:
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

void RecordBuilder::decode_chunk(const Flow& flow, FlowSession& s, Direction dir, std::span<const std::byte> data,
                                 uint64_t ts_ns) {
  const Direction ld = logical(s, dir);
  const size_t d = index_of(ld);
  // Scan before decoding: the messages this chunk completes find their matches waiting.
  if (observer_ != nullptr) observer_->scan(flow.slot, s.protocol, true, s.udp, ld, s.base[d], data);
  {
    FlowContext ctx(*this, s, flow.slot, ld, data.size());
    decoders_[static_cast<size_t>(s.protocol)]->data(ctx, ld, data, ts_ns);
  }
  s.base[d] += data.size();
  if (s.carry_mode[d] & kCarryClearPending) release_carry(s, d);
  if (age_head_ != kNone) expire(ts_ns, cfg_.timeout_budget);
}

void RecordBuilder::on_gap(const Flow& flow, Direction dir, uint64_t missing_bytes, GapReason /*reason*/,
                           uint64_t ts_ns) {
  FlowSession& s = session(flow);
  if (!s.open) return;
  if (observer_ != nullptr) observer_->gap(flow.slot, logical(s, dir));
  if (s.detect_state == kDetectSniffing) drop_prefix(flow.slot, s, index_of(dir));  // kept bytes end at a hole
  if (s.detect_state == kDetectPort) {
    // Bytes lost before the first data (e.g. the out-of-order buffer gave up on a hole at the stream's
    // start): the decoder starts now so that it hears of the gap and resyncs, instead of taking the tail
    // of a lost message for the start of one.
    const bool has = decoders_[static_cast<size_t>(s.protocol)] != nullptr;
    start_decoder(flow, s, s.protocol, has ? DetectOutcome::kByPort : DetectOutcome::kNoDecoder, s.swapped, ts_ns);
  } else if (s.detect_state == kDetectNone || s.detect_state == kDetectSniffing) {
    s.gap_before[index_of(dir)] = true;  // told to the decoder a sniff may start later
  }
  if (s.detect_state != kDetectActive) return;
  const Direction ld = logical(s, dir);
  const size_t d = index_of(ld);
  ++counters_.gaps;
  counters_.gap_bytes += missing_bytes;
  release_carry(s, d);  // bytes kept before the gap cannot be completed
  {
    FlowContext ctx(*this, s, flow.slot);
    decoders_[static_cast<size_t>(s.protocol)]->gap(ctx, ld, missing_bytes, ts_ns);
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
  FlowSession& s = sessions_[slot];
  if (!s.open) return;
  if (s.detect_state == kDetectActive) {
    FlowContext ctx(*this, s, slot);
    decoders_[static_cast<size_t>(s.protocol)]->close(ctx, ts_ns);
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

void RecordBuilder::expire(uint64_t now_ns, uint32_t budget) {
  while (age_head_ != kNone && budget-- > 0) {
    const Message& m = slots_[age_head_].msg;
    if (m.first_ts_ns + cfg_.response_timeout_ns > now_ns) break;
    emit_timeout(age_head_, TimeoutCause::kExpired, 0);
  }
}

void RecordBuilder::advance_time(uint64_t now_ns) { expire(now_ns, UINT32_MAX); }

void RecordBuilder::finish(uint64_t now_ns) {
  for (uint32_t i = 0; i < sessions_.size(); ++i) {
    if (sessions_[i].open) close_session(i, now_ns);
  }
}

}  // namespace spanfeed
