// AMQP 0-9-1 decoder tests: crafted frames through the RecordBuilder (handshake, frames split across segments
// and several in one, a channel error, publisher confirms, deliveries, credentials), fuzz replay.
// Runs in the test thread; allocates freely (tests only).
#include <gtest/gtest.h>

#include <string>

#include "db_test_util.h"
#include "decode_test_util.h"

int spanfeed_fuzz_amqp(const uint8_t* data, size_t size);

namespace spanfeed {
namespace {

using dectest::Harness;
using dectest::kMs;
using dectest::kT0;
using nlohmann::json;

constexpr uint16_t kPort = 5672;
const std::string kHeader("AMQP\0\0\x09\x01", 8);

std::string be16s(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }
std::string be32s(uint32_t v) { return be16s(static_cast<uint16_t>(v >> 16)) + be16s(static_cast<uint16_t>(v)); }
std::string be64s(uint64_t v) { return be32s(static_cast<uint32_t>(v >> 32)) + be32s(static_cast<uint32_t>(v)); }
std::string sstr(const std::string& s) { return std::string(1, static_cast<char>(s.size())) + s; }
std::string lstr(const std::string& s) { return be32s(static_cast<uint32_t>(s.size())) + s; }

std::string frame(uint8_t type, uint16_t ch, const std::string& payload) {
  return std::string(1, static_cast<char>(type)) + be16s(ch) + be32s(static_cast<uint32_t>(payload.size())) + payload +
         '\xCE';
}
std::string method(uint16_t ch, uint16_t cls, uint16_t m, const std::string& args = {}) {
  return frame(1, ch, be16s(cls) + be16s(m) + args);
}
std::string content(uint16_t ch, const std::string& body, size_t frame_max = 131072) {
  std::string s = frame(2, ch, be16s(60) + be16s(0) + be64s(body.size()) + be16s(0));
  for (size_t i = 0; i < body.size(); i += frame_max) s += frame(3, ch, body.substr(i, frame_max));
  return s;
}
std::string close_args(uint16_t code, const std::string& text, uint16_t cls, uint16_t m) {
  return be16s(code) + sstr(text) + be16s(cls) + be16s(m);
}

// The opening: protocol header, start/start-ok (PLAIN), tune/tune-ok, open/open-ok, channel 1 open.
struct Opening {
  std::string client, server;
};
Opening opening() {
  Opening o;
  o.client = kHeader;
  o.server = method(0, 10, 10, std::string("\x00\x09", 2) + lstr("") + lstr("PLAIN AMQPLAIN") + lstr("en_US"));
  o.client += method(0, 10, 11, lstr("") + sstr("PLAIN") + lstr(std::string("\0guest\0s3cret-pw", 16)) + sstr("en_US"));
  o.server += method(0, 10, 30, be16s(2047) + be32s(131072) + be16s(60));
  o.client += method(0, 10, 31, be16s(2047) + be32s(131072) + be16s(60));
  o.client += method(0, 10, 40, sstr("/") + sstr("") + '\0');
  o.server += method(0, 10, 41, sstr(""));
  o.client += method(1, 20, 10, sstr(""));
  o.server += method(1, 20, 11, lstr(""));
  return o;
}

// Client and server steps interleaved, as a capture shows them: each client step answered by its server step.
void handshake(Harness& h, uint64_t& t) {
  h.c2s(kHeader, t += kMs);
  h.s2c(method(0, 10, 10, std::string("\x00\x09", 2) + lstr("") + lstr("PLAIN AMQPLAIN") + lstr("en_US")), t += kMs);
  h.c2s(method(0, 10, 11, lstr("") + sstr("PLAIN") + lstr(std::string("\0guest\0s3cret-pw", 16)) + sstr("en_US")),
        t += kMs);
  h.s2c(method(0, 10, 30, be16s(2047) + be32s(131072) + be16s(60)), t += kMs);
  h.c2s(method(0, 10, 31, be16s(2047) + be32s(131072) + be16s(60)) + method(0, 10, 40, sstr("/") + sstr("") + '\0'),
        t += kMs);
  h.s2c(method(0, 10, 41, sstr("")), t += kMs);
  h.c2s(method(1, 20, 10, sstr("")), t += kMs);
  h.s2c(method(1, 20, 11, lstr("")), t += kMs);
}

TEST(Amqp, HandshakeRecordsAndNoPassword) {
  Harness h;
  h.open(kPort);
  uint64_t t = kT0;
  handshake(h, t);
  // protocol-header/start, start-ok/tune, open/open-ok, channel.open/open-ok (tune-ok makes no record).
  ASSERT_EQ(h.size(), 4u);
  json r0 = h.rec(0), r1 = h.rec(1), r2 = h.rec(2), r3 = h.rec(3);
  EXPECT_EQ(r0["protocol"], "amqp");
  EXPECT_EQ(r0["request"]["method"], "protocol-header");
  EXPECT_EQ(r0["request"]["version"], "0-9-1");
  EXPECT_EQ(r0["response"]["method"], "connection.start");
  EXPECT_EQ(r0["response"]["version_minor"], 9);
  EXPECT_EQ(r0["response"]["mechanisms"], "PLAIN AMQPLAIN");
  EXPECT_EQ(r1["request"]["method"], "connection.start-ok");
  EXPECT_EQ(r1["request"]["mechanism"], "PLAIN");
  EXPECT_EQ(r1["request"]["user"], "guest");
  EXPECT_EQ(r1["response"]["method"], "connection.tune");
  EXPECT_EQ(r1["response"]["frame_max"], 131072);
  EXPECT_EQ(r1["response"]["heartbeat"], 60);
  EXPECT_EQ(r2["request"]["vhost"], "/");
  EXPECT_EQ(r2["response"]["method"], "connection.open-ok");
  EXPECT_EQ(r3["request"]["method"], "channel.open");
  EXPECT_EQ(r3["request"]["channel"], 1);
  for (const std::string& l : h.lines()) EXPECT_EQ(l.find("s3cret"), std::string::npos) << l;
  h.close(t + kMs);
  h.expect_ledger();
}

// The same conversation in one segment per side, and dribbled 3 bytes at a time: the same records.
TEST(Amqp, FramesSplitAcrossSegmentsAndSeveralPerSegment) {
  const Opening o = opening();
  const std::string c = o.client + method(1, 50, 10, be16s(0) + sstr("jobs") + '\x02' + lstr("")) +
                        method(1, 60, 40, be16s(0) + sstr("") + sstr("jobs") + '\0') + content(1, std::string(300, 'x'));
  const std::string s = o.server + method(1, 50, 11, sstr("jobs") + be32s(7) + be32s(0));
  std::vector<std::string> runs[2];
  for (size_t step : {size_t{100000}, size_t{3}}) {
    Harness h;
    h.open(kPort);
    // Server bytes are only answers: feed the client first (its last publish expects nothing).
    h.dribble(Direction::kClientToServer, c, step, kT0 + kMs);
    h.dribble(Direction::kServerToClient, s, step, kT0 + 2 * kMs);
    h.close(kT0 + 3 * kMs);
    h.expect_ledger();
    ASSERT_EQ(h.size(), 6u) << "step " << step;
    for (size_t i = 0; i < h.size(); ++i) {
      json r = h.rec(i);
      r.erase("id");
      r.erase("ts");
      runs[step == 3].push_back(r.dump());
    }
    // The publish (no confirms): a record of its own, routing key and body size from its content header.
    json p = h.rec(0);  // emitted as soon as its body passed: before the server spoke
    EXPECT_EQ(p["request"]["method"], "basic.publish");
    EXPECT_EQ(p["request"]["routing_key"], "jobs");
    EXPECT_EQ(p["request"]["body_bytes"], 300);
    EXPECT_EQ(p["status"], "ok");
    EXPECT_TRUE(p["response"].is_null());
    EXPECT_EQ(h.counters().sum(h.counters().decode_errors), 0u);
  }
  EXPECT_EQ(runs[0], runs[1]);
}

// queue.declare passive of a missing queue: the server refuses with channel.close 404; the client's close-ok
// is no record; a publish to a missing exchange (nothing pending) gets a 0-byte request named after it.
TEST(Amqp, ChannelErrorIsAnErrorRecord) {
  Harness h;
  h.open(kPort);
  uint64_t t = kT0;
  handshake(h, t);
  h.c2s(method(1, 50, 10, be16s(0) + sstr("nope") + '\x01' + lstr("")), t += kMs);
  h.s2c(method(1, 20, 40, close_args(404, "NOT_FOUND - no queue 'nope' in vhost '/'", 50, 10)), t += kMs);
  h.c2s(method(1, 20, 41), t += kMs);
  ASSERT_EQ(h.size(), 5u);
  json r = h.rec(4);
  EXPECT_EQ(r["status"], "error");
  EXPECT_EQ(r["request"]["method"], "queue.declare");
  EXPECT_EQ(r["request"]["queue"], "nope");
  EXPECT_EQ(r["request"]["passive"], true);
  EXPECT_EQ(r["response"]["method"], "channel.close");
  EXPECT_EQ(r["response"]["reply_code"], 404);
  EXPECT_EQ(r["response"]["reply_text"], "NOT_FOUND - no queue 'nope' in vhost '/'");
  EXPECT_EQ(r["response"]["failed_method"], "queue.declare");
  // Channel 2: publish to a missing exchange, refused asynchronously.
  h.c2s(method(2, 20, 10, sstr("")), t += kMs);
  h.s2c(method(2, 20, 11, lstr("")), t += kMs);
  h.c2s(method(2, 60, 40, be16s(0) + sstr("missing-ex") + sstr("k") + '\0') + content(2, "hi"), t += kMs);
  h.s2c(method(2, 20, 40, close_args(404, "NOT_FOUND - no exchange 'missing-ex'", 60, 40)), t += kMs);
  ASSERT_EQ(h.size(), 8u);
  EXPECT_EQ(h.rec(6)["request"]["method"], "basic.publish");
  EXPECT_EQ(h.rec(6)["request"]["exchange"], "missing-ex");
  r = h.rec(7);
  EXPECT_EQ(r["status"], "error");
  EXPECT_EQ(r["request"]["method"], "basic.publish");
  EXPECT_EQ(r["request"]["channel"], 2);
  EXPECT_EQ(r["response"]["reply_code"], 404);
  // A client close with 200 is an ok record.
  h.c2s(method(0, 10, 50, close_args(200, "bye", 0, 0)), t += kMs);
  h.s2c(method(0, 10, 51), t += kMs);
  ASSERT_EQ(h.size(), 9u);
  EXPECT_EQ(h.rec(8)["status"], "ok");
  EXPECT_EQ(h.rec(8)["request"]["reply_code"], 200);
  h.close(t + kMs);
  h.expect_ledger();
  EXPECT_EQ(h.counters().unmatched, 0u);
}

// A connection through the handshake with channel 1 in confirm mode (confirm.select, select-ok).
void open_in_confirm_mode(Harness& h, uint64_t& t) {
  h.open(kPort);
  handshake(h, t);
  h.c2s(method(1, 85, 10, std::string(1, '\0')), t += kMs);
  h.s2c(method(1, 85, 11), t += kMs);
}

// Publisher confirms: each publish waits for the server's ack; a multiple ack confirms all up to its tag.
TEST(Amqp, PublisherConfirms) {
  Harness h;
  uint64_t t = kT0;
  open_in_confirm_mode(h, t);
  std::string pubs;
  for (int i = 0; i < 3; ++i) pubs += method(1, 60, 40, be16s(0) + sstr("ex") + sstr("k" + std::to_string(i)) + '\0') +
                                      content(1, std::string(10 + i, 'b'));
  h.c2s(pubs, t += kMs);
  EXPECT_EQ(h.size(), 5u);  // the publishes wait
  h.s2c(method(1, 60, 80, be64s(2) + '\x01'), t += kMs);  // multiple: 1 and 2
  h.s2c(method(1, 60, 120, be64s(3) + '\0'), t += kMs);   // nack 3
  ASSERT_EQ(h.size(), 8u);
  for (int i = 0; i < 3; ++i) {
    json r = h.rec(5 + i);
    EXPECT_EQ(r["request"]["routing_key"], "k" + std::to_string(i));
    EXPECT_EQ(r["request"]["body_bytes"], 10 + i);
    EXPECT_EQ(r["response"]["delivery_tag"], i + 1);
    EXPECT_EQ(r["status"], i < 2 ? "ok" : "error");
    EXPECT_EQ(r["response"]["method"], i < 2 ? "basic.ack" : "basic.nack");
  }
  h.close(t + kMs);
  h.expect_ledger();
  EXPECT_EQ(h.counters().unmatched, 0u);
}

// Hostile acks in confirm mode: a delivery tag of 2^64-1 (alone and `multiple`) ends; the publish
// it cannot match stays pending and ends as a timeout record at close. (Before the fix: a hang.)
TEST(Amqp, ConfirmOfTheLargestTagEnds) {
  Harness h;
  uint64_t t = kT0;
  open_in_confirm_mode(h, t);
  h.c2s(method(1, 60, 40, be16s(0) + sstr("ex") + sstr("k") + '\0') + content(1, "body"), t += kMs);
  ASSERT_EQ(h.size(), 5u);  // the publish waits
  h.s2c(method(1, 60, 80, be64s(UINT64_MAX) + '\0'), t += kMs);
  h.s2c(method(1, 60, 80, be64s(UINT64_MAX) + '\x01'), t += kMs);
  h.close(t + kMs);
  ASSERT_EQ(h.size(), 8u);
  for (int i = 5; i < 7; ++i) {
    EXPECT_EQ(h.rec(i)["status"], "unmatched");
    EXPECT_EQ(h.rec(i)["response"]["delivery_tag"].get<uint64_t>(), UINT64_MAX);
  }
  EXPECT_EQ(h.rec(6)["response"]["multiple"], true);
  EXPECT_EQ(h.rec(7)["status"], "timeout");
  EXPECT_EQ(h.rec(7)["request"]["method"], "basic.publish");
  h.expect_ledger();
}

// Deliveries are server pushes (records without reply), their body counted across body frames;
// consumer acks are records of their own.
TEST(Amqp, DeliveriesAndConsumerAcks) {
  Harness h;
  h.open(kPort);
  uint64_t t = kT0;
  handshake(h, t);
  h.c2s(method(1, 60, 20, be16s(0) + sstr("jobs") + sstr("") + '\0' + lstr("")), t += kMs);
  h.s2c(method(1, 60, 21, sstr("ctag-1")), t += kMs);
  const std::string body(5000, 'd');
  const std::string d = method(1, 60, 60, sstr("ctag-1") + be64s(1) + '\0' + sstr("") + sstr("jobs")) +
                        content(1, body, 2048);  // three body frames
  h.dribble(Direction::kServerToClient, d, 700, t += kMs);
  ASSERT_EQ(h.size(), 6u);
  json r = h.rec(5);
  EXPECT_EQ(r["request"]["method"], "basic.deliver");
  EXPECT_EQ(r["request"]["consumer_tag"], "ctag-1");
  EXPECT_EQ(r["request"]["delivery_tag"], 1);
  EXPECT_EQ(r["request"]["routing_key"], "jobs");
  EXPECT_EQ(r["request"]["body_bytes"], 5000);
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["request"]["bytes"].get<uint64_t>(), d.size());
  h.c2s(method(1, 60, 80, be64s(1) + '\0'), t += kMs);
  ASSERT_EQ(h.size(), 7u);
  EXPECT_EQ(h.rec(6)["request"]["method"], "basic.ack");
  EXPECT_EQ(h.rec(6)["request"]["delivery_tag"], 1);
  // basic.get answered by get-ok with content, and by get-empty.
  h.c2s(method(1, 60, 70, be16s(0) + sstr("jobs") + '\0'), t += kMs);
  h.s2c(method(1, 60, 71, be64s(2) + '\0' + sstr("") + sstr("jobs") + be32s(4)) + content(1, "abc"), t += kMs);
  h.c2s(method(1, 60, 70, be16s(0) + sstr("jobs") + '\0'), t += kMs);
  h.s2c(method(1, 60, 72, sstr("")), t += kMs);
  ASSERT_EQ(h.size(), 9u);
  EXPECT_EQ(h.rec(7)["response"]["method"], "basic.get-ok");
  EXPECT_EQ(h.rec(7)["response"]["body_bytes"], 3);
  EXPECT_EQ(h.rec(7)["response"]["message_count"], 4);
  EXPECT_EQ(h.rec(8)["response"]["method"], "basic.get-empty");
  h.close(t + kMs);
  h.expect_ledger();
}

// Frames of another channel between a delivery's method and its body: the delivery goes on (AMQP 4.2.6).
TEST(Amqp, OtherChannelsFramesInterleaveWithContent) {
  Harness h;
  h.open(kPort);
  uint64_t t = kT0;
  handshake(h, t);
  h.c2s(method(2, 20, 10, sstr("")), t += kMs);
  h.s2c(method(2, 20, 11, lstr("")), t += kMs);
  h.c2s(method(2, 50, 10, be16s(0) + sstr("q") + '\0' + lstr("")), t += kMs);
  const std::string d = method(1, 60, 60, sstr("c") + be64s(7) + '\0' + sstr("") + sstr("q")) + content(1, "0123456789");
  const size_t body_at = d.size() - (7 + 10 + 1);
  h.s2c(d.substr(0, body_at) + method(2, 50, 11, sstr("q") + be32s(0) + be32s(0)) + d.substr(body_at), t += kMs);
  ASSERT_EQ(h.size(), 7u);
  EXPECT_EQ(h.rec(5)["response"]["method"], "queue.declare-ok");
  EXPECT_EQ(h.rec(6)["request"]["method"], "basic.deliver");
  EXPECT_EQ(h.rec(6)["request"]["body_bytes"], 10);
  EXPECT_EQ(h.rec(6)["flags"], json::array());
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kAmqp)], 0u);
  h.close(t + kMs);
  h.expect_ledger();
}

