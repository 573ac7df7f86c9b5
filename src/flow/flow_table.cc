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

// Stafford's mix13 (the murmur3 64-bit finaliser family): full avalanche.
uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

}  // namespace

OrientedKey make_flow_key(const ParsedPacket& p, bool include_vlan) {
  OrientedKey ok;
  // The addresses compared as bytes (memcmp order): two big-endian words each.
  auto be_word = [](const uint8_t* b) {
    uint64_t w;
    std::memcpy(&w, b, sizeof(w));
    return __builtin_bswap64(w);
  };
  const uint64_t s0 = be_word(p.src.bytes), d0 = be_word(p.dst.bytes);
  bool src_is_a;
  if (s0 != d0) {
    src_is_a = s0 < d0;
  } else {
    const uint64_t s1 = be_word(p.src.bytes + 8), d1 = be_word(p.dst.bytes + 8);
    src_is_a = s1 != d1 ? s1 < d1 : p.src_port <= p.dst_port;
  }
  const IpAddr& a = src_is_a ? p.src : p.dst;
  const IpAddr& b = src_is_a ? p.dst : p.src;
  ok.key.addr_a = a;
  ok.key.addr_b = b;
  const uint16_t port_a = src_is_a ? p.src_port : p.dst_port;
  const uint16_t port_b = src_is_a ? p.dst_port : p.src_port;
  const uint32_t vlan = include_vlan ? p.vlan : 0;
  if constexpr (std::endian::native == std::endian::little) {
    // The last two words stored whole (pad zero): find() and hash() read the
    // key as words right after, and narrower stores would not forward to them.
    static_assert(offsetof(FlowKey, port_a) == 32 && offsetof(FlowKey, port_b) == 34 &&
                  offsetof(FlowKey, vlan) == 36 && offsetof(FlowKey, proto) == 40 &&
                  offsetof(FlowKey, ip_version) == 41 && offsetof(FlowKey, tunnel_type) == 42 &&
                  offsetof(FlowKey, pad) == 43 && offsetof(FlowKey, tunnel_id) == 44);
    const uint64_t w4 = uint64_t{port_a} | uint64_t{port_b} << 16 | uint64_t{vlan} << 32;
    const uint64_t w5 = uint64_t{p.l4_proto} | uint64_t{p.ip_version} << 8 |
                        uint64_t{static_cast<uint8_t>(p.tunnel.key_type)} << 16 | uint64_t{p.tunnel.key_id} << 32;
    std::memcpy(reinterpret_cast<unsigned char*>(&ok.key) + 32, &w4, 8);
    std::memcpy(reinterpret_cast<unsigned char*>(&ok.key) + 40, &w5, 8);
  } else {
    std::memset(&ok.key.port_a, 0, sizeof(FlowKey) - offsetof(FlowKey, port_a));
    ok.key.port_a = port_a;
    ok.key.port_b = port_b;
    ok.key.vlan = vlan;
    ok.key.proto = p.l4_proto;
    ok.key.ip_version = p.ip_version;
    ok.key.tunnel_type = p.tunnel.key_type;
    ok.key.tunnel_id = p.tunnel.key_id;
  }
  ok.tunnel = &p.tunnel;
  ok.from_a = src_is_a;
  return ok;
}

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

inline uint64_t FlowTable::hash(const FlowKey& k) const {
  // One multiply and rotate per word, the full finaliser once (six finalisers: ~80 instructions a packet).
  constexpr uint64_t kMul = 0x9ddfea08eb382d69ull;
  uint64_t h = seed_;
  for (size_t i = 0; i < sizeof(FlowKey) / 8; ++i) {
    h = std::rotl((h ^ key_word(k, i)) * kMul, 29);
  }
  return mix64(h);
}

uint64_t FlowTable::hash_of(const FlowKey& key) const { return hash(key); }

uint32_t FlowTable::prefetch(uint64_t h) const {
  const uint32_t i = buckets_[bucket_of_hash(h)];
  if (i == kNone) return kNone;
  const char* n = reinterpret_cast<const char*>(&nodes_[i]);
  for (size_t off = 0; off < sizeof(Node); off += 64) __builtin_prefetch(n + off);
  __builtin_prefetch(n + sizeof(Node) - 1);
  return i;
}

FlowLookup FlowTable::find(const OrientedKey& ok) { return find(ok, hash(ok.key)); }

FlowLookup FlowTable::find(const OrientedKey& ok, uint64_t h) {
  uint32_t i = buckets_[bucket_of_hash(h)];
  while (i != kNone) {
    Node& n = nodes_[i];
    if (n.flow.key == ok.key) return {&n.flow, n.flow.direction_of(ok.from_a)};
    i = n.hash_next;
  }
  return {};
}

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
