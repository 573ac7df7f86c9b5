// Unit tests for the symmetric flow hash and the worker mapping.
#include "spanfeed/flow_hash.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <utility>
#include <vector>

namespace spanfeed {
namespace {

ParsedPacket tuple(uint32_t src, uint32_t dst, uint16_t sp, uint16_t dp, uint8_t proto = kProtoTcp,
                   uint32_t vlan = 0) {
  ParsedPacket p;
  std::memset(&p, 0, sizeof(p));
  for (int i = 0; i < 4; ++i) {
    p.src.bytes[i] = static_cast<uint8_t>(src >> (24 - 8 * i));
    p.dst.bytes[i] = static_cast<uint8_t>(dst >> (24 - 8 * i));
  }
  p.src_port = sp;
  p.dst_port = dp;
  p.l4_proto = proto;
  p.ip_version = 4;
  p.vlan = vlan;
  return p;
}

TEST(FlowHash, SymmetricForRandomTuples) {
  std::mt19937 rng(42);
  for (int i = 0; i < 100000; ++i) {
    uint32_t a = rng(), b = rng();
    uint16_t pa = static_cast<uint16_t>(rng()), pb = static_cast<uint16_t>(rng());
    uint32_t vlan = rng() & 0xffffff;
    auto fwd = tuple(a, b, pa, pb, kProtoTcp, vlan);
    auto rev = tuple(b, a, pb, pa, kProtoTcp, vlan);
    ASSERT_EQ(symmetric_flow_hash(fwd, true), symmetric_flow_hash(rev, true));
  }
}

TEST(FlowHash, SameAddressesDifferentPortsStaySymmetric) {
  auto fwd = tuple(1, 1, 1000, 2000);
  auto rev = tuple(1, 1, 2000, 1000);
  EXPECT_EQ(symmetric_flow_hash(fwd, true), symmetric_flow_hash(rev, true));
}

TEST(FlowHash, DistinguishesTupleFields) {
  auto base = tuple(0x0a000001, 0x0a000002, 40000, 80);
  uint32_t h = symmetric_flow_hash(base, true);
  EXPECT_NE(h, symmetric_flow_hash(tuple(0x0a000001, 0x0a000002, 40001, 80), true));
  EXPECT_NE(h, symmetric_flow_hash(tuple(0x0a000001, 0x0a000003, 40000, 80), true));
  EXPECT_NE(h, symmetric_flow_hash(tuple(0x0a000001, 0x0a000002, 40000, 80, kProtoUdp), true));
  auto tagged = tuple(0x0a000001, 0x0a000002, 40000, 80, kProtoTcp, 5u << 12);
  EXPECT_NE(h, symmetric_flow_hash(tagged, true));
  EXPECT_EQ(h, symmetric_flow_hash(tagged, false)) << "hash_vlan=false ignores VLAN";
}

TEST(FlowHash, FragmentsHashOnAddressesOnly) {
  auto first = tuple(1, 2, 5000, 53, kProtoUdp);
  first.flags = packet_flag::kFragment;
  auto later = tuple(1, 2, 0, 0, kProtoUdp);
  later.flags = packet_flag::kFragment | packet_flag::kLaterFragment;
  EXPECT_EQ(symmetric_flow_hash(first, true), symmetric_flow_hash(later, true));
}

TEST(FlowHash, SpreadsEvenlyOverWorkers) {
  // 200k random flows over 4 and 7 workers: each bucket within 3% of fair.
  std::mt19937 rng(7);
  for (uint32_t n : {4u, 7u}) {
    std::vector<int> count(n);
    const int flows = 200000;
    for (int i = 0; i < flows; ++i) {
      auto p = tuple(rng(), rng(), static_cast<uint16_t>(rng()), 443);
      uint32_t w = worker_for_hash(symmetric_flow_hash(p, true), n);
      ASSERT_LT(w, n);
      ++count[w];
    }
    for (uint32_t w = 0; w < n; ++w) {
      EXPECT_NEAR(count[w], flows / double(n), flows / double(n) * 0.03) << "worker " << w;
    }
  }
}

TEST(FlowHash, SequentialClientPortsSpreadToo) {
  // One client, one server, ephemeral ports counting up: a typical load test.
  std::vector<int> count(4);
  for (uint16_t port = 32768; port < 32768 + 4000; ++port) {
    ++count[worker_for_hash(symmetric_flow_hash(tuple(1, 2, port, 3306), true), 4)];
  }
  for (int c : count) EXPECT_NEAR(c, 1000, 150);
}

TEST(FlowHash, WorkerForHashBounds) {
  EXPECT_EQ(worker_for_hash(0, 5), 0u);
  EXPECT_EQ(worker_for_hash(0xffffffffu, 5), 4u);
  EXPECT_EQ(worker_for_hash(0x80000000u, 2), 1u);
  EXPECT_EQ(worker_for_hash(0x7fffffffu, 2), 0u);
}

}  // namespace
}  // namespace spanfeed
