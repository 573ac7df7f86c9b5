// The memcached protocol's descriptor: its line in the registry's data (ports, signatures, record fields, options).
// Constant data, read from any thread; no allocation.
#include "memcached.h"

#include "spanfeed/endpoint.h"
#include "spanfeed/protocol.h"

namespace spanfeed::memcached {
namespace {

constexpr uint16_t kTcpPorts[] = {11211};
constexpr uint16_t kUdpPorts[] = {11211};

// Looser than confirm(), which checks each candidate.
constexpr ProtocolSignature kSignatures[] = {
    {"^(?:get|gets|set|add|replace|append|prepend|cas|delete|incr|decr|touch)\\s", Transport::kTcp},
    {"^VALUE\\s", Transport::kTcp},
    // binary request header: magic 0x80, an opcode, key length, extras length, data type 0 (raw bytes)
    {"^\\x80[\\x00-\\x3f].{3}\\x00", Transport::kTcp},
    {"^\\x81.{4}\\x00", Transport::kTcp},  // a binary response (a flow seen from its server's side first)
    // UDP: the frame header (request id, sequence, count, reserved 0), then text or binary
    {"^.{6}\\x00\\x00(?:\\x80[\\x00-\\x3f].{3}\\x00|\\x81.{4}\\x00|"
     "(?:get|gets|set|add|replace|append|prepend|cas|delete|incr|decr|touch)\\s|VALUE\\s)",
     Transport::kUdp},
};

constexpr RecordFieldSpec kFields[] = {
    {"request", "command", "string", "as sent (`get`, `set`, `mg`, ...); binary: the opcode by name (`Get`, `SetQ`, `GetKQ`, `NoOp`, `Stat`, `SASLAuth`, ..., `0x<hex>` when unknown)"},
    {"request", "key", "string", "first key (250 B)"},
    {"request", "keys", "integer", "number of keys (get/gets/gat/gats)"},
    {"request", "value_bytes", "integer", "data block size (storage commands, `ms`); binary: value size"},
    {"request", "noreply", "boolean", "`true` when present (no response expected)"},
    {"request", "extras_bytes", "integer", "binary: extras size (flags and expiry, counter delta, ...)"},
    {"request", "opaque", "integer", "binary: the opaque the response echoes (matching)"},
    {"request", "cas", "integer", "binary: CAS value, when not 0"},
    {"request", "quiet", "boolean", "binary: a quiet opcode (`GetQ`, `SetQ`, ...): answered only on a hit or an error"},
    {"request", "binary", "boolean", "`true`: binary protocol"},
    {"request", "transport", "string", "`udp` over UDP (absent over TCP)"},
    {"request", "request_id", "integer", "UDP: request id of the frame header (responses match by it)"},
    {"response", "response", "string", "first word of the reply: `VALUE`, `END`, `STORED`, `NOT_FOUND`, `ERROR`, `HD`, a number for incr/decr, ..."},
    {"response", "status", "string", "binary: status by name (`no_error`, `key_not_found`, `key_exists`, `value_too_large`, `item_not_stored`, `non_numeric_value`, `unknown_command`, `auth_error`, ..., `0x<hex>`); `error` status when not `no_error`"},
    {"response", "key", "string", "binary: key echoed (GetK, GetKQ)"},
    {"response", "values", "integer", "items returned (retrieval replies); binary: 1 / 0 for a get hit / miss, statistics for Stat"},
    {"response", "value_bytes", "integer", "total bytes of those items"},
    {"response", "extras_bytes", "integer", "binary: extras size (the item's flags)"},
    {"response", "cas", "integer", "binary: CAS value, when not 0"},
    {"response", "binary", "boolean", "`true`: binary protocol"},
    {"response", "implied", "boolean", "binary: `true` for a quiet request no reply came for: a later response proved it was a miss (gets, `error` status) or a success (the rest)"},
    {"response", "datagrams", "integer", "UDP: datagrams of the response"},
    {"response", "missing_datagrams", "integer", "UDP: datagrams never seen (the record is flagged `gap`)"},
    {"response", "error_message", "string", "text after `CLIENT_ERROR` / `SERVER_ERROR`, binary: the error text; `error` status"},
};

constexpr ProtocolOption kOptions[] = {
    {"udp_reassembly_ms", 1000, 1, 60000,
     "how long a UDP response's datagrams are awaited (from its first) before it is recorded with the missing ones counted"},
};

// RED endpoint: the command ("get", binary "GetK").
bool red_endpoint(const Record& r, EndpointWriter& out) {
  out.add(request_string(r, "command"));
  return true;
}

}  // namespace

extern const ProtocolDescriptor kDescriptor;
const ProtocolDescriptor kDescriptor{
    .id = Protocol::kMemcached,
    .name = "memcached",
    .title = "memcached (text and binary protocols, TCP and UDP)",
    .tcp_ports = kTcpPorts,
    .udp_ports = kUdpPorts,
    .signatures = kSignatures,
    .confirm = confirm,
    .make = make_decoder,
    .fields = kFields,
    .summary_field = "command",
    .options = kOptions,
    .endpoint = red_endpoint,
};

}  // namespace spanfeed::memcached
