// Unit tests for the DNS decoder, the RecordBuilder (detection, pools, ledger) and the JSON-lines encoder.
// Runs in the test thread; allocates freely (tests only).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "decode_test_util.h"

namespace spanfeed {
namespace {

using dectest::flags_of;
using dectest::Harness;
using dectest::kMs;
using dectest::kT0;
using json = nlohmann::json;

constexpr Direction kC2S = Direction::kClientToServer;
constexpr Direction kS2C = Direction::kServerToClient;

// ---- DNS message builder ----

void put16(std::string& s, uint16_t v) {
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(v & 0xFF));
}

std::string name(const std::string& dotted) {
  std::string out;
  size_t start = 0;
  while (start < dotted.size()) {
    size_t dot = dotted.find('.', start);
    if (dot == std::string::npos) dot = dotted.size();
    out.push_back(static_cast<char>(dot - start));
    out += dotted.substr(start, dot - start);
    start = dot + 1;
  }
  out.push_back('\0');
  return out;
}

struct Rr {
  uint16_t type;
  std::string rdata;
};

std::string dns_msg(uint16_t id, bool response, uint8_t rcode, const std::string& qname, uint16_t qtype,
                    const std::vector<Rr>& answers = {}) {
  std::string m;
  put16(m, id);
  m.push_back(static_cast<char>(response ? 0x81 : 0x01));
  m.push_back(static_cast<char>(response ? (0x80 | rcode) : 0));
  put16(m, 1);
  put16(m, static_cast<uint16_t>(answers.size()));
  put16(m, 0);
  put16(m, 0);
  m += name(qname);
  put16(m, qtype);
  put16(m, 1);
  for (const Rr& a : answers) {
    m += "\xC0\x0C";  // pointer to the question name
    put16(m, a.type);
    put16(m, 1);
    m += std::string("\x00\x00\x0E\x10", 4);
    put16(m, static_cast<uint16_t>(a.rdata.size()));
    m += a.rdata;
  }
  return m;
}

std::string tcp(const std::string& m) {
  std::string s;
  put16(s, static_cast<uint16_t>(m.size()));
  return s + m;
}

TEST(Dns, UdpQueryAndAnswers) {
  Harness h;
  h.open(53, true);
  h.c2s(dns_msg(0x1234, false, 0, "www.example.com", 1), kT0);
  std::string v6(16, '\0');
  v6[0] = 0x20;
  v6[1] = 0x01;
  v6[2] = 0x0d;
  v6[3] = static_cast<char>(0xb8);
  v6[15] = 1;
  h.s2c(dns_msg(0x1234, true, 0, "www.example.com", 1,
                {{5, name("edge.example.net")}, {1, std::string("\x5d\xb8\xd8\x22", 4)}, {28, v6}}),
        kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["protocol"], "dns");
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["latency_us"], 2000);
  EXPECT_EQ(r["request"]["id"], 0x1234);
  EXPECT_EQ(r["request"]["qname"], "www.example.com");
  EXPECT_EQ(r["request"]["qtype"], "A");
  EXPECT_EQ(r["request"]["transport"], "udp");
  EXPECT_EQ(r["response"]["rcode"], "NOERROR");
  EXPECT_EQ(r["response"]["answer_count"], 3);
  json want = json::parse(R"([{"type":"CNAME","data":"edge.example.net"},{"type":"A","data":"93.184.216.34"},
                               {"type":"AAAA","data":"2001:db8::1"}])");
  EXPECT_EQ(r["response"]["answers"], want);
  h.expect_ledger();
}

