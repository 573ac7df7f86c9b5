// The kafka protocol's descriptor: its line in the registry's data (ports, signatures, record fields, options).
// Constant data, read from any thread; no allocation.
#include "kafka.h"

#include "spanfeed/endpoint.h"
#include "spanfeed/protocol.h"

namespace spanfeed::kafka {
namespace {

constexpr uint16_t kTcpPorts[] = {9092};

// A request header: a length up to 128 MiB, an api key under 96 and a version under 256, then after the
// correlation id a client id length of -1 or under 256. Looser than confirm(), which checks the api key, the
// version, the length and that the client id is printable.
constexpr ProtocolSignature kSignatures[] = {
    {"^[\\x00-\\x08].{3}\\x00[\\x00-\\x5f]\\x00.{5}(?:\\xff\\xff|\\x00)", Transport::kTcp},
};

constexpr RecordFieldSpec kFields[] = {
    {"request", "api", "string", "api key by name: `Produce`, `Fetch`, `Metadata`, `JoinGroup`, ... (`Unknown` past the known ones)"},
    {"request", "api_key", "integer", "api key number"},
    {"request", "api_version", "integer", "api version (flexible versions: compact strings and tagged fields)"},
    {"request", "correlation_id", "integer", "correlation id (the response matches by it)"},
    {"request", "client_id", "string", "client id of the request header (128 B)"},
    {"request", "transactional_id", "string", "Produce, InitProducerId, transaction calls"},
    {"request", "acks", "integer", "Produce: 0 (no response: an ok record without one), 1, -1 (all)"},
    {"request", "group_id", "string", "group calls (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, DescribeGroups, ...)"},
    {"request", "member_id", "string", "group calls: the member id (when not empty)"},
    {"request", "generation_id", "integer", "Heartbeat, SyncGroup, OffsetCommit"},
    {"request", "coordinator_key", "string", "FindCoordinator: the group or transactional id"},
    {"request", "topics", "array", "topic names in the request (16 at most; Fetch/Produce v13+ name topics by id: none)"},
    {"request", "partitions", "integer", "partition entries in the request"},
    {"request", "records", "integer", "Produce: records in the record batches (a v0/v1 message counts 1)"},
    {"request", "record_bytes", "integer", "Produce: bytes of the record sets (walked, never kept)"},
    {"request", "unsupported_version", "boolean", "the api version is newer than spanfeed's layouts: header fields only (counted in `decode_errors`)"},
    {"response", "correlation_id", "integer", "correlation id"},
    {"response", "throttle_time_ms", "integer", "throttle time"},
    {"response", "error_code", "integer", "top-level error code, where the layout has one; `error` status when not 0"},
    {"response", "error", "string", "its name (`NOT_COORDINATOR`, `UNSUPPORTED_VERSION`, ...) when not 0"},
    {"response", "partitions", "integer", "partition entries in the response"},
    {"response", "failed_partitions", "integer", "per-partition (or per-topic / group / member) error codes not 0; `error` status"},
    {"response", "partition_errors", "array", "their distinct names (3 at most)"},
    {"response", "error_message", "string", "first error message (CreateTopics, FindCoordinator, SaslAuthenticate, ...)"},
    {"response", "records", "integer", "Fetch: records in the whole record batches returned"},
    {"response", "record_bytes", "integer", "Fetch: bytes of the record sets returned"},
    {"response", "generation_id", "integer", "JoinGroup"},
    {"response", "member_id", "string", "JoinGroup: the member id assigned"},
    {"response", "protocol_name", "string", "JoinGroup / SyncGroup: the assignor chosen"},
    {"response", "unsupported_version", "boolean", "newer than spanfeed's layouts: the leading fixed fields only (throttle, error code)"},
};

// RED endpoint: api and topic ("Produce orders"; "Produce orders+" when the request names more).
bool red_endpoint(const Record& r, EndpointWriter& out) {
  out.add(request_string(r, "api"));
  char topic[EndpointWriter::kMax];
  size_t len = 0;
  bool more = false;
  if (first_array_string(r, "topics", topic, len, more)) {
    out.sep();
    out.add_top(std::string_view(topic, len));
    if (more) out.add('+');
  }
  return true;
}

}  // namespace

extern const ProtocolDescriptor kDescriptor;
const ProtocolDescriptor kDescriptor{
    .id = Protocol::kKafka,
    .name = "kafka",
    .title = "Kafka",
    .tcp_ports = kTcpPorts,
    .signatures = kSignatures,
    .confirm = confirm,
    .make = make_decoder,
    .fields = kFields,
    .summary_field = "api",
    .endpoint = red_endpoint,
};

}  // namespace spanfeed::kafka
