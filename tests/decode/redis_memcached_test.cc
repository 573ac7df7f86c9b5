// Unit tests for the Redis (RESP2/RESP3, inline) and memcached text decoders: crafted streams, gaps, redaction.
// Runs in the test thread; allocates freely (tests only).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

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

std::string cmd(std::initializer_list<std::string> args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

TEST(Redis, PipelinedCommandsMatchInOrder) {
  Harness h;
  h.open(6379);
  h.c2s(cmd({"set", "k1", "v"}) + cmd({"get", "k1"}) + cmd({"incr", "n"}) + cmd({"lrange", "l", "0", "-1"}), kT0);
  h.s2c("+OK\r\n$1\r\nv\r\n:42\r\n*2\r\n$1\r\na\r\n$-1\r\n", kT0 + kMs);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h.rec(0)["request"]["command"], "SET");
  EXPECT_EQ(h.rec(0)["request"]["key"], "k1");
  EXPECT_EQ(h.rec(0)["request"]["args"], 2);
  EXPECT_EQ(h.rec(0)["response"]["type"], "simple");
  EXPECT_EQ(h.rec(0)["response"]["value"], "OK");
  EXPECT_EQ(h.rec(1)["response"]["type"], "bulk");
  EXPECT_EQ(h.rec(1)["response"]["size"], 1);
  EXPECT_EQ(h.rec(2)["response"]["type"], "integer");
  EXPECT_EQ(h.rec(2)["response"]["value"], 42);
  EXPECT_EQ(h.rec(3)["request"]["command"], "LRANGE");
  EXPECT_EQ(h.rec(3)["request"]["args"], 3);
  EXPECT_EQ(h.rec(3)["response"]["type"], "array");
  EXPECT_EQ(h.rec(3)["response"]["elements"], 2);
  EXPECT_EQ(h.rec(3)["response"]["bytes"], std::string("*2\r\n$1\r\na\r\n$-1\r\n").size());
  h.expect_ledger();
}

TEST(Redis, ErrorReplyAndNullBulk) {
  Harness h;
  h.open(6379);
  h.c2s(cmd({"GET", "x"}) + cmd({"GET", "y"}), kT0);
  h.s2c("-WRONGTYPE Operation against a key\r\n$-1\r\n", kT0 + kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["status"], "error");
  EXPECT_EQ(h.rec(0)["response"]["error"], "WRONGTYPE Operation against a key");
  EXPECT_EQ(h.rec(1)["status"], "ok");
  EXPECT_TRUE(h.rec(1)["response"]["size"].is_null());
  h.expect_ledger();
}

TEST(Redis, Resp3Types) {
  Harness h;
  h.open(6379);
  for (int i = 0; i < 9; ++i) h.c2s(cmd({"CMD" + std::to_string(i)}), kT0);
  h.s2c("%2\r\n+server\r\n+redis\r\n+proto\r\n:3\r\n"  // map
        "~2\r\n+a\r\n+b\r\n"                           // set
        ",3.14\r\n"                                    // double
        "#t\r\n"                                       // boolean
        "_\r\n"                                        // null
        "(3492890328409238509324850943850943825024385\r\n"  // big number
        "=15\r\ntxt:Some string\r\n"                   // verbatim
        ">3\r\n+message\r\n+ch\r\n+hi\r\n"             // push: not a reply, a record of its own
        "|1\r\n+key-popularity\r\n%1\r\n+a\r\n,0.1923\r\n*1\r\n:7\r\n"  // attribute, then the reply
        "!21\r\nSYNTAX invalid syntax\r\n",            // blob error
        kT0 + kMs);
  ASSERT_EQ(h.size(), 10u);
  EXPECT_EQ(h.rec(0)["response"]["type"], "map");
  EXPECT_EQ(h.rec(0)["response"]["elements"], 2);
  EXPECT_EQ(h.rec(1)["response"]["type"], "set");
  EXPECT_EQ(h.rec(2)["response"]["type"], "double");
  EXPECT_EQ(h.rec(2)["response"]["value"], "3.14");
  EXPECT_EQ(h.rec(3)["response"]["type"], "boolean");
  EXPECT_EQ(h.rec(3)["response"]["value"], true);
  EXPECT_EQ(h.rec(4)["response"]["type"], "null");
  EXPECT_EQ(h.rec(5)["response"]["type"], "big_number");
  EXPECT_EQ(h.rec(6)["response"]["type"], "verbatim");
  EXPECT_EQ(h.rec(7)["request"],
            json::parse(R"({"bytes":24,"command":"PUSH message","key":"ch","args":2,"payload_bytes":2,"from_server":true})"));
  EXPECT_TRUE(h.rec(7)["response"].is_null());
  EXPECT_EQ(h.rec(8)["response"]["type"], "array");  // the attribute annotated it
  EXPECT_EQ(h.rec(8)["response"]["elements"], 1);
  EXPECT_EQ(h.rec(8)["request"]["command"], "CMD7");
  EXPECT_EQ(h.rec(9)["response"]["type"], "blob_error");
  EXPECT_EQ(h.rec(9)["response"]["error"], "SYNTAX invalid syntax");
  EXPECT_EQ(h.rec(9)["status"], "error");
  EXPECT_EQ(h.counters().interim[static_cast<size_t>(Protocol::kRedis)], 0u);  // the push is no interim reply
  h.expect_ledger();
}

