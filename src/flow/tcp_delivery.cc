// TCP reassembly, delivery and close: ACK and FIN handling, gap events, handing buffered
// pieces to the consumer, and closing a flow (flushing both directions). Runs on one worker
// lcore; no allocation.
#include <algorithm>
#include <cstring>

#include "spanfeed/tcp_reassembly.h"

namespace spanfeed {

namespace {
constexpr Direction kC2S = Direction::kClientToServer;
constexpr Direction kS2C = Direction::kServerToClient;
}  // namespace

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

void Reassembler::deliver_piece_and_pop(Flow& f, Direction d) {
  StreamState& s = st(f, d);
  const uint32_t h = s.head;
  const ChunkPool::Piece& pc = pool_.piece(h);
  const uint32_t skip = seq_lt(pc.seq, s.next_seq) ? s.next_seq - pc.seq : 0;
  if (skip < pc.len) {
    const uint32_t n = pc.len - skip;
    report_lost_tail(f, d, pc.ts_ns);
    if (pc.conflict) consumer_.on_overlap_conflict(f, d, pc.ts_ns);
    consumer_.on_data(f, d, std::span<const std::byte>(pool_.data(h) + skip, n), pc.ts_ns,
                      acked_offset(f, d, pc.has_ack, pc.ack));
    s.next_seq += n;
    s.delivered_bytes += n;
    counters_.bytes_from_buffer += n;
  }
  pop_head(f, d);
}

void Reassembler::flush_contiguous_slow(Flow& f, Direction d) {
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

void Reassembler::maybe_deliver_fin_slow(Flow& f, Direction d, uint64_t ts_ns) {
  StreamState& s = st(f, d);
  if (s.next_seq != s.fin_seq) return;
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

// The flow's RST (FlowStreams::rst_dir) closes it at end_ns: what the ACKs prove goes out first, then
// whatever is buffered (holes as gaps), the reset, the close.
void Reassembler::reset_close(Flow& f, uint64_t end_ns) {
  FlowStreams& fs = streams_[f.slot];
  fs.rst_pending = false;
  if (hold_on_) force_release(f, end_ns);
  flush_direction(f, kC2S, end_ns);
  flush_direction(f, kS2C, end_ns);
  consumer_.on_rst(f, fs.rst_dir, end_ns);
  close_flow(f, CloseReason::kRst, end_ns);
}

void Reassembler::close_flow(Flow& f, CloseReason reason, uint64_t ts_ns) {
  const FlowStreams& fs = streams_[f.slot];
  if (fs.rst_pending) [[unlikely]] {
    // The flow was reset and its close waited (process_tcp): whatever ends the wait (its bound, a timeout,
    // eviction, reuse, the end of the run) closes it as that reset, at the reset's packet time or the last
    // packet the flow had after it.
    reset_close(f, std::max(fs.rst_ts_ns, f.last_ts_ns));
    return;
  }
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

}  // namespace spanfeed
