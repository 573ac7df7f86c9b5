// L2-L4 frame parser over byte spans. Runs on RX lcores; no allocation, no
// exceptions; every read is bounds-checked against the captured length.
#include "spanfeed/packet.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "decap.h"

namespace spanfeed {
namespace {

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86DD;
constexpr uint16_t kEtherVlan = 0x8100;
constexpr uint16_t kEtherQinQ = 0x88A8;
constexpr uint16_t kEtherQinQOld = 0x9100;
constexpr uint16_t kEtherMplsUc = 0x8847;
constexpr uint16_t kEtherMplsMc = 0x8848;
constexpr uint16_t kEtherPppoeSession = 0x8864;
constexpr int kMaxVlanTags = 4;    // QinQ is 2; more is almost certainly garbage
constexpr int kMaxMplsLabels = 8;  // bound the loop on hostile stacks
constexpr int kMaxIpv6ExtHeaders = 8;

inline uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t rd32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// Outcome of L2 parsing: either the offset of an IP header with its version,
// or a terminal outcome.
struct L2Result {
  ParseOutcome outcome;
  size_t l3_offset;
  uint8_t ip_version;  // 4 or 6, 0 when unknown
  uint32_t vlan;
};

uint8_t version_from_ethertype(uint16_t et) {
  if (et == kEtherIpv4) return 4;
  if (et == kEtherIpv6) return 6;
  return 0;
}

// Handles VLAN/QinQ, MPLS and PPPoE given the link layer's ethertype `et`
// and the offset `off` of the bytes that follow it.
L2Result parse_ethertype_chain(const uint8_t* d, size_t len, uint16_t et, size_t off) {
  L2Result r{ParseOutcome::kOk, 0, 0, 0};
  int tags = 0;
  while (et == kEtherVlan || et == kEtherQinQ || et == kEtherQinQOld) {
    if (++tags > kMaxVlanTags) return {ParseOutcome::kMalformedL3, 0, 0, 0};
    if (off + 4 > len) return {ParseOutcome::kTruncatedL2, 0, 0, 0};
    uint32_t vid = rd16(d + off) & 0x0FFFu;
    if (tags == 1) r.vlan = vid << 12; else if (tags == 2) r.vlan |= vid;
    et = rd16(d + off + 2);
    off += 4;
  }
  if (et == kEtherMplsUc || et == kEtherMplsMc) {
    for (int i = 0;; ++i) {
      if (i >= kMaxMplsLabels) return {ParseOutcome::kNonIp, 0, 0, 0};
      if (off + 4 > len) return {ParseOutcome::kTruncatedL2, 0, 0, 0};
      bool bottom = d[off + 2] & 0x01;
      off += 4;
      if (bottom) break;
    }
    if (off + 1 > len) return {ParseOutcome::kTruncatedL2, 0, 0, 0};
    uint8_t v = d[off] >> 4;  // no ethertype after MPLS: guess from the nibble
    if (v != 4 && v != 6) return {ParseOutcome::kNonIp, 0, 0, 0};
    r.l3_offset = off;
    r.ip_version = v;
    return r;
  }
  if (et == kEtherPppoeSession) {
    if (off + 8 > len) return {ParseOutcome::kTruncatedL2, 0, 0, 0};
    uint16_t ppp = rd16(d + off + 6);
    off += 8;
    uint8_t v = ppp == 0x0021 ? 4 : ppp == 0x0057 ? 6 : 0;
    if (v == 0) return {ParseOutcome::kNonIp, 0, 0, 0};
    r.l3_offset = off;
    r.ip_version = v;
    return r;
  }
  r.ip_version = version_from_ethertype(et);
  if (r.ip_version == 0) return {ParseOutcome::kNonIp, 0, 0, 0};
  r.l3_offset = off;
  return r;
}

// BSD address families as written into DLT_NULL/DLT_LOOP headers by the
// various OSes (AF_INET6 differs: Linux 10, BSDs 24, FreeBSD 28, Darwin 30).
uint8_t version_from_af(uint32_t af) {
  if (af == 2) return 4;
  if (af == 10 || af == 24 || af == 28 || af == 30) return 6;
  return 0;
}

L2Result parse_l2(const uint8_t* d, size_t len, LinkType link) {
  switch (link) {
    case LinkType::kEthernet:
      if (len < 14) return {ParseOutcome::kTruncatedL2, 0, 0, 0};
      return parse_ethertype_chain(d, len, rd16(d + 12), 14);
    case LinkType::kLinuxSll:
      // 16 bytes: packet type, ARPHRD, addr len, 8-byte addr, protocol.
      if (len < 16) return {ParseOutcome::kTruncatedL2, 0, 0, 0};
      return parse_ethertype_chain(d, len, rd16(d + 14), 16);
    case LinkType::kLinuxSll2:
      // 20 bytes: protocol, reserved, ifindex, ARPHRD, type, addr len, addr.
      if (len < 20) return {ParseOutcome::kTruncatedL2, 0, 0, 0};
      return parse_ethertype_chain(d, len, rd16(d), 20);
    case LinkType::kNull:
    case LinkType::kLoop: {
      if (len < 4) return {ParseOutcome::kTruncatedL2, 0, 0, 0};
      uint32_t be = rd32(d);
      uint32_t le = uint32_t{d[0]} | uint32_t{d[1]} << 8 | uint32_t{d[2]} << 16 |
                    uint32_t{d[3]} << 24;
      // DLT_LOOP is network order; DLT_NULL is the writer's host order, which
      // we cannot know, so accept either (the values cannot collide).
      uint8_t v = version_from_af(be);
      if (v == 0 && link == LinkType::kNull) v = version_from_af(le);
      if (v == 0) return {ParseOutcome::kNonIp, 0, 0, 0};
      return {ParseOutcome::kOk, 4, v, 0};
    }
    case LinkType::kRaw: {
      if (len < 1) return {ParseOutcome::kTruncatedL2, 0, 0, 0};
      uint8_t v = d[0] >> 4;
      if (v != 4 && v != 6) return {ParseOutcome::kNonIp, 0, 0, 0};
      return {ParseOutcome::kOk, 0, v, 0};
    }
  }
  return {ParseOutcome::kNonIp, 0, 0, 0};
}

// memset(&p, 0, 128) as two 64-byte halves: the compiler writes each with four vector stores
// instead of calling memset (~45 instructions a packet on the RX lcore).
inline void clear(ParsedPacket& p) {
  static_assert(sizeof(ParsedPacket) == 128);
  auto* b = reinterpret_cast<unsigned char*>(&p);
  std::memset(b, 0, 64);
  std::memset(b + 64, 0, 64);
}

bool is_ipv6_ext_header(uint8_t nh) {
  switch (nh) {
    case 0:    // hop-by-hop options
    case 43:   // routing
    case 44:   // fragment
    case 60:   // destination options
    case 51:   // authentication header
    case 135:  // mobility
    case 139:  // HIP
    case 140:  // shim6
      return true;
    default:
      return false;
  }
}

// Parses TCP/UDP at l4_off; fills ports, payload bounds and TCP fields.
[[gnu::always_inline]] inline void parse_l4(const uint8_t* d, size_t len, size_t l4_off, size_t l4_end, ParsedPacket& out) {
  out.l4_offset = static_cast<uint16_t>(l4_off);
  // l4_end: where the IP datagram ends within the captured frame.
  if (out.l4_proto == kProtoTcp) {
    if (l4_off + 20 > l4_end) {
      out.flags |= packet_flag::kL4Truncated;
      out.l4_offset = 0;
      return;
    }
    const uint8_t* t = d + l4_off;
    out.src_port = rd16(t);
    out.dst_port = rd16(t + 2);
    out.tcp_seq = rd32(t + 4);
    out.tcp_ack = rd32(t + 8);
    size_t doff = static_cast<size_t>(t[12] >> 4) * 4;
    out.tcp_flags = t[13];
    out.tcp_window = rd16(t + 14);
    if (doff < 20 || l4_off + doff > l4_end) {
      // Header length lies: keep the ports (they are valid) but no payload.
      out.flags |= packet_flag::kTcpOptionsBad;
      out.l4_len_claimed = 0;
      return;
    }
    size_t claimed_tcp = out.ip_payload_len;  // L4 segment length per IP header
    out.l4_len_claimed = claimed_tcp >= doff ? static_cast<uint32_t>(claimed_tcp - doff) : 0;
    out.payload_offset = static_cast<uint16_t>(l4_off + doff);
    out.payload_len = static_cast<uint16_t>(l4_end - (l4_off + doff));
  } else if (out.l4_proto == kProtoUdp) {
    if (l4_off + 8 > l4_end) {
      out.flags |= packet_flag::kL4Truncated;
      out.l4_offset = 0;
      return;
    }
    const uint8_t* u = d + l4_off;
    out.src_port = rd16(u);
    out.dst_port = rd16(u + 2);
    size_t udp_len = rd16(u + 4);
    size_t claimed = out.ip_payload_len;
    if (udp_len >= 8 && udp_len < claimed) claimed = udp_len;  // trailing junk
    out.l4_len_claimed = static_cast<uint32_t>(claimed >= 8 ? claimed - 8 : 0);
    out.payload_offset = static_cast<uint16_t>(l4_off + 8);
    size_t avail = l4_end - (l4_off + 8);
    out.payload_len = static_cast<uint16_t>(avail < out.l4_len_claimed ? avail : out.l4_len_claimed);
  } else {
    out.l4_offset = static_cast<uint16_t>(l4_off);
  }
  (void)len;
}

[[gnu::always_inline]] inline ParseOutcome parse_ipv4(const uint8_t* d, size_t len, size_t off, ParsedPacket& out) {
  if (off + 20 > len) return ParseOutcome::kTruncatedL3;
  const uint8_t* ip = d + off;
  if ((ip[0] >> 4) != 4) return ParseOutcome::kMalformedL3;
  size_t ihl = size_t{ip[0] & 0x0Fu} * 4;
  if (ihl < 20) return ParseOutcome::kMalformedL3;
  if (off + ihl > len) return ParseOutcome::kTruncatedL3;
  size_t total = rd16(ip + 2);
  if (total < ihl) return ParseOutcome::kMalformedL3;
  out.ip_version = 4;
  out.l3_offset = static_cast<uint16_t>(off);
  out.ip_payload_len = static_cast<uint32_t>(total - ihl);
  out.l4_proto = ip[9];
  std::memcpy(out.src.bytes, ip + 12, 4);
  std::memcpy(out.dst.bytes, ip + 16, 4);
  uint16_t frag = rd16(ip + 6);
  bool more = frag & 0x2000;
  uint16_t frag_off = frag & 0x1FFF;
  size_t end = off + total;
  if (end > len) {
    out.flags |= packet_flag::kPayloadTruncated;
    end = len;
  }
  if (more || frag_off != 0) {
    out.flags |= packet_flag::kFragment;
    if (frag_off != 0) {
      out.flags |= packet_flag::kLaterFragment;
      return ParseOutcome::kOk;
    }
  }
  parse_l4(d, len, off + ihl, end, out);
  return ParseOutcome::kOk;
}

ParseOutcome parse_ipv6(const uint8_t* d, size_t len, size_t off, ParsedPacket& out) {
  if (off + 40 > len) return ParseOutcome::kTruncatedL3;
  const uint8_t* ip = d + off;
  if ((ip[0] >> 4) != 6) return ParseOutcome::kMalformedL3;
  out.ip_version = 6;
  out.l3_offset = static_cast<uint16_t>(off);
  size_t plen = rd16(ip + 4);
  out.ip_payload_len = static_cast<uint32_t>(plen);
  std::memcpy(out.src.bytes, ip + 8, 16);
  std::memcpy(out.dst.bytes, ip + 24, 16);
  size_t end = off + 40 + plen;
  if (end > len) {
    out.flags |= packet_flag::kPayloadTruncated;
    end = len;
  }
  uint8_t nh = ip[6];
  size_t cur = off + 40;
  int n_ext = 0;
  while (is_ipv6_ext_header(nh)) {
    if (++n_ext > kMaxIpv6ExtHeaders) return ParseOutcome::kMalformedL3;
    if (cur + 8 > end) return ParseOutcome::kTruncatedL3;
    uint8_t next = d[cur];
    size_t hlen;
    if (nh == 44) {
      hlen = 8;
      uint16_t fo = rd16(d + cur + 2);
      out.flags |= packet_flag::kFragment;
      if ((fo & 0xFFF8) != 0) out.flags |= packet_flag::kLaterFragment;
    } else if (nh == 51) {
      hlen = (size_t{d[cur + 1]} + 2) * 4;
    } else {
      hlen = (size_t{d[cur + 1]} + 1) * 8;
    }
    if (cur + hlen > end) return ParseOutcome::kTruncatedL3;
    cur += hlen;
    nh = next;
  }
  out.l4_proto = nh;
  if (out.flags & packet_flag::kLaterFragment) return ParseOutcome::kOk;
  // ip_payload_len stays the IPv6 payload length (extension headers
  // included); the L4 claim excludes the extension headers.
  size_t ext = cur - (off + 40);
  uint32_t saved = out.ip_payload_len;
  out.ip_payload_len = plen >= ext ? static_cast<uint32_t>(plen - ext) : 0;
  parse_l4(d, len, cur, end, out);
  out.ip_payload_len = saved;
  return ParseOutcome::kOk;
}

// Ethernet, untagged IPv4 without options, not a fragment, TCP with its whole
// header captured: nearly every frame a SPAN port sees. Writes what the
// general path (parse_ipv4, parse_l4; TCP carries no tunnel) writes, with
// constant offsets, the header read before `out` is written (the stores
// could alias it) and no stack frame: ~60 instructions instead of ~130.
// False: not such a frame (or a rare case of one), `out` untouched.
[[gnu::always_inline]] inline bool parse_eth_ipv4_tcp(const uint8_t* d, size_t len, ParsedPacket& out) {
  if (len < 54 || rd16(d + 12) != kEtherIpv4 || d[14] != 0x45 || d[23] != kProtoTcp ||
      (rd16(d + 20) & 0x3FFFu) != 0) {
    return false;
  }
  const uint32_t total = rd16(d + 16);
  const uint32_t doff = static_cast<uint32_t>(d[46] >> 4) * 4;
  size_t end = 14 + size_t{total};
  uint8_t flags = 0;
  if (end > len) {
    flags = packet_flag::kPayloadTruncated;
    end = len;
  }
  // Shorter than its headers (malformed, truncated, options that lie): the general path.
  if (total < 20 + doff || doff < 20 || 34 + doff > end) return false;
  uint32_t src, dst;
  std::memcpy(&src, d + 26, 4);
  std::memcpy(&dst, d + 30, 4);
  const uint16_t sport = rd16(d + 34), dport = rd16(d + 36), window = rd16(d + 48);
  const uint32_t seq = rd32(d + 38), ack = rd32(d + 42);
  const uint8_t tcp_flags = d[47];
  clear(out);
  // Each address as one 16-byte store: the flow hash reads it right after in
  // 8-byte halves, which a load spanning a 4-byte and a zero store could not
  // take from the store buffer (a store-forwarding stall per packet).
  IpAddr a{};
  std::memcpy(a.bytes, &src, 4);
  out.src = a;
  std::memcpy(a.bytes, &dst, 4);
  out.dst = a;
  out.src_port = sport;
  out.dst_port = dport;
  out.ip_payload_len = total - 20;
  out.l3_offset = 14;
  out.l4_offset = 34;
  out.payload_offset = static_cast<uint16_t>(34 + doff);
  out.payload_len = static_cast<uint16_t>(end - (34 + doff));
  out.l4_len_claimed = total - 20 - doff;
  out.ip_version = 4;
  out.l4_proto = kProtoTcp;
  out.tcp_flags = tcp_flags;
  out.flags = flags;
  out.tcp_seq = seq;
  out.tcp_ack = ack;
  out.tcp_window = window;
  return true;
}

}  // namespace

std::string_view to_string(LinkType t) {
  switch (t) {
    case LinkType::kEthernet: return "ethernet";
    case LinkType::kLinuxSll: return "linux_sll";
    case LinkType::kLinuxSll2: return "linux_sll2";
    case LinkType::kNull: return "null";
    case LinkType::kLoop: return "loop";
    case LinkType::kRaw: return "raw";
  }
  return "unknown";
}

std::string_view to_string(ParseOutcome o) {
  switch (o) {
    case ParseOutcome::kOk: return "ok";
    case ParseOutcome::kNonIp: return "non_ip";
    case ParseOutcome::kTruncatedL2: return "truncated_l2";
    case ParseOutcome::kTruncatedL3: return "truncated_l3";
    case ParseOutcome::kMalformedL3: return "malformed_l3";
    case ParseOutcome::kTunnelTooDeep: return "tunnel_too_deep";
    case ParseOutcome::kTunnelMalformed: return "tunnel_malformed";
    case ParseOutcome::kCount: break;
  }
  return "unknown";
}

std::string_view to_string(TunnelType t) {
  switch (t) {
    case TunnelType::kNone: return "none";
    case TunnelType::kErspan1: return "erspan1";
    case TunnelType::kErspan2: return "erspan2";
    case TunnelType::kErspan3: return "erspan3";
    case TunnelType::kGre: return "gre";
    case TunnelType::kVxlan: return "vxlan";
    case TunnelType::kVxlanGpe: return "vxlan_gpe";
    case TunnelType::kGeneve: return "geneve";
    case TunnelType::kIpInIp: return "ipip";
    case TunnelType::kCount: break;
  }
  return "unknown";
}

size_t format_ip(const IpAddr& a, uint8_t ip_version, char* out, size_t out_len) {
  if (ip_version != 6 && out_len >= 16) {
    // Dotted quad by hand, as inet_ntop writes it (glibc's goes through sprintf: 1,800 instructions).
    char* p = out;
    for (int k = 0; k < 4; ++k) {
      unsigned v = a.bytes[k];
      if (v >= 100) {
        *p++ = static_cast<char>('0' + v / 100);
        v %= 100;
        *p++ = static_cast<char>('0' + v / 10);
      } else if (v >= 10) {
        *p++ = static_cast<char>('0' + v / 10);
      }
      *p++ = static_cast<char>('0' + v % 10);
      if (k != 3) *p++ = '.';
    }
    *p = '\0';
    return static_cast<size_t>(p - out);
  }
  if (inet_ntop(ip_version == 6 ? AF_INET6 : AF_INET, a.bytes, out,
                static_cast<socklen_t>(out_len)) == nullptr) {
    if (out_len > 0) out[0] = '\0';
    return 0;
  }
  return std::strlen(out);
}

ParseOutcome parse_packet(std::span<const std::byte> frame, LinkType link, ParsedPacket& out) {
  static const DecapConfig kDefaults;
  return parse_packet(frame, link, out, kDefaults);
}

namespace {
ParseOutcome parse_general(std::span<const std::byte> frame, LinkType link, ParsedPacket& out,
                           const DecapConfig& decap);
}  // namespace

ParseOutcome parse_packet(std::span<const std::byte> frame, LinkType link, ParsedPacket& out,
                          const DecapConfig& decap) {
  const auto* d = reinterpret_cast<const uint8_t*>(frame.data());
  if (link == LinkType::kEthernet && parse_eth_ipv4_tcp(d, frame.size(), out)) [[likely]] return ParseOutcome::kOk;
  return parse_general(frame, link, out, decap);
}

namespace {

// Every other frame: any link type, VLAN/MPLS/PPPoE, IPv6, options,
// fragments, UDP, tunnels. Out of line, so that the fast path above sets up
// no stack frame.
[[gnu::noinline]] ParseOutcome parse_general(std::span<const std::byte> frame, LinkType link, ParsedPacket& out,
                                             const DecapConfig& decap) {
  const auto* d = reinterpret_cast<const uint8_t*>(frame.data());
  size_t len = frame.size();
  // `out` is cleared below, once per IP layer; an L2 outcome other than kOk leaves it unspecified.
  L2Result l2;
  if (link == LinkType::kEthernet && len >= 14 && rd16(d + 12) == kEtherIpv4) [[likely]] {
    l2 = {ParseOutcome::kOk, 14, 4, 0};  // untagged IPv4: what parse_l2 finds, without the chain walk
  } else {
    l2 = parse_l2(d, len, link);
    if (l2.outcome != ParseOutcome::kOk) return l2.outcome;
  }
  TunnelInfo tunnel;
  tunnel.depth = 0;  // the rest is written with the first layer removed (and only read after it)
  for (;;) {
    // The IP header's own version nibble wins over what L2 announced; a
    // mismatch is a malformed packet.
    if (l2.l3_offset >= len) return ParseOutcome::kTruncatedL3;
    clear(out);
    out.vlan = l2.vlan;
    ParseOutcome o = l2.ip_version == 4 ? parse_ipv4(d, len, l2.l3_offset, out)
                                        : parse_ipv6(d, len, l2.l3_offset, out);
    if (tunnel.depth != 0) out.tunnel = tunnel;  // else it stays as cleared: a bare packet
    // A fragmented tunnel packet is reassembled on the worker, which parses
    // the whole datagram again from its IP header.
    if (o != ParseOutcome::kOk || !decap.enabled || (out.flags & packet_flag::kFragment)) return o;
    if (!detail::may_carry_tunnel(out.l4_proto)) [[likely]] return o;  // TCP: no tunnel to look for
    // Where the IP datagram ends in the frame: Ethernet padding after it is
    // no part of an inner packet.
    size_t end = out.ip_version == 4
        ? size_t{out.l3_offset} + ((d[out.l3_offset] & 0x0Fu) * 4u) + out.ip_payload_len
        : size_t{out.l3_offset} + 40 + out.ip_payload_len;
    end = std::min(end, len);
    detail::DecapStep st = detail::decap_step(d, end, out, decap);
    if (st.kind == detail::DecapKind::kNone) return ParseOutcome::kOk;
    if (st.kind == detail::DecapKind::kTruncated) return ParseOutcome::kTruncatedL3;
    if (st.kind == detail::DecapKind::kMalformed) return ParseOutcome::kTunnelMalformed;
    if (tunnel.depth >= decap.max_depth) return ParseOutcome::kTunnelTooDeep;
    if (tunnel.depth == 0) std::memset(&tunnel, 0, sizeof(tunnel));  // the first layer removed
    tunnel.layers[tunnel.depth++] = st.type;
    tunnel.type = st.type;
    tunnel.id = st.id;
    tunnel.has_id = st.has_id;
    tunnel.outer_src = out.src;
    tunnel.outer_dst = out.dst;
    tunnel.outer_ip_version = out.ip_version;
    if (decap.tunnel_in_flow_key) {
      tunnel.key_type = st.type;
      tunnel.key_id = st.id;
    }
    len = end;  // the inner packet lives inside the outer datagram
    switch (st.kind) {
      case detail::DecapKind::kEthernet:
        if (st.inner_offset + 14 > len) return ParseOutcome::kTruncatedL2;
        l2 = parse_ethertype_chain(d, len, rd16(d + st.inner_offset + 12), st.inner_offset + 14);
        break;
      case detail::DecapKind::kEthertype:
        l2 = parse_ethertype_chain(d, len, st.ethertype, st.inner_offset);
        break;
      default:
        l2 = {ParseOutcome::kOk, st.inner_offset, st.ip_version, 0};
        break;
    }
    if (l2.outcome != ParseOutcome::kOk) return l2.outcome;
  }
}

}  // namespace

}  // namespace spanfeed
