// Unit tests for the L2-L4 parser: every link type, VLAN/QinQ, IPv4 options
// and fragments, IPv6 extension headers, and truncated/malformed frames at
// every possible cut (counted outcome, never a crash); the parser's fuzz target (fuzz_packet.cc) replayed
// over its corpus, mutations of it and random frames.
#include "spanfeed/packet.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "frame_builder.h"

int spanfeed_fuzz_packet(const uint8_t* data, size_t size);

namespace spanfeed {
namespace {

using test::Frame;

constexpr uint32_t kA = 0x0a000001;  // 10.0.0.1
constexpr uint32_t kB = 0x0a000002;

Frame tcp4_frame(size_t payload) {
  Frame f;
  f.eth(0x0800).ipv4(kA, kB, kProtoTcp, static_cast<uint16_t>(20 + 20 + payload)).tcp(40000, 80);
  f.zeros(payload);
  return f;
}

TEST(Parse, EthernetIpv4Tcp) {
  Frame f = tcp4_frame(100);
  ParsedPacket p;
  ASSERT_EQ(parse_packet(f.span(), LinkType::kEthernet, p), ParseOutcome::kOk);
  EXPECT_EQ(p.ip_version, 4);
  EXPECT_EQ(p.l4_proto, kProtoTcp);
  EXPECT_EQ(p.ip_payload_len, 120u);
  EXPECT_EQ(p.src_port, 40000);
  EXPECT_EQ(p.dst_port, 80);
  EXPECT_EQ(p.l3_offset, 14);
  EXPECT_EQ(p.l4_offset, 34);
  EXPECT_EQ(p.payload_offset, 54);
  EXPECT_EQ(p.payload_len, 100);
  EXPECT_EQ(p.l4_len_claimed, 100u);
  EXPECT_EQ(p.tcp_seq, 1000u);
  EXPECT_EQ(p.tcp_flags, 0x18);
  EXPECT_EQ(p.flags, 0);
  EXPECT_EQ(p.src.bytes[3], 1);
  EXPECT_EQ(p.dst.bytes[3], 2);
}

TEST(Parse, EthernetPaddingIsNotPayload) {
  // A 60-byte minimum frame carrying a bare ACK: 6 bytes of Ethernet padding.
  Frame f = tcp4_frame(0);
  f.zeros(6);
  ParsedPacket p;
  ASSERT_EQ(parse_packet(f.span(), LinkType::kEthernet, p), ParseOutcome::kOk);
  EXPECT_EQ(p.ip_payload_len, 20u);
  EXPECT_EQ(p.payload_len, 0);
}

TEST(Parse, VlanAndQinQ) {
  Frame f;
  f.eth(0x88A8).vlan(100, 0x8100).vlan(200, 0x0800).ipv4(kA, kB, kProtoUdp, 28 + 4).udp(53, 5353, 12);
  f.zeros(4);
  ParsedPacket p;
  ASSERT_EQ(parse_packet(f.span(), LinkType::kEthernet, p), ParseOutcome::kOk);
  EXPECT_EQ(p.vlan, (100u << 12) | 200u);
  EXPECT_EQ(p.l3_offset, 22);
  EXPECT_EQ(p.src_port, 53);
  EXPECT_EQ(p.payload_len, 4);
  Frame g;
  g.eth(0x8100).vlan(7, 0x86DD).ipv6(1, 2, kProtoUdp, 8).udp(1, 2, 8);
  ASSERT_EQ(parse_packet(g.span(), LinkType::kEthernet, p), ParseOutcome::kOk);
  EXPECT_EQ(p.vlan, 7u << 12);
  EXPECT_EQ(p.ip_version, 6);
}

TEST(Parse, TooManyVlanTagsIsMalformed) {
  Frame f;
  f.eth(0x8100);
  for (int i = 0; i < 5; ++i) f.vlan(1, 0x8100);
  f.zeros(40);
  ParsedPacket p;
  EXPECT_EQ(parse_packet(f.span(), LinkType::kEthernet, p), ParseOutcome::kMalformedL3);
}

TEST(Parse, Ipv4Options) {
  Frame f;
  f.eth(0x0800).ipv4(kA, kB, kProtoTcp, 24 + 20 + 10, /*ihl_words=*/6).tcp(1, 2);
  f.zeros(10);
  ParsedPacket p;
  ASSERT_EQ(parse_packet(f.span(), LinkType::kEthernet, p), ParseOutcome::kOk);
  EXPECT_EQ(p.ip_payload_len, 30u);
  EXPECT_EQ(p.l4_offset, 14 + 24);
  EXPECT_EQ(p.payload_len, 10);
}

TEST(Parse, Ipv4Fragments) {
  Frame first;
  first.eth(0x0800).ipv4(kA, kB, kProtoUdp, 20 + 8 + 16, 5, /*MF*/ 0x2000).udp(1000, 2000, 100);
  first.zeros(16);
  ParsedPacket p;
  ASSERT_EQ(parse_packet(first.span(), LinkType::kEthernet, p), ParseOutcome::kOk);
  EXPECT_TRUE(p.flags & packet_flag::kFragment);
  EXPECT_FALSE(p.flags & packet_flag::kLaterFragment);
  EXPECT_EQ(p.src_port, 1000);
  Frame later;
  later.eth(0x0800).ipv4(kA, kB, kProtoUdp, 20 + 24, 5, /*offset 3*8*/ 3);
  later.zeros(24);
  ASSERT_EQ(parse_packet(later.span(), LinkType::kEthernet, p), ParseOutcome::kOk);
  EXPECT_TRUE(p.flags & packet_flag::kLaterFragment);
  EXPECT_EQ(p.src_port, 0);
  EXPECT_EQ(p.ip_payload_len, 24u);
}

TEST(Parse, Ipv6ExtensionHeadersSkipped) {
  // hop-by-hop (8 bytes) -> destination options (16 bytes) -> TCP
  Frame f;
  f.eth(0x86DD).ipv6(1, 2, /*hop-by-hop*/ 0, 8 + 16 + 20 + 5);
  f.u8(60).u8(0).zeros(6);          // HBH: next=dest opts, len 0 (8 bytes)
  f.u8(kProtoTcp).u8(1).zeros(14);  // DST: next=TCP, len 1 (16 bytes)
  f.tcp(443, 50000);
  f.zeros(5);
  ParsedPacket p;
  ASSERT_EQ(parse_packet(f.span(), LinkType::kEthernet, p), ParseOutcome::kOk);
  EXPECT_EQ(p.l4_proto, kProtoTcp);
  EXPECT_EQ(p.ip_payload_len, 49u);  // IPv6 payload length, extension headers included
  EXPECT_EQ(p.l4_offset, 14 + 40 + 24);
  EXPECT_EQ(p.src_port, 443);
  EXPECT_EQ(p.payload_len, 5);
  EXPECT_EQ(p.l4_len_claimed, 5u);
}

TEST(Parse, Ipv6LaterFragmentHasNoPorts) {
  Frame f;
  f.eth(0x86DD).ipv6(1, 2, /*fragment*/ 44, 8 + 32);
  f.u8(kProtoUdp).u8(0).u16(0x0100 /*offset 32*/).u32(77);
  f.zeros(32);
  ParsedPacket p;
  ASSERT_EQ(parse_packet(f.span(), LinkType::kEthernet, p), ParseOutcome::kOk);
  EXPECT_TRUE(p.flags & packet_flag::kLaterFragment);
  EXPECT_EQ(p.l4_proto, kProtoUdp);
  EXPECT_EQ(p.src_port, 0);
}

TEST(Parse, NonIp) {
  Frame arp;
  arp.eth(0x0806).zeros(28);
  ParsedPacket p;
  EXPECT_EQ(parse_packet(arp.span(), LinkType::kEthernet, p), ParseOutcome::kNonIp);
  Frame llc;  // 802.3 length field instead of an ethertype
  llc.eth(0x0026).zeros(38);
  EXPECT_EQ(parse_packet(llc.span(), LinkType::kEthernet, p), ParseOutcome::kNonIp);
}

TEST(Parse, MalformedIpv4) {
  ParsedPacket p;
  Frame bad_ihl;
  bad_ihl.eth(0x0800).ipv4(kA, kB, kProtoTcp, 40, /*ihl*/ 4);
  bad_ihl.zeros(30);
  EXPECT_EQ(parse_packet(bad_ihl.span(), LinkType::kEthernet, p), ParseOutcome::kMalformedL3);
  Frame short_total;
  short_total.eth(0x0800).ipv4(kA, kB, kProtoTcp, /*total < ihl*/ 10);
  short_total.zeros(20);
  EXPECT_EQ(parse_packet(short_total.span(), LinkType::kEthernet, p), ParseOutcome::kMalformedL3);
  Frame wrong_version;
  wrong_version.eth(0x0800).ipv6(1, 2, kProtoTcp, 0);
  EXPECT_EQ(parse_packet(wrong_version.span(), LinkType::kEthernet, p), ParseOutcome::kMalformedL3);
}

TEST(Parse, SnaplenTruncatedPayloadStillCountsIpLength) {
  Frame f = tcp4_frame(1000);
  ParsedPacket p;
  ASSERT_EQ(parse_packet(f.prefix(96), LinkType::kEthernet, p), ParseOutcome::kOk);
  EXPECT_EQ(p.ip_payload_len, 1020u);
  EXPECT_TRUE(p.flags & packet_flag::kPayloadTruncated);
  EXPECT_EQ(p.payload_len, 96 - 54);
  EXPECT_EQ(p.l4_len_claimed, 1000u);
}

TEST(Parse, TcpHeaderCutBySnaplen) {
  Frame f = tcp4_frame(0);
  ParsedPacket p;
  ASSERT_EQ(parse_packet(f.prefix(14 + 20 + 10), LinkType::kEthernet, p), ParseOutcome::kOk);
  EXPECT_TRUE(p.flags & packet_flag::kL4Truncated);
  EXPECT_EQ(p.src_port, 0);
  EXPECT_EQ(p.payload_len, 0);
}

TEST(Parse, TcpDataOffsetLies) {
  Frame f;
  f.eth(0x0800).ipv4(kA, kB, kProtoTcp, 40).tcp(1, 2, 0, 0, 0x10, /*data_words*/ 15);
  ParsedPacket p;
  ASSERT_EQ(parse_packet(f.prefix(14 + 40), LinkType::kEthernet, p), ParseOutcome::kOk);
  EXPECT_TRUE(p.flags & packet_flag::kTcpOptionsBad);
  EXPECT_EQ(p.payload_len, 0);
  EXPECT_EQ(p.src_port, 1);
}

TEST(Parse, EveryCutOfEveryFrameIsCountedNeverACrash) {
  std::vector<Frame> frames;
  frames.push_back(tcp4_frame(30));
  Frame q;
  q.eth(0x88A8).vlan(1, 0x8100).vlan(2, 0x86DD).ipv6(1, 2, 0, 8 + 8 + 3);
  q.u8(kProtoUdp).u8(0).zeros(6).udp(1, 2, 11).zeros(3);
  frames.push_back(q);
  for (const Frame& f : frames) {
    for (size_t n = 0; n <= f.size(); ++n) {
      ParsedPacket p;
      ParseOutcome o = parse_packet(f.prefix(n), LinkType::kEthernet, p);
      ASSERT_LT(static_cast<int>(o), static_cast<int>(ParseOutcome::kCount));
      if (o == ParseOutcome::kOk) {
        EXPECT_LE(size_t{p.payload_offset} + p.payload_len, n) << "cut " << n;
      }
    }
  }
}

TEST(Parse, OtherLinkTypes) {
  Frame ip;  // bare IPv4/UDP
  ip.ipv4(kA, kB, kProtoUdp, 28).udp(5, 6, 8);
  ParsedPacket p;
  ASSERT_EQ(parse_packet(ip.span(), LinkType::kRaw, p), ParseOutcome::kOk);
  EXPECT_EQ(p.l3_offset, 0);
  EXPECT_EQ(p.src_port, 5);

  Frame sll;  // Linux cooked v1: 16 bytes, protocol last
  sll.u16(0).u16(1).u16(6).zeros(8).u16(0x0800);
  sll.raw().insert(sll.raw().end(), ip.raw().begin(), ip.raw().end());
  ASSERT_EQ(parse_packet(sll.span(), LinkType::kLinuxSll, p), ParseOutcome::kOk);
  EXPECT_EQ(p.l3_offset, 16);

  Frame sll2;  // Linux cooked v2: 20 bytes, protocol first
  sll2.u16(0x86DD).u16(0).u32(2).u16(1).u8(0).u8(6).zeros(8);
  sll2.ipv6(1, 2, kProtoUdp, 8).udp(7, 8, 8);
  ASSERT_EQ(parse_packet(sll2.span(), LinkType::kLinuxSll2, p), ParseOutcome::kOk);
  EXPECT_EQ(p.l3_offset, 20);
  EXPECT_EQ(p.ip_version, 6);

  Frame null_le;  // DLT_NULL from a little-endian host, AF_INET
  null_le.bytes({2, 0, 0, 0});
  null_le.raw().insert(null_le.raw().end(), ip.raw().begin(), ip.raw().end());
  ASSERT_EQ(parse_packet(null_le.span(), LinkType::kNull, p), ParseOutcome::kOk);
  EXPECT_EQ(p.l3_offset, 4);
  // DLT_LOOP is network order only: the little-endian form is not AF_INET.
  EXPECT_EQ(parse_packet(null_le.span(), LinkType::kLoop, p), ParseOutcome::kNonIp);

  Frame loop6;  // DLT_LOOP, AF_INET6 (BSD 24), network order
  loop6.u32(24).ipv6(1, 2, kProtoUdp, 8).udp(1, 2, 8);
  ASSERT_EQ(parse_packet(loop6.span(), LinkType::kLoop, p), ParseOutcome::kOk);
  EXPECT_EQ(p.ip_version, 6);

  Frame raw_junk;
  raw_junk.bytes({0x12, 0x34});
  EXPECT_EQ(parse_packet(raw_junk.span(), LinkType::kRaw, p), ParseOutcome::kNonIp);
}

TEST(Parse, MplsAndPppoe) {
  Frame mpls;
  mpls.eth(0x8847).u32(0x00010000 /*label 16, not bottom*/).u32(0x00011100 /*bottom*/);
  mpls.ipv4(kA, kB, kProtoUdp, 28).udp(1, 2, 8);
  ParsedPacket p;
  ASSERT_EQ(parse_packet(mpls.span(), LinkType::kEthernet, p), ParseOutcome::kOk);
  EXPECT_EQ(p.l3_offset, 22);
  Frame pppoe;
  pppoe.eth(0x8864).u8(0x11).u8(0).u16(1).u16(30).u16(0x0021);
  pppoe.ipv4(kA, kB, kProtoUdp, 28).udp(1, 2, 8);
  ASSERT_EQ(parse_packet(pppoe.span(), LinkType::kEthernet, p), ParseOutcome::kOk);
  EXPECT_EQ(p.l3_offset, 22);
}

// Without clang: the fuzz target's invariants (offsets and lengths inside the frame; a failure aborts) over
// its seed frames (tunnels of every kind, plain TCP), 300 mutations of each and random frames of every link
// type. scripts/fuzz-decoders.sh runs it under ASan and UBSan.
TEST(ParseFuzzReplay, SeedsMutationsAndRandomFramesStayInsideTheFrame) {
  std::vector<std::string> seeds;
  for (const auto& e : std::filesystem::directory_iterator(std::string(SPANFEED_TEST_DATA) + "/../core/corpus/packet")) {
    std::ifstream in(e.path(), std::ios::binary);
    seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ASSERT_EQ(seeds.size(), 36u);
  const auto run = [](const std::string& s) { spanfeed_fuzz_packet(reinterpret_cast<const uint8_t*>(s.data()), s.size()); };
  std::mt19937 rng(12345);
  for (const std::string& seed : seeds) {
    run(seed);
    for (int m = 0; m < 300; ++m) {
      std::string s = seed;
      const int kind = static_cast<int>(rng() % 3);
      if (kind == 0) {
        for (int k = 0; k < 4; ++k) s[1 + rng() % (s.size() - 1)] = static_cast<char>(rng());
      } else if (kind == 1) {
        s.resize(1 + rng() % (s.size() - 1));
      } else {
        s[0] = static_cast<char>(rng());  // another link type and decap setting for the same bytes
      }
      run(s);
    }
  }
  for (int i = 0; i < 3000; ++i) {
    std::string s(1 + rng() % 200, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    run(s);
  }
}

}  // namespace
}  // namespace spanfeed