TEST(Dns, MatchesByIdOutOfOrderAndNxdomainIsError) {
  Harness h;
  h.open(53, true);
  h.c2s(dns_msg(1, false, 0, "a.test", 1), kT0);
  h.c2s(dns_msg(2, false, 0, "b.test", 28), kT0 + kMs);
  h.c2s(dns_msg(3, false, 0, "c.test", 65534), kT0 + kMs);
  h.s2c(dns_msg(2, true, 3, "b.test", 28), kT0 + 3 * kMs);
  h.s2c(dns_msg(1, true, 0, "a.test", 1), kT0 + 4 * kMs);
  h.s2c(dns_msg(9, true, 0, "z.test", 1), kT0 + 5 * kMs);
  h.close(kT0 + 6 * kMs);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h.rec(0)["request"]["qname"], "b.test");
  EXPECT_EQ(h.rec(0)["response"]["rcode"], "NXDOMAIN");
  EXPECT_EQ(h.rec(0)["status"], "error");
  EXPECT_EQ(h.rec(0)["latency_us"], 2000);
  EXPECT_EQ(h.rec(1)["request"]["qname"], "a.test");
  EXPECT_EQ(h.rec(1)["status"], "ok");
  EXPECT_EQ(h.rec(2)["status"], "unmatched");
  EXPECT_EQ(h.rec(3)["status"], "timeout");
  EXPECT_EQ(h.rec(3)["request"]["qtype"], "TYPE65534");
  h.expect_ledger();
}

// A mirror merging a port's two directions can deliver a fast server's answer before the query it answers
// (tens of microseconds apart). The answer waits for it: one ok record flagged reordered, without a latency
// (the capture cannot tell it), not an unmatched answer and a timed-out query.
TEST(Dns, AnswerCapturedBeforeItsQueryPairsFlaggedReordered) {
  Harness h;
  h.open(53, true);
  h.s2c(dns_msg(7, true, 0, "a.test", 1, {{1, std::string("\x0a\x00\x00\x07", 4)}}), kT0);
  h.c2s(dns_msg(7, false, 0, "a.test", 1), kT0 + 30'000);
  h.c2s(dns_msg(8, false, 0, "b.test", 1), kT0 + kMs);
  h.s2c(dns_msg(8, true, 3, "b.test", 1), kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 2u);
  json r = h.rec(0);
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["request"]["qname"], "a.test");
  EXPECT_EQ(r["response"]["answers"], json::parse(R"([{"type":"A","data":"10.0.0.7"}])"));
  EXPECT_TRUE(r["latency_us"].is_null());
  EXPECT_EQ(flags_of(r), std::vector<std::string>{"reordered"});
  EXPECT_EQ(h.rec(1)["status"], "error");
  EXPECT_EQ(h.rec(1)["latency_us"], 1000);
  EXPECT_TRUE(flags_of(h.rec(1)).empty());
  EXPECT_EQ(h.counters().reordered_pairs, 1u);
  EXPECT_EQ(h.counters().unmatched, 0u);
  h.expect_ledger();
}

// An answer no query follows within 10 ms stays an answer without a query: unmatched when the next message
// shows it (a query for another id after the window, another answer) or the flow ends; a query arriving
// after the window is not paired with it.
TEST(Dns, AnswerWithoutAQueryWithinTheWindowIsUnmatched) {
  Harness h;
  h.open(53, true);
  h.s2c(dns_msg(1, true, 0, "a.test", 1), kT0);
  h.s2c(dns_msg(2, true, 0, "b.test", 1), kT0 + kMs);  // the first is unmatched now
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["status"], "unmatched");
  EXPECT_EQ(h.rec(0)["response"]["answer_count"], 0);
  h.c2s(dns_msg(2, false, 0, "b.test", 1), kT0 + 12 * kMs);  // too late to be its query
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(1)["status"], "unmatched");
  h.s2c(dns_msg(3, true, 0, "c.test", 1), kT0 + 13 * kMs);
  h.close(kT0 + 14 * kMs);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h.rec(2)["status"], "unmatched");  // held until the flow ended
  EXPECT_EQ(h.rec(3)["status"], "timeout");
  EXPECT_EQ(h.rec(3)["request"]["qname"], "b.test");
  EXPECT_EQ(h.counters().reordered_pairs, 0u);
  EXPECT_EQ(h.counters().unmatched, 3u);
  h.expect_ledger();
}

