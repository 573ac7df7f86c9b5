// Unit tests for the SMTP decoder (the template line protocol): crafted streams with exact field values.
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
constexpr size_t kSmtp = static_cast<size_t>(Protocol::kSmtp);
const std::string kGreeting = "220 mx.example.org ESMTP\r\n";

TEST(Smtp, GreetingAndMultiLineReplySplitAcrossSegments) {
  Harness h;
  h.open(25);
  h.s2c(kGreeting, kT0);
  h.c2s("ehlo client.example.net\r\n", kT0 + kMs);
  const std::string reply = "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n";
  h.dribble(kS2C, reply, 7, kT0 + 3 * kMs);  // 7-byte segments: lines and codes cut anywhere
  ASSERT_EQ(h.size(), 2u);
  const json g = h.rec(0);
  EXPECT_EQ(g["status"], "ok");
  EXPECT_EQ(g["request"], json::parse(R"({"bytes":0,"command":"CONNECT"})"));
  EXPECT_EQ(g["response"], json::parse(R"({"bytes":26,"code":220,"text":"mx.example.org ESMTP","lines":1})"));
  EXPECT_EQ(g["latency_us"], 0);
  const json e = h.rec(1);
  EXPECT_EQ(e["request"], json::parse(R"({"bytes":25,"command":"EHLO","argument":"client.example.net"})"));
  EXPECT_EQ(e["response"]["code"], 250);
  EXPECT_EQ(e["response"]["text"], "mx.example.org");
  EXPECT_EQ(e["response"]["lines"], 4);
  EXPECT_EQ(e["response"]["bytes"], reply.size());
  EXPECT_EQ(e["latency_us"], 2000);
  EXPECT_TRUE(flags_of(e).empty());
  h.expect_ledger();
}

TEST(Smtp, PipelinedEnvelopeAndDotStuffedBody) {
  Harness h;
  h.open(587);
  h.s2c(kGreeting, kT0);
  // RFC 2920: the envelope and DATA in one segment, their replies in one segment.
  h.c2s("MAIL FROM:<alice@example.net> SIZE=120\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\n",
        kT0 + kMs);
  h.s2c("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n554 5.7.1 <nobody@example.org>: Relay access denied\r\n354 End data\r\n",
        kT0 + 2 * kMs);
  // The body: a line with a single dot-stuffed "..", a ".x" line, the terminator cut across segments.
  const std::string body = "Subject: t\r\n\r\n..\r\n.x\r\nend\r\n";
  h.c2s(body + ".", kT0 + 3 * kMs);
  h.c2s("\r\n", kT0 + 4 * kMs);
  EXPECT_EQ(h.size(), 4u);  // CONNECT, MAIL, RCPT x2; DATA waits for its final reply
  h.s2c("250 2.0.0 Ok: queued as 4F\r\n", kT0 + 9 * kMs);
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h.rec(1)["request"]["argument"], "alice@example.net");
  EXPECT_EQ(h.rec(1)["request"]["bytes"], 40);
  EXPECT_EQ(h.rec(2)["request"]["argument"], "bob@example.org");
  EXPECT_EQ(h.rec(3)["status"], "error");
  EXPECT_EQ(h.rec(3)["response"]["code"], 554);
  EXPECT_EQ(h.rec(3)["response"]["text"], "5.7.1 <nobody@example.org>: Relay access denied");
  const json d = h.rec(4);
  EXPECT_EQ(d["status"], "ok");
  EXPECT_EQ(d["request"], json::parse(R"({"bytes":36,"command":"DATA","data_bytes":27})"));
  EXPECT_EQ(d["request"]["data_bytes"], body.size());        // as sent: ".." counts two bytes
  EXPECT_EQ(d["request"]["bytes"], 6 + body.size() + 3);     // "DATA\r\n" + body + ".\r\n"
  EXPECT_EQ(d["response"]["code"], 250);
  EXPECT_EQ(d["latency_us"], 8000);  // DATA command to the final reply: the body's transfer included
  EXPECT_EQ(h.counters().interim[kSmtp], 1u);  // the 354
  h.expect_ledger();
}

