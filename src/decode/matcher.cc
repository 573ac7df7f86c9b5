// RecordBuilder matching: message pool, per-flow pending FIFO, response matching, ageing (timeouts) and
// record emission. Runs on one worker lcore; no allocation (pool made at start-up).
#include <algorithm>

#include "record_builder_internal.h"

#include "spanfeed/decoder.h"

namespace spanfeed {

using namespace builder;

namespace {

constexpr uint64_t kIdMask = (1ull << 56) - 1;  // record id: worker id in the high byte, a counter below

}  // namespace

// ---------------------------------------------------------------- FlowContext

Message* FlowContext::new_message(uint64_t ts_ns) {
  const uint32_t i = b_.alloc_message(ts_ns);
  if (i == RecordBuilder::kNone) return nullptr;
  b_.slots_[i].flow_slot = slot_;
  if (chunk_len_ != 0) {
    if (chunk_dir_ == Direction::kServerToClient) {
      b_.slots_[i].acked = b_.chunk_acked_;
    } else {
      b_.slots_[i].start_floor = s_.base[index_of(Direction::kClientToServer)];
    }
  }
  return &b_.slots_[i].msg;
}

void FlowContext::discard(Message* m) {
  if (m != nullptr) b_.free_message(b_.slot_index(m));
}

void FlowContext::commit_request(Message* req) {
  if (req == nullptr) return;
  b_.mark(s_, Direction::kClientToServer, req);
  const uint32_t i = b_.slot_index(req);
  if (s_.early != RecordBuilder::kNone) [[unlikely]] {
    const uint32_t ri = s_.early;
    Message& resp = b_.slots_[ri].msg;
    const bool recent = req->first_ts_ns <= resp.first_ts_ns + RecordBuilder::kReorderWindowNs;
    if (recent && s_.early_key == req->key) {
      // The response held for this request: the mirror delivered them out of order. Paired, no latency.
      s_.early = RecordBuilder::kNone;
      req->flags |= record_flag::kReordered;
      ++b_.counters_.requests[static_cast<size_t>(s_.protocol)];
      ++b_.counters_.reordered_pairs;
      b_.settle(s_, i, ri, s_.early_status);  // `req` was never pending: settle only pairs and frees
      return;
    }
    if (!recent) b_.release_early(s_);
  }
  if (s_.pending_count >= b_.cfg_.max_pending_per_flow && s_.pending_head != RecordBuilder::kNone) {
    ++b_.counters_.pending_overflow;
    b_.emit_timeout(s_.pending_head, TimeoutCause::kOverflow, 0);
    // FIFO: its response is still coming, ahead of those of the requests left; it must not pair with them
    if (!s_.by_key) ++s_.owed_evicted;
  }
  auto& sl = b_.slots_[i];
  sl.pending = true;
  sl.answer_in_gap = s_.resp_unsynced;
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

void FlowContext::emit_no_reply(Message* req, Direction dir) {
  if (req == nullptr) return;
  b_.mark(s_, dir, req);
  if (dir == Direction::kServerToClient) s_.resp_unsynced = false;  // the server side decodes again
  ++b_.counters_.no_reply[static_cast<size_t>(s_.protocol)];
  b_.emit(s_, req, nullptr, RecordStatus::kOk);
  b_.free_message(b_.slot_index(req));
}

Message* FlowContext::front_request() {
  if (s_.owed_evicted != 0) return nullptr;
  return s_.pending_head == RecordBuilder::kNone ? nullptr : &b_.slots_[s_.pending_head].msg;
}

Message* FlowContext::answered_request(const Message* resp) {
  Message* q = front_request();
  if (q == nullptr || resp == nullptr) return q;
  return b_.sent_before(b_.slot_index(resp), b_.slot_index(q)) ? nullptr : q;
}

Message* FlowContext::next_request(const Message* req) {
  const uint32_t i = b_.slots_[b_.slot_index(req)].flow_next;
  return i == RecordBuilder::kNone ? nullptr : &b_.slots_[i].msg;
}

size_t FlowContext::pending_count() const { return s_.pending_count + s_.owed_evicted; }

bool FlowContext::has_pending_key(uint32_t key) const {
  for (uint32_t qi = s_.pending_head; qi != RecordBuilder::kNone; qi = b_.slots_[qi].flow_next) {
    if (b_.slots_[qi].msg.key == key) return true;
  }
  return false;
}

bool FlowContext::answer_may_be_lost(const Message* req) const {
  return b_.slots_[b_.slot_index(req)].answer_in_gap;
}

void FlowContext::complete_response(Message* resp, RecordStatus status) {
  if (resp == nullptr) return;
  if (s_.owed_evicted != 0) {
    --s_.owed_evicted;
    b_.consume_evicted(s_, resp);
    return;
  }
  b_.complete(s_, s_.pending_head, resp, status);
}

void FlowContext::complete_response_by_key(Message* resp, RecordStatus status, uint32_t key) {
  if (resp == nullptr) return;
  uint32_t qi = s_.pending_head;
  while (qi != RecordBuilder::kNone && b_.slots_[qi].msg.key != key) qi = b_.slots_[qi].flow_next;
  if (qi == RecordBuilder::kNone && s_.udp) {
    b_.hold_early(s_, slot_, resp, key, status);
    return;
  }
  b_.complete(s_, qi, resp, status);
}

void FlowContext::complete_unmatched(Message* resp) {
  if (resp != nullptr) b_.complete(s_, RecordBuilder::kNone, resp, RecordStatus::kUnmatched);
}

void FlowContext::flush_pending(TimeoutCause cause, uint32_t extra_flags) {
  while (s_.pending_head != RecordBuilder::kNone) b_.emit_timeout(s_.pending_head, cause, extra_flags);
  s_.owed_evicted = 0;  // a gap took their responses too (or the flow ends)
}

void FlowContext::give_up(Message* req) {
  const uint32_t i = b_.slot_index(req);
  if (!b_.slots_[i].pending || b_.slots_[i].flow_slot != slot_) return;
  b_.emit_timeout(i, TimeoutCause::kGap, record_flag::kGap);
}

// ---------------------------------------------------------------- RecordBuilder

uint32_t RecordBuilder::slot_index(const Message* m) const {
  // Every message lives inside a Slot of slots_: its index follows from its address.
  const auto diff = reinterpret_cast<const char*>(m) - reinterpret_cast<const char*>(&slots_.data()->msg);
  return static_cast<uint32_t>(static_cast<size_t>(diff) / sizeof(Slot));
}

namespace {

// First use of the next slot (the constructor reserved them all: no reallocation). Out of line, so
// that the pool's common path (a free slot) saves no registers.
template <typename Slots>
[[gnu::noinline]] uint32_t first_use(Slots& slots) {
  slots.emplace_back();
  return static_cast<uint32_t>(slots.size() - 1);
}

}  // namespace

uint32_t RecordBuilder::alloc_message(uint64_t ts_ns) {
  if (msg_free_ == kNone) [[unlikely]] {
    if (slots_.size() >= cfg_.message_pool_size) {
      ++counters_.message_pool_exhausted;
      return kNone;
    }
    // Taken in index order, as the prebuilt free list used to give them.
    msg_free_ = first_use(slots_);
  }
  const uint32_t i = msg_free_;
  Slot& sl = slots_[i];
  msg_free_ = sl.flow_next;
  sl.msg.reset();
  sl.msg.first_ts_ns = sl.msg.last_ts_ns = ts_ns;
  sl.flow_slot = kNone;
  sl.flow_prev = sl.flow_next = sl.age_prev = sl.age_next = kNone;
  sl.pending = false;
  sl.answer_in_gap = false;
  sl.acked = sl.start_floor = kAckUnknown;
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

void RecordBuilder::complete(FlowSession& s, uint32_t qi, Message* resp, RecordStatus status) {
  mark(s, Direction::kServerToClient, resp);
  s.resp_unsynced = false;  // the server side decodes again
  settle(s, qi, slot_index(resp), status);
}

void RecordBuilder::settle(FlowSession& s, uint32_t qi, uint32_t ri, RecordStatus status) {
  ++counters_.responses[static_cast<size_t>(s.protocol)];
  Message* resp = &slots_[ri].msg;
  if (qi != kNone && sent_before(ri, qi)) {
    // The server sent this response before it had the request's first byte: it answers an earlier one.
    ++counters_.unmatched_by_ack;
    qi = kNone;
  }
  if (qi != kNone) {
    unlink_pending(qi);
    ++counters_.matched[static_cast<size_t>(s.protocol)];
    emit(s, &slots_[qi].msg, resp, status);
    free_message(qi);
  } else {
    ++counters_.unmatched;
    emit(s, nullptr, resp, RecordStatus::kUnmatched);
  }
  free_message(ri);
}

void RecordBuilder::consume_evicted(FlowSession& s, Message* resp) {
  mark(s, Direction::kServerToClient, resp);
  s.resp_unsynced = false;
  ++counters_.responses[static_cast<size_t>(s.protocol)];
  ++counters_.responses_of_evicted;
  free_message(slot_index(resp));
}

// A datagram response no request waits for: held (one per flow) for a request the mirror may deliver
// after it (FlowContext::commit_request), at most kReorderWindowNs (release_held); the one held before it
// on the flow is unmatched now. A mirror merging a port's two directions reorders packets by microseconds,
// and a fast local server (a DNS cache, memcached) answers within tens of them: its answer can come first.
void RecordBuilder::hold_early(FlowSession& s, uint32_t slot, Message* resp, uint32_t key, RecordStatus status) {
  release_early(s);
  mark(s, Direction::kServerToClient, resp);
  if (held_count_ == kHeldRing) release_oldest_held();  // full: the oldest goes now
  const uint32_t ri = slot_index(resp);
  s.early = ri;
  s.early_key = key;
  s.early_status = status;
  held_[(held_head_ + held_count_) % kHeldRing] = {ri, slot, resp->first_ts_ns};
  ++held_count_;
}

void RecordBuilder::release_held(uint64_t now_ns) {
  while (held_due(now_ns)) release_oldest_held();
}

void RecordBuilder::release_oldest_held() {
  const HeldResponse h = held_[held_head_];
  held_head_ = (held_head_ + 1) % kHeldRing;
  --held_count_;
  // Still held (not paired or released since, its message not reused for a later one)?
  if (h.flow_slot >= sessions_.size()) return;
  FlowSession& s = sessions_[h.flow_slot];
  if (s.open && s.early == h.msg && slots_[h.msg].msg.first_ts_ns == h.ts_ns) release_early(s);
}

void RecordBuilder::release_early(FlowSession& s) {
  if (s.early == kNone) return;
  const uint32_t ri = s.early;
  s.early = kNone;
  settle(s, kNone, ri, RecordStatus::kUnmatched);  // marked when it was held
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

void RecordBuilder::emit(const FlowSession& s, Message* req, Message* resp, RecordStatus status) {
  Record r;
  r.ts_ns = req != nullptr ? req->first_ts_ns : resp->first_ts_ns;
  r.id = (static_cast<uint64_t>(cfg_.worker_id) << 56) | (++next_id_ & kIdMask);
  // A decoder may name another protocol per record (gRPC calls of an HTTP/2 flow).
  const Protocol req_p = req != nullptr ? req->protocol : Protocol::kUnknown;
  const Protocol resp_p = resp != nullptr ? resp->protocol : Protocol::kUnknown;
  const Protocol p = req_p != Protocol::kUnknown ? req_p : resp_p != Protocol::kUnknown ? resp_p : s.protocol;
  r.protocol = p;
  r.ip_version = s.ip_version;
  r.client = s.client;
  r.server = s.server;
  r.status = status;
  if (req != nullptr && resp != nullptr && (req->flags & record_flag::kReordered) == 0) {
    r.has_latency = true;
    r.latency_us = resp->last_ts_ns > req->first_ts_ns ? (resp->last_ts_ns - req->first_ts_ns) / kNsPerUs : 0;
  }
  r.request = req;
  r.response = resp;
  r.flags = (req != nullptr ? req->flags : 0) | (resp != nullptr ? resp->flags : 0);
  if ((req != nullptr && req->fields.truncated()) || (resp != nullptr && resp->fields.truncated()))
    ++counters_.field_truncated;
  const size_t ntags = observer_ != nullptr ? observer_->annotate(p, req, resp, tags_) : 0;
  r.tags = std::span<const std::string_view>(tags_.data(), ntags);
  r.recording_id = cfg_.recording_id;
  if (cfg_.tunnel_in_records && s.tunnel.type != TunnelType::kNone) r.tunnel = &s.tunnel;
  ++counters_.roundtrips[static_cast<size_t>(p)][static_cast<size_t>(status)];
  ++counters_.records_emitted;
  sink_->emit(r);
}

void RecordBuilder::emit_timeout(uint32_t i, TimeoutCause cause, uint32_t extra_flags) {
  Slot& sl = slots_[i];
  const FlowSession& s = sessions_[sl.flow_slot];
  unlink_pending(i);
  sl.msg.flags |= extra_flags;
  if (sl.answer_in_gap) sl.msg.flags |= record_flag::kGap;  // its response may be among the bytes lost
  ++counters_.timeouts[static_cast<size_t>(cause)];
  emit(s, &sl.msg, nullptr, RecordStatus::kTimeout);
  free_message(i);
}
void RecordBuilder::expire(uint64_t now_ns, uint32_t budget) {
  while (budget-- > 0 && oldest_due(now_ns)) emit_timeout(age_head_, TimeoutCause::kExpired, 0);
}

}  // namespace spanfeed