// A capture with a short snaplen cuts answers: the reassembler reports the datagram's missing tail before
// it. The record had the captured bytes as the answer's size and no flag; now its wire size, flagged
// truncated, with the answers the captured part holds.
// A one-way capture (only the server's side mirrored): every answer is held for a query that never comes.
// Each is released unmatched once its 10 ms have passed, as the worker sees later packets of any flow or
// idles: a flow holds no pool message longer, however long it stays open.
TEST(Dns, HeldAnswersAreReleasedWhenTheirWindowPasses) {
  Harness h;
  h.open(53, true, kT0, 0, 40000);
  h.open(53, true, kT0, 1, 40001);
  h.s2c(dns_msg(1, true, 0, "a.test", 1), kT0, 0);
  h.s2c(dns_msg(2, true, 0, "b.test", 1), kT0 + 5 * kMs, 1);
  EXPECT_EQ(h.size(), 0u);
  h.s2c(dns_msg(3, true, 0, "c.test", 1), kT0 + 11 * kMs, 1);  // flow 0's window has passed
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["client"]["port"], 40001);  // the one flow 1 held before: its next answer came
  EXPECT_EQ(h.rec(0)["status"], "unmatched");
  EXPECT_EQ(h.rec(1)["client"]["port"], 40000);  // its window has passed
  EXPECT_EQ(h.rec(1)["status"], "unmatched");
  h.advance_time(kT0 + 30 * kMs);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(2)["status"], "unmatched");
  EXPECT_EQ(h.counters().unmatched, 3u);
  h.close(kT0 + 40 * kMs, 0);
  h.close(kT0 + 40 * kMs, 1);
  EXPECT_EQ(h.size(), 3u);
  h.expect_ledger();
}

TEST(Dns, AnswerCutByTheSnaplenIsFlaggedTruncated) {
  Harness h;
  h.open(53, true);
  h.c2s(dns_msg(5, false, 0, "a.test", 1), kT0);
  const std::string answer =
      dns_msg(5, true, 0, "a.test", 1, {{1, std::string("\x0a\x00\x00\x01", 4)}, {1, std::string("\x0a\x00\x00\x02", 4)}});
  const size_t keep = answer.size() - 10;  // the second A record's last 10 bytes are not in the capture
  h.gap(kS2C, 10, kT0 + kMs);
  h.s2c(answer.substr(0, keep), kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["flags"], json::array({"truncated"}));
  EXPECT_EQ(r["response"]["bytes"], answer.size());
  EXPECT_EQ(r["response"]["answer_count"], 2);
  EXPECT_EQ(r["response"]["answers"], json::parse(R"([{"type":"A","data":"10.0.0.1"}])"));
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kDns)], 0u);
  h.expect_ledger();
}

TEST(Dns, TcpTwoMessagesInOneSegmentAndSplitLength) {
  Harness h;
  h.open(53);
  h.c2s(tcp(dns_msg(7, false, 0, "x.test", 1)) + tcp(dns_msg(8, false, 0, "x.test", 28)), kT0);
  std::string r8 = tcp(dns_msg(8, true, 0, "x.test", 28));
  std::string r7 = tcp(dns_msg(7, true, 0, "x.test", 1, {{1, std::string("\x01\x02\x03\x04", 4)}}));
  h.s2c(r8.substr(0, 1), kT0 + kMs);  // the length prefix itself is split
  h.s2c(r8.substr(1) + r7.substr(0, 10), kT0 + 2 * kMs);
  h.s2c(r7.substr(10), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["request"]["id"], 8);
  EXPECT_EQ(h.rec(0)["request"]["transport"], "tcp");
  EXPECT_EQ(h.rec(0)["response"]["bytes"], r8.size());
  EXPECT_EQ(h.rec(0)["latency_us"], 2000);
  EXPECT_EQ(h.rec(1)["request"]["id"], 7);
  EXPECT_EQ(h.rec(1)["response"]["answers"][0]["data"], "1.2.3.4");
  EXPECT_EQ(h.rec(1)["latency_us"], 3000);
  EXPECT_EQ(h.builder().carry_buffers_in_use(), 0u);
  h.expect_ledger();
}

