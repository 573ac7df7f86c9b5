// Flow tracking + TCP reassembly (+ UDP datagram pass-through) for one worker lcore.
// Runs on one worker lcore, no locks; allocates only in constructors (flow slots, chunk arena),
// never per packet, and never throws on the data path.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "spanfeed/counter_list.h"
#include "spanfeed/duplicate_filter.h"
#include "spanfeed/flow_table.h"
#include "spanfeed/packet.h"
#include "spanfeed/packet_handler.h"

namespace spanfeed {

// Wrap-safe TCP sequence arithmetic: valid while the two numbers are less
// than 2^31 apart, which max_window (<= 2^30) guarantees for everything kept.
inline constexpr int32_t seq_diff(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b); }
inline constexpr bool seq_lt(uint32_t a, uint32_t b) { return seq_diff(a, b) < 0; }
inline constexpr bool seq_leq(uint32_t a, uint32_t b) { return seq_diff(a, b) <= 0; }
inline constexpr bool seq_gt(uint32_t a, uint32_t b) { return seq_diff(a, b) > 0; }
inline constexpr bool seq_geq(uint32_t a, uint32_t b) { return seq_diff(a, b) >= 0; }

namespace tcp_flag {
inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kRst = 0x04;
inline constexpr uint8_t kPsh = 0x08;
inline constexpr uint8_t kAck = 0x10;
}  // namespace tcp_flag

// Exactly one per packet given to Reassembler::process(). Each value is a
// counter; sum over all values == ReassemblerCounters::segments (the ledger).
enum class SegmentOutcome : uint8_t {
  kInOrder,           // TCP data contiguous with the stream: delivered straight from the packet
  kBuffered,          // TCP data after a hole: copied into the chunk pool until the hole fills
  kOverlapTrimmed,    // part of the data was already delivered/buffered (first data wins), rest kept
  kRetransmission,    // every byte already delivered or buffered: nothing new
  kOutOfWindow,       // seq (or RST seq) more than max_window from the expected byte: ignored
  kDroppedMemory,     // out-of-order data that did not fit in the worker's chunk pool: lost
  kNoPayload,         // SYN / ACK / FIN without data on a tracked flow (handshake, acks)
  kRst,               // RST on a tracked flow: flow closed; any RST payload is not stream data
  kDataAfterFin,      // data at or past the FIN of its direction: ignored
  kAfterClose,        // anything on a flow already closed by FIN/RST (record lingering)
  kLate,              // a SYN of a closed connection (its ISN, or timestamped before the close): no new flow
  kDuplicate,         // mirror duplicate: an identical packet was seen within dedup_window_ns; dropped
  kFlowRefused,       // would start a flow, but the table is full and nothing was evictable
  kNoFlow,            // cannot start a flow: RST, or ACK/FIN without data, for an unknown flow
  kDatagram,          // UDP datagram delivered as one chunk
  kFragment,          // IP fragment: not reassembled here
  kMalformed,         // L4 header truncated, bad TCP options, payload outside the frame
  kUnsupportedProto,  // neither TCP nor UDP
  kCount,
};
inline constexpr size_t kSegmentOutcomeCount = static_cast<size_t>(SegmentOutcome::kCount);
std::string_view to_string(SegmentOutcome o);
std::string_view describe(SegmentOutcome o);  // help text: what a non-zero value means

// Why bytes were declared missing. Each gap is one StreamConsumer::on_gap.
enum class GapReason : uint8_t {
  kAckPastHole,  // the receiver acknowledged past a hole (or a pending FIN): it got bytes we never saw
  kFlowLimit,    // the flow's out-of-order buffer limit was reached: oldest hole given up
  kClose,        // flow closed / timed out / evicted / shut down with holes still open
  kTruncated,    // the capture cut the segment (snaplen): its tail is missing
  kResync,       // resync_after consecutive out-of-window segments: stream position re-based
  kCount,
};
inline constexpr size_t kGapReasonCount = static_cast<size_t>(GapReason::kCount);
std::string_view to_string(GapReason r);

