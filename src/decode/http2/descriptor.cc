// The HTTP/2 (h2c) protocol's descriptor: its line in the registry's data (ports, signatures, record fields, options).
// Constant data, read from any thread; no allocation.
#include "http2.h"

#include "spanfeed/endpoint.h"
#include "spanfeed/protocol.h"

namespace spanfeed::http2 {
namespace {

// h2c has no registered port: 8081 is a common one for cleartext HTTP/2 gateways; any other
// port is found by the preface signature (and HTTP/1.1 `Upgrade: h2c`, which the HTTP decoder hands over).
constexpr uint16_t kTcpPorts[] = {8081};

// Looser than confirm(). The upgrade request is an HTTP/1.1 request: HTTP (earlier in the registry)
// confirms it and hands the flow over after the 101.
constexpr ProtocolSignature kSignatures[] = {
    {"^PRI \\* HTTP/2\\.0\\r\\n", Transport::kTcp},
    {"^[A-Z]+ [^\\r\\n]* HTTP/1\\.1\\r\\n(?:[^\\r\\n]*\\r\\n)*?[Uu]pgrade:[ \\t]*h2c", Transport::kTcp},
    {"^.{3}[\\x01\\x04\\x06\\x08][\\x00-\\x2d][\\x00-\\x7f]", Transport::kTcp},  // mid-connection: HEADERS, or SETTINGS / PING / WINDOW_UPDATE first
};

}  // namespace

constexpr RecordFieldSpec kHttp2Fields[] = {
    {"request", "method", "string", "`:method`"},
    {"request", "scheme", "string", "`:scheme`"},
    {"request", "authority", "string", "`:authority` (or `host`)"},
    {"request", "path", "string", "`:path` with its query (512 B)"},
    {"request", "user_agent", "string", "`user-agent` (256 B)"},
    {"request", "content_type", "string", "`content-type`"},
    {"request", "authorization", "string", "`authorization`: `<redacted>` unless `decode.redact_secrets` is off"},
    {"request", "cookie", "string", "`cookie`: `<redacted>` unless `decode.redact_secrets` is off"},
    {"request", "metadata", "string", "names of the other request headers, comma-separated (values never kept)"},
    {"request", "body_bytes", "integer", "DATA bytes of the request (padding excluded)"},
    {"request", "stream_id", "integer", "HTTP/2 stream id (responses match by it)"},
    {"request", "undecodable", "boolean", "true: a header block of the stream could not be decoded (HPACK state lost in a gap, or a capture that began mid-connection): its fields are left out; lost in a gap, the record is flagged `gap` (so is a stream whose HEADERS a gap took)"},
    {"response", "status_code", "integer", "`:status` of the final response; `error` status for 5xx"},
    {"response", "content_type", "string", "`content-type`"},
    {"response", "set_cookie", "string", "`set-cookie`: `<redacted>` unless `decode.redact_secrets` is off"},
    {"response", "body_bytes", "integer", "DATA bytes of the response (padding excluded)"},
    {"response", "rst_error", "string", "RST_STREAM error code name (`CANCEL`, `INTERNAL_ERROR`, ...): `error` status unless `NO_ERROR`"},
};

namespace {

constexpr ProtocolOption kOptions[] = {
    {"connections", 256, 0, 1u << 20, "HTTP/2 connections tracked at once per worker (HPACK tables, stream table each); more: counted, not decoded"},
    {"max_streams", 128, 1, 1024, "open streams tracked per connection; more: the oldest leaves the table (counted), its request still pairs with its response (its later request body is not counted)"},
    {"header_table_bytes", 65536, 0, 1u << 24, "largest HPACK dynamic table honoured (SETTINGS_HEADER_TABLE_SIZE is capped to it)"},
    {"hpack_memory_bytes", 262144, 16384, 1u << 26, "memory nghttp2 may hold per connection (both inflaters); over it: headers undecodable, counted"},
};

// RED endpoint: method and path template ("GET /users/{id}", the query dropped).
bool red_endpoint(const Record& r, EndpointWriter& out) {
  out.add(request_string(r, "method"));
  out.sep();
  out.add_path_template(request_string(r, "path"));
  return true;
}

}  // namespace

extern const ProtocolDescriptor kDescriptor;
const ProtocolDescriptor kDescriptor{
    .id = Protocol::kHttp2,
    .name = "http2",
    .title = "HTTP/2 (h2c)",
    .tcp_ports = kTcpPorts,
    .signatures = kSignatures,
    .confirm = confirm,
    .make = make_decoder,
    .fields = kHttp2Fields,
    .summary_field = "path",
    .options = kOptions,
    .endpoint = red_endpoint,
};

}  // namespace spanfeed::http2
