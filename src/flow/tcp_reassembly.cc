// Flow tracking + TCP reassembly for one worker: TCP state, in-order zero-copy delivery,
// out-of-order chunk buffering (first data wins), gap events, UDP pass-through.
// Runs on one worker lcore; allocates only in the constructor, never throws on the data path.
#include "spanfeed/tcp_reassembly.h"

#include <algorithm>
#include <cstring>

namespace spanfeed {

std::string_view to_string(SegmentOutcome o) {
  switch (o) {
    case SegmentOutcome::kInOrder: return "in_order";
    case SegmentOutcome::kBuffered: return "buffered";
    case SegmentOutcome::kOverlapTrimmed: return "overlap_trimmed";
    case SegmentOutcome::kRetransmission: return "retransmission";
    case SegmentOutcome::kOutOfWindow: return "out_of_window";
    case SegmentOutcome::kDroppedMemory: return "dropped_memory";
    case SegmentOutcome::kNoPayload: return "no_payload";
    case SegmentOutcome::kRst: return "rst";
    case SegmentOutcome::kDataAfterFin: return "data_after_fin";
    case SegmentOutcome::kAfterClose: return "after_close";
    case SegmentOutcome::kLate: return "late";
    case SegmentOutcome::kDuplicate: return "duplicate";
    case SegmentOutcome::kFlowRefused: return "flow_refused";
    case SegmentOutcome::kNoFlow: return "no_flow";
    case SegmentOutcome::kDatagram: return "datagram";
    case SegmentOutcome::kFragment: return "fragment";
    case SegmentOutcome::kMalformed: return "malformed";
    case SegmentOutcome::kUnsupportedProto: return "unsupported_proto";
    case SegmentOutcome::kCount: break;
  }
  return "unknown";
}

std::string_view describe(SegmentOutcome o) {
  switch (o) {
    case SegmentOutcome::kInOrder: return "TCP segments delivered in order straight from the packet (normal).";
    case SegmentOutcome::kBuffered:
      return "TCP segments that arrived after a hole and were copied until it filled; "
             "a high share means reordering or capture loss.";
    case SegmentOutcome::kOverlapTrimmed:
      return "TCP segments partly overlapping data already seen; the first copy was kept. "
             "Usually retransmissions with repacketisation.";
    case SegmentOutcome::kRetransmission:
      return "TCP segments entirely already seen (retransmissions, or duplicates from the mirror).";
    case SegmentOutcome::kOutOfWindow:
      return "TCP segments far (more than max_window) from the expected sequence: "
             "spoofed/corrupt traffic or a stream position lost after heavy loss.";
    case SegmentOutcome::kDroppedMemory:
      return "Out-of-order TCP data lost because the worker's reassembly memory was full: "
             "raise memory_cap_bytes or lower max_buffer_per_flow.";
    case SegmentOutcome::kNoPayload: return "SYN, ACK or FIN segments without data on tracked flows (normal).";
    case SegmentOutcome::kRst: return "RST segments that closed a tracked flow.";
    case SegmentOutcome::kDataAfterFin:
      return "TCP data at or beyond the FIN of its direction: broken or hostile senders.";
    case SegmentOutcome::kAfterClose:
      return "Packets for flows already closed by FIN/RST (late retransmissions and final ACKs; normal in small numbers).";
    case SegmentOutcome::kLate:
      return "SYNs of a connection already closed (its own ISN again, or timestamped before the close): "
             "counted here instead of opening a phantom flow.";
    case SegmentOutcome::kDuplicate:
      return "Mirror duplicates: packets identical to one seen within the dedup window (ingress and egress "
             "both mirrored), dropped before reassembly.";
    case SegmentOutcome::kFlowRefused:
      return "Packets that would start a flow while the flow table was full and nothing was idle "
             "long enough to evict: raise the flow table capacity. Their flows are not decoded.";
    case SegmentOutcome::kNoFlow:
      return "RST, bare ACK or FIN for flows not being tracked (started before capture, or already gone).";
    case SegmentOutcome::kDatagram: return "UDP datagrams delivered (normal).";
    case SegmentOutcome::kFragment: return "IP fragments: not reassembled, their flows miss these bytes.";
    case SegmentOutcome::kMalformed:
      return "Packets with a cut L4 header, bad TCP data offset or payload outside the frame.";
    case SegmentOutcome::kUnsupportedProto: return "Packets neither TCP nor UDP (ICMP, GRE, ...).";
    case SegmentOutcome::kCount: break;
  }
  return "";
}

std::string_view to_string(GapReason r) {
  switch (r) {
    case GapReason::kAckPastHole: return "ack_past_hole";
    case GapReason::kFlowLimit: return "flow_limit";
    case GapReason::kClose: return "close";
    case GapReason::kTruncated: return "truncated";
    case GapReason::kResync: return "resync";
    case GapReason::kCount: break;
  }
  return "unknown";
}

std::string_view to_string(CloseReason r) {
  switch (r) {
    case CloseReason::kFin: return "fin";
    case CloseReason::kRst: return "rst";
    case CloseReason::kIdleTimeout: return "idle_timeout";
    case CloseReason::kEvicted: return "evicted";
    case CloseReason::kReused: return "reused";
    case CloseReason::kShutdown: return "shutdown";
    case CloseReason::kCount: break;
  }
  return "unknown";
}

namespace {

// The IP total length field is 16 bits: no L4 payload can claim more.
constexpr uint32_t kMaxClaimedLen = 65535;
constexpr uint32_t kMinChunkSize = 64;
constexpr uint32_t kMaxChunkSize = 65536;
constexpr uint32_t kMaxWindowLimit = 1u << 30;  // keeps every kept seq within 2^31 of next_seq
constexpr uint64_t kMaxChunks = (1ull << 31) - 1;

constexpr Direction kC2S = Direction::kClientToServer;
constexpr Direction kS2C = Direction::kServerToClient;

ReassemblyConfig sanitize(ReassemblyConfig c) {
  c.chunk_size = std::clamp(c.chunk_size, kMinChunkSize, kMaxChunkSize);
  c.max_window = std::clamp<uint32_t>(c.max_window, 1, kMaxWindowLimit);
  c.resync_after = std::max<uint32_t>(c.resync_after, 1);
  c.expire_budget = std::max<uint32_t>(c.expire_budget, 1);
  return c;
}

uint32_t chunk_count(const ReassemblyConfig& c) {
  return static_cast<uint32_t>(std::min<uint64_t>(c.memory_cap_bytes / c.chunk_size, kMaxChunks));
}

TimeoutClass class_of(const Flow& f) {
  if (f.key.proto == kProtoUdp) return TimeoutClass::kUdp;
  switch (f.state) {
    case FlowState::kSynSent:
    case FlowState::kSynReceived: return TimeoutClass::kTcpOpening;
    case FlowState::kEstablished: return TimeoutClass::kTcpEstablished;
    case FlowState::kClosing: return TimeoutClass::kTcpClosing;
    case FlowState::kClosed:
    case FlowState::kCount: break;
  }
  return TimeoutClass::kClosed;
}

void count_stats(Flow& f, Direction d, size_t payload, size_t wire, uint64_t ts_ns) {
  DirectionStats& ds = f.stats[index_of(d)];
  if (ds.packets == 0) ds.first_ts_ns = ts_ns;
  ++ds.packets;
  ds.payload_bytes += payload;
  ds.wire_bytes += wire;
  ds.last_ts_ns = std::max(ds.last_ts_ns, ts_ns);
}

}  // namespace

std::string validate(const ReassemblerConfig& cfg) {
  if (std::string e = validate(cfg.table); !e.empty()) return e;
  const ReassemblyConfig& r = cfg.reassembly;
  if (r.chunk_size < kMinChunkSize || r.chunk_size > kMaxChunkSize) {
    return "reassembly chunk_size must be between 64 and 65536 bytes";
  }
  if (r.memory_cap_bytes / r.chunk_size > kMaxChunks) return "reassembly memory_cap_bytes too large";
  if (r.max_window == 0 || r.max_window > kMaxWindowLimit) {
    return "reassembly max_window must be between 1 and 2^30 bytes";
  }
  if (r.max_buffer_per_flow != 0 && r.max_buffer_per_flow < r.chunk_size) {
    return "reassembly max_buffer_per_flow must be 0 (no buffering) or at least one chunk";
  }
  if (r.resync_after == 0) return "reassembly resync_after must be at least 1";
  if (r.expire_budget == 0) return "reassembly expire_budget must be at least 1";
  return {};
}

// ---------------------------------------------------------------------------
// ChunkPool

ChunkPool::ChunkPool(uint32_t chunk_size, uint32_t chunk_count, bool prefault)
    : chunk_size_(chunk_size),
      // Prefaulted: value-initialised, so every page is touched at start-up,
      // not on the data path. Otherwise left as allocated: a chunk's bytes are
      // only read after a segment was copied into them.
      arena_(chunk_count == 0 ? nullptr
             : prefault       ? std::make_unique<std::byte[]>(static_cast<size_t>(chunk_size) * chunk_count)
                              : std::make_unique_for_overwrite<std::byte[]>(static_cast<size_t>(chunk_size) * chunk_count)),
      pieces_(chunk_count) {
  for (uint32_t i = 0; i < chunk_count; ++i) pieces_[i].next = (i + 1 < chunk_count) ? i + 1 : kNone;
  free_head_ = chunk_count != 0 ? 0 : kNone;
}

uint32_t ChunkPool::alloc() {
  uint32_t i = free_head_;
  if (i == kNone) return kNone;
  free_head_ = pieces_[i].next;
  pieces_[i] = Piece{};
  ++in_use_;
  high_water_ = std::max(high_water_, in_use_);
  return i;
}

void ChunkPool::free(uint32_t i) {
  pieces_[i].next = free_head_;
  free_head_ = i;
  --in_use_;
}

// ---------------------------------------------------------------------------
// Reassembler: set-up and per-packet entry

Reassembler::Reassembler(const ReassemblerConfig& cfg, StreamConsumer& consumer)
    : consumer_(consumer),
      cfg_(sanitize(cfg.reassembly)),
      flow_limit_chunks_(cfg_.max_buffer_per_flow / cfg_.chunk_size),
      table_(cfg.table, this),
      pool_(cfg_.chunk_size, chunk_count(cfg_), cfg_.prefault_arena),
      dedup_(cfg_.dedup_window_ns, cfg_.dedup_entries, cfg.table.hash_seed),
      hold_on_(cfg_.ack_hold_ns != 0) {
  streams_.reserve(table_.capacity());
}

SegmentOutcome Reassembler::process(std::span<const std::byte> frame, const ParsedPacket& p, uint64_t ts_ns) {
  ++counters_.segments;
  if (dedup_.enabled() && dedup_.seen(frame, p, ts_ns)) {
    counters_.dedup_evicted_live = dedup_.evicted_live();
    ++counters_.outcome[static_cast<size_t>(SegmentOutcome::kDuplicate)];
    return SegmentOutcome::kDuplicate;
  }
  counters_.dedup_evicted_live = dedup_.evicted_live();
  table_.expire(ts_ns, cfg_.expire_budget);
  if (hold_head_ != UINT32_MAX) expire_holds(std::max(table_.now_ns(), ts_ns), cfg_.expire_budget);

  SegmentOutcome out;
  if ((p.flags & (packet_flag::kFragment | packet_flag::kLaterFragment)) != 0) {
    out = SegmentOutcome::kFragment;
  } else if (p.l4_proto != kProtoTcp && p.l4_proto != kProtoUdp) {
    out = SegmentOutcome::kUnsupportedProto;
  } else if ((p.flags & (packet_flag::kL4Truncated | packet_flag::kTcpOptionsBad)) != 0 ||
             (p.payload_len != 0 &&
              (p.payload_offset == 0 || size_t{p.payload_offset} + p.payload_len > frame.size()))) {
    out = SegmentOutcome::kMalformed;
  } else {
    std::span<const std::byte> payload;
    if (p.payload_len != 0) payload = frame.subspan(p.payload_offset, p.payload_len);
    // Snaplen-cut payload: the sequence space still covers what the IP header claims.
    uint32_t seg_len = p.payload_len;
    if ((p.flags & packet_flag::kPayloadTruncated) != 0 && p.l4_len_claimed > seg_len) {
      seg_len = std::max<uint32_t>(seg_len, std::min(p.l4_len_claimed, kMaxClaimedLen));
    }
    out = p.l4_proto == kProtoTcp ? process_tcp(frame, p, payload, seg_len, ts_ns)
                                  : process_udp(frame, p, payload, seg_len - p.payload_len, ts_ns);
  }
  ++counters_.outcome[static_cast<size_t>(out)];
  return out;
}

void Reassembler::advance_time(uint64_t now_ns) {
  table_.expire(now_ns);
  if (hold_head_ != UINT32_MAX) expire_holds(std::max(now_ns, table_.now_ns()), UINT32_MAX);
}

void Reassembler::finish(uint64_t now_ns) {
  table_.expire(now_ns);
  table_.for_each([&](Flow& f) {
    if (f.state != FlowState::kClosed) close_flow(f, CloseReason::kShutdown, now_ns);
    table_.remove(f);
  });
}

void Reassembler::on_flow_removed(Flow& flow, RemoveReason reason, uint64_t now_ns) {
  if (flow.state == FlowState::kClosed) return;  // consumer already heard the close
  close_flow(flow, reason == RemoveReason::kExpired ? CloseReason::kIdleTimeout : CloseReason::kEvicted, now_ns);
}

Flow* Reassembler::open_flow(const OrientedKey& ok, bool client_is_a, FlowState state, TimeoutClass cls,
                             uint64_t ts_ns, Direction* dir) {
  FlowInsert ins = table_.insert(ok, client_is_a, cls, ts_ns);
  if (ins.flow == nullptr) return nullptr;
  // Made as the table reaches a slot (it hands out the lowest never-used one
  // when none was freed): reserved to the capacity, so it never reallocates.
  if (ins.flow->slot < streams_.size()) {
    streams_[ins.flow->slot] = FlowStreams{};
  } else {
    streams_.resize(size_t{ins.flow->slot} + 1);
  }
  ins.flow->state = state;
  ++counters_.flows_created;
  *dir = ins.dir;
  consumer_.on_open(*ins.flow, ts_ns);
  return ins.flow;
}

// A SYN (no ACK) on a live flow starts a new connection unless it is a
// retransmission of the SYN we saw, or a late copy of the handshake of a flow
// we picked up mid-stream.
bool Reassembler::is_new_connection(const StreamState& s, uint32_t seq) const {
  if (!s.seq_known) return false;
  if (s.syn_seen) return seq != s.isn;
  int32_t dist = seq_diff(seq + 1, s.next_seq);
  return dist > 0 || dist < -static_cast<int64_t>(cfg_.max_window);
}

SegmentOutcome Reassembler::process_udp(std::span<const std::byte> frame, const ParsedPacket& p,
                                        std::span<const std::byte> payload, uint32_t missing, uint64_t ts_ns) {
  const OrientedKey ok = make_flow_key(p, table_.include_vlan());
  FlowLookup lk = table_.find(ok);
  Flow* f = lk.flow;
  Direction d = lk.dir;
  if (payload.empty()) {
    if (f != nullptr) {
      count_stats(*f, d, 0, frame.size(), ts_ns);
      table_.touch(*f, TimeoutClass::kUdp, ts_ns);
    }
    return SegmentOutcome::kNoPayload;
  }
  if (f == nullptr) {
    bool client_is_a = ok.key.port_a != ok.key.port_b ? ok.key.port_a > ok.key.port_b : ok.from_a;
    f = open_flow(ok, client_is_a, FlowState::kEstablished, TimeoutClass::kUdp, ts_ns, &d);
    if (f == nullptr) return SegmentOutcome::kFlowRefused;
  }
  count_stats(*f, d, payload.size(), frame.size(), ts_ns);
  StreamState& s = st(*f, d);
  consumer_.on_data(*f, d, payload, ts_ns);
  s.delivered_bytes += payload.size();
  counters_.bytes_datagram += payload.size();
  if (missing != 0) emit_gap(*f, d, missing, GapReason::kTruncated, ts_ns);
  table_.touch(*f, TimeoutClass::kUdp, ts_ns);
  return SegmentOutcome::kDatagram;
}

SegmentOutcome Reassembler::process_tcp(std::span<const std::byte> frame, const ParsedPacket& p,
                                        std::span<const std::byte> payload, uint32_t seg_len, uint64_t ts_ns) {
  const uint8_t fl = p.tcp_flags;
  const bool syn = (fl & tcp_flag::kSyn) != 0;
  const bool ack = (fl & tcp_flag::kAck) != 0;
  const bool fin = (fl & tcp_flag::kFin) != 0;
  const bool rst = (fl & tcp_flag::kRst) != 0;

  const OrientedKey ok = make_flow_key(p, table_.include_vlan());
  FlowLookup lk = table_.find(ok);
  Flow* f = lk.flow;
  Direction d = lk.dir;

  if (f != nullptr && syn && !ack && !rst) {
    if (f->state == FlowState::kClosed) {
      const StreamState& cs = st(*f, d);
      if ((cs.syn_seen && cs.isn == p.tcp_seq) || ts_ns < streams_[f->slot].closed_ts_ns) {
        count_stats(*f, d, payload.size(), frame.size(), ts_ns);
        return SegmentOutcome::kLate;  // the closed connection's SYN again: no phantom flow
      }
      table_.remove(*f);  // port reuse after a close: the lingering record makes way
      f = nullptr;
    } else if (is_new_connection(st(*f, d), p.tcp_seq)) {
      close_flow(*f, CloseReason::kReused, ts_ns);
      table_.remove(*f);
      f = nullptr;
    }
  }
  if (f == nullptr) {
    if (rst || (!syn && payload.empty())) return SegmentOutcome::kNoFlow;
    bool client_is_a;
    if (syn) {
      client_is_a = ack ? !ok.from_a : ok.from_a;  // SYN sender / SYN-ACK receiver is the client
    } else if (ok.key.port_a != ok.key.port_b) {
      client_is_a = ok.key.port_a > ok.key.port_b;  // mid-stream: higher port is the client
    } else {
      client_is_a = ok.from_a;
    }
    FlowState state = syn ? (ack ? FlowState::kSynReceived : FlowState::kSynSent) : FlowState::kEstablished;
    f = open_flow(ok, client_is_a, state, syn ? TimeoutClass::kTcpOpening : TimeoutClass::kTcpEstablished,
                  ts_ns, &d);
    if (f == nullptr) return SegmentOutcome::kFlowRefused;
  }

  Flow& flow = *f;
  count_stats(flow, d, payload.size(), frame.size(), ts_ns);
  if (flow.state == FlowState::kClosed) return SegmentOutcome::kAfterClose;  // linger timer keeps running
  StreamState& s = st(flow, d);
  const int64_t max_window = cfg_.max_window;

  if (rst) {
    if (s.seq_known) {
      int32_t dist = seq_diff(p.tcp_seq, s.next_seq);
      if (dist > max_window || dist < -max_window) {
        table_.touch(flow, class_of(flow), ts_ns);
        return SegmentOutcome::kOutOfWindow;
      }
    }
    if (hold_on_) force_release(flow, ts_ns);  // held data goes out in the order the ACKs proved
    flush_direction(flow, kC2S, ts_ns);
    flush_direction(flow, kS2C, ts_ns);
    consumer_.on_rst(flow, d, ts_ns);
    close_flow(flow, CloseReason::kRst, ts_ns);
    table_.touch(flow, TimeoutClass::kClosed, ts_ns);
    return SegmentOutcome::kRst;
  }

  // The ACK speaks about the other direction; handle it first: the receiver
  // had those bytes before it sent this packet (keeps request/response order).
  // With the ack hold on, the proof is kept instead: the missing bytes may
  // still come (the other direction reached the capture later), so the gap
  // waits for the hold's bound (ack_hold.cc).
  bool need = false;
  if (ack) {
    if (hold_on_) {
      note_ack(flow, opposite(d), p.tcp_ack);
      // This segment was sent after its sender received the bytes its ACK
      // covers: if they are not delivered yet, its data and FIN wait for them.
      // A flow picked up mid-stream whose other direction has sent no data
      // yet: its data waits (bounded) for that direction's first segment,
      // which tells whether the ACK covered bytes before the capture began.
      const StreamState& o = st(flow, opposite(d));
      const int32_t ahead = seq_diff(p.tcp_ack, o.next_seq);
      if (!o.seq_known) {
        need = !payload.empty() && s.stream_offset() == 0 && s.head == ChunkPool::kNone;
      } else {
        need = (!payload.empty() || fin) && ahead > 0 && ahead <= static_cast<int64_t>(cfg_.ack_hold_bytes) &&
               flow.stats[index_of(opposite(d))].packets != 0;
      }
    } else {
      handle_ack(flow, opposite(d), p.tcp_ack, ts_ns);
    }
  }

  uint32_t seq = p.tcp_seq;
  if (syn) {
    if (!s.seq_known) {
      s.seq_known = true;
      s.syn_seen = true;
      s.isn = seq;
      s.next_seq = seq + 1;
    }
    if (ack) {
      // SYN-ACK: its ack number is the client's ISN + 1, even if we missed the SYN.
      StreamState& peer = st(flow, opposite(d));
      if (!peer.seq_known) {
        peer.seq_known = true;
        peer.isn = p.tcp_ack - 1;
        peer.next_seq = p.tcp_ack;
      }
      if (flow.state == FlowState::kSynSent) flow.state = FlowState::kSynReceived;
    }
    seq += 1;  // the SYN occupies one sequence number; data (TFO) follows it
  } else if (ack && flow.state == FlowState::kSynReceived && d == kC2S) {
    flow.state = FlowState::kEstablished;
  }

  SegmentOutcome out = SegmentOutcome::kNoPayload;
  if (!payload.empty()) {
    out = tcp_data(flow, d, seq, payload, seg_len, ts_ns, need, p.tcp_ack);
    if (flow.state == FlowState::kSynSent || flow.state == FlowState::kSynReceived) {
      flow.state = FlowState::kEstablished;
    }
  }
  if (fin) {
    if (need && !s.fin_seen && st(flow, opposite(d)).seq_known) {
      s.fin_needs = true;
      s.fin_need_ack = p.tcp_ack;
    }
    handle_fin(flow, d, seq + seg_len, ts_ns);
  }
  if (hold_on_) settle(flow, ts_ns);

  const StreamState& c = st(flow, kC2S);
  const StreamState& sv = st(flow, kS2C);
  if (c.fin_delivered && sv.fin_delivered) {
    close_flow(flow, CloseReason::kFin, ts_ns);
  } else if (c.fin_seen || sv.fin_seen) {
    flow.state = FlowState::kClosing;
  }
  table_.touch(flow, class_of(flow), ts_ns);
  return out;
}

// ---------------------------------------------------------------------------
// TCP data path

SegmentOutcome Reassembler::tcp_data(Flow& f, Direction d, uint32_t seq, std::span<const std::byte> data,
                                     uint32_t seg_len, uint64_t ts_ns, bool need, uint32_t need_ack) {
  StreamState& s = st(f, d);
  conflict_counted_ = false;
  if (!s.seq_known) {  // mid-stream pickup: the first data segment seen starts the stream
    s.seq_known = true;
    s.picked_up = true;
    s.next_seq = seq;
  }
  if (s.fin_seen) {
    if (seq_geq(seq, s.fin_seq)) return SegmentOutcome::kDataAfterFin;
    uint32_t room = s.fin_seq - seq;
    if (seg_len > room) seg_len = room;
    if (data.size() > room) data = data.first(room);
  }

  const int64_t max_window = cfg_.max_window;
  if (hold_on_ && s.picked_up && s.stream_offset() == 0 && s.head != ChunkPool::kNone && seq_lt(seq, s.next_seq) &&
      seq_diff(s.next_seq, seq) <= max_window && pool_.piece(s.head).needs) {
    // A flow picked up mid-stream whose first bytes are all still held (for
    // the other direction's first segment): a segment just before them is
    // the true start, which the mirror delivered late. Start there; it waits
    // like them.
    s.next_seq = seq;
    need = true;
    need_ack = pool_.piece(s.head).need_ack;
  }
  const int32_t ahead = seq_diff(seq, s.next_seq);
  if (ahead > max_window || ahead < -max_window) {
    if (s.fin_seen || ++s.out_of_window_run < cfg_.resync_after) return SegmentOutcome::kOutOfWindow;
    // The stream has moved on without us (or we locked onto a bogus segment):
    // hand over what is buffered, declare the distance missing, and restart here.
    s.out_of_window_run = 0;
    while (s.head != ChunkPool::kNone) {
      const ChunkPool::Piece& pc = pool_.piece(s.head);
      advance_to(f, d, pc.seq + pc.len, GapReason::kResync, ts_ns);
    }
    emit_gap(f, d, seq - s.next_seq, GapReason::kResync, ts_ns);
    return deliver_in_order(f, d, seq, data, seg_len, ts_ns);
  }
  s.out_of_window_run = 0;

  if (int64_t{ahead} + static_cast<int64_t>(data.size()) <= 0) {
    counters_.bytes_duplicate += data.size();
    return SegmentOutcome::kRetransmission;
  }
  // A segment the snaplen cut is not held: a buffered piece keeps its captured
  // bytes only, and its `truncated` gap must reach the decoder with it.
  if (seg_len > data.size()) need = false;
  if (hold_on_ && (need || head_blocked(f, d))) {
    // Held (or behind held bytes): into the pool, however in order it is.
    uint32_t trimmed = 0;
    if (ahead < 0) {
      trimmed = static_cast<uint32_t>(-ahead);
      counters_.bytes_duplicate += trimmed;
      seq = s.next_seq;
      data = data.subspan(trimmed);
      seg_len -= std::min(seg_len, trimmed);
    }
    if (need && held_bytes(f, d) + data.size() > cfg_.ack_hold_bytes) {
      ++counters_.ack_hold_overflows;
      force_release(f, ts_ns);
      return tcp_data(f, d, seq, data, seg_len, ts_ns, false, 0);  // the bound passed: no new hold
    }
    if (need) ++counters_.ack_held_segments;
    SegmentOutcome out = buffer_out_of_order(f, d, seq, data, seg_len, ts_ns, need, need_ack);
    if (trimmed != 0 && out == SegmentOutcome::kBuffered) out = SegmentOutcome::kOverlapTrimmed;
    return out;
  }
  if (ahead <= 0) return deliver_in_order(f, d, seq, data, seg_len, ts_ns);
  return buffer_out_of_order(f, d, seq, data, seg_len, ts_ns);
}

SegmentOutcome Reassembler::deliver_in_order(Flow& f, Direction d, uint32_t seq,
                                             std::span<const std::byte> data, uint32_t seg_len,
                                             uint64_t ts_ns) {
  StreamState& s = st(f, d);
  const uint32_t end = seq + static_cast<uint32_t>(data.size());
  if (seq_leq(end, s.next_seq)) {
    counters_.bytes_duplicate += data.size();
    return SegmentOutcome::kRetransmission;
  }
  uint64_t trimmed = s.next_seq - seq;  // front already delivered
  while (seq_lt(s.next_seq, end)) {
    const uint32_t h = s.head;
    const bool overlaps = h != ChunkPool::kNone && seq_lt(pool_.piece(h).seq, end);
    const uint32_t limit = overlaps ? pool_.piece(h).seq : end;
    if (seq_lt(s.next_seq, limit)) {
      deliver(f, d, data.subspan(s.next_seq - seq, limit - s.next_seq), ts_ns);
    }
    if (overlaps && blocked(f, d, pool_.piece(h))) {
      // A held piece: the rest of this copy waits behind it.
      const uint32_t off = s.next_seq - seq;
      buffer_out_of_order(f, d, s.next_seq, data.subspan(off), seg_len > off ? seg_len - off : 0, ts_ns);
      return trimmed != 0 ? SegmentOutcome::kOverlapTrimmed : SegmentOutcome::kInOrder;
    }
    if (overlaps) {
      // Bytes buffered earlier win over this copy of them (first data wins).
      const ChunkPool::Piece& pc = pool_.piece(h);
      const uint32_t piece_end = pc.seq + pc.len;
      const uint32_t from = seq_lt(pc.seq, s.next_seq) ? s.next_seq : pc.seq;
      const uint32_t to = seq_lt(end, piece_end) ? end : piece_end;
      if (seq_lt(from, to)) {
        trimmed += to - from;
        if (std::memcmp(pool_.data(h) + (from - pc.seq), data.data() + (from - seq), to - from) != 0) {
          pool_.piece(h).conflict = true;  // reported to the consumer with the piece's bytes
          count_conflict();
        }
      }
      deliver_piece_and_pop(f, d);
    }
  }
  counters_.bytes_duplicate += trimmed;
  const uint32_t claimed_end = seq + seg_len;
  if (seg_len > data.size() && seq_lt(s.next_seq, claimed_end)) {
    advance_to(f, d, claimed_end, GapReason::kTruncated, ts_ns);
  }
  flush_contiguous(f, d);
  maybe_deliver_fin(f, d, ts_ns);
  return trimmed != 0 ? SegmentOutcome::kOverlapTrimmed : SegmentOutcome::kInOrder;
}

// Calls emit(from, to, prev) for every sub-range of [seq, end) that no
// buffered piece covers, in ascending order; `prev` is the piece after which
// the range belongs (kNone: at the head). emit returns the new `prev`.
template <typename Emit>
void Reassembler::walk_uncovered(const StreamState& s, uint32_t seq, uint32_t end, Emit&& emit) const {
  uint32_t prev = ChunkPool::kNone;
  uint32_t cur = s.head;
  if (s.tail != ChunkPool::kNone) {
    const ChunkPool::Piece& t = pool_.piece(s.tail);
    if (seq_geq(seq, t.seq + t.len)) {  // common case: beyond everything buffered
      prev = s.tail;
      cur = ChunkPool::kNone;
    }
  }
  uint32_t cursor = seq;
  while (seq_lt(cursor, end)) {
    while (cur != ChunkPool::kNone && seq_leq(pool_.piece(cur).seq + pool_.piece(cur).len, cursor)) {
      prev = cur;
      cur = pool_.piece(cur).next;
    }
    if (cur == ChunkPool::kNone || seq_geq(pool_.piece(cur).seq, end)) {
      emit(cursor, end, prev);
      return;
    }
    const uint32_t cur_seq = pool_.piece(cur).seq;
    if (seq_lt(cursor, cur_seq)) prev = emit(cursor, cur_seq, prev);
    cursor = pool_.piece(cur).seq + pool_.piece(cur).len;
    prev = cur;
    cur = pool_.piece(cur).next;
  }
}

SegmentOutcome Reassembler::buffer_out_of_order(Flow& f, Direction d, uint32_t seq,
                                                std::span<const std::byte> data, uint32_t seg_len,
                                                uint64_t ts_ns, bool held, uint32_t held_ack) {
  StreamState& s = st(f, d);
  FlowStreams& fs = streams_[f.slot];
  const uint32_t len = static_cast<uint32_t>(data.size());
  const uint32_t end = seq + len;
  const uint32_t cs = pool_.chunk_size();
  for (;;) {
    uint64_t new_bytes = 0;
    uint64_t need = 0;
    walk_uncovered(s, seq, end, [&](uint32_t a, uint32_t b, uint32_t prev) {
      new_bytes += b - a;
      need += (b - a + cs - 1) / cs;
      return prev;
    });
    if (new_bytes < len) overlap_differs(s, seq, data);  // first data wins: is the other copy the same?
    if (new_bytes == 0) {
      counters_.bytes_duplicate += len;
      return SegmentOutcome::kRetransmission;
    }
    if (fs.buffered_chunks + need <= flow_limit_chunks_) {
      if (need > pool_.available()) {
        counters_.bytes_dropped_memory += new_bytes;
        return SegmentOutcome::kDroppedMemory;
      }
      walk_uncovered(s, seq, end, [&](uint32_t a, uint32_t b, uint32_t prev) {
        while (a != b) {
          const uint32_t n = std::min(b - a, cs);
          const uint32_t c = alloc_chunk(f);  // available() was checked above
          ChunkPool::Piece& pc = pool_.piece(c);
          pc.seq = a;
          pc.len = n;
          pc.conflict = false;
          pc.needs = held;
          pc.need_ack = held_ack;
          pc.ts_ns = ts_ns;
          std::memcpy(pool_.data(c), data.data() + (a - seq), n);
          if (prev == ChunkPool::kNone) {
            pc.next = s.head;
            s.head = c;
          } else {
            pc.next = pool_.piece(prev).next;
            pool_.piece(prev).next = c;
          }
          if (pc.next == ChunkPool::kNone) s.tail = c;
          counters_.buffered_bytes += n;
          prev = c;
          a += n;
        }
        return prev;
      });
      counters_.buffered_bytes_high_water = std::max(counters_.buffered_bytes_high_water, counters_.buffered_bytes);
      counters_.bytes_duplicate += len - new_bytes;
      return new_bytes < len ? SegmentOutcome::kOverlapTrimmed : SegmentOutcome::kBuffered;
    }
    if (hold_on_ && hold_pending(f)) {
      // The flow's buffer is full of held bytes: give the hold up first.
      ++counters_.ack_hold_overflows;
      force_release(f, ts_ns);
      if (seq_leq(seq, s.next_seq)) return deliver_in_order(f, d, seq, data, seg_len, ts_ns);
      held = false;
      continue;
    }
    // Per-flow limit: the oldest hole will not be waited for any longer.
    ++counters_.flow_limit_hits;
    const uint32_t h = s.head;
    if (h != ChunkPool::kNone && seq_lt(pool_.piece(h).seq, seq)) {
      advance_to(f, d, pool_.piece(h).seq, GapReason::kFlowLimit, ts_ns);
      if (seq_leq(s.next_seq, seq)) {
        if (s.next_seq == seq) return deliver_in_order(f, d, seq, data, seg_len, ts_ns);
        continue;  // still ahead: measure again against what is left
      }
      return deliver_in_order(f, d, seq, data, seg_len, ts_ns);  // trims what was delivered
    }
    advance_to(f, d, seq, GapReason::kFlowLimit, ts_ns);
    return deliver_in_order(f, d, seq, data, seg_len, ts_ns);
  }
}

// ---------------------------------------------------------------------------
// ACK, FIN, gaps and delivery

void Reassembler::handle_ack(Flow& f, Direction rd, uint32_t ack, uint64_t ts_ns) {
  StreamState& r = st(f, rd);
  const bool fin_pending = r.fin_seen && !r.fin_delivered;
  if (!r.seq_known || (r.head == ChunkPool::kNone && !fin_pending)) return;
  const int32_t dist = seq_diff(ack, r.next_seq);
  if (dist <= 0 || dist > static_cast<int64_t>(cfg_.max_window)) return;
  // Every hole before buffered data the receiver has acknowledged is lost to us.
  while (r.head != ChunkPool::kNone && seq_leq(pool_.piece(r.head).seq, ack)) {
    advance_to(f, rd, pool_.piece(r.head).seq, GapReason::kAckPastHole, ts_ns);
  }
  if (r.head == ChunkPool::kNone && r.fin_seen && !r.fin_delivered && seq_gt(ack, r.fin_seq)) {
    advance_to(f, rd, r.fin_seq, GapReason::kAckPastHole, ts_ns);
  }
}

void Reassembler::handle_fin(Flow& f, Direction d, uint32_t fin_seq, uint64_t ts_ns) {
  StreamState& s = st(f, d);
  if (s.fin_seen) return;  // the first FIN counts; later ones are retransmissions (or lies)
  if (!s.seq_known) {      // bare FIN on a direction never seen sending data
    s.seq_known = true;
    s.picked_up = true;
    s.next_seq = fin_seq;
  }
  const int32_t dist = seq_diff(fin_seq, s.next_seq);
  if (dist < 0 || dist > static_cast<int64_t>(cfg_.max_window)) return;  // stale or bogus FIN: ignored
  s.fin_seen = true;
  s.fin_seq = fin_seq;
  s.fin_ts_ns = ts_ns;
  // Nothing legitimate lives at or after the FIN: drop such buffered bytes.
  uint32_t prev = ChunkPool::kNone;
  uint32_t cur = s.head;
  while (cur != ChunkPool::kNone) {
    ChunkPool::Piece& pc = pool_.piece(cur);
    if (seq_geq(pc.seq, fin_seq)) {
      // Cut the list here and free the rest.
      if (prev == ChunkPool::kNone) {
        s.head = ChunkPool::kNone;
      } else {
        pool_.piece(prev).next = ChunkPool::kNone;
      }
      s.tail = prev;
      while (cur != ChunkPool::kNone) {
        const uint32_t next = pool_.piece(cur).next;
        release_chunk(f, cur, pool_.piece(cur).len);
        cur = next;
      }
      break;
    }
    if (seq_gt(pc.seq + pc.len, fin_seq)) {
      const uint32_t keep = fin_seq - pc.seq;
      counters_.buffered_bytes -= pc.len - keep;
      pc.len = keep;
    }
    prev = cur;
    cur = pc.next;
  }
  maybe_deliver_fin(f, d, ts_ns);
}

void Reassembler::deliver(Flow& f, Direction d, std::span<const std::byte> data, uint64_t ts_ns) {
  report_lost_tail(f, d, ts_ns);
  StreamState& s = st(f, d);
  consumer_.on_data(f, d, data, ts_ns);
  s.next_seq += static_cast<uint32_t>(data.size());
  s.delivered_bytes += data.size();
  counters_.bytes_in_order += data.size();
}

void Reassembler::deliver_piece_and_pop(Flow& f, Direction d) {
  StreamState& s = st(f, d);
  const uint32_t h = s.head;
  const ChunkPool::Piece& pc = pool_.piece(h);
  const uint32_t skip = seq_lt(pc.seq, s.next_seq) ? s.next_seq - pc.seq : 0;
  if (skip < pc.len) {
    const uint32_t n = pc.len - skip;
    report_lost_tail(f, d, pc.ts_ns);
    if (pc.conflict) consumer_.on_overlap_conflict(f, d, pc.ts_ns);
    consumer_.on_data(f, d, std::span<const std::byte>(pool_.data(h) + skip, n), pc.ts_ns);
    s.next_seq += n;
    s.delivered_bytes += n;
    counters_.bytes_from_buffer += n;
  }
  pop_head(f, d);
}

void Reassembler::flush_contiguous(Flow& f, Direction d) {
  StreamState& s = st(f, d);
  while (s.head != ChunkPool::kNone && seq_leq(pool_.piece(s.head).seq, s.next_seq) &&
         !blocked(f, d, pool_.piece(s.head))) {
    deliver_piece_and_pop(f, d);
  }
}

void Reassembler::emit_gap(Flow& f, Direction d, uint32_t missing, GapReason reason, uint64_t ts_ns) {
  if (missing == 0) return;
  st(f, d).next_seq += missing;
  report_gap(f, d, missing, reason, ts_ns);
}

// One gap event for `missing` bytes plus a lost tail still unreported before
// them (contiguous: one hole, as capture-order delivery would declare it).
void Reassembler::report_gap(Flow& f, Direction d, uint64_t missing, GapReason reason, uint64_t ts_ns) {
  StreamState& s = st(f, d);
  missing += s.lost_tail;
  s.lost_tail = 0;
  s.gap_bytes += missing;
  ++s.gap_events;
  ++counters_.gap_events[static_cast<size_t>(reason)];
  counters_.gap_bytes[static_cast<size_t>(reason)] += missing;
  consumer_.on_gap(f, d, missing, reason, ts_ns);
}

// Moves next_seq forward to `target`: buffered pieces on the way are
// delivered, the holes between them become gaps.
void Reassembler::advance_to(Flow& f, Direction d, uint32_t target, GapReason reason, uint64_t ts_ns) {
  StreamState& s = st(f, d);
  if (s.fin_seen && seq_gt(target, s.fin_seq)) target = s.fin_seq;
  while (seq_lt(s.next_seq, target)) {
    const uint32_t h = s.head;
    if (h != ChunkPool::kNone && seq_lt(pool_.piece(h).seq, target)) {
      const uint32_t ps = pool_.piece(h).seq;
      if (seq_lt(s.next_seq, ps)) emit_gap(f, d, ps - s.next_seq, reason, ts_ns);
      deliver_piece_and_pop(f, d);
    } else {
      emit_gap(f, d, target - s.next_seq, reason, ts_ns);
    }
  }
  flush_contiguous(f, d);
  maybe_deliver_fin(f, d, ts_ns);
}

void Reassembler::maybe_deliver_fin(Flow& f, Direction d, uint64_t ts_ns) {
  StreamState& s = st(f, d);
  if (!s.fin_seen || s.fin_delivered || s.next_seq != s.fin_seq) return;
  if (s.fin_needs && seq_lt(st(f, opposite(d)).next_seq, s.fin_need_ack)) return;  // held FIN
  report_lost_tail(f, d, ts_ns);
  s.fin_delivered = true;
  s.next_seq += 1;  // the FIN occupies one sequence number
  consumer_.on_fin(f, d, ts_ns);
}

// Hands over everything buffered (holes become gaps) and a pending FIN.
void Reassembler::flush_direction(Flow& f, Direction d, uint64_t ts_ns) {
  StreamState& s = st(f, d);
  while (s.head != ChunkPool::kNone) {
    const ChunkPool::Piece& pc = pool_.piece(s.head);
    advance_to(f, d, pc.seq + pc.len, GapReason::kClose, ts_ns);
  }
  if (s.fin_seen && !s.fin_delivered) {
    s.fin_needs = false;
    advance_to(f, d, s.fin_seq, GapReason::kClose, ts_ns);
  }
}

void Reassembler::close_flow(Flow& f, CloseReason reason, uint64_t ts_ns) {
  if (hold_on_) {
    force_release(f, ts_ns);  // held data goes out in the order the ACKs proved
    hold_unlist(f);
  }
  // A FIN close ends at the later FIN's packet time: the packet that
  // completes it may be another (a segment a mirror path delivered late, its
  // timestamp behind, releasing a FIN held for it).
  uint64_t end_ns = ts_ns;
  if (reason == CloseReason::kFin) {
    end_ns = std::max(st(f, kC2S).fin_ts_ns, st(f, kS2C).fin_ts_ns);
  }
  streams_[f.slot].closed_ts_ns = std::max(f.last_ts_ns, ts_ns);
  flush_direction(f, kC2S, ts_ns);
  flush_direction(f, kS2C, ts_ns);
  consumer_.on_close(f, reason, end_ns);
  ++counters_.closed[static_cast<size_t>(reason)];
  f.state = FlowState::kClosed;
  free_pieces(f, kC2S);  // nothing is left after the flush; defensive
  free_pieces(f, kS2C);
}

// Compares `data` (at `seq`) with the buffered pieces it overlaps; pieces
// whose bytes differ are marked (reported when delivered). Runs only for
// segments that overlap buffered data, so the walk is off the common path.
bool Reassembler::overlap_differs(StreamState& s, uint32_t seq, std::span<const std::byte> data) {
  const uint32_t end = seq + static_cast<uint32_t>(data.size());
  bool differs = false;
  for (uint32_t c = s.head; c != ChunkPool::kNone; c = pool_.piece(c).next) {
    ChunkPool::Piece& pc = pool_.piece(c);
    if (seq_geq(pc.seq, end)) break;
    const uint32_t piece_end = pc.seq + pc.len;
    if (seq_leq(piece_end, seq)) continue;
    const uint32_t from = seq_lt(pc.seq, seq) ? seq : pc.seq;
    const uint32_t to = seq_lt(end, piece_end) ? end : piece_end;
    if (std::memcmp(pool_.data(c) + (from - pc.seq), data.data() + (from - seq), to - from) != 0) {
      pc.conflict = true;
      differs = true;
    }
  }
  if (differs) count_conflict();
  return differs;
}

void Reassembler::free_pieces(Flow& f, Direction d) {
  StreamState& s = st(f, d);
  while (s.head != ChunkPool::kNone) pop_head(f, d);
}

void Reassembler::pop_head(Flow& f, Direction d) {
  StreamState& s = st(f, d);
  const uint32_t h = s.head;
  s.head = pool_.piece(h).next;
  if (s.head == ChunkPool::kNone) s.tail = ChunkPool::kNone;
  release_chunk(f, h, pool_.piece(h).len);
}

uint32_t Reassembler::alloc_chunk(Flow& f) {
  const uint32_t c = pool_.alloc();
  if (c == ChunkPool::kNone) return c;
  ++streams_[f.slot].buffered_chunks;
  ++counters_.chunks_in_use;
  counters_.chunks_high_water = std::max(counters_.chunks_high_water, counters_.chunks_in_use);
  return c;
}

void Reassembler::release_chunk(Flow& f, uint32_t chunk, uint32_t payload_len) {
  --streams_[f.slot].buffered_chunks;
  --counters_.chunks_in_use;
  counters_.buffered_bytes -= payload_len;
  pool_.free(chunk);
}

}  // namespace spanfeed