TEST(Dns, TcpGapResyncsOnNextSegmentAndMatchesById) {
  Harness h;
  h.open(53);
  h.c2s(tcp(dns_msg(1, false, 0, "a.test", 1)) + tcp(dns_msg(2, false, 0, "b.test", 1)), kT0);
  std::string r1 = tcp(dns_msg(1, true, 0, "a.test", 1));
  h.s2c(r1.substr(0, 5), kT0 + kMs);
  h.gap(kS2C, r1.size() - 5, kT0 + kMs);
  h.s2c(tcp(dns_msg(2, true, 0, "b.test", 1)), kT0 + 2 * kMs);
  h.close(kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["request"]["id"], 2);
  EXPECT_EQ(h.rec(0)["status"], "ok");
  EXPECT_EQ(h.rec(1)["request"]["id"], 1);
  EXPECT_EQ(h.rec(1)["status"], "timeout");
  EXPECT_EQ(h.counters().resyncs, 1u);
  h.expect_ledger();
}

TEST(Dns, MalformedNamesDoNotCrash) {
  Harness h;
  h.open(53, true);
  std::string loop = dns_msg(5, true, 0, "a.test", 1, {{5, "\xC0\x0C"}});
  // make the answer's name point at itself: an endless pointer loop
  size_t ans = 12 + name("a.test").size() + 4;
  loop[ans] = static_cast<char>(0xC0);
  loop[ans + 1] = static_cast<char>(ans);
  h.c2s(dns_msg(5, false, 0, "a.test", 1), kT0);
  h.s2c(loop, kT0 + kMs);
  h.s2c(std::string("\x00\x06\x81\x80\x00\x01\x00\x05\x00\x00\x00\x00\x3f", 13), kT0 + kMs);  // counts lie
  h.s2c("x", kT0 + kMs);  // too short for a header
  ASSERT_GE(h.size(), 1u);
  EXPECT_EQ(flags_of(h.rec(0)), std::vector<std::string>{"truncated"});
  h.expect_ledger();
}

// A query with no question (QDCOUNT 0) is valid: a cookie-only query (RFC 7873 5.4), as scapy builds it
// (tshark: "Questions: 0", one OPT with a COOKIE option, not malformed). It is recorded without qname /
// qtype and without `truncated` (it was flagged truncated and counted a decode error). Cut inside the
// OPT record its counts promise (tshark: "Malformed Packet"), it is truncated; so is a one-question query cut
// there.
TEST(Dns, QueryWithoutQuestionIsNotTruncated) {
  auto hex = [](std::string_view h) {
    std::string s;
    for (size_t i = 0; i + 1 < h.size(); i += 2) s.push_back(static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
    return s;
  };
  const std::string query = hex("12340100000000000000000100002904d000008000000c000a00080102030405060708");
  const std::string answer =
      hex("12348180000000000000000100002904d000008000001c000a00180102030405060708000102030405060708090a0b0c0d0e0f");
  Harness h;
  h.open(53, true);
  h.c2s(query, kT0);
  h.s2c(answer, kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["request"], json::parse(R"({"bytes":35,"id":4660,"transport":"udp"})"));
  EXPECT_EQ(r["response"], json::parse(R"({"bytes":51,"rcode":"NOERROR","answer_count":0,"answers":[]})"));
  EXPECT_EQ(flags_of(r), std::vector<std::string>{});
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kDns)], 0u);

  h.c2s(query.substr(0, query.size() - 4), kT0 + 2 * kMs);  // the cookie's last 4 bytes missing
  std::string one = dns_msg(0x77, false, 0, "a.test", 1);
  one[11] = 1;  // ARCOUNT 1, and an OPT record cut after its type
  one += std::string("\x00\x00\x29", 3);
  h.c2s(one, kT0 + 3 * kMs);
  h.close(kT0 + 4 * kMs);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(1)["request"], json::parse(R"({"bytes":31,"id":4660,"transport":"udp"})"));
  EXPECT_EQ(flags_of(h.rec(1)), std::vector<std::string>{"truncated"});
  EXPECT_EQ(h.rec(2)["request"]["qname"], "a.test");
  EXPECT_EQ(flags_of(h.rec(2)), std::vector<std::string>{"truncated"});
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kDns)], 2u);
  h.expect_ledger();
}

