// Unit tests for the per-worker flow table: keys, directions, timers, eviction, capacity.
// Runs in the test thread; allocates freely (tests only).
#include "spanfeed/flow_table.h"

#include <gtest/gtest.h>

#include <vector>

#include "flow_test_util.h"

namespace spanfeed {
namespace {

using flowtest::Endpoint;
using flowtest::ipv4;
using flowtest::ipv4_from_index;
using flowtest::make_packet;

constexpr uint64_t kSec = kNsPerSec;
constexpr uint64_t kT0 = 1000 * kSec;

struct Removal {
  uint64_t serial;
  RemoveReason reason;
  uint64_t now_ns;
};

class RecordingListener : public FlowTableListener {
 public:
  void on_flow_removed(Flow& flow, RemoveReason reason, uint64_t now_ns) override {
    removals.push_back({flow.serial, reason, now_ns});
  }
  std::vector<Removal> removals;
};

ParsedPacket pkt(const Endpoint& src, const Endpoint& dst, uint8_t proto = kProtoTcp, uint32_t vlan = 0) {
  return make_packet(proto, src, dst, "", 0, vlan).parsed;
}

FlowTableConfig small_config(uint32_t capacity) {
  FlowTableConfig c;
  c.capacity = capacity;
  c.tcp_opening_timeout_ns = 5 * kSec;
  c.tcp_established_timeout_ns = 60 * kSec;
  c.tcp_closing_timeout_ns = 10 * kSec;
  c.closed_linger_ns = 2 * kSec;
  c.udp_timeout_ns = 30 * kSec;
  c.evict_min_idle_ns = 4 * kSec;
  return c;
}

const Endpoint kClient{ipv4(10, 0, 0, 2), 51234};
const Endpoint kServer{ipv4(10, 0, 0, 1), 80};

TEST(FlowKeyTest, BothDirectionsGiveTheSameKeyAndOppositeOrientation) {
  OrientedKey fwd = make_flow_key(pkt(kClient, kServer));
  OrientedKey rev = make_flow_key(pkt(kServer, kClient));
  EXPECT_TRUE(fwd.key == rev.key);
  EXPECT_NE(fwd.from_a, rev.from_a);
  // 10.0.0.1 < 10.0.0.2: the server is endpoint A.
  EXPECT_EQ(fwd.key.port_a, 80);
  EXPECT_EQ(fwd.key.port_b, 51234);
  EXPECT_FALSE(fwd.from_a);
}

TEST(FlowKeyTest, VlanProtocolPortAndVersionAreAllPartOfTheKey) {
  OrientedKey base = make_flow_key(pkt(kClient, kServer));
  EXPECT_FALSE(base.key == make_flow_key(pkt(kClient, kServer, kProtoTcp, 7)).key);
  EXPECT_FALSE(base.key == make_flow_key(pkt(kClient, kServer, kProtoUdp)).key);
  EXPECT_FALSE(base.key == make_flow_key(pkt({kClient.addr, 51235}, kServer)).key);
  ParsedPacket v6 = pkt(kClient, kServer);
  v6.ip_version = 6;  // same 16 address bytes, other family
  EXPECT_FALSE(base.key == make_flow_key(v6).key);
}

TEST(FlowKeyTest, SameAddressBothEndsOrdersByPort) {
  Endpoint a{ipv4(127, 0, 0, 1), 5000};
  Endpoint b{ipv4(127, 0, 0, 1), 6000};
  OrientedKey x = make_flow_key(pkt(a, b));
  OrientedKey y = make_flow_key(pkt(b, a));
  EXPECT_TRUE(x.key == y.key);
  EXPECT_TRUE(x.from_a);
  EXPECT_FALSE(y.from_a);
}

TEST(FlowTableTest, InsertFindDirectionAndRemove) {
  FlowTable t(small_config(8));
  OrientedKey fwd = make_flow_key(pkt(kClient, kServer));
  OrientedKey rev = make_flow_key(pkt(kServer, kClient));
  EXPECT_EQ(t.find(fwd).flow, nullptr);

  // The client sent this packet: client is the packet's source.
  FlowInsert ins = t.insert(fwd, /*client_is_a=*/fwd.from_a, TimeoutClass::kTcpOpening, kT0);
  ASSERT_NE(ins.flow, nullptr);
  EXPECT_EQ(ins.outcome, InsertOutcome::kInserted);
  EXPECT_EQ(ins.dir, Direction::kClientToServer);
  EXPECT_EQ(ins.flow->serial, 1u);
  EXPECT_EQ(ins.flow->client_port(), 51234);
  EXPECT_EQ(ins.flow->server_port(), 80);
  EXPECT_EQ(ins.flow->client_addr().bytes[3], 2);

  FlowLookup a = t.find(fwd);
  FlowLookup b = t.find(rev);
  EXPECT_EQ(a.flow, ins.flow);
  EXPECT_EQ(b.flow, ins.flow);
  EXPECT_EQ(a.dir, Direction::kClientToServer);
  EXPECT_EQ(b.dir, Direction::kServerToClient);
  EXPECT_EQ(t.size(), 1u);

  t.remove(*ins.flow);
  EXPECT_EQ(t.find(fwd).flow, nullptr);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.counters().inserted, 1u);
  EXPECT_EQ(t.counters().removed, 1u);
  EXPECT_EQ(t.counters().active, 0u);
}

TEST(FlowTableTest, TimeoutsPerClassFireExactlyAtTheirDeadline) {
  RecordingListener l;
  FlowTable t(small_config(16), &l);
  auto key = [](uint32_t i) { return make_flow_key(pkt({ipv4_from_index(i), 40000}, kServer)); };
  Flow* opening = t.insert(key(1), true, TimeoutClass::kTcpOpening, kT0).flow;       // due +5 s
  Flow* est = t.insert(key(2), true, TimeoutClass::kTcpEstablished, kT0).flow;       // due +60 s
  Flow* closing = t.insert(key(3), true, TimeoutClass::kTcpClosing, kT0).flow;       // due +10 s
  Flow* closed = t.insert(key(4), true, TimeoutClass::kClosed, kT0).flow;            // due +2 s
  Flow* udp = t.insert(key(5), true, TimeoutClass::kUdp, kT0).flow;                  // due +30 s
  ASSERT_TRUE(opening && est && closing && closed && udp);
  const uint64_t s_opening = opening->serial, s_est = est->serial, s_closing = closing->serial,
                 s_closed = closed->serial, s_udp = udp->serial;

  EXPECT_EQ(t.expire(kT0 + 2 * kSec - 1), 0u);
  EXPECT_EQ(t.expire(kT0 + 2 * kSec), 1u);
  EXPECT_EQ(t.expire(kT0 + 5 * kSec - 1), 0u);
  EXPECT_EQ(t.expire(kT0 + 5 * kSec), 1u);
  EXPECT_EQ(t.expire(kT0 + 10 * kSec), 1u);
  EXPECT_EQ(t.expire(kT0 + 30 * kSec), 1u);
  EXPECT_EQ(t.expire(kT0 + 60 * kSec - 1), 0u);
  EXPECT_EQ(t.expire(kT0 + 60 * kSec), 1u);
  ASSERT_EQ(l.removals.size(), 5u);
  EXPECT_EQ(l.removals[0].serial, s_closed);
  EXPECT_EQ(l.removals[1].serial, s_opening);
  EXPECT_EQ(l.removals[2].serial, s_closing);
  EXPECT_EQ(l.removals[3].serial, s_udp);
  EXPECT_EQ(l.removals[4].serial, s_est);
  for (const Removal& r : l.removals) EXPECT_EQ(r.reason, RemoveReason::kExpired);
  EXPECT_EQ(t.counters().expired, 5u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(FlowTableTest, TouchPostponesTimeoutAndChangesClass) {
  RecordingListener l;
  FlowTable t(small_config(4), &l);
  OrientedKey k = make_flow_key(pkt(kClient, kServer));
  Flow* f = t.insert(k, true, TimeoutClass::kTcpOpening, kT0).flow;
  t.touch(*f, TimeoutClass::kTcpOpening, kT0 + 4 * kSec);
  EXPECT_EQ(t.expire(kT0 + 8 * kSec), 0u);  // due at +9 s now
  t.touch(*f, TimeoutClass::kTcpEstablished, kT0 + 8 * kSec);
  EXPECT_EQ(f->timeout_class, TimeoutClass::kTcpEstablished);
  EXPECT_EQ(t.expire(kT0 + 67 * kSec), 0u);
  EXPECT_EQ(t.expire(kT0 + 68 * kSec), 1u);
  EXPECT_EQ(l.removals.size(), 1u);
}

TEST(FlowTableTest, TimeGoingBackwardsNeverReordersTimers) {
  FlowTable t(small_config(4));
  Flow* a = t.insert(make_flow_key(pkt({ipv4_from_index(1), 1}, kServer)), true, TimeoutClass::kUdp, kT0).flow;
  // An older timestamp (another RX queue lagging) must not make b look older than a.
  Flow* b = t.insert(make_flow_key(pkt({ipv4_from_index(2), 1}, kServer)), true, TimeoutClass::kUdp, kT0 - kSec).flow;
  EXPECT_EQ(b->last_active_ns, kT0);
  EXPECT_EQ(b->first_ts_ns, kT0 - kSec);
  EXPECT_EQ(t.now_ns(), kT0);
  EXPECT_EQ(t.expire(kT0 + 30 * kSec), 2u);
  (void)a;
}

TEST(FlowTableTest, FullTableRefusesWhenNothingIdleLongEnough) {
  RecordingListener l;
  FlowTable t(small_config(2), &l);
  auto key = [](uint32_t i) { return make_flow_key(pkt({ipv4_from_index(i), 40000}, kServer)); };
  ASSERT_NE(t.insert(key(1), true, TimeoutClass::kTcpEstablished, kT0).flow, nullptr);
  ASSERT_NE(t.insert(key(2), true, TimeoutClass::kTcpEstablished, kT0 + kSec).flow, nullptr);
  EXPECT_TRUE(t.full());
  FlowInsert r = t.insert(key(3), true, TimeoutClass::kTcpEstablished, kT0 + 4 * kSec - 1);
  EXPECT_EQ(r.flow, nullptr);
  EXPECT_EQ(r.outcome, InsertOutcome::kRefused);
  EXPECT_EQ(t.counters().refused, 1u);
  EXPECT_TRUE(l.removals.empty());
  EXPECT_EQ(t.find(key(3)).flow, nullptr);
}

TEST(FlowTableTest, FullTableEvictsLeastRecentlyActiveAcrossClasses) {
  RecordingListener l;
  FlowTable t(small_config(3), &l);
  auto key = [](uint32_t i) { return make_flow_key(pkt({ipv4_from_index(i), 40000}, kServer)); };
  Flow* a = t.insert(key(1), true, TimeoutClass::kTcpEstablished, kT0).flow;
  Flow* b = t.insert(key(2), true, TimeoutClass::kUdp, kT0 + kSec).flow;
  Flow* c = t.insert(key(3), true, TimeoutClass::kTcpOpening, kT0 + 2 * kSec).flow;
  const uint64_t sb = b->serial;
  t.touch(*a, TimeoutClass::kTcpEstablished, kT0 + 3 * kSec);  // a is now the most recent
  // At +5 s: b idle 4 s (>= 4 s min) is the LRU; c idle 3 s; a idle 2 s.
  FlowInsert r = t.insert(key(4), true, TimeoutClass::kTcpOpening, kT0 + 5 * kSec);
  ASSERT_NE(r.flow, nullptr);
  EXPECT_EQ(r.outcome, InsertOutcome::kInsertedAfterEviction);
  ASSERT_EQ(l.removals.size(), 1u);
  EXPECT_EQ(l.removals[0].serial, sb);
  EXPECT_EQ(l.removals[0].reason, RemoveReason::kEvicted);
  EXPECT_EQ(t.counters().evicted_live, 1u);
  EXPECT_EQ(t.find(key(2)).flow, nullptr);
  EXPECT_NE(t.find(key(1)).flow, nullptr);
  EXPECT_NE(t.find(key(3)).flow, nullptr);
  (void)c;
}

TEST(FlowTableTest, ClosedRecordsAreEvictedFirstWhateverTheirAge) {
  RecordingListener l;
  FlowTable t(small_config(2), &l);
  auto key = [](uint32_t i) { return make_flow_key(pkt({ipv4_from_index(i), 40000}, kServer)); };
  Flow* live = t.insert(key(1), true, TimeoutClass::kTcpEstablished, kT0).flow;
  Flow* closed = t.insert(key(2), true, TimeoutClass::kClosed, kT0 + kSec).flow;
  const uint64_t sc = closed->serial;
  // +1.5 s: the live flow is older, but idle only 1.5 s; the closed one goes.
  FlowInsert r = t.insert(key(3), true, TimeoutClass::kUdp, kT0 + kSec + kSec / 2);
  ASSERT_NE(r.flow, nullptr);
  ASSERT_EQ(l.removals.size(), 1u);
  EXPECT_EQ(l.removals[0].serial, sc);
  EXPECT_EQ(t.counters().evicted_closed, 1u);
  EXPECT_EQ(t.counters().evicted_live, 0u);
  EXPECT_NE(t.find(key(1)).flow, nullptr);
  (void)live;
}

TEST(FlowTableTest, ExpiredFlowIsReportedAsExpiredNotEvictedWhenTableFull) {
  RecordingListener l;
  FlowTable t(small_config(1), &l);
  auto key = [](uint32_t i) { return make_flow_key(pkt({ipv4_from_index(i), 40000}, kServer)); };
  ASSERT_NE(t.insert(key(1), true, TimeoutClass::kTcpOpening, kT0).flow, nullptr);
  FlowInsert r = t.insert(key(2), true, TimeoutClass::kTcpOpening, kT0 + 6 * kSec);
  ASSERT_NE(r.flow, nullptr);
  EXPECT_EQ(r.outcome, InsertOutcome::kInserted);
  ASSERT_EQ(l.removals.size(), 1u);
  EXPECT_EQ(l.removals[0].reason, RemoveReason::kExpired);
  EXPECT_EQ(t.counters().expired, 1u);
  EXPECT_EQ(t.counters().evicted_live, 0u);
}

TEST(FlowTableTest, ExpireBudgetBoundsWorkPerCall) {
  FlowTable t(small_config(100));
  for (uint32_t i = 0; i < 100; ++i) {
    t.insert(make_flow_key(pkt({ipv4_from_index(i), 40000}, kServer)), true, TimeoutClass::kUdp, kT0 + i);
  }
  EXPECT_EQ(t.expire(kT0 + 100 * kSec, 30), 30u);
  EXPECT_EQ(t.size(), 70u);
  EXPECT_EQ(t.expire(kT0 + 100 * kSec), 70u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(FlowTableTest, FillToCapacityFindEveryFlowThenReuseSlots) {
  constexpr uint32_t kN = 100000;
  FlowTable t(small_config(kN));
  std::vector<OrientedKey> keys;
  keys.reserve(kN);
  for (uint32_t i = 0; i < kN; ++i) {
    keys.push_back(make_flow_key(pkt({ipv4_from_index(i), static_cast<uint16_t>(1024 + i % 50000)}, kServer)));
    ASSERT_NE(t.insert(keys.back(), true, TimeoutClass::kTcpEstablished, kT0).flow, nullptr) << i;
  }
  EXPECT_TRUE(t.full());
  EXPECT_EQ(t.counters().active_high_water, kN);
  // Chains stay short with a 64-bit mix over the whole key (2^17 buckets, 1e5 keys).
  EXPECT_LE(t.longest_chain(), 12u);
  uint32_t found = 0;
  for (uint32_t i = 0; i < kN; ++i) {
    FlowLookup lk = t.find(keys[i]);
    if (lk.flow != nullptr && lk.flow->key == keys[i].key) ++found;
  }
  EXPECT_EQ(found, kN);
  for (uint32_t i = 0; i < kN; i += 2) t.remove(*t.find(keys[i]).flow);
  EXPECT_EQ(t.size(), kN / 2);
  for (uint32_t i = 0; i < kN; i += 2) {
    ASSERT_NE(t.insert(keys[i], true, TimeoutClass::kUdp, kT0 + 1).flow, nullptr);
  }
  EXPECT_EQ(t.size(), kN);
  EXPECT_EQ(t.counters().inserted, kN + kN / 2);
}

TEST(FlowTableTest, ValidateRejectsBadConfig) {
  FlowTableConfig c;
  EXPECT_EQ(validate(c), "");
  c.capacity = 0;
  EXPECT_NE(validate(c), "");
  c = FlowTableConfig{};
  c.udp_timeout_ns = 0;
  EXPECT_NE(validate(c), "");
}

}  // namespace
}  // namespace spanfeed
