// Unit tests for the HTTP/1.x decoder: framing, pipelining, interim responses, gaps, resync, redaction.
// Runs in the test thread; allocates freely (tests only).
#include <gtest/gtest.h>

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

const char* kGet = "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\n\r\n";
const char* kOk = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";

// n pipelined GETs of /0, /1... and their n responses, whose body is the request's number.
std::pair<std::string, std::string> pipelined(int n) {
  std::string reqs, resps;
  for (int i = 0; i < n; ++i) {
    reqs += "GET /" + std::to_string(i) + " HTTP/1.1\r\n\r\n";
    const std::string body = std::to_string(i);
    resps += "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  return {reqs, resps};
}

TEST(Http, SimpleGet) {
  Harness h;
  h.open(80);
  h.c2s(kGet, kT0);
  h.s2c(kOk, kT0 + 3 * kMs);
  h.close(kT0 + 4 * kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["protocol"], "http");
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["latency_us"], 3000);
  EXPECT_EQ(r["ts"], "2023-11-14T22:13:20.000000Z");
  EXPECT_EQ(r["client"]["ip"], "10.0.0.1");
  EXPECT_EQ(r["client"]["port"], 40000);
  EXPECT_EQ(r["server"]["port"], 80);
  EXPECT_EQ(r["request"]["method"], "GET");
  EXPECT_EQ(r["request"]["path"], "/a/b");
  EXPECT_EQ(r["request"]["query"], "x=1&y=2");
  EXPECT_EQ(r["request"]["host"], "example.com");
  EXPECT_EQ(r["request"]["user_agent"], "t/1");
  EXPECT_EQ(r["request"]["bytes"], std::string(kGet).size());
  EXPECT_EQ(r["response"]["status_code"], 200);
  EXPECT_EQ(r["response"]["reason"], "OK");
  EXPECT_EQ(r["response"]["content_type"], "text/plain");
  EXPECT_EQ(r["response"]["body_bytes"], 5);
  EXPECT_EQ(r["response"]["bytes"], std::string(kOk).size());
  EXPECT_TRUE(r["flags"].empty());
  EXPECT_FALSE(r.contains("recording_id"));
  h.expect_ledger();
}

TEST(Http, HeaderNamesIgnoreCaseOnly) {
  // Names match whatever their case; a name that differs otherwise (a byte whose case bit is the only
  // difference from '-', a longer or shorter name) is not read.
  Harness h;
  h.open(80);
  h.c2s("GET / HTTP/1.1\r\nhOsT: a\r\nUSER-AGENT: ua\r\nContent\rType: x\r\n\r\n", kT0);
  h.s2c("HTTP/1.1 200 OK\r\nCONTENT-type: text/html\r\ncontent-LENGTH: 2\r\nContent-Lengthx: 9\r\n\r\nok", kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["request"]["host"], "a");
  EXPECT_EQ(r["request"]["user_agent"], "ua");
  EXPECT_FALSE(r["request"].contains("content_type"));
  EXPECT_EQ(r["response"]["content_type"], "text/html");
  EXPECT_EQ(r["response"]["content_length"], 2);
  EXPECT_EQ(r["response"]["body_bytes"], 2);
  EXPECT_TRUE(r["flags"].empty());
  h.expect_ledger();
}

TEST(Http, PipeliningMatchesInOrder) {
  Harness h;
  h.open(80);
  h.c2s("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n", kT0);
  h.s2c("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", kT0 + kMs);
  h.s2c("HTTP/1.1 503 Unavailable\r\nContent-Length: 2\r\n\r\nzz", kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(0)["request"]["path"], "/1");
  EXPECT_EQ(h.rec(0)["response"]["status_code"], 200);
  EXPECT_EQ(h.rec(0)["status"], "ok");
  EXPECT_EQ(h.rec(1)["request"]["path"], "/2");
  EXPECT_EQ(h.rec(1)["response"]["status_code"], 404);
  EXPECT_EQ(h.rec(1)["status"], "error");  // 4xx and 5xx are errors (docs/records.md)
  EXPECT_EQ(h.rec(2)["request"]["path"], "/3");
  EXPECT_EQ(h.rec(2)["status"], "error");
  EXPECT_EQ(h.rec(2)["latency_us"], 2000);
  h.expect_ledger();
}