enum class CloseReason : uint8_t {
  kFin,          // FIN delivered in both directions
  kRst,          // RST seen (in window)
  kIdleTimeout,  // idle longer than its class timeout
  kEvicted,      // flow table full: evicted as least recently active
  kReused,       // a new SYN with another ISN replaced it (port reuse)
  kShutdown,     // finish() at the end of the run
  kCount,
};
inline constexpr size_t kCloseReasonCount = static_cast<size_t>(CloseReason::kCount);
std::string_view to_string(CloseReason r);

// on_data's `peer_acked` when the chunk's packet told nothing (UDP, no ACK, the other direction not seen).
inline constexpr uint64_t kAckUnknown = UINT64_MAX;

// What the reassembler tells its consumer (a protocol decoder). All calls
// happen inside process() / advance_time() / finish() on the worker thread.
// Per direction the calls form one ordered stream: on_data chunks in sequence
// order, on_gap exactly where bytes are missing, then at most one on_fin.
// A "message" is the bytes of consecutive on_data calls in one direction: a
// decoder detects the end of a message when the direction changes (or at
// fin/rst/close). Each chunk carries the capture time of the packet its bytes
// came in, so the first and last chunk give a message's first/last packet time.
// The data span is only valid during the call (it points into the packet or
// into a pool chunk that is freed right after).
class StreamConsumer {
 public:
  virtual ~StreamConsumer() = default;
  // A new flow: reset any per-flow state kept at index flow.slot.
  virtual void on_open(const Flow& /*flow*/, uint64_t /*ts_ns*/) {}
  // Stream bytes (TCP) or one whole datagram (UDP), never empty. `peer_acked`: the ACK of the packet the
  // bytes came in, as a position in the other direction's stream (bytes from its first byte tracked, 0 for
  // an ACK before it): the sender had received that much of the other direction when it sent them (so a
  // response cannot answer a request that starts at or after it). kAckUnknown when the packet told nothing.
  virtual void on_data(const Flow& flow, Direction dir, std::span<const std::byte> data, uint64_t ts_ns,
                       uint64_t peer_acked = kAckUnknown) = 0;
  // `missing_bytes` bytes of `dir` will never be delivered; later data follows them. A datagram the capture
  // cut (snaplen, kTruncated) has its gap just before its on_data: the bytes missing at its end.
  virtual void on_gap(const Flow& /*flow*/, Direction /*dir*/, uint64_t /*missing_bytes*/,
                      GapReason /*reason*/, uint64_t /*ts_ns*/) {}
  // The bytes of the next on_data in `dir` were also seen in an overlapping
  // segment with different content (first data wins: on_data gets the copy
  // that came first). Called right before that on_data. Only bytes compared
  // while one copy was still in the out-of-order buffer are checked.
  virtual void on_overlap_conflict(const Flow& /*flow*/, Direction /*dir*/, uint64_t /*ts_ns*/) {}
  // `dir` sent FIN and every byte before it was delivered (or declared a gap).
  virtual void on_fin(const Flow& /*flow*/, Direction /*dir*/, uint64_t /*ts_ns*/) {}
  // `dir` sent an RST; on_close(kRst) follows.
  virtual void on_rst(const Flow& /*flow*/, Direction /*dir*/, uint64_t /*ts_ns*/) {}
  // Last call for the flow; its slot may be reused right after.
  virtual void on_close(const Flow& /*flow*/, CloseReason /*reason*/, uint64_t /*ts_ns*/) {}
};

struct ReassemblyConfig {
  uint32_t chunk_size = 2048;                 // one MTU-sized segment per chunk
  // Mirror duplicates: a packet identical (duplicate_filter.h) to one seen
  // less than this long before is dropped first (0: off, the library default;
  // the app turns it on, docs/reassembly.md).
  uint64_t dedup_window_ns = 0;
  uint32_t dedup_entries = 16384;             // remembered packets per worker (x16 bytes)
  // Directions out of order: a segment whose ACK covers bytes the other
  // direction has not delivered waits (copied into the chunk pool) until they
  // are delivered, at most this long in packet time (0: off, deliver in
  // capture order; the app turns it on) ...
  uint64_t ack_hold_ns = 0;
  uint32_t ack_hold_bytes = 64u << 10;        // ... and while the held bytes of a direction stay under this
  uint64_t memory_cap_bytes = 64ull << 20;    // the worker's out-of-order arena (chunk_size * chunks)
  uint32_t max_buffer_per_flow = 256u << 10;  // out-of-order bytes (in whole chunks) one flow may hold
  uint32_t max_window = 1u << 30;             // max TCP window (scale 14): farther seqs are out of window
  uint32_t resync_after = 16;                 // consecutive out-of-window segments before re-basing
  uint32_t expire_budget = 64;                // idle flows expired per packet (rest on the next ones)
  // Touch the whole arena at start-up (live: no page fault on the data path).
  // Off: its pages become resident as segments use them (offline: a quicker
  // start, and memory in proportion to what the capture holds out of order).
  bool prefault_arena = true;
};

