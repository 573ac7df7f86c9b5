// MQTT decoder tests: crafted packets through the RecordBuilder (CONNECT without its password, a remaining
// length of 4 bytes, a QoS 2 flow, subscriptions with a failure, server publishes, MQTT 5 reason strings,
// garbage), fuzz replay. Runs in the test thread; allocates freely (tests only).
#include <gtest/gtest.h>

#include <string>

#include "db_test_util.h"
#include "decode_test_util.h"

int spanfeed_fuzz_mqtt(const uint8_t* data, size_t size);

namespace spanfeed {
namespace {

using dectest::Harness;
using dectest::kMs;
using dectest::kT0;
using nlohmann::json;

constexpr uint16_t kPort = 1883;

std::string be16s(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }
std::string str(const std::string& s) { return be16s(static_cast<uint16_t>(s.size())) + s; }
std::string varint(size_t n) {
  std::string s;
  do {
    uint8_t b = n & 0x7f;
    n >>= 7;
    if (n != 0) b |= 0x80;
    s.push_back(static_cast<char>(b));
  } while (n != 0);
  return s;
}
std::string packet(uint8_t first, const std::string& body) { return std::string(1, static_cast<char>(first)) + varint(body.size()) + body; }

std::string connect(uint8_t level, const std::string& client_id, bool password) {
  const uint8_t flags = static_cast<uint8_t>(0x02 | (password ? 0xC0 : 0));
  std::string b = str("MQTT") + static_cast<char>(level) + static_cast<char>(flags) + be16s(30);
  if (level >= 5) b += varint(0);
  b += str(client_id);
  if (password) b += str("alice") + str("hunter2-secret");
  return packet(0x10, b);
}
std::string connack(uint8_t code, bool v5 = false) {
  return packet(0x20, std::string(1, '\0') + static_cast<char>(code) + (v5 ? varint(0) : std::string()));
}
std::string publish(uint8_t qos, uint16_t id, const std::string& topic, size_t payload, bool retain = false) {
  std::string b = str(topic) + (qos > 0 ? be16s(id) : std::string()) + std::string(payload, 'p');
  return packet(static_cast<uint8_t>(0x30 | qos << 1 | (retain ? 1 : 0)), b);
}
std::string ack(uint8_t type, uint16_t id) { return packet(static_cast<uint8_t>(type << 4 | (type == 6 ? 2 : 0)), be16s(id)); }

TEST(Mqtt, ConnectWithoutPasswordAndPing) {
  Harness h;
  h.open(kPort);
  h.c2s(connect(4, "dev-1", true), kT0);
  h.s2c(connack(0), kT0 + kMs);
  h.c2s(packet(0xC0, ""), kT0 + 2 * kMs);
  h.s2c(packet(0xD0, ""), kT0 + 3 * kMs);
  h.c2s(packet(0xE0, ""), kT0 + 4 * kMs);
  ASSERT_EQ(h.size(), 3u);
  json r = h.rec(0);
  EXPECT_EQ(r["protocol"], "mqtt");
  EXPECT_EQ(r["request"]["packet"], "CONNECT");
  EXPECT_EQ(r["request"]["client_id"], "dev-1");
  EXPECT_EQ(r["request"]["protocol_level"], 4);
  EXPECT_EQ(r["request"]["clean_session"], true);
  EXPECT_EQ(r["request"]["keep_alive"], 30);
  EXPECT_EQ(r["request"]["username"], "alice");
  EXPECT_EQ(r["response"]["packet"], "CONNACK");
  EXPECT_EQ(r["response"]["return_code"], 0);
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(h.rec(1)["request"]["packet"], "PINGREQ");
  EXPECT_EQ(h.rec(1)["response"]["packet"], "PINGRESP");
  EXPECT_EQ(h.rec(2)["request"]["packet"], "DISCONNECT");
  EXPECT_TRUE(h.rec(2)["response"].is_null());
  for (const std::string& l : h.lines()) EXPECT_EQ(l.find("hunter2"), std::string::npos) << l;
  h.close(kT0 + 5 * kMs);
  h.expect_ledger();
}

TEST(Mqtt, RefusedConnectIsAnError) {
  Harness h;
  h.open(kPort);
  h.c2s(connect(4, "bad", true), kT0);
  h.s2c(connack(5), kT0 + kMs);  // not authorized
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["status"], "error");
  EXPECT_EQ(h.rec(0)["response"]["return_code"], 5);
  h.close(kT0 + 2 * kMs);
  h.expect_ledger();
}

// A payload of 2 MiB + 1 needs a remaining length of 4 bytes; dribbled, the length bytes split too.
TEST(Mqtt, RemainingLengthOfFourBytes) {
  Harness h;
  h.open(kPort);
  const size_t payload = (2u << 20) + 1;
  const std::string p = publish(1, 7, "big/blob", payload);
  ASSERT_EQ(static_cast<uint8_t>(p[4]) & 0x80, 0);
  ASSERT_NE(static_cast<uint8_t>(p[3]) & 0x80, 0);  // bytes 1-4: the length
  h.dribble(Direction::kClientToServer, p.substr(0, 8), 1, kT0);
  h.dribble(Direction::kClientToServer, p.substr(8), 65536, kT0 + kMs);
  h.s2c(ack(4, 7), kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["request"]["topic"], "big/blob");
  EXPECT_EQ(r["request"]["qos"], 1);
  EXPECT_EQ(r["request"]["packet_id"], 7);
  EXPECT_EQ(r["request"]["payload_bytes"], payload);
  EXPECT_EQ(r["request"]["bytes"], p.size());
  EXPECT_EQ(r["response"]["packet"], "PUBACK");
  EXPECT_EQ(r["response"]["packet_id"], 7);
  EXPECT_EQ(h.counters().sum(h.counters().decode_errors), 0u);
  h.close(kT0 + 3 * kMs);
  h.expect_ledger();
}

// QoS 2: PUBLISH/PUBREC and PUBREL/PUBCOMP, two records matched by packet id, out of order with another id.
TEST(Mqtt, QoS2Flow) {
  Harness h;
  h.open(kPort);
  h.c2s(publish(2, 10, "a/b", 5) + publish(2, 11, "a/c", 6), kT0);
  h.s2c(ack(5, 11), kT0 + kMs);
  h.s2c(ack(5, 10), kT0 + 2 * kMs);
  h.c2s(ack(6, 10) + ack(6, 11), kT0 + 3 * kMs);
  h.s2c(ack(7, 10) + ack(7, 11), kT0 + 4 * kMs);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h.rec(0)["request"]["topic"], "a/c");
  EXPECT_EQ(h.rec(0)["request"]["qos"], 2);
  EXPECT_EQ(h.rec(0)["response"]["packet"], "PUBREC");
  EXPECT_EQ(h.rec(0)["response"]["packet_id"], 11);
  EXPECT_EQ(h.rec(1)["request"]["topic"], "a/b");
  EXPECT_EQ(h.rec(1)["request"]["payload_bytes"], 5);
  EXPECT_EQ(h.rec(2)["request"]["packet"], "PUBREL");
  EXPECT_EQ(h.rec(2)["request"]["packet_id"], 10);
  EXPECT_EQ(h.rec(2)["response"]["packet"], "PUBCOMP");
  EXPECT_EQ(h.rec(2)["response"]["packet_id"], 10);
  EXPECT_EQ(h.rec(3)["response"]["packet_id"], 11);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(h.rec(i)["status"], "ok");
  h.close(kT0 + 5 * kMs);
  h.expect_ledger();
  EXPECT_EQ(h.counters().unmatched, 0u);
}