TEST(Redis, InlineCommandsAndAuthRedaction) {
  Harness h;
  h.open(6379);
  h.c2s("PING\r\nauth s3cret\r\n", kT0);
  h.c2s(cmd({"AUTH", "user", "pa55"}), kT0);
  h.s2c("+PONG\r\n+OK\r\n-WRONGPASS invalid\r\n", kT0 + kMs);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(0)["request"]["command"], "PING");
  EXPECT_EQ(h.rec(0)["request"]["args"], 0);
  EXPECT_EQ(h.rec(1)["request"]["command"], "AUTH");
  EXPECT_EQ(h.rec(1)["request"]["key"], "<redacted>");
  EXPECT_EQ(h.rec(2)["request"]["key"], "<redacted>");
  for (const auto& l : h.lines()) {
    EXPECT_EQ(l.find("s3cret"), std::string::npos);
    EXPECT_EQ(l.find("user"), std::string::npos);
  }
  h.expect_ledger();
}

TEST(Redis, NestedArraysAndSplitBulk) {
  Harness h;
  h.open(6379);
  std::string big(5000, 'v');
  h.c2s(cmd({"SET", "key", big}).substr(0, 30), kT0);
  h.c2s(cmd({"SET", "key", big}).substr(30), kT0 + kMs);
  h.c2s(cmd({"EXEC"}), kT0 + kMs);
  h.dribble(kS2C, "+OK\r\n*2\r\n*2\r\n:1\r\n$3\r\nabc\r\n*0\r\n", 3, kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["request"]["key"], "key");
  EXPECT_EQ(h.rec(0)["request"]["bytes"], cmd({"SET", "key", big}).size());
  EXPECT_EQ(h.rec(1)["response"]["elements"], 2);
  EXPECT_EQ(h.builder().carry_buffers_in_use(), 0u);
  h.expect_ledger();
}

TEST(Redis, GapInsideBulkIsSkipped) {
  Harness h;
  h.open(6379);
  h.c2s(cmd({"GET", "big"}), kT0);
  h.s2c("$1000\r\n" + std::string(100, 'x'), kT0 + kMs);
  h.gap(kS2C, 800, kT0 + kMs);
  h.s2c(std::string(100, 'x') + "\r\n", kT0 + 2 * kMs);
  h.c2s(cmd({"PING"}), kT0 + 3 * kMs);
  h.s2c("+PONG\r\n", kT0 + 4 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["response"]["size"], 1000);
  EXPECT_EQ(flags_of(h.rec(0)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(1)["response"]["value"], "PONG");
  h.expect_ledger();
}

TEST(Redis, GapInRequestsResyncsOnArrayStart) {
  Harness h;
  h.open(6379);
  h.c2s("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv", kT0);
  h.gap(kC2S, 50, kT0 + kMs);
  h.c2s("alue-tail\r\n" + cmd({"GET", "k"}), kT0 + 2 * kMs);
  h.s2c("+OK\r\n", kT0 + 3 * kMs);  // answers the SET (flagged gap)
  h.s2c("$1\r\nv\r\n", kT0 + 4 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["request"]["command"], "SET");
  EXPECT_EQ(flags_of(h.rec(0)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(1)["request"]["command"], "GET");
  EXPECT_EQ(h.rec(1)["response"]["type"], "bulk");
  EXPECT_EQ(h.counters().resyncs, 1u);
  h.expect_ledger();
}

// A bulk length over proto-max-bulk-len (512 MB): the server answers a protocol error without reading any
// payload. The request is refused where it stands: no 10^12 bytes skipped; the reply ends it (truncated)
// and pairs with it; the next command on the connection is decoded.
TEST(Redis, HugeBulkLengthIsRefusedAndTheErrorEndsIt) {
  Harness h;
  h.open(6379);
  const std::string huge = "*2\r\n$3\r\nGET\r\n$999999999999\r\nabc";
  h.c2s(huge, kT0);
  EXPECT_EQ(h.size(), 0u);
  h.s2c("-ERR Protocol error: invalid bulk length\r\n", kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["status"], "error");
  EXPECT_EQ(r["request"], json({{"bytes", huge.size()}, {"command", "GET"}, {"args", 1}}));
  EXPECT_EQ(r["response"]["error"], "ERR Protocol error: invalid bulk length");
  EXPECT_EQ(flags_of(r), std::vector<std::string>{"truncated"});
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kRedis)], 1u);
  EXPECT_EQ(h.counters().unmatched, 0u);
  h.c2s(cmd({"GET", "k"}), kT0 + 2 * kMs);
  h.s2c("$1\r\nv\r\n", kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(1)["status"], "ok");
  EXPECT_EQ(h.rec(1)["request"]["key"], "k");
  EXPECT_TRUE(h.rec(1)["flags"].empty());
  EXPECT_EQ(h.counters().resyncs, 1u);
  EXPECT_EQ(h.counters().resync_skipped_bytes, 0u);  // "abc" went with the refused request
  h.expect_ledger();
}