struct ReassemblerConfig {
  FlowTableConfig table;
  ReassemblyConfig reassembly;
};

// Empty when usable, else a message for the start-up error.
std::string validate(const ReassemblerConfig& cfg);

struct Config;
// The per-worker flow table and reassembly settings a run's config describes (src/flow/flow_config.cc).
ReassemblerConfig reassembler_config(const Config& cfg);
// For the jobs that track flows (flows, records): throws ConfigError when those settings are unusable.
void validate_flow_config(const Config& cfg);

// Preallocated arena of fixed-size chunks; each chunk holds one piece of
// out-of-order data with its sequence number and capture time. Piece lists are
// chained through `next`. Allocates only in the constructor.
class ChunkPool {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // `prefault`: touch every page of the arena now, not on first use.
  ChunkPool(uint32_t chunk_size, uint32_t chunk_count, bool prefault = true);

  uint32_t alloc();  // kNone when empty
  void free(uint32_t i);

  std::byte* data(uint32_t i) { return arena_.get() + static_cast<size_t>(i) * chunk_size_; }
  const std::byte* data(uint32_t i) const { return arena_.get() + static_cast<size_t>(i) * chunk_size_; }

  struct Piece {
    uint32_t seq = 0;
    uint32_t len = 0;
    uint32_t next = kNone;
    bool conflict = false;  // an overlapping copy of these bytes differed (reported on delivery)
    bool needs = false;     // held: deliver once the other direction delivered up to need_ack
    bool has_ack = false;   // its segment carried an ACK: `ack`
    uint32_t need_ack = 0;
    uint32_t ack = 0;
    uint64_t ts_ns = 0;
  };
  Piece& piece(uint32_t i) { return pieces_[i]; }
  const Piece& piece(uint32_t i) const { return pieces_[i]; }

  uint32_t chunk_size() const { return chunk_size_; }
  uint32_t capacity() const { return static_cast<uint32_t>(pieces_.size()); }
  uint32_t in_use() const { return in_use_; }
  uint32_t available() const { return capacity() - in_use_; }
  uint32_t high_water() const { return high_water_; }

 private:
  uint32_t chunk_size_;
  std::unique_ptr<std::byte[]> arena_;
  std::vector<Piece> pieces_;
  uint32_t free_head_ = kNone;
  uint32_t in_use_ = 0;
  uint32_t high_water_ = 0;
};

// Reassembly state of one direction of one flow. Read-only for consumers.
struct StreamState {
  uint32_t next_seq = 0;    // next byte to deliver (valid when seq_known)
  uint32_t isn = 0;         // initial sequence number (valid when syn_seen)
  uint32_t fin_seq = 0;     // sequence number of the FIN (valid when fin_seen)
  uint32_t head = ChunkPool::kNone;  // buffered pieces: ascending, disjoint, all after next_seq
  uint32_t tail = ChunkPool::kNone;
  uint32_t out_of_window_run = 0;
  bool seq_known = false;
  bool syn_seen = false;
  bool picked_up = false;   // started mid-stream from the first data segment seen
  bool fin_seen = false;
  bool fin_delivered = false;
  bool fin_needs = false;    // the FIN waits like a held piece for the other direction (fin_need_ack)
  bool acked_known = false;  // `acked` is valid
  uint32_t fin_need_ack = 0;
  uint32_t acked = 0;        // highest ACK the other side sent for this direction, past next_seq (ack hold)
  // Bytes at the end of what this direction delivered that an ACK proved sent
  // but the capture never had, given up on by the ack hold: next_seq is past
  // them, and they become a gap only when the direction delivers again (data
  // or FIN), as capture-order delivery reports a lost tail.
  uint32_t lost_tail = 0;
  uint64_t fin_ts_ns = 0;        // packet time of the FIN (valid when fin_seen)
  uint64_t delivered_bytes = 0;  // bytes given to on_data
  uint64_t gap_bytes = 0;        // bytes declared missing
  uint32_t gap_events = 0;
  // Position in the stream (bytes from the first byte tracked): delivered + missing.
  uint64_t stream_offset() const { return delivered_bytes + gap_bytes; }
};

