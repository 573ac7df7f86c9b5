// Per-worker flow table: canonical 5-tuple+VLAN keys, fixed-capacity slots, idle timers, LRU eviction.
// Runs on one worker lcore (no locks); allocates only in the constructor, never per packet.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "spanfeed/counter_list.h"
#include "spanfeed/packet.h"
#include "spanfeed/word_hash.h"

namespace spanfeed {

// Direction of a packet inside its flow. The client is the sender of the SYN
// (without ACK) when it was seen, the receiver of the SYN-ACK when only that
// was seen, otherwise the endpoint with the higher port number (ephemeral
// ports are high, service ports low). Equal ports: the sender of the first
// packet seen.
enum class Direction : uint8_t {
  kClientToServer = 0,
  kServerToClient = 1,
};

inline constexpr Direction opposite(Direction d) {
  return d == Direction::kClientToServer ? Direction::kServerToClient : Direction::kClientToServer;
}
inline constexpr size_t index_of(Direction d) { return static_cast<size_t>(d); }
std::string_view to_string(Direction d);

// Canonical flow key: the two (address, port) endpoints ordered so that A->B
// and B->A give the same key; endpoint A is the lexicographically smaller
// (address bytes, then port). Compared exactly (all 48 bytes), never by hash
// alone. Padding is always zero so keys compare and hash as six words.
struct FlowKey {
  IpAddr addr_a;
  IpAddr addr_b;
  uint16_t port_a;
  uint16_t port_b;
  uint32_t vlan;
  uint8_t proto;
  uint8_t ip_version;
  TunnelType tunnel_type;  // ParsedPacket::tunnel.key_type: kNone unless tunnels are keyed
  uint8_t pad;
  uint32_t tunnel_id;      // VNI / GRE key / ERSPAN session id when keyed
};
static_assert(sizeof(FlowKey) == 48, "FlowKey is hashed and compared as six 64-bit words");

// Word i (of six) of a key, as compared and hashed.
inline uint64_t key_word(const FlowKey& k, size_t i) {
  uint64_t w;
  std::memcpy(&w, reinterpret_cast<const unsigned char*>(&k) + i * 8, 8);
  return w;
}

inline bool operator==(const FlowKey& x, const FlowKey& y) {
  uint64_t diff = 0;
  for (size_t i = 0; i < sizeof(FlowKey) / 8; ++i) diff |= key_word(x, i) ^ key_word(y, i);
  return diff == 0;
}

// A key plus which endpoint sent the packet it was built from.
struct OrientedKey {
  FlowKey key;
  bool from_a;  // the packet's source is endpoint A of the canonical key
  const TunnelInfo* tunnel = nullptr;  // the packet's encapsulation (kept by insert())
};

// Builds the canonical key of a parsed packet (no allocation). With
// include_vlan false the VLAN is left out of the key (set it like the RX
// hash's include_vlan when the two directions carry different tags).
// Inline, like FlowTable::hash: the reassembler builds and hashes one key
// per packet (lookahead), without two calls.
OrientedKey make_flow_key(const ParsedPacket& p, bool include_vlan = true);
// The same, written into `ok` in place (the reassembler's per-packet key:
// nothing copied through the stack).
void make_flow_key_into(const ParsedPacket& p, bool include_vlan, OrientedKey& ok);

// Lifecycle of a flow as the reassembler tracks it. UDP flows are kEstablished
// from their first datagram until they time out.
enum class FlowState : uint8_t {
  kSynSent,      // client SYN seen
  kSynReceived,  // server SYN-ACK seen
  kEstablished,  // handshake done, data seen, or picked up mid-stream
  kClosing,      // a FIN has been seen in at least one direction
  kClosed,       // FIN in both directions delivered, or RST: consumer already told
  kCount,
};
std::string_view to_string(FlowState s);

// Which idle timeout applies to a flow. Each class has its own LRU list, so the
// head of a list is always the next flow of that class to time out.
enum class TimeoutClass : uint8_t {
  kTcpOpening,      // handshake seen, no data yet
  kTcpEstablished,  // TCP exchanging data
  kTcpClosing,      // FIN seen, waiting for the other side (or for holes to fill)
  kClosed,          // closed record kept a little so late packets count as after-close
  kUdp,             // UDP (DNS, ...)
  kCount,
};
inline constexpr size_t kTimeoutClassCount = static_cast<size_t>(TimeoutClass::kCount);
std::string_view to_string(TimeoutClass c);

struct DirectionStats {
  uint64_t packets = 0;
  uint64_t payload_bytes = 0;  // L4 payload bytes captured
  uint64_t wire_bytes = 0;     // whole captured frames
  uint64_t first_ts_ns = 0;    // 0 until the first packet in this direction
  uint64_t last_ts_ns = 0;
};

// One flow record. The table owns it; callers may read everything and update
// `state` and `stats` (the reassembler does), never `key`/`slot`/`serial`.
struct Flow {
  FlowKey key;
  uint64_t serial = 0;          // unique per table for its lifetime (1, 2, 3, ...)
  uint32_t slot = 0;            // stable index in [0, capacity): index for per-flow side arrays
  bool client_is_a = false;     // endpoint A of the key is the client
  FlowState state = FlowState::kEstablished;
  TimeoutClass timeout_class = TimeoutClass::kTcpEstablished;
  uint64_t first_ts_ns = 0;     // first packet of the flow (either direction)
  uint64_t last_ts_ns = 0;      // newest packet time seen for the flow
  uint64_t last_active_ns = 0;  // table time at the last touch: drives timers and eviction
  std::array<DirectionStats, 2> stats{};
  TunnelSummary tunnel{};       // the encapsulation of the packet that opened the flow

