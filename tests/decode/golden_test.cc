// Golden tests: the shared captures replayed through parse -> Reassembler -> RecordBuilder, compared to checked-in records.
// Runs in the test thread; allocates freely (tests only). SPANFEED_UPDATE_GOLDEN=1 rewrites the golden files.
#include <gtest/gtest.h>
#include <zlib.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "decode_test_util.h"
#include "decode/pcap_replay.h"

#ifndef SPANFEED_SOURCE_ROOT
#error "SPANFEED_SOURCE_ROOT must be defined by the build"
#endif

namespace spanfeed {
namespace {

using json = nlohmann::json;

const std::string kRoot = SPANFEED_SOURCE_ROOT;

// A field of one record, written down from tshark's dissection: independent of the golden files, so
// regenerating them cannot silently change it.
struct Key {
  size_t index;         // the record's position in the capture's output
  const char* pointer;  // JSON pointer into the record
  json value;
};

struct Case {
  const char* proto;
  const char* name;
  bool gz;           // golden stored gzip-compressed (large)
  size_t records;    // expected record count (checked against tshark / DeepFlow: docs/records.md)
  size_t ok;
  size_t error;
  size_t timeout;
  size_t unmatched;
  uint64_t unknown_flows;  // flows no decoder claimed
  const char* record_proto = nullptr;  // the records' protocol when not `proto` (HTTP/2 captures kept with HTTP's)
  std::vector<Key> keys = {};
};

const Case kCases[] = {
    {"http", "httpv1", false, 1, 1, 0, 0, 0, 0, nullptr, {
      {0, "/request/method", "POST"},
      {0, "/request/path", "/query"},
      {0, "/request/query", "1590632942"},
      {0, "/request/host", "rq.cct.cloud.duba.net"},
      {0, "/request/content_length", 85},
      {0, "/response/status_code", 200},
      {0, "/response/content_length", 54},
      {0, "/latency_us", 84051},
    }},
    {"http", "client-ip", false, 1, 1, 0, 0, 0, 0, nullptr, {
      {0, "/request/method", "POST"},
      {0, "/request/path", "/biz-inquiry-bff/bff/v1/common/check/polymerization"},
      {0, "/request/x_forwarded_for", "10.90.14.76,10.158.233.64"},
      {0, "/response/status_code", 200},
      {0, "/flags", json::array({"truncated"})},
    }},
    {"http", "http-mixed", false, 1, 1, 0, 0, 0, 0, nullptr, {
      {0, "/request/path", "/"},
      {0, "/request/user_agent", "curl/7.29.0"},
      {0, "/response/body_bytes", 4833},
    }},
    {"http", "istio-tcp-frag", false, 1, 1, 0, 0, 0, 0, nullptr, {
      {0, "/request/path", "/productpage"},
      {0, "/response/status_code", 200},
      {0, "/response/version", "1.0"},
    }},
    {"http", "sw8", false, 3, 3, 0, 0, 0, 0, nullptr, {
      {0, "/request/content_length", 351},
      {1, "/request/content_length", 247},
      {2, "/request/content_length", 350},
      {2, "/response/status_code", 200},
    }},
    // HTTP/2 and gRPC captures that begin mid-connection (DeepFlow's): found by the mid-connection
    // HEADERS check; header blocks that refer to dynamic-table entries never seen are `undecodable`.
    {"http", "grpc-segmented", false, 1, 0, 0, 1, 0, 0, "grpc"},
    {"http", "grpc-server-stream", false, 1, 1, 0, 0, 0, 0, "grpc"},
    {"http", "grpc-service-name", false, 1, 1, 0, 0, 0, 0, "grpc", {
      {0, "/request/call_type", "client_streaming"},
      {0, "/request/messages", 3},
    }},
    {"http", "grpc-unary", false, 1, 1, 0, 0, 0, 0, "grpc", {
      {0, "/request/service", "agent.Synchronizer"},
      {0, "/request/grpc_method", "Sync"},
    }},
    {"http", "grpc-unknown", false, 1, 1, 0, 0, 0, 0, "http2"},
    {"http", "h2c_ascii", false, 1, 1, 0, 0, 0, 0, "grpc", {
      {0, "/request/path", "/hipstershop.CartService/GetCart"},
    }},
    {"http", "http2-multi", false, 2, 2, 0, 0, 0, 0, "http2", {
      {0, "/request/undecodable", true},
    }},
    {"http", "httpv2-stream-id", false, 1, 0, 0, 1, 0, 0, "http2"},
    {"redis", "redis", false, 10, 10, 0, 0, 0, 0, nullptr, {
      {0, "/request/command", "GET"},
      {0, "/request/key", "user_conf_config_1"},
      {1, "/request/command", "EXISTS"},
      {1, "/response/type", "integer"},
      {9, "/response/size", 490493},
    }},
    {"redis", "redis-debug", false, 1, 1, 0, 0, 0, 0, nullptr, {
      {0, "/request/command", "LRANGE"},
      {0, "/request/key", "mylist"},
      {0, "/response/type", "array"},
      {0, "/response/elements", 300},
    }},
    {"redis", "redis-error", false, 1, 0, 1, 0, 0, 0, nullptr, {
      {0, "/request/command", "GET"},
      {0, "/request/key", "abcd"},
      {0, "/response/error", "NOAUTH Authentication required."},
    }},
    {"dns", "a-and-ns", false, 2, 2, 0, 0, 0, 0, nullptr, {
      {0, "/request/qname", "aa.bb.cc.ddd.eee.fff.zqytest.com"},
      {0, "/request/qtype", "A"},
      {0, "/response/answers", json::parse(R"([{"type":"A","data":"10.50.71.5"}])")},
      {1, "/request/qtype", "AAAA"},
      {1, "/response/answer_count", 0},
    }},
    {"dns", "dns", false, 2, 1, 1, 0, 0, 0, nullptr, {
      {0, "/request/qname", "guoyongxin.com"},
      {0, "/response/rcode", "NXDOMAIN"},
      {1, "/response/rcode", "NOERROR"},
    }},
    {"dns", "dns-tcp-multi", false, 2, 2, 0, 0, 0, 0, nullptr, {
      {0, "/request/id", 0xe831},
      {0, "/response/answers/0/data", "192.168.59.22"},
      {1, "/request/id", 0x5939},
      {1, "/request/qtype", "AAAA"},
    }},
    {"dns", "nxdomain", false, 3, 1, 2, 0, 0, 0, nullptr, {
      {0, "/request/qname", "prod-fcdt-e02.int.frontnode.net"},
      {0, "/response/rcode", "NXDOMAIN"},
      {1, "/response/answers/0/data", "100.103.26.52"},
      {2, "/response/rcode", "NXDOMAIN"},
    }},
    {"dns", "not-handled-qtype", false, 1, 1, 0, 0, 0, 0, nullptr, {
      {0, "/request/qtype", "SRV"},
      {0, "/response/answers/0/data", "0 100 9000 deepflow-byconity-server.deepflow.svc.cluster.local"},
    }},
    {"memcached", "memcached", false, 3, 3, 0, 0, 0, 0, nullptr, {
      {0, "/request/command", "set"},
      {0, "/request/key", "foo"},
      {0, "/response/response", "STORED"},
      {1, "/request/command", "get"},
      {1, "/response/response", "VALUE"},
      {2, "/request/command", "quit"},
    }},
    {"memcached", "memcached-userdata", true, 10154, 10153, 0, 1, 0, 0, nullptr, {
      {0, "/request/key", "ferret_popups_identity_user_pZ61jY9MyyItxjdjo5bFElaffitpaJ_1726624102393"},
      {2, "/request/command", "set"},
      {2, "/response/response", "STORED"},
    }},
    // slices of the corpus (make-corpus.sh phases memcached-binary, memcached-udp): counts in MemcachedCorpus below
    {"memcached", "memcached-binary", false, 52, 29, 23, 0, 0, 0},
    {"memcached", "memcached-udp", false, 104, 100, 3, 1, 0, 0},
    {"smtp", "smtp", false, 9, 8, 1, 0, 0, 0, nullptr, {
      {0, "/request/command", "CONNECT"},
      {0, "/response/code", 220},
      {0, "/response/text", "localhost Python SMTP proxy version 0.3"},
      {1, "/request/command", "EHLO"},
      {1, "/request/argument", "client.example.net"},
      {1, "/response/lines", 3},  // 250-localhost / 250-SIZE 33554432 / 250 HELP, two segments
      {1, "/response/bytes", 15 + 29},
      {2, "/request/argument", "alice@example.net"},
      {3, "/request/argument", "bob@example.org"},
      {3, "/response/code", 250},
      {4, "/request/argument", "nobody@example.org"},
      {4, "/response/code", 550},
      {4, "/status", "error"},
      {5, "/request/command", "DATA"},
      {5, "/request/bytes", 6 + 100},  // "data\r\n" + the 100-byte segment ending "\r\n.\r\n"
      {5, "/request/data_bytes", 97},
      {5, "/response/code", 250},
      {6, "/request/command", "RSET"},
      {7, "/request/command", "NOOP"},
      {8, "/request/command", "QUIT"},
      {8, "/response/code", 221},
    }},
    // 37 connections of /tmp/corpus-modern/tls.pcap: 37 handshakes (6 ended by alerts) + 31 close records.
    {"tls", "corpus", false, 68, 62, 6, 0, 0, 0, nullptr, {
      // TLS: every JA3 / JA3S / SNI / ALPN / version / cipher of the capture matches tshark 4.0 (docs/records.md);
      // a sample of each kind of handshake here. Certificate values: tshark's x509af / x509ce fields.
      {0, "/request/ja3", "0149f47eabf9a20d0893e2a44e5a6323"},
      {0, "/request/sni", "corpus.test"},
      {0, "/response/ja3s", "15af977ce25de452b96affa2addb1036"},
      {0, "/response/version", "TLS 1.3"},
      {0, "/response/cipher_id", 0x1302},
      {3, "/request/kind", "close"},
      {1, "/request/ja3", "976771cc12ab6391a021ebc6c1d77991"},
      {1, "/response/ja3s", "2253c82f03b621c5144709b393fde2c9"},
      {1, "/response/resumption", "psk"},
      {6, "/response/ja3s", "5d79edf64e03689ff559a54e9d9487bc"},
      {6, "/response/alpn", "http/1.1"},
      {6, "/response/certificates/0/serial", "7b88e632f5eb602e86b477470841b776e959195b"},
      {6, "/response/certificates/0/san", json::parse(R"(["corpus.test","www.corpus.test","api.corpus.test"])")},
      {6, "/response/certificates/0/not_before", "2026-12-02T04:56:04Z"},
      {6, "/response/certificates/0/not_after", "2027-01-01T04:56:04Z"},
      {6, "/response/certificates/0/sha256", "ae199ee285bb7078f91072ba65276c9856c4c3ffa4347ce1a1626168aa569035"},
      {7, "/response/ja3s", "4cf820cab8f5a2bf61be14f5493233ae"},
      {7, "/response/resumed", true},
      {14, "/request/alpn", json::parse(R"(["h2","http/1.1"])")},
      {14, "/response/alpn", "h2"},
      {20, "/request/sni", "api.corpus.test"},
      {26, "/request/ja3", "78f0dc5ac5b19daf131a133cfdee9691"},  // curl to an IP literal: no SNI
      {34, "/request/ja3", "78d1e5d25abc984b9bcc883a23eedb91"},
      {34, "/response/hello_retry", true},
      {36, "/response/ja3s", "15af977ce25de452b96affa2addb1036"},
      {42, "/response/cipher_id", 0x009c},
      {42, "/response/ja3s", "53b84e21e1058461bc3fa8235d2ddaf7"},
      {44, "/request/ja3", "0edd08521da4dc0c42c1da2d48ef238f"},
      {52, "/request/ja3", "871a754af286dfb70c1b53c6887c62e0"},
      {52, "/response/ja3s", "394441ab65754e2207b1e1b457b3641d"},
      {52, "/response/resumption", "ticket"},
      {62, "/status", "error"},
      {62, "/response/alert", "protocol_version"},
      {64, "/response/alert", "handshake_failure"},
      {66, "/request/alert", "unknown_ca"},
      {67, "/request/alert", "unknown_ca"},
    }},
    // AMQP slices of /tmp/corpus-modern/amqp.pcap (RabbitMQ 3.10, pika): counts from tshark (docs/records.md).
    {"amqp", "amqp-connections", false, 6, 5, 1, 0, 0, 0, nullptr, {
      // AMQP: methods, names, routing keys, body sizes (tshark: amqp.header.body-size), reply codes.
      {0, "/request/method", "protocol-header"},
      {0, "/response/method", "connection.start"},
      {1, "/request/user", "guest"},
      {1, "/response/heartbeat", 60},
      {3, "/request/reply_code", 200},
      {5, "/request/method", "connection.start-ok"},
      {5, "/response/reply_code", 403},
      {5, "/status", "error"},
    }},
    {"amqp", "amqp-start", false, 21, 21, 0, 0, 0, 0, nullptr, {
      {4, "/request/exchange", "corpus.direct"},
      {4, "/request/exchange_type", "direct"},
      {11, "/request/routing_key", "events.#"},
      {14, "/request/prefetch_count", 50},
      {15, "/request/method", "basic.publish"},
      {15, "/request/routing_key", "orders"},
      {15, "/request/body_bytes", 221},
      {16, "/request/body_bytes", 921},
      {20, "/request/body_bytes", 31},
    }},
    {"amqp", "amqp-errors", false, 11, 9, 2, 0, 0, 0, nullptr, {
      {1, "/request/queue", "orders"},
      {1, "/response/method", "channel.close"},
      {1, "/response/reply_code", 406},
      {1, "/status", "error"},
      {3, "/request/queue", "no-such-queue"},
      {3, "/response/reply_code", 404},
      {3, "/response/reply_text", "NOT_FOUND - no queue 'no-such-queue' in vhost '/'"},
      {9, "/request/method", "channel.close"},
      {9, "/status", "ok"},
    }},
    {"amqp", "amqp-confirms", true, 333, 333, 0, 0, 0, 0, nullptr, {
      {1, "/request/method", "confirm.select"},
      {3, "/request/method", "basic.publish"},
      {3, "/response/method", "basic.ack"},
      {3, "/response/delivery_tag", 2},
      {301, "/response/delivery_tag", 300},
      {302, "/request/reply_code", 0},  // pika's normal channel close: ok
      {302, "/status", "ok"},
      {319, "/request/method", "basic.publish"},  // in a transaction: no reply
      {319, "/response", nullptr},
    }},
    // MQTT: 11 connections of /tmp/corpus-modern/mqtt.pcap (mosquitto 2.0, MQTT 3.1 / 3.1.1 / 5.0).
    {"mqtt", "mqtt-mixed", true, 1269, 1268, 1, 0, 0, 0, nullptr, {
      // MQTT: client ids, protocol levels, packet ids, QoS, topics, return codes (tshark: mqtt.*).
      {0, "/request/client_id", "sub-orders-v31"},
      {0, "/request/protocol_level", 3},
      {1, "/request/topic_filters", "corpus/orders"},
      {1, "/response/granted_qos", "0"},
      {3, "/request/qos", 1},
      {3, "/request/retain", true},
      {3, "/response/packet", "PUBACK"},
      {6, "/request/topic", "corpus/orders"},
      {6, "/request/qos", 2},
      {6, "/request/packet_id", 1},
      {6, "/response/packet", "PUBREC"},
      {22, "/request/from_server", true},
      {40, "/request/packet", "PUBREL"},
      {40, "/response/packet", "PUBCOMP"},
      {40, "/response/packet_id", 1},
      {1235, "/request/topic_filters", "corpus/old/#"},
      {1260, "/request/client_id", "bad-auth"},
      {1260, "/response/return_code", 5},
      {1260, "/status", "error"},
      {1265, "/request/protocol_level", 5},
      {1265, "/response/reason_code", 0},
    }},
    // h2c (nginx, prior knowledge on 8080: HTTP hands over at the preface) and gRPC (grpcio on 50051),
    // from the modern corpus; counts from tshark (docs/records.md golden table).
    {"http2", "h2c", false, 22, 22, 0, 0, 0, 0, nullptr, {
      {0, "/request/method", "GET"},
      {0, "/request/path", "/index.html"},
      {0, "/request/user_agent", "nghttp2/1.52.0"},
      {0, "/response/status_code", 200},
    }},
    // h2load's connection of the same corpus, its first 150 packets: 60 streams opened in two frames (more
    // than the former default table of 32, whose evictions made a second, empty record each; tshark: 46
    // statuses, 38x 200, 5x 301, 3x 404); the 14 the cut leaves unanswered time out.
    {"http2", "h2c-concurrent", false, 60, 46, 0, 14, 0, 0, nullptr, {
      {0, "/request/path", "/old-page?n=0"},
      {0, "/request/stream_id", 13},
      {0, "/response/status_code", 301},
      {7, "/request/path", "/missing/7?n=7"},
      {7, "/response/status_code", 404},
      {44, "/request/stream_id", 101},
      {44, "/request/path", "/index.html?n=44"},
      {59, "/request/path", "/data.json?n=59"},
      {59, "/status", "timeout"},
    }},
    {"grpc", "grpc", false, 372, 327, 45, 0, 0, 0, nullptr, {
      {0, "/request/service", "corpus.Inventory"},
      {0, "/request/grpc_method", "GetItem"},
      {0, "/response/grpc_status_name", "OK"},
      {24, "/response/grpc_status", 3},
      {24, "/response/grpc_message", "id must be positive, got -3"},
    }},
};

std::string pcap_path(const Case& c) { return kRoot + "/tests/data/pcaps/" + c.proto + "/" + c.name + ".pcap"; }
std::string golden_path(const Case& c) {
  return kRoot + "/tests/data/golden/" + c.proto + "/" + c.name + (c.gz ? ".jsonl.gz" : ".jsonl");
}

// gzread reads plain files too.
bool read_lines(const std::string& path, std::vector<std::string>* out) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  std::string all;
  char buf[65536];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) all.append(buf, static_cast<size_t>(n));
  gzclose(f);
  size_t start = 0;
  while (start < all.size()) {
    size_t nl = all.find('\n', start);
    if (nl == std::string::npos) nl = all.size();
    if (nl > start) out->push_back(all.substr(start, nl - start));
    start = nl + 1;
  }
  return true;
}

