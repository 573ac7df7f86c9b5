// The memcached protocol's descriptor: its line in the registry's data (ports, signatures, record fields, options).
// Constant data, read from any thread; no allocation.
#include "memcached.h"

#include "spanfeed/protocol.h"

namespace spanfeed::memcached {
namespace {

constexpr uint16_t kTcpPorts[] = {11211};

// Looser than confirm(), which checks each candidate.
constexpr ProtocolSignature kSignatures[] = {
    {"^(?:get|gets|set|add|replace|append|prepend|cas|delete|incr|decr|touch)\\s", Transport::kTcp},
    {"^VALUE\\s", Transport::kTcp},
};

constexpr RecordFieldSpec kFields[] = {
    {"request", "command", "string", "as sent (`get`, `set`, `mg`, ...)"},
    {"request", "key", "string", "first key (250 B)"},
    {"request", "keys", "integer", "number of keys (get/gets/gat/gats)"},
    {"request", "value_bytes", "integer", "data block size (storage commands, `ms`)"},
    {"request", "noreply", "boolean", "`true` when present (no response expected)"},
    {"response", "response", "string", "first word of the reply: `VALUE`, `END`, `STORED`, `NOT_FOUND`, `ERROR`, `HD`, a number for incr/decr, ..."},
    {"response", "values", "integer", "items returned (retrieval replies)"},
    {"response", "value_bytes", "integer", "total bytes of those items"},
    {"response", "error_message", "string", "text after `CLIENT_ERROR` / `SERVER_ERROR`; `error` status"},
};

}  // namespace

extern const ProtocolDescriptor kDescriptor;
const ProtocolDescriptor kDescriptor{
    .id = Protocol::kMemcached,
    .name = "memcached",
    .title = "memcached (text protocol)",
    .tcp_ports = kTcpPorts,
    .signatures = kSignatures,
    .confirm = confirm,
    .make = make_decoder,
    .fields = kFields,
    .summary_field = "command",
};

}  // namespace spanfeed::memcached
