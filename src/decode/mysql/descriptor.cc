// The mysql protocol's descriptor: its line in the registry's data (ports, signatures, record fields, options).
// Constant data, read from any thread; no allocation.
#include "mysql.h"

#include "spanfeed/endpoint.h"
#include "spanfeed/protocol.h"

namespace spanfeed::mysql {
namespace {

constexpr uint16_t kTcpPorts[] = {3306};

// Looser than confirm(), which checks each candidate.
constexpr ProtocolSignature kSignatures[] = {
    {"^.{3}\\x00\\x0a", Transport::kTcp},
    {"^.{3}\\x00[\\x03\\x16]", Transport::kTcp},
    {"^\\x01\\x00\\x00\\x00\\x0e", Transport::kTcp},                   // COM_PING
    {"^.{3}\\x00\\x00\\x00\\x00.{3}\\x00[\\x03\\x16]", Transport::kTcp},  // compressed, sent uncompressed
};

constexpr RecordFieldSpec kFields[] = {
    {"request", "command", "string", "`COM_QUERY`, `COM_STMT_EXECUTE`, ..., `LOGIN` for the handshake"},
    {"request", "query", "string", "statement text (first 448 B)"},
    {"request", "query_bytes", "integer", "full statement length, when longer than `query`"},
    {"request", "normalized", "string", "statement with literals replaced by `?`"},
    {"request", "statement_id", "integer", "prepared statement id (EXECUTE / RESET / FETCH / CLOSE)"},
    {"request", "database", "string", "INIT_DB, login"},
    {"request", "table", "string", "FIELD_LIST"},
    {"request", "user", "string", "login user"},
    {"request", "server_version", "string", "login: the server greeting's version"},
    {"request", "compressed", "boolean", "login: compressed protocol negotiated"},
    {"response", "rows", "integer", "rows of a result set"},
    {"response", "columns", "integer", "columns of a result set / of a prepared statement"},
    {"response", "affected_rows", "integer", "OK packet"},
    {"response", "last_insert_id", "integer", "OK packet"},
    {"response", "warnings", "integer", "OK / EOF packet"},
    {"response", "error_code", "integer", "ERR packet; `error` status"},
    {"response", "sql_state", "string", "ERR packet"},
    {"response", "error_message", "string", "ERR packet"},
    {"response", "statement_id", "integer", "STMT_PREPARE: the new statement id"},
    {"response", "params", "integer", "STMT_PREPARE: parameter count"},
    {"response", "auth_switch", "boolean", "login: the server asked for another auth method"},
    {"response", "local_infile", "boolean", "the server asked for a LOAD DATA LOCAL file"},
};

}  // namespace

extern const ProtocolDescriptor kDescriptor;
const ProtocolDescriptor kDescriptor{
    .id = Protocol::kMysql,
    .name = "mysql",
    .title = "MySQL / MariaDB",
    .tcp_ports = kTcpPorts,
    .signatures = kSignatures,
    .confirm = confirm,
    .make = make_decoder,
    .fields = kFields,
    .summary_field = "command",
    .endpoint = sql_endpoint,
};

}  // namespace spanfeed::mysql