TEST(Http, ChunkedBodyWithExtensionsAndTrailers) {
  Harness h;
  h.open(80);
  h.c2s("POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", kT0);
  h.s2c("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", kT0 + kMs);
  h.s2c("5;ext=1\r\nhello\r\n", kT0 + kMs);
  h.s2c("A\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n", kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["request"]["body_bytes"], 3);
  EXPECT_EQ(r["response"]["body_bytes"], 15);
  EXPECT_EQ(r["latency_us"], 2000);
  EXPECT_TRUE(r["flags"].empty());
  h.expect_ledger();
}

TEST(Http, HeadAnd204And304HaveNoBody) {
  Harness h;
  h.open(80);
  h.c2s("HEAD /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\nGET /z HTTP/1.1\r\n\r\n", kT0);
  // HEAD response announces a length but carries no body; the next response follows at once.
  h.s2c("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
        "HTTP/1.1 204 No Content\r\n\r\n"
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
        kT0 + kMs);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(0)["request"]["method"], "HEAD");
  EXPECT_EQ(h.rec(0)["response"]["body_bytes"], 0);
  EXPECT_EQ(h.rec(0)["response"]["content_length"], 1000);
  EXPECT_EQ(h.rec(1)["response"]["status_code"], 204);
  EXPECT_EQ(h.rec(2)["response"]["status_code"], 304);
  EXPECT_EQ(h.rec(2)["status"], "ok");
  h.expect_ledger();
}

// A HEAD lost to a gap on the client side: its 404 (which announces a body it does not carry) was sent
// before the server had the next request, as its ACK shows: it is unmatched, not that request's answer, and
// the status line right after its header shows it had no body. The POST keeps its own 201. (The 404 took the
// POST and 153 bytes of the 201 as its body; the connection's later responses paired one off, unflagged:
// 1-26 records per lossy replay of the corpus HTTP capture.)
TEST(Http, ResponseSentBeforeTheRequestArrivedIsNotItsAnswer) {
  Harness h;
  h.open(80);
  const std::string head = "HEAD /nope HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string post = "POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
  h.gap(kC2S, head.size(), kT0);                                        // the HEAD, lost
  h.s2c_acked("HTTP/1.1 404 Not Found\r\nContent-Length: 153\r\n\r\n", kT0 + kMs, head.size());
  h.c2s_acked(post, kT0 + 2 * kMs, 0);
  h.s2c_acked("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nhi", kT0 + 3 * kMs, head.size() + post.size());
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["status"], "unmatched");
  EXPECT_EQ(h.rec(0)["response"]["status_code"], 404);
  EXPECT_EQ(h.rec(0)["response"]["body_bytes"], 0);
  EXPECT_EQ(h.rec(1)["request"]["method"], "POST");
  EXPECT_EQ(h.rec(1)["response"]["status_code"], 201);
  EXPECT_EQ(h.rec(1)["latency_us"], 1000);
  EXPECT_EQ(h.counters().unmatched_by_ack, 1u);
  h.close(kT0 + 4 * kMs);
  h.expect_ledger();
}

// The same 404 with its ACK unknown (a capture without the other direction's sequence numbers): it pairs
// with the POST, as FIFO order says.
TEST(Http, WithoutAcksResponsesPairInOrder) {
  Harness h;
  h.open(80);
  h.c2s("POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", kT0);
  h.s2c("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!", kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["request"]["method"], "POST");
  EXPECT_EQ(h.rec(0)["response"]["status_code"], 404);
  EXPECT_EQ(h.counters().unmatched_by_ack, 0u);
  h.expect_ledger();
}

TEST(Http, HundredContinueIsNotTheFinalResponse) {
  Harness h;
  h.open(80);
  h.c2s("PUT /f HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n", kT0);
  h.s2c("HTTP/1.1 100 Continue\r\n\r\n", kT0 + kMs);
  h.c2s("data", kT0 + 2 * kMs);
  h.s2c("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", kT0 + 5 * kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["response"]["status_code"], 201);
  EXPECT_EQ(r["request"]["body_bytes"], 4);
  EXPECT_EQ(r["latency_us"], 5000);
  EXPECT_TRUE(r["flags"].empty());
  EXPECT_EQ(h.counters().interim[static_cast<size_t>(Protocol::kHttp)], 1u);
  h.expect_ledger();
}