// The reassembler's scalar counters, declared once (include/spanfeed/counter_list.h):
// the fields of ReassemblerCounters, the keys of a worker's "reassembly"
// summary object, and per-worker /metrics families (label `worker`).
#define SPANFEED_REASSEMBLER_COUNTERS(X) \
  X(segments, kCounter, "", \
    "Packets given to the reassembler: the sum of the segment outcomes.") \
  X(flows_created, kCounter, "flows_created_total", \
    "Flows (TCP connections, UDP flows) a worker started tracking.") \
  X(bytes_in_order, kCounter, "reassembly_bytes_in_order_total", \
    "TCP stream bytes delivered in order, straight from the packet.") \
  X(bytes_from_buffer, kCounter, "reassembly_bytes_from_buffer_total", \
    "TCP stream bytes delivered from the out-of-order buffer once the hole before them filled.") \
  X(bytes_datagram, kCounter, "reassembly_bytes_datagram_total", \
    "UDP payload bytes delivered.") \
  X(bytes_duplicate, kCounter, "reassembly_bytes_duplicate_total", \
    "Bytes trimmed or dropped because they were already delivered or buffered (retransmissions, " \
    "overlaps). Some is normal; a large share of the traffic: the capture may see each packet twice (two SPAN sources).") \
  X(bytes_dropped_memory, kCounter, "reassembly_bytes_dropped_memory_total", \
    "Out-of-order bytes lost because the chunk pool was exhausted. Non-zero: raise `reassembly.memory_mb`.") \
  X(flow_limit_hits, kCounter, "reassembly_flow_limit_hits_total", \
    "Times a flow held `reassembly.flow_buffer_kb` out-of-order bytes and its hole was declared a gap " \
    "(`flow_limit`). Non-zero: heavy loss on long flows, or a peer that never fills its holes.") \
  X(overlap_conflicts, kCounter, "reassembly_overlap_conflicts_total", \
    "TCP segments whose bytes differed from data already received for the same stream positions. The " \
    "first copy is decoded and the record is flagged `overlap_conflict` (`docs/reassembly.md`). Non-zero: " \
    "a sender rewriting retransmitted data (an IDS-evasion attempt), a broken middlebox, or a capture " \
    "merging two paths; should stay 0 on a clean SPAN.") \
  X(chunks_in_use, kGauge, "reassembly_chunks_in_use", \
    "Reassembly memory in use: 2 KiB chunks of the worker's out-of-order pool " \
    "(`reassembly.memory_mb` = `memory_mb * 512` chunks). Near the pool size: `dropped_memory` follows.") \
  X(chunks_high_water, kGauge, "reassembly_chunks_high_water", \
    "Most chunks of the out-of-order pool a worker held at once. Near the pool size: raise " \
    "`reassembly.memory_mb`.") \
  X(buffered_bytes, kGauge, "reassembly_buffered_bytes", \
    "Out-of-order bytes a worker holds now, waiting for holes to fill.") \
  X(buffered_bytes_high_water, kGauge, "reassembly_buffered_bytes_high_water", \
    "Most out-of-order bytes a worker held at once.") \
  X(ack_held_segments, kCounter, "reassembly_ack_held_segments_total", \
    "TCP segments held because their ACK covered bytes the other direction had not delivered yet: " \
    "the two directions reached the capture out of order (`reassembly.ack_hold_ms`). Normal on a mirror " \
    "fed by two paths.") \
  X(ack_hold_timeouts, kCounter, "reassembly_ack_hold_timeouts_total", \
    "Holds given up because `reassembly.ack_hold_ms` of packet time passed: the acknowledged bytes " \
    "were declared a gap (`ack_past_hole`) and the held data delivered. Non-zero: capture loss, or " \
    "paths more skewed than the hold.") \
  X(ack_hold_overflows, kCounter, "reassembly_ack_hold_overflows_total", \
    "Holds given up because a direction held `reassembly.ack_hold_kb` bytes (or the flow's buffer " \
    "limit), or because a segment acknowledged more than `reassembly.ack_hold_kb` bytes the other " \
    "direction had not delivered: the acknowledged bytes were declared a gap and the held data delivered.") \
  X(dedup_evicted_live, kCounter, "reassembly_dedup_evicted_live_total", \
    "Remembered packets overwritten while still inside `dedup.window_us`: a mirror copy of them would " \
    "pass as new. Non-zero: raise `dedup.entries`.")

