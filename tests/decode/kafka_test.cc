// Kafka decoder tests: the shared captures and a slice of the kcat / mock-cluster corpus against golden records
// and tshark / DeepFlow key fields; crafted streams (pipelining, flexible versions with tagged fields, unknown
// versions, split headers, big record sets, gaps, garbage); fuzz replay. Runs in the test thread; allocates freely.
#include "db_test_util.h"
#include "decode/kafka/kafka_wire.h"

int spanfeed_fuzz_kafka(const uint8_t* data, size_t size);

namespace spanfeed {
namespace {

using dbtest::be16s;
using dbtest::be32s;
using dbtest::GoldenCase;
using dbtest::KeyField;
using dectest::Harness;
using dectest::kMs;
using dectest::kT0;
using json = nlohmann::json;

constexpr Protocol kP = Protocol::kKafka;
constexpr size_t kPi = static_cast<size_t>(kP);

// The DeepFlow captures run on 9092 and 36333 (found by the request sniff; bound here so a short first
// segment cannot change that). corpus-slice: 13 of the 17 connections of the kcat corpus (GROUND_TRUTH.md).
const std::vector<GoldenCase> kCases = {
    {"kafka", "00-produce-v2", kP, {}, false, 1, 1, 0, 0, 0},
    {"kafka", "00-produce-v7-sw8", kP, {36333}, false, 1, 1, 0, 0, 0},
    {"kafka", "00-produce-v9", kP, {36333}, false, 1, 1, 0, 0, 0},
    {"kafka", "01-fetch-v12-ok", kP, {36333}, false, 1, 1, 0, 0, 0},
    {"kafka", "01-fetch-v12-perf", kP, {}, false, 1, 1, 0, 0, 0},
    {"kafka", "01-fetch-v12-unknown", kP, {}, false, 1, 0, 1, 0, 0},
    {"kafka", "11-join-group-v7", kP, {36333}, false, 1, 0, 1, 0, 0},
    {"kafka", "13-leave-group-v4", kP, {36333}, false, 1, 1, 0, 0, 0},
    {"kafka", "14-sync-group-v5", kP, {36333}, false, 1, 0, 1, 0, 0},
    {"kafka", "18-api-versions-v3", kP, {}, false, 1, 1, 0, 0, 0},
    {"kafka", "mixed-with-unsupported", kP, {}, false, 3, 3, 0, 0, 0},
    // 100 requests (tshark); 5 acks-0 Produce among the ok; errors: 13 ApiVersions v3 (35), 4 Metadata (29),
    // 1 OffsetCommit (4 x 27); 3 requests in flight when their clients closed.
    {"kafka", "corpus-slice", kP, {}, false, 100, 79, 18, 3, 0},
};

class KafkaGolden : public ::testing::TestWithParam<GoldenCase> {};
TEST_P(KafkaGolden, MatchesCheckedInRecords) { dbtest::check_golden(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Captures, KafkaGolden, ::testing::ValuesIn(kCases), dbtest::golden_case_name);

// From `tshark -r F -d tcp.port==36333,kafka -T fields -e kafka.request_key -e kafka.api_version
// -e kafka.correlation_id -e kafka.client_id -e kafka.topic_name -e kafka.error`, the payload bytes where tshark
// 4.0 stops (Fetch v12+, flexible JoinGroup), and DeepFlow's .result beside each capture.
TEST(KafkaGoldenKeys, FieldsAgreeWithTsharkAndDeepFlow) {
  const std::vector<KeyField> keys = {
      {"00-produce-v2", 0, "/request/api", "Produce"},
      {"00-produce-v2", 0, "/request/api_version", 2},
      {"00-produce-v2", 0, "/request/correlation_id", 1},
      {"00-produce-v2", 0, "/request/client_id", "console-producer"},
      {"00-produce-v2", 0, "/request/topics", json::array({"topic2"})},
      {"00-produce-v2", 0, "/request/acks", 1},
      {"00-produce-v2", 0, "/request/records", 1},
      {"00-produce-v2", 0, "/request/record_bytes", 61},
      {"00-produce-v2", 0, "/request/bytes", 121},
      {"00-produce-v2", 0, "/response/bytes", 50},
      {"00-produce-v7-sw8", 0, "/request/client_id", "kafka-python-producer-1"},
      {"00-produce-v7-sw8", 0, "/request/topics", json::array({"quickstart-events"})},
      {"00-produce-v7-sw8", 0, "/request/records", 1},
      {"00-produce-v9", 0, "/request/api_version", 9},
      {"00-produce-v9", 0, "/request/correlation_id", 47},
      {"00-produce-v9", 0, "/request/topics", json::array({"zqy-test"})},
      {"00-produce-v9", 0, "/request/records", 1},
      {"00-produce-v9", 0, "/request/record_bytes", 99},
      {"00-produce-v9", 0, "/response/partitions", 1},
      {"00-produce-v9", 0, "/response/throttle_time_ms", 0},
      {"01-fetch-v12-ok", 0, "/request/api", "Fetch"},
      {"01-fetch-v12-ok", 0, "/request/correlation_id", 15603},
      {"01-fetch-v12-ok", 0, "/request/client_id", "consumer-console-consumer-8919-1"},
      {"01-fetch-v12-ok", 0, "/request/topics", json::array({"zqy-test"})},
      {"01-fetch-v12-ok", 0, "/request/partitions", 1},
      {"01-fetch-v12-ok", 0, "/response/error_code", 0},
      {"01-fetch-v12-ok", 0, "/response/records", 0},
      // 0x1400 after the throttle time: a code Kafka has no name for (DeepFlow: ServerError 5120).
      {"01-fetch-v12-unknown", 0, "/response/error_code", 5120},
      {"01-fetch-v12-unknown", 0, "/response/error", "UNKNOWN_5120"},
      {"01-fetch-v12-unknown", 0, "/status", "error"},
      {"11-join-group-v7", 0, "/request/api", "JoinGroup"},
      {"11-join-group-v7", 0, "/request/group_id", "zzzz12"},
      {"11-join-group-v7", 0, "/response/error_code", -1},
      {"11-join-group-v7", 0, "/response/error", "UNKNOWN_SERVER_ERROR"},
      {"11-join-group-v7", 0, "/response/member_id", "consumer-zzzz12-1-d8e04a09-9f69-4efe-8f78-617db03d8090"},
      {"13-leave-group-v4", 0, "/request/group_id", "zzzz12"},
      {"13-leave-group-v4", 0, "/request/member_id", "consumer-zzzz12-1-a8623cc8-5472-4736-812e-d9817d27dfca"},
      {"13-leave-group-v4", 0, "/response/error_code", 0},
      {"14-sync-group-v5", 0, "/request/generation_id", 7},
      {"14-sync-group-v5", 0, "/response/error_code", -1},
      {"14-sync-group-v5", 0, "/response/protocol_name", "range"},
      {"18-api-versions-v3", 0, "/request/api", "ApiVersions"},
      {"18-api-versions-v3", 0, "/request/client_id", "adminclient-1"},
      {"18-api-versions-v3", 0, "/response/error_code", 0},
      {"18-api-versions-v3", 0, "/response/throttle_time_ms", 0},
      {"18-api-versions-v3", 0, "/response/bytes", 439},
      // Fetch 15551976 is answered last: the three records come in response order.
      {"mixed-with-unsupported", 0, "/request/api", "OffsetCommit"},
      {"mixed-with-unsupported", 0, "/request/group_id", "frauddetectionservice"},
      {"mixed-with-unsupported", 0, "/request/topics", json::array({"orders"})},
      {"mixed-with-unsupported", 1, "/request/api", "Heartbeat"},
      {"mixed-with-unsupported", 1, "/request/member_id",
       "consumer-frauddetectionservice-1-3f6f2451-d192-4d49-bb3b-f46ed49b57a9"},
      {"mixed-with-unsupported", 2, "/request/api", "Fetch"},
      {"mixed-with-unsupported", 2, "/request/api_version", 13},
      {"mixed-with-unsupported", 2, "/request/correlation_id", 15551976},
      {"mixed-with-unsupported", 2, "/response/error_code", 0},
      // librdkafka asks ApiVersions v3 first; the mock cluster answers UNSUPPORTED_VERSION in version 0.
      {"corpus-slice", 0, "/request/api_version", 3},
      {"corpus-slice", 0, "/request/client_id", "corpus-kcat"},
      {"corpus-slice", 0, "/response/error", "UNSUPPORTED_VERSION"},
      {"corpus-slice", 1, "/request/api_version", 0},
      {"corpus-slice", 17, "/request/acks", 0},
      {"corpus-slice", 17, "/request/topics", json::array({"logs"})},
      {"corpus-slice", 17, "/request/records", 200},
      {"corpus-slice", 66, "/request/group_id", "corpus-pair"},
      {"corpus-slice", 66, "/response/failed_partitions", 4},
      {"corpus-slice", 66, "/response/partition_errors", json::array({"REBALANCE_IN_PROGRESS"})},
  };
  dbtest::check_keys(kCases, keys);
}

// ---------------------------------------------------------------- wire builders

std::string uvarint(uint32_t v) {
  std::string s;
  while (v >= 0x80) {
    s += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  return s + static_cast<char>(v);
}
std::string str(const std::string& s) { return be16s(static_cast<uint16_t>(s.size())) + s; }
std::string cstr(const std::string& s) { return uvarint(static_cast<uint32_t>(s.size() + 1)) + s; }
std::string i64(int64_t v) {
  return be32s(static_cast<uint32_t>(static_cast<uint64_t>(v) >> 32)) + be32s(static_cast<uint32_t>(v));
}
std::string frame(const std::string& b) { return be32s(static_cast<uint32_t>(b.size())) + b; }
std::string request(int16_t api, int16_t ver, uint32_t corr, const std::string& body, bool flex,
                    const std::string& header_tags = std::string(1, '\0')) {
  return frame(be16s(static_cast<uint16_t>(api)) + be16s(static_cast<uint16_t>(ver)) + be32s(corr) + str("cli") +
               (flex ? header_tags : "") + body);
}
std::string response(uint32_t corr, const std::string& body, bool flex) {
  return frame(be32s(corr) + (flex ? std::string(1, '\0') : "") + body);
}
// A v2 record batch of `count` records, `pad` bytes of record data.
std::string batch(uint32_t count, size_t pad) {
  const std::string after_len = be32s(0) + '\x02' + be32s(0) + be16s(0) + be32s(count - 1) + i64(0) + i64(0) +
                                i64(-1) + be16s(0xFFFF) + be32s(0xFFFFFFFF) + be32s(count) + std::string(pad, 'r');
  return i64(0) + be32s(static_cast<uint32_t>(after_len.size())) + after_len;
}

// Metadata v1 (not flexible): topics[name], then the response's brokers, controller, topics.
std::string metadata_req(uint32_t corr, const std::string& topic) {
  return request(3, 1, corr, be32s(1) + str(topic), false);
}
std::string metadata_resp(uint32_t corr, const std::string& topic, int16_t err) {
  const std::string brokers = be32s(1) + be32s(1) + str("b1") + be32s(9092) + be16s(0xFFFF);
  const std::string part = be16s(0) + be32s(0) + be32s(1) + be32s(1) + be32s(1) + be32s(1) + be32s(1);
  const std::string topics = be32s(1) + be16s(static_cast<uint16_t>(err)) + str(topic) + '\0' +
                             (err == 0 ? be32s(1) + part : be32s(0));
  return response(corr, brokers + be32s(1) + topics, false);
}

TEST(Kafka, PipelinedRequestsWithInOrderResponses) {
  Harness h;
  h.open(9092);
  h.c2s(metadata_req(7, "a") + metadata_req(8, "b") + metadata_req(9, "c"), kT0);
  h.s2c(metadata_resp(7, "a", 0), kT0 + kMs);
  h.s2c(metadata_resp(8, "b", 3) + metadata_resp(9, "c", 0), kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const json r = h.rec(i);
    EXPECT_EQ(r["request"]["api"], "Metadata");
    EXPECT_EQ(r["request"]["correlation_id"], 7 + i);
    EXPECT_EQ(r["response"]["correlation_id"], 7 + i);
    EXPECT_EQ(r["request"]["topics"], json::array({std::string(1, static_cast<char>('a' + i))}));
  }
  EXPECT_EQ(h.rec(0)["status"], "ok");
  EXPECT_EQ(h.rec(0)["response"]["partitions"], 1);
  EXPECT_EQ(h.rec(1)["status"], "error");
  EXPECT_EQ(h.rec(1)["response"]["failed_partitions"], 1);
  EXPECT_EQ(h.rec(1)["response"]["partition_errors"], json::array({"UNKNOWN_TOPIC_OR_PARTITION"}));
  EXPECT_EQ(h.rec(2)["status"], "ok");
  EXPECT_EQ(h.counters().decode_errors[kPi], 0u);
  h.expect_ledger();
}

// Heartbeat v9 does not exist (yet): the request's header is read, the response is matched by correlation id
// and its leading throttle time and error code are read; both counted.
TEST(Kafka, UnknownApiVersionIsMatchedAndCounted) {
  Harness h;
  h.open(9092);
  h.c2s(request(12, 9, 41, cstr("g") + be32s(3) + cstr("m") + '\0' + cstr("new") + '\0', true), kT0);
  h.s2c(response(41, be32s(5) + be16s(27) + std::string("\x01\x00", 2) + cstr("later"), true), kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  const json r = h.rec(0);
  EXPECT_EQ(r["request"]["api"], "Heartbeat");
  EXPECT_EQ(r["request"]["api_version"], 9);
  EXPECT_EQ(r["request"]["unsupported_version"], true);
  EXPECT_FALSE(r["request"].contains("group_id"));
  EXPECT_EQ(r["response"]["unsupported_version"], true);
  EXPECT_EQ(r["response"]["throttle_time_ms"], 5);
  EXPECT_EQ(r["response"]["error_code"], 27);
  EXPECT_EQ(r["response"]["error"], "REBALANCE_IN_PROGRESS");
  EXPECT_EQ(r["status"], "error");
  EXPECT_EQ(h.counters().decode_errors[kPi], 2u);
  h.expect_ledger();
}

// Fetch v12: a tagged field in the request header and in the body, compact strings and arrays; the response's
// header has tagged fields too, and its record set holds two batches and a cut third one.
TEST(Kafka, FlexibleVersionWithTaggedFields) {
  Harness h;
  h.open(9092);
  const std::string header_tags = uvarint(1) + uvarint(0) + uvarint(3) + "abc";
  const std::string part = be32s(2) + be32s(0) + i64(100) + be32s(0xFFFFFFFF) + i64(-1) + be32s(1 << 20) + '\0';
  const std::string body = be32s(0xFFFFFFFF) + be32s(500) + be32s(1) + be32s(1 << 20) + '\0' + be32s(0) +
                           be32s(0) + uvarint(2) + cstr("events") + uvarint(2) + part + '\0' + uvarint(1) +
                           cstr("rack-1") + uvarint(2) + uvarint(7) + uvarint(2) + "xy" + uvarint(9) + uvarint(0);
  h.c2s(request(1, 12, 1000, body, true, header_tags), kT0);
  const std::string records = batch(3, 40) + batch(5, 10) + batch(2, 100).substr(0, 70);
  const std::string rpart = be32s(2) + be16s(0) + i64(200) + i64(200) + i64(0) + uvarint(1) + be32s(0xFFFFFFFF) +
                            uvarint(static_cast<uint32_t>(records.size() + 1)) + records + '\0';
  h.s2c(response(1000, be32s(0) + be16s(0) + be32s(77) + uvarint(2) + cstr("events") + uvarint(2) + rpart + '\0' +
                           '\0',
                 true),
        kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  const json r = h.rec(0);
  EXPECT_EQ(r["request"]["api"], "Fetch");
  EXPECT_EQ(r["request"]["client_id"], "cli");
  EXPECT_EQ(r["request"]["topics"], json::array({"events"}));
  EXPECT_EQ(r["request"]["partitions"], 1);
  EXPECT_EQ(r["response"]["records"], 8);  // the cut batch is not counted
  EXPECT_EQ(r["response"]["record_bytes"], records.size());
  EXPECT_EQ(r["response"]["partitions"], 1);
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(h.counters().decode_errors[kPi], 0u);
  h.expect_ledger();
}

std::string produce_v9(uint32_t corr, int16_t acks, const std::string& topic, const std::string& records) {
  const std::string part = be32s(0) + uvarint(static_cast<uint32_t>(records.size() + 1)) + records + '\0';
  return request(0, 9, corr,
                 std::string(1, '\0') + be16s(static_cast<uint16_t>(acks)) + be32s(1500) + uvarint(2) + cstr(topic) +
                     uvarint(2) + part + '\0' + '\0',
                 true);
}
std::string produce_v9_resp(uint32_t corr, const std::string& topic, int16_t err) {
  const std::string part = be32s(0) + be16s(static_cast<uint16_t>(err)) + i64(35) + i64(-1) + i64(0) + uvarint(1) +
                           '\0' + '\0';
  return response(corr, uvarint(2) + cstr(topic) + uvarint(2) + part + '\0' + be32s(0) + '\0', true);
}

// Every byte on its own: the length, the header and each field are split across segments.
TEST(Kafka, SegmentsSplitMidHeader) {
  Harness h;
  h.open(9092);
  const std::string req = produce_v9(5, -1, "orders", batch(4, 30) + batch(6, 12));
  h.dribble(Direction::kClientToServer, req, 1, kT0);
  h.dribble(Direction::kServerToClient, produce_v9_resp(5, "orders", 6), 1, kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  const json r = h.rec(0);
  EXPECT_EQ(r["request"]["acks"], -1);
  EXPECT_EQ(r["request"]["records"], 10);
  EXPECT_EQ(r["request"]["bytes"], req.size());
  EXPECT_EQ(r["request"]["topics"], json::array({"orders"}));
  EXPECT_EQ(r["response"]["partition_errors"], json::array({"NOT_LEADER_OR_FOLLOWER"}));
  EXPECT_EQ(r["status"], "error");
  EXPECT_EQ(h.builder().carry_buffers_in_use(), 0u);
  h.expect_ledger();
}

// A 2 MB Produce is walked as it streams: no buffer holds it (the carry buffers are 4 KiB here).
TEST(Kafka, LargeProduceIsNotBuffered) {
  Harness h;
  h.open(9092);
  std::string records;
  for (int i = 0; i < 20; ++i) records += batch(100, 100000);
  const std::string req = produce_v9(9, 1, "big", records);
  h.dribble(Direction::kClientToServer, req, 1460, kT0);
  EXPECT_EQ(h.builder().messages_in_use(), 1u);  // the request, pending
  h.s2c(produce_v9_resp(9, "big", 0), kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["request"]["records"], 2000);
  EXPECT_EQ(h.rec(0)["request"]["record_bytes"], records.size());
  EXPECT_EQ(h.rec(0)["status"], "ok");
  EXPECT_EQ(h.builder().carry_buffers_in_use(), 0u);
  EXPECT_EQ(h.counters().carry_overflow, 0u);
  h.expect_ledger();
}

// acks 0: an ok record without a response; a response anyway (the mock cluster sends one) is no record.
TEST(Kafka, AcksZeroProduceExpectsNoResponse) {
  Harness h;
  h.open(9092);
  h.c2s(produce_v9(1, 0, "logs", batch(2, 5)), kT0);
  h.c2s(metadata_req(2, "logs"), kT0 + kMs);
  h.s2c(produce_v9_resp(1, "logs", 0), kT0 + 2 * kMs);
  h.s2c(metadata_resp(2, "logs", 0), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["request"]["acks"], 0);
  EXPECT_TRUE(h.rec(0)["response"].is_null());
  EXPECT_EQ(h.rec(0)["status"], "ok");
  EXPECT_EQ(h.rec(1)["request"]["api"], "Metadata");
  EXPECT_EQ(h.counters().interim[kPi], 1u);
  h.expect_ledger();
}

// A hole inside a record set is skipped by count (the record is flagged); one in a header loses the framing
// until a message start whose correlation id is known.
TEST(Kafka, GapsInsideRecordsAndHeaders) {
  Harness h;
  h.open(9092);
  const std::string req = produce_v9(11, 1, "t", batch(3, 3000));
  h.c2s(req.substr(0, 200), kT0);
  h.gap(Direction::kClientToServer, 1000, kT0 + kMs);
  h.c2s(req.substr(1200), kT0 + 2 * kMs);
  h.c2s(metadata_req(12, "u"), kT0 + 3 * kMs);
  const std::string r1 = produce_v9_resp(11, "t", 0);
  h.s2c(r1.substr(0, 6), kT0 + 4 * kMs);
  h.gap(Direction::kServerToClient, r1.size() - 6, kT0 + 5 * kMs);
  h.s2c(std::string(20, 'x'), kT0 + 6 * kMs);  // not a message start: skipped
  h.s2c(metadata_resp(12, "u", 0), kT0 + 7 * kMs);
  h.close(kT0 + 8 * kMs);
  ASSERT_EQ(h.size(), 2u);
  const json m = h.rec(0);
  EXPECT_EQ(m["request"]["correlation_id"], 12);
  EXPECT_EQ(m["status"], "ok");
  const json p = h.rec(1);
  EXPECT_EQ(p["request"]["correlation_id"], 11);
  EXPECT_EQ(p["request"]["records"], 3);  // the batch header came before the hole
  EXPECT_EQ(p["status"], "timeout");
  EXPECT_NE(std::find(p["flags"].begin(), p["flags"].end(), "gap"), p["flags"].end());
  EXPECT_EQ(h.counters().gaps_absorbed, 1u);
  EXPECT_EQ(h.counters().resyncs, 1u);
  h.expect_ledger();
}

TEST(Kafka, GarbageIsCountedAndSkipped) {
  Harness h;
  h.open(9092);
  h.c2s("GET / HTTP/1.1\r\nHost: x\r\n\r\n", kT0);
  h.c2s(std::string("\x7f\xff\xff\xff\x00\x00", 6), kT0 + kMs);
  h.c2s(metadata_req(3, "z"), kT0 + 2 * kMs);
  h.s2c(metadata_resp(3, "z", 0), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["request"]["topics"], json::array({"z"}));
  EXPECT_EQ(h.counters().decode_errors[kPi], 1u);
  EXPECT_EQ(h.counters().resyncs, 1u);
  // A length past the 128 MiB cap in the middle of a flow: counted, the flow resynchronises.
  h.c2s(std::string("\x7f\xff\xff\xff", 4) + metadata_req(4, "y"), kT0 + 4 * kMs);
  EXPECT_EQ(h.counters().decode_errors[kPi], 2u);
  h.close(kT0 + 5 * kMs);
  h.expect_ledger();
}

// On a port of its own the first request is found by the sniff; its response follows.
TEST(Kafka, DetectedOnAnUnmappedPort) {
  Harness h;
  h.open(36333);
  h.c2s(request(18, 0, 1, "", false), kT0);
  h.s2c(response(1, be16s(0) + be32s(1) + be16s(0) + be16s(0) + be16s(9), false), kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["protocol"], "kafka");
  EXPECT_EQ(h.rec(0)["request"]["api"], "ApiVersions");
  EXPECT_EQ(h.rec(0)["response"]["error_code"], 0);
  EXPECT_EQ(h.counters().detected_by_payload[kPi], 1u);
  h.expect_ledger();
}

// What the sniff must not take for a request on an unmapped port: a MySQL server's OK packets (their bytes
// read as a "Produce v2" with acks 256), and a Produce response with correlation id 18 (read as a "Produce
// v18" whose client id is the topic). A real Produce v2 passes.
TEST(Kafka, SniffRejectsLookalikes) {
  auto sniff = [](const std::string& b) {
    return protocol_descriptor(Protocol::kKafka)->confirm(dectest::bytes_of(b), Transport::kTcp);
  };
  const std::string ok_packet("\x07\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00", 11);
  EXPECT_EQ(sniff(ok_packet + ok_packet), SniffResult::kNo);
  const std::string produce_resp = be32s(54) + be32s(18) + be32s(1) + be16s(6) + "orders" + be32s(1) + be32s(0) +
                                   be16s(0) + std::string(24, '\0');
  EXPECT_EQ(sniff(produce_resp), SniffResult::kNo);
  const std::string body = be16s(1) + be32s(1500) + be32s(0);  // acks 1, timeout, no topics
  const std::string produce_v2 = be32s(static_cast<uint32_t>(10 + 3 + body.size())) + be16s(0) + be16s(2) + be32s(7) +
                                 be16s(3) + "cli" + body;
  EXPECT_EQ(sniff(produce_v2), SniffResult::kRequest);
}

// The walk always advances: every array element reads at least one byte in every version a layout knows,
// arrays are balanced and nest at most 4 deep (the walker's stack), and a layout has fewer than 255 ops.
TEST(KafkaLayouts, EveryArrayElementReadsBytes) {
  using kafka::OpKind;
  size_t checked = 0;
  for (const kafka::ApiLayout& l : kafka::api_layouts()) {
    for (const auto& ops : {l.request, l.response}) {
      ASSERT_LT(ops.size(), 255u) << l.name;
      for (unsigned v = 0; v <= l.max_version; ++v) {
        const bool flex = l.flexible_from != kafka::kNoFlexible && v >= l.flexible_from;
        auto active = [&](const kafka::Op& op) { return v >= op.min_version && v <= op.max_version; };
        int depth = 0;
        for (size_t i = 0; i < ops.size(); ++i) {
          if (ops[i].kind == OpKind::kEnd) --depth;
          if (ops[i].kind != OpKind::kArr) continue;
          ++depth;
          EXPECT_LE(depth, 4) << l.name << " v" << v;
          if (!active(ops[i])) continue;
          int d = 0;
          bool reads = false;
          size_t j = i;
          for (; j < ops.size(); ++j) {
            if (ops[j].kind == OpKind::kArr) ++d;
            if (ops[j].kind == OpKind::kEnd && --d == 0) break;
            if (j > i && ops[j].kind != OpKind::kEnd && active(ops[j]) && (ops[j].kind != OpKind::kTags || flex))
              reads = true;
          }
          EXPECT_LT(j, ops.size()) << l.name << " v" << v << ": array at " << i << " without its end";
          EXPECT_TRUE(reads) << l.name << " v" << v << ": array at " << i << " reads nothing per element";
          ++checked;
        }
        EXPECT_EQ(depth, 0) << l.name << " v" << v;
      }
    }
  }
  EXPECT_GT(checked, 500u);
}

TEST(FuzzReplay, Kafka) {
  using fuzz::make_script;
  const std::vector<std::string> seeds = {
      make_script(false, {{false, metadata_req(1, "a") + metadata_req(2, "b")},
                          {true, metadata_resp(1, "a", 0) + metadata_resp(2, "b", 3)}}),
      make_script(false, {{false, produce_v9(3, 1, "t", batch(2, 20))}, {true, produce_v9_resp(3, "t", 0)}}),
      make_script(false, {{false, request(12, 4, 5, cstr("g") + be32s(1) + cstr("m") + '\0' + '\0', true)},
                          {true, response(5, be32s(0) + be16s(27) + '\0', true)}}),
  };
  dbtest::fuzz_exercise("kafka", spanfeed_fuzz_kafka, seeds);
}

}  // namespace
}  // namespace spanfeed
