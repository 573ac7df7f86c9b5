// Unit tests for decapsulation in parse_packet: every tunnel kind to the
// inner offsets and addresses, the tunnel summary and flow-key identity, the
// depth limit, malformed headers, configured ports, and every cut of every
// tunnelled frame (a counted outcome, never a crash or an out-of-bounds read).
#include <gtest/gtest.h>

#include <vector>

#include "frame_builder.h"
#include "spanfeed/flow_hash.h"
#include "spanfeed/packet.h"

namespace spanfeed {
namespace {

using test::Frame;

constexpr uint32_t kIn1 = 0x0a000001;   // 10.0.0.1: inner client
constexpr uint32_t kIn2 = 0x0a000002;
constexpr uint32_t kOut1 = 0xc0000201;  // 192.0.2.1: tunnel endpoints
constexpr uint32_t kOut2 = 0xc0000202;

// Inner Ethernet/IPv4/TCP 40000 -> 80 with 10 payload bytes.
Frame inner_eth() {
  Frame f;
  f.eth(0x0800).ipv4(kIn1, kIn2, kProtoTcp, 20 + 20 + 10).tcp(40000, 80);
  f.zeros(10);
  return f;
}

// The inner frame without its Ethernet header (starts at IPv4).
Frame inner_ip() {
  Frame f;
  f.ipv4(kIn1, kIn2, kProtoTcp, 20 + 20 + 10).tcp(40000, 80);
  f.zeros(10);
  return f;
}

Frame& append(Frame& f, const Frame& tail) {
  for (std::byte b : tail.span()) f.u8(static_cast<uint8_t>(b));
  return f;
}

// Outer Ethernet/IPv4 carrying `proto` with `body` as its payload.
Frame outer4(uint8_t proto, const Frame& body) {
  Frame f;
  f.eth(0x0800).ipv4(kOut1, kOut2, proto, static_cast<uint16_t>(20 + body.size()));
  return append(f, body);
}

Frame outer_udp(uint16_t dport, const Frame& body) {
  Frame u;
  u.udp(49152, dport, static_cast<uint16_t>(8 + body.size()));
  append(u, body);
  return outer4(kProtoUdp, u);
}

Frame vxlan(const Frame& inner, uint32_t vni, uint16_t port = 4789, uint8_t flags = 0x08) {
  Frame h;
  h.u8(flags).zeros(3).u32(vni << 8);
  return outer_udp(port, append(h, inner));
}

Frame gre(uint16_t flags, uint16_t proto, const std::vector<uint32_t>& words, const Frame& payload) {
  Frame g;
  g.u16(flags).u16(proto);
  for (uint32_t w : words) g.u32(w);
  return outer4(47, append(g, payload));
}

void expect_inner(const ParsedPacket& p) {
  EXPECT_EQ(p.ip_version, 4);
  EXPECT_EQ(p.src.bytes[0], 10);
  EXPECT_EQ(p.src.bytes[3], 1);
  EXPECT_EQ(p.dst.bytes[3], 2);
  EXPECT_EQ(p.src_port, 40000);
  EXPECT_EQ(p.dst_port, 80);
  EXPECT_EQ(p.l4_proto, kProtoTcp);
  EXPECT_EQ(p.payload_len, 10);
}

void expect_outer(const TunnelInfo& t) {
  EXPECT_EQ(t.outer_ip_version, 4);
  EXPECT_EQ(t.outer_src.bytes[0], 192);
  EXPECT_EQ(t.outer_src.bytes[3], 1);
  EXPECT_EQ(t.outer_dst.bytes[3], 2);
}

ParsedPacket parse_ok(const Frame& f, const DecapConfig& cfg = {}) {
  ParsedPacket p;
  EXPECT_EQ(parse_packet(f.span(), LinkType::kEthernet, p, cfg), ParseOutcome::kOk);
  return p;
}

TEST(Decap, Vxlan) {
  Frame f = vxlan(inner_eth(), 5001);
  ParsedPacket p = parse_ok(f);
  expect_inner(p);
  EXPECT_EQ(p.tunnel.type, TunnelType::kVxlan);
  EXPECT_EQ(p.tunnel.id, 5001u);
  EXPECT_EQ(p.tunnel.has_id, 1);
  EXPECT_EQ(p.tunnel.depth, 1);
  EXPECT_EQ(p.tunnel.layers[0], TunnelType::kVxlan);
  EXPECT_EQ(p.tunnel.key_type, TunnelType::kVxlan);
  EXPECT_EQ(p.tunnel.key_id, 5001u);
  expect_outer(p.tunnel);
  // 14 outer eth + 20 IP + 8 UDP + 8 VXLAN + 14 inner eth
  EXPECT_EQ(p.l3_offset, 64);
  EXPECT_EQ(p.payload_offset, 64 + 40);
}

TEST(Decap, VxlanWithoutIFlagIsMalformed) {
  Frame f = vxlan(inner_eth(), 1, 4789, 0x00);
  ParsedPacket p;
  EXPECT_EQ(parse_packet(f.span(), LinkType::kEthernet, p), ParseOutcome::kTunnelMalformed);
}

TEST(Decap, PortsAreConfigurable) {
  Frame f = vxlan(inner_eth(), 7, 58678);
  ParsedPacket p = parse_ok(f);
  EXPECT_EQ(p.tunnel.depth, 0);  // not a VXLAN port: an ordinary UDP packet
  EXPECT_EQ(p.dst_port, 58678);
  DecapConfig cfg;
  cfg.vxlan_ports[1] = 58678;
  p = parse_ok(f, cfg);
  expect_inner(p);
  EXPECT_EQ(p.tunnel.type, TunnelType::kVxlan);
  EXPECT_EQ(p.tunnel.id, 7u);
}

TEST(Decap, DisabledLeavesTheOuterPacket) {
  DecapConfig cfg;
  cfg.enabled = false;
  ParsedPacket p = parse_ok(vxlan(inner_eth(), 1), cfg);
  EXPECT_EQ(p.tunnel.depth, 0);
  EXPECT_EQ(p.dst_port, 4789);
}

TEST(Decap, GreKeyedSequencedWithChecksumCarryingIpv4) {
  Frame f = gre(0x8000 | 0x2000 | 0x1000, 0x0800, {0, 0xABCD, 5}, inner_ip());
  ParsedPacket p = parse_ok(f);
  expect_inner(p);
  EXPECT_EQ(p.tunnel.type, TunnelType::kGre);
  EXPECT_EQ(p.tunnel.id, 0xABCDu);
  EXPECT_EQ(p.tunnel.has_id, 1);
  EXPECT_EQ(p.l3_offset, 14 + 20 + 16);
}

TEST(Decap, GrePlainTebAndMpls) {
  ParsedPacket p = parse_ok(gre(0, 0x6558, {}, inner_eth()));
  expect_inner(p);
  EXPECT_EQ(p.tunnel.type, TunnelType::kGre);
  EXPECT_EQ(p.tunnel.has_id, 0);
  Frame mpls;
  mpls.u32((1000u << 12) | 0x100u | 64u);
  append(mpls, inner_ip());
  p = parse_ok(gre(0, 0x8847, {}, mpls));
  expect_inner(p);
  EXPECT_EQ(p.l3_offset, 14 + 20 + 4 + 4);
}

TEST(Decap, GreRoutingBitIsMalformedAndPptpIsLeftAlone) {
  ParsedPacket p;
  EXPECT_EQ(parse_packet(gre(0x4000, 0x0800, {0}, inner_ip()).span(), LinkType::kEthernet, p),
            ParseOutcome::kTunnelMalformed);
  // Version 1 (PPTP's enhanced GRE carries PPP): delivered as the outer packet.
  p = parse_ok(gre(0x2001, 0x880B, {0}, inner_ip()));
  EXPECT_EQ(p.tunnel.depth, 0);
  EXPECT_EQ(p.l4_proto, 47);
}

TEST(Decap, ErspanTypes) {
  ParsedPacket p = parse_ok(gre(0, 0x88BE, {}, inner_eth()));
  expect_inner(p);
  EXPECT_EQ(p.tunnel.type, TunnelType::kErspan1);
  EXPECT_EQ(p.tunnel.has_id, 0);

  Frame h2;  // version 1, VLAN 100, session 7
  h2.u16(0x1000 | 100).u16(7).u32(0);
  append(h2, inner_eth());
  p = parse_ok(gre(0x1000, 0x88BE, {1}, h2));
  expect_inner(p);
  EXPECT_EQ(p.tunnel.type, TunnelType::kErspan2);
  EXPECT_EQ(p.tunnel.id, 7u);

  Frame h3;  // version 2, session 9, O bit: platform subheader
  h3.u16(0x2000 | 100).u16(9).u32(123).u16(0).u16(1).u32(0).u32(0);
  append(h3, inner_eth());
  p = parse_ok(gre(0x1000, 0x22EB, {1}, h3));
  expect_inner(p);
  EXPECT_EQ(p.tunnel.type, TunnelType::kErspan3);
  EXPECT_EQ(p.tunnel.id, 9u);

  Frame bad;  // type II header claiming version 2
  bad.u16(0x2000).u16(7).u32(0);
  append(bad, inner_eth());
  EXPECT_EQ(parse_packet(gre(0x1000, 0x88BE, {1}, bad).span(), LinkType::kEthernet, p),
            ParseOutcome::kTunnelMalformed);
}

TEST(Decap, GeneveWithOptions) {
  Frame g;
  g.u8(2).u8(0).u16(0x6558).u32(77u << 8).u32(0x01028001).u32(0xDEADBEEF);
  append(g, inner_eth());
  ParsedPacket p = parse_ok(outer_udp(6081, g));
  expect_inner(p);
  EXPECT_EQ(p.tunnel.type, TunnelType::kGeneve);
  EXPECT_EQ(p.tunnel.id, 77u);
}

TEST(Decap, VxlanGpeWithNsh) {
  Frame g;
  g.u8(0x0C).u8(0).u8(0).u8(4).u32(9u << 8);   // GPE: next protocol NSH
  g.u8(0x0F).u8(0x02).u8(0x02).u8(0x01).u32(0);  // NSH: 2 words, next protocol IPv4
  append(g, inner_ip());
  ParsedPacket p = parse_ok(outer_udp(4790, g));
  expect_inner(p);
  EXPECT_EQ(p.tunnel.type, TunnelType::kVxlanGpe);
  EXPECT_EQ(p.tunnel.id, 9u);
  Frame bad;
  bad.u8(0x0C).u8(0).u8(0).u8(4).u32(0).u8(0).u8(0x00).u8(2).u8(1).u32(0);  // NSH length 0
  EXPECT_EQ(parse_packet(outer_udp(4790, bad).span(), LinkType::kEthernet, p), ParseOutcome::kTunnelMalformed);
}

TEST(Decap, IpInIpBothVersions) {
  ParsedPacket p = parse_ok(outer4(4, inner_ip()));
  expect_inner(p);
  EXPECT_EQ(p.tunnel.type, TunnelType::kIpInIp);
  EXPECT_EQ(p.tunnel.has_id, 0);
  Frame f6;
  f6.eth(0x86DD).ipv6(1, 2, 4, static_cast<uint16_t>(inner_ip().size()));
  append(f6, inner_ip());
  p = parse_ok(f6);
  expect_inner(p);
  EXPECT_EQ(p.tunnel.outer_ip_version, 6);
  Frame in6;  // IPv6 in IPv4
  in6.ipv6(3, 4, kProtoUdp, 8 + 4).udp(1000, 53, 12).zeros(4);
  p = parse_ok(outer4(41, in6));
  EXPECT_EQ(p.ip_version, 6);
  EXPECT_EQ(p.dst_port, 53);
  EXPECT_EQ(p.tunnel.outer_ip_version, 4);
}

TEST(Decap, NestedUpToTheDepthLimit) {
  // VXLAN inside ERSPAN I inside GRE-TEB: depth 3 passes, a fourth layer does not.
  Frame three = gre(0, 0x6558, {}, gre(0, 0x88BE, {}, vxlan(inner_eth(), 42)));
  ParsedPacket p = parse_ok(three);
  expect_inner(p);
  EXPECT_EQ(p.tunnel.depth, 3);
  EXPECT_EQ(p.tunnel.layers[0], TunnelType::kGre);
  EXPECT_EQ(p.tunnel.layers[1], TunnelType::kErspan1);
  EXPECT_EQ(p.tunnel.layers[2], TunnelType::kVxlan);
  EXPECT_EQ(p.tunnel.type, TunnelType::kVxlan);  // the innermost is summarised
  EXPECT_EQ(p.tunnel.id, 42u);
  Frame three_ip;  // the same, one IP-in-IP layer further out
  for (std::byte b : three.span().subspan(14)) three_ip.u8(static_cast<uint8_t>(b));
  Frame four = outer4(4, three_ip);
  EXPECT_EQ(parse_packet(four.span(), LinkType::kEthernet, p), ParseOutcome::kTunnelTooDeep);
  DecapConfig deep;
  deep.max_depth = 4;
  p = parse_ok(four, deep);
  EXPECT_EQ(p.tunnel.depth, 4);
  DecapConfig shallow;
  shallow.max_depth = 1;
  EXPECT_EQ(parse_packet(vxlan(vxlan(inner_eth(), 1), 2).span(), LinkType::kEthernet, p, shallow),
            ParseOutcome::kTunnelTooDeep);
}

TEST(Decap, TwoVnisAreTwoFlowsUnlessTheKeyLeavesThemOut) {
  ParsedPacket a = parse_ok(vxlan(inner_eth(), 100));
  ParsedPacket b = parse_ok(vxlan(inner_eth(), 200));
  EXPECT_NE(a.tunnel.key_id, b.tunnel.key_id);
  EXPECT_NE(symmetric_flow_hash(a, true), symmetric_flow_hash(b, true));
  DecapConfig off;
  off.tunnel_in_flow_key = false;
  a = parse_ok(vxlan(inner_eth(), 100), off);
  b = parse_ok(vxlan(inner_eth(), 200), off);
  EXPECT_EQ(a.tunnel.key_type, TunnelType::kNone);
  EXPECT_EQ(a.tunnel.id, 100u);  // still summarised for records
  EXPECT_EQ(symmetric_flow_hash(a, true), symmetric_flow_hash(b, true));
  // A bare packet hashes as it always did (no tunnel bits mixed in).
  ParsedPacket bare = parse_ok(inner_eth());
  EXPECT_EQ(symmetric_flow_hash(bare, true), symmetric_flow_hash(a, true));
}

TEST(Decap, InnerFragmentIsHashedOnInnerAddresses) {
  Frame frag;
  frag.eth(0x0800).ipv4(kIn1, kIn2, kProtoUdp, 20 + 16, 5, 0x2000).udp(5353, 53, 100).zeros(8);
  ParsedPacket p = parse_ok(vxlan(frag, 3));
  EXPECT_TRUE(p.flags & packet_flag::kFragment);
  EXPECT_EQ(p.tunnel.depth, 1);
  EXPECT_EQ(p.src.bytes[0], 10);
  // A fragmented outer packet is not decapsulated here: the worker does it after reassembly.
  Frame outer_frag;
  outer_frag.eth(0x0800).ipv4(kOut1, kOut2, kProtoUdp, 20 + 16, 5, 0x2000).udp(1, 4789, 200).zeros(8);
  p = parse_ok(outer_frag);
  EXPECT_EQ(p.tunnel.depth, 0);
  EXPECT_TRUE(p.flags & packet_flag::kFragment);
}

TEST(Decap, EthernetPaddingAfterTheOuterDatagramIsNotInner) {
  // A short tunnelled packet padded to 60+ bytes by the outer Ethernet: the
  // inner IP's length is checked against the outer datagram, not the frame.
  Frame in;
  in.ipv4(kIn1, kIn2, kProtoUdp, 28).udp(1, 2, 8);
  Frame f = outer4(4, in);
  f.zeros(20);
  ParsedPacket p = parse_ok(f);
  EXPECT_EQ(p.payload_len, 0);
  EXPECT_FALSE(p.flags & packet_flag::kPayloadTruncated);
}

TEST(Decap, EveryCutOfEveryTunnelIsCountedNeverACrash) {
  std::vector<Frame> frames = {vxlan(inner_eth(), 1), gre(0x3000, 0x6558, {1, 2}, inner_eth())};
  Frame h3;
  h3.u16(0x2000).u16(9).u32(0).u16(0).u16(1).u32(0).u32(0);
  append(h3, inner_eth());
  frames.push_back(gre(0x1000, 0x22EB, {1}, h3));
  Frame g;
  g.u8(0x0C).u8(0).u8(0).u8(4).u32(0).u8(0x0F).u8(0x06).u8(0x02).u8(0x01).zeros(20);
  append(g, inner_ip());
  frames.push_back(outer_udp(4790, g));
  for (const Frame& f : frames) {
    for (size_t n = 0; n <= f.size(); ++n) {
      // Copy the cut so that a read past it is caught by ASan builds.
      std::vector<std::byte> cut(f.span().begin(), f.span().begin() + static_cast<long>(n));
      ParsedPacket p;
      ParseOutcome o = parse_packet(cut, LinkType::kEthernet, p);
      ASSERT_LT(static_cast<int>(o), static_cast<int>(ParseOutcome::kCount));
      if (o == ParseOutcome::kOk) {
        EXPECT_LE(size_t{p.payload_offset} + p.payload_len, n) << "cut " << n;
      }
    }
  }
}

}  // namespace
}  // namespace spanfeed