// Bumped by the worker only; the control core reads the copy its job
// publishes (Job::publish).
struct alignas(64) ReassemblerCounters {
  std::array<uint64_t, kSegmentOutcomeCount> outcome{};
  std::array<uint64_t, kGapReasonCount> gap_events{};
  std::array<uint64_t, kGapReasonCount> gap_bytes{};
  std::array<uint64_t, kCloseReasonCount> closed{};
  SPANFEED_REASSEMBLER_COUNTERS(SPANFEED_COUNTER_DECLARE)

  uint64_t outcome_total() const {
    uint64_t t = 0;
    for (uint64_t v : outcome) t += v;
    return t;
  }
  uint64_t get(SegmentOutcome o) const { return outcome[static_cast<size_t>(o)]; }
  uint64_t gaps(GapReason r) const { return gap_events[static_cast<size_t>(r)]; }
  uint64_t gap_bytes_of(GapReason r) const { return gap_bytes[static_cast<size_t>(r)]; }
  uint64_t closes(CloseReason r) const { return closed[static_cast<size_t>(r)]; }
  uint64_t closed_total() const {
    uint64_t t = 0;
    for (uint64_t v : closed) t += v;
    return t;
  }
};

#define SPANFEED_X(...) SPANFEED_COUNTER_ENTRY(ReassemblerCounters, __VA_ARGS__)
inline constexpr CounterField<ReassemblerCounters> kReassemblerCounterFields[] = {
    SPANFEED_REASSEMBLER_COUNTERS(SPANFEED_X)};
#undef SPANFEED_X

// The worker's flow tracker and reassembler. Drive it from a PacketHandler:
//   on_packet(pkt) -> process(pkt); on_idle(now) -> advance_time(now);
//   finish(now) -> finish(now).
// Time only comes in through these calls.
class Reassembler final : private FlowTableListener {
 public:
  Reassembler(const ReassemblerConfig& cfg, StreamConsumer& consumer);
  Reassembler(const Reassembler&) = delete;
  Reassembler& operator=(const Reassembler&) = delete;

  // One packet (pkt.parsed must be non-null and describe pkt.frame). Never
  // throws, never allocates. Returns the counted outcome.
  // pkt.next (when set) is fetched ahead while this packet is processed.
  SegmentOutcome process(const PacketView& pkt) { return process(pkt.frame, *pkt.parsed, pkt.ts_ns, pkt.next); }
  SegmentOutcome process(std::span<const std::byte> frame, const ParsedPacket& p, uint64_t ts_ns,
                         const PacketView* next = nullptr);

  // Expires every flow idle past its timeout at now_ns (on_idle).
  void advance_time(uint64_t now_ns);

  // Closes every open flow (kShutdown) and empties the table (end of run).
  void finish(uint64_t now_ns);

  const ReassemblerCounters& counters() const { return counters_; }
  const FlowTableCounters& table_counters() const { return table_.counters(); }
  const ChunkPool& pool() const { return pool_; }
  FlowTable& table() { return table_; }
  const StreamState& stream(const Flow& flow, Direction d) const {
    return streams_[flow.slot].dir[index_of(d)];
  }
  // Out-of-order chunks held by one flow (both directions).
  uint32_t flow_buffered_chunks(const Flow& flow) const { return streams_[flow.slot].buffered_chunks; }
  // Flows open now (created and not yet closed): flows_created - closed_total().
  uint64_t live_flows() const { return counters_.flows_created - counters_.closed_total(); }
  // The per-packet ledger: every packet has exactly one outcome.
  bool ledger_balanced() const { return counters_.outcome_total() == counters_.segments; }

