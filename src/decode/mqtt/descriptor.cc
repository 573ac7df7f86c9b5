// The MQTT protocol's descriptor: its line in the registry's data (ports, signatures, record fields).
// Constant data, read from any thread; no allocation.
#include "mqtt.h"

#include "spanfeed/endpoint.h"
#include "spanfeed/protocol.h"

namespace spanfeed::mqtt {
namespace {

// 1883: MQTT. 8883 is TLS from the first byte: nothing to decode.
constexpr uint16_t kTcpPorts[] = {1883};

// A CONNECT (remaining length of 1-4 bytes, protocol name); looser than confirm(), which checks the level.
constexpr ProtocolSignature kSignatures[] = {
    {"^\\x10[\\x80-\\xff]{0,3}[\\x00-\\x7f]\\x00(?:\\x04MQTT|\\x06MQIsdp)", Transport::kTcp},
    {"^[\\x20\\x30-\\x35\\x38-\\x3d\\x40\\x50\\x62\\x70\\x82\\x90\\xa2\\xb0\\xc0\\xd0\\xe0]", Transport::kTcp},  // mid-stream: PUBLISH, SUBSCRIBE...
};

constexpr RecordFieldSpec kFields[] = {
    {"request", "packet", "string", "control packet type (`CONNECT`, `PUBLISH`, `SUBSCRIBE`, `PUBREL`, ...); a QoS 2 publish makes two records: `PUBLISH`/`PUBREC` and `PUBREL`/`PUBCOMP`"},
    {"request", "from_server", "boolean", "a PUBLISH (or MQTT 5 DISCONNECT / AUTH) the server sent: a record without reply (the client's PUBACK / PUBREC / PUBCOMP to it make no record)"},
    {"request", "protocol_name", "string", "CONNECT: `MQTT` (3.1.1, 5.0) or `MQIsdp` (3.1)"},
    {"request", "protocol_level", "integer", "CONNECT: 3 (3.1), 4 (3.1.1), 5 (5.0)"},
    {"request", "client_id", "string", "CONNECT client identifier"},
    {"request", "clean_session", "boolean", "CONNECT clean session (5.0: clean start)"},
    {"request", "keep_alive", "integer", "CONNECT keep-alive (s)"},
    {"request", "will_topic", "string", "CONNECT will topic"},
    {"request", "username", "string", "CONNECT user name (the password is never read)"},
    {"request", "topic", "string", "PUBLISH topic name (256 B)"},
    {"request", "qos", "integer", "PUBLISH QoS (0: a record without reply)"},
    {"request", "retain", "boolean", "PUBLISH retain flag"},
    {"request", "dup", "boolean", "PUBLISH duplicate flag"},
    {"request", "packet_id", "integer", "packet identifier (PUBLISH QoS 1/2, PUBREL, SUBSCRIBE, UNSUBSCRIBE): replies match by it"},
    {"request", "payload_bytes", "integer", "PUBLISH application message size (counted, never kept)"},
    {"request", "topic_filters", "string", "SUBSCRIBE / UNSUBSCRIBE topic filters, joined with `,` (512 B)"},
    {"request", "requested_qos", "string", "SUBSCRIBE maximum QoS per filter, joined with `,`"},
    {"request", "filters", "integer", "SUBSCRIBE / UNSUBSCRIBE filter count"},
    {"request", "reason_code", "integer", "MQTT 5 PUBREL / DISCONNECT / AUTH reason code"},
    {"request", "reason_string", "string", "MQTT 5 reason string property (256 B)"},
    {"response", "packet", "string", "`CONNACK`, `PUBACK`, `PUBREC`, `PUBCOMP`, `SUBACK`, `UNSUBACK`, `PINGRESP`"},
    {"response", "session_present", "boolean", "CONNACK session present"},
    {"response", "return_code", "integer", "CONNACK return code (3.1, 3.1.1); `error` status when not 0"},
    {"response", "reason_code", "integer", "MQTT 5 CONNACK / PUBACK / PUBREC / PUBCOMP reason code; `error` status when CONNACK's is not 0, else from 0x80"},
    {"response", "reason_string", "string", "MQTT 5 reason string property (256 B)"},
    {"response", "packet_id", "integer", "packet identifier"},
    {"response", "granted_qos", "string", "SUBACK return codes per filter, joined with `,` (128: failure, `error` status)"},
    {"response", "reason_codes", "string", "MQTT 5 UNSUBACK reason codes, joined with `,` (from 128: `error` status)"},
};

// RED endpoint: packet type and topic (filter) ("PUBLISH sensors/t1", "SUBSCRIBE sensors/#");
// topics beyond the worker's top N read "other".
bool red_endpoint(const Record& r, EndpointWriter& out) {
  out.add(request_string(r, "packet"));
  std::string_view topic = request_string(r, "topic");
  if (topic.empty()) topic = request_string(r, "topic_filters");
  if (!topic.empty()) {
    out.sep();
    out.add_top(topic);
  }
  return true;
}

}  // namespace

extern const ProtocolDescriptor kDescriptor;
const ProtocolDescriptor kDescriptor{
    .id = Protocol::kMqtt,
    .name = "mqtt",
    .title = "MQTT",
    .tcp_ports = kTcpPorts,
    .signatures = kSignatures,
    .confirm = confirm,
    .make = make_decoder,
    .fields = kFields,
    .summary_field = "packet",
    .endpoint = red_endpoint,
};

}  // namespace spanfeed::mqtt