// SUBSCRIBE with a refused filter (0x80): an error record; server publishes: records of their own, and the
// client's acknowledgements to them make none.
TEST(Mqtt, SubscribeAndServerPublishes) {
  Harness h;
  h.open(kPort);
  h.c2s(packet(0x82, be16s(3) + str("s/+") + '\x01' + str("$SYS/#") + '\x00'), kT0);
  h.s2c(packet(0x90, be16s(3) + std::string("\x01\x80", 2)), kT0 + kMs);
  h.s2c(publish(0, 0, "s/1", 4, true) + publish(1, 100, "s/2", 8), kT0 + 2 * kMs);
  h.c2s(ack(4, 100), kT0 + 3 * kMs);
  h.c2s(packet(0xA2, be16s(4) + str("s/+")), kT0 + 4 * kMs);
  h.s2c(packet(0xB0, be16s(4)), kT0 + 5 * kMs);
  ASSERT_EQ(h.size(), 4u);
  json r = h.rec(0);
  EXPECT_EQ(r["request"]["topic_filters"], "s/+,$SYS/#");
  EXPECT_EQ(r["request"]["requested_qos"], "1,0");
  EXPECT_EQ(r["request"]["filters"], 2);
  EXPECT_EQ(r["response"]["granted_qos"], "1,128");
  EXPECT_EQ(r["status"], "error");
  EXPECT_EQ(h.rec(1)["request"]["from_server"], true);
  EXPECT_EQ(h.rec(1)["request"]["retain"], true);
  EXPECT_EQ(h.rec(1)["request"]["qos"], 0);
  EXPECT_EQ(h.rec(2)["request"]["packet_id"], 100);
  EXPECT_EQ(h.rec(2)["request"]["qos"], 1);
  EXPECT_EQ(h.rec(3)["request"]["packet"], "UNSUBSCRIBE");
  EXPECT_EQ(h.rec(3)["response"]["packet"], "UNSUBACK");
  h.close(kT0 + 6 * kMs);
  h.expect_ledger();
  EXPECT_EQ(h.counters().unmatched, 0u);
}

