// Ack hold: orders the two directions of a TCP connection by what the ACKs prove, not by
// capture order (a segment whose ACK covers bytes the other direction has not delivered
// waits for them, bounded in packet time and bytes), and defers "ack past hole" gaps the
// same way. Runs on one worker lcore; no allocation (held bytes live in the chunk pool).
#include <algorithm>

#include "spanfeed/tcp_reassembly.h"

namespace spanfeed {

namespace {
constexpr Direction kDirs[2] = {Direction::kClientToServer, Direction::kServerToClient};
constexpr uint32_t kNoSlot = UINT32_MAX;
}  // namespace

bool Reassembler::head_blocked_slow(const Flow& f, Direction d, const StreamState& s) const {
  return seq_leq(pool_.piece(s.head).seq, s.next_seq) && blocked(f, d, pool_.piece(s.head));
}

uint64_t Reassembler::held_bytes(const Flow& f, Direction d) const {
  uint64_t n = 0;
  const StreamState& s = streams_[f.slot].dir[index_of(d)];
  for (uint32_t c = s.head; c != ChunkPool::kNone; c = pool_.piece(c).next) {
    if (blocked(f, d, pool_.piece(c))) n += pool_.piece(c).len;
  }
  return n;
}

// Something waits on the bound: a held head (after pump(), a head at
// next_seq is held), a held FIN, or a hole an ACK has proven.
bool Reassembler::hold_pending(const Flow& f) const {
  for (Direction d : kDirs) {
    const StreamState& s = streams_[f.slot].dir[index_of(d)];
    if (s.head != ChunkPool::kNone) {
      const uint32_t hs = pool_.piece(s.head).seq;
      if (seq_leq(hs, s.next_seq)) return true;
      if (s.acked_known && seq_leq(hs, s.acked)) return true;
    } else if (s.fin_seen && !s.fin_delivered) {
      if (s.next_seq == s.fin_seq) return true;
      if (s.acked_known && seq_gt(s.acked, s.fin_seq)) return true;
    }
  }
  return false;
}

// Delivers whatever became deliverable in either direction, until neither
// moves: bytes of one direction may release the other's.
void Reassembler::pump(Flow& f, uint64_t ts_ns) {
  for (bool progress = true; progress;) {
    progress = false;
    for (Direction d : kDirs) {
      StreamState& s = st(f, d);
      const uint32_t before = s.next_seq;
      const bool fin_before = s.fin_delivered;
      flush_contiguous(f, d);
      maybe_deliver_fin(f, d, ts_ns);
      progress |= s.next_seq != before || s.fin_delivered != fin_before;
    }
  }
}

// After each TCP packet of a flow: release what the packet made deliverable,
// start the flow's hold clock when something now waits, give up when the
// clock has run ack_hold_ns of packet time.
void Reassembler::settle_slow(Flow& f, uint64_t ts_ns) {
  pump(f, ts_ns);
  FlowStreams& fs = streams_[f.slot];
  const bool waits = hold_pending(f);
  if (!waits && !fs.rst_pending) {
    hold_unlist(f);
    return;
  }
  const uint64_t now = std::max(table_.now_ns(), ts_ns);
  if (!fs.hold_listed) {
    fs.hold_since_ns = now;
    hold_list(f);
    return;
  }
  if (waits && now - fs.hold_since_ns >= cfg_.ack_hold_ns) {
    ++counters_.ack_hold_timeouts;
    force_release(f, ts_ns);
    if (!fs.rst_pending) hold_unlist(f);  // a reset's wait stays listed: expire_holds closes the flow
  }
}

// Declares missing the holes the other side acknowledged in `d` (the old
// immediate "ack past hole", now at the bound). Only up to what the other
// side's first held piece awaits: a hole its later pieces proved is declared
// after the earlier ones went out, where capture order puts it. (One gap
// declared for two lost answers before the two requests released them left
// the first request pending and paired it with the second one's answer.)
void Reassembler::resolve_acked_holes(Flow& f, Direction d, uint64_t ts_ns) {
  StreamState& s = st(f, d);
  if (!s.acked_known) return;
  uint32_t proof = s.acked;
  const Direction od = opposite(d);
  if (head_blocked(f, od)) {
    const uint32_t need = pool_.piece(st(f, od).head).need_ack;
    if (seq_lt(need, proof)) proof = need;
  }
  while (s.head != ChunkPool::kNone) {
    const uint32_t hs = pool_.piece(s.head).seq;
    if (!seq_lt(s.next_seq, hs) || seq_gt(hs, proof)) break;  // held head, or past the proof
    advance_to(f, d, hs, GapReason::kAckPastHole, ts_ns);
  }
  if (s.head == ChunkPool::kNone && s.fin_seen && !s.fin_delivered && seq_gt(s.acked, s.fin_seq) &&
      seq_lt(s.next_seq, s.fin_seq)) {
    advance_to(f, d, s.fin_seq, GapReason::kAckPastHole, ts_ns);
  }
}

// The bound passed (or the flow closes): every proven hole becomes a gap and
// every held piece goes out, still in the order the ACKs prove. A held piece
// whose awaited bytes never came: they are declared missing in the other
// direction (its receiver acknowledged them). Ends with nothing held.
void Reassembler::force_release(Flow& f, uint64_t ts_ns) {
  for (;;) {
    const uint32_t c_before = st(f, Direction::kClientToServer).next_seq;
    const uint32_t s_before = st(f, Direction::kServerToClient).next_seq;
    pump(f, ts_ns);
    resolve_acked_holes(f, Direction::kClientToServer, ts_ns);
    resolve_acked_holes(f, Direction::kServerToClient, ts_ns);
    pump(f, ts_ns);
    // What this round delivered may have brought either direction to a hole the ACKs prove: another round
    // declares it (a client and a server segment lost together were left waiting for the next bound).
    const bool moved = st(f, Direction::kClientToServer).next_seq != c_before ||
                       st(f, Direction::kServerToClient).next_seq != s_before;
    bool forced = false;
    for (Direction d : kDirs) {
      StreamState& s = st(f, d);
      const StreamState& o = st(f, opposite(d));
      uint32_t need;
      if (head_blocked(f, d)) {
        ChunkPool::Piece& pc = pool_.piece(s.head);
        need = pc.need_ack;
        pc.needs = false;
      } else if (s.head == ChunkPool::kNone && s.fin_seen && !s.fin_delivered && s.fin_needs &&
                 s.next_seq == s.fin_seq && seq_lt(o.next_seq, s.fin_need_ack)) {
        need = s.fin_need_ack;
        s.fin_needs = false;
      } else {
        continue;
      }
      // The awaited bytes never came: the ACK proved them, so they are missing
      // (a direction never seen: nothing to declare).
      if (o.seq_known) give_up_awaited(f, opposite(d), need, ts_ns);
      forced = true;
      break;  // each round clears one hold: the loop ends
    }
    if (!forced && !moved) return;
  }
}

// The hold gave up waiting for `d` to deliver up to `target`. Holes before
// bytes buffered in `d` are gaps now (as handle_ack declares them). The rest,
// after everything `d` delivered or buffered, is a lost tail: `d` moves past
// it so nothing waits on it again, but it is reported only if `d` delivers
// again. Capture-order delivery never learns of a tail nothing follows (a
// request whose last segments the capture missed, answered and never
// followed: http/client-ip.pcap), and the hold must not add a gap there.
void Reassembler::give_up_awaited(Flow& f, Direction d, uint32_t target, uint64_t ts_ns) {
  StreamState& s = st(f, d);
  if (s.fin_seen && seq_gt(target, s.fin_seq)) target = s.fin_seq;
  uint32_t covered = s.next_seq;  // end of the buffered bytes before target
  for (uint32_t c = s.head; c != ChunkPool::kNone && seq_lt(pool_.piece(c).seq, target); c = pool_.piece(c).next) {
    const uint32_t end = pool_.piece(c).seq + pool_.piece(c).len;
    covered = seq_lt(end, target) ? end : target;
  }
  if (seq_lt(s.next_seq, covered)) advance_to(f, d, covered, GapReason::kAckPastHole, ts_ns);
  if (seq_lt(s.next_seq, target)) {
    s.lost_tail += target - s.next_seq;
    s.next_seq = target;
  }
  flush_contiguous(f, d);
  maybe_deliver_fin(f, d, ts_ns);
}

void Reassembler::hold_list(Flow& f) {
  FlowStreams& fs = streams_[f.slot];
  if (fs.hold_listed) return;
  fs.hold_listed = true;
  fs.hold_prev = hold_tail_;
  fs.hold_next = kNoSlot;
  if (hold_tail_ != kNoSlot) {
    streams_[hold_tail_].hold_next = f.slot;
  } else {
    hold_head_ = f.slot;
  }
  hold_tail_ = f.slot;
}

void Reassembler::hold_unlist(Flow& f) {
  FlowStreams& fs = streams_[f.slot];
  if (!fs.hold_listed) return;
  if (fs.hold_prev != kNoSlot) {
    streams_[fs.hold_prev].hold_next = fs.hold_next;
  } else {
    hold_head_ = fs.hold_next;
  }
  if (fs.hold_next != kNoSlot) {
    streams_[fs.hold_next].hold_prev = fs.hold_prev;
  } else {
    hold_tail_ = fs.hold_prev;
  }
  fs.hold_listed = false;
  fs.hold_prev = fs.hold_next = kNoSlot;
}

// Holds whose clock ran out while their flows were quiet (oldest first).
void Reassembler::expire_holds(uint64_t now_ns, uint32_t budget) {
  while (hold_head_ != kNoSlot && budget-- != 0) {
    const uint32_t slot = hold_head_;
    if (now_ns - streams_[slot].hold_since_ns < cfg_.ack_hold_ns) return;
    Flow& f = table_.at(slot);
    FlowStreams& fs = streams_[slot];
    if (hold_pending(f)) {
      ++counters_.ack_hold_timeouts;
      force_release(f, now_ns);
    }
    hold_unlist(f);
    if (fs.rst_pending) {
      if (now_ns < fs.rst_ts_ns + cfg_.ack_hold_ns) {
        // A hold that was listed before the reset came: the reset's own wait goes on, at the tail.
        fs.hold_since_ns = std::min(fs.rst_ts_ns, now_ns);  // not expired at the next look: no loop
        hold_list(f);
        continue;
      }
      close_flow(f, CloseReason::kRst, now_ns);  // carries the reset out (rst_pending)
      table_.touch(f, TimeoutClass::kClosed, now_ns);
      continue;
    }
    if (st(f, Direction::kClientToServer).fin_delivered && st(f, Direction::kServerToClient).fin_delivered) {
      close_flow(f, CloseReason::kFin, now_ns);
      table_.touch(f, TimeoutClass::kClosed, now_ns);
    }
  }
}

}  // namespace spanfeed