TEST(Smtp, DataRefusedBefore354AndAuthRedacted) {
  Harness h;
  h.open(25);
  h.s2c(kGreeting, kT0);
  h.c2s("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", kT0 + kMs);
  h.s2c("235 2.7.0 Authentication successful\r\n", kT0 + 2 * kMs);
  h.c2s("AUTH LOGIN\r\n", kT0 + 3 * kMs);
  h.s2c("334 VXNlcm5hbWU6\r\n", kT0 + 4 * kMs);
  h.c2s("YWxpY2U=\r\n", kT0 + 5 * kMs);
  h.s2c("334 UGFzc3dvcmQ6\r\n", kT0 + 6 * kMs);
  h.c2s("c2VjcmV0\r\n", kT0 + 7 * kMs);
  h.s2c("535 5.7.8 Authentication failed\r\n", kT0 + 8 * kMs);
  h.c2s("DATA\r\n", kT0 + 9 * kMs);
  h.s2c("554 5.5.1 Error: no valid recipients\r\n", kT0 + 10 * kMs);
  h.c2s("QUIT\r\n", kT0 + 11 * kMs);
  h.s2c("221 2.0.0 Bye\r\n", kT0 + 12 * kMs);
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h.rec(1)["request"], json::parse(R"({"bytes":33,"command":"AUTH","argument":"PLAIN <redacted>"})"));
  EXPECT_EQ(h.rec(1)["response"]["code"], 235);
  const json login = h.rec(2);
  EXPECT_EQ(login["request"], json::parse(R"({"bytes":32,"command":"AUTH","argument":"LOGIN"})"));  // 12 + 10 + 10
  EXPECT_EQ(login["status"], "error");
  EXPECT_EQ(login["response"]["code"], 535);
  EXPECT_EQ(login["latency_us"], 5000);
  const json data = h.rec(3);
  EXPECT_EQ(data["request"], json::parse(R"({"bytes":6,"command":"DATA"})"));  // no body was sent
  EXPECT_EQ(data["response"]["code"], 554);
  EXPECT_EQ(data["status"], "error");
  EXPECT_EQ(h.rec(4)["response"]["code"], 221);
  EXPECT_EQ(h.counters().interim[kSmtp], 2u);  // the two 334 challenges
  for (const std::string& l : h.lines()) {
    EXPECT_EQ(l.find("AGFsaWNl"), std::string::npos) << l;
    EXPECT_EQ(l.find("c2VjcmV0"), std::string::npos) << l;
  }
  h.expect_ledger();
}