TEST(Dns, UdpSniffOnUnknownPort) {
  Harness h;
  h.open(5353, true);
  h.s2c(dns_msg(3, false, 0, "sniff.test", 1), kT0);  // a query from the flow's "server" side
  h.c2s(dns_msg(3, true, 0, "sniff.test", 1), kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["client"]["port"], 5353);
  EXPECT_EQ(h.rec(0)["status"], "ok");
  h.expect_ledger();
}

// ---- RecordBuilder ----

TEST(Builder, DetectionOutcomesAreCounted) {
  // Every mapped protocol has a decoder now, so no_decoder cannot happen; the
  // other outcomes: no data, unknown payload, still sniffing at close.
  auto cfg = dectest::small_config();
  Harness h(cfg);
  h.open(80, false, kT0, 0);  // closed before any payload
  h.close(kT0, 0);
  h.open(4444, false, kT0, 2);  // nothing recognisable: 4 tries a side (TCP)
  for (int i = 0; i < 4; ++i) h.c2s("abcdefgh", kT0, 2);
  const auto& c = h.counters();
  EXPECT_EQ(c.detect[static_cast<size_t>(DetectOutcome::kUnknown)], 0u);  // the server side has not tried
  for (int i = 0; i < 3; ++i) h.s2c("ijklmnop", kT0, 2);
  EXPECT_EQ(c.detect[static_cast<size_t>(DetectOutcome::kUnknown)], 0u);
  h.s2c("qrstuvwx", kT0, 2);
  EXPECT_EQ(c.detect[static_cast<size_t>(DetectOutcome::kUnknown)], 1u);
  h.open(4445, false, kT0, 3);  // still sniffing when it closes
  h.c2s("??", kT0, 3);
  EXPECT_EQ(c.flows_undetected_now, 1u);
  h.close(kT0, 2);
  h.close(kT0, 3);
  EXPECT_EQ(c.detect[static_cast<size_t>(DetectOutcome::kNoData)], 1u);
  EXPECT_EQ(c.detect[static_cast<size_t>(DetectOutcome::kNoDecoder)], 0u);
  EXPECT_EQ(c.detect[static_cast<size_t>(DetectOutcome::kUnknown)], 2u);
  EXPECT_EQ(c.flows_undetected_now, 0u);
  EXPECT_EQ(c.undecoded_bytes, 64u + 2u);
  EXPECT_EQ(h.size(), 0u);
  h.expect_ledger();
}

// A flow met mid-stream on an unmapped port, in the middle of a large response: the server's chunks use up
// its side's tries, and the client's next request is still tried (and found). Before, the tries were the
// flow's: four chunks of one side gave the flow up.
TEST(Builder, MidStreamBulkOneWayLeavesTheOtherSideItsTries) {
  auto cfg = dectest::small_config();
  Harness h(cfg);
  h.open(9200, false, kT0, 0);
  for (int i = 0; i < 6; ++i) h.s2c(std::string(1448, 'x'), kT0 + i * kMs, 0);  // a body's middle
  h.c2s("GET /_cat/health HTTP/1.1\r\nHost: es\r\n\r\n", kT0 + 10 * kMs, 0);
  h.s2c("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", kT0 + 11 * kMs, 0);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["protocol"], "http");
  EXPECT_EQ(h.rec(0)["request"]["path"], "/_cat/health");
  EXPECT_EQ(h.rec(0)["latency_us"], 1000);
  EXPECT_EQ(h.counters().detect[static_cast<size_t>(DetectOutcome::kBySniff)], 1u);
  EXPECT_EQ(h.counters().undecoded_bytes, 6u * 1448u);
  h.close(kT0 + 12 * kMs, 0);
  h.expect_ledger();
}

