// Flow tracking + TCP reassembly for one worker: outcome names, configuration, the chunk
// pool and the per-packet entry (TCP state, UDP pass-through). The TCP data path is in
// tcp_data_path.cc, ACK/FIN, gaps, delivery and close in tcp_delivery.cc, the ACK hold in
// ack_hold.cc. Runs on one worker lcore; allocates only in the constructor, never throws
// on the data path.
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

// A packet whose fingerprint lookahead() did not compute (the first of a
// burst): out of line, so that the inline fingerprint stays out of process().
[[gnu::noinline]] uint64_t fingerprint_now(const DuplicateFilter& dedup, std::span<const std::byte> frame,
                                           const ParsedPacket& p) {
  return dedup.fingerprint(frame, p);
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

SegmentOutcome Reassembler::process(std::span<const std::byte> frame, const ParsedPacket& p, uint64_t ts_ns,
                                    const PacketView* next) {
  ++counters_.segments;
  // This packet's key when the previous call computed it; the next packet's
  // lines (dedup, flow) fetched while this one is handled.
  // (Two slots: lookahead() fills the other one while this one is in use.)
  KeyedPacket& cached = ahead_[ahead_slot_];
  const bool announced = cached.parsed == &p;
  const bool fp_announced = cached.fp_of == &p;
  cached.parsed = nullptr;
  cached.fp_of = nullptr;
  ahead_slot_ ^= 1;
  // Set again when this packet reaches its flow.
  const uint32_t prev_slot = last_slot_;
  last_slot_ = FlowTable::kNone;
  if (next != nullptr) lookahead(*next, announced ? &cached : nullptr);
  if (dedup_.enabled()) {
    const uint64_t fp = fp_announced ? cached.dedup_fp : fingerprint_now(dedup_, frame, p);
    if (dedup_.seen_fingerprint(fp, ts_ns)) {
      counters_.dedup_evicted_live = dedup_.evicted_live();
      ++counters_.outcome[static_cast<size_t>(SegmentOutcome::kDuplicate)];
      return SegmentOutcome::kDuplicate;
    }
  }
  counters_.dedup_evicted_live = dedup_.evicted_live();
  table_.expire(ts_ns, cfg_.expire_budget);
  if (hold_head_ != UINT32_MAX) expire_holds(std::max(table_.now_ns(), ts_ns), cfg_.expire_budget);

  // The common packet: TCP, whole (no fragment, nothing cut or malformed),
  // an ACK with data and no SYN/FIN/RST, its key computed ahead.
  constexpr uint8_t kNotPlain = packet_flag::kFragment | packet_flag::kLaterFragment | packet_flag::kL4Truncated |
                                packet_flag::kPayloadTruncated | packet_flag::kTcpOptionsBad;
  constexpr uint8_t kControl = tcp_flag::kSyn | tcp_flag::kRst | tcp_flag::kFin | tcp_flag::kAck;
  if (announced && p.l4_proto == kProtoTcp && (p.flags & kNotPlain) == 0 &&
      (p.tcp_flags & kControl) == tcp_flag::kAck && p.payload_len != 0 && p.payload_offset != 0 &&
      size_t{p.payload_offset} + p.payload_len <= frame.size()) [[likely]] {
    const FlowLookup lk = find_flow(cached, prev_slot);
    if (lk.flow != nullptr &&
        in_order_now(*lk.flow, lk.dir, p, frame.subspan(p.payload_offset, p.payload_len), frame.size(), ts_ns))
        [[likely]] {
      ++counters_.outcome[static_cast<size_t>(SegmentOutcome::kInOrder)];
      return SegmentOutcome::kInOrder;
    }
  }
  return process_general(frame, p, ts_ns, cached, announced, prev_slot);
}

// What process_tcp does for such a packet when every condition holds (its
// in-order branch with need false, no FIN, the other direction idle and not
// listed), checked before anything changes, so a packet that fails one goes
// through process_general as if this had not run.
[[gnu::always_inline]] inline bool Reassembler::in_order_now(Flow& f, Direction d, const ParsedPacket& p,
                                                             std::span<const std::byte> payload, size_t wire,
                                                             uint64_t ts_ns) {
  if (f.state != FlowState::kEstablished) return false;
  FlowStreams& fs = streams_[f.slot];
  StreamState& s = fs.dir[index_of(d)];
  const StreamState& o = fs.dir[index_of(opposite(d))];
  // d: the next bytes, nothing buffered, no FIN, no lost tail to report.
  if (!s.seq_known || s.fin_seen || s.head != ChunkPool::kNone || p.tcp_seq != s.next_seq || s.lost_tail != 0) {
    return false;
  }
  // The other direction: nothing buffered, no FIN (handle_ack has nothing
  // to do, settle nothing to move, the flow stays established).
  if (o.head != ChunkPool::kNone || o.fin_seen) return false;
  // Ack hold: the ACK proves nothing past what the other direction
  // delivered (need false, no proof to note) and no hold is listed.
  if (hold_on_ && (!o.seq_known || seq_diff(p.tcp_ack, o.next_seq) > 0 || fs.hold_listed)) return false;
  const uint64_t acked = o.seq_known ? position_of(o, p.tcp_ack) : kAckUnknown;  // before the stores below
  last_slot_ = f.slot;
  count_stats(f, d, payload.size(), wire, ts_ns);
  conflict_counted_ = false;
  s.out_of_window_run = 0;
  consumer_.on_data(f, d, payload, ts_ns, acked);
  s.next_seq += static_cast<uint32_t>(payload.size());
  s.delivered_bytes += payload.size();
  counters_.bytes_in_order += payload.size();
  table_.touch(f, TimeoutClass::kTcpEstablished, ts_ns);
  return true;
}

SegmentOutcome Reassembler::process_general(std::span<const std::byte> frame, const ParsedPacket& p, uint64_t ts_ns,
                                            KeyedPacket& cached, bool announced, uint32_t prev_slot) {
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
    // Not computed ahead (the first packet of a burst): into the slot just
    // read (lookahead() filled the other one), left unannounced.
    if (!announced) [[unlikely]] key_now(p, cached);
    const KeyedPacket& kp = cached;
    out = p.l4_proto == kProtoTcp ? process_tcp(frame, p, payload, seg_len, ts_ns, kp, prev_slot)
                                  : process_udp(frame, p, payload, seg_len - p.payload_len, ts_ns, kp, prev_slot);
  }
  ++counters_.outcome[static_cast<size_t>(out)];
  return out;
}