// Without the reply (one direction captured, or the server's answer lost), a refused request ends where
// the next command line starts; the lines between are skipped, not taken as payload.
TEST(Redis, RefusedRequestEndsAtTheNextCommand) {
  Harness h;
  h.open(6379);
  const std::string refused = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$600000000\r\nabc\r\n";
  h.c2s(refused + cmd({"GET", "k"}), kT0);
  h.s2c("-ERR Protocol error: invalid bulk length\r\n$1\r\nv\r\n", kT0 + kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["status"], "error");
  EXPECT_EQ(h.rec(0)["request"], json({{"bytes", refused.size()}, {"command", "SET"}, {"key", "k"}, {"args", 2}}));
  EXPECT_EQ(flags_of(h.rec(0)), std::vector<std::string>{"truncated"});
  EXPECT_EQ(h.rec(1)["status"], "ok");
  EXPECT_EQ(h.rec(1)["request"]["command"], "GET");
  EXPECT_TRUE(h.rec(1)["flags"].empty());
  EXPECT_EQ(h.counters().resyncs, 1u);
  EXPECT_EQ(h.counters().resync_skipped_bytes, 5u);  // "abc\r\n"
  // 512 MB itself is a length a server reads: skipped by count
  h.c2s("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n" + cmd({"GET", "k"}), kT0 + 2 * kMs);
  h.close(kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(2)["status"], "timeout");
  EXPECT_EQ(h.rec(2)["request"]["command"], "SET");
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kRedis)], 1u);
  h.expect_ledger();
}

// A reply while a (legal-length) request is still incomplete and none is waiting: the request is over as
// far as the server is concerned; it ends there, flagged truncated, and its tail is resynchronised past.
TEST(Redis, ReplyEndsAnIncompleteRequest) {
  Harness h;
  h.open(6379);
  const std::string part = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nonly-part";
  h.c2s(part, kT0);
  h.s2c("-ERR something\r\n", kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["status"], "error");
  EXPECT_EQ(h.rec(0)["request"]["bytes"], part.size());
  EXPECT_EQ(flags_of(h.rec(0)), std::vector<std::string>{"truncated"});
  h.c2s(std::string(91, 'x') + "\r\n" + cmd({"GET", "k"}), kT0 + 2 * kMs);  // the rest of the value, then GET
  h.s2c("$1\r\nv\r\n", kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(1)["status"], "ok");
  EXPECT_EQ(h.rec(1)["request"]["command"], "GET");
  // a RESP3 push is not a reply: it does not end the request in progress (it is a record of its own)
  h.c2s("*2\r\n$3\r\nGET\r\n$1\r\n", kT0 + 4 * kMs);
  h.s2c(">2\r\n+message\r\n+hi\r\n", kT0 + 5 * kMs);
  h.c2s("k\r\n", kT0 + 6 * kMs);
  h.s2c("$1\r\nv\r\n", kT0 + 7 * kMs);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h.rec(2)["request"]["command"], "PUSH message");
  EXPECT_TRUE(h.rec(3)["flags"].empty());
  EXPECT_EQ(h.rec(3)["request"]["key"], "k");
  h.expect_ledger();
}

#define DUMP_REDIS(h) \
  if (std::getenv("REDISDUMP") != nullptr) \
    for (const auto& l : (h).lines()) std::fprintf(stderr, "%s\n", l.c_str())

