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
    {"request", "command", "string", "first word, upper-cased; `PUSH <kind>` (`PUSH message`, `PUSH pmessage`, `PUSH smessage`, `PUSH invalidate`, ...) for what the server sends on its own: a published message delivered to a subscriber, a RESP3 push, a confirmation no command waits for (a record without reply, `from_server`)"},
    {"request", "key", "string", "first argument (cut at `decode.redis.key_max`); `<redacted>` for AUTH; a push: its channel"},
    {"request", "args", "integer", "number of arguments after the command (a push: its elements after the kind)"},
    {"request", "pattern", "string", "`PUSH pmessage`: the pattern the channel matched"},
    {"request", "payload_bytes", "integer", "`PUSH message` / `pmessage` / `smessage`: the message's size (counted, never kept)"},
    {"request", "from_server", "boolean", "true: a push the server sent, not a command"},
    {"response", "type", "string", "`simple`, `error`, `integer`, `bulk`, `array`, `null`, `map`, `set`, `boolean`, `double`, `big_number`, `verbatim`, `blob_error`, `push` (a RESP3 confirmation of SUBSCRIBE...)"},
    {"response", "value", "string|integer|boolean", "simple string / integer / boolean / double / big number"},
    {"response", "error", "string", "text of `-ERR ...` or of a blob error (512 B); `error` status"},
    {"response", "size", "integer|null", "bulk / verbatim length (`null` for a null bulk)"},
    {"response", "elements", "integer|null", "top-level aggregate size (`null` for a null array)"},
    {"response", "subscriptions", "integer", "SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE and their UNSUBSCRIBEs: the subscription count the last confirmation reported (the response is all the command's confirmations, one per channel)"},
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