TEST(Http, ConnectionCloseBodyEndsAtFin) {
  Harness h;
  h.open(80);
  h.c2s("GET / HTTP/1.0\r\n\r\n", kT0);
  h.s2c("HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nsome ", kT0 + kMs);
  h.s2c("body", kT0 + 7 * kMs);
  EXPECT_EQ(h.size(), 0u);
  h.fin(kS2C, kT0 + 8 * kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["response"]["body_bytes"], 9);
  EXPECT_EQ(r["latency_us"], 8000);  // the FIN's time ends the body
  EXPECT_TRUE(r["flags"].empty());
  h.close(kT0 + 9 * kMs);
  EXPECT_EQ(h.size(), 1u);
  h.expect_ledger();
}

TEST(Http, SplitIntoOneByteSegments) {
  Harness h;
  h.open(80);
  std::string req = "POST /p?q HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nCookie: secret\r\n\r\nabc";
  std::string resp = "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n";
  h.dribble(kC2S, req, 1, kT0);
  h.dribble(kS2C, resp, 1, kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["request"]["method"], "POST");
  EXPECT_EQ(r["request"]["query"], "q");
  EXPECT_EQ(r["request"]["host"], "h");
  EXPECT_EQ(r["request"]["cookie"], "<redacted>");
  EXPECT_EQ(r["request"]["bytes"], req.size());
  EXPECT_EQ(r["response"]["bytes"], resp.size());
  EXPECT_EQ(r["response"]["reason"], "Internal Server Error");
  EXPECT_EQ(r["status"], "error");
  EXPECT_EQ(h.builder().carry_buffers_in_use(), 0u);
  h.expect_ledger();
}

TEST(Http, GapInsideBodyIsSkippedAndFlagged) {
  Harness h;
  h.open(80);
  h.c2s(kGet, kT0);
  h.s2c("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", kT0 + kMs);
  h.gap(kS2C, 80, kT0 + 2 * kMs);
  h.s2c("0123456789", kT0 + 3 * kMs);
  h.c2s(kGet, kT0 + 4 * kMs);
  h.s2c(kOk, kT0 + 5 * kMs);
  ASSERT_EQ(h.size(), 2u);
  json r = h.rec(0);
  EXPECT_EQ(r["response"]["body_bytes"], 100);
  EXPECT_EQ(flags_of(r), std::vector<std::string>{"gap"});
  EXPECT_EQ(r["status"], "ok");
  EXPECT_TRUE(h.rec(1)["flags"].empty());  // the next exchange is clean
  EXPECT_EQ(h.counters().gaps_absorbed, 1u);
  h.expect_ledger();
}

TEST(Http, GapInHeadersResyncsOnNextStartLine) {
  Harness h;
  h.open(80);
  h.c2s(kGet, kT0);
  h.s2c("HTTP/1.1 200 OK\r\nContent-Le", kT0 + kMs);
  h.gap(kS2C, 500, kT0 + 2 * kMs);  // framing of this response is lost
  h.s2c("ngth garbage\r\nmore body text\r\n", kT0 + 3 * kMs);
  h.c2s("GET /next HTTP/1.1\r\n\r\n", kT0 + 4 * kMs);
  h.s2c(kOk, kT0 + 5 * kMs);
  ASSERT_EQ(h.size(), 2u);
  json r0 = h.rec(0);
  EXPECT_EQ(r0["response"]["status_code"], 200);
  EXPECT_EQ(flags_of(r0), std::vector<std::string>{"gap"});
  json r1 = h.rec(1);
  EXPECT_EQ(r1["request"]["path"], "/next");
  EXPECT_EQ(r1["response"]["body_bytes"], 5);
  EXPECT_EQ(h.counters().resyncs, 1u);
  h.expect_ledger();
}