void Reassembler::key_now(const ParsedPacket& p, KeyedPacket& kp) const {
  make_flow_key_into(p, table_.include_vlan(), kp.ok);
  kp.hash = table_.hash_of(kp.ok.key);
  kp.same_flow = false;
}

// The next packet's flow key and hash now, and the lines its lookup and
// stream state will read.
void Reassembler::lookahead(const PacketView& next, const KeyedPacket* cur) {
  const ParsedPacket& np = *next.parsed;
  KeyedPacket& a = ahead_[ahead_slot_];
  if (dedup_.enabled()) {
    a.dedup_fp = dedup_.fingerprint(next.frame, np);
    a.fp_of = &np;
    dedup_.prefetch(a.dedup_fp);
  }
  if ((np.l4_proto != kProtoTcp && np.l4_proto != kProtoUdp) ||
      (np.flags & (packet_flag::kFragment | packet_flag::kLaterFragment)) != 0) {
    return;
  }
  make_flow_key_into(np, table_.include_vlan(), a.ok);
  a.parsed = &np;
  // The same flow as this packet (two in three packets on mixed.pcap): its
  // lines are warm and, while it stays in the table, no lookup is needed.
  a.same_flow = cur != nullptr && cur->ok.key == a.ok.key;
  if (a.same_flow) return;
  a.hash = table_.hash_of(a.ok.key);
  const uint32_t slot = table_.prefetch(a.hash);
  if (slot != FlowTable::kNone) {
    // The first flow on the chain: in use, so its FlowStreams exist (no
    // size check needed).
    const char* fs = reinterpret_cast<const char*>(streams_.data() + slot);
    for (size_t off = 0; off < sizeof(FlowStreams); off += 64) __builtin_prefetch(fs + off);
    __builtin_prefetch(fs + sizeof(FlowStreams) - 1);
  }
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

SegmentOutcome Reassembler::process_udp(std::span<const std::byte> frame, const ParsedPacket& /*p*/,
                                        std::span<const std::byte> payload, uint32_t missing, uint64_t ts_ns,
                                        const KeyedPacket& kp, uint32_t prev_slot) {
  const OrientedKey& ok = kp.ok;
  FlowLookup lk = find_flow(kp, prev_slot);
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
  last_slot_ = f->slot;
  count_stats(*f, d, payload.size(), frame.size(), ts_ns);
  StreamState& s = st(*f, d);
  // A cut datagram: its gap first, so that the decoder knows the bytes it gets are not all of it.
  if (missing != 0) emit_gap(*f, d, missing, GapReason::kTruncated, ts_ns);
  consumer_.on_data(*f, d, payload, ts_ns);
  s.delivered_bytes += payload.size();
  counters_.bytes_datagram += payload.size();
  table_.touch(*f, TimeoutClass::kUdp, ts_ns);
  return SegmentOutcome::kDatagram;
}

// Inlined into process(), its only caller (one call and its argument
// passing less per TCP packet).
[[gnu::always_inline]] inline SegmentOutcome Reassembler::process_tcp(std::span<const std::byte> frame, const ParsedPacket& p,
                                        std::span<const std::byte> payload, uint32_t seg_len, uint64_t ts_ns,
                                        const KeyedPacket& kp, uint32_t prev_slot) {
  const uint8_t fl = p.tcp_flags;
  const bool syn = (fl & tcp_flag::kSyn) != 0;
  const bool ack = (fl & tcp_flag::kAck) != 0;
  const bool fin = (fl & tcp_flag::kFin) != 0;
  const bool rst = (fl & tcp_flag::kRst) != 0;
  pkt_has_ack_ = ack;
  pkt_ack_ = p.tcp_ack;

  const OrientedKey& ok = kp.ok;
  FlowLookup lk = find_flow(kp, prev_slot);
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
  last_slot_ = flow.slot;
  if (streams_[flow.slot].rst_pending && ts_ns >= streams_[flow.slot].rst_ts_ns + cfg_.ack_hold_ns) [[unlikely]] {
    close_flow(flow, CloseReason::kRst, ts_ns);  // the reset's wait is over (expire_holds had not reached it yet): this packet is after the close
    table_.touch(flow, TimeoutClass::kClosed, ts_ns);
  }
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
    FlowStreams& fs = streams_[flow.slot];
    if (fs.rst_pending) {
      // More resets while the first one's close waits (a closed socket answers each segment that reaches
      // it with one; a mirror copy): nothing new, counted as a closed flow's would have been.
      table_.touch(flow, TimeoutClass::kTcpClosing, ts_ns);
      return SegmentOutcome::kAfterClose;
    }
    fs.rst_dir = d;
    fs.rst_ts_ns = ts_ns;
    if (hold_on_) {
      // A mirror fed by two paths may deliver the reset ahead of bytes sent before it (the other side's
      // last data, which made its peer reset: a TLS close_notify after the server closed). The close
      // waits the hold's bound in packet time, as a held segment would: bytes in the window meanwhile are
      // delivered; the flow then closes as reset (expire_holds, the flow's next packet, or any close).
      fs.rst_pending = true;
      flow.state = FlowState::kClosing;
      if (!fs.hold_listed) {
        fs.hold_since_ns = std::max(table_.now_ns(), ts_ns);
        hold_list(flow);
      }
      table_.touch(flow, TimeoutClass::kTcpClosing, ts_ns);
      return SegmentOutcome::kRst;
    }
    reset_close(flow, ts_ns);  // the hold off: at once, in capture order
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
      // This segment was sent after its sender received the bytes its ACK
      // covers: if they are not delivered yet, its data and FIN wait for them.
      // A flow picked up mid-stream whose other direction has sent no data
      // yet: its data waits (bounded) for that direction's first segment,
      // which tells whether the ACK covered bytes before the capture began.
      const StreamState& o = st(flow, opposite(d));
      if (!o.seq_known) {
        need = !payload.empty() && s.stream_offset() == 0 && s.head == ChunkPool::kNone;
      } else if (const int32_t ahead = seq_diff(p.tcp_ack, o.next_seq); ahead > 0) [[unlikely]] {
        // Usually the ACK is at what o delivered: no proof to keep (note_ack
        // keeps only one past next_seq), nothing to wait for.
        note_ack(flow, opposite(d), p.tcp_ack);
        need = (!payload.empty() || fin) && flow.stats[index_of(opposite(d))].packets != 0;
        if (need && ahead > static_cast<int64_t>(cfg_.ack_hold_bytes)) [[unlikely]] {
          // Too far ahead to wait for: what the ACK proves goes out first (holes before bytes the other
          // direction buffered become gaps, as at the bound), then this segment, in the order the ACK
          // proves. (It went out first: an HTTP/2 RST_STREAM acknowledging 66 KB of a response behind a
          // hole closed the stream before the response's DATA reached it.)
          ++counters_.ack_hold_overflows;
          force_release(flow, ts_ns);
          need = false;
        }
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
    if (s.seq_known && !s.fin_seen && seq == s.next_seq && s.head == ChunkPool::kNone && !need &&
        seg_len == payload.size()) [[likely]] {
      // tcp_data's common case without the call: the next bytes, whole,
      // nothing buffered or held, no FIN before them (what tcp_data checks
      // first all passes: in the window, not a retransmission).
      conflict_counted_ = false;
      s.out_of_window_run = 0;
      deliver(flow, d, payload, ts_ns);
      // d has no FIN and nothing buffered, before and after: no FIN of d to
      // deliver, d stays idle for settle(), and the flow cannot close on
      // this packet. Without a FIN of its own, what the tail below does
      // reduces to the other direction's part.
      if (flow.state == FlowState::kSynSent || flow.state == FlowState::kSynReceived) {
        flow.state = FlowState::kEstablished;
      }
      if (!fin) [[likely]] {
        const StreamState& o = st(flow, opposite(d));
        if (hold_on_) {
          if (!idle_direction(o)) [[unlikely]] {
            settle_slow(flow, ts_ns);
          } else {
            end_idle_hold(flow);
          }
        }
        if (o.fin_seen) flow.state = FlowState::kClosing;
        // Neither closed (checked above) nor opening (just made established).
        table_.touch(flow, flow.state == FlowState::kClosing ? TimeoutClass::kTcpClosing
                                                             : TimeoutClass::kTcpEstablished, ts_ns);
        return SegmentOutcome::kInOrder;
      }
      out = SegmentOutcome::kInOrder;
    } else {
      out = tcp_data(flow, d, seq, payload, seg_len, ts_ns, need, p.tcp_ack);
    }
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

}  // namespace spanfeed