TEST(Smtp, GapInsideTheBodyIsAbsorbedGapInRepliesFlushes) {
  Harness h;
  h.open(25);
  h.s2c(kGreeting, kT0);
  h.c2s("DATA\r\n", kT0 + kMs);
  h.s2c("354 go\r\n", kT0 + 2 * kMs);
  h.c2s("line one\r\n", kT0 + 3 * kMs);
  h.gap(kC2S, 500, kT0 + 4 * kMs);
  h.c2s("line two\r\n.\r\n", kT0 + 5 * kMs);
  h.s2c("250 ok\r\n", kT0 + 6 * kMs);
  ASSERT_EQ(h.size(), 2u);
  const json d = h.rec(1);
  EXPECT_EQ(d["request"]["data_bytes"], 10 + 500 + 10);
  EXPECT_EQ(d["request"]["bytes"], 6 + 10 + 500 + 13);
  EXPECT_EQ(flags_of(d), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.counters().gaps_absorbed, 1u);
  // Replies lost: the queued commands time out (flag gap); the next command pairs again.
  h.c2s("RSET\r\nNOOP\r\n", kT0 + 7 * kMs);
  h.s2c("250-ok\r\n250 mo", kT0 + 8 * kMs);
  h.gap(kS2C, 100, kT0 + 9 * kMs);
  h.c2s("QUIT\r\n", kT0 + 10 * kMs);
  h.s2c("221 bye\r\n", kT0 + 11 * kMs);
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h.rec(2)["request"]["command"], "RSET");
  EXPECT_EQ(h.rec(2)["status"], "ok");  // its reply was cut by the hole: kept, flagged
  EXPECT_EQ(h.rec(2)["response"]["code"], 250);
  EXPECT_EQ(h.rec(2)["response"]["lines"], 1);
  EXPECT_EQ(flags_of(h.rec(2)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(3)["request"]["command"], "NOOP");
  EXPECT_EQ(h.rec(3)["status"], "timeout");
  EXPECT_EQ(flags_of(h.rec(3)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(4)["request"]["command"], "QUIT");
  EXPECT_EQ(h.rec(4)["status"], "ok");
  EXPECT_EQ(h.counters().timeouts[static_cast<size_t>(TimeoutCause::kGap)], 1u);
  h.expect_ledger();
}

TEST(Smtp, CloseMidReplyAndMidBody) {
  Harness h;
  h.open(25);
  h.s2c(kGreeting, kT0);
  h.c2s("EHLO c\r\n", kT0 + kMs);
  h.s2c("250-mx\r\n250-PIPELINING\r\n", kT0 + 2 * kMs);
  h.close(kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(1)["status"], "ok");
  EXPECT_EQ(h.rec(1)["response"]["lines"], 2);
  EXPECT_EQ(flags_of(h.rec(1)), std::vector<std::string>{"truncated"});

  h.open(25, false, kT0, 1);
  h.c2s("DATA\r\n", kT0, 1);  // picked up after the greeting
  h.s2c("354 go\r\n", kT0 + kMs, 1);
  h.c2s("half a body", kT0 + 2 * kMs, 1);
  h.close(kT0 + 3 * kMs, 1);
  ASSERT_EQ(h.size(), 3u);
  const json d = h.rec(2);
  EXPECT_EQ(d["status"], "timeout");
  EXPECT_EQ(d["request"], json::parse(R"({"bytes":17,"command":"DATA","data_bytes":11})"));
  EXPECT_EQ(flags_of(d), std::vector<std::string>{"truncated"});
  EXPECT_EQ(h.counters().timeouts[static_cast<size_t>(TimeoutCause::kClose)], 1u);

  h.open(25, false, kT0, 2);
  h.s2c(kGreeting, kT0, 2);
  h.c2s("EHLO cut-by-the-cl", kT0 + kMs, 2);  // a command line without its end: no record can be made
  h.close(kT0 + 2 * kMs, 2);
  ASSERT_EQ(h.size(), 4u);  // the greeting's
  EXPECT_EQ(h.counters().partial_at_close, 1u);
  h.expect_ledger();
}

TEST(Smtp, StartTlsAcceptedStopsDecoding) {
  Harness h;
  h.open(587);
  h.s2c(kGreeting, kT0);
  h.c2s("STARTTLS\r\n", kT0 + kMs);
  h.s2c("220 2.0.0 Ready to start TLS\r\n", kT0 + 2 * kMs);
  const std::string hello("\x16\x03\x01\x00\x05hello", 10);
  const std::string server_hello = "\x16\x03\x03 whatever\r\n";
  h.c2s(hello, kT0 + 3 * kMs);
  h.s2c(server_hello, kT0 + 4 * kMs);
  h.close(kT0 + 5 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(1)["request"]["command"], "STARTTLS");
  EXPECT_EQ(h.rec(1)["response"]["code"], 220);
  EXPECT_EQ(h.counters().encrypted_flows, 1u);
  EXPECT_EQ(h.counters().undecoded_bytes, hello.size() + server_hello.size());
  EXPECT_EQ(h.counters().decode_errors[kSmtp], 0u);
  h.expect_ledger();
}

TEST(Smtp, BdatChunksAndGarbageResync) {
  Harness h;
  h.open(25);
  h.s2c(kGreeting, kT0);
  h.c2s("BDAT 5\r\nab\r\ncBDAT 0 LAST\r\n", kT0 + kMs);  // the chunk holds a CRLF: skipped by count
  h.s2c("250 5 octets\r\n250 queued\r\n", kT0 + 2 * kMs);
  // An unknown verb is still a request: the server answers every line.
  h.c2s("XYZZY plugh\r\n", kT0 + 3 * kMs);
  h.s2c("502 5.5.2 Error: command not recognized\r\n", kT0 + 4 * kMs);
  // Not a verb: counted once, skipped (with the unknown-verb line after it) until a known command.
  h.c2s("\x01\x02 junk\r\nmore junk!\r\nNOOP\r\n", kT0 + 5 * kMs);
  h.s2c("250 ok\r\n", kT0 + 6 * kMs);
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h.rec(1)["request"], json::parse(R"({"bytes":13,"command":"BDAT","argument":"5","data_bytes":5})"));
  EXPECT_EQ(h.rec(2)["request"], json::parse(R"({"bytes":13,"command":"BDAT","argument":"0 LAST","data_bytes":0})"));
  EXPECT_EQ(h.rec(3)["request"], json::parse(R"({"bytes":13,"command":"XYZZY","argument":"plugh"})"));
  EXPECT_EQ(h.rec(3)["status"], "error");
  EXPECT_EQ(h.rec(3)["response"]["code"], 502);
  EXPECT_EQ(h.rec(4)["request"]["command"], "NOOP");
  EXPECT_EQ(h.rec(4)["response"]["code"], 250);
  EXPECT_EQ(h.counters().decode_errors[kSmtp], 1u);
  EXPECT_EQ(h.counters().resyncs, 1u);
  EXPECT_EQ(h.counters().resync_skipped_bytes, 9u + 12u);
  h.expect_ledger();
}

TEST(Smtp, DetectedOnAnUnmappedPortByItsGreeting) {
  Harness h;
  h.open(2525);
  h.s2c(kGreeting, kT0);
  h.c2s("HELO me\r\n", kT0 + kMs);
  h.s2c("250 mx\r\n", kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["protocol"], "smtp");
  EXPECT_EQ(h.rec(0)["server"]["port"], 2525);
  EXPECT_EQ(h.rec(1)["request"]["argument"], "me");
  EXPECT_EQ(h.counters().detected_by_payload[kSmtp], 1u);
  h.open(2121, false, kT0, 1);  // an FTP greeting is no SMTP greeting
  h.s2c("220 (vsFTPd 3.0.3)\r\n", kT0, 1);
  h.close(kT0 + kMs, 1);
  EXPECT_EQ(h.counters().detect[static_cast<size_t>(DetectOutcome::kUnknown)], 1u);
  h.expect_ledger();
}

}  // namespace
}  // namespace spanfeed