TEST(Builder, MessagePoolExhaustionIsCountedAndRecovers) {
  auto cfg = dectest::small_config();
  cfg.message_pool_size = 3;
  Harness h(cfg);
  h.open(80);
  for (int i = 0; i < 5; ++i) h.c2s("GET /" + std::to_string(i) + " HTTP/1.1\r\n\r\n", kT0);
  EXPECT_EQ(h.counters().message_pool_exhausted, 2u);
  EXPECT_EQ(h.counters().pending_now, 3u);
  h.close(kT0 + kMs);
  EXPECT_EQ(h.size(), 3u);
  EXPECT_EQ(h.builder().messages_in_use(), 0u);
  h.open(80);
  h.c2s("GET /again HTTP/1.1\r\n\r\n", kT0 + 2 * kMs);
  h.s2c("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", kT0 + 3 * kMs);
  EXPECT_EQ(h.rec(3)["status"], "ok");
  h.expect_ledger();
}

TEST(Builder, CarryPoolExhaustionCutsLinesButKeepsGoing) {
  auto cfg = dectest::small_config();
  cfg.carry_buffer_count = 1;
  Harness h(cfg);
  h.open(80, false, kT0, 0);
  h.open(80, false, kT0, 1, 40001);
  h.c2s("GET /one HTTP/1.1\r\nHo", kT0, 0);   // holds the only carry buffer
  h.c2s("GET /two HTTP/1.1\r\nHo", kT0, 1);   // none left: the split line is cut
  h.c2s("st: a\r\n\r\n", kT0, 0);
  h.c2s("st: b\r\n\r\n", kT0, 1);
  EXPECT_EQ(h.counters().carry_pool_exhausted, 1u);
  h.s2c("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", kT0 + kMs, 0);
  h.s2c("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", kT0 + kMs, 1);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["request"]["host"], "a");
  EXPECT_EQ(flags_of(h.rec(1)), std::vector<std::string>{"truncated"});
  EXPECT_EQ(h.builder().carry_buffers_in_use(), 0u);
  h.expect_ledger();
}

TEST(Builder, RecordIdsRecordingIdAndIpv6) {
  auto cfg = dectest::small_config();
  cfg.worker_id = 3;
  cfg.recording_id = "rec-\"1\"";
  Harness h(cfg);
  Flow& f = h.open(80);
  // re-open as IPv6
  h.close(kT0);
  f.key.ip_version = 6;
  IpAddr a{}, b{};
  a.bytes[0] = 0x20;
  a.bytes[1] = 0x01;
  a.bytes[2] = 0x0d;
  a.bytes[3] = 0xb8;
  a.bytes[15] = 0x01;
  b = a;
  b.bytes[15] = 0x02;
  f.key.addr_a = a;
  f.key.addr_b = b;
  h.builder().on_open(f, kT0);
  h.c2s("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", kT0);
  h.s2c("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", kT0);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["id"], "0300000000000001");
  EXPECT_EQ(h.rec(1)["id"], "0300000000000002");
  EXPECT_EQ(h.rec(0)["recording_id"], "rec-\"1\"");
  EXPECT_EQ(h.rec(0)["client"]["ip"], "2001:db8::1");
  EXPECT_EQ(h.rec(0)["server"]["ip"], "2001:db8::2");
  h.expect_ledger();
}