std::string bulk(const std::string& s) { return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n"; }
// A pub/sub array (RESP2 `*`) or push (RESP3 `>`): kind, channel (or pattern), then a count or payloads.
std::string ps(char t, std::initializer_list<std::string> words, int64_t count = -1) {
  std::string s = std::string(1, t) + std::to_string(words.size() + (count >= 0 ? 1 : 0)) + "\r\n";
  for (const auto& w : words) s += bulk(w);
  if (count >= 0) s += ":" + std::to_string(count) + "\r\n";
  return s;
}

// Pub/sub as redis-py and a RESP3 client do it (redis-server 7.0, tshark's RESP messages agree): a
// SUBSCRIBE-family command pairs with its confirmations, one per channel (or, without arguments, one per
// subscription it undoes), as one record; messages published to the subscriber are records of their own
// without reply, `PUSH <kind>` with the channel. They were `unmatched` records (RESP2) or no record (RESP3).
TEST(Redis, PubSubConfirmationsPairAndPushesAreRecords) {
  Harness h;
  h.open(6379);
  const std::string subscribe = cmd({"SUBSCRIBE", "c1", "c2", "c3"});
  h.c2s(subscribe, kT0);
  const std::string sub1 = ps('*', {"subscribe", "c1"}, 1);
  const std::string sub23 = ps('*', {"subscribe", "c2"}, 2) + ps('*', {"subscribe", "c3"}, 3);
  h.s2c(sub1, kT0 + kMs);
  h.s2c(sub23, kT0 + 2 * kMs);
  h.c2s(cmd({"PSUBSCRIBE", "p*"}), kT0 + 3 * kMs);
  h.s2c(ps('*', {"psubscribe", "p*"}, 4), kT0 + 4 * kMs);
  const std::string msg = ps('*', {"message", "c1", "hello"});
  const std::string pmsg = ps('*', {"pmessage", "p*", "px", "world!"});
  h.s2c(msg + pmsg, kT0 + 5 * kMs);
  h.c2s(cmd({"PING", ""}), kT0 + 6 * kMs);  // subscribed: the answer is an array, a plain reply
  h.s2c("*2\r\n$4\r\npong\r\n$0\r\n\r\n", kT0 + 7 * kMs);
  h.c2s(cmd({"UNSUBSCRIBE"}), kT0 + 8 * kMs);  // all three channels: three confirmations
  const std::string unsub =
      ps('*', {"unsubscribe", "c1"}, 3) + ps('*', {"unsubscribe", "c2"}, 2) + ps('*', {"unsubscribe", "c3"}, 1);
  h.s2c(unsub, kT0 + 9 * kMs);
  h.c2s(cmd({"PUNSUBSCRIBE"}), kT0 + 10 * kMs);
  h.s2c(ps('*', {"punsubscribe", "p*"}, 0), kT0 + 11 * kMs);
  h.c2s(cmd({"GET", "c1"}), kT0 + 12 * kMs);  // out of pub/sub mode: a 3-element array is a reply again
  const std::string values = "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n";
  h.s2c(values, kT0 + 13 * kMs);
  ASSERT_EQ(h.size(), 8u);
  json r = h.rec(0);
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["request"], json::parse("{\"bytes\":" + std::to_string(subscribe.size()) +
                                      R"(,"command":"SUBSCRIBE","key":"c1","args":3})"));
  EXPECT_EQ(r["response"], json::parse("{\"bytes\":" + std::to_string(sub1.size() + sub23.size()) +
                                       R"(,"type":"array","elements":3,"subscriptions":3})"));
  EXPECT_EQ(r["latency_us"], 2000);  // to its last confirmation
  EXPECT_EQ(h.rec(1)["response"], json::parse(R"({"bytes":33,"type":"array","elements":3,"subscriptions":4})"));
  r = h.rec(2);
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["request"], json::parse("{\"bytes\":" + std::to_string(msg.size()) +
                                      R"(,"command":"PUSH message","key":"c1","args":2,"payload_bytes":5,"from_server":true})"));
  EXPECT_TRUE(r["response"].is_null());
  EXPECT_EQ(h.rec(3)["request"], json::parse("{\"bytes\":" + std::to_string(pmsg.size()) +
                                             R"(,"command":"PUSH pmessage","key":"px","pattern":"p*","args":3,"payload_bytes":6,"from_server":true})"));
  EXPECT_EQ(h.rec(4)["request"]["command"], "PING");
  EXPECT_EQ(h.rec(4)["response"], json::parse(R"({"bytes":20,"type":"array","elements":2})"));
  EXPECT_EQ(h.rec(5)["request"]["command"], "UNSUBSCRIBE");
  EXPECT_EQ(h.rec(5)["response"], json::parse("{\"bytes\":" + std::to_string(unsub.size()) +
                                              R"(,"type":"array","elements":3,"subscriptions":1})"));
  EXPECT_EQ(h.rec(6)["response"], json::parse(R"({"bytes":35,"type":"array","elements":3,"subscriptions":0})"));
  EXPECT_EQ(h.rec(7)["request"]["command"], "GET");
  EXPECT_EQ(h.rec(7)["response"], json::parse("{\"bytes\":" + std::to_string(values.size()) + R"(,"type":"array","elements":3})"));
  for (size_t i = 0; i < h.size(); ++i) EXPECT_TRUE(h.rec(i)["flags"].empty()) << i;
  h.expect_ledger();

  // RESP3: confirmations and messages are pushes; other commands go on meanwhile; client-side caching
  // invalidations are pushes too.
  Harness g;
  g.open(6379);
  g.c2s(cmd({"SUBSCRIBE", "r1", "r2"}) + cmd({"GET", "k"}), kT0);
  const std::string confirm = ps('>', {"subscribe", "r1"}, 1) + ps('>', {"subscribe", "r2"}, 2);
  g.s2c(confirm.substr(0, 40), kT0 + kMs);
  g.s2c(confirm.substr(40) + ps('>', {"message", "r1", "x"}), kT0 + 2 * kMs);
  g.s2c(ps('>', {"message", "r2", "yy"}) + "$1\r\nv\r\n", kT0 + 3 * kMs);
  g.s2c(">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n", kT0 + 4 * kMs);
  DUMP_REDIS(g);
  ASSERT_EQ(g.size(), 5u);
  EXPECT_EQ(g.rec(0)["request"]["command"], "SUBSCRIBE");
  EXPECT_EQ(g.rec(0)["response"], json::parse("{\"bytes\":" + std::to_string(confirm.size()) +
                                              R"(,"type":"push","elements":3,"subscriptions":2})"));
  EXPECT_EQ(g.rec(1)["request"], json::parse(R"({"bytes":32,"command":"PUSH message","key":"r1","args":2,"payload_bytes":1,"from_server":true})"));
  EXPECT_EQ(g.rec(2)["request"]["key"], "r2");
  EXPECT_EQ(g.rec(2)["request"]["payload_bytes"], 2);
  EXPECT_EQ(g.rec(3)["request"]["command"], "GET");
  EXPECT_EQ(g.rec(3)["response"], json::parse(R"({"bytes":7,"type":"bulk","size":1})"));
  EXPECT_EQ(g.rec(4)["request"], json::parse(R"({"bytes":32,"command":"PUSH invalidate","args":1,"from_server":true})"));
  EXPECT_TRUE(g.rec(4)["response"].is_null());
  for (size_t i = 0; i < g.size(); ++i) EXPECT_TRUE(g.rec(i)["flags"].empty()) << i;
  g.expect_ledger();
}

