// Unit tests for the worker's mirror handling: the ack hold (directions out of order), the
// mirror-duplicate filter and late SYNs after a close. Runs in the test thread; allocates freely.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "flow_test_util.h"
#include "spanfeed/duplicate_filter.h"
#include "spanfeed/tcp_reassembly.h"

namespace spanfeed {
namespace {

using flowtest::default_conn;
using flowtest::expect_ledger;
using flowtest::RecordingConsumer;
using flowtest::TcpConn;
using flowtest::TestPacket;
using O = SegmentOutcome;

constexpr Direction kC2S = Direction::kClientToServer;
constexpr Direction kS2C = Direction::kServerToClient;
constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kT0 = 1000 * kNsPerSec;

ReassemblerConfig hold_config() {
  ReassemblerConfig c;
  c.table.capacity = 64;
  c.table.closed_linger_ns = 2 * kNsPerSec;
  c.reassembly.memory_cap_bytes = 64 * 2048;
  c.reassembly.max_buffer_per_flow = 16 * 2048;
  c.reassembly.ack_hold_ns = 10 * kMs;
  c.reassembly.ack_hold_bytes = 4096;
  return c;
}

class AckHoldTest : public flowtest::ReassemblerTest {
 protected:
  AckHoldTest() : ReassemblerTest(hold_config()) {}
  // "dir:data" / "dir:<gap N>" / "dir:<fin>" for every data, gap and fin event, in order.
  std::vector<std::string> order() const {
    std::vector<std::string> out;
    for (const auto& e : rec_.events) {
      const std::string d = e.dir == kC2S ? "c:" : "s:";
      if (e.kind == "data") out.push_back(d + e.data);
      if (e.kind == "gap") out.push_back(d + "<gap " + std::to_string(e.missing) + ">");
      if (e.kind == "fin") out.push_back(d + "<fin>");
    }
    return out;
  }
};

using V = std::vector<std::string>;

TEST_F(AckHoldTest, ResponseCapturedBeforeItsRequestWaitsForIt) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.s_data(0, "RESP", kT0 + 20, 4)), O::kBuffered);  // acks 4 client bytes not seen yet
  EXPECT_TRUE(order().empty());
  EXPECT_EQ(feed(c.c_data(0, "REQ!", kT0 + 10)), O::kInOrder);
  EXPECT_EQ(order(), (V{"c:REQ!", "s:RESP"}));
  EXPECT_EQ(ctr().ack_held_segments, 1u);
  EXPECT_EQ(ctr().ack_hold_timeouts, 0u);
  EXPECT_EQ(rec_.gaps, 0u);
  // Its packet time stays its own.
  EXPECT_EQ(rec_.of("data")[1].ts_ns, kT0 + 20);
  expect_ledger(*r_, fed_);
}

TEST_F(AckHoldTest, PipelinedPairsSwappedAcrossDirectionsComeOutInAckOrder) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  feed(c.s_data(0, "r1", kT0 + 20, 2));
  feed(c.c_data(0, "q1", kT0 + 10));
  feed(c.s_data(2, "r2", kT0 + 40, 4));
  feed(c.c_data(2, "q2", kT0 + 30, 2));
  feed(c.c_data(4, "q3", kT0 + 50, 4));  // not held: its ACK covers only delivered bytes
  EXPECT_EQ(order(), (V{"c:q1", "s:r1", "c:q2", "s:r2", "c:q3"}));
  EXPECT_EQ(ctr().ack_held_segments, 2u);
  expect_ledger(*r_, fed_);
}

TEST_F(AckHoldTest, ClientDataAckingAHeldResponseWaitsBehindIt) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  feed(c.c_data(0, "q1", kT0 + 10));
  feed(c.c_data(2, "q2", kT0 + 30, 2));  // sent after r1 reached the client: waits for r1
  EXPECT_EQ(order(), (V{"c:q1"}));
  feed(c.s_data(0, "r1", kT0 + 20, 2));
  EXPECT_EQ(order(), (V{"c:q1", "s:r1", "c:q2"}));
  expect_ledger(*r_, fed_);
}

