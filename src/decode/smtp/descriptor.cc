// The SMTP protocol's descriptor: its line in the registry's data (ports, signatures, record fields, options).
// Constant data, read from any thread; no allocation.
#include "smtp.h"

#include "spanfeed/endpoint.h"
#include "spanfeed/protocol.h"

namespace spanfeed::smtp {
namespace {

// 25: relay (MX), 587: submission (RFC 6409). 465 is TLS from the first byte: nothing to decode.
constexpr uint16_t kTcpPorts[] = {25, 587};

// Looser than confirm(), which checks each candidate (a greeting must also say "SMTP": FTP greets with 220 too).
constexpr ProtocolSignature kSignatures[] = {
    {"^220[ -]", Transport::kTcp},
    {"^(?:[Ee][Hh]|[Hh][Ee])[Ll][Oo] ", Transport::kTcp},
};

constexpr RecordFieldSpec kFields[] = {
    {"request", "command", "string", "verb, upper-cased (`EHLO`, `MAIL`, `RCPT`, `DATA`, ...); `CONNECT` for the server greeting (0 bytes: the connection asked)"},
    {"request", "argument", "string", "MAIL FROM / RCPT TO address without `<>`, HELO/EHLO name, AUTH mechanism (`<redacted>` initial response), else the rest of the line (256 B)"},
    {"request", "data_bytes", "integer", "DATA: message bytes up to the final `.` line (as sent, dot-stuffed, not kept); BDAT: chunk size"},
    {"response", "code", "integer", "reply code; `error` status for 4xx / 5xx"},
    {"response", "text", "string", "first line after the code (256 B)"},
    {"response", "lines", "integer", "lines of the reply (multi-line `250-...`)"},
};

// RED endpoint: the command ("MAIL", "CONNECT" for the greeting).
bool red_endpoint(const Record& r, EndpointWriter& out) {
  out.add(request_string(r, "command"));
  return true;
}

}  // namespace

extern const ProtocolDescriptor kDescriptor;
const ProtocolDescriptor kDescriptor{
    .id = Protocol::kSmtp,
    .name = "smtp",
    .title = "SMTP",
    .tcp_ports = kTcpPorts,
    .signatures = kSignatures,
    .confirm = confirm,
    .make = make_decoder,
    .fields = kFields,
    .summary_field = "command",
    .endpoint = red_endpoint,
};

}  // namespace spanfeed::smtp
