// TCP reassembly, the data path: in-order delivery straight from the packet, out-of-order
// buffering in the chunk pool (first data wins), the overlap-conflict check and chunk
// ownership. Runs on one worker lcore; no allocation (buffered bytes live in the chunk pool).
#include <algorithm>
#include <cstring>

#include "spanfeed/tcp_reassembly.h"

namespace spanfeed {

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
  if (ahead == 0 && s.head == ChunkPool::kNone && !need && seg_len == data.size()) [[likely]] {
    // The common case: the next bytes, whole, nothing buffered or held. What
    // deliver_in_order does then (nothing to trim, flush or overlap).
    deliver(f, d, data, ts_ns);
    maybe_deliver_fin(f, d, ts_ns);
    return SegmentOutcome::kInOrder;
  }
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
          pc.has_ack = pkt_has_ack_;
          pc.ack = pkt_ack_;
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