TEST_F(AckHoldTest, HoldGivesUpAfterItsPacketTimeAndDeclaresTheAckedBytesMissing) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  feed(c.s_data(0, "RESP", kT0 + 1000, 4));  // the request never reaches the capture
  feed(c.s_ack(0, kT0 + 5 * kMs, 4));        // same flow, inside the bound: still held
  EXPECT_TRUE(order().empty());
  // Another flow's packet moves the clock past the bound.
  TcpConn other = default_conn();
  other.client.port = 40000;
  feed(other.syn(kT0 + 1000 + 10 * kMs));
  // The request is a lost tail (nothing of the client's after it yet): skipped,
  // not reported, as capture-order delivery would not know of it either.
  EXPECT_EQ(order(), (V{"s:RESP"}));
  EXPECT_EQ(ctr().ack_hold_timeouts, 1u);
  EXPECT_EQ(ctr().gaps(GapReason::kAckPastHole), 0u);
  // The request arriving now is a retransmission of bytes given up on.
  EXPECT_EQ(feed(c.c_data(0, "REQ!", kT0 + 20 * kMs)), O::kRetransmission);
  EXPECT_EQ(rec_.gaps, 0u);
  // The client sends again: the lost tail is a gap, just before those bytes.
  EXPECT_EQ(feed(c.c_data(4, "Q2", kT0 + 21 * kMs, 4)), O::kInOrder);
  EXPECT_EQ(order(), (V{"s:RESP", "c:<gap 4>", "c:Q2"}));
  EXPECT_EQ(ctr().gaps(GapReason::kAckPastHole), 1u);
  EXPECT_EQ(ctr().gap_bytes_of(GapReason::kAckPastHole), 4u);
  expect_ledger(*r_, fed_);
}

TEST_F(AckHoldTest, LostTailGivesNoGapUnlessItsDirectionGoesOnLikeCaptureOrder) {
  // The request's last 4 bytes never reach the capture; the response acks
  // them and is the last packet (http/client-ip.pcap). Capture order (hold
  // off) reports no gap: the hold, given up, must not add one.
  for (uint64_t hold : {uint64_t{0}, 10 * kMs}) {
    ReassemblerConfig cfg = hold_config();
    cfg.reassembly.ack_hold_ns = hold;
    make(cfg);
    const TcpConn c = default_conn();
    handshake(c, kT0);
    feed(c.c_data(0, "REQ", kT0 + 10, 0));
    feed(c.s_data(0, "RESP", kT0 + 20, 7));  // acks 7 request bytes: 4 never captured
    r_->finish(kT0 + 30);
    EXPECT_EQ(order(), (V{"c:REQ", "s:RESP"})) << hold;
    EXPECT_EQ(rec_.gaps, 0u) << hold;
    // The same, and the client closes after the lost tail (within the bound):
    // bytes after the hole, so a gap both ways. Capture order reports it when
    // the FIN's ACK proves it; the hold, which still holds the response, puts
    // it where the ACKs prove it was, before the response.
    make(cfg);
    handshake(c, kT0);
    feed(c.c_data(0, "REQ", kT0 + 10, 0));
    feed(c.s_data(0, "RESP", kT0 + 20, 7));
    feed(c.c_fin(7, kT0 + 30, 4));
    feed(c.s_ack(8, kT0 + 40, 4));
    r_->finish(kT0 + 50);
    EXPECT_EQ(order(), hold == 0 ? (V{"c:REQ", "s:RESP", "c:<gap 4>", "c:<fin>"})
                                 : (V{"c:REQ", "c:<gap 4>", "s:RESP", "c:<fin>"}));
  }
}