TEST(Builder, PortOwnedByFlowClientSwapsRoles) {
  Harness h;
  // Picked up mid-stream with the service port higher than the peer's: the
  // flow's "client" (higher port) is the redis server.
  h.open(1024, false, kT0, 0, 6379);
  h.s2c("*1\r\n$4\r\nPING\r\n", kT0);
  h.c2s("+PONG\r\n", kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["server"]["port"], 6379);
  EXPECT_EQ(h.rec(0)["client"]["port"], 1024);
  EXPECT_EQ(h.rec(0)["status"], "ok");
  h.expect_ledger();
}

TEST(Builder, ValidateRejectsBadConfig) {
  DecodeConfig c;
  EXPECT_EQ(validate(c), "");
  c.carry_bytes = 10;
  EXPECT_NE(validate(c), "");
  c = DecodeConfig{};
  c.worker_id = 256;
  EXPECT_NE(validate(c), "");
  c = DecodeConfig{};
  c.ports.push_back({Protocol::kHttp, Transport::kTcp, 0});
  EXPECT_NE(validate(c), "");
  Protocol p;
  EXPECT_TRUE(protocol_from_string("memcached", &p));
  EXPECT_EQ(p, Protocol::kMemcached);
  EXPECT_FALSE(protocol_from_string("gopher", &p));
}

// ---- encoder ----

TEST(Encoder, EscapesAndAlwaysProducesValidUtf8Json) {
  std::string out;
  append_json_string(std::string("a\"b\\c\n\t\x01\x7f", 9), out);
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\t\\u0001\x7f\"");
  out.clear();
  append_json_string("caf\xc3\xa9 \xe2\x82\xac ok", out);  // valid UTF-8 kept
  EXPECT_EQ(out, "\"caf\xc3\xa9 \xe2\x82\xac ok\"");
  out.clear();
  append_json_string("bad \xff\xc3 end \xed\xa0\x80", out);  // invalid bytes and a surrogate
  EXPECT_TRUE(json::accept(out)) << out;
  EXPECT_EQ(json::parse(out).get<std::string>(),
            "bad \xEF\xBF\xBD\xEF\xBF\xBD end \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Encoder, Iso8601Microseconds) {
  std::string out;
  append_iso8601_us(0, out);
  EXPECT_EQ(out, "1970-01-01T00:00:00.000000Z");
  out.clear();
  append_iso8601_us(1'709'251'199'123'456'789ull, out);  // leap year, last second of Feb 29
  EXPECT_EQ(out, "2024-02-29T23:59:59.123456Z");
  out.clear();
  append_iso8601_us(1'795'341'600'123'456'000ull, out);
  EXPECT_EQ(out, "2026-11-22T10:00:00.123456Z");
}

TEST(Encoder, FieldListIsBounded) {
  FieldList f;
  std::string big(5000, 'x');
  f.add_string("a", big);  // cut to max_len (the arena size): a documented limit, not "truncated"
  EXPECT_FALSE(f.truncated());
  EXPECT_EQ(f.arena_left(), 0u);
  f.add_string("c", "does not fit");
  EXPECT_TRUE(f.truncated());
  f.add_string("b", "more");
  EXPECT_EQ(f.get_string("b"), "");
  for (int i = 0; i < 40; ++i) f.add_uint("n", static_cast<uint64_t>(i));
  EXPECT_EQ(f.size(), FieldList::kMaxFields);
  // cutting never splits a UTF-8 sequence
  FieldList g;
  g.add_string("s", "\xc3\xa9\xc3\xa9", 3);
  EXPECT_EQ(g.get_string("s"), "\xc3\xa9");
}