  Direction direction_of(bool from_a) const {
    return from_a == client_is_a ? Direction::kClientToServer : Direction::kServerToClient;
  }
  const IpAddr& client_addr() const { return client_is_a ? key.addr_a : key.addr_b; }
  const IpAddr& server_addr() const { return client_is_a ? key.addr_b : key.addr_a; }
  uint16_t client_port() const { return client_is_a ? key.port_a : key.port_b; }
  uint16_t server_port() const { return client_is_a ? key.port_b : key.port_a; }
  const DirectionStats& dir_stats(Direction d) const { return stats[index_of(d)]; }
};

inline constexpr uint64_t kNsPerSec = 1'000'000'000ull;

struct FlowTableConfig {
  uint32_t capacity = 65536;                             // flows per worker; slots preallocated
  uint64_t tcp_opening_timeout_ns = 20 * kNsPerSec;      // short: half-open flows (SYN floods) go fast
  uint64_t tcp_established_timeout_ns = 300 * kNsPerSec;
  uint64_t tcp_closing_timeout_ns = 30 * kNsPerSec;      // one FIN seen, or FINs with holes left
  uint64_t closed_linger_ns = 5 * kNsPerSec;             // absorbs retransmitted FINs / last ACKs
  uint64_t udp_timeout_ns = 30 * kNsPerSec;
  uint64_t evict_min_idle_ns = 10 * kNsPerSec;           // table full: evict LRU only if idle this long
  uint64_t hash_seed = 0x9e3779b97f4a7c15ull;            // vary per process to resist crafted collisions
  bool include_vlan = true;                              // VLAN is part of the key (match the RX hash)
};

// Empty when the config is usable, else a message for the start-up error.
std::string validate(const FlowTableConfig& cfg);

// Why the table removed a flow on its own (it tells the listener first).
enum class RemoveReason : uint8_t {
  kExpired,  // idle longer than its class timeout
  kEvicted,  // table full, least-recently-active flow idle > evict_min_idle (or a closed record)
};

// Told before the table frees a slot on its own, so the owner can flush the
// flow. Must not insert or remove flows from inside the callback.
class FlowTableListener {
 public:
  virtual ~FlowTableListener() = default;
  virtual void on_flow_removed(Flow& flow, RemoveReason reason, uint64_t now_ns) = 0;
};

enum class InsertOutcome : uint8_t {
  kInserted,               // a free slot was used
  kInsertedAfterEviction,  // the least-recently-active (or a closed) flow was evicted for it
  kRefused,                // table full and no flow idle long enough: nothing inserted
  kCount,
};
std::string_view to_string(InsertOutcome o);

// The flow table's counters, declared once (counter_list.h): the struct's fields, the summary keys
// (workers[].reassembly.table), the /metrics families and docs/metrics.md's flow_table block.
#define SPANFEED_FLOW_TABLE_COUNTERS(X)                                                                         \
  X(inserted, kCounter, "flow_table_inserted_total",                                                           \
    "Flows a worker's table started tracking, including those that took an evicted flow's place.")             \
  X(refused, kCounter, "flow_table_refused_total",                                                             \
    "New flows refused because the worker's flow table was full and nothing was idle enough to evict. "        \
    "Non-zero: raise `flow.capacity` (or a SYN flood is on).")                                                 \
  X(evicted_live, kCounter, "flow_table_evicted_live_total",                                                   \
    "Open flows evicted to make room for a new one (table full, the least recently active flow idle > 10 s). " \
    "Their records end early: raise `flow.capacity` when it keeps rising.")                                    \
  X(evicted_closed, kCounter, "flow_table_evicted_closed_total",                                               \
    "Closed flows, still lingering for late packets, whose record a new flow reused (harmless).")              \
  X(expired, kCounter, "flow_table_expired_total",                                                             \
    "Flows removed by an idle timeout (open ones, or closed ones done lingering).")                            \
  X(removed, kCounter, "", "Flows their owner removed from the table.")                                        \
  X(active, kGauge, "", "Flow records in use now.")                                                            \
  X(active_high_water, kGauge, "flow_table_active_high_water",                                                 \
    "The most flows a worker's table held at once in the run. Compare with `flow.capacity`.")

struct FlowTableCounters {
  SPANFEED_FLOW_TABLE_COUNTERS(SPANFEED_COUNTER_DECLARE)
};

#define SPANFEED_X(...) SPANFEED_COUNTER_ENTRY(FlowTableCounters, __VA_ARGS__)
inline constexpr CounterField<FlowTableCounters> kFlowTableCounterFields[] = {
    SPANFEED_FLOW_TABLE_COUNTERS(SPANFEED_X)};
#undef SPANFEED_X

struct FlowLookup {
  Flow* flow = nullptr;  // nullptr: not found / refused
  Direction dir = Direction::kClientToServer;
};

struct FlowInsert {
  Flow* flow = nullptr;
  Direction dir = Direction::kClientToServer;
  InsertOutcome outcome = InsertOutcome::kRefused;
};

// Fixed-capacity hash table of flows with chaining through slot indices
// (buckets = next power of two >= capacity, so chains average <= 1), a free
// list of slots, and one intrusive LRU list per timeout class. Time only ever
// comes in as an argument; the table keeps the newest time it was given so
// timestamps that step backwards (two RX queues) cannot reorder its lists.
class FlowTable {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  explicit FlowTable(const FlowTableConfig& cfg, FlowTableListener* listener = nullptr);
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  void set_listener(FlowTableListener* listener) { listener_ = listener; }

