// Unit tests for the RX fragment steer: every fragment of a datagram goes to
// one worker, the worker of the datagram's flow when the first fragment leads.
#include "spanfeed/fragment_steer.h"

#include <gtest/gtest.h>

#include "frame_builder.h"
#include "spanfeed/flow_hash.h"
#include "spanfeed/packet.h"

namespace spanfeed {
namespace {

using test::Frame;

constexpr uint32_t kClient = 0x0a000002, kServer = 0x0a000001;
constexpr uint64_t kTtl = 5'000'000'000ull;

struct Parsed {
  Frame f;
  ParsedPacket p{};
};

void parse(Parsed& x) {
  ASSERT_EQ(parse_packet(x.f.span(), LinkType::kEthernet, x.p), ParseOutcome::kOk);
}

void set_ipv4_id(Frame& f, uint16_t id) {
  f.raw()[14 + 4] = static_cast<uint8_t>(id >> 8);
  f.raw()[14 + 5] = static_cast<uint8_t>(id);
}

// The DNS query (unfragmented) from client port `cport`.
Parsed query(uint16_t cport) {
  Parsed x;
  x.f.eth(0x0800).ipv4(kClient, kServer, kProtoUdp, 20 + 8 + 30).udp(cport, 53, 8 + 30).zeros(30);
  parse(x);
  return x;
}

// Fragments of the answer (3000 bytes of UDP): the first with the UDP header,
// then one at offset 1480.
Parsed answer_first(uint16_t cport, uint16_t id) {
  Parsed x;
  x.f.eth(0x0800).ipv4(kServer, kClient, kProtoUdp, 1500, 5, 0x2000).udp(53, cport, 3000).zeros(1472);
  set_ipv4_id(x.f, id);
  parse(x);
  return x;
}

Parsed answer_later(uint16_t id) {
  Parsed x;
  x.f.eth(0x0800).ipv4(kServer, kClient, kProtoUdp, 20 + 1520, 5, 1480 / 8).zeros(1520);
  set_ipv4_id(x.f, id);
  parse(x);
  return x;
}

uint32_t steer(FragmentSteer& s, const Parsed& x, uint64_t ts = 1) {
  return s.hash_for(x.p, x.f.span(), ts, true, symmetric_flow_hash(x.p, true));
}

// Client ports whose query hashes to another worker of two than the answer's
// address pair: the case that came out as timeout + unmatched.
uint16_t port_on_other_worker() {
  for (uint16_t port = 40000;; ++port) {
    Parsed q = query(port), a = answer_first(port, 7);
    if (worker_for_hash(symmetric_flow_hash(q.p, true), 2) != worker_for_hash(symmetric_flow_hash(a.p, true), 2)) {
      return port;
    }
  }
}

TEST(FragmentSteer, FirstFragmentLeadsEveryFragmentToTheQueryWorker) {
  const uint16_t port = port_on_other_worker();
  FragmentSteer s(16, kTtl);
  const uint32_t want = symmetric_flow_hash(query(port).p, true);
  Parsed first = answer_first(port, 7), later = answer_later(7);
  ASSERT_TRUE(first.p.flags & packet_flag::kFragment);
  ASSERT_NE(worker_for_hash(symmetric_flow_hash(first.p, true), 2), worker_for_hash(want, 2));
  EXPECT_EQ(steer(s, first), want);
  EXPECT_EQ(steer(s, later), want);
  EXPECT_EQ(s.by_ports(), 1u);
  EXPECT_EQ(s.followed(), 1u);
}

TEST(FragmentSteer, LaterFragmentFirstKeepsTheAddressHashForTheWholeDatagram) {
  const uint16_t port = port_on_other_worker();
  FragmentSteer s(16, kTtl);
  Parsed first = answer_first(port, 8), later = answer_later(8);
  const uint32_t addr = symmetric_flow_hash(later.p, true);
  EXPECT_EQ(steer(s, later), addr);
  EXPECT_EQ(steer(s, first), addr);  // still with its siblings: the datagram must complete
  EXPECT_EQ(s.by_addresses(), 1u);
  EXPECT_EQ(s.followed(), 1u);
}

TEST(FragmentSteer, DatagramsWithOtherIdsAreSteeredOnTheirOwn) {
  const uint16_t port = port_on_other_worker();
  FragmentSteer s(16, kTtl);
  const uint32_t want = symmetric_flow_hash(query(port).p, true);
  const uint32_t addr = symmetric_flow_hash(answer_later(1).p, true);
  EXPECT_EQ(steer(s, answer_later(9)), addr);          // id 9: a later fragment first
  EXPECT_EQ(steer(s, answer_first(port, 10)), want);   // id 10: its first fragment first
  EXPECT_EQ(steer(s, answer_first(port, 9)), addr);
  EXPECT_EQ(steer(s, answer_later(10)), want);
}

TEST(FragmentSteer, AnEntryExpiresAfterTheReassemblyTimeout) {
  const uint16_t port = port_on_other_worker();
  FragmentSteer s(16, kTtl);
  const uint32_t want = symmetric_flow_hash(query(port).p, true);
  const uint32_t addr = symmetric_flow_hash(answer_later(11).p, true);
  EXPECT_EQ(steer(s, answer_first(port, 11), 1000), want);
  EXPECT_EQ(steer(s, answer_later(11), 1000 + kTtl), want);
  // The same id much later is another datagram: a later fragment leading decides anew.
  EXPECT_EQ(steer(s, answer_later(11), 1001 + kTtl), addr);
}

TEST(FragmentSteer, Ipv6FragmentHeaderRightAfterTheFixedHeader) {
  FragmentSteer s(16, kTtl);
  Parsed q, first, later;
  q.f.eth(0x86DD).ipv6(0x0a, 0x0b, kProtoUdp, 8 + 30).udp(40001, 53, 8 + 30).zeros(30);
  first.f.eth(0x86DD).ipv6(0x0b, 0x0a, 44, 8 + 1448).u8(kProtoUdp).u8(0).u16(0x0001).u32(0xBEEF)
      .udp(53, 40001, 3000).zeros(1440);
  later.f.eth(0x86DD).ipv6(0x0b, 0x0a, 44, 8 + 1552).u8(kProtoUdp).u8(0).u16(1448).u32(0xBEEF).zeros(1552);
  parse(q);
  parse(first);
  parse(later);
  ASSERT_TRUE(later.p.flags & packet_flag::kLaterFragment);
  const uint32_t want = symmetric_flow_hash(q.p, true);
  EXPECT_EQ(steer(s, first), want);
  EXPECT_EQ(steer(s, later), want);
  EXPECT_EQ(s.unkeyed(), 0u);
}

TEST(FragmentSteer, Ipv6FragmentBehindOtherHeadersKeepsTheAddressHash) {
  FragmentSteer s(16, kTtl);
  Parsed first;
  // hop-by-hop options (8 bytes), then the fragment header: rte_ip_frag passes it on anyway
  first.f.eth(0x86DD).ipv6(0x0b, 0x0a, 0, 8 + 8 + 1448).u8(44).u8(0).zeros(6)
      .u8(kProtoUdp).u8(0).u16(0x0001).u32(0xBEEF).udp(53, 40001, 3000).zeros(1440);
  parse(first);
  ASSERT_TRUE(first.p.flags & packet_flag::kFragment);
  EXPECT_EQ(steer(s, first), symmetric_flow_hash(first.p, true));
  EXPECT_EQ(s.unkeyed(), 1u);
}

TEST(FragmentSteer, DatagramHashOfAnUnfragmentedPacketIsItsFlowHash) {
  Parsed q = query(40002);
  EXPECT_EQ(datagram_flow_hash(q.p, true), symmetric_flow_hash(q.p, true));
  EXPECT_EQ(datagram_flow_hash(q.p, false), symmetric_flow_hash(q.p, false));
}

}  // namespace
}  // namespace spanfeed
