// Per-worker flow table: hashing, chaining, free list, per-class LRU timers, eviction.
// Runs on one worker lcore; allocates only in the constructor.
#include "spanfeed/flow_table.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>

namespace spanfeed {

std::string_view to_string(Direction d) {
  return d == Direction::kClientToServer ? "client_to_server" : "server_to_client";
}

std::string_view to_string(FlowState s) {
  switch (s) {
    case FlowState::kSynSent: return "syn_sent";
    case FlowState::kSynReceived: return "syn_received";
    case FlowState::kEstablished: return "established";
    case FlowState::kClosing: return "closing";
    case FlowState::kClosed: return "closed";
    case FlowState::kCount: break;
  }
  return "unknown";
}

std::string_view to_string(TimeoutClass c) {
  switch (c) {
    case TimeoutClass::kTcpOpening: return "tcp_opening";
    case TimeoutClass::kTcpEstablished: return "tcp_established";
    case TimeoutClass::kTcpClosing: return "tcp_closing";
    case TimeoutClass::kClosed: return "closed";
    case TimeoutClass::kUdp: return "udp";
    case TimeoutClass::kCount: break;
  }
  return "unknown";
}

std::string_view to_string(InsertOutcome o) {
  switch (o) {
    case InsertOutcome::kInserted: return "inserted";
    case InsertOutcome::kInsertedAfterEviction: return "inserted_after_eviction";
    case InsertOutcome::kRefused: return "refused";
    case InsertOutcome::kCount: break;
  }
  return "unknown";
}

namespace {

// When a flow last active at `last` times out after `timeout` (saturating).
uint64_t due_at(uint64_t last, uint64_t timeout) {
  return timeout > UINT64_MAX - last ? UINT64_MAX : last + timeout;
}

}  // namespace

std::string validate(const FlowTableConfig& cfg) {
  if (cfg.capacity == 0) return "flow table capacity must be at least 1";
  if (cfg.capacity > (1u << 30)) return "flow table capacity must be at most 2^30";
  if (cfg.tcp_opening_timeout_ns == 0 || cfg.tcp_established_timeout_ns == 0 ||
      cfg.tcp_closing_timeout_ns == 0 || cfg.udp_timeout_ns == 0) {
    return "flow idle timeouts must be non-zero";
  }
  return {};
}

FlowTable::FlowTable(const FlowTableConfig& cfg, FlowTableListener* listener)
    : listener_(listener),
      capacity_(std::clamp<uint32_t>(cfg.capacity, 1, 1u << 30)),
      bucket_mask_(0),
      seed_(cfg.hash_seed),
      evict_min_idle_ns_(cfg.evict_min_idle_ns),
      include_vlan_(cfg.include_vlan) {
  timeout_[static_cast<size_t>(TimeoutClass::kTcpOpening)] = cfg.tcp_opening_timeout_ns;
  timeout_[static_cast<size_t>(TimeoutClass::kTcpEstablished)] = cfg.tcp_established_timeout_ns;
  timeout_[static_cast<size_t>(TimeoutClass::kTcpClosing)] = cfg.tcp_closing_timeout_ns;
  timeout_[static_cast<size_t>(TimeoutClass::kClosed)] = cfg.closed_linger_ns;
  timeout_[static_cast<size_t>(TimeoutClass::kUdp)] = cfg.udp_timeout_ns;

  uint32_t buckets = 1;
  while (buckets < capacity_) buckets <<= 1;
  bucket_mask_ = buckets - 1;
  buckets_.assign(buckets, kNone);
  // Reserved, not constructed: a node is made the first time the free list
  // runs dry (take_fresh), so a capture of 20 connections touches 20 nodes.
  // The order slots are handed out in is the same as a list of all of them
  // (freed slots first, most recent first; then the lowest never used).
  // nodes_ never reallocates: flows do not move.
  nodes_.reserve(capacity_);
}

bool FlowTable::take_fresh() {
  if (free_head_ != kNone || nodes_.size() >= capacity_) return free_head_ != kNone;
  const auto i = static_cast<uint32_t>(nodes_.size());
  nodes_.emplace_back().flow.slot = i;
  free_head_ = i;
  return true;
}

FlowLookup FlowTable::find(const OrientedKey& ok) { return find(ok, hash(ok.key)); }

void FlowTable::lru_unlink(uint32_t i) {
  Node& n = nodes_[i];
  LruList& l = lru_[static_cast<size_t>(n.flow.timeout_class)];
  if (n.lru_prev != kNone) {
    nodes_[n.lru_prev].lru_next = n.lru_next;
  } else {
    l.head = n.lru_next;
  }
  if (n.lru_next != kNone) {
    nodes_[n.lru_next].lru_prev = n.lru_prev;
  } else {
    l.tail = n.lru_prev;
  }
  n.lru_prev = n.lru_next = kNone;
}

void FlowTable::lru_append(uint32_t i, TimeoutClass cls) {
  Node& n = nodes_[i];
  LruList& l = lru_[static_cast<size_t>(cls)];
  n.flow.timeout_class = cls;
  n.lru_prev = l.tail;
  n.lru_next = kNone;
  if (l.tail != kNone) {
    nodes_[l.tail].lru_next = i;
  } else {
    l.head = i;
    next_due_ = std::min(next_due_, due_at(n.flow.last_active_ns, timeout_[static_cast<size_t>(cls)]));
  }
  l.tail = i;
}

void FlowTable::unlink_and_free(uint32_t i) {
  Node& n = nodes_[i];
  lru_unlink(i);
  uint32_t* link = &buckets_[bucket_of(n.flow.key)];
  while (*link != i) link = &nodes_[*link].hash_next;  // i is on this chain by construction
  *link = n.hash_next;
  n.in_use = false;
  n.hash_next = free_head_;
  free_head_ = i;
  --counters_.active;
}

bool FlowTable::make_room(uint64_t now_ns, InsertOutcome* outcome) {
  // A flow already past its timeout is expired, not evicted: handle those first.
  expire(now_ns, 1);
  if (free_head_ != kNone) {
    *outcome = InsertOutcome::kInserted;
    return true;
  }
  // A closed record only absorbs late packets: any of them can go.
  uint32_t victim = lru_[static_cast<size_t>(TimeoutClass::kClosed)].head;
  if (victim != kNone) {
    ++counters_.evicted_closed;
    // Its consumer already heard the close; the listener still sees the removal.
    if (listener_ != nullptr) listener_->on_flow_removed(nodes_[victim].flow, RemoveReason::kEvicted, now_ns);
    unlink_and_free(victim);
    *outcome = InsertOutcome::kInsertedAfterEviction;
    return true;
  }
  // Least recently active across the live classes = the oldest list head.
  for (size_t c = 0; c < kTimeoutClassCount; ++c) {
    uint32_t h = lru_[c].head;
    if (h == kNone) continue;
    if (victim == kNone || nodes_[h].flow.last_active_ns < nodes_[victim].flow.last_active_ns) victim = h;
  }
  if (victim == kNone || now_ns - nodes_[victim].flow.last_active_ns < evict_min_idle_ns_) {
    *outcome = InsertOutcome::kRefused;
    return false;
  }
  ++counters_.evicted_live;
  if (listener_ != nullptr) listener_->on_flow_removed(nodes_[victim].flow, RemoveReason::kEvicted, now_ns);
  unlink_and_free(victim);
  *outcome = InsertOutcome::kInsertedAfterEviction;
  return true;
}

FlowInsert FlowTable::insert(const OrientedKey& ok, bool client_is_a, TimeoutClass cls, uint64_t ts_ns) {
  now_ns_ = std::max(now_ns_, ts_ns);
  FlowInsert res;
  res.outcome = InsertOutcome::kInserted;
  if (!take_fresh() && !make_room(now_ns_, &res.outcome)) {
    ++counters_.refused;
    return res;
  }
  uint32_t i = free_head_;
  Node& n = nodes_[i];
  free_head_ = n.hash_next;
  n.in_use = true;
  uint32_t b = bucket_of(ok.key);
  n.hash_next = buckets_[b];
  buckets_[b] = i;

  Flow& f = n.flow;
  f.key = ok.key;
  f.serial = next_serial_++;
  f.client_is_a = client_is_a;
  f.state = FlowState::kEstablished;
  f.first_ts_ns = ts_ns;
  f.last_ts_ns = ts_ns;
  f.last_active_ns = now_ns_;
  f.stats = {};
  f.tunnel = ok.tunnel != nullptr && ok.tunnel->depth != 0 ? summarize(*ok.tunnel) : TunnelSummary{};
  lru_append(i, cls);

  ++counters_.inserted;
  ++counters_.active;
  counters_.active_high_water = std::max(counters_.active_high_water, counters_.active);
  res.flow = &f;
  res.dir = f.direction_of(ok.from_a);
  return res;
}

void FlowTable::move_to_tail(uint32_t i, TimeoutClass cls) {
  lru_unlink(i);
  lru_append(i, cls);
}

void FlowTable::remove(Flow& flow) {
  uint32_t i = flow.slot;
  if (!nodes_[i].in_use) return;
  ++counters_.removed;
  unlink_and_free(i);
}

uint32_t FlowTable::expire_due(uint32_t budget) {
  uint32_t done = 0;
  next_due_ = 0;  // unknown until a scan finds nothing due
  while (done < budget) {
    // Oldest due head across the classes, so removals go in timeout order
    // (the first class on a tie).
    uint32_t victim = kNone;
    uint64_t victim_due = UINT64_MAX;
    for (size_t c = 0; c < kTimeoutClassCount; ++c) {
      uint32_t h = lru_[c].head;
      if (h == kNone) continue;
      const uint64_t due = due_at(nodes_[h].flow.last_active_ns, timeout_[c]);
      if (victim == kNone || due < victim_due) {
        victim = h;
        victim_due = due;
      }
    }
    if (victim == kNone || victim_due > now_ns_) {
      next_due_ = victim_due;  // the earliest due time now (none: never)
      break;
    }
    ++counters_.expired;
    if (listener_ != nullptr) listener_->on_flow_removed(nodes_[victim].flow, RemoveReason::kExpired, now_ns_);
    unlink_and_free(victim);
    ++done;
  }
  return done;
}

uint32_t FlowTable::longest_chain() const {
  uint32_t longest = 0;
  for (uint32_t head : buckets_) {
    uint32_t len = 0;
    for (uint32_t i = head; i != kNone; i = nodes_[i].hash_next) ++len;
    longest = std::max(longest, len);
  }
  return longest;
}

}  // namespace spanfeed