TEST(Http, ResponseLostInGapFlushesPendingAsTimeout) {
  Harness h;
  h.open(80);
  h.c2s("GET /lost HTTP/1.1\r\n\r\n", kT0);
  h.gap(kS2C, 300, kT0 + kMs);  // the whole response is lost
  h.c2s("GET /next HTTP/1.1\r\n\r\n", kT0 + 2 * kMs);
  h.s2c(kOk, kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["status"], "timeout");
  EXPECT_EQ(h.rec(0)["request"]["path"], "/lost");
  EXPECT_EQ(flags_of(h.rec(0)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(1)["request"]["path"], "/next");
  EXPECT_EQ(h.rec(1)["status"], "ok");
  EXPECT_EQ(h.counters().timeouts[static_cast<size_t>(TimeoutCause::kGap)], 1u);
  h.expect_ledger();
}

TEST(Http, ResponseBeforeTheRequestEndsWaitsForItsBody) {
  // The capture lost the end of the request without a gap event (capture
  // started mid-request or the tail was never seen): the response answers it,
  // and the record waits for the rest of the body until the flow ends.
  Harness h;
  h.open(8080);
  h.c2s("POST /x HTTP/1.1\r\nContent-Length: 50\r\n\r\nonly-part", kT0);
  h.s2c(kOk, kT0 + kMs);
  EXPECT_EQ(h.size(), 0u);
  h.close(kT0 + 9 * kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(flags_of(h.rec(0)), std::vector<std::string>{"truncated"});
  EXPECT_EQ(h.rec(0)["request"]["body_bytes"], 9);
  EXPECT_EQ(h.rec(0)["status"], "ok");
  EXPECT_EQ(h.rec(0)["latency_us"], 1000);
  h.expect_ledger();
}

// A server that answers before an upload ends (nginx `return 200`, a 401 or 413 up front): the rest of the
// body still comes and is read to its end (not a resync, not a decode error), and the record has all of it.
TEST(Http, EarlyAnswerStillReadsTheWholeRequestBody) {
  Harness h;
  h.open(8080);
  const std::string head = "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\n";
  const std::string denied = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
  h.c2s(head + "0123456789", kT0);
  h.s2c(denied, kT0 + kMs);
  h.c2s("abcdefghij", kT0 + 2 * kMs);
  h.c2s(kGet, kT0 + 3 * kMs);  // the connection goes on
  h.s2c(kOk, kT0 + 4 * kMs);
  // Chunked: the answer comes after the first chunk, two more and the last one follow.
  const std::string chunked = "POST /up2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  h.c2s(chunked + "5\r\nhello\r\n", kT0 + 5 * kMs);
  h.s2c("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", kT0 + 6 * kMs);
  h.c2s("3\r\nabc\r\n", kT0 + 7 * kMs);
  h.c2s("4\r\ndefg\r\n0\r\n\r\n", kT0 + 8 * kMs);
  h.close(kT0 + 9 * kMs);
  ASSERT_EQ(h.size(), 3u);
  const json a = h.rec(0), b = h.rec(1), c = h.rec(2);
  EXPECT_EQ(a["request"]["path"], "/up");
  EXPECT_EQ(a["request"]["body_bytes"], 20);
  EXPECT_EQ(a["request"]["bytes"], head.size() + 20);
  EXPECT_EQ(a["response"]["status_code"], 401);
  EXPECT_EQ(a["status"], "error");
  EXPECT_EQ(a["latency_us"], 1000);
  EXPECT_TRUE(flags_of(a).empty());
  EXPECT_EQ(b["request"]["path"], "/a/b");
  EXPECT_EQ(b["response"]["status_code"], 200);
  EXPECT_EQ(c["request"]["path"], "/up2");
  EXPECT_EQ(c["request"]["body_bytes"], 12);
  EXPECT_EQ(c["response"]["body_bytes"], 2);
  EXPECT_EQ(c["status"], "ok");
  EXPECT_EQ(c["latency_us"], 1000);
  EXPECT_TRUE(flags_of(c).empty());
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kHttp)], 0u);
  EXPECT_EQ(h.counters().resyncs, 0u);
  EXPECT_EQ(h.counters().resync_skipped_bytes, 0u);
  EXPECT_EQ(h.builder().messages_in_use(), 0u);
  h.expect_ledger();
}