// A gap in a subscriber's stream: the command waiting for confirmations ends flagged `gap`; a confirmation no
// command waits for, or an UNSUBSCRIBE whose confirmations are counted from subscriptions a gap may have hidden,
// is flagged `gap` too. Subscriptions known again (none left) clear that.
TEST(Redis, PubSubAfterAGapIsFlagged) {
  Harness h;
  h.open(6379);
  h.c2s(cmd({"SUBSCRIBE", "a", "b"}), kT0);
  h.s2c(ps('*', {"subscribe", "a"}, 1), kT0 + kMs);
  h.gap(kS2C, 32, kT0 + 2 * kMs);  // b's confirmation
  h.gap(kC2S, cmd({"PSUBSCRIBE", "q*"}).size(), kT0 + 4 * kMs);  // a command lost: its confirmation waits for nothing
  h.s2c(ps('*', {"psubscribe", "q*"}, 3), kT0 + 5 * kMs);
  h.s2c(ps('*', {"subscribe", "z"}, 4), kT0 + 6 * kMs);
  h.c2s(cmd({"UNSUBSCRIBE"}), kT0 + 7 * kMs);
  h.s2c(ps('*', {"unsubscribe", "a"}, 3) + ps('*', {"unsubscribe", "b"}, 2) + ps('*', {"unsubscribe", "z"}, 1),
        kT0 + 8 * kMs);
  h.c2s(cmd({"PUNSUBSCRIBE"}), kT0 + 9 * kMs);
  h.s2c(ps('*', {"punsubscribe", "q*"}, 0), kT0 + 10 * kMs);
  h.c2s(cmd({"SUBSCRIBE", "n"}) + cmd({"UNSUBSCRIBE"}), kT0 + 11 * kMs);  // known again: clean
  h.s2c(ps('*', {"subscribe", "n"}, 1) + ps('*', {"unsubscribe", "n"}, 0), kT0 + 12 * kMs);
  DUMP_REDIS(h);
  ASSERT_EQ(h.size(), 8u);
  EXPECT_EQ(h.rec(0)["request"]["command"], "SUBSCRIBE");  // b's confirmation is in the hole
  EXPECT_EQ(h.rec(0)["response"], json::parse(R"({"bytes":30,"type":"array","elements":3,"subscriptions":1})"));
  EXPECT_EQ(flags_of(h.rec(0)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(1)["request"], json::parse(R"({"bytes":33,"command":"PUSH psubscribe","key":"q*","args":2,"from_server":true})"));
  EXPECT_EQ(flags_of(h.rec(1)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(2)["request"]["command"], "PUSH subscribe");
  EXPECT_EQ(flags_of(h.rec(2)), std::vector<std::string>{"gap"});
  // Without arguments it waits for as many confirmations as channels were counted: 2 (a, z: b's was lost),
  // so the third comes as a push.
  EXPECT_EQ(h.rec(3)["request"]["command"], "UNSUBSCRIBE");
  EXPECT_EQ(h.rec(3)["response"], json::parse(R"({"bytes":66,"type":"array","elements":3,"subscriptions":2})"));
  EXPECT_EQ(flags_of(h.rec(3)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(4)["request"], json::parse(R"({"bytes":33,"command":"PUSH unsubscribe","key":"z","args":2,"from_server":true})"));
  EXPECT_EQ(flags_of(h.rec(4)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(5)["request"]["command"], "PUNSUBSCRIBE");  // its count 0 ends it
  EXPECT_EQ(h.rec(5)["response"]["subscriptions"], 0);
  EXPECT_EQ(flags_of(h.rec(5)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(6)["request"]["key"], "n");
  EXPECT_EQ(flags_of(h.rec(6)), std::vector<std::string>{});
  EXPECT_EQ(h.rec(7)["request"]["command"], "UNSUBSCRIBE");
  EXPECT_EQ(h.rec(7)["response"], json::parse(R"({"bytes":33,"type":"array","elements":3,"subscriptions":0})"));
  EXPECT_EQ(flags_of(h.rec(7)), std::vector<std::string>{});
  h.expect_ledger();
}

TEST(Redis, SniffOnUnknownPort) {
  Harness h;
  h.open(7000);
  h.c2s(cmd({"PING"}), kT0);
  h.s2c("+PONG\r\n", kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["protocol"], "redis");
  h.expect_ledger();
}

TEST(Memcached, SetWithDataInLaterSegmentAndGet) {
  Harness h;
  h.open(11211);
  h.c2s("set foo 0 0 3\r\n", kT0);
  h.c2s("bar\r\n", kT0 + 2000 * kMs);
  h.s2c("STORED\r\n", kT0 + 2001 * kMs);
  h.c2s("get foo missing\r\n", kT0 + 3000 * kMs);
  h.s2c("VALUE foo 0 3\r\nbar\r\nEND\r\n", kT0 + 3001 * kMs);
  ASSERT_EQ(h.size(), 2u);
  json r0 = h.rec(0);
  EXPECT_EQ(r0["request"]["command"], "set");
  EXPECT_EQ(r0["request"]["key"], "foo");
  EXPECT_EQ(r0["request"]["value_bytes"], 3);
  EXPECT_EQ(r0["request"]["bytes"], 20);
  EXPECT_EQ(r0["response"]["response"], "STORED");
  EXPECT_EQ(r0["latency_us"], 2001000);
  json r1 = h.rec(1);
  EXPECT_EQ(r1["request"]["keys"], 2);
  EXPECT_EQ(r1["response"]["response"], "VALUE");
  EXPECT_EQ(r1["response"]["values"], 1);
  EXPECT_EQ(r1["response"]["value_bytes"], 3);
  h.expect_ledger();
}

// A set whose data block's tail the capture missed: the reassembler's hold gives the tail up (it is
// reported when the client sends again) and delivers the server's STORED first. The reply ends the set,
// flagged truncated, and pairs with it. (It was `unmatched`, the set then took the incr's NOT_FOUND, and
// every later reply of the connection paired one off: 16 such records under 3% loss on the corpus
// memcached capture cut at half.)
TEST(Memcached, ReplyToARequestWhoseTailWasMissed) {
  Harness h;
  h.open(11211);
  h.c2s("set user:16 2 300 10\r\n01234", kT0);
  h.s2c("STORED\r\n", kT0 + kMs);
  h.gap(kC2S, 7, kT0 + 2 * kMs);  // "56789\r\n", reported when the client sends again
  h.c2s("incr ctr:17 3\r\n", kT0 + 2 * kMs);
  h.s2c("NOT_FOUND\r\n", kT0 + 3 * kMs);
  h.c2s("set user:4 7 0 2\r\nok\r\n", kT0 + 4 * kMs);
  h.s2c("STORED\r\n", kT0 + 5 * kMs);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(0)["request"]["key"], "user:16");
  EXPECT_EQ(h.rec(0)["response"]["response"], "STORED");
  EXPECT_EQ(h.rec(0)["flags"], json::array({"truncated"}));
  EXPECT_EQ(h.rec(1)["request"]["command"], "incr");
  EXPECT_EQ(h.rec(1)["response"]["response"], "NOT_FOUND");
  EXPECT_EQ(h.rec(1)["latency_us"], 1000);
  // The 7 lost bytes could have held a whole request ("get k\r\n"): the reply after them fits the incr, so it
  // pairs with it, flagged gap; the requests pending drained, the next pair is clean.
  EXPECT_EQ(h.rec(1)["flags"], json::array({"gap"}));
  EXPECT_EQ(h.rec(2)["flags"], json::array());
  EXPECT_EQ(h.rec(2)["request"]["key"], "user:4");
  EXPECT_EQ(h.rec(2)["response"]["response"], "STORED");
  EXPECT_EQ(h.counters().unmatched, 0u);
  h.close(kT0 + 6 * kMs);
  h.expect_ledger();
}

TEST(Memcached, RepliesToRequestsAClientHoleTookDoNotShiftTheRest) {
  // A pipelined batch whose middle the capture lost (a snaplen cut, a dropped packet): the server had the
  // set and answered it. Its STORED used to pair with the get after the hole, and the get's VALUE came out
  // unmatched, both unflagged. A reply that cannot answer the request it would pair with answers a lost
  // one: unmatched, and the get pairs with its own VALUE, flagged gap (one that fits could be the wrong one).
  Harness h;
  h.open(11211);
  h.c2s("get a\r\nset x 0 0 1\r\n", kT0);
  h.gap(kC2S, 3, kT0 + kMs);  // "v\r\n": inside the set's data block, skipped by count
  h.c2s("delete y\r\n", kT0 + kMs);
  h.gap(kC2S, 20, kT0 + kMs);  // "set z 0 0 2\r\nzz\r\n" (20 bytes): a whole request
  h.c2s("get b\r\n", kT0 + kMs);
  h.s2c("END\r\nSTORED\r\nDELETED\r\nSTORED\r\nVALUE b 0 1\r\nv\r\nEND\r\n", kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 5u);
  auto row = [&](size_t i) {
    const json r = h.rec(i);
    return std::make_tuple(r["status"].get<std::string>(),
                           r["request"].is_null() ? std::string() : r["request"]["command"].get<std::string>(),
                           r["response"]["response"].get<std::string>(), r["flags"]);
  };
  EXPECT_EQ(row(0), std::make_tuple(std::string("ok"), std::string("get"), std::string("END"), json::array()));
  EXPECT_EQ(row(1), std::make_tuple(std::string("ok"), std::string("set"), std::string("STORED"),
                                    json::array({"gap"})));  // its data block crossed the first hole
  EXPECT_EQ(row(2), std::make_tuple(std::string("ok"), std::string("delete"), std::string("DELETED"),
                                    json::array()));  // made before the second hole: pairs as usual
  EXPECT_EQ(row(3), std::make_tuple(std::string("unmatched"), std::string(), std::string("STORED"), json::array()));
  EXPECT_EQ(row(4), std::make_tuple(std::string("ok"), std::string("get"), std::string("VALUE"),
                                    json::array({"gap"})));
  EXPECT_EQ(h.counters().unmatched, 1u);
  h.close(kT0 + 3 * kMs);
  h.expect_ledger();
}

TEST(Memcached, PipelinedGetsMissesAndErrors) {
  Harness h;
  h.open(11211);
  h.c2s("gets a\r\ngets b\r\nincr n 5\r\nbogus_command foo noreply\r\ndelete x\r\n", kT0);
  h.s2c("END\r\nVALUE b 1 2 99\r\nhi\r\nEND\r\n6\r\nERROR\r\n", kT0 + kMs);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h.rec(0)["response"]["response"], "END");
  EXPECT_EQ(h.rec(0)["response"]["values"], 0);
  EXPECT_EQ(h.rec(1)["response"]["values"], 1);
  EXPECT_EQ(h.rec(2)["response"]["response"], "6");
  // An unknown verb after known commands is a request the server answers
  // ERROR (noreply or not), so the FIFO stays aligned: delete gets its own reply.
  EXPECT_EQ(h.rec(3)["request"]["command"], "bogus_command");
  EXPECT_EQ(h.rec(3)["response"]["response"], "ERROR");
  EXPECT_EQ(h.rec(3)["status"], "error");
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kMemcached)], 0u);
  h.s2c("SERVER_ERROR x\r\n", kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h.rec(4)["request"]["command"], "delete");
  EXPECT_EQ(h.rec(4)["status"], "error");
  EXPECT_EQ(h.rec(4)["response"]["error_message"], "x");
  h.close(kT0 + 3 * kMs);
  EXPECT_EQ(h.size(), 5u);
  h.expect_ledger();
}