// Bytes that are no frame: counted, never a crash; a later frame-aligned chunk resynchronises.
TEST(Amqp, GarbageIsCountedAndResynced) {
  Harness h;
  h.open(kPort);
  uint64_t t = kT0;
  handshake(h, t);
  h.c2s(std::string("\x07\x00\x01\xff\xff\xff\xffGARBAGE", 14), t += kMs);
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kAmqp)], 1u);
  h.c2s(method(1, 50, 10, be16s(0) + sstr("q2") + '\0' + lstr("")), t += kMs);
  h.s2c(method(1, 50, 11, sstr("q2") + be32s(0) + be32s(0)), t += kMs);
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h.rec(4)["request"]["queue"], "q2");
  EXPECT_EQ(h.counters().resyncs, 1u);
  h.close(t + kMs);
  h.expect_ledger();
}

// A reply lost to a server-side gap: the next reply names its method, so the request whose reply was lost
// becomes a timeout flagged gap and each later request keeps its own reply. (Replies on a channel used to pair
// in order: after a lost channel.open-ok every later request of the channel took the next one's reply,
// unflagged, seen with 3% loss on the corpus capture.)
TEST(Amqp, LostReplyDoesNotShiftTheChannelsLaterReplies) {
  Harness h;
  h.open(kPort);
  uint64_t t = kT0;
  handshake(h, t);
  h.c2s(method(1, 50, 30, be16s(0) + sstr("orders") + '\0'), t += kMs);  // queue.purge
  h.gap(Direction::kServerToClient, 16, t += kMs);                          // its purge-ok is lost
  h.c2s(method(1, 50, 40, be16s(0) + sstr("old") + '\0'), t += kMs);      // queue.delete
  h.s2c(method(1, 50, 41, be32s(0)), t += kMs);                             // delete-ok
  h.c2s(method(1, 40, 20, be16s(0) + sstr("ex") + '\0'), t += kMs);       // exchange.delete
  h.s2c(method(1, 40, 21), t += kMs);                                       // delete-ok
  ASSERT_EQ(h.size(), 7u);
  EXPECT_EQ(h.rec(4)["request"]["method"], "queue.purge");
  EXPECT_EQ(h.rec(4)["status"], "timeout");
  EXPECT_EQ(h.rec(4)["flags"], json::array({"gap"}));
  EXPECT_EQ(h.rec(5)["request"]["method"], "queue.delete");
  EXPECT_EQ(h.rec(5)["response"]["method"], "queue.delete-ok");
  EXPECT_EQ(h.rec(5)["flags"], json::array());
  EXPECT_EQ(h.rec(6)["request"]["method"], "exchange.delete");
  EXPECT_EQ(h.rec(6)["response"]["method"], "exchange.delete-ok");
  EXPECT_EQ(h.counters().timeouts[static_cast<size_t>(TimeoutCause::kGap)], 1u);
  h.close(t + kMs);
  h.expect_ledger();
}