// Two answers in a row never reach the capture; each following request acks
// the one before it. The hole is declared when the request that proves its
// last part goes out, not before the first held one: a decoder pairing answers
// in order then drops both unanswered requests, instead of giving the second
// request the third one's answer (pgsql, 2 lost server segments, hold on).
TEST_F(AckHoldTest, HoleProvenByTwoHeldRequestsIsDeclaredBetweenThem) {
  for (bool timer : {false, true}) {
    make(hold_config());
    const TcpConn c = default_conn();
    handshake(c, kT0);
    feed(c.c_data(0, "q1", kT0 + 10));
    // r1 (server bytes 0-1) lost
    feed(c.c_data(2, "q2", kT0 + 30, 2));
    // r2 (server bytes 2-3) lost
    feed(c.c_data(4, "q3", kT0 + 50, 4));
    feed(c.s_data(4, "r3", kT0 + 60, 6));
    if (timer) {
      TcpConn other = default_conn();
      other.client.port = 40000;
      feed(other.syn(kT0 + 60 + 10 * kMs));
    } else {
      r_->finish(kT0 + 100);
    }
    EXPECT_EQ(order(), (V{"c:q1", "c:q2", "s:<gap 4>", "c:q3", "s:r3"})) << timer;
    expect_ledger(*r_, fed_);
  }
}

TEST_F(AckHoldTest, IdleWorkerReleasesHoldsOnItsTimer) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  feed(c.s_data(0, "RESP", kT0 + 1000, 4));
  r_->advance_time(kT0 + 1000 + 10 * kMs - 1);
  EXPECT_TRUE(order().empty());
  r_->advance_time(kT0 + 1000 + 10 * kMs);
  EXPECT_EQ(order(), (V{"s:RESP"}));
  EXPECT_EQ(ctr().ack_hold_timeouts, 1u);
}

TEST_F(AckHoldTest, HoldGivesUpPastItsByteBound) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  const std::string a(1500, 'a'), b(3000, 'b');
  EXPECT_EQ(feed(c.s_data(0, a, kT0 + 10, 4)), O::kBuffered);
  // 1500 + 3000 held bytes > ack_hold_bytes (4096): the hold is given up.
  EXPECT_EQ(feed(c.s_data(1500, b, kT0 + 20, 4)), O::kInOrder);
  EXPECT_EQ(order(), (V{"s:" + a, "s:" + b}));  // the lost request: a tail, not reported
  EXPECT_EQ(ctr().ack_hold_overflows, 1u);
  EXPECT_EQ(ctr().ack_held_segments, 1u);
  expect_ledger(*r_, fed_);
}

// A segment whose ACK is further ahead of what the other direction delivered than the hold would wait
// for is not held, but what its ACK proves goes out first: holes before the bytes the other direction
// buffered become gaps and those bytes are delivered, then the segment. (It went out first: an HTTP/2
// client's RST_STREAM acknowledging 66 KB of a response behind a hole closed the stream before the
// response's DATA reached it; a 2 MB upload's 200 came before the upload's last bytes.)
TEST_F(AckHoldTest, AckBeyondTheBoundReleasesWhatItProvesFirst) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(0, "q1", kT0 + 10)), O::kInOrder);
  const std::string b(2000, 'b'), d(2000, 'd');
  // The server's first 100 bytes are lost by the capture; what follows is buffered.
  EXPECT_EQ(feed(c.s_data(100, b, kT0 + 20, 2)), O::kBuffered);
  EXPECT_EQ(feed(c.s_data(2100, d, kT0 + 30, 2)), O::kBuffered);
  // The client acknowledges all 4,100 bytes (> ack_hold_bytes, 4096) and sends more.
  feed(c.c_data(2, "q2", kT0 + 40, 4100));
  EXPECT_EQ(order(), (V{"c:q1", "s:<gap 100>", "s:" + b, "s:" + d, "c:q2"}));
  EXPECT_EQ(ctr().gaps(GapReason::kAckPastHole), 1u);
  EXPECT_EQ(ctr().ack_hold_overflows, 1u);
  EXPECT_EQ(ctr().ack_held_segments, 0u);
  expect_ledger(*r_, fed_);
}