TEST(Memcached, UnknownVerbBeforeAnyKnownCommandIsSkipped) {
  // A flow picked up mid-stream may start inside a data block: a word there
  // is not trusted as a command until a known command has been decoded.
  Harness h;
  h.open(11211);
  h.c2s("hello world\r\nget k\r\n", kT0);
  h.s2c("END\r\n", kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["request"]["command"], "get");
  EXPECT_EQ(h.rec(0)["status"], "ok");
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kMemcached)], 1u);
  h.close(kT0 + 2 * kMs);
  h.expect_ledger();
}

TEST(Memcached, NoreplyAndQuitExpectNoResponse) {
  Harness h;
  h.open(11211);
  h.c2s("set k 0 0 1 noreply\r\nx\r\ndelete k noreply\r\nversion\r\nquit\r\n", kT0);
  h.s2c("VERSION 1.6.21\r\n", kT0 + kMs);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h.rec(0)["request"]["noreply"], true);
  EXPECT_TRUE(h.rec(0)["response"].is_null());
  EXPECT_EQ(h.rec(0)["status"], "ok");
  EXPECT_EQ(h.rec(1)["request"]["command"], "delete");
  EXPECT_EQ(h.rec(2)["request"]["command"], "quit");
  EXPECT_EQ(h.rec(3)["request"]["command"], "version");
  EXPECT_EQ(h.rec(3)["response"]["response"], "VERSION");
  EXPECT_EQ(h.counters().no_reply[static_cast<size_t>(Protocol::kMemcached)], 3u);
  h.expect_ledger();
}