// A capture cut short (snaplen) lost the server's connection.start and the client's start-ok. The tune that
// answers start-ok had paired with the protocol header, unflagged; a reply no pending request on its
// channel can take (tune answers start-ok or secure-ok) answers a lost one: unmatched, and the header times
// out flagged gap once a later reply shows its own was lost.
TEST(Amqp, ReplyToALostRequestIsUnmatchedNotPairedWithAnother) {
  Harness h;
  h.open(kPort);
  uint64_t t = kT0;
  h.c2s(kHeader, t += kMs);
  h.gap(Direction::kServerToClient, 200, t += kMs);  // connection.start
  h.gap(Direction::kClientToServer, 60, t += kMs);   // connection.start-ok
  h.s2c(method(0, 10, 30, be16s(2047) + be32s(131072) + be16s(60)), t += kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["status"], "unmatched");
  EXPECT_EQ(h.rec(0)["response"]["method"], "connection.tune");
  h.c2s(method(0, 10, 31, be16s(2047) + be32s(131072) + be16s(60)) + method(0, 10, 40, sstr("/") + sstr("") + '\0'),
        t += kMs);
  h.s2c(method(0, 10, 41, sstr("")), t += kMs);
  ASSERT_EQ(h.size(), 3u);  // open-ok shows the header's start was lost: it times out, flagged gap
  EXPECT_EQ(h.rec(1)["request"]["method"], "protocol-header");
  EXPECT_EQ(h.rec(1)["status"], "timeout");
  EXPECT_EQ(h.rec(1)["flags"], json::array({"gap"}));
  EXPECT_EQ(h.rec(2)["request"]["method"], "connection.open");
  EXPECT_EQ(h.rec(2)["response"]["method"], "connection.open-ok");
  EXPECT_EQ(h.counters().unmatched, 1u);
  h.close(t + kMs);
  h.expect_ledger();
}