// A client that announced a body, got its answer (413) and moves on to the next request without sending
// the body: a segment that starts with a request line ends the waiting request there.
TEST(Http, NextRequestEndsABodyThatIsNotComing) {
  Harness h;
  h.open(8080);
  const std::string big = "POST /big HTTP/1.1\r\nContent-Length: 1000000\r\n\r\nabcdef";
  h.c2s(big, kT0);
  h.s2c("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n", kT0 + kMs);
  h.c2s(kGet, kT0 + 2 * kMs);
  h.s2c(kOk, kT0 + 3 * kMs);
  h.close(kT0 + 4 * kMs);
  ASSERT_EQ(h.size(), 2u);
  const json a = h.rec(0), b = h.rec(1);
  EXPECT_EQ(a["request"]["path"], "/big");
  EXPECT_EQ(a["request"]["body_bytes"], 6);
  EXPECT_EQ(a["request"]["bytes"], big.size());
  EXPECT_EQ(a["response"]["status_code"], 413);
  EXPECT_EQ(flags_of(a), std::vector<std::string>{"truncated"});
  EXPECT_EQ(b["request"]["path"], "/a/b");
  EXPECT_EQ(b["status"], "ok");
  EXPECT_EQ(b["latency_us"], 1000);
  EXPECT_TRUE(flags_of(b).empty());
  h.expect_ledger();
}

TEST(Http, TimeoutAndUnmatched) {
  Harness h;
  h.open(80);
  h.c2s(kGet, kT0);
  h.builder().advance_time(kT0 + 29 * kNsPerSec);
  EXPECT_EQ(h.size(), 0u);
  h.builder().advance_time(kT0 + 30 * kNsPerSec);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["status"], "timeout");
  EXPECT_TRUE(h.rec(0)["response"].is_null());
  EXPECT_TRUE(h.rec(0)["latency_us"].is_null());
  h.s2c(kOk, kT0 + 31 * kNsPerSec);  // its response, too late: unmatched
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(1)["status"], "unmatched");
  EXPECT_TRUE(h.rec(1)["request"].is_null());
  EXPECT_EQ(h.rec(1)["ts"], "2023-11-14T22:13:51.000000Z");
  EXPECT_EQ(h.counters().timeouts[static_cast<size_t>(TimeoutCause::kExpired)], 1u);
  EXPECT_EQ(h.counters().unmatched, 1u);
  h.expect_ledger();
}

TEST(Http, TimeoutDrivenByLaterPacketsOfOtherFlows) {
  Harness h;
  h.open(80, false, kT0, 0);
  h.open(80, false, kT0, 1, 40001);
  h.c2s(kGet, kT0, 0);
  h.c2s(kGet, kT0 + 31 * kNsPerSec, 1);  // on_data checks the oldest pending requests too
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["status"], "timeout");
  EXPECT_EQ(h.rec(0)["client"]["port"], 40000);
  h.close(kT0 + 32 * kNsPerSec, 1);  // pending at close: timeout (close)
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.counters().timeouts[static_cast<size_t>(TimeoutCause::kClose)], 1u);
  h.expect_ledger();
}

TEST(Http, PendingQueueOverflowFlushesOldest) {
  auto cfg = dectest::small_config();
  cfg.max_pending_per_flow = 4;
  Harness h(cfg);
  h.open(80);
  for (int i = 0; i < 6; ++i) h.c2s("GET /" + std::to_string(i) + " HTTP/1.1\r\n\r\n", kT0 + i * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["request"]["path"], "/0");
  EXPECT_EQ(h.rec(0)["status"], "timeout");
  EXPECT_EQ(h.rec(1)["request"]["path"], "/1");
  EXPECT_EQ(h.counters().pending_overflow, 2u);
  EXPECT_EQ(h.counters().pending_now, 4u);
  // The first two responses answer /0 and /1, whose records already left: no record, no pairing.
  h.s2c(kOk, kT0 + 10 * kMs);
  h.s2c(kOk, kT0 + 11 * kMs);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h.counters().responses_of_evicted, 2u);
  for (int i = 2; i < 6; ++i) h.s2c(kOk, kT0 + (10 + i) * kMs);
  ASSERT_EQ(h.size(), 6u);
  for (int i = 2; i < 6; ++i) {
    EXPECT_EQ(h.rec(i)["status"], "ok");
    EXPECT_EQ(h.rec(i)["request"]["path"], "/" + std::to_string(i));
    EXPECT_EQ(h.rec(i)["latency_us"], 10000);  // each response 10 ms after its own request
  }
  EXPECT_EQ(h.counters().unmatched, 0u);
  EXPECT_EQ(h.counters().sum(h.counters().matched), 4u);
  h.expect_ledger();
}

