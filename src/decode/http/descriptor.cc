// The http protocol's descriptor: its line in the registry's data (ports, signatures, record fields, options).
// Constant data, read from any thread; no allocation.
#include "http.h"

#include "spanfeed/endpoint.h"
#include "spanfeed/protocol.h"

namespace spanfeed::http {
namespace {

constexpr uint16_t kTcpPorts[] = {80, 8080, 8000, 8888};

// Looser than confirm(), which checks each candidate.
constexpr ProtocolSignature kSignatures[] = {
    {"^(?:GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH|CONNECT|TRACE) [/*a-z0-9]", Transport::kTcp},
    {"^HTTP/1\\.. [0-9]", Transport::kTcp},
};

constexpr RecordFieldSpec kFields[] = {
    {"request", "method", "string", "request method as sent"},
    {"request", "path", "string", "request target up to `?` (512 B)"},
    {"request", "query", "string", "target after `?`, absent when none (256 B)"},
    {"request", "version", "string", "`1.0` / `1.1`"},
    {"request", "host", "string", "first Host header"},
    {"request", "user_agent", "string", "first User-Agent header"},
    {"request", "content_type", "string", "first Content-Type header"},
    {"request", "x_forwarded_for", "string", "first X-Forwarded-For header"},
    {"request", "content_length", "integer", "Content-Length, when present"},
    {"request", "authorization", "string", "`<redacted>` unless redaction is off"},
    {"request", "cookie", "string", "`<redacted>` unless redaction is off"},
    {"request", "body_bytes", "integer", "body bytes (de-chunked sizes; the body is not kept)"},
    {"response", "status_code", "integer", "status code; `error` status for >= 400"},
    {"response", "reason", "string", "reason phrase (64 B)"},
    {"response", "version", "string", "`1.0` / `1.1`"},
    {"response", "content_type", "string", "first Content-Type header"},
    {"response", "content_length", "integer", "Content-Length, when present"},
    {"response", "set_cookie", "string", "`<redacted>` unless redaction is off"},
    {"response", "body_bytes", "integer", "body bytes (de-chunked sizes; the body is not kept)"},
};

// RED endpoint: method and path template ("GET /users/{id}"); CONNECT: the method alone.
bool red_endpoint(const Record& r, EndpointWriter& out) {
  const std::string_view method = request_string(r, "method");
  out.add(method);
  if (method == "CONNECT") return true;
  out.sep();
  out.add_path_template(request_string(r, "path"));
  return true;
}

}  // namespace

extern const ProtocolDescriptor kDescriptor;
const ProtocolDescriptor kDescriptor{
    .id = Protocol::kHttp,
    .name = "http",
    .title = "HTTP/1.x",
    .tcp_ports = kTcpPorts,
    .signatures = kSignatures,
    .confirm = confirm,
    .make = make_decoder,
    .fields = kFields,
    .summary_field = "method",
    .endpoint = red_endpoint,
};

}  // namespace spanfeed::http