// The server side lost bytes while two basic.gets waited on a channel: one get-empty after it may answer
// either (the first's reply may have been in the hole). It pairs with the first, as before, now flagged gap.
// A server close then pairs with the oldest request waiting on its channel, also flagged: the request it
// refuses may be a later one.
TEST(Amqp, ReplyThatMayAnswerEitherOfTwoRequestsAfterAGapIsFlagged) {
  Harness h;
  h.open(kPort);
  uint64_t t = kT0;
  handshake(h, t);
  const std::string get = method(1, 60, 70, be16s(0) + sstr("q") + '\x01');
  h.c2s(get, t += kMs);
  h.c2s(get, t += kMs);
  h.gap(Direction::kServerToClient, 13, t += kMs);  // a get-empty, or not
  h.s2c(method(1, 60, 72, sstr("")), t += kMs);
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h.rec(4)["request"]["method"], "basic.get");
  EXPECT_EQ(h.rec(4)["response"]["method"], "basic.get-empty");
  EXPECT_EQ(h.rec(4)["flags"], json::array({"gap"}));
  h.s2c(method(1, 20, 40, close_args(404, "NOT_FOUND - no queue 'q'", 60, 70)), t += kMs);
  ASSERT_EQ(h.size(), 6u);
  EXPECT_EQ(h.rec(5)["response"]["method"], "channel.close");
  EXPECT_EQ(h.rec(5)["status"], "error");
  EXPECT_EQ(h.rec(5)["flags"], json::array({"gap"}));
  // without a gap the same exchange makes clean records
  h.c2s(method(2, 20, 10, sstr("")), t += kMs);
  h.s2c(method(2, 20, 11, lstr("")), t += kMs);
  h.c2s(method(2, 60, 70, be16s(0) + sstr("q") + '\x01'), t += kMs);
  h.c2s(method(2, 60, 70, be16s(0) + sstr("q") + '\x01'), t += kMs);
  h.s2c(method(2, 60, 72, sstr("")) + method(2, 60, 72, sstr("")), t += kMs);
  ASSERT_EQ(h.size(), 9u);
  for (size_t i = 6; i < 9; ++i) EXPECT_EQ(h.rec(i)["flags"], json::array()) << i;
  h.close(t + kMs);
  h.expect_ledger();
}

