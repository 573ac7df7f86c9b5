// The redis protocol's descriptor: its line in the registry's data (ports, signatures, record fields, options).
// Constant data, read from any thread; no allocation.
#include "redis.h"

#include "spanfeed/endpoint.h"
#include "spanfeed/protocol.h"

namespace spanfeed::redis {
namespace {

constexpr uint16_t kTcpPorts[] = {6379};

// Looser than confirm(), which checks each candidate.
constexpr ProtocolSignature kSignatures[] = {
    {"^\\*[1-9][0-9]{0,6}\\r\\n\\$[0-9]", Transport::kTcp},
};

constexpr RecordFieldSpec kFields[] = {
    {"request", "command", "string", "first word, upper-cased"},
    {"request", "key", "string", "first argument (cut at `decode.redis.key_max`); `<redacted>` for AUTH"},
    {"request", "args", "integer", "number of arguments after the command"},
    {"response", "type", "string", "`simple`, `error`, `integer`, `bulk`, `array`, `null`, `map`, `set`, `boolean`, `double`, `big_number`, `verbatim`, `blob_error`"},
    {"response", "value", "string|integer|boolean", "simple string / integer / boolean / double / big number"},
    {"response", "error", "string", "text of `-ERR ...` or of a blob error (512 B); `error` status"},
    {"response", "size", "integer|null", "bulk / verbatim length (`null` for a null bulk)"},
    {"response", "elements", "integer|null", "top-level aggregate size (`null` for a null array)"},
};

constexpr ProtocolOption kOptions[] = {
    {"key_max", 256, 1, 512, "bytes of a Redis key / simple-string value kept"},
};

// RED endpoint: the command ("GET").
bool red_endpoint(const Record& r, EndpointWriter& out) {
  out.add(request_string(r, "command"));
  return true;
}

}  // namespace

extern const ProtocolDescriptor kDescriptor;
const ProtocolDescriptor kDescriptor{
    .id = Protocol::kRedis,
    .name = "redis",
    .title = "Redis (RESP2 / RESP3)",
    .tcp_ports = kTcpPorts,
    .signatures = kSignatures,
    .confirm = confirm,
    .make = make_decoder,
    .fields = kFields,
    .summary_field = "command",
    .options = kOptions,
    .endpoint = red_endpoint,
};

}  // namespace spanfeed::redis
