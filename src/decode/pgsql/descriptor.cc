// The pgsql protocol's descriptor: its line in the registry's data (ports, signatures, record fields, options).
// Constant data, read from any thread; no allocation.
#include "pgsql.h"

#include "spanfeed/endpoint.h"
#include "spanfeed/protocol.h"

namespace spanfeed::pgsql {
namespace {

constexpr uint16_t kTcpPorts[] = {5432};

// Looser than confirm(), which checks each candidate.
constexpr ProtocolSignature kSignatures[] = {
    {"^\\x00\\x00.{2}(?:\\x00\\x03\\x00\\x00|\\x04\\xd2\\x16[\\x2e\\x2f\\x30])", Transport::kTcp},
    {"^[QP]\\x00", Transport::kTcp},                  // mid-stream: a Query or Parse
    {"^[123CDEINTZnst]\\x00", Transport::kTcp},        // mid-stream: a response ending in ReadyForQuery
};

constexpr RecordFieldSpec kFields[] = {
    {"request", "command", "string", "`QUERY`, `EXECUTE`, `PARSE`, `BIND`, `DESCRIBE`, `CLOSE`, `STARTUP`, `SSL_REQUEST`, `GSSENC_REQUEST`, `CANCEL`, `TERMINATE`, `FUNCTION_CALL`"},
    {"request", "query", "string", "statement text"},
    {"request", "normalized", "string", "statement with literals replaced by `?`"},
    {"request", "statement", "string", "named prepared statement"},
    {"request", "user", "string", "startup"},
    {"request", "database", "string", "startup"},
    {"request", "application_name", "string", "startup"},
    {"response", "tag", "string", "last CommandComplete tag"},
    {"response", "rows", "integer", "rows summed from the CommandComplete tags"},
    {"response", "columns", "integer", "RowDescription"},
    {"response", "data_rows", "integer", "DataRow messages"},
    {"response", "severity", "string", "first ErrorResponse; `error` status"},
    {"response", "sql_state", "string", "first ErrorResponse"},
    {"response", "error_message", "string", "first ErrorResponse"},
    {"response", "ssl", "string", "SSLRequest answer: `accepted` / `refused`"},
};

}  // namespace

extern const ProtocolDescriptor kDescriptor;
const ProtocolDescriptor kDescriptor{
    .id = Protocol::kPgsql,
    .name = "pgsql",
    .title = "PostgreSQL",
    .tcp_ports = kTcpPorts,
    .signatures = kSignatures,
    .confirm = confirm,
    .make = make_decoder,
    .fields = kFields,
    .summary_field = "command",
    .endpoint = sql_endpoint,
};

}  // namespace spanfeed::pgsql