TEST(Memcached, StatsMultiLineAndMetaCommands) {
  Harness h;
  h.open(11211);
  h.c2s("stats\r\nmg foo v\r\nms bar 2 T0\r\nhi\r\nmn\r\n", kT0);
  h.s2c("STAT pid 1\r\nSTAT uptime 2\r\nEND\r\nVA 3\r\nabc\r\nHD\r\nMN\r\n", kT0 + kMs);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h.rec(0)["response"]["response"], "STAT");
  EXPECT_EQ(h.rec(1)["request"]["key"], "foo");
  EXPECT_EQ(h.rec(1)["response"]["values"], 1);
  EXPECT_EQ(h.rec(2)["request"]["value_bytes"], 2);
  EXPECT_EQ(h.rec(2)["response"]["response"], "HD");
  EXPECT_EQ(h.rec(3)["response"]["response"], "MN");
  h.expect_ledger();
}

TEST(Memcached, GapInsideValueIsSkipped) {
  Harness h;
  h.open(11211);
  h.c2s("get big\r\n", kT0);
  h.s2c("VALUE big 0 1000\r\n" + std::string(10, 'x'), kT0 + kMs);
  h.gap(kS2C, 980, kT0 + kMs);
  h.s2c(std::string(10, 'x') + "\r\nEND\r\n", kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["response"]["value_bytes"], 1000);
  EXPECT_EQ(flags_of(h.rec(0)), std::vector<std::string>{"gap"});
  h.expect_ledger();
}

