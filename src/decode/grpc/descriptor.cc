// The gRPC protocol's descriptor: its line in the registry's data (ports, signatures, record fields).
// Constant data, read from any thread; no allocation.
#include "grpc.h"

#include "spanfeed/endpoint.h"
#include "spanfeed/protocol.h"

namespace spanfeed::grpc {
namespace {

// 50051: the port of gRPC's examples and most services' default.
constexpr uint16_t kTcpPorts[] = {50051};

// The HTTP/2 preface (HTTP/2, earlier in the registry, confirms it: see grpc.cc).
constexpr ProtocolSignature kSignatures[] = {
    {"^PRI \\* HTTP/2\\.0\\r\\n", Transport::kTcp},
};

constexpr RecordFieldSpec kFields[] = {
    {"request", "service", "string", "`package.Service` from `:path` `/package.Service/Method`"},
    {"request", "grpc_method", "string", "`Method` from `:path`"},
    {"request", "call_type", "string", "`unary`, `client_streaming`, `server_streaming` or `bidi_streaming` (from the message counts)"},
    {"request", "method", "string", "`:method` (`POST`)"},
    {"request", "scheme", "string", "`:scheme`"},
    {"request", "authority", "string", "`:authority`"},
    {"request", "path", "string", "`:path`"},
    {"request", "user_agent", "string", "`user-agent`"},
    {"request", "content_type", "string", "`content-type` (`application/grpc`, `application/grpc+proto`, ...)"},
    {"request", "grpc_encoding", "string", "`grpc-encoding` (message compression)"},
    {"request", "grpc_timeout", "string", "`grpc-timeout` (`1S`, `100m`, ...)"},
    {"request", "authorization", "string", "`authorization`: `<redacted>` unless `decode.redact_secrets` is off"},
    {"request", "cookie", "string", "`cookie`: `<redacted>` unless `decode.redact_secrets` is off"},
    {"request", "metadata", "string", "names of the custom metadata keys, comma-separated (values never kept)"},
    {"request", "messages", "integer", "length-prefixed messages the client sent"},
    {"request", "message_bytes", "integer", "sum of their lengths (prefixes excluded)"},
    {"request", "compressed_messages", "integer", "of them, flagged compressed"},
    {"request", "body_bytes", "integer", "DATA bytes of the request"},
    {"request", "stream_id", "integer", "HTTP/2 stream id"},
    {"request", "undecodable", "boolean", "true: a header block could not be decoded (HPACK state lost): fields left out; lost in a gap, the record is flagged `gap`"},
    {"response", "status_code", "integer", "`:status` (200 for every gRPC answer, errors included)"},
    {"response", "content_type", "string", "`content-type`"},
    {"response", "grpc_status", "integer", "`grpc-status` from the trailers (or a trailers-only response); `error` status when not 0"},
    {"response", "grpc_status_name", "string", "its code name (`OK`, `NOT_FOUND`, `UNAVAILABLE`, ...)"},
    {"response", "grpc_message", "string", "`grpc-message` (percent-encoded as sent, 256 B)"},
    {"response", "grpc_encoding", "string", "`grpc-encoding`"},
    {"response", "set_cookie", "string", "`set-cookie`: `<redacted>` unless `decode.redact_secrets` is off"},
    {"response", "messages", "integer", "length-prefixed messages the server sent"},
    {"response", "message_bytes", "integer", "sum of their lengths"},
    {"response", "body_bytes", "integer", "DATA bytes of the response"},
    {"response", "rst_error", "string", "RST_STREAM error code name: `error` status unless `NO_ERROR`"},
};

// RED endpoint: "package.Service/Method" (the path template when the path has no such shape).
bool red_endpoint(const Record& r, EndpointWriter& out) {
  const std::string_view service = request_string(r, "service");
  if (service.empty()) {
    out.add_path_template(request_string(r, "path"));
    return true;
  }
  out.add(service);
  out.add('/');
  out.add(request_string(r, "grpc_method"));
  return true;
}

}  // namespace

extern const ProtocolDescriptor kDescriptor;
const ProtocolDescriptor kDescriptor{
    .id = Protocol::kGrpc,
    .name = "grpc",
    .title = "gRPC",
    .tcp_ports = kTcpPorts,
    .signatures = kSignatures,
    .confirm = confirm,
    .make = make_decoder,
    .fields = kFields,
    .summary_field = "path",
    .endpoint = red_endpoint,
};

}  // namespace spanfeed::grpc
