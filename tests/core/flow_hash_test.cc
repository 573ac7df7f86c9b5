// Unit tests for the symmetric flow hash and the worker mapping.
#include "spanfeed/flow_hash.h"

#include <gtest/gtest.h>
#include <murmurhash.h>

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

// The hash as first written: the canonical tuple laid out in memory and handed to
// libmurmurhash. The inline MurmurHash3 must give the same value for every packet, or flows
// would move to other workers (and records to other workers' ids).
uint32_t reference_hash(const ParsedPacket& p, bool include_vlan) {
  struct {
    uint8_t addr_lo[16];
    uint8_t addr_hi[16];
    uint16_t port_lo;
    uint16_t port_hi;
    uint8_t proto;
    uint8_t pad[3];
    uint32_t vlan;
  } t;
  static_assert(sizeof(t) == 44);
  std::memset(&t, 0, sizeof(t));
  uint16_t sp = p.src_port, dp = p.dst_port;
  if (p.flags & packet_flag::kFragment) sp = dp = 0;
  int c = std::memcmp(p.src.bytes, p.dst.bytes, 16);
  bool src_first = c < 0 || (c == 0 && sp <= dp);
  std::memcpy(t.addr_lo, (src_first ? p.src : p.dst).bytes, 16);
  std::memcpy(t.addr_hi, (src_first ? p.dst : p.src).bytes, 16);
  t.port_lo = src_first ? sp : dp;
  t.port_hi = src_first ? dp : sp;
  t.proto = p.l4_proto;
  t.vlan = include_vlan ? p.vlan : 0;
  t.pad[0] = static_cast<uint8_t>(p.tunnel.key_type);
  t.vlan ^= p.tunnel.key_id * 0x9E3779B1u;
  uint32_t out[1];
  lmmh_x86_32(&t, sizeof(t), kFlowHashSeed, out);
  return out[0];
}

TEST(FlowHash, EqualsLibmurmurhashOverTheCanonicalTuple) {
  std::mt19937 rng(1234);
  for (int i = 0; i < 200000; ++i) {
    ParsedPacket p;
    std::memset(&p, 0, sizeof(p));
    const bool v6 = rng() & 1;
    for (int b = 0; b < (v6 ? 16 : 4); ++b) {
      p.src.bytes[b] = static_cast<uint8_t>(rng());
      p.dst.bytes[b] = static_cast<uint8_t>(rng());
    }
    if (rng() % 8 == 0) p.dst = p.src;                                  // same address both ends
    if (rng() % 16 == 0) std::memcpy(p.dst.bytes, p.src.bytes, 8);      // equal first half
    p.src_port = static_cast<uint16_t>(rng());
    p.dst_port = rng() % 4 == 0 ? p.src_port : static_cast<uint16_t>(rng());
    p.l4_proto = static_cast<uint8_t>(rng());
    p.vlan = rng() & 0xffffff;
    p.ip_version = v6 ? 6 : 4;
    if (rng() % 4 == 0) p.flags = packet_flag::kFragment;
    if (rng() % 4 == 0) {
      p.tunnel.key_type = static_cast<TunnelType>(1 + rng() % (static_cast<unsigned>(TunnelType::kCount) - 1));
      p.tunnel.key_id = rng();
    }
    for (bool vlan : {true, false}) ASSERT_EQ(symmetric_flow_hash(p, vlan), reference_hash(p, vlan)) << i;
  }
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