TEST_F(AckHoldTest, AckPastAHoleWaitsForTheMissingSegmentWithinTheBound) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(4, "q2q2", kT0 + 20)), O::kBuffered);
  feed(c.s_ack(8, kT0 + 30));                 // proves bytes 0..4 were sent
  EXPECT_TRUE(order().empty());
  EXPECT_EQ(feed(c.c_data(0, "q1q1", kT0 + 10)), O::kInOrder);  // and here they are
  EXPECT_EQ(order(), (V{"c:q1q1", "c:q2q2"}));
  EXPECT_EQ(rec_.gaps, 0u);
  // Without the missing segment the gap comes at the bound, reason ack_past_hole.
  feed(c.c_data(12, "zz", kT0 + 40));
  feed(c.s_ack(14, kT0 + 50, 0));
  r_->advance_time(kT0 + 50 + 10 * kMs);
  EXPECT_EQ(order(), (V{"c:q1q1", "c:q2q2", "c:<gap 4>", "c:zz"}));
  EXPECT_EQ(ctr().gaps(GapReason::kAckPastHole), 1u);
}

TEST_F(AckHoldTest, MidStreamFlowWhoseResponseCameFirst) {
  const TcpConn c = default_conn();  // no handshake in the capture
  feed(c.s_data(0, "RESP", kT0 + 20, 4));
  EXPECT_TRUE(order().empty());
  feed(c.c_data(0, "REQ!", kT0 + 10, 0));
  EXPECT_EQ(order(), (V{"c:REQ!", "s:RESP"}));
  // A flow seen in one direction only is held once, then no more.
  TcpConn one = default_conn();
  one.client.port = 40001;
  feed(one.s_data(0, "only", kT0 + 30, 9));
  r_->advance_time(kT0 + 30 + 10 * kMs);
  feed(one.s_data(4, "more", kT0 + 40 + 10 * kMs, 9));
  EXPECT_EQ(rec_.text(2, kS2C), "onlymore");
  EXPECT_EQ(rec_.text(2, kC2S), "");
  EXPECT_EQ(ctr().ack_hold_timeouts, 1u);
}

TEST_F(AckHoldTest, RstReleasesHeldDataInAckOrder) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  feed(c.s_data(0, "RESP", kT0 + 20, 4));
  EXPECT_EQ(feed(c.c_rst(0, "", kT0 + 30)), O::kRst);
  EXPECT_EQ(rec_.closes, 0u);  // the reset's close waits the bound for what was sent before it
  r_->advance_time(kT0 + 30 + 10 * kMs);
  EXPECT_EQ(order(), (V{"s:RESP"}));  // the lost request: a tail, not reported
  EXPECT_EQ(rec_.closes, 1u);
  EXPECT_EQ(ctr().closes(CloseReason::kRst), 1u);
  expect_ledger(*r_, fed_);
}