// strings(): the string fields with a value, as every adder, replace_string and set_uint leave it
// (the redactor skips a message with none without looking at its fields).
TEST(Encoder, FieldListCountsItsStrings) {
  auto count = [](const FieldList& f) {
    size_t n = 0;
    for (size_t i = 0; i < f.size(); ++i) n += f[i].kind == FieldKind::kString && f[i].len != 0;
    return n;
  };
  FieldList f;
  f.add_string("a", "short");
  f.add_string("b", "");
  f.add_string("c", std::string(40, 'x'));  // out of line
  f.add_uint("n", 7);
  f.add_raw_json("j", "[1]");
  size_t b = f.raw_begin();
  ASSERT_TRUE(f.raw_append("built"));
  ASSERT_TRUE(f.raw_commit("r", b, FieldKind::kString));
  b = f.raw_begin();
  ASSERT_TRUE(f.raw_commit("e", b, FieldKind::kString));  // empty
  EXPECT_EQ(f.strings(), 3u);
  EXPECT_EQ(f.strings(), count(f));
  EXPECT_TRUE(f.replace_string(0, ""));
  EXPECT_EQ(f.strings(), 2u);
  EXPECT_TRUE(f.replace_string(1, "now something longer"));
  EXPECT_TRUE(f.replace_string(0, "again"));
  EXPECT_EQ(f.strings(), 4u);
  EXPECT_FALSE(f.replace_string(0, std::string(2000, 'y')));  // does not fit: unchanged
  EXPECT_EQ(f.strings(), 4u);
  f.set_uint("c", 1);  // a string retyped as a number
  EXPECT_EQ(f.strings(), 3u);
  EXPECT_EQ(f.strings(), count(f));
  f.clear();
  EXPECT_EQ(f.strings(), 0u);
  f.add_string("cut", std::string(5000, 'z'), 0);  // cut to nothing
  EXPECT_EQ(f.strings(), 0u);
  EXPECT_EQ(f.strings(), count(f));
}

// DNS over TCP: the flow ends inside a query: parsed from what arrived, a timeout flagged truncated; a
// cut answer still matches its query by id; a cut length prefix is only counted.
TEST(Dns, TcpMessagesCutByTheCloseAreRecorded) {
  Harness h;
  h.open(53);
  h.c2s(tcp(dns_msg(0x0101, false, 0, "a.example.com", 1)), kT0);
  const std::string ans = tcp(dns_msg(0x0101, true, 0, "a.example.com", 1, {{1, std::string("\x0a\0\0\1", 4)}}));
  h.s2c(ans.substr(0, ans.size() - 6), kT0 + kMs);  // answer cut inside its rdata
  const std::string q = tcp(dns_msg(0x0202, false, 0, "b.example.com", 28));
  h.c2s(q.substr(0, 20), kT0 + 2 * kMs);  // query cut inside its name
  h.close(kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  json a = h.rec(0);
  EXPECT_EQ(a["status"], "ok");
  EXPECT_EQ(a["request"]["id"], 0x0101);
  EXPECT_EQ(a["response"]["answer_count"], 1);
  EXPECT_EQ(a["response"]["bytes"], ans.size() - 6);
  EXPECT_EQ(dectest::flags_of(a), std::vector<std::string>{"truncated"});
  json b = h.rec(1);
  EXPECT_EQ(b["status"], "timeout");
  EXPECT_EQ(b["request"]["id"], 0x0202);
  EXPECT_EQ(b["request"]["bytes"], 20);
  EXPECT_EQ(b["request"]["transport"], "tcp");
  EXPECT_EQ(dectest::flags_of(b), std::vector<std::string>{"truncated"});
  EXPECT_EQ(h.counters().timeouts[static_cast<size_t>(TimeoutCause::kClose)], 1u);
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kDns)], 0u);
  EXPECT_EQ(h.counters().partial_at_close, 0u);
  h.open(53, false, kT0, 1);
  h.c2s(q.substr(0, 1), kT0, 1);
  h.close(kT0 + kMs, 1);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h.counters().partial_at_close, 1u);
  h.expect_ledger();
}

}  // namespace
}  // namespace spanfeed