// MQTT 5: properties skipped, the reason string kept; a PUBACK reason from 0x80 is an error.
TEST(Mqtt, Mqtt5ReasonString) {
  Harness h;
  h.open(kPort);
  h.c2s(connect(5, "v5", false), kT0);
  h.s2c(connack(0, true), kT0 + kMs);
  std::string props = std::string("\x23", 1) + be16s(1) + std::string("\x03", 1) + str("text/plain");
  h.c2s(packet(0x32, str("t") + be16s(9) + varint(props.size()) + props + "hello"), kT0 + 2 * kMs);
  std::string rprops = std::string("\x1F", 1) + str("quota exceeded");
  h.s2c(packet(0x40, be16s(9) + '\x97' + varint(rprops.size()) + rprops), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["response"]["reason_code"], 0);
  json r = h.rec(1);
  EXPECT_EQ(r["request"]["payload_bytes"], 5);
  EXPECT_EQ(r["response"]["reason_code"], 0x97);
  EXPECT_EQ(r["response"]["reason_string"], "quota exceeded");
  EXPECT_EQ(r["status"], "error");
  h.close(kT0 + 4 * kMs);
  h.expect_ledger();
}

// The CONNECT lost to a gap: its CONNACK's properties tell 5.0, and the SUBSCRIBE and PUBLISH after it are
// read as 5.0 (properties skipped). They were read as 3.1.1, every field after the packet id one byte off:
// empty topic filters, payload sizes one too many, on the corpus MQTT capture with 3% loss.
TEST(Mqtt, Mqtt5KnownFromTheConnackWhenTheConnectWasLost) {
  Harness h;
  h.open(kPort);
  h.gap(Direction::kClientToServer, 20, kT0);
  h.s2c(connack(0, true), kT0 + kMs);
  h.c2s(packet(0x82, be16s(1) + varint(0) + str("s/+") + '\x01'), kT0 + 2 * kMs);
  h.s2c(packet(0x90, be16s(1) + varint(0) + '\x01'), kT0 + 3 * kMs);
  h.s2c(packet(0x32, str("s/1") + be16s(7) + varint(0) + "hello"), kT0 + 4 * kMs);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(0)["status"], "unmatched");
  EXPECT_EQ(h.rec(0)["response"]["reason_code"], 0);
  EXPECT_EQ(h.rec(1)["request"]["topic_filters"], "s/+");
  EXPECT_EQ(h.rec(1)["request"]["requested_qos"], "1");
  EXPECT_EQ(h.rec(1)["response"]["granted_qos"], "1");
  EXPECT_EQ(h.rec(2)["request"]["topic"], "s/1");
  EXPECT_EQ(h.rec(2)["request"]["payload_bytes"], 5);
  h.close(kT0 + 5 * kMs);
  h.expect_ledger();
}

// A PUBLISH whose topic does not fit in its own packet is no PUBLISH (bytes met after a resync inside a burst
// of small publishes looked like one): a decode error, no record. It was a clean `ok` record without a topic
// (2 records per lossy replay of the corpus MQTT capture).
TEST(Mqtt, PublishWhoseTopicOverrunsThePacketIsNoRecord) {
  Harness h;
  h.open(kPort);
  h.c2s(connect(4, "c", false), kT0);
  h.s2c(connack(0), kT0 + kMs);
  h.c2s(packet(0x30, be16s(200) + "ab") + publish(0, 0, "t/1", 3), kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(1)["request"]["topic"], "t/1");
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kMqtt)], 1u);
  h.close(kT0 + 3 * kMs);
  h.expect_ledger();
}