void write_lines(const std::string& path, bool gz, const std::vector<std::string>& lines) {
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  if (gz) {
    gzFile f = gzopen(path.c_str(), "wb9");
    ASSERT_NE(f, nullptr) << path;
    gzwrite(f, all.data(), static_cast<unsigned>(all.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary) << all;
  }
}

struct Replayed {
  std::vector<std::string> lines;
  ReplayStats stats;
};

// A capture kept gzip-compressed (NAME.pcap.gz, when NAME.pcap is absent) is inflated to a temporary file.
std::string readable_pcap(const Case& c) {
  const std::string path = pcap_path(c);
  if (std::ifstream(path).good()) return path;
  gzFile in = gzopen((path + ".gz").c_str(), "rb");
  if (in == nullptr) return path;
  const std::string out = (std::filesystem::temp_directory_path() / (std::string("spanfeed-golden-") + c.name + "-" +
                                                                     std::to_string(getpid()) + ".pcap")).string();
  std::ofstream o(out, std::ios::binary);
  char buf[65536];
  int n;
  while ((n = gzread(in, buf, sizeof(buf))) > 0) o.write(buf, n);
  gzclose(in);
  return out;
}

Replayed replay(const Case& c) {
  Replayed r;
  CollectingSink sink;
  std::string err;
  const std::string pcap = readable_pcap(c);
  EXPECT_TRUE(replay_pcap(pcap, offline_reassembler_config(), offline_decode_config(), sink, &r.stats, &err))
      << err;
  if (pcap != pcap_path(c)) std::filesystem::remove(pcap);
  r.lines = std::move(sink.lines);
  return r;
}

class Golden : public ::testing::TestWithParam<Case> {};

TEST_P(Golden, MatchesCheckedInRecords) {
  const Case& c = GetParam();
  Replayed run = replay(c);
  const DecodeCounters& k = run.stats.decode;
  EXPECT_TRUE(k.ledger_balanced());
  EXPECT_TRUE(run.stats.reassembly.segments == run.stats.parsed);
  EXPECT_EQ(k.flows_undetected_now, 0u);
  EXPECT_EQ(k.pending_now, 0u);
  EXPECT_EQ(run.lines.size(), c.records);
  Protocol p = Protocol::kUnknown;
  ASSERT_TRUE(protocol_from_string(c.record_proto != nullptr ? c.record_proto : c.proto, &p));
  EXPECT_EQ(k.of(p, RecordStatus::kOk), c.ok);
  EXPECT_EQ(k.of(p, RecordStatus::kError), c.error);
  EXPECT_EQ(k.of(p, RecordStatus::kTimeout), c.timeout);
  EXPECT_EQ(k.of(p, RecordStatus::kUnmatched), c.unmatched);
  EXPECT_EQ(k.detect[static_cast<size_t>(DetectOutcome::kUnknown)], c.unknown_flows);
  EXPECT_EQ(k.roundtrips_total(), c.records);  // nothing recorded under another protocol
  for (const Key& key : c.keys) {
    ASSERT_LT(key.index, run.lines.size()) << c.name;
    const json r = json::parse(run.lines[key.index]);
    const json::json_pointer ptr(key.pointer);
    ASSERT_TRUE(r.contains(ptr)) << c.name << " #" << key.index << " " << key.pointer;
    EXPECT_EQ(r[ptr], key.value) << c.name << " #" << key.index << " " << key.pointer;
  }

  if (std::getenv("SPANFEED_UPDATE_GOLDEN") != nullptr && c.records > 0) {
    write_lines(golden_path(c), c.gz, run.lines);
    GTEST_SKIP() << "golden file rewritten: " << golden_path(c);
  }
  std::vector<std::string> want;
  if (c.records == 0) {
    EXPECT_TRUE(run.lines.empty());
    return;
  }
  ASSERT_TRUE(read_lines(golden_path(c), &want)) << "missing golden file " << golden_path(c);
  ASSERT_EQ(run.lines.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    json got = json::parse(run.lines[i]);
    json exp = json::parse(want[i]);
    ASSERT_TRUE(got.contains("id"));
    got.erase("id");  // the only field allowed to differ
    exp.erase("id");
    ASSERT_EQ(got, exp) << c.name << " record " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Captures, Golden, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return dectest::test_name(std::string(i.param.proto) + "_" + i.param.name);
                         });

// memcached slices: request opcodes / commands and response statuses / kinds counted over the records, against
// tshark's counts for the same slices (tests/data/pcaps/memcached/README.md has the commands).
std::map<std::string, int> tally(const std::vector<std::string>& lines, const char* side, const char* field,
                                 const char* side2 = nullptr, const char* field2 = nullptr) {
  std::map<std::string, int> out;
  for (const std::string& l : lines) {
    json r = json::parse(l);
    std::string k = r[side].is_object() && r[side].contains(field) ? r[side][field].get<std::string>() : "-";
    if (side2 != nullptr) {
      k += " ";
      k += r[side2].is_object() && r[side2].contains(field2) ? r[side2][field2].dump() : "-";
    }
    ++out[k];
  }
  return out;
}

TEST(MemcachedCorpus, BinaryOpcodesAndStatusesAgreeWithTshark) {
  Case c{"memcached", "memcached-binary", false, 0, 0, 0, 0, 0, 0};
  const std::vector<std::string> lines = replay(c).lines;
  // tshark -Y 'memcache.magic==0x80': opcodes 0:7 1:8 2:2 3:1 4:6 6:1 7:5 10:2 11:1 12:4 13:2 15:2 16:1 17:7 28:2 80:1
  const std::map<std::string, int> commands = {
      {"Get", 7}, {"Set", 8}, {"Add", 2}, {"Replace", 1}, {"Delete", 6}, {"Decrement", 1}, {"Quit", 5},
      {"NoOp", 2}, {"Version", 1}, {"GetK", 4}, {"GetKQ", 2}, {"Prepend", 2}, {"Stat", 1}, {"SetQ", 7},
      {"Touch", 2}, {"0x50", 1}};
  EXPECT_EQ(tally(lines, "request", "command"), commands);
  // tshark -Y 'memcache.magic==0x81' (opcode, status): 0/1:7 1/0:8 2/0:1 2/2:1 3/1:1 4/0:1 4/1:5 6/1:1 7/0:5
  // 10/0:2 11/0:1 12/0:2 12/1:2 15/5:2 16/0:93 (one Stat reply: 92 statistics + the empty-key end) 28/0:1 28/1:1
  // 80/129:1; the quiet GetKQ x2 and SetQ x7 got none: implied by the NoOp replies after them.
  const std::map<std::string, int> statuses = {
      {"Get \"key_not_found\"", 7}, {"Set \"no_error\"", 8}, {"Add \"no_error\"", 1},
      {"Add \"key_exists\"", 1}, {"Replace \"key_not_found\"", 1}, {"Delete \"no_error\"", 1},
      {"Delete \"key_not_found\"", 5}, {"Decrement \"key_not_found\"", 1}, {"Quit \"no_error\"", 5},
      {"NoOp \"no_error\"", 2}, {"Version \"no_error\"", 1}, {"GetK \"no_error\"", 2},
      {"GetK \"key_not_found\"", 2}, {"Prepend \"item_not_stored\"", 2}, {"Stat \"no_error\"", 1},
      {"Touch \"no_error\"", 1}, {"Touch \"key_not_found\"", 1}, {"0x50 \"unknown_command\"", 1},
      {"GetKQ \"key_not_found\"", 2}, {"SetQ \"no_error\"", 7}};
  EXPECT_EQ(tally(lines, "request", "command", "response", "status"), statuses);
  int implied = 0, stats = 0;
  for (const std::string& l : lines) {
    json r = json::parse(l);
    if (r["response"].contains("implied")) ++implied;
    if (r["request"]["command"] == "Stat") stats = r["response"]["values"].get<int>();
  }
  EXPECT_EQ(implied, 9);
  EXPECT_EQ(stats, 92);
}

TEST(MemcachedCorpus, UdpCommandsAndRepliesAgreeWithTheFrameCount) {
  Case c{"memcached", "memcached-udp", false, 0, 0, 0, 0, 0, 0};
  Replayed run = replay(c);
  // shared/tools/corpus/tools/mc_udp_count.py on the slice (tshark 4.0 does not parse the UDP frame header):
  // requests: get 46 (41 one key + 5 multi-key), gets 3, set 30, delete 10, incr 4, decr 1, touch 2, version 2,
  // stats 1, binary GET 3 / NOOP 1 / SET 1; one request announces 2 datagrams: memcached never answers it.
  const std::map<std::string, int> commands = {{"get", 46}, {"gets", 3}, {"set", 30}, {"delete", 10}, {"incr", 4},
                                               {"decr", 1}, {"touch", 2}, {"version", 2}, {"stats", 1}, {"Get", 3},
                                               {"NoOp", 1}, {"Set", 1}};
  EXPECT_EQ(tally(run.lines, "request", "command"), commands);
  // replies: STORED 30, NOT_FOUND 14, VALUE..END hit 13 / miss 35, a number 3, VERSION 2, STAT 1; binary GET
  // status 1 x3, NOOP and SET status 0
  std::map<std::string, int> replies = tally(run.lines, "response", "response");
  EXPECT_EQ(replies["STORED"], 30);
  EXPECT_EQ(replies["NOT_FOUND"], 14);
  EXPECT_EQ(replies["VALUE"], 13);
  EXPECT_EQ(replies["END"], 35);
  EXPECT_EQ(replies["VERSION"], 2);
  EXPECT_EQ(replies["STAT"], 1);
  EXPECT_EQ(replies["-"], 5 + 1);  // the binary replies (`status` instead) and the unanswered request
  int numbers = 0;
  for (const auto& [word, n] : replies) {
    if (!word.empty() && word.find_first_not_of("0123456789") == std::string::npos) numbers += n;
  }
  EXPECT_EQ(numbers, 3);  // incr / decr results
  const std::map<std::string, int> statuses = {
      {"-", 99}, {"key_not_found", 3}, {"no_error", 2}};
  EXPECT_EQ(tally(run.lines, "response", "status"), statuses);
  uint64_t values = 0, datagrams = 0, requests_udp = 0;
  for (const std::string& l : run.lines) {
    json r = json::parse(l);
    if (r["request"]["transport"] == "udp") ++requests_udp;
    if (!r["response"].is_object()) continue;
    values += r["response"].value("values", 0);
    datagrams += r["response"].value("datagrams", 0);
    EXPECT_FALSE(r["response"].contains("missing_datagrams"));
  }
  EXPECT_EQ(values, 14u);       // VALUE blocks in get/gets replies
  EXPECT_EQ(datagrams, 214u);   // every response datagram, each in one reply
  EXPECT_EQ(requests_udp, 104u);
  EXPECT_EQ(run.stats.decode.decode_errors[static_cast<size_t>(Protocol::kMemcached)], 0u);
}

}  // namespace
}  // namespace spanfeed
