// Unit tests for the memcached binary protocol and memcached over UDP: crafted streams and datagrams, exact values.
// Runs in the test thread; allocates freely (tests only).
#include <gtest/gtest.h>

#include <string>

#include "decode_test_util.h"

namespace spanfeed {
namespace {

using dectest::Harness;
using dectest::kMs;
using dectest::kT0;
using json = nlohmann::json;

constexpr auto kMc = static_cast<size_t>(Protocol::kMemcached);

void put16(std::string& s, uint16_t v) {
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(v));
}
void put32(std::string& s, uint32_t v) {
  put16(s, static_cast<uint16_t>(v >> 16));
  put16(s, static_cast<uint16_t>(v));
}

// One binary packet: 24-byte header + extras + key + value.
std::string bin(bool response, uint8_t op, std::string_view key, std::string_view extras, std::string_view value,
                uint32_t opaque, uint16_t status = 0, uint64_t cas = 0) {
  std::string s;
  s.push_back(static_cast<char>(response ? 0x81 : 0x80));
  s.push_back(static_cast<char>(op));
  put16(s, static_cast<uint16_t>(key.size()));
  s.push_back(static_cast<char>(extras.size()));
  s.push_back(0);
  put16(s, status);
  put32(s, static_cast<uint32_t>(extras.size() + key.size() + value.size()));
  put32(s, opaque);
  put32(s, static_cast<uint32_t>(cas >> 32));
  put32(s, static_cast<uint32_t>(cas));
  return s + std::string(extras) + std::string(key) + std::string(value);
}
std::string req(uint8_t op, std::string_view key, uint32_t opaque, std::string_view extras = {},
                std::string_view value = {}) {
  return bin(false, op, key, extras, value, opaque);
}
std::string resp(uint8_t op, uint32_t opaque, uint16_t status = 0, std::string_view key = {},
                 std::string_view extras = {}, std::string_view value = {}, uint64_t cas = 0) {
  return bin(true, op, key, extras, value, opaque, status, cas);
}

// memcached's UDP frame header + payload.
std::string dgram(uint16_t rid, uint16_t seq, uint16_t count, std::string_view payload) {
  std::string s;
  put16(s, rid);
  put16(s, seq);
  put16(s, count);
  put16(s, 0);
  return s + std::string(payload);
}

constexpr std::string_view kFlags8("\0\0\0\0\0\0\0\0", 8);
constexpr std::string_view kFlags4("\0\0\0\x2a", 4);

TEST(MemcachedBinary, SetGetHitAndMiss) {
  Harness h;
  h.open(11211);
  h.c2s(req(0x01, "foo", 7, kFlags8, "hello"), kT0);
  h.s2c(resp(0x01, 7, 0, {}, {}, {}, 1234), kT0 + kMs);
  h.c2s(req(0x00, "foo", 8), kT0 + 2 * kMs);
  h.s2c(resp(0x00, 8, 0, {}, kFlags4, "hello", 1234), kT0 + 3 * kMs);
  h.c2s(req(0x00, "nope", 9), kT0 + 4 * kMs);
  h.s2c(resp(0x00, 9, 1, {}, {}, "Not found"), kT0 + 5 * kMs);
  ASSERT_EQ(h.size(), 3u);
  json r0 = h.rec(0);
  EXPECT_EQ(r0["request"]["command"], "Set");
  EXPECT_EQ(r0["request"]["key"], "foo");
  EXPECT_EQ(r0["request"]["value_bytes"], 5);
  EXPECT_EQ(r0["request"]["extras_bytes"], 8);
  EXPECT_EQ(r0["request"]["opaque"], 7);
  EXPECT_EQ(r0["request"]["binary"], true);
  EXPECT_EQ(r0["request"]["bytes"], 24 + 8 + 3 + 5);
  EXPECT_EQ(r0["response"]["status"], "no_error");
  EXPECT_EQ(r0["response"]["cas"], 1234);
  EXPECT_EQ(r0["status"], "ok");
  EXPECT_EQ(r0["latency_us"], 1000);
  json r1 = h.rec(1);
  EXPECT_EQ(r1["request"]["command"], "Get");
  EXPECT_EQ(r1["response"]["values"], 1);
  EXPECT_EQ(r1["response"]["value_bytes"], 5);
  EXPECT_EQ(r1["response"]["extras_bytes"], 4);
  EXPECT_EQ(r1["response"]["bytes"], 24 + 4 + 5);
  json r2 = h.rec(2);
  EXPECT_EQ(r2["request"]["key"], "nope");
  EXPECT_EQ(r2["response"]["status"], "key_not_found");
  EXPECT_EQ(r2["response"]["values"], 0);
  EXPECT_EQ(r2["response"]["error_message"], "Not found");
  EXPECT_EQ(r2["status"], "error");
  EXPECT_EQ(h.counters().decode_errors[kMc], 0u);
  h.expect_ledger();
}

// A binary connection met mid-stream, inside the value of a large Set: the value's tail is read as text
// until a chunk starts with a binary header, which turns the flow binary (no text command was read).
// (It stayed text, and no record of the connection was made: 541 of 3,278 records on the corpus
// memcached-binary capture cut at half.)
TEST(MemcachedBinary, MetInsideAValue) {
  Harness h;
  h.open(11211);
  h.c2s(std::string(1448, 'v'), kT0);  // the tail of a value sent before the capture began
  h.s2c(resp(0x01, 6, 0, {}, {}, {}, 77), kT0 + kMs);
  h.c2s(req(0x01, "k", 7, kFlags8, "abc"), kT0 + 2 * kMs);
  h.s2c(resp(0x01, 7, 0, {}, {}, {}, 78), kT0 + 3 * kMs);
  h.close(kT0 + 4 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["status"], "unmatched");  // the answer to the Set whose value was cut
  EXPECT_EQ(h.rec(0)["response"]["cas"], 77);
  EXPECT_EQ(h.rec(1)["request"]["command"], "Set");
  EXPECT_EQ(h.rec(1)["request"]["key"], "k");
  EXPECT_EQ(h.rec(1)["response"]["cas"], 78);
  EXPECT_EQ(h.rec(1)["latency_us"], 1000);
  EXPECT_EQ(h.counters().decode_errors[kMc], 1u);  // the tail, read as text
  EXPECT_EQ(h.counters().resyncs, 1u);
  h.expect_ledger();
}

TEST(MemcachedBinary, QuietGetsHitsAndMissesEndedByNoop) {
  // A multi-get as clients send it: GetKQ per key, then NoOp. Only hits are answered; the NoOp's answer
  // proves the unanswered ones were misses: records of their own (implied response), not timeouts.
  Harness h;
  h.open(11211);
  h.c2s(req(0x0d, "a", 1) + req(0x0d, "b", 2) + req(0x0d, "c", 3) + req(0x0a, {}, 4), kT0);
  h.s2c(resp(0x0d, 2, 0, "b", kFlags4, "BBB"), kT0 + kMs);
  ASSERT_EQ(h.size(), 2u);  // a (miss) and b (hit); c waits: a later hit could still be its
  h.s2c(resp(0x0a, 4), kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 4u);
  json a = h.rec(0), b = h.rec(1), c = h.rec(2), noop = h.rec(3);
  EXPECT_EQ(a["request"]["command"], "GetKQ");
  EXPECT_EQ(a["request"]["key"], "a");
  EXPECT_EQ(a["request"]["quiet"], true);
  EXPECT_EQ(a["response"]["status"], "key_not_found");
  EXPECT_EQ(a["response"]["implied"], true);
  EXPECT_EQ(a["response"]["values"], 0);
  EXPECT_EQ(a["response"]["bytes"], 0);
  EXPECT_EQ(a["status"], "error");
  EXPECT_EQ(b["request"]["key"], "b");
  EXPECT_EQ(b["response"]["key"], "b");
  EXPECT_EQ(b["response"]["values"], 1);
  EXPECT_EQ(b["response"]["value_bytes"], 3);
  EXPECT_FALSE(b["response"].contains("implied"));
  EXPECT_EQ(b["status"], "ok");
  EXPECT_EQ(c["request"]["key"], "c");
  EXPECT_EQ(c["response"]["implied"], true);
  EXPECT_EQ(c["latency_us"], 2000);
  EXPECT_EQ(noop["request"]["command"], "NoOp");
  EXPECT_EQ(noop["status"], "ok");
  // each request's own bytes: a 24-byte header and its key, though all four came in one chunk
  EXPECT_EQ(a["request"]["bytes"], 25);
  EXPECT_EQ(b["request"]["bytes"], 25);
  EXPECT_EQ(c["request"]["bytes"], 25);
  EXPECT_EQ(noop["request"]["bytes"], 24);

  // Quiet sets: only errors are answered; NoOp's answer proves the others stored.
  h.c2s(req(0x11, "x", 10, kFlags8, "1") + req(0x11, "y", 11, kFlags8, "2") + req(0x0a, {}, 12), kT0 + 3 * kMs);
  h.s2c(resp(0x11, 11, 3, {}, {}, "Too large."), kT0 + 4 * kMs);
  h.s2c(resp(0x0a, 12), kT0 + 5 * kMs);
  ASSERT_EQ(h.size(), 7u);
  EXPECT_EQ(h.rec(4)["request"]["key"], "x");
  EXPECT_EQ(h.rec(4)["response"]["status"], "no_error");
  EXPECT_EQ(h.rec(4)["response"]["implied"], true);
  EXPECT_EQ(h.rec(4)["status"], "ok");
  EXPECT_EQ(h.rec(5)["request"]["key"], "y");
  EXPECT_EQ(h.rec(5)["response"]["status"], "value_too_large");
  EXPECT_EQ(h.rec(5)["response"]["error_message"], "Too large.");
  EXPECT_EQ(h.rec(5)["status"], "error");
  EXPECT_EQ(h.rec(6)["request"]["command"], "NoOp");
  EXPECT_EQ(h.counters().timeouts_total(), 0u);
  h.close(kT0 + 6 * kMs);
  EXPECT_EQ(h.size(), 7u);
  h.expect_ledger();
}

// The response side loses bytes in a GetKQ batch: the hits in the hole are gone, so the NoOp's answer no
// longer proves the keys without an answer were misses. They get an implied response without a status,
// flagged gap (2% loss on a real capture turned hits into clean key_not_found errors).
TEST(MemcachedBinary, QuietRequestsPendingAcrossAResponseGapImplyNothing) {
  Harness h;
  h.open(11211);
  h.c2s(req(0x0d, "a", 1) + req(0x0d, "b", 2) + req(0x0d, "c", 3) + req(0x0a, {}, 4), kT0);
  h.s2c(resp(0x0d, 1, 0, "a", kFlags4, "AAA"), kT0 + kMs);
  h.gap(Direction::kServerToClient, 24 + 4 + 1 + 3, kT0 + 2 * kMs);  // b's hit
  h.s2c(resp(0x0a, 4), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 4u);
  json a = h.rec(0), b = h.rec(1), c = h.rec(2), noop = h.rec(3);
  EXPECT_EQ(a["response"]["values"], 1);
  EXPECT_TRUE(dectest::flags_of(a).empty());
  for (const json& q : {b, c}) {
    EXPECT_EQ(q["response"]["implied"], true);
    EXPECT_FALSE(q["response"].contains("status")) << q;
    EXPECT_FALSE(q["response"].contains("values")) << q;
    EXPECT_EQ(q["status"], "ok");
    EXPECT_EQ(dectest::flags_of(q), std::vector<std::string>{"gap"});
  }
  EXPECT_EQ(noop["request"]["command"], "NoOp");
  h.expect_ledger();
}

// The client side loses the NoOp that ended a batch of quiet sets: its answer comes, names no pending
// request, and implies nothing; the next batch's NoOp implies the first batch's outcome, a batch late. That
// record's status holds (no answer came), its latency does not: flagged gap (unflagged before, 847 us
// instead of 63 on the corpus memcached-binary capture with 3% loss). A batch after the gap is not flagged.
TEST(MemcachedBinary, QuietRequestsPendingAcrossARequestGapAreFlagged) {
  Harness h;
  h.open(11211);
  h.c2s(req(0x11, "x", 10, kFlags8, "1"), kT0);
  h.gap(Direction::kClientToServer, 24, kT0 + kMs);  // the NoOp, opaque 11
  h.s2c(resp(0x0a, 11), kT0 + 2 * kMs);
  h.c2s(req(0x11, "y", 12, kFlags8, "2") + req(0x0a, {}, 13), kT0 + 3 * kMs);
  h.s2c(resp(0x0a, 13), kT0 + 4 * kMs);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h.rec(0)["status"], "unmatched");  // the lost NoOp's answer
  EXPECT_EQ(h.rec(1)["request"]["key"], "x");
  EXPECT_EQ(h.rec(1)["response"]["status"], "no_error");
  EXPECT_EQ(h.rec(1)["response"]["implied"], true);
  EXPECT_EQ(h.rec(1)["latency_us"], 4000);
  EXPECT_EQ(dectest::flags_of(h.rec(1)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(2)["request"]["key"], "y");
  EXPECT_EQ(h.rec(2)["response"]["implied"], true);
  EXPECT_TRUE(dectest::flags_of(h.rec(2)).empty());
  EXPECT_EQ(h.rec(3)["request"]["command"], "NoOp");
  h.close(kT0 + 5 * kMs);
  h.expect_ledger();
}

// The response that implies a quiet request's outcome lost bytes inside its value (absorbed: it still
// completes, flagged gap): it may be a retransmission that came late, so the implied record's latency is
// not to be trusted: flagged gap too (43 ms instead of 38 us, unflagged, on the corpus memcached-binary
// capture with 3% loss).
TEST(MemcachedBinary, ImpliedByAResponseWithAGapIsFlagged) {
  Harness h;
  h.open(11211);
  h.c2s(req(0x0d, "a", 1) + req(0x0d, "b", 2) + req(0x0a, {}, 3), kT0);
  const std::string hit = resp(0x0d, 2, 0, "b", kFlags4, std::string(100, 'v'));
  h.s2c(hit.substr(0, 60), kT0 + kMs);
  h.gap(Direction::kServerToClient, 40, kT0 + 2 * kMs);  // inside b's value
  h.s2c(hit.substr(100) + resp(0x0a, 3), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(0)["request"]["key"], "a");
  EXPECT_EQ(h.rec(0)["response"]["status"], "key_not_found");
  EXPECT_EQ(h.rec(0)["response"]["implied"], true);
  EXPECT_EQ(dectest::flags_of(h.rec(0)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(1)["request"]["key"], "b");
  EXPECT_EQ(dectest::flags_of(h.rec(1)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(2)["request"]["command"], "NoOp");
  EXPECT_TRUE(dectest::flags_of(h.rec(2)).empty());
  EXPECT_EQ(h.counters().gaps_absorbed, 1u);
  h.expect_ledger();
}

TEST(MemcachedBinary, UnansweredRequestDoesNotBlockQuietOnes) {
  // memcached 1.6.18 never answers some requests (an unknown opcode with a key): the quiet ones after it are
  // still resolved by the NoOp's answer; the unanswered one times out.
  Harness h;
  h.open(11211);
  h.c2s(req(0x50, "k", 20) + req(0x09, "q", 21) + req(0x0a, {}, 22), kT0);
  h.s2c(resp(0x0a, 22), kT0 + kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["request"]["command"], "GetQ");
  EXPECT_EQ(h.rec(0)["response"]["implied"], true);
  EXPECT_EQ(h.rec(1)["request"]["command"], "NoOp");
  h.s2c(resp(0x0a, 99), kT0 + 2 * kMs);  // answers nothing pending: unmatched, implies nothing
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(2)["status"], "unmatched");
  h.close(kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h.rec(3)["request"]["command"], "0x50");
  EXPECT_EQ(h.rec(3)["status"], "timeout");
  h.expect_ledger();
}

TEST(MemcachedBinary, ResponseSplitAcrossSegmentsAndStat) {
  Harness h;
  h.open(11211);
  const std::string value(3000, 'v');
  h.c2s(req(0x0c, "big", 0xdeadbeef), kT0);
  const std::string r = resp(0x0c, 0xdeadbeef, 0, "big", kFlags4, value, 77);
  h.dribble(Direction::kServerToClient, r, 7, kT0 + kMs);  // header split over 4 chunks
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["request"]["opaque"], 0xdeadbeefu);
  EXPECT_EQ(h.rec(0)["response"]["key"], "big");
  EXPECT_EQ(h.rec(0)["response"]["value_bytes"], 3000);
  EXPECT_EQ(h.rec(0)["response"]["bytes"], r.size());
  // Stat: one response per statistic, the empty-key one ends them
  h.c2s(req(0x10, {}, 5), kT0 + 2 * kMs);
  const std::string stats = resp(0x10, 5, 0, "pid", {}, "42") + resp(0x10, 5, 0, "uptime", {}, "1000") +
                            resp(0x10, 5, 0, "version", {}, "1.6.18") + resp(0x10, 5);
  h.dribble(Direction::kServerToClient, stats, 13, kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  json s = h.rec(1);
  EXPECT_EQ(s["request"]["command"], "Stat");
  EXPECT_EQ(s["response"]["values"], 3);
  EXPECT_EQ(s["response"]["value_bytes"], 2 + 4 + 6);
  EXPECT_EQ(s["response"]["bytes"], stats.size());
  EXPECT_FALSE(s["response"].contains("key"));
  EXPECT_EQ(h.counters().decode_errors[kMc], 0u);
  h.expect_ledger();
}

TEST(MemcachedBinary, QuitQExpectsNoReplyAndUnknownOpcode) {
  Harness h;
  h.open(11211);
  h.c2s(req(0x50, "k", 1) + req(0x17, {}, 2), kT0);
  h.s2c(resp(0x50, 1, 0x81, {}, {}, "Unknown command"), kT0 + kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["request"]["command"], "QuitQ");  // no reply: recorded at once
  EXPECT_EQ(h.rec(0)["response"], nullptr);
  EXPECT_EQ(h.rec(1)["request"]["command"], "0x50");
  EXPECT_EQ(h.rec(1)["response"]["status"], "unknown_command");
  EXPECT_EQ(h.rec(1)["status"], "error");
  h.expect_ledger();
}

TEST(MemcachedBinary, GapInValueIsAbsorbedGarbageResyncs) {
  Harness h;
  h.open(11211);
  const std::string value(2000, 'x');
  h.c2s(req(0x00, "k", 1), kT0);
  const std::string r = resp(0x00, 1, 0, {}, kFlags4, value);
  h.s2c(r.substr(0, 100), kT0 + kMs);
  h.gap(Direction::kServerToClient, 1000, kT0 + kMs);
  h.s2c(r.substr(1100), kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["response"]["value_bytes"], 2000);
  EXPECT_EQ(h.rec(0)["flags"], json::array({"gap"}));
  // garbage where a header should be: counted, skipped until a chunk starts with a header
  h.c2s(std::string(30, '\x7f'), kT0 + 2 * kMs);
  h.c2s(req(0x0b, {}, 2), kT0 + 3 * kMs);
  h.s2c(resp(0x0b, 2, 0, {}, {}, "1.6.18"), kT0 + 4 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(1)["request"]["command"], "Version");
  EXPECT_EQ(h.counters().decode_errors[kMc], 1u);
  EXPECT_EQ(h.counters().resyncs, 1u);
  h.expect_ledger();
}

std::string text_value_reply(std::string_view key, size_t n) {
  return "VALUE " + std::string(key) + " 0 " + std::to_string(n) + "\r\n" + std::string(n, 'z') + "\r\nEND\r\n";
}

TEST(MemcachedUdp, TextRequestAndSingleDatagramReply) {
  Harness h;
  h.open(11211, true);
  h.c2s(dgram(100, 0, 1, "set k 0 0 2\r\nhi\r\n"), kT0);
  h.c2s(dgram(101, 0, 1, "get k\r\n"), kT0 + kMs);
  // answers by request id, in any order
  h.s2c(dgram(101, 0, 1, text_value_reply("k", 2)), kT0 + 2 * kMs);
  h.s2c(dgram(100, 0, 1, "STORED\r\n"), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  json g = h.rec(0), s = h.rec(1);
  EXPECT_EQ(g["request"]["command"], "get");
  EXPECT_EQ(g["request"]["transport"], "udp");
  EXPECT_EQ(g["request"]["request_id"], 101);
  EXPECT_EQ(g["response"]["values"], 1);
  EXPECT_EQ(g["response"]["datagrams"], 1);
  EXPECT_EQ(s["request"]["command"], "set");
  EXPECT_EQ(s["request"]["value_bytes"], 2);
  EXPECT_EQ(s["request"]["bytes"], 17);
  EXPECT_EQ(s["response"]["response"], "STORED");
  EXPECT_EQ(s["latency_us"], 3000);
  h.expect_ledger();
}

TEST(MemcachedUdp, ThreeDatagramsOneMissing) {
  Harness h;
  h.open(11211, true);
  const std::string reply = text_value_reply("big", 3000);
  h.c2s(dgram(7, 0, 1, "get big\r\n"), kT0);
  h.s2c(dgram(7, 0, 3, reply.substr(0, 1400)), kT0 + kMs);
  h.s2c(dgram(7, 2, 3, reply.substr(2800)), kT0 + 2 * kMs);  // #1 never comes
  EXPECT_EQ(h.size(), 0u);  // #1 may still come (out of order)
  h.close(kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["request"]["key"], "big");
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["response"]["response"], "VALUE");
  EXPECT_EQ(r["response"]["missing_datagrams"], 1);
  EXPECT_EQ(r["response"]["datagrams"], 2);
  EXPECT_EQ(r["flags"], json::array({"gap"}));
  EXPECT_EQ(h.counters().gaps, 1u);
  EXPECT_EQ(h.counters().timeouts_total(), 0u);
  h.expect_ledger();
}

TEST(MemcachedUdp, MissingDatagramEndedByTheNextResponse) {
  Harness h;
  h.open(11211, true);
  const std::string reply = text_value_reply("big", 3000);
  h.c2s(dgram(7, 0, 1, "get big\r\n"), kT0);
  h.s2c(dgram(7, 1, 3, reply.substr(1400, 1400)), kT0 + kMs);  // #0 lost: nothing to parse
  h.s2c(dgram(7, 2, 3, reply.substr(2800)), kT0 + kMs);
  h.c2s(dgram(8, 0, 1, "version\r\n"), kT0 + 2 * kMs);
  h.s2c(dgram(8, 0, 1, "VERSION 1.6.18\r\n"), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  json r = h.rec(0);
  EXPECT_EQ(r["request"]["request_id"], 7);
  EXPECT_EQ(r["response"]["datagrams"], 2);
  EXPECT_EQ(r["response"]["missing_datagrams"], 1);
  EXPECT_EQ(r["flags"], json::array({"gap"}));
  EXPECT_EQ(h.rec(1)["response"]["response"], "VERSION");
  h.expect_ledger();
}

TEST(MemcachedUdp, OutOfOrderDatagramsAreReassembled) {
  Harness h;
  h.open(11211, true);
  const std::string reply = text_value_reply("big", 3000);
  h.c2s(dgram(9, 0, 1, "get big\r\n"), kT0);
  h.s2c(dgram(9, 2, 3, reply.substr(2800)), kT0 + kMs);
  h.s2c(dgram(9, 1, 3, reply.substr(1400, 1400)), kT0 + 2 * kMs);
  EXPECT_EQ(h.size(), 0u);
  h.s2c(dgram(9, 0, 3, reply.substr(0, 1400)), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["response"]["values"], 1);
  EXPECT_EQ(r["response"]["value_bytes"], 3000);
  EXPECT_EQ(r["response"]["datagrams"], 3);
  EXPECT_EQ(r["response"]["bytes"], reply.size());
  EXPECT_FALSE(r["response"].contains("missing_datagrams"));
  EXPECT_EQ(r["flags"], json::array());
  EXPECT_EQ(r["latency_us"], 3000);
  h.s2c(dgram(9, 1, 3, reply.substr(1400, 1400)), kT0 + 4 * kMs);  // a duplicate: ignored
  h.close(kT0 + 5 * kMs);
  EXPECT_EQ(h.size(), 1u);
  EXPECT_EQ(h.counters().decode_errors[kMc], 0u);
  h.expect_ledger();
}

TEST(MemcachedUdp, MultiGetOneDatagramPerValue) {
  // memcached 1.6 answers a multi-key get over UDP with one datagram per VALUE and one for END, each
  // numbered "0 of 1", sometimes after an empty "0 of 0" one.
  Harness h;
  h.open(11211, true);
  h.c2s(dgram(3, 0, 1, "get a b c\r\n"), kT0);
  h.s2c(dgram(3, 0, 0, ""), kT0 + kMs);
  h.s2c(dgram(3, 0, 1, "VALUE a 0 1\r\n1\r\n"), kT0 + kMs);
  h.s2c(dgram(3, 0, 1, "VALUE c 0 2\r\n22\r\n"), kT0 + kMs);
  h.s2c(dgram(3, 0, 1, "END\r\n"), kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["response"]["values"], 2);
  EXPECT_EQ(h.rec(0)["response"]["value_bytes"], 3);
  EXPECT_EQ(h.rec(0)["response"]["datagrams"], 4);
  EXPECT_EQ(h.rec(0)["flags"], json::array());
  h.expect_ledger();
}

TEST(MemcachedUdp, MultiGetValueOverSeveralDatagramsAfterOthers) {
  // memcached 1.6.18 (audit6 capture, "get k1 big" with k1 missing and big 3000 bytes): an empty "0 of 0",
  // then big's VALUE and the END in "0 of 3", "1 of 3", "2 of 3". Each key's answer is numbered from 0:
  // the "0 of 3" was taken for a duplicate, and the record said values 0, 1633 bytes.
  Harness h;
  h.open(11211, true);
  const std::string big = text_value_reply("big", 3000);
  h.c2s(dgram(8, 0, 1, "get k1 a big\r\n"), kT0);
  h.s2c(dgram(8, 0, 0, ""), kT0 + kMs);
  h.s2c(dgram(8, 0, 1, "VALUE a 0 1\r\n1\r\n"), kT0 + kMs);
  h.s2c(dgram(8, 0, 3, big.substr(0, 1400)), kT0 + kMs);
  h.s2c(dgram(8, 1, 3, big.substr(1400, 1400)), kT0 + kMs);
  EXPECT_EQ(h.size(), 0u);
  h.s2c(dgram(8, 2, 3, big.substr(2800)), kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["response"]["response"], "VALUE");
  EXPECT_EQ(r["response"]["values"], 2);
  EXPECT_EQ(r["response"]["value_bytes"], 3001);
  EXPECT_EQ(r["response"]["datagrams"], 5);
  EXPECT_EQ(r["response"]["bytes"], 16 + big.size());
  EXPECT_FALSE(r["response"].contains("missing_datagrams"));
  EXPECT_EQ(r["flags"], json::array());
  EXPECT_EQ(r["latency_us"], 2000);
  // a copy of big's first datagram after the answer is complete: ignored
  h.s2c(dgram(8, 0, 3, big.substr(0, 1400)), kT0 + 3 * kMs);
  h.close(kT0 + 4 * kMs);
  EXPECT_EQ(h.size(), 1u);
  EXPECT_EQ(h.counters().decode_errors[kMc], 0u);
  h.expect_ledger();
}

TEST(MemcachedUdp, NextKeysAnswerBeforeTheRestOfAValueEndsTheResponseFlagged) {
  // The mirror delivered the END ("0 of 1") between big's datagrams. Fed at once its bytes landed inside
  // big's value and the record said values 1, unflagged; now the response ends there flagged gap.
  Harness h;
  h.open(11211, true);
  const std::string big = text_value_reply("big", 3000);
  h.c2s(dgram(8, 0, 1, "get a big\r\n"), kT0);
  h.s2c(dgram(8, 0, 1, "VALUE a 0 1\r\n1\r\n"), kT0 + kMs);
  h.s2c(dgram(8, 0, 3, big.substr(0, 1400)), kT0 + kMs);
  h.s2c(dgram(8, 0, 1, "END\r\n"), kT0 + kMs);
  h.s2c(dgram(8, 1, 3, big.substr(1400, 1400)), kT0 + kMs);
  h.s2c(dgram(8, 2, 3, big.substr(2800)), kT0 + 2 * kMs);
  h.close(kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["flags"], json::array({"gap"}));
  EXPECT_EQ(r["response"]["values"], 2);        // a's and big's, cut
  EXPECT_EQ(r["response"]["bytes"], 16 + 1400);  // what was read before the END came
  EXPECT_EQ(r["response"]["datagrams"], 2);
  h.expect_ledger();
}

TEST(MemcachedUdp, ResponseDatagramCutByTheSnaplenEndsTheResponseFlagged) {
  // The capture kept 40 bytes of a 3-datagram answer's first datagram: the record had the values the cut
  // parse found, unflagged; it now ends there, flagged truncated, and the datagrams after it are counted.
  Harness h;
  h.open(11211, true);
  const std::string big = text_value_reply("big", 3000);
  h.c2s(dgram(9, 0, 1, "get big\r\n"), kT0);
  h.gap(Direction::kServerToClient, 1400 - 40, kT0 + kMs);
  h.s2c(dgram(9, 0, 3, big.substr(0, 40)), kT0 + kMs);
  h.s2c(dgram(9, 1, 3, big.substr(1400, 1400)), kT0 + kMs);
  h.s2c(dgram(9, 2, 3, big.substr(2800)), kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["flags"], json::array({"truncated"}));
  EXPECT_EQ(r["response"]["response"], "VALUE");
  EXPECT_EQ(r["response"]["values"], 1);
  h.close(kT0 + 3 * kMs);
  EXPECT_EQ(h.size(), 1u);
  h.expect_ledger();
}

TEST(MemcachedUdp, RequestLineCutByTheSnaplenIsStillTheRequest) {
  // The capture kept "get alpha beta ga" of "get alpha beta gamma\r\n": the line had no end, the request
  // was dropped (a decode error) and its answer was unmatched. What the capture holds is the request now,
  // flagged truncated, and its answer pairs with it.
  Harness h;
  h.open(11211, true);
  h.gap(Direction::kClientToServer, 5, kT0);
  h.c2s(dgram(4, 0, 1, "get alpha beta ga"), kT0);
  h.s2c(dgram(4, 0, 1, "VALUE alpha 0 1\r\nA\r\nEND\r\n"), kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["request"]["command"], "get");
  EXPECT_EQ(r["request"]["key"], "alpha");
  EXPECT_EQ(r["request"]["request_id"], 4);
  EXPECT_EQ(r["response"]["values"], 1);
  EXPECT_EQ(r["flags"], json::array({"truncated"}));
  EXPECT_EQ(r["latency_us"], 1000);
  EXPECT_EQ(h.counters().decode_errors[kMc], 0u);
  h.expect_ledger();
}

TEST(MemcachedUdp, BinaryInsideFrames) {
  Harness h;
  h.open(11211, true);
  h.c2s(dgram(20, 0, 1, req(0x00, "udpbin:1", 5)), kT0);
  h.s2c(dgram(20, 0, 1, resp(0x00, 5, 1, {}, {}, "Not found")), kT0 + kMs);
  h.c2s(dgram(21, 0, 1, req(0x0a, {}, 6)), kT0 + 2 * kMs);
  h.s2c(dgram(21, 0, 1, resp(0x0a, 6)), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["request"]["command"], "Get");
  EXPECT_EQ(h.rec(0)["request"]["request_id"], 20);
  EXPECT_EQ(h.rec(0)["response"]["status"], "key_not_found");
  EXPECT_EQ(h.rec(0)["status"], "error");
  EXPECT_EQ(h.rec(1)["request"]["command"], "NoOp");
  EXPECT_EQ(h.rec(1)["status"], "ok");
  h.expect_ledger();
}

TEST(MemcachedUdp, GarbageIsCountedNeverFatal) {
  Harness h;
  h.open(11211, true);
  h.c2s("abc", kT0);                               // shorter than the frame header
  h.c2s(dgram(1, 0, 1, ""), kT0);                  // no payload
  h.c2s(dgram(2, 0, 1, "\x01\x02\x03 junk"), kT0);  // no command line
  h.s2c(dgram(2, 5, 3, "zzz"), kT0 + kMs);          // a sequence past its count
  h.s2c(std::string(8, '\xff') + std::string(2000, '\xee'), kT0 + kMs);
  h.c2s(dgram(3, 0, 1, "get k\r\n"), kT0 + 2 * kMs);
  h.s2c(dgram(3, 0, 1, "END\r\n"), kT0 + 3 * kMs);
  h.close(kT0 + 4 * kMs);
  // The get still pairs with its answer (garbage answers without a request are held until the flow ends:
  // the record of the get need not be the last).
  size_t gets = 0;
  for (size_t i = 0; i < h.size(); ++i) {
    if (h.rec(i)["request"].is_object() && h.rec(i)["request"]["key"] == "k") {
      ++gets;
      EXPECT_EQ(h.rec(i)["status"], "ok");
    }
  }
  EXPECT_EQ(gets, 1u);
  EXPECT_GE(h.counters().decode_errors[kMc], 3u);
  h.expect_ledger();
}

TEST(MemcachedBinary, GarbageOnTcpIsCountedNeverFatal) {
  Harness h;
  h.open(11211);
  std::string junk;
  for (int i = 0; i < 4000; ++i) junk.push_back(static_cast<char>((i * 7919) & 0xff));
  junk[0] = '\x80';
  h.dribble(Direction::kClientToServer, junk, 97, kT0);
  h.dribble(Direction::kServerToClient, "\x81" + junk, 61, kT0 + kMs);
  h.close(kT0 + 2 * kMs);
  h.expect_ledger();
  EXPECT_GE(h.counters().decode_errors[kMc], 1u);
}

}  // namespace
}  // namespace spanfeed