// After a gap the server side looks for a frame start again. A chunk of message content that begins with a
// 0x01 byte and a size under 16 MiB was taken for a method frame of that size: every reply after it was
// skipped as its payload and every later request timed out, unflagged. A method frame must now name a known
// method and stay under 128 KiB; a request made while the replies cannot be read times out flagged gap.
TEST(Amqp, ContentBytesAfterAGapAreNoFrameStart) {
  Harness h;
  h.open(kPort);
  uint64_t t = kT0;
  handshake(h, t);
  h.gap(Direction::kServerToClient, 1448, t += kMs);
  // Content of a delivery whose frame header was lost: 01, channel 0x4e20, "size" 0x004f0000 (5 MiB).
  h.s2c(std::string("\x01\x4e\x20\x00\x4f\x00\x00\x33\x44", 9) + std::string(200, 'x'), t += kMs);
  h.c2s(method(1, 60, 10, be32s(0) + be16s(10) + '\0'), t += kMs);  // basic.qos
  h.s2c(std::string(100, 'y'), t += kMs);                              // more content: still no frame
  h.c2s(method(1, 20, 40, close_args(200, "bye", 0, 0)), t += kMs);   // channel.close
  h.s2c(method(1, 20, 41), t += kMs);                                  // close-ok: in sync again
  ASSERT_EQ(h.size(), 6u);
  EXPECT_EQ(h.rec(4)["request"]["method"], "basic.qos");
  EXPECT_EQ(h.rec(4)["status"], "timeout");
  EXPECT_EQ(h.rec(4)["flags"], json::array({"gap"}));
  EXPECT_EQ(h.rec(5)["request"]["method"], "channel.close");
  EXPECT_EQ(h.rec(5)["response"]["method"], "channel.close-ok");
  EXPECT_EQ(h.rec(5)["status"], "ok");
  EXPECT_EQ(h.counters().resyncs, 1u);
  h.close(t + kMs);
  h.expect_ledger();
}

