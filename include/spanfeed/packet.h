// L2-L4 packet parsing over byte spans: link types, outcomes, parsed metadata.
// Runs on RX lcores (and in tests); never allocates, never throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace spanfeed {

// Link-layer framing of a capture source. Values are our own; the capture-file
// probe maps libpcap DLT_* values onto them.
enum class LinkType : uint8_t {
  kEthernet,   // DLT_EN10MB
  kLinuxSll,   // DLT_LINUX_SLL, what `tcpdump -i any` writes (v1)
  kLinuxSll2,  // DLT_LINUX_SLL2 (v2)
  kNull,       // DLT_NULL: 4-byte address family in the capturing host's byte order
  kLoop,       // DLT_LOOP: 4-byte address family in network byte order
  kRaw,        // DLT_RAW / LINKTYPE_RAW / DLT_IPV4 / DLT_IPV6: starts at the IP header
};

std::string_view to_string(LinkType t);

// What the parser concluded about one frame. Every value is a counter on the
// RX lcore; kOk is the only one that reaches a worker.
enum class ParseOutcome : uint8_t {
  kOk,
  kNonIp,         // ARP, LLDP, STP, IPX...: not for us, not an error
  kTruncatedL2,   // frame ends inside the link-layer / VLAN / MPLS headers
  kTruncatedL3,   // frame ends inside the IPv4/IPv6 header (or its extension headers)
  kMalformedL3,   // IP header present but self-inconsistent (version, IHL, lengths)
  kTunnelTooDeep,    // more nested encapsulations than DecapConfig::max_depth
  kTunnelMalformed,  // a tunnel header (GRE, ERSPAN, VXLAN, Geneve, NSH) contradicts itself
  kCount,
};

std::string_view to_string(ParseOutcome o);

// Encapsulations the parser removes before the flow hash (decap.cc). Every
// value but kNone is a per-type counter on the RX lcore.
enum class TunnelType : uint8_t {
  kNone,
  kErspan1,   // GRE 0x88BE without sequence number: Ethernet follows the GRE header
  kErspan2,   // GRE 0x88BE with sequence number, 8-byte ERSPAN header
  kErspan3,   // GRE 0x22EB, 12-byte header (+ 8-byte platform subheader)
  kGre,       // GRE (plain, keyed, sequenced) carrying IP, MPLS or Ethernet (0x6558)
  kVxlan,     // UDP, DecapConfig::vxlan_ports (4789)
  kVxlanGpe,  // UDP, DecapConfig::vxlan_gpe_ports (4790), with NSH or not
  kGeneve,    // UDP, DecapConfig::geneve_ports (6081), options skipped
  kIpInIp,    // IPv4/IPv6 directly in IPv4/IPv6 (protocols 4 and 41)
  kCount,
};
inline constexpr size_t kTunnelTypeCount = static_cast<size_t>(TunnelType::kCount);
std::string_view to_string(TunnelType t);

inline constexpr size_t kMaxTunnelDepth = 8;  // DecapConfig::max_depth's ceiling
inline constexpr size_t kMaxTunnelPorts = 8;  // UDP ports per tunnel kind

// What the parser decapsulates. Plain data, set once at start-up.
struct DecapConfig {
  bool enabled = true;
  uint8_t max_depth = 3;  // encapsulation layers removed at most; deeper is kTunnelTooDeep
  uint16_t vxlan_ports[kMaxTunnelPorts] = {4789};  // 0 = unused slot
  uint16_t vxlan_gpe_ports[kMaxTunnelPorts] = {4790};
  uint16_t geneve_ports[kMaxTunnelPorts] = {6081};
  bool tunnel_in_flow_key = true;  // (tunnel type, VNI / GRE key / session id) part of the flow key
};

// Flags on a parsed packet (bit set in ParsedPacket::flags).
namespace packet_flag {
inline constexpr uint8_t kFragment = 1 << 0;        // IPv4/IPv6 fragment (any)
inline constexpr uint8_t kLaterFragment = 1 << 1;   // non-first fragment: no L4 header
inline constexpr uint8_t kL4Truncated = 1 << 2;     // TCP/UDP header cut off by snaplen
inline constexpr uint8_t kPayloadTruncated = 1 << 3;  // IP length says more than captured
inline constexpr uint8_t kTcpOptionsBad = 1 << 4;   // TCP data offset < 5 or past the end
}  // namespace packet_flag

inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;

// Addresses are kept as 16 bytes; IPv4 uses the first 4 (rest zero).
struct IpAddr {
  uint8_t bytes[16];
};

// The encapsulations removed from a packet: the innermost one (the closest
// to the packet the worker sees) in detail, every layer's type in order.
struct TunnelInfo {
  IpAddr outer_src;   // addresses of the IP header that carried the innermost tunnel
  IpAddr outer_dst;
  uint32_t id;        // VNI (VXLAN, GPE, Geneve), GRE key, ERSPAN session id; 0: none
  TunnelType type;    // innermost layer; kNone when the packet was bare
  uint8_t depth;      // layers removed
  uint8_t outer_ip_version;
  uint8_t has_id;     // id is meaningful (a keyless GRE has none)
  TunnelType layers[kMaxTunnelDepth];  // outermost first
  // What the flow key and hash take from the tunnel: (type, id) when
  // DecapConfig::tunnel_in_flow_key, else zero. Two VNIs carrying the same
  // inner addresses are then two flows.
  TunnelType key_type;
  uint32_t key_id;
};

// What a flow (and its records) keeps of the tunnel its first packet came in.
struct TunnelSummary {
  IpAddr outer_src;
  IpAddr outer_dst;
  uint32_t id;
  TunnelType type;  // kNone: not encapsulated
  uint8_t depth;
  uint8_t outer_ip_version;
  uint8_t has_id;
};

inline TunnelSummary summarize(const TunnelInfo& t) {
  return {t.outer_src, t.outer_dst, t.id, t.type, t.depth, t.outer_ip_version, t.has_id};
}

// Result of parsing one frame. Fits in the mbuf private area (see dpdk
// adapter) so workers never parse the headers a second time.
struct ParsedPacket {
  IpAddr src;
  IpAddr dst;
  uint16_t src_port;     // host order; 0 when there is no L4 header
  uint16_t dst_port;
  uint32_t vlan;         // outer VID << 12 | inner VID (0 when untagged)
  uint32_t ip_payload_len;  // IPv4: total length - IHL*4; IPv6: payload length
  uint16_t l3_offset;    // offset of the IP header in the frame
  uint16_t l4_offset;    // offset of the L4 header (0 when absent)
  uint16_t payload_offset;  // offset of the L4 payload (TCP/UDP), 0 when absent
  uint16_t payload_len;  // bytes of L4 payload present in the frame
  uint32_t l4_len_claimed;  // L4 payload length per the IP header (may exceed payload_len)
  uint8_t ip_version;    // 4 or 6
  uint8_t l4_proto;      // IP protocol number (after IPv6 extension headers)
  uint8_t tcp_flags;     // TCP flags byte (0 for non-TCP)
  uint8_t flags;         // packet_flag bits
  uint32_t tcp_seq;      // host order
  uint32_t tcp_ack;
  uint16_t tcp_window;
  TunnelInfo tunnel;     // depth 0: not encapsulated
};

// Text form of an address: dotted quad for IPv4 (first 4 bytes), RFC 5952
// for IPv6. Writes into `out` (at least 46 bytes) and returns its length.
size_t format_ip(const IpAddr& a, uint8_t ip_version, char* out, size_t out_len);

// Parse one frame, removing encapsulations as `decap` says (the defaults:
// every kind, depth 3, standard ports). The offsets and addresses in `out` are
// the innermost packet's; `out.tunnel` summarises what was removed. Never
// reads outside `frame`. On anything other than kOk the contents of `out` are
// unspecified.
ParseOutcome parse_packet(std::span<const std::byte> frame, LinkType link, ParsedPacket& out,
                          const DecapConfig& decap);
ParseOutcome parse_packet(std::span<const std::byte> frame, LinkType link, ParsedPacket& out);

}  // namespace spanfeed