// A mirror delivered the server's reset ahead of the client's last bytes, which the client sent before
// it (the server had closed; the client's TLS close_notify made it reset: 8-12 connections of each
// reordered replay of the corpus TLS capture lost that alert as after-close). The close waits the hold's
// bound: the bytes are delivered, then the reset and the close, at the last packet's time.
TEST_F(AckHoldTest, ResetCapturedBeforeTheOtherSidesLastBytesWaitsForThem) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  feed(c.c_data(0, "hello", kT0 + 10));
  feed(c.s_data(0, "world", kT0 + 20, 5));
  EXPECT_EQ(feed(c.s_fin(5, kT0 + 30, 5)), O::kNoPayload);
  const TestPacket rst = c.s_rst(6, "", kT0 + 40);
  EXPECT_EQ(feed(rst), O::kRst);
  EXPECT_EQ(rec_.closes, 0u);
  EXPECT_EQ(feed(c.c_data(5, "bye!", kT0 + 50, 6)), O::kInOrder);
  EXPECT_EQ(rec_.closes, 0u);
  r_->advance_time(kT0 + 40 + 10 * kMs - 1);
  EXPECT_EQ(rec_.closes, 0u);
  r_->advance_time(kT0 + 40 + 10 * kMs);
  EXPECT_EQ(order(), (V{"c:hello", "s:world", "s:<fin>", "c:bye!"}));
  ASSERT_EQ(rec_.closes, 1u);
  EXPECT_EQ(rec_.close_reasons.begin()->second, CloseReason::kRst);
  const auto rsts = rec_.of("rst");
  ASSERT_EQ(rsts.size(), 1u);
  EXPECT_EQ(rsts[0].dir, kS2C);
  EXPECT_EQ(rsts[0].ts_ns, kT0 + 50);  // the flow's last packet, not the time the wait ended
  EXPECT_EQ(rec_.events.back().kind, "close");
  EXPECT_EQ(ctr().closes(CloseReason::kRst), 1u);
  EXPECT_EQ(ctr().get(O::kRst), 1u);
  EXPECT_EQ(ctr().get(O::kAfterClose), 0u);
  EXPECT_EQ(ctr().ack_hold_timeouts, 0u);  // nothing was held: only the close waited
  EXPECT_EQ(rec_.gaps, 0u);
  expect_ledger(*r_, fed_);
}

// What comes after the bound is after the close, whether the flow's own packet or another flow's
// packet (expire_holds) ends the wait; further resets meanwhile are after-close, and the end of the
// run ends the wait at once.
TEST_F(AckHoldTest, ResetWaitEndsAtTheBoundOrTheEndFurtherResetsAreAfterClose) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  feed(c.c_data(0, "q", kT0 + 10));
  EXPECT_EQ(feed(c.c_rst(1, "", kT0 + 20)), O::kRst);
  EXPECT_EQ(feed(c.s_data(0, "late", kT0 + 20 + 10 * kMs, 1)), O::kAfterClose);
  EXPECT_EQ(rec_.closes, 1u);
  EXPECT_EQ(rec_.text(rec_.of("open")[0].serial, kS2C), "");

  // Another connection from client port `port`, opened at `t` and reset by the client 1 ms later.
  const auto reset_at = [this](uint16_t port, uint64_t t) {
    TcpConn k = default_conn();
    k.client.port = port;
    handshake(k, t);
    EXPECT_EQ(feed(k.c_rst(0, "", t + kMs)), O::kRst);
    return k;
  };
  const TcpConn two = reset_at(51235, kT0 + 30 * kMs);
  EXPECT_EQ(feed(two.c_rst(0, "", kT0 + 32 * kMs)), O::kAfterClose);
  EXPECT_EQ(feed(two.s_data(0, "sent before the reset came", kT0 + 33 * kMs)), O::kInOrder);
  EXPECT_EQ(rec_.closes, 1u);
  r_->advance_time(kT0 + 41 * kMs);
  EXPECT_EQ(rec_.closes, 2u);
  EXPECT_EQ(rec_.text(rec_.of("open")[1].serial, kS2C), "sent before the reset came");

  reset_at(51236, kT0 + 40 * kMs);
  r_->finish(kT0 + 42 * kMs);
  EXPECT_EQ(rec_.closes, 3u);
  EXPECT_EQ(ctr().closes(CloseReason::kRst), 3u);
  EXPECT_EQ(ctr().closes(CloseReason::kShutdown), 0u);
  EXPECT_EQ(ctr().get(O::kRst), 3u);
  expect_ledger(*r_, fed_);
}

