// Tunnel header recognition for parse_packet: GRE (plain, keyed, sequenced,
// Ethernet bridging), ERSPAN I/II/III, VXLAN, VXLAN-GPE with NSH, Geneve,
// IP-in-IP. Runs on RX lcores; no allocation; every read bounds-checked.
#include "decap.h"

#include <algorithm>

namespace spanfeed::detail {
namespace {

constexpr uint8_t kProtoGre = 47;
constexpr uint8_t kProtoIpv4InIp = 4;
constexpr uint8_t kProtoIpv6InIp = 41;
constexpr uint16_t kGreErspan12 = 0x88BE;  // ERSPAN type I (no sequence) and II
constexpr uint16_t kGreErspan3 = 0x22EB;
constexpr uint16_t kEtherTeb = 0x6558;     // transparent Ethernet bridging
constexpr uint16_t kGreC = 0x8000, kGreR = 0x4000, kGreK = 0x2000, kGreS = 0x1000;

inline uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t rd24(const uint8_t* p) { return uint32_t{p[0]} << 16 | uint32_t{p[1]} << 8 | p[2]; }
inline uint32_t rd32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

bool in_ports(const uint16_t (&ports)[kMaxTunnelPorts], uint16_t port) {
  for (uint16_t p : ports) {
    if (p != 0 && p == port) return true;
  }
  return false;
}

// Ethertypes a GRE or Geneve payload may carry that parse_packet follows.
bool followed_ethertype(uint16_t et) {
  return et == 0x0800 || et == 0x86DD || et == 0x8847 || et == 0x8848 || et == 0x8100 ||
         et == 0x88A8;
}

DecapStep truncated(TunnelType t) { return {DecapKind::kTruncated, t}; }
DecapStep malformed(TunnelType t) { return {DecapKind::kMalformed, t}; }

DecapStep gre(const uint8_t* d, size_t end, size_t off) {
  if (off + 4 > end) return truncated(TunnelType::kGre);
  const uint8_t* g = d + off;
  const uint16_t flags = rd16(g);
  const uint16_t proto = rd16(g + 2);
  if ((flags & 7) != 0) return {};  // version 1: PPTP's enhanced GRE carries PPP, not ours
  const bool erspan = proto == kGreErspan12 || proto == kGreErspan3;
  const TunnelType type = proto == kGreErspan3 ? TunnelType::kErspan3
                          : proto == kGreErspan12 ? ((flags & kGreS) ? TunnelType::kErspan2 : TunnelType::kErspan1)
                                                  : TunnelType::kGre;
  if (!erspan && proto != kEtherTeb && !followed_ethertype(proto)) return {};
  if (flags & kGreR) return malformed(type);  // source routing: deprecated (RFC 2784)
  size_t hlen = 4 + ((flags & kGreC) ? 4 : 0);
  DecapStep s;
  s.type = type;
  if (flags & kGreK) {
    if (off + hlen + 4 > end) return truncated(type);
    s.id = rd32(g + hlen);
    s.has_id = true;
    hlen += 4;
  }
  if (flags & kGreS) hlen += 4;
  size_t inner = off + hlen;
  if (inner > end) return truncated(type);
  if (type == TunnelType::kErspan2) {
    if (inner + 8 > end) return truncated(type);
    if ((d[inner] >> 4) != 1) return malformed(type);
    s.id = rd16(d + inner + 2) & 0x3FFu;  // session id
    s.has_id = true;
    s.kind = DecapKind::kEthernet;
    s.inner_offset = inner + 8;
    return s;
  }
  if (type == TunnelType::kErspan3) {
    if (inner + 12 > end) return truncated(type);
    const uint8_t* h = d + inner;
    if ((h[0] >> 4) != 2) return malformed(type);
    s.id = rd16(h + 2) & 0x3FFu;
    s.has_id = true;
    const uint16_t last = rd16(h + 10);
    const unsigned frame_type = (last >> 10) & 0x1Fu;
    inner += 12 + ((last & 1u) ? 8 : 0);  // O bit: 8-byte platform-specific subheader
    if (inner > end) return truncated(type);
    s.inner_offset = inner;
    if (frame_type == 0) {
      s.kind = DecapKind::kEthernet;
      return s;
    }
    if (frame_type != 2) return malformed(type);
    if (inner + 1 > end) return truncated(type);
    s.ip_version = d[inner] >> 4;
    if (s.ip_version != 4 && s.ip_version != 6) return malformed(type);
    s.kind = DecapKind::kIp;
    return s;
  }
  s.inner_offset = inner;
  if (erspan || proto == kEtherTeb) {  // ERSPAN type I: Ethernet right after GRE
    s.kind = DecapKind::kEthernet;
  } else {
    s.kind = DecapKind::kEthertype;
    s.ethertype = proto;
  }
  return s;
}

// NSH (RFC 8300) after VXLAN-GPE: skip its length, follow its next protocol.
DecapStep nsh(const uint8_t* d, size_t end, size_t off, DecapStep s) {
  if (off + 8 > end) return truncated(s.type);
  if ((d[off] >> 6) != 0) return malformed(s.type);
  const size_t words = d[off + 1] & 0x3Fu;
  if (words < 2) return malformed(s.type);
  const uint8_t next = d[off + 3];
  s.inner_offset = off + words * 4;
  if (s.inner_offset > end) return truncated(s.type);
  switch (next) {
    case 1: s.kind = DecapKind::kIp; s.ip_version = 4; return s;
    case 2: s.kind = DecapKind::kIp; s.ip_version = 6; return s;
    case 3: s.kind = DecapKind::kEthernet; return s;
    case 5: s.kind = DecapKind::kEthertype; s.ethertype = 0x8847; return s;
    default: return malformed(s.type);
  }
}

DecapStep udp(const uint8_t* d, size_t end, const ParsedPacket& p, const DecapConfig& cfg) {
  if (p.payload_offset == 0) return {};
  const size_t off = p.payload_offset;
  // The UDP length bounds the tunnel payload (Ethernet padding is not inner).
  const size_t udp_end = std::min(end, off + size_t{p.l4_len_claimed});
  if (in_ports(cfg.vxlan_ports, p.dst_port)) {
    if (off + 8 > udp_end) return truncated(TunnelType::kVxlan);
    if ((d[off] & 0x08) == 0) return malformed(TunnelType::kVxlan);  // I flag: VNI valid (RFC 7348)
    DecapStep s{DecapKind::kEthernet, TunnelType::kVxlan, rd24(d + off + 4), true, off + 8};
    return s;
  }
  if (in_ports(cfg.vxlan_gpe_ports, p.dst_port)) {
    if (off + 8 > udp_end) return truncated(TunnelType::kVxlanGpe);
    const uint8_t flags = d[off];
    if ((flags & 0x30) != 0) return malformed(TunnelType::kVxlanGpe);  // version 0 only
    DecapStep s{DecapKind::kNone, TunnelType::kVxlanGpe, rd24(d + off + 4), (flags & 0x08) != 0, off + 8};
    const uint8_t next = (flags & 0x04) ? d[off + 3] : 3;  // no P bit: Ethernet, as VXLAN
    switch (next) {
      case 1: s.kind = DecapKind::kIp; s.ip_version = 4; return s;
      case 2: s.kind = DecapKind::kIp; s.ip_version = 6; return s;
      case 3: s.kind = DecapKind::kEthernet; return s;
      case 4: return nsh(d, udp_end, off + 8, s);
      case 5: s.kind = DecapKind::kEthertype; s.ethertype = 0x8847; return s;
      default: return malformed(TunnelType::kVxlanGpe);
    }
  }
  if (in_ports(cfg.geneve_ports, p.dst_port)) {
    if (off + 8 > udp_end) return truncated(TunnelType::kGeneve);
    if ((d[off] >> 6) != 0) return malformed(TunnelType::kGeneve);
    const size_t opt = size_t{d[off] & 0x3Fu} * 4;
    const uint16_t proto = rd16(d + off + 2);
    DecapStep s{DecapKind::kNone, TunnelType::kGeneve, rd24(d + off + 4), true, off + 8 + opt};
    if (s.inner_offset > udp_end) return truncated(TunnelType::kGeneve);
    if (proto == kEtherTeb) {
      s.kind = DecapKind::kEthernet;
    } else if (followed_ethertype(proto)) {
      s.kind = DecapKind::kEthertype;
      s.ethertype = proto;
    } else {
      return {};
    }
    return s;
  }
  return {};
}

}  // namespace

DecapStep decap_step(const uint8_t* d, size_t end, const ParsedPacket& p, const DecapConfig& cfg) {
  switch (p.l4_proto) {
    case kProtoUdp:
      return udp(d, end, p, cfg);
    case kProtoGre:
      if (p.l4_offset == 0) return {};
      return gre(d, end, p.l4_offset);
    case kProtoIpv4InIp:
    case kProtoIpv6InIp: {
      if (p.l4_offset == 0) return {};
      DecapStep s{DecapKind::kIp, TunnelType::kIpInIp};
      s.inner_offset = p.l4_offset;
      s.ip_version = p.l4_proto == kProtoIpv4InIp ? 4 : 6;
      return s;
    }
    default:
      return {};
  }
}

}  // namespace spanfeed::detail