// Under the default cap (1,024), a batch client's 500 pipelined requests all pair with their own
// responses: no timeout, nothing evicted.
TEST(Http, FiveHundredPipelinedRequestsPairUnderTheDefaultCap) {
  ASSERT_EQ(DecodeConfig{}.max_pending_per_flow, 1024u);  // the default
  DecodeConfig cfg = dectest::small_config();
  cfg.message_pool_size = 1024;  // the test config's 256 would run out first
  Harness h(cfg);
  h.open(80);
  const auto [reqs, resps] = pipelined(500);
  h.c2s(reqs, kT0);
  ASSERT_EQ(h.size(), 0u);
  h.s2c(resps, kT0 + kMs);
  ASSERT_EQ(h.size(), 500u);
  for (int i = 0; i < 500; ++i) {
    json r = h.rec(i);
    ASSERT_EQ(r["status"], "ok") << i;
    ASSERT_EQ(r["request"]["path"], "/" + std::to_string(i));
    ASSERT_EQ(r["response"]["body_bytes"], std::to_string(i).size());
  }
  const DecodeCounters& c = h.counters();
  EXPECT_EQ(c.timeouts[static_cast<size_t>(TimeoutCause::kOverflow)], 0u);
  EXPECT_EQ(c.pending_overflow, 0u);
  EXPECT_EQ(c.sum(c.matched), 500u);
}

// 500 pipelined requests over a cap of 64, then their 500 responses: the 436 evicted requests are
// timeout records (overflow); their responses are consumed in order and the last 64 requests pair with
// their own responses (not with the first 64 responses), and nothing comes out unmatched.
TEST(Http, OverflowEvictedResponsesDoNotShiftThePairing) {
  DecodeConfig cfg = dectest::small_config();
  cfg.max_pending_per_flow = 64;
  Harness h(cfg);
  h.open(80);
  const auto [reqs, resps] = pipelined(500);
  h.c2s(reqs, kT0);
  ASSERT_EQ(h.size(), 436u);
  h.s2c(resps, kT0 + kMs);
  ASSERT_EQ(h.size(), 500u);
  for (int i = 0; i < 436; ++i) {
    ASSERT_EQ(h.rec(i)["status"], "timeout") << i;
    ASSERT_EQ(h.rec(i)["request"]["path"], "/" + std::to_string(i));
  }
  for (int i = 436; i < 500; ++i) {
    json r = h.rec(i);
    ASSERT_EQ(r["status"], "ok") << i;
    ASSERT_EQ(r["request"]["path"], "/" + std::to_string(i));
    ASSERT_EQ(r["response"]["body_bytes"], std::to_string(i).size());  // its own response
    ASSERT_EQ(r["response"]["bytes"], 38 + std::to_string(i).size());
  }
  const DecodeCounters& c = h.counters();
  EXPECT_EQ(c.timeouts[static_cast<size_t>(TimeoutCause::kOverflow)], 436u);
  EXPECT_EQ(c.responses_of_evicted, 436u);
  EXPECT_EQ(c.responses[static_cast<size_t>(Protocol::kHttp)], 500u);
  EXPECT_EQ(c.sum(c.matched), 64u);
  EXPECT_EQ(c.unmatched, 0u);
  // the owed count is used up: the next exchange pairs normally
  h.c2s(kGet, kT0 + 2 * kMs);
  h.s2c(kOk, kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 501u);
  EXPECT_EQ(h.rec(500)["status"], "ok");
  h.expect_ledger();
}

TEST(Http, LineOverCarryCapIsCutAndCounted) {
  auto cfg = dectest::small_config();
  cfg.carry_bytes = 512;
  Harness h(cfg);
  h.open(80);
  std::string big(3000, 'a');
  h.c2s("GET /p HTTP/1.1\r\nX-Big: ", kT0);
  h.c2s(big, kT0);  // the line grows past the cap in the carry
  h.c2s(big + "\r\nHost: after\r\n\r\n", kT0);
  h.s2c(kOk, kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["request"]["host"], "after");
  EXPECT_EQ(flags_of(r), std::vector<std::string>{"truncated"});
  EXPECT_GE(h.counters().carry_overflow, 1u);
  EXPECT_EQ(h.builder().carry_buffers_in_use(), 0u);
  h.expect_ledger();
}