// A hold listed before the reset came times out on its own clock (counted, its data delivered), and
// the reset's wait goes on to its own bound.
TEST_F(AckHoldTest, HoldListedBeforeAResetTimesOutThenTheResetWaitEnds) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.s_data(0, "RESP", kT0 + 20, 4)), O::kBuffered);  // acks 4 client bytes not seen
  EXPECT_EQ(feed(c.c_rst(4, "", kT0 + 5 * kMs)), O::kRst);
  r_->advance_time(kT0 + 20 + 10 * kMs);
  EXPECT_EQ(ctr().ack_hold_timeouts, 1u);
  EXPECT_EQ(order(), (V{"s:RESP"}));
  EXPECT_EQ(rec_.closes, 0u);
  r_->advance_time(kT0 + 15 * kMs - 1);
  EXPECT_EQ(rec_.closes, 0u);
  r_->advance_time(kT0 + 15 * kMs);
  ASSERT_EQ(rec_.closes, 1u);
  EXPECT_EQ(ctr().closes(CloseReason::kRst), 1u);
  expect_ledger(*r_, fed_);
}

TEST_F(AckHoldTest, HoldOffKeepsCaptureOrder) {
  ReassemblerConfig cfg = hold_config();
  cfg.reassembly.ack_hold_ns = 0;
  make(cfg);
  const TcpConn c = default_conn();
  handshake(c, kT0);
  feed(c.s_data(0, "RESP", kT0 + 20, 4));
  feed(c.c_data(0, "REQ!", kT0 + 10));
  EXPECT_EQ(order(), (V{"s:RESP", "c:REQ!"}));
  EXPECT_EQ(ctr().ack_held_segments, 0u);
}

TEST_F(AckHoldTest, SynOfAClosedConnectionIsLateNotANewFlow) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  feed(c.c_data(0, "q", kT0 + 10));
  feed(c.s_data(0, "r", kT0 + 20, 1));
  feed(c.c_fin(1, kT0 + 30, 1));
  feed(c.s_fin(1, kT0 + 40, 2));
  feed(c.c_ack(2, kT0 + 50, 2));
  ASSERT_EQ(rec_.closes, 1u);
  EXPECT_EQ(feed(c.syn(kT0 + 60)), O::kLate);                // the same ISN again
  EXPECT_EQ(feed(c.c_data(0, "q", kT0 + 70)), O::kAfterClose);  // a late retransmission
  TcpConn back = c;
  back.c_isn = 777777;
  EXPECT_EQ(feed(back.syn(kT0 + 35)), O::kLate);  // timestamped before the close
  EXPECT_EQ(rec_.opens, 1u);
  EXPECT_EQ(ctr().get(O::kLate), 2u);
  TcpConn reuse = c;
  reuse.c_isn = 999999;
  EXPECT_EQ(feed(reuse.syn(kT0 + 100)), O::kNoPayload);  // port reuse: a new connection
  EXPECT_EQ(rec_.opens, 2u);
  expect_ledger(*r_, fed_);
}

// ---------------------------------------------------------------------------
// Mirror duplicates

TestPacket with_bytes(TestPacket t, uint16_t ip_id, uint16_t l4_csum, uint8_t ttl) {
  auto put16 = [&](size_t off, uint16_t v) {
    t.frame[off] = std::byte(v >> 8);
    t.frame[off + 1] = std::byte(v & 0xff);
  };
  put16(t.parsed.l3_offset + 4, ip_id);
  put16(t.parsed.l4_offset + (t.parsed.l4_proto == kProtoTcp ? 16 : 6), l4_csum);
  t.frame[t.parsed.l3_offset + 8] = std::byte(ttl);
  return t;
}