// A set whose length the server cannot take (> 2^31 - 3: CLIENT_ERROR, no data block read) is recorded
// flagged truncated with its error reply; the get after it gets its own record.
TEST(Memcached, AbsurdDataLengthDoesNotSwallowTheNextCommand) {
  Harness h;
  h.open(11211);
  h.c2s("set k 0 0 4294967295\r\n", kT0);
  h.c2s("get foo\r\n", kT0 + kMs);
  h.s2c("CLIENT_ERROR bad command line format\r\n", kT0 + 2 * kMs);
  h.s2c("VALUE foo 0 3\r\nbar\r\nEND\r\n", kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  json s = h.rec(0);
  EXPECT_EQ(s["request"]["command"], "set");
  EXPECT_EQ(s["request"]["key"], "k");
  EXPECT_FALSE(s["request"].contains("value_bytes"));
  EXPECT_EQ(s["status"], "error");
  EXPECT_EQ(s["response"]["response"], "CLIENT_ERROR");
  EXPECT_EQ(dectest::flags_of(s), std::vector<std::string>{"truncated"});
  json g = h.rec(1);
  EXPECT_EQ(g["request"]["command"], "get");
  EXPECT_EQ(g["request"]["key"], "foo");
  EXPECT_EQ(g["status"], "ok");
  EXPECT_EQ(g["response"]["values"], 1);
  EXPECT_EQ(g["response"]["value_bytes"], 3);
  EXPECT_TRUE(g["flags"].empty());
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kMemcached)], 1u);
  // the largest length the server reads is still a data block (skipped by count)
  h.c2s("set big 0 0 2147483645\r\n", kT0 + 4 * kMs);
  h.c2s("get foo\r\n", kT0 + 5 * kMs);  // inside the data block: not a command
  h.close(kT0 + 6 * kMs);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(2)["request"]["key"], "big");
  EXPECT_EQ(h.rec(2)["request"]["value_bytes"], 2147483645);
  EXPECT_EQ(h.rec(2)["status"], "timeout");
  h.expect_ledger();
}

// A VALUE line whose length is beyond any data block (2^64-1 would wrap `len + 2` to 1): the reply is cut
// there (truncated), its lines are skipped up to its END, and the next get pairs with its own reply.
TEST(Memcached, AbsurdValueLengthInAReplySkipsToEnd) {
  Harness h;
  h.open(11211);
  const std::string bad = "VALUE k 0 18446744073709551615\r\nv\r\nEND\r\n";
  h.c2s("get k\r\n", kT0);
  h.s2c(bad, kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["response"], json({{"bytes", bad.size()}, {"response", "VALUE"}}));
  EXPECT_EQ(flags_of(r), std::vector<std::string>{"truncated"});
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kMemcached)], 1u);
  EXPECT_EQ(h.counters().resyncs, 1u);
  EXPECT_EQ(h.counters().resync_skipped_bytes, 3u);  // "v\r\n"
  h.c2s("get k\r\n", kT0 + 2 * kMs);
  h.s2c("VALUE k 0 1\r\nv\r\nEND\r\n", kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(1)["response"]["values"], 1);
  EXPECT_TRUE(h.rec(1)["flags"].empty());
  EXPECT_EQ(h.counters().unmatched, 0u);
  // a meta VA reply has no END: cut at its line, the next reply starts clean
  h.c2s("mg k v\r\nget k\r\n", kT0 + 4 * kMs);
  h.s2c("VA 99999999999 f0\r\nVALUE k 0 1\r\nv\r\nEND\r\n", kT0 + 5 * kMs);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(flags_of(h.rec(2)), std::vector<std::string>{"truncated"});
  EXPECT_EQ(h.rec(3)["response"]["values"], 1);
  EXPECT_TRUE(h.rec(3)["flags"].empty());
  EXPECT_EQ(h.counters().unmatched, 0u);
  h.expect_ledger();
}

}  // namespace
}  // namespace spanfeed
