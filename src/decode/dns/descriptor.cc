// The dns protocol's descriptor: its line in the registry's data (ports, signatures, record fields, options).
// Constant data, read from any thread; no allocation.
#include "dns.h"

#include "spanfeed/endpoint.h"
#include "spanfeed/protocol.h"

namespace spanfeed::dns {
namespace {

constexpr uint16_t kTcpPorts[] = {53};
constexpr uint16_t kUdpPorts[] = {53};

// Looser than confirm(), which checks each candidate.
constexpr ProtocolSignature kSignatures[] = {
    {"^.{4}\\x00\\x01", Transport::kUdp},
    {"^.{6}\\x00\\x01", Transport::kTcp},
};

constexpr RecordFieldSpec kFields[] = {
    {"request", "id", "integer", "message id (responses match by it)"},
    {"request", "qname", "string", "first question, dotted (`.` for the root); absent with `qtype` when the query has no question (QDCOUNT 0: a cookie-only query, a probe)"},
    {"request", "qtype", "string", "`A`, `AAAA`, `CNAME`, `SRV`, ... (`TYPE<n>` per RFC 3597 otherwise)"},
    {"request", "opcode", "integer", "only when not QUERY"},
    {"request", "transport", "string", "`udp` / `tcp`"},
    {"response", "rcode", "string", "`NOERROR`, `NXDOMAIN`, ... (`RCODE<n>` beyond); `error` status when not NOERROR"},
    {"response", "answer_count", "integer", "ANCOUNT"},
    {"response", "answers", "array", "`[{\"type\":\"A\",\"data\":\"10.0.0.1\"}, ...]`, answer section, at most `decode.dns.max_answers`; `data` for A, AAAA, CNAME, NS, PTR, DNAME, SOA (primary NS), MX, SRV, TXT"},
    {"response", "tc", "boolean", "`true` when the TC bit is set"},
};

constexpr ProtocolOption kOptions[] = {
    {"max_answers", 16, 0, 64, "answers listed per DNS response (answer_count has the full number)"},
};

// RED endpoint: query type and response code ("A NOERROR"; "A" alone without a response).
bool red_endpoint(const Record& r, EndpointWriter& out) {
  out.add(request_string(r, "qtype"));
  if (const std::string_view rc = response_string(r, "rcode"); !rc.empty()) {
    out.sep();
    out.add(rc);
  }
  return true;
}

}  // namespace

extern const ProtocolDescriptor kDescriptor;
const ProtocolDescriptor kDescriptor{
    .id = Protocol::kDns,
    .name = "dns",
    .title = "DNS (UDP and TCP)",
    .tcp_ports = kTcpPorts,
    .udp_ports = kUdpPorts,
    .signatures = kSignatures,
    .confirm = confirm,
    .make = make_decoder,
    .fields = kFields,
    .summary_field = "qname",
    .options = kOptions,
    .endpoint = red_endpoint,
};

}  // namespace spanfeed::dns