 private:
  struct FlowStreams {
    std::array<StreamState, 2> dir;
    uint32_t buffered_chunks = 0;
    // Ack hold: the flow waits for a direction to catch up (listed in
    // pending order, by slot, so the oldest hold times out first).
    bool hold_listed = false;
    uint32_t hold_prev = UINT32_MAX;
    uint32_t hold_next = UINT32_MAX;
    uint64_t hold_since_ns = 0;
    uint64_t closed_ts_ns = 0;  // packet time of the close (late SYNs)
    // A RST with the hold on: the close waits the hold's bound (listed like a hold) for bytes sent before
    // the reset that a mirror delivered after it; close_flow() carries it out.
    bool rst_pending = false;
    Direction rst_dir = Direction::kClientToServer;
    uint64_t rst_ts_ns = 0;
  };

  void on_flow_removed(Flow& flow, RemoveReason reason, uint64_t now_ns) override;

  // A TCP/UDP packet's flow key and FlowTable hash, computed ahead for the
  // next packet (lookahead()) or now; and (dedup on) any packet's
  // DuplicateFilter fingerprint, computed ahead.
  struct alignas(64) KeyedPacket {  // 128 bytes: ahead_[ahead_slot_] is a shift
    const ParsedPacket* parsed = nullptr;  // ok and hash are this packet's
    const ParsedPacket* fp_of = nullptr;   // dedup_fp is this packet's
    OrientedKey ok;
    uint64_t hash = 0;
    uint64_t dedup_fp = 0;
    // ok.key is the key of the packet processed just before this one (hash
    // not computed): its flow, when that packet left one in the table
    // (last_slot_), is this packet's without a lookup.
    bool same_flow = false;
  };
  // `cur`: this packet's key when it was computed ahead (nullptr: not known).
  void lookahead(const PacketView& next, const KeyedPacket* cur);
  // The flow of `kp`: the previous packet's (prev_slot, its last_slot_) when
  // kp.same_flow and it is still in the table, else looked up.
  FlowLookup find_flow(const KeyedPacket& kp, uint32_t prev_slot) {
    if (kp.same_flow && prev_slot != FlowTable::kNone && table_.made_slot_in_use(prev_slot)) [[likely]] {
      // Nothing inserts between the previous packet's lookup and this one
      // (expiry only frees): a slot still in use still holds that flow.
      Flow& f = table_.at(prev_slot);
      return {&f, f.direction_of(kp.ok.from_a)};
    }
    return table_.find(kp.ok, kp.same_flow ? table_.hash_of(kp.ok.key) : kp.hash);
  }
  [[gnu::noinline]] void key_now(const ParsedPacket& p, KeyedPacket& kp) const;
  // Everything but the common packet (in_order_now): out of line, so that
  // process() keeps few live values across its calls.
  [[gnu::noinline]] SegmentOutcome process_general(std::span<const std::byte> frame, const ParsedPacket& p,
                                                   uint64_t ts_ns, KeyedPacket& cached, bool announced,
                                                   uint32_t prev_slot);
  // The common TCP packet (nine in ten on mixed.pcap): an ACK with data, no
  // SYN/FIN/RST, on an established flow, at the next expected byte of its
  // direction, nothing buffered, held or waiting in either direction. Delivers
  // it and returns true; false (nothing changed) when any of that fails.
  bool in_order_now(Flow& f, Direction d, const ParsedPacket& p, std::span<const std::byte> payload,
                    size_t wire, uint64_t ts_ns);
  SegmentOutcome process_tcp(std::span<const std::byte> frame, const ParsedPacket& p,
                             std::span<const std::byte> payload, uint32_t seg_len, uint64_t ts_ns,
                             const KeyedPacket& kp, uint32_t prev_slot);
  SegmentOutcome process_udp(std::span<const std::byte> frame, const ParsedPacket& p,
                             std::span<const std::byte> payload, uint32_t missing, uint64_t ts_ns,
                             const KeyedPacket& kp, uint32_t prev_slot);
  Flow* open_flow(const OrientedKey& ok, bool client_is_a, FlowState state, TimeoutClass cls,
                  uint64_t ts_ns, Direction* dir);
  bool is_new_connection(const StreamState& s, uint32_t seq) const;