TEST(DuplicateFilterTest, KeyIgnoresTtlAndLayer2ButNotIdChecksumOrSequence) {
  const TcpConn c = default_conn();
  DuplicateFilter f(kMs, 64, 42);
  const TestPacket a = with_bytes(c.c_data(0, "abcd", kT0), 7, 0x1234, 64);
  TestPacket hop = with_bytes(a, 7, 0x1234, 63);
  hop.frame[0] = std::byte{0xee};  // another MAC
  EXPECT_EQ(f.fingerprint(a.frame, a.parsed), f.fingerprint(hop.frame, hop.parsed));
  const TestPacket id = with_bytes(a, 8, 0x1234, 64);
  const TestPacket sum = with_bytes(a, 7, 0x1235, 64);
  const TestPacket seq = with_bytes(c.c_data(1, "abcd", kT0), 7, 0x1234, 64);
  const TestPacket ackd = with_bytes(c.c_data(0, "abcd", kT0, 1), 7, 0x1234, 64);
  for (const TestPacket* o : {&id, &sum, &seq, &ackd}) {
    EXPECT_NE(f.fingerprint(a.frame, a.parsed), f.fingerprint(o->frame, o->parsed));
  }
  EXPECT_FALSE(f.seen(a.frame, a.parsed, kT0));
  EXPECT_TRUE(f.seen(hop.frame, hop.parsed, kT0 + kMs - 1));
  EXPECT_FALSE(f.seen(id.frame, id.parsed, kT0 + 10));
  EXPECT_FALSE(f.seen(a.frame, a.parsed, kT0 + 3 * kMs));  // out of the window: new again
  EXPECT_TRUE(f.seen(a.frame, a.parsed, kT0 + 3 * kMs - 5));  // timestamps a little backwards
  EXPECT_FALSE(DuplicateFilter(0, 64, 1).seen(a.frame, a.parsed, kT0));  // off
}

TEST(DuplicateFilterTest, FullLinesEvictTheOldestAndCountLiveEvictions) {
  const TcpConn c = default_conn();
  DuplicateFilter f(kMs, 4, 1);  // one line of 4
  EXPECT_EQ(f.entries(), 4u);
  std::vector<TestPacket> p;
  for (uint16_t i = 0; i < 5; ++i) p.push_back(with_bytes(c.c_data(i, "x", kT0), i, i, 64));
  for (uint16_t i = 0; i < 5; ++i) EXPECT_FALSE(f.seen(p[i].frame, p[i].parsed, kT0 + i));
  EXPECT_EQ(f.evicted_live(), 1u);
  EXPECT_FALSE(f.seen(p[0].frame, p[0].parsed, kT0 + 10));  // the oldest was overwritten
  EXPECT_TRUE(f.seen(p[4].frame, p[4].parsed, kT0 + 10));
}

TEST_F(AckHoldTest, MirrorCopiesAreDroppedAndCountedRetransmissionsAreNot) {
  ReassemblerConfig cfg = hold_config();
  cfg.reassembly.dedup_window_ns = kMs;
  make(cfg);
  const TcpConn c = default_conn();
  auto both = [&](const TestPacket& t) {
    const TestPacket a = with_bytes(t, static_cast<uint16_t>(fed_), 0x4242, 64);
    const O first = feed(a);
    TestPacket copy = with_bytes(t, static_cast<uint16_t>(fed_ - 1), 0x4242, 63);
    copy.ts_ns += 1000;
    EXPECT_EQ(feed(copy), O::kDuplicate);
    return first;
  };
  both(c.syn(kT0));
  both(c.syn_ack(kT0 + 1));
  both(c.ack(kT0 + 2));
  EXPECT_EQ(both(c.c_data(0, "REQ!", kT0 + 10)), O::kInOrder);
  // The same segment again 2 ms later (same IP id and checksum): a retransmission.
  EXPECT_EQ(feed(with_bytes(c.c_data(0, "REQ!", kT0 + 10 + 2 * kMs), 6, 0x4242, 64)), O::kRetransmission);
  EXPECT_EQ(both(c.s_data(0, "RESP", kT0 + 3 * kMs, 4)), O::kInOrder);
  EXPECT_EQ(order(), (V{"c:REQ!", "s:RESP"}));
  EXPECT_EQ(ctr().get(O::kDuplicate), 5u);
  EXPECT_EQ(ctr().get(O::kRetransmission), 1u);
  expect_ledger(*r_, fed_);
}

}  // namespace
}  // namespace spanfeed
