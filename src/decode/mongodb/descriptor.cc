// The mongodb protocol's descriptor: its line in the registry's data (ports, signatures, record fields, options).
// Constant data, read from any thread; no allocation.
#include "mongodb.h"

#include "spanfeed/endpoint.h"
#include "spanfeed/protocol.h"

namespace spanfeed::mongodb {
namespace {

constexpr uint16_t kTcpPorts[] = {27017};

// Looser than confirm(), which checks each candidate.
constexpr ProtocolSignature kSignatures[] = {
    {"^.{12}[\\xd4\\xdc\\xdd]\\x07\\x00\\x00", Transport::kTcp},
    {"^.{12}\\x01\\x00\\x00\\x00", Transport::kTcp},
};

constexpr RecordFieldSpec kFields[] = {
    {"request", "op", "string", "`OP_MSG`, `OP_QUERY`, `OP_COMPRESSED`, ..."},
    {"request", "request_id", "integer", "requestID (replies match by responseTo)"},
    {"request", "command", "string", "first key of the body"},
    {"request", "collection", "string", "its value when a string (OP_QUERY: from the collection name)"},
    {"request", "database", "string", "`$db`"},
    {"request", "documents", "integer", "documents in kind-1 sequences"},
    {"request", "compressor", "string", "OP_COMPRESSED: `zlib`, `snappy`, `zstd`, `noop`"},
    {"request", "original_op", "string", "OP_COMPRESSED: the wrapped opcode"},
    {"response", "op", "string", "reply opcode"},
    {"response", "ok", "integer", "`ok` of the reply; `error` status when not 1"},
    {"response", "error_code", "integer", "`code`"},
    {"response", "code_name", "string", "`codeName`"},
    {"response", "error_message", "string", "`errmsg` / `$err`"},
    {"response", "n", "integer", "`n`"},
    {"response", "write_errors", "integer", "entries in `writeErrors`"},
    {"response", "returned", "integer", "cursor.firstBatch / nextBatch length"},
    {"response", "number_returned", "integer", "OP_REPLY numberReturned"},
    {"response", "compressor", "string", "OP_COMPRESSED reply: the compressor"},
    {"response", "original_op", "string", "OP_COMPRESSED reply: the wrapped opcode"},
};

// RED endpoint: command and collection ("find orders").
bool red_endpoint(const Record& r, EndpointWriter& out) {
  std::string_view cmd = request_string(r, "command");
  out.add(cmd.empty() ? request_string(r, "op") : cmd);
  if (const std::string_view c = request_string(r, "collection"); !c.empty()) {
    out.sep();
    out.add(c);
  }
  return true;
}

}  // namespace

extern const ProtocolDescriptor kDescriptor;
const ProtocolDescriptor kDescriptor{
    .id = Protocol::kMongodb,
    .name = "mongodb",
    .title = "MongoDB",
    .tcp_ports = kTcpPorts,
    .signatures = kSignatures,
    .confirm = confirm,
    .make = make_decoder,
    .fields = kFields,
    .summary_field = "command",
    .endpoint = red_endpoint,
};

}  // namespace spanfeed::mongodb
