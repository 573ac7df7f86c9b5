// The AMQP 0-9-1 protocol's descriptor: its line in the registry's data (ports, signatures, record fields).
// Constant data, read from any thread; no allocation.
#include "amqp.h"

#include "spanfeed/endpoint.h"
#include "spanfeed/protocol.h"

namespace spanfeed::amqp {
namespace {

// 5672: AMQP. 5671 is TLS from the first byte: nothing to decode.
constexpr uint16_t kTcpPorts[] = {5672};

// Looser than confirm(), which also checks the server's connection.start.
constexpr ProtocolSignature kSignatures[] = {
    {"^AMQP\\x00\\x00\\x09\\x01", Transport::kTcp},
    {"^\\x01\\x00\\x00.{4}\\x00\\x0a\\x00\\x0a\\x00\\x09", Transport::kTcp},
    {"^\\x01.{2}\\x00[\\x00-\\x0f].{2}\\x00[\\x14\\x28\\x32\\x3c\\x55\\x5a]", Transport::kTcp},  // mid-stream
};

constexpr RecordFieldSpec kFields[] = {
    {"request", "method", "string", "`class.method` (`queue.declare`, `basic.publish`, ...); `protocol-header` for the opening `AMQP 0-9-1`; server pushes (`basic.deliver`, `basic.return`, `channel.flow`, `basic.cancel`, `connection.blocked`) are requests without reply sent by the server; a 0-byte request named after the method a server close blames (`failed_method`) when nothing was pending on the channel"},
    {"request", "channel", "integer", "channel number (absent: channel 0)"},
    {"request", "version", "string", "protocol header version (`0-9-1`)"},
    {"request", "mechanism", "string", "connection.start-ok SASL mechanism"},
    {"request", "user", "string", "connection.start-ok PLAIN authentication identity (the password is never read)"},
    {"request", "vhost", "string", "connection.open virtual host"},
    {"request", "reply_code", "integer", "connection.close / channel.close from the client, basic.return: reply code (`error` status when neither 200 nor 0)"},
    {"request", "reply_text", "string", "its reply text (256 B)"},
    {"request", "failed_method", "string", "close: the method the close names (class and method ids)"},
    {"request", "exchange", "string", "exchange name (declare, delete, bind source, publish, deliver, return)"},
    {"request", "exchange_type", "string", "exchange.declare type (`direct`, `topic`, ...)"},
    {"request", "destination", "string", "exchange.bind / unbind destination exchange"},
    {"request", "queue", "string", "queue name (queue.*, basic.consume, basic.get)"},
    {"request", "routing_key", "string", "routing key (bind, publish, deliver, return)"},
    {"request", "passive", "boolean", "declare: passive (check only)"},
    {"request", "durable", "boolean", "declare: durable"},
    {"request", "exclusive", "boolean", "queue.declare: exclusive"},
    {"request", "auto_delete", "boolean", "queue.declare: auto-delete"},
    {"request", "consumer_tag", "string", "basic.consume / cancel / deliver consumer tag"},
    {"request", "no_ack", "boolean", "basic.consume / get without acknowledgements"},
    {"request", "mandatory", "boolean", "basic.publish mandatory"},
    {"request", "delivery_tag", "integer", "basic.deliver / ack / nack / reject delivery tag"},
    {"request", "redelivered", "boolean", "basic.deliver: redelivered"},
    {"request", "multiple", "boolean", "basic.ack / nack: up to and including the tag"},
    {"request", "requeue", "boolean", "basic.reject / nack: requeue"},
    {"request", "body_bytes", "integer", "basic.publish / deliver / return: body size from the content header (counted, never kept)"},
    {"request", "prefetch_count", "integer", "basic.qos prefetch count"},
    {"request", "active", "boolean", "channel.flow"},
    {"request", "reason", "string", "connection.blocked reason"},
    {"request", "class_id", "integer", "a method spanfeed does not know: its class id"},
    {"request", "method_id", "integer", "... and its method id"},
    {"response", "method", "string", "the reply (`queue.declare-ok`, `basic.get-ok`, ...); a `channel.close` / `connection.close` from the server in place of the reply; publisher confirms: `basic.ack` / `basic.nack` (`error` status)"},
    {"response", "channel", "integer", "channel number (absent: channel 0)"},
    {"response", "version", "string", "protocol header the server sent back (it speaks another version): `error` status"},
    {"response", "version_major", "integer", "connection.start version"},
    {"response", "version_minor", "integer", "connection.start version"},
    {"response", "mechanisms", "string", "connection.start SASL mechanisms"},
    {"response", "channel_max", "integer", "connection.tune channel-max"},
    {"response", "frame_max", "integer", "connection.tune frame-max"},
    {"response", "heartbeat", "integer", "connection.tune heartbeat (s)"},
    {"response", "reply_code", "integer", "server close: reply code; `error` status when neither 200 nor 0 (pika closes channels with 0; a client close with a non-200 code makes its close-ok `error` too)"},
    {"response", "reply_text", "string", "its reply text (256 B)"},
    {"response", "failed_method", "string", "server close: the method it refuses"},
    {"response", "queue", "string", "queue.declare-ok name (server-named queues)"},
    {"response", "message_count", "integer", "queue.declare-ok / purge-ok / delete-ok, basic.get-ok: messages"},
    {"response", "consumer_count", "integer", "queue.declare-ok consumers"},
    {"response", "consumer_tag", "string", "basic.consume-ok / cancel-ok consumer tag"},
    {"response", "delivery_tag", "integer", "basic.get-ok delivery tag; confirms: the publish's sequence number"},
    {"response", "redelivered", "boolean", "basic.get-ok: redelivered"},
    {"response", "multiple", "boolean", "confirm covering several publishes"},
    {"response", "exchange", "string", "basic.get-ok exchange"},
    {"response", "routing_key", "string", "basic.get-ok routing key"},
    {"response", "body_bytes", "integer", "basic.get-ok body size (counted, never kept)"},
    {"response", "active", "boolean", "channel.flow-ok"},
    {"response", "class_id", "integer", "a method spanfeed does not know: its class id"},
    {"response", "method_id", "integer", "... and its method id"},
};

// RED endpoint: method and exchange, else queue ("basic.publish orders", "queue.declare jobs");
// the default exchange reads "(default)", server-named queues "amq.gen-{id}".
bool red_endpoint(const Record& r, EndpointWriter& out) {
  out.add(request_string(r, "method"));
  const bool has_exchange = r.request->fields.has("exchange");
  std::string_view name = has_exchange ? request_string(r, "exchange") : request_string(r, "queue");
  if (name.empty() && !has_exchange) name = response_string(r, "queue");
  if (name.empty() && !has_exchange) return true;
  out.sep();
  if (name.empty()) {
    out.add("(default)");
  } else if (name.starts_with("amq.gen-")) {
    out.add("amq.gen-{id}");
  } else {
    out.add_top(name);
  }
  return true;
}

}  // namespace

extern const ProtocolDescriptor kDescriptor;
const ProtocolDescriptor kDescriptor{
    .id = Protocol::kAmqp,
    .name = "amqp",
    .title = "AMQP 0-9-1",
    .tcp_ports = kTcpPorts,
    .signatures = kSignatures,
    .confirm = confirm,
    .make = make_decoder,
    .fields = kFields,
    .summary_field = "method",
    .endpoint = red_endpoint,
};

}  // namespace spanfeed::amqp