// Garbage: counted once, no record, no crash; a later chunk that starts a packet resynchronises.
TEST(Mqtt, GarbageIsCountedAndResynced) {
  Harness h;
  h.open(kPort);
  h.c2s(connect(4, "g", false), kT0);
  h.s2c(connack(0), kT0 + kMs);
  h.c2s(std::string("\x00\xff\xff\xff\xff\x01garbage", 13), kT0 + 2 * kMs);
  h.c2s(std::string("\xf3\x01zz", 4), kT0 + 3 * kMs);
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kMqtt)], 1u);
  h.c2s(packet(0xC0, ""), kT0 + 4 * kMs);
  h.s2c(packet(0xD0, ""), kT0 + 5 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(1)["request"]["packet"], "PINGREQ");
  EXPECT_EQ(h.counters().resyncs, 1u);
  // A fifth remaining-length byte is malformed.
  h.c2s(std::string("\x30\xff\xff\xff\xff\x01", 6), kT0 + 6 * kMs);
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kMqtt)], 2u);
  h.close(kT0 + 7 * kMs);
  h.expect_ledger();
}

// A connection met mid-stream on an unmapped port (no CONNECT in the capture). A publisher's QoS 1 PUBLISH
// is found by its shape; PUBLISH may come from either side, so the flow keeps its orientation (the higher
// port is the client). A QoS 2 flow between publishes is found by its PUBREL alone.
TEST(Mqtt, MidStreamOnAnUnmappedPort) {
  Harness h;
  h.open(18830);
  h.c2s(publish(1, 300, "plant/line-4/temp", 21), kT0);
  h.s2c(ack(4, 300), kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["protocol"], "mqtt");
  EXPECT_EQ(h.rec(0)["server"]["port"], 18830);
  EXPECT_EQ(h.rec(0)["request"]["topic"], "plant/line-4/temp");
  EXPECT_EQ(h.rec(0)["request"]["payload_bytes"], 21);
  EXPECT_EQ(h.rec(0)["response"]["packet"], "PUBACK");
  EXPECT_EQ(h.rec(0)["latency_us"], 1000);
  h.open(18831, false, kT0, 1);
  h.c2s(ack(6, 41), kT0, 1);
  h.s2c(ack(7, 41), kT0 + kMs, 1);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(1)["request"]["packet"], "PUBREL");
  EXPECT_EQ(h.rec(1)["response"]["packet"], "PUBCOMP");
  EXPECT_EQ(h.counters().detected_by_payload[static_cast<size_t>(Protocol::kMqtt)], 2u);
  // Not MQTT: a wildcard topic, a zero packet id, a lone acknowledgement.
  auto sniff = [](const std::string& b) {
    return protocol_descriptor(Protocol::kMqtt)->confirm(dectest::bytes_of(b), Transport::kTcp);
  };
  EXPECT_EQ(sniff(publish(0, 0, "a/#", 3)), SniffResult::kNo);
  EXPECT_EQ(sniff(publish(1, 0, "a/b", 3)), SniffResult::kNo);
  EXPECT_EQ(sniff(ack(4, 7)), SniffResult::kNo);
  EXPECT_EQ(sniff(packet(0x82, be16s(5) + str("a/+") + std::string(1, '\1'))), SniffResult::kRequest);  // SUBSCRIBE
  EXPECT_EQ(sniff(packet(0x90, be16s(5) + std::string(1, '\1'))), SniffResult::kResponse);               // SUBACK
  h.close(kT0 + 2 * kMs, 0);
  h.close(kT0 + 2 * kMs, 1);
  h.expect_ledger();
}

TEST(FuzzReplay, Mqtt) {
  using fuzz::make_script;
  const std::vector<std::string> seeds = {
      make_script(false, {{false, connect(4, "c", true)}, {true, connack(0)}, {false, publish(2, 1, "t", 3)},
                          {true, ack(5, 1)}, {false, ack(6, 1)}, {true, ack(7, 1)}}),
      make_script(false, {{false, connect(5, "c5", false)}, {true, connack(0, true)},
                          {false, packet(0x82, be16s(3) + varint(0) + str("s/#") + '\x01')},
                          {true, packet(0x90, be16s(3) + varint(0) + '\x01') + publish(1, 5, "s/x", 20)}}),
  };
  dbtest::fuzz_exercise("mqtt", spanfeed_fuzz_mqtt, seeds);
}

}  // namespace
}  // namespace spanfeed