  // Finds the flow of `key`; dir is the packet's direction when found.
  FlowLookup find(const OrientedKey& ok);
  // The same, with hash_of(ok.key) already computed.
  FlowLookup find(const OrientedKey& ok, uint64_t hash) {
    uint32_t i = buckets_[bucket_of_hash(hash)];
    while (i != kNone) {
      Node& n = nodes_[i];
      if (n.flow.key == ok.key) return {&n.flow, n.flow.direction_of(ok.from_a)};
      i = n.hash_next;
    }
    return {};
  }
  uint64_t hash_of(const FlowKey& key) const;
  // Fetches what find() with this hash will read first: its bucket and (once
  // the bucket is read) the first flow on its chain. Returns that flow's
  // slot (kNone: the chain is empty).
  uint32_t prefetch(uint64_t hash) const {
    const uint32_t i = buckets_[bucket_of_hash(hash)];
    if (i == kNone) return kNone;
    const char* n = reinterpret_cast<const char*>(&nodes_[i]);
    for (size_t off = 0; off < sizeof(Node); off += 64) __builtin_prefetch(n + off);
    __builtin_prefetch(n + sizeof(Node) - 1);
    return i;
  }

  // Inserts a flow that find() did not return. client_is_a chooses the client.
  // When full: first expires due flows, then evicts a closed record, then the
  // least-recently-active flow if idle >= evict_min_idle_ns; else refuses.
  FlowInsert insert(const OrientedKey& ok, bool client_is_a, TimeoutClass cls, uint64_t ts_ns);

  // Marks activity at ts_ns (the table time becomes max(now, ts_ns)) and puts
  // the flow at the tail of `cls`'s list. O(1). Always inline: once per
  // packet, and usually the flow is already the newest of its class.
  [[gnu::always_inline]] void touch(Flow& flow, TimeoutClass cls, uint64_t ts_ns) {
    if (ts_ns > now_ns_) now_ns_ = ts_ns;
    flow.last_active_ns = now_ns_;
    if (ts_ns > flow.last_ts_ns) flow.last_ts_ns = ts_ns;
    if (lru_[static_cast<size_t>(cls)].tail == flow.slot) return;  // already newest of its class
    move_to_tail(flow.slot, cls);
  }

  // Removes a flow; the listener is not called (the owner is doing it).
  void remove(Flow& flow);

  // Removes up to `budget` flows whose class timeout has passed at now_ns,
  // oldest first, calling the listener for each. Returns how many.
  // Inline: before the earliest due time nothing can be due (every packet asks).
  uint32_t expire(uint64_t now_ns, uint32_t budget = UINT32_MAX) {
    if (now_ns > now_ns_) now_ns_ = now_ns;
    if (now_ns_ < next_due_) [[likely]] return 0;
    return expire_due(budget);
  }

  // Timeout of a class in nanoseconds.
  uint64_t timeout_ns(TimeoutClass cls) const { return timeout_[static_cast<size_t>(cls)]; }
  bool include_vlan() const { return include_vlan_; }