  SegmentOutcome tcp_data(Flow& f, Direction d, uint32_t seq, std::span<const std::byte> data,
                          uint32_t seg_len, uint64_t ts_ns, bool need, uint32_t need_ack);
  SegmentOutcome deliver_in_order(Flow& f, Direction d, uint32_t seq, std::span<const std::byte> data,
                                  uint32_t seg_len, uint64_t ts_ns);
  SegmentOutcome buffer_out_of_order(Flow& f, Direction d, uint32_t seq, std::span<const std::byte> data,
                                     uint32_t seg_len, uint64_t ts_ns, bool need = false,
                                     uint32_t need_ack = 0);
  void handle_ack(Flow& f, Direction d, uint32_t ack, uint64_t ts_ns);
  void handle_fin(Flow& f, Direction d, uint32_t fin_seq, uint64_t ts_ns);

  // Ack hold (ack_hold.cc).
  bool blocked(const Flow& f, Direction d, const ChunkPool::Piece& pc) const {
    if (!pc.needs) return false;
    const StreamState& o = streams_[f.slot].dir[index_of(opposite(d))];
    return !o.seq_known || seq_lt(o.next_seq, pc.need_ack);  // unknown: waits for its first segment
  }
  bool head_blocked(const Flow& f, Direction d) const {
    const StreamState& s = streams_[f.slot].dir[index_of(d)];
    return s.head != ChunkPool::kNone && head_blocked_slow(f, d, s);
  }
  bool head_blocked_slow(const Flow& f, Direction d, const StreamState& s) const;
  // The other side acknowledged `rd` up to `ack`: keep the highest such proof
  // past what `rd` delivered (within the window, like handle_ack).
  void note_ack(Flow& f, Direction rd, uint32_t ack) {
    StreamState& r = st(f, rd);
    if (!r.seq_known) return;
    const int32_t dist = seq_diff(ack, r.next_seq);
    if (dist <= 0 || dist > static_cast<int64_t>(cfg_.max_window)) return;
    if (!r.acked_known || seq_gt(ack, r.acked)) {
      r.acked = ack;
      r.acked_known = true;
    }
  }
  uint64_t held_bytes(const Flow& f, Direction d) const;
  bool hold_pending(const Flow& f) const;
  void pump(Flow& f, uint64_t ts_ns);
  // After each TCP packet with the hold on. Nothing buffered and no FIN
  // waiting in either direction (the common case): pump() has nothing to
  // move and nothing is pending, so only a listed hold is cleared.
  void settle(Flow& f, uint64_t ts_ns) {
    const FlowStreams& fs = streams_[f.slot];
    if (idle_direction(fs.dir[0]) && idle_direction(fs.dir[1])) [[likely]] {
      end_idle_hold(f);
      return;
    }
    settle_slow(f, ts_ns);
  }
  // Nothing waits in either direction any more: a listed hold is over, unless the flow's RST waits there.
  void end_idle_hold(Flow& f) {
    const FlowStreams& fs = streams_[f.slot];
    if (fs.hold_listed && !fs.rst_pending) [[unlikely]] hold_unlist(f);
  }
  static bool idle_direction(const StreamState& s) {
    return s.head == ChunkPool::kNone && (!s.fin_seen || s.fin_delivered);
  }
  void settle_slow(Flow& f, uint64_t ts_ns);
  void force_release(Flow& f, uint64_t ts_ns);
  void resolve_acked_holes(Flow& f, Direction d, uint64_t ts_ns);
  void hold_list(Flow& f);
  void hold_unlist(Flow& f);
  void expire_holds(uint64_t now_ns, uint32_t budget);