// Requests whose replies may be among bytes the capture lost: pending when the server side lost bytes, or
// made before a reply could be read again, their timeouts are flagged gap. A request made after the server
// side was read again times out unflagged.
TEST(Amqp, TimeoutsWhoseRepliesMayBeInAGapAreFlagged) {
  Harness h;
  h.open(kPort);
  uint64_t t = kT0;
  handshake(h, t);
  h.c2s(method(1, 60, 10, be32s(0) + be16s(10) + '\0'), t += kMs);  // basic.qos: pending at the gap
  h.gap(Direction::kServerToClient, 100, t += kMs);
  h.c2s(method(1, 50, 10, be16s(0) + sstr("q") + '\0' + lstr("")), t += kMs);  // queue.declare: replies unread
  h.s2c(method(1, 60, 30, sstr("ctag") + '\0'), t += kMs);                     // the server cancels a consumer
  h.c2s(method(1, 40, 20, be16s(0) + sstr("ex") + '\0'), t += kMs);             // exchange.delete: after it
  h.close(t + kMs);
  ASSERT_EQ(h.size(), 8u);
  EXPECT_EQ(h.rec(4)["request"]["method"], "basic.cancel");  // a server push: its own record
  EXPECT_EQ(h.rec(5)["request"]["method"], "basic.qos");
  EXPECT_EQ(h.rec(5)["status"], "timeout");
  EXPECT_EQ(h.rec(5)["flags"], json::array({"gap"}));
  EXPECT_EQ(h.rec(6)["request"]["method"], "queue.declare");
  EXPECT_EQ(h.rec(6)["status"], "timeout");
  EXPECT_EQ(h.rec(6)["flags"], json::array({"gap"}));
  EXPECT_EQ(h.rec(7)["request"]["method"], "exchange.delete");
  EXPECT_EQ(h.rec(7)["status"], "timeout");
  EXPECT_EQ(h.rec(7)["flags"], json::array());
  h.expect_ledger();
}

TEST(FuzzReplay, Amqp) {
  using fuzz::make_script;
  const Opening o = opening();
  const std::vector<std::string> seeds = {
      make_script(false, {{false, o.client}, {true, o.server}}),
      make_script(false, {{false, method(1, 85, 10, std::string(1, '\0')) +
                                      method(1, 60, 40, be16s(0) + sstr("e") + sstr("k") + '\0') + content(1, "xyz")},
                          {true, method(1, 85, 11) + method(1, 60, 80, be64s(1) + '\x01') +
                                     method(1, 20, 40, close_args(406, "PRECONDITION", 60, 40))}}),
  };
  dbtest::fuzz_exercise("amqp", spanfeed_fuzz_amqp, seeds);
}

}  // namespace
}  // namespace spanfeed