  uint32_t capacity() const { return capacity_; }
  uint32_t size() const { return static_cast<uint32_t>(counters_.active); }
  bool full() const { return free_head_ == kNone && nodes_.size() >= capacity_; }
  uint64_t now_ns() const { return now_ns_; }
  const FlowTableCounters& counters() const { return counters_; }
  Flow& at(uint32_t slot) { return nodes_[slot].flow; }
  bool in_use(uint32_t slot) const { return slot < nodes_.size() && nodes_[slot].in_use; }
  // The same for a slot some flow had (Flow::slot): nodes are never
  // destroyed, so no bound check (size() is a division by sizeof(Node)).
  bool made_slot_in_use(uint32_t slot) const { return nodes_[slot].in_use; }

  // Calls f(Flow&) for every flow in use (shutdown, tests). May not insert;
  // f may not remove other flows than the one it is given.
  template <typename F>
  void for_each(F&& f) {
    for (uint32_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i].in_use) f(nodes_[i].flow);
    }
  }

  // Longest hash chain right now (tests and the bench check spreading).
  uint32_t longest_chain() const;

 private:
  struct Node {
    Flow flow;
    uint32_t hash_next = kNone;
    uint32_t lru_prev = kNone;
    uint32_t lru_next = kNone;
    bool in_use = false;
  };
  struct LruList {
    uint32_t head = kNone;
    uint32_t tail = kNone;
  };

  uint64_t hash(const FlowKey& k) const;
  bool take_fresh();  // free list empty: makes the next never-used node its head; false when all exist
  uint32_t bucket_of(const FlowKey& k) const { return bucket_of_hash(hash(k)); }
  uint32_t bucket_of_hash(uint64_t h) const { return static_cast<uint32_t>(h >> 32) & bucket_mask_; }
  uint32_t expire_due(uint32_t budget);
  void move_to_tail(uint32_t i, TimeoutClass cls);
  void lru_unlink(uint32_t i);
  void lru_append(uint32_t i, TimeoutClass cls);
  void unlink_and_free(uint32_t i);
  bool make_room(uint64_t now_ns, InsertOutcome* outcome);

  FlowTableListener* listener_;
  uint32_t capacity_;
  uint32_t bucket_mask_;
  uint64_t seed_;
  uint64_t evict_min_idle_ns_;
  bool include_vlan_;
  std::array<uint64_t, kTimeoutClassCount> timeout_{};
  std::vector<Node> nodes_;
  std::vector<uint32_t> buckets_;
  std::array<LruList, kTimeoutClassCount> lru_{};
  uint32_t free_head_ = kNone;  // free slots chained through hash_next
  uint64_t now_ns_ = 0;
  // No flow is due before this (a lower bound of the list heads' due times):
  // each class list is in last-active order, so a due time only moves earlier
  // when a flow enters an empty list (lru_append lowers it then).
  uint64_t next_due_ = UINT64_MAX;
  uint64_t next_serial_ = 1;
  FlowTableCounters counters_;
};

// ---------------------------------------------------------------------------
// Inline definitions (per packet on the worker)

inline void make_flow_key_into(const ParsedPacket& p, bool include_vlan, OrientedKey& ok) {
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
  ok.key.addr_a = src_is_a ? p.src : p.dst;
  ok.key.addr_b = src_is_a ? p.dst : p.src;
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
}

inline OrientedKey make_flow_key(const ParsedPacket& p, bool include_vlan) {
  OrientedKey ok;
  make_flow_key_into(p, include_vlan, ok);
  return ok;
}

namespace flow_table_detail {
// Stafford's mix13 (the murmur3 64-bit finaliser family): full avalanche.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}
}  // namespace flow_table_detail

inline uint64_t FlowTable::hash(const FlowKey& k) const {
  // One multiply and rotate per word, the full finaliser once (six finalisers: ~80 instructions a packet).
  // An IPv4 address fills the first 4 bytes of its 16, the rest zero: words 1
  // and 3 (the second halves of addr_a and addr_b) are left out for IPv4 keys
  // (two steps less a packet; still a function of the key alone).
  const bool v6 = k.ip_version != 4;
  uint64_t h = word_hash::mix(seed_, key_word(k, 0));
  if (v6) [[unlikely]] h = word_hash::mix(h, key_word(k, 1));
  h = word_hash::mix(h, key_word(k, 2));
  if (v6) [[unlikely]] h = word_hash::mix(h, key_word(k, 3));
  h = word_hash::mix(h, key_word(k, 4));
  h = word_hash::mix(h, key_word(k, 5));
  return flow_table_detail::mix64(h);
}

inline uint64_t FlowTable::hash_of(const FlowKey& key) const { return hash(key); }

}  // namespace spanfeed