  // Where an ACK sent with data of `d` falls in the other direction's stream (StreamConsumer::on_data).
  uint64_t acked_offset(const Flow& f, Direction d, bool has_ack, uint32_t ack) {
    const StreamState& o = st(f, opposite(d));
    return has_ack && o.seq_known ? position_of(o, ack) : kAckUnknown;
  }
  // Stream position of `seq` in `o` (seq_known): next_seq is past its delivered, missing and lost-tail bytes.
  static uint64_t position_of(const StreamState& o, uint32_t seq) {
    const int64_t off = static_cast<int64_t>(o.stream_offset() + o.lost_tail) + seq_diff(seq, o.next_seq);
    return off > 0 ? static_cast<uint64_t>(off) : 0;
  }
  // In-order bytes straight from the packet (inline: once per data segment); its ACK is pkt_ack_.
  void deliver(Flow& f, Direction d, std::span<const std::byte> data, uint64_t ts_ns) {
    report_lost_tail(f, d, ts_ns);
    StreamState& s = st(f, d);
    consumer_.on_data(f, d, data, ts_ns, acked_offset(f, d, pkt_has_ack_, pkt_ack_));
    s.next_seq += static_cast<uint32_t>(data.size());
    s.delivered_bytes += data.size();
    counters_.bytes_in_order += data.size();
  }
  void deliver_piece_and_pop(Flow& f, Direction d);
  // Delivers the buffered pieces that became contiguous (inline: usually none).
  void flush_contiguous(Flow& f, Direction d) {
    if (st(f, d).head != ChunkPool::kNone) [[unlikely]] flush_contiguous_slow(f, d);
  }
  void flush_contiguous_slow(Flow& f, Direction d);
  void advance_to(Flow& f, Direction d, uint32_t target, GapReason reason, uint64_t ts_ns);
  void emit_gap(Flow& f, Direction d, uint32_t missing, GapReason reason, uint64_t ts_ns);
  void report_gap(Flow& f, Direction d, uint64_t missing, GapReason reason, uint64_t ts_ns);
  void report_lost_tail(Flow& f, Direction d, uint64_t ts_ns) {
    if (st(f, d).lost_tail != 0) [[unlikely]] report_gap(f, d, 0, GapReason::kAckPastHole, ts_ns);
  }
  void give_up_awaited(Flow& f, Direction d, uint32_t target, uint64_t ts_ns);
  // Delivers d's FIN once every byte before it is (inline: usually no FIN waits).
  void maybe_deliver_fin(Flow& f, Direction d, uint64_t ts_ns) {
    const StreamState& s = st(f, d);
    if (s.fin_seen && !s.fin_delivered) [[unlikely]] maybe_deliver_fin_slow(f, d, ts_ns);
  }
  void maybe_deliver_fin_slow(Flow& f, Direction d, uint64_t ts_ns);
  void flush_direction(Flow& f, Direction d, uint64_t ts_ns);
  // Every close goes through here; a flow whose RST waits (FlowStreams::rst_pending) closes as that reset.
  void close_flow(Flow& f, CloseReason reason, uint64_t ts_ns);
  void reset_close(Flow& f, uint64_t end_ns);
  bool overlap_differs(StreamState& s, uint32_t seq, std::span<const std::byte> data);
  void count_conflict() {  // once per segment
    if (!conflict_counted_) ++counters_.overlap_conflicts;
    conflict_counted_ = true;
  }
  void free_pieces(Flow& f, Direction d);
  void pop_head(Flow& f, Direction d);
  uint32_t alloc_chunk(Flow& f);
  void release_chunk(Flow& f, uint32_t chunk, uint32_t payload_len);

  template <typename Emit>
  void walk_uncovered(const StreamState& s, uint32_t seq, uint32_t end, Emit&& emit) const;

  StreamState& st(const Flow& f, Direction d) { return streams_[f.slot].dir[index_of(d)]; }

  StreamConsumer& consumer_;
  ReassemblyConfig cfg_;
  uint32_t flow_limit_chunks_;
  FlowTable table_;
  ChunkPool pool_;
  std::vector<FlowStreams> streams_;  // indexed by Flow::slot
  ReassemblerCounters counters_;
  DuplicateFilter dedup_;
  bool hold_on_;
  uint32_t hold_head_ = UINT32_MAX;  // flows waiting on an ack hold, oldest first (slots)
  uint32_t hold_tail_ = UINT32_MAX;
  bool conflict_counted_ = false;  // the segment being processed was counted in overlap_conflicts
  bool pkt_has_ack_ = false;       // the TCP segment being processed carries an ACK: pkt_ack_
  uint32_t pkt_ack_ = 0;
  // The next packet's key (lookahead()): only the very next process() call may use it.
  std::array<KeyedPacket, 2> ahead_{};
  uint32_t ahead_slot_ = 0;
  // The slot of the flow the previous process() call reached (kNone: none,
  // or that packet never got to the flow table). A same_flow packet's flow.
  uint32_t last_slot_ = FlowTable::kNone;
};

}  // namespace spanfeed