TEST(Http, RedactionCanBeDisabled) {
  for (bool redact : {true, false}) {
    auto cfg = dectest::small_config();
    cfg.redact_secrets = redact;
    Harness h(cfg);
    h.open(80);
    h.c2s("GET / HTTP/1.1\r\nAuthorization: Basic dTpw\r\nCookie: sid=1\r\n\r\n", kT0);
    h.s2c("HTTP/1.1 200 OK\r\nSet-Cookie: sid=2\r\nContent-Length: 0\r\n\r\n", kT0 + kMs);
    ASSERT_EQ(h.size(), 1u);
    json r = h.rec(0);
    EXPECT_EQ(r["request"]["authorization"], redact ? "<redacted>" : "Basic dTpw");
    EXPECT_EQ(r["request"]["cookie"], redact ? "<redacted>" : "sid=1");
    EXPECT_EQ(r["response"]["set_cookie"], redact ? "<redacted>" : "sid=2");
    EXPECT_EQ(h.lines()[0].find("dTpw") == std::string::npos, redact);
  }
}

TEST(Http, UpgradeStopsDecoding) {
  Harness h;
  h.open(80);
  h.c2s("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", kT0);
  h.s2c("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello", kT0 + kMs);
  h.c2s("\x81\x85garbage-frames", kT0 + 2 * kMs);
  h.close(kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["response"]["status_code"], 101);
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kHttp)], 0u);
  h.expect_ledger();
}

// A connection met mid-stream: the server's first bytes are the tail of a JSON body answering a request
// sent before the capture began, with no line end in them. The response that starts the next segment
// answers the first request seen (before, it was read as the rest of that "line" and lost, and every later
// response paired with the request before its own).
TEST(Http, MidStreamBodyTailDoesNotSwallowTheNextResponse) {
  Harness h;
  h.open(80);
  h.s2c(R"("name": "item-82", "tags": ["capture", "x"]}, {"name": "item-83"}])", kT0);
  h.c2s("GET /small.txt HTTP/1.1\r\nHost: a\r\n\r\n", kT0 + kMs);
  h.s2c("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmall", kT0 + 2 * kMs);
  h.c2s("GET /missing HTTP/1.1\r\nHost: a\r\n\r\n", kT0 + 3 * kMs);
  h.s2c("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", kT0 + 4 * kMs);
  h.close(kT0 + 5 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["request"]["path"], "/small.txt");
  EXPECT_EQ(h.rec(0)["response"]["status_code"], 200);
  EXPECT_EQ(h.rec(0)["latency_us"], 1000);
  EXPECT_EQ(h.rec(1)["request"]["path"], "/missing");
  EXPECT_EQ(h.rec(1)["response"]["status_code"], 404);
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kHttp)], 1u);  // the body tail
  EXPECT_EQ(h.counters().resyncs, 1u);
  h.expect_ledger();
}

TEST(Http, SniffOnUnknownPortAndSwappedOrientation) {
  Harness h;
  // Port 9999 is not mapped: the request line is sniffed.
  h.open(9999, false, kT0, 0);
  h.c2s(kGet, kT0, 0);
  h.s2c(kOk, kT0 + kMs, 0);
  // The flow's "client" (higher port) is really the server: requests come
  // from the lower port. The sniff of the first chunk orients the record.
  h.open(1000, false, kT0, 1, 50000);
  h.s2c(kGet, kT0, 1);
  h.c2s(kOk, kT0 + kMs, 1);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["server"]["port"], 9999);
  EXPECT_EQ(h.rec(1)["server"]["port"], 50000);
  EXPECT_EQ(h.rec(1)["client"]["port"], 1000);
  EXPECT_EQ(h.rec(1)["request"]["path"], "/a/b");
  EXPECT_EQ(h.counters().detect[static_cast<size_t>(DetectOutcome::kBySniff)], 2u);
  h.expect_ledger();
}

TEST(Http, GarbageOnHttpPortIsCountedNotRecorded) {
  Harness h;
  h.open(80);
  h.c2s(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 binary tls hello\r\n", 30), kT0);
  h.s2c("\x16\x03\x03\x00\x5d\x02\x00\x00\x59 more\n", kT0 + kMs);
  h.close(kT0 + 2 * kMs);
  EXPECT_EQ(h.size(), 0u);
  EXPECT_GE(h.counters().decode_errors[static_cast<size_t>(Protocol::kHttp)], 1u);
  h.expect_ledger();
}

}  // namespace
}  // namespace spanfeed
