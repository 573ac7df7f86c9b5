// Unit tests for TCP reassembly and UDP pass-through: crafted segments, exact bytes, gaps and counters.
// Runs in the test thread; allocates freely (tests only).
#include "spanfeed/tcp_reassembly.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "flow_test_util.h"

namespace spanfeed {
namespace {

using flowtest::default_conn;
using flowtest::Endpoint;
using flowtest::expect_ledger;
using flowtest::ipv4;
using flowtest::kHeaderBytes;
using flowtest::RecordingConsumer;
using flowtest::TcpConn;
using flowtest::tcp_packet;
using flowtest::TestPacket;
using flowtest::udp_packet;
using O = SegmentOutcome;

constexpr Direction kC2S = Direction::kClientToServer;
constexpr Direction kS2C = Direction::kServerToClient;
constexpr uint64_t kSec = kNsPerSec;
constexpr uint64_t kT0 = 1000 * kSec;
constexpr uint32_t kChunk = 2048;

ReassemblerConfig test_config() {
  ReassemblerConfig c;
  c.table.capacity = 64;
  c.table.tcp_opening_timeout_ns = 5 * kSec;
  c.table.tcp_established_timeout_ns = 60 * kSec;
  c.table.tcp_closing_timeout_ns = 10 * kSec;
  c.table.closed_linger_ns = 2 * kSec;
  c.table.udp_timeout_ns = 30 * kSec;
  c.table.evict_min_idle_ns = 4 * kSec;
  c.reassembly.chunk_size = kChunk;
  c.reassembly.memory_cap_bytes = 64 * kChunk;
  c.reassembly.max_buffer_per_flow = 16 * kChunk;
  return c;
}

class ReassemblyTest : public flowtest::ReassemblerTest {
 protected:
  ReassemblyTest() : ReassemblerTest(test_config()) {}
  Flow* flow_of(const TcpConn& c) { return r_->table().find(make_flow_key(c.syn(0).parsed)).flow; }
  uint64_t out(O o) const { return r_->counters().get(o); }
};

TEST_F(ReassemblyTest, InOrderDataIsDeliveredZeroCopyWithPacketTimes) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  TestPacket d1 = c.c_data(0, "hello ", kT0 + 10);
  TestPacket d2 = c.c_data(6, "world", kT0 + 11);
  TestPacket r1 = c.s_data(0, "OK", kT0 + 12, 11);
  EXPECT_EQ(feed(d1), O::kInOrder);
  EXPECT_EQ(feed(d2), O::kInOrder);
  EXPECT_EQ(feed(r1), O::kInOrder);

  EXPECT_EQ(rec_.text(1, kC2S), "hello world");
  EXPECT_EQ(rec_.text(1, kS2C), "OK");
  auto data = rec_.of("data");
  ASSERT_EQ(data.size(), 3u);
  EXPECT_EQ(data[0].data_ptr, d1.frame.data() + kHeaderBytes);  // a span into the packet: no copy
  EXPECT_EQ(data[1].data_ptr, d2.frame.data() + kHeaderBytes);
  EXPECT_EQ(data[0].ts_ns, kT0 + 10);
  EXPECT_EQ(data[2].ts_ns, kT0 + 12);
  EXPECT_EQ(data[2].dir, kS2C);

  Flow* f = flow_of(c);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->state, FlowState::kEstablished);
  EXPECT_EQ(f->client_port(), 51234);
  EXPECT_EQ(f->server_port(), 3306);
  EXPECT_EQ(f->dir_stats(kC2S).packets, 4u);
  EXPECT_EQ(f->dir_stats(kC2S).payload_bytes, 11u);
  EXPECT_EQ(f->dir_stats(kC2S).wire_bytes, 4u * kHeaderBytes + 11u);
  EXPECT_EQ(f->dir_stats(kC2S).first_ts_ns, kT0);
  EXPECT_EQ(f->dir_stats(kC2S).last_ts_ns, kT0 + 11);
  EXPECT_EQ(f->dir_stats(kS2C).packets, 2u);
  EXPECT_EQ(f->first_ts_ns, kT0);
  EXPECT_EQ(f->last_ts_ns, kT0 + 12);

  EXPECT_EQ(out(O::kInOrder), 3u);
  EXPECT_EQ(out(O::kNoPayload), 3u);
  EXPECT_EQ(ctr().bytes_in_order, 13u);
  EXPECT_EQ(ctr().bytes_from_buffer, 0u);
  EXPECT_EQ(ctr().chunks_high_water, 0u);
  EXPECT_EQ(ctr().flows_created, 1u);
  EXPECT_EQ(rec_.empty_data_calls, 0u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, ReorderedSegmentsAreBufferedThenDeliveredInOrder) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(20, "3333333333", kT0 + 10)), O::kBuffered);
  EXPECT_EQ(feed(c.c_data(10, "2222222222", kT0 + 11)), O::kBuffered);
  EXPECT_EQ(ctr().chunks_in_use, 2u);
  EXPECT_EQ(ctr().buffered_bytes, 20u);
  EXPECT_EQ(r_->flow_buffered_chunks(*flow_of(c)), 2u);
  EXPECT_EQ(rec_.text(1, kC2S), "");
  EXPECT_EQ(feed(c.c_data(0, "1111111111", kT0 + 12)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kC2S), "111111111122222222223333333333");
  auto data = rec_.of("data");
  ASSERT_EQ(data.size(), 3u);
  EXPECT_EQ(data[1].ts_ns, kT0 + 11);  // buffered bytes keep their own packet time
  EXPECT_EQ(data[2].ts_ns, kT0 + 10);
  EXPECT_EQ(ctr().chunks_in_use, 0u);
  EXPECT_EQ(ctr().buffered_bytes, 0u);
  EXPECT_EQ(ctr().chunks_high_water, 2u);
  EXPECT_EQ(ctr().buffered_bytes_high_water, 20u);
  EXPECT_EQ(ctr().bytes_in_order, 10u);
  EXPECT_EQ(ctr().bytes_from_buffer, 20u);
  EXPECT_EQ(out(O::kBuffered), 2u);
  EXPECT_EQ(rec_.gaps, 0u);
  expect_ledger(*r_, fed_);
}

// Each chunk says how much of the other direction its packet acknowledged, as a stream position: from the
// packet (in order) or kept with the buffered bytes (out of order, delivered later); kAckUnknown without
// an ACK; 0 for an ACK of bytes before the stream's first (a server answering something before it).
TEST_F(ReassemblyTest, ChunksCarryTheStreamPositionTheirAckCovers) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(0, "GET 1", kT0 + 10)), O::kInOrder);
  EXPECT_EQ(feed(c.s_data(0, "ok1", kT0 + 11, 5)), O::kInOrder);
  EXPECT_EQ(feed(c.c_data(5, "GET 2", kT0 + 12, 3)), O::kInOrder);
  EXPECT_EQ(feed(c.s_data(6, "ok3", kT0 + 13, 10)), O::kBuffered);  // a server segment missing before it
  EXPECT_EQ(feed(c.s_data(3, "ok2", kT0 + 14, 7)), O::kInOrder);      // acks 7 of the 10 delivered bytes
  EXPECT_EQ(feed(tcp_packet(c.server, c.client, tcp_flag::kPsh, c.sseq(9), 0, "x", kT0 + 15)), O::kInOrder);
  auto data = rec_.of("data");
  ASSERT_EQ(data.size(), 6u);
  EXPECT_EQ(data[0].peer_acked, 0u);  // the client acked the SYN-ACK: server position 0
  EXPECT_EQ(data[1].peer_acked, 5u);
  EXPECT_EQ(data[2].peer_acked, 3u);
  EXPECT_EQ(data[3].peer_acked, 7u);   // "ok2", from its packet
  EXPECT_EQ(data[4].peer_acked, 10u);  // "ok3", from the buffer: its own packet's ACK
  EXPECT_EQ(data[5].peer_acked, kAckUnknown);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, DuplicatesOfDeliveredAndBufferedDataAreCounted) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(0, "abcd", kT0 + 1)), O::kInOrder);
  EXPECT_EQ(feed(c.c_data(0, "abcd", kT0 + 2)), O::kRetransmission);
  EXPECT_EQ(feed(c.c_data(10, "klmn", kT0 + 3)), O::kBuffered);
  EXPECT_EQ(feed(c.c_data(10, "klmn", kT0 + 4)), O::kRetransmission);
  EXPECT_EQ(ctr().chunks_in_use, 1u);
  EXPECT_EQ(feed(c.c_data(4, "efghij", kT0 + 5)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kC2S), "abcdefghijklmn");
  EXPECT_EQ(out(O::kRetransmission), 2u);
  EXPECT_EQ(ctr().bytes_duplicate, 8u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, PartialOverlapWithDeliveredDataKeepsFirstCopy) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(0, "abcdef", kT0 + 1)), O::kInOrder);
  EXPECT_EQ(feed(c.c_data(4, "EFGH", kT0 + 2)), O::kOverlapTrimmed);
  EXPECT_EQ(rec_.text(1, kC2S), "abcdefGH");
  EXPECT_EQ(ctr().bytes_duplicate, 2u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, ExactOverlapOfBufferedDataKeepsFirstCopy) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(10, "XXXX", kT0 + 1)), O::kBuffered);
  EXPECT_EQ(feed(c.c_data(10, "YYYY", kT0 + 2)), O::kRetransmission);
  EXPECT_EQ(feed(c.c_data(0, "0123456789", kT0 + 3)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kC2S), "0123456789XXXX");
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, OverlapSpanningSeveralBufferedSegmentsKeepsOnlyTheNewBytes) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(10, "AAAA", kT0 + 1)), O::kBuffered);  // [10,14)
  EXPECT_EQ(feed(c.c_data(20, "BBBB", kT0 + 2)), O::kBuffered);  // [20,24)
  // [8,26): new bytes are [8,10), [14,20), [24,26); the copies of A and B lose.
  EXPECT_EQ(feed(c.c_data(8, "ccDDDDeeeeeeFFFFgg", kT0 + 3)), O::kOverlapTrimmed);
  EXPECT_EQ(ctr().bytes_duplicate, 8u);
  EXPECT_EQ(ctr().buffered_bytes, 18u);
  EXPECT_EQ(ctr().chunks_in_use, 5u);  // five disjoint pieces
  EXPECT_EQ(feed(c.c_data(0, "01234567", kT0 + 4)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kC2S), "01234567ccAAAAeeeeeeBBBBgg");
  EXPECT_EQ(ctr().chunks_in_use, 0u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, InOrderSegmentOverlappingBufferedDataYieldsToIt) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(5, "PPPPP", kT0 + 1)), O::kBuffered);
  EXPECT_EQ(feed(c.c_data(0, "aaaaaaaaaaaa", kT0 + 2)), O::kOverlapTrimmed);
  EXPECT_EQ(rec_.text(1, kC2S), "aaaaaPPPPPaa");
  EXPECT_EQ(ctr().bytes_duplicate, 5u);
  EXPECT_EQ(ctr().bytes_in_order, 7u);
  EXPECT_EQ(ctr().bytes_from_buffer, 5u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, AckPastMiddleHoleBecomesGapAndBufferedBytesFlow) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(0, "abcde", kT0 + 1)), O::kInOrder);
  EXPECT_EQ(feed(c.c_data(10, "klmno", kT0 + 2)), O::kBuffered);
  EXPECT_EQ(feed(c.s_ack(8, kT0 + 3)), O::kNoPayload);  // ack inside the hole: keep waiting
  EXPECT_EQ(rec_.text(1, kC2S), "abcde");
  EXPECT_EQ(feed(c.s_ack(10, kT0 + 4)), O::kNoPayload);  // up to the buffered data: [5,10) is lost
  EXPECT_EQ(rec_.text(1, kC2S), "abcde<gap 5>klmno");
  EXPECT_EQ(feed(c.s_ack(15, kT0 + 4)), O::kNoPayload);  // nothing left to gap
  auto gaps = rec_.of("gap");
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].missing, 5u);
  EXPECT_EQ(gaps[0].gap_reason, GapReason::kAckPastHole);
  EXPECT_EQ(gaps[0].dir, kC2S);
  EXPECT_EQ(ctr().gaps(GapReason::kAckPastHole), 1u);
  EXPECT_EQ(ctr().gap_bytes_of(GapReason::kAckPastHole), 5u);
  EXPECT_EQ(r_->stream(*flow_of(c), kC2S).stream_offset(), 15u);
  // The late copy of the lost bytes is now old data.
  EXPECT_EQ(feed(c.c_data(5, "fghij", kT0 + 5)), O::kRetransmission);
  EXPECT_EQ(feed(c.c_data(15, "p", kT0 + 6)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kC2S), "abcde<gap 5>klmnop");
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, AckPastSeveralHolesGapsEachOne) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(2, "cc", kT0 + 1)), O::kBuffered);
  EXPECT_EQ(feed(c.c_data(7, "hh", kT0 + 2)), O::kBuffered);
  EXPECT_EQ(feed(c.c_data(12, "mm", kT0 + 3)), O::kBuffered);
  // The server acks up to 9: holes [0,2) and [4,7) are proven lost; [9,12) is not yet.
  EXPECT_EQ(feed(c.s_data(0, "resp", kT0 + 4, 9)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kC2S), "<gap 2>cc<gap 3>hh");
  // The client data was delivered before the server data of the same packet.
  auto data = rec_.of("data");
  ASSERT_EQ(data.size(), 3u);
  EXPECT_EQ(data[2].dir, kS2C);
  EXPECT_EQ(ctr().chunks_in_use, 1u);
  EXPECT_EQ(ctr().gaps(GapReason::kAckPastHole), 2u);
  EXPECT_EQ(ctr().gap_bytes_of(GapReason::kAckPastHole), 5u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, LeadingGapWhenFirstSegmentAfterHandshakeIsLost) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(100, "late", kT0 + 1)), O::kBuffered);
  EXPECT_EQ(feed(c.s_ack(104, kT0 + 2)), O::kNoPayload);
  EXPECT_EQ(rec_.text(1, kC2S), "<gap 100>late");
  EXPECT_EQ(ctr().gap_bytes_of(GapReason::kAckPastHole), 100u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, HolesLeftAtShutdownBecomeCloseGaps) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(3, "def", kT0 + 1)), O::kBuffered);
  EXPECT_EQ(feed(c.s_data(50, "zz", kT0 + 2)), O::kBuffered);
  r_->finish(kT0 + 3);
  EXPECT_EQ(rec_.text(1, kC2S), "<gap 3>def");
  EXPECT_EQ(rec_.text(1, kS2C), "<gap 50>zz");
  EXPECT_EQ(ctr().gaps(GapReason::kClose), 2u);
  EXPECT_EQ(ctr().gap_bytes_of(GapReason::kClose), 53u);
  EXPECT_EQ(ctr().closes(CloseReason::kShutdown), 1u);
  EXPECT_EQ(ctr().chunks_in_use, 0u);
  EXPECT_EQ(r_->table().size(), 0u);
  EXPECT_EQ(rec_.open_now, 0);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, SequenceWraparoundAt2To32) {
  TcpConn c{{ipv4(10, 0, 0, 2), 51234}, {ipv4(10, 0, 0, 1), 80}, 0xFFFFFFF0u, 0xFFFFFFFFu};
  handshake(c, kT0);
  const std::string msg = "0123456789ABCDEFGHIJKLMNOP";  // byte 15 sits at seq 0
  EXPECT_EQ(c.cseq(15), 0u);
  EXPECT_EQ(feed(c.c_data(20, msg.substr(20), kT0 + 1)), O::kBuffered);        // after the wrap
  EXPECT_EQ(feed(c.c_data(10, msg.substr(10, 10), kT0 + 2)), O::kBuffered);    // spans the wrap
  EXPECT_EQ(feed(c.c_data(12, msg.substr(12, 4), kT0 + 3)), O::kRetransmission);
  EXPECT_EQ(feed(c.c_data(0, msg.substr(0, 10), kT0 + 4)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kC2S), msg);
  // Server side: ISN 0xFFFFFFFF, first data byte at seq 0.
  EXPECT_EQ(feed(c.s_data(0, "xy", kT0 + 5, 26)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kS2C), "xy");
  EXPECT_EQ(feed(c.c_fin(26, kT0 + 6, 2)), O::kNoPayload);
  EXPECT_EQ(feed(c.s_fin(2, kT0 + 7, 27)), O::kNoPayload);
  EXPECT_EQ(ctr().closes(CloseReason::kFin), 1u);
  EXPECT_EQ(rec_.gaps, 0u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, RstWithDataClosesFlowAndItsPayloadIsNotStreamData) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(0, "req", kT0 + 1)), O::kInOrder);
  EXPECT_EQ(feed(c.s_data(10, "tail", kT0 + 2, 3)), O::kBuffered);
  EXPECT_EQ(feed(c.s_rst(14, "diagnostic text", kT0 + 3)), O::kRst);
  EXPECT_EQ(rec_.text(1, kS2C), "<gap 10>tail<rst>");
  EXPECT_EQ(rec_.text(1, kC2S), "req");
  EXPECT_EQ(rec_.data_bytes, 7u);
  EXPECT_EQ(rec_.close_reasons[1], CloseReason::kRst);
  EXPECT_EQ(ctr().closes(CloseReason::kRst), 1u);
  EXPECT_EQ(ctr().chunks_in_use, 0u);
  Flow* f = flow_of(c);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->state, FlowState::kClosed);
  EXPECT_EQ(f->timeout_class, TimeoutClass::kClosed);
  // Later packets of the flow are counted, not decoded.
  EXPECT_EQ(feed(c.c_data(3, "more", kT0 + 4)), O::kAfterClose);
  EXPECT_EQ(feed(c.c_rst(7, "", kT0 + 5)), O::kAfterClose);
  EXPECT_EQ(rec_.closes, 1u);
  // The closed record lingers 2 s after the RST, then goes without a second close.
  r_->advance_time(kT0 + 3 + 2 * kSec);
  EXPECT_EQ(r_->table().size(), 0u);
  EXPECT_EQ(rec_.closes, 1u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, RstOutOfWindowIsIgnored) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_rst(0x50000000u, "", kT0 + 1)), O::kOutOfWindow);
  EXPECT_EQ(flow_of(c)->state, FlowState::kEstablished);
  EXPECT_EQ(feed(c.c_data(0, "ok", kT0 + 2)), O::kInOrder);
  EXPECT_EQ(rec_.closes, 0u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, SimultaneousCloseDeliversBothFinsThenLateAcksAreAfterClose) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(0, "ping", kT0 + 1)), O::kInOrder);
  EXPECT_EQ(feed(c.s_data(0, "pong", kT0 + 2, 4)), O::kInOrder);
  // Both FINs were sent before either side saw the other's: neither acks a FIN.
  EXPECT_EQ(feed(c.c_fin(4, kT0 + 3, 4)), O::kNoPayload);
  EXPECT_EQ(flow_of(c)->state, FlowState::kClosing);
  EXPECT_EQ(flow_of(c)->timeout_class, TimeoutClass::kTcpClosing);
  EXPECT_EQ(feed(c.s_fin(4, kT0 + 4, 4)), O::kNoPayload);
  EXPECT_EQ(rec_.text(1, kC2S), "ping<fin>");
  EXPECT_EQ(rec_.text(1, kS2C), "pong<fin>");
  EXPECT_EQ(rec_.close_reasons[1], CloseReason::kFin);
  EXPECT_EQ(flow_of(c)->state, FlowState::kClosed);
  EXPECT_EQ(feed(c.c_ack(5, kT0 + 5, 5)), O::kAfterClose);
  EXPECT_EQ(feed(c.s_ack(5, kT0 + 6, 5)), O::kAfterClose);
  EXPECT_EQ(ctr().closes(CloseReason::kFin), 1u);
  EXPECT_EQ(rec_.fins, 2u);
  EXPECT_EQ(rec_.closes, 1u);
  EXPECT_EQ(r_->live_flows(), 0u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, FinBeforeMissingDataWaitsForIt) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(0, "abc", kT0 + 1)), O::kInOrder);
  EXPECT_EQ(feed(c.c_data(6, "ghi", kT0 + 2)), O::kBuffered);
  EXPECT_EQ(feed(c.c_fin(9, kT0 + 3)), O::kNoPayload);
  EXPECT_EQ(rec_.fins, 0u);
  EXPECT_EQ(feed(c.c_data(3, "def", kT0 + 4)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kC2S), "abcdefghi<fin>");
  EXPECT_EQ(feed(c.c_data(9, "zz", kT0 + 5)), O::kDataAfterFin);
  EXPECT_EQ(feed(c.c_data(8, "iZ", kT0 + 6)), O::kRetransmission);  // trimmed at the FIN: "i" is old
  EXPECT_EQ(rec_.text(1, kC2S), "abcdefghi<fin>");
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, AckPastPendingFinDeclaresTheHoleAndDeliversFin) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(0, "abc", kT0 + 1)), O::kInOrder);
  EXPECT_EQ(feed(c.c_fin(8, kT0 + 2)), O::kNoPayload);        // [3,8) never seen
  EXPECT_EQ(feed(c.s_fin(0, kT0 + 3, 9)), O::kNoPayload);     // acks the client's FIN
  EXPECT_EQ(rec_.text(1, kC2S), "abc<gap 5><fin>");
  EXPECT_EQ(rec_.text(1, kS2C), "<fin>");
  EXPECT_EQ(ctr().closes(CloseReason::kFin), 1u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, MidStreamPickupStartsAtFirstDataAndHigherPortIsClient) {
  TcpConn c = default_conn();  // client 51234, server 3306; no handshake seen
  TestPacket s1 = tcp_packet(c.server, c.client, tcp_flag::kAck | tcp_flag::kPsh, 777777, 123, "greeting", kT0);
  EXPECT_EQ(feed(s1), O::kInOrder);
  Flow* f = r_->table().find(make_flow_key(s1.parsed)).flow;
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->client_port(), 51234);
  EXPECT_EQ(f->state, FlowState::kEstablished);
  EXPECT_TRUE(r_->stream(*f, kS2C).picked_up);
  EXPECT_FALSE(r_->stream(*f, kC2S).seq_known);
  EXPECT_EQ(feed(tcp_packet(c.client, c.server, tcp_flag::kAck, 123, 777785, "", kT0 + 1)), O::kNoPayload);
  EXPECT_FALSE(r_->stream(*f, kC2S).seq_known);  // a bare ACK does not start a stream
  EXPECT_EQ(feed(tcp_packet(c.client, c.server, tcp_flag::kAck, 123, 777785, "login", kT0 + 2)), O::kInOrder);
  EXPECT_EQ(feed(tcp_packet(c.server, c.client, tcp_flag::kAck, 777770, 128, "xxxxxxx", kT0 + 3)),
            O::kRetransmission);  // before the pickup point: old data
  EXPECT_EQ(feed(tcp_packet(c.server, c.client, tcp_flag::kAck, 777785, 128, "ok", kT0 + 4)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kS2C), "greetingok");
  EXPECT_EQ(rec_.text(1, kC2S), "login");
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, ClientChoiceSynBeatsPortOrderAndSynAckAloneStillTells) {
  // Client uses a low port talking to a high server port.
  TcpConn c{{ipv4(10, 0, 0, 9), 1000}, {ipv4(10, 0, 0, 8), 8080}, 100, 900};
  EXPECT_EQ(feed(c.syn(kT0)), O::kNoPayload);
  EXPECT_EQ(flow_of(c)->client_port(), 1000);

  // Missed SYN: the SYN-ACK receiver is the client, and its ISN comes from the ack.
  TcpConn d{{ipv4(10, 0, 1, 9), 1001}, {ipv4(10, 0, 1, 8), 8081}, 300, 700};
  EXPECT_EQ(feed(d.syn_ack(kT0 + 1)), O::kNoPayload);
  Flow* f = flow_of(d);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->client_port(), 1001);
  EXPECT_EQ(f->state, FlowState::kSynReceived);
  EXPECT_EQ(feed(d.ack(kT0 + 2)), O::kNoPayload);
  EXPECT_EQ(f->state, FlowState::kEstablished);
  EXPECT_EQ(feed(d.c_data(0, "x", kT0 + 3)), O::kInOrder);
  EXPECT_FALSE(r_->stream(*f, kC2S).picked_up);
  EXPECT_EQ(rec_.text(f->serial, kC2S), "x");

  // No handshake, equal ports: the sender of the first packet is the client.
  Endpoint a{ipv4(10, 0, 2, 1), 7000}, b{ipv4(10, 0, 2, 2), 7000};
  TestPacket p = tcp_packet(b, a, tcp_flag::kAck, 5, 5, "hi", kT0 + 4);
  EXPECT_EQ(feed(p), O::kInOrder);
  Flow* g = r_->table().find(make_flow_key(p.parsed)).flow;
  EXPECT_EQ(g->client_addr().bytes[3], 2);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, WorkerMemoryCapDropsOutOfOrderDataAndRecovers) {
  ReassemblerConfig cfg = test_config();
  cfg.reassembly.memory_cap_bytes = 4 * kChunk;
  make(cfg);
  TcpConn a = default_conn();
  TcpConn b{{ipv4(10, 0, 0, 3), 40000}, {ipv4(10, 0, 0, 1), 3306}, 77, 88};
  handshake(a, kT0);
  handshake(b, kT0);
  EXPECT_EQ(feed(a.c_data(10, "1111111111", kT0 + 1)), O::kBuffered);
  EXPECT_EQ(feed(a.c_data(20, "2222222222", kT0 + 2)), O::kBuffered);
  EXPECT_EQ(feed(a.c_data(30, "3333333333", kT0 + 3)), O::kBuffered);
  EXPECT_EQ(feed(b.c_data(10, "bbbbbbbbbb", kT0 + 4)), O::kBuffered);
  EXPECT_EQ(r_->pool().available(), 0u);
  EXPECT_EQ(feed(b.c_data(20, "cccccccccc", kT0 + 5)), O::kDroppedMemory);
  EXPECT_EQ(ctr().bytes_dropped_memory, 10u);
  EXPECT_EQ(ctr().chunks_in_use, 4u);
  EXPECT_EQ(ctr().chunks_high_water, 4u);
  // Flow a fills its hole: its chunks return to the pool.
  EXPECT_EQ(feed(a.c_data(0, "0000000000", kT0 + 6)), O::kInOrder);
  EXPECT_EQ(ctr().chunks_in_use, 1u);
  // The sender retransmits what was dropped; now it fits.
  EXPECT_EQ(feed(b.c_data(20, "cccccccccc", kT0 + 7)), O::kBuffered);
  EXPECT_EQ(feed(b.c_data(0, "aaaaaaaaaa", kT0 + 8)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kC2S), "0000000000111111111122222222223333333333");
  EXPECT_EQ(rec_.text(2, kC2S), "aaaaaaaaaabbbbbbbbbbcccccccccc");
  EXPECT_EQ(out(O::kDroppedMemory), 1u);
  EXPECT_EQ(ctr().chunks_in_use, 0u);
  EXPECT_EQ(ctr().chunks_high_water, 4u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, PerFlowLimitGivesUpOldestHole) {
  ReassemblerConfig cfg = test_config();
  cfg.reassembly.max_buffer_per_flow = 2 * kChunk;
  make(cfg);
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(10, "bbbbb", kT0 + 1)), O::kBuffered);
  EXPECT_EQ(feed(c.c_data(20, "ccccc", kT0 + 2)), O::kBuffered);
  // A third piece would exceed 2 chunks: [0,10) is declared lost, "bbbbb" flows.
  EXPECT_EQ(feed(c.c_data(30, "ddddd", kT0 + 3)), O::kBuffered);
  EXPECT_EQ(rec_.text(1, kC2S), "<gap 10>bbbbb");
  EXPECT_EQ(ctr().gaps(GapReason::kFlowLimit), 1u);
  EXPECT_EQ(ctr().gap_bytes_of(GapReason::kFlowLimit), 10u);
  EXPECT_EQ(ctr().flow_limit_hits, 1u);
  EXPECT_EQ(r_->flow_buffered_chunks(*flow_of(c)), 2u);
  EXPECT_EQ(feed(c.c_data(15, "xxxxx", kT0 + 4)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kC2S), "<gap 10>bbbbbxxxxxccccc");
  r_->finish(kT0 + 5);
  EXPECT_EQ(rec_.text(1, kC2S), "<gap 10>bbbbbxxxxxccccc<gap 5>ddddd");
  EXPECT_EQ(ctr().gaps(GapReason::kClose), 1u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, SegmentLargerThanPerFlowLimitSkipsToItself) {
  ReassemblerConfig cfg = test_config();
  cfg.reassembly.max_buffer_per_flow = 2 * kChunk;
  make(cfg);
  TcpConn c = default_conn();
  handshake(c, kT0);
  const std::string big(5000, 'Q');  // needs 3 chunks > limit of 2
  EXPECT_EQ(feed(c.c_data(100, big, kT0 + 1)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kC2S), "<gap 100>" + big);
  EXPECT_EQ(ctr().chunks_high_water, 0u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, ZeroPerFlowBufferMeansEveryHoleIsAGapAtOnce) {
  ReassemblerConfig cfg = test_config();
  cfg.reassembly.max_buffer_per_flow = 0;
  make(cfg);
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(0, "ab", kT0 + 1)), O::kInOrder);
  EXPECT_EQ(feed(c.c_data(5, "fg", kT0 + 2)), O::kInOrder);
  EXPECT_EQ(feed(c.c_data(2, "cde", kT0 + 3)), O::kRetransmission);
  EXPECT_EQ(rec_.text(1, kC2S), "ab<gap 3>fg");
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, IdleTimeoutFlushesBufferedDataWithGap) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(0, "a", kT0 + 1 * kSec)), O::kInOrder);
  EXPECT_EQ(feed(c.c_data(10, "zz", kT0 + 2 * kSec)), O::kBuffered);
  r_->advance_time(kT0 + 62 * kSec - 1);  // established timeout 60 s after the last packet
  EXPECT_EQ(rec_.closes, 0u);
  r_->advance_time(kT0 + 62 * kSec);
  EXPECT_EQ(rec_.closes, 1u);
  EXPECT_EQ(rec_.close_reasons[1], CloseReason::kIdleTimeout);
  EXPECT_EQ(rec_.text(1, kC2S), "a<gap 9>zz");
  EXPECT_EQ(ctr().closes(CloseReason::kIdleTimeout), 1u);
  EXPECT_EQ(ctr().gap_bytes_of(GapReason::kClose), 9u);
  EXPECT_EQ(r_->table().size(), 0u);
  EXPECT_EQ(r_->table_counters().expired, 1u);
  EXPECT_EQ(ctr().chunks_in_use, 0u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, EachClassUsesItsOwnTimeoutAndPacketsDriveTheTimer) {
  TcpConn opening{{ipv4(10, 0, 0, 2), 50001}, {ipv4(10, 0, 0, 1), 80}, 1, 2};
  TcpConn est{{ipv4(10, 0, 0, 2), 50002}, {ipv4(10, 0, 0, 1), 80}, 1, 2};
  TcpConn closing{{ipv4(10, 0, 0, 2), 50003}, {ipv4(10, 0, 0, 1), 80}, 1, 2};
  Endpoint dns_client{ipv4(10, 0, 0, 2), 40000}, dns{ipv4(10, 0, 0, 53), 53};
  EXPECT_EQ(feed(opening.syn(kT0)), O::kNoPayload);                     // serial 1, 5 s
  handshake(est, kT0);                                                  // serial 2
  EXPECT_EQ(feed(est.c_data(0, "x", kT0)), O::kInOrder);                // 60 s
  handshake(closing, kT0);                                              // serial 3
  EXPECT_EQ(feed(closing.c_fin(0, kT0)), O::kNoPayload);                // 10 s
  EXPECT_EQ(feed(udp_packet(dns_client, dns, "q", kT0)), O::kDatagram);  // serial 4, 30 s

  // A packet of an unrelated UDP flow carries time forward and runs the timers.
  Endpoint other{ipv4(10, 0, 0, 7), 41000};
  EXPECT_EQ(feed(udp_packet(other, dns, "tick", kT0 + 5 * kSec)), O::kDatagram);
  EXPECT_EQ(rec_.closes, 1u);
  EXPECT_EQ(rec_.close_reasons[1], CloseReason::kIdleTimeout);
  // The handshakes moved table time to kT0 + 2 ns: later packets stamped kT0
  // count as active at kT0 + 2 (time never runs backwards inside the table).
  r_->advance_time(kT0 + 10 * kSec + 1);
  EXPECT_EQ(rec_.closes, 1u);
  r_->advance_time(kT0 + 10 * kSec + 2);
  EXPECT_EQ(rec_.closes, 2u);
  EXPECT_EQ(rec_.close_reasons[3], CloseReason::kIdleTimeout);
  EXPECT_EQ(rec_.text(3, kC2S), "<fin>");
  r_->advance_time(kT0 + 30 * kSec + 2);
  EXPECT_EQ(rec_.closes, 3u);
  EXPECT_EQ(rec_.close_reasons[4], CloseReason::kIdleTimeout);
  r_->advance_time(kT0 + 35 * kSec);  // the "tick" flow (serial 5): UDP, 30 s after +5 s
  EXPECT_EQ(rec_.closes, 4u);
  EXPECT_EQ(rec_.close_reasons[5], CloseReason::kIdleTimeout);
  r_->advance_time(kT0 + 60 * kSec + 1);
  EXPECT_EQ(rec_.closes, 4u);
  r_->advance_time(kT0 + 60 * kSec + 2);
  EXPECT_EQ(rec_.closes, 5u);
  EXPECT_EQ(rec_.close_reasons[2], CloseReason::kIdleTimeout);
  EXPECT_EQ(ctr().closes(CloseReason::kIdleTimeout), 5u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, TableFullRefusesThenEvictsIdleFlow) {
  ReassemblerConfig cfg = test_config();
  cfg.table.capacity = 2;
  make(cfg);
  TcpConn a{{ipv4(10, 0, 0, 2), 50001}, {ipv4(10, 0, 0, 1), 80}, 1, 2};
  TcpConn b{{ipv4(10, 0, 0, 2), 50002}, {ipv4(10, 0, 0, 1), 80}, 1, 2};
  TcpConn c{{ipv4(10, 0, 0, 2), 50003}, {ipv4(10, 0, 0, 1), 80}, 1, 2};
  handshake(a, kT0);
  EXPECT_EQ(feed(a.c_data(5, "tail", kT0 + 3)), O::kBuffered);
  handshake(b, kT0 + kSec);
  EXPECT_EQ(feed(c.syn(kT0 + 2 * kSec)), O::kFlowRefused);   // a idle 2 s < 4 s
  EXPECT_EQ(feed(c.c_data(0, "x", kT0 + 3 * kSec)), O::kFlowRefused);
  EXPECT_EQ(r_->table_counters().refused, 2u);
  EXPECT_EQ(feed(c.syn(kT0 + 4 * kSec + 3)), O::kNoPayload);  // a idle 4 s: evicted
  EXPECT_EQ(rec_.close_reasons[1], CloseReason::kEvicted);
  EXPECT_EQ(rec_.text(1, kC2S), "<gap 5>tail");  // its buffered bytes were handed over first
  EXPECT_EQ(ctr().closes(CloseReason::kEvicted), 1u);
  EXPECT_EQ(r_->table_counters().evicted_live, 1u);
  EXPECT_EQ(out(O::kFlowRefused), 2u);
  EXPECT_EQ(ctr().flows_created, 3u);
  EXPECT_EQ(r_->live_flows(), 2u);
  EXPECT_EQ(ctr().chunks_in_use, 0u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, UdpDatagramsAreDeliveredOnePerChunk) {
  Endpoint client{ipv4(10, 0, 0, 2), 40000}, dns{ipv4(10, 0, 0, 53), 53};
  // The response is seen first (capture started late): the higher port is still the client.
  EXPECT_EQ(feed(udp_packet(dns, client, "answer0", kT0)), O::kDatagram);
  EXPECT_EQ(feed(udp_packet(client, dns, "query1", kT0 + 1)), O::kDatagram);
  EXPECT_EQ(feed(udp_packet(dns, client, "answer1", kT0 + 2)), O::kDatagram);
  EXPECT_EQ(feed(udp_packet(client, dns, "", kT0 + 3)), O::kNoPayload);
  auto data = rec_.of("data");
  ASSERT_EQ(data.size(), 3u);
  EXPECT_EQ(data[0].dir, kS2C);
  EXPECT_EQ(data[0].data, "answer0");
  EXPECT_EQ(data[1].dir, kC2S);
  EXPECT_EQ(data[1].data, "query1");
  EXPECT_EQ(data[2].data, "answer1");
  Flow* f = r_->table().find(make_flow_key(udp_packet(client, dns, "", 0).parsed)).flow;
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->client_port(), 40000);
  EXPECT_EQ(f->timeout_class, TimeoutClass::kUdp);
  EXPECT_EQ(f->dir_stats(kC2S).packets, 2u);
  EXPECT_EQ(ctr().bytes_datagram, 20u);
  EXPECT_EQ(out(O::kDatagram), 3u);
  r_->advance_time(kT0 + 3 + 30 * kSec);
  EXPECT_EQ(rec_.close_reasons[1], CloseReason::kIdleTimeout);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, TruncatedPayloadReportsTheMissingTail) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  TestPacket p = c.c_data(0, "0123456789", kT0 + 1);
  p.parsed.flags = packet_flag::kPayloadTruncated;
  p.parsed.l4_len_claimed = 30;
  EXPECT_EQ(feed(p), O::kInOrder);
  EXPECT_EQ(feed(c.c_data(30, "next", kT0 + 2)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kC2S), "0123456789<gap 20>next");
  EXPECT_EQ(ctr().gap_bytes_of(GapReason::kTruncated), 20u);

  Endpoint client{ipv4(10, 0, 0, 2), 40000}, dns{ipv4(10, 0, 0, 53), 53};
  TestPacket u = udp_packet(client, dns, "abc", kT0 + 3);
  u.parsed.flags = packet_flag::kPayloadTruncated;
  u.parsed.l4_len_claimed = 1400;
  EXPECT_EQ(feed(u), O::kDatagram);
  EXPECT_EQ(rec_.text(2, kC2S), "<gap 1397>abc");  // a datagram's gap comes first: its decoder knows it is cut
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, NewSynReusesPortsAfterCloseOrReplacesStaleFlow) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(0, "one", kT0 + 1)), O::kInOrder);
  EXPECT_EQ(feed(c.c_rst(3, "", kT0 + 2)), O::kRst);
  // Same 4-tuple, new ISN, right after the RST: a new flow, not after-close.
  TcpConn c2 = c;
  c2.c_isn = 900000;
  c2.s_isn = 700000;
  handshake(c2, kT0 + 3);
  EXPECT_EQ(feed(c2.c_data(0, "two", kT0 + 4)), O::kInOrder);
  EXPECT_EQ(rec_.text(2, kC2S), "two");
  EXPECT_EQ(flow_of(c)->serial, 2u);
  // A SYN with yet another ISN while flow 2 is open: flow 2 is replaced.
  TcpConn c3 = c;
  c3.c_isn = 123;
  EXPECT_EQ(feed(c3.syn(kT0 + 5)), O::kNoPayload);
  EXPECT_EQ(rec_.close_reasons[2], CloseReason::kReused);
  EXPECT_EQ(flow_of(c)->serial, 3u);
  // A retransmitted SYN (same ISN) changes nothing.
  EXPECT_EQ(feed(c3.syn(kT0 + 6)), O::kNoPayload);
  EXPECT_EQ(flow_of(c)->serial, 3u);
  EXPECT_EQ(ctr().closes(CloseReason::kReused), 1u);
  EXPECT_EQ(ctr().flows_created, 3u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, SynWithDataDeliversItAfterTheSyn) {
  TcpConn c = default_conn();
  TestPacket syn = tcp_packet(c.client, c.server, tcp_flag::kSyn, c.c_isn, 0, "tfo", kT0);
  EXPECT_EQ(feed(syn), O::kInOrder);
  EXPECT_EQ(feed(c.syn_ack(kT0 + 1)), O::kNoPayload);
  EXPECT_EQ(feed(c.c_data(3, "more", kT0 + 2)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kC2S), "tfomore");
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, PacketsThatCannotStartAFlowAreCountedAsNoFlow) {
  TcpConn c = default_conn();
  EXPECT_EQ(feed(c.c_ack(0, kT0)), O::kNoFlow);
  EXPECT_EQ(feed(c.c_rst(0, "", kT0)), O::kNoFlow);
  EXPECT_EQ(feed(c.c_rst(0, "data", kT0)), O::kNoFlow);
  EXPECT_EQ(feed(c.c_fin(0, kT0)), O::kNoFlow);
  EXPECT_EQ(r_->table().size(), 0u);
  EXPECT_EQ(ctr().flows_created, 0u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, FragmentsMalformedAndOtherProtocolsAreCounted) {
  TcpConn c = default_conn();
  TestPacket frag = c.c_data(0, "x", kT0);
  frag.parsed.flags = packet_flag::kFragment;
  EXPECT_EQ(feed(frag), O::kFragment);
  TestPacket later = c.c_data(0, "x", kT0);
  later.parsed.flags = packet_flag::kFragment | packet_flag::kLaterFragment;
  EXPECT_EQ(feed(later), O::kFragment);
  TestPacket cut = c.c_data(0, "x", kT0);
  cut.parsed.flags = packet_flag::kL4Truncated;
  EXPECT_EQ(feed(cut), O::kMalformed);
  TestPacket badopt = c.c_data(0, "x", kT0);
  badopt.parsed.flags = packet_flag::kTcpOptionsBad;
  EXPECT_EQ(feed(badopt), O::kMalformed);
  TestPacket outside = c.c_data(0, "xyz", kT0);
  outside.parsed.payload_len = 500;  // claims more than the frame holds
  EXPECT_EQ(feed(outside), O::kMalformed);
  TestPacket icmp = c.c_data(0, "ping", kT0);
  icmp.parsed.l4_proto = 1;
  EXPECT_EQ(feed(icmp), O::kUnsupportedProto);
  EXPECT_EQ(r_->table().size(), 0u);
  EXPECT_EQ(out(O::kFragment), 2u);
  EXPECT_EQ(out(O::kMalformed), 3u);
  EXPECT_EQ(out(O::kUnsupportedProto), 1u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, SeqJumpsOf2To31AndHugeWindowsAreBounded) {
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(0, "abc", kT0 + 1)), O::kInOrder);
  EXPECT_EQ(feed(c.c_data(0x80000000u, "evil", kT0 + 2)), O::kOutOfWindow);
  EXPECT_EQ(feed(c.c_data(0x7FFFFFFFu, "evil", kT0 + 3)), O::kOutOfWindow);
  EXPECT_EQ(feed(c.c_data(0xC0000000u, "evil", kT0 + 4)), O::kOutOfWindow);  // 1 GiB behind
  // Just inside the 1 GiB window: buffered (one chunk), bounded by the caps.
  EXPECT_EQ(feed(c.c_data((1u << 30) - 10, "far", kT0 + 5)), O::kBuffered);
  EXPECT_EQ(feed(c.c_data((1u << 30) + 10, "farther", kT0 + 6)), O::kOutOfWindow);
  EXPECT_EQ(ctr().chunks_in_use, 1u);
  EXPECT_EQ(feed(c.c_data(3, "def", kT0 + 7)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kC2S), "abcdef");
  EXPECT_EQ(out(O::kOutOfWindow), 4u);
  // An ACK 2^31 ahead is not believed either.
  EXPECT_EQ(feed(c.s_ack(0x80000000u, kT0 + 8)), O::kNoPayload);
  EXPECT_EQ(rec_.gaps, 0u);
  r_->finish(kT0 + 9);
  EXPECT_EQ(rec_.text(1, kC2S), "abcdef<gap " + std::to_string((1u << 30) - 16) + ">far");
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, RunOfOutOfWindowSegmentsResyncsTheStream) {
  ReassemblerConfig cfg = test_config();
  cfg.reassembly.resync_after = 3;
  make(cfg);
  TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(0, "abc", kT0 + 1)), O::kInOrder);
  EXPECT_EQ(feed(c.c_data(10, "kk", kT0 + 2)), O::kBuffered);
  const uint32_t far = 0x90000000u;  // the capture lost track: the stream is elsewhere now
  EXPECT_EQ(feed(c.c_data(far, "AA", kT0 + 3)), O::kOutOfWindow);
  EXPECT_EQ(feed(c.c_data(far + 2, "BB", kT0 + 4)), O::kOutOfWindow);
  EXPECT_EQ(feed(c.c_data(far + 4, "CC", kT0 + 5)), O::kInOrder);  // third: re-based here
  EXPECT_EQ(feed(c.c_data(far + 6, "DD", kT0 + 6)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kC2S), "abc<gap 7>kk<gap " + std::to_string(far + 4 - 12) + ">CCDD");
  EXPECT_EQ(ctr().gaps(GapReason::kResync), 2u);
  EXPECT_EQ(ctr().chunks_in_use, 0u);
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, VlanSeparatesFlowsUnlessConfiguredOut) {
  TcpConn c = default_conn();
  TestPacket req = c.c_data(0, "req", kT0);
  req.parsed.vlan = 10;
  TestPacket resp = c.s_data(0, "resp", kT0 + 1, 3);
  resp.parsed.vlan = 20;  // routed SPAN: the answer comes back tagged differently
  EXPECT_EQ(feed(req), O::kInOrder);
  EXPECT_EQ(feed(resp), O::kInOrder);
  EXPECT_EQ(ctr().flows_created, 2u);
  EXPECT_EQ(rec_.text(1, kC2S), "req");
  EXPECT_EQ(rec_.text(2, kS2C), "resp");

  ReassemblerConfig cfg = test_config();
  cfg.table.include_vlan = false;
  make(cfg);
  EXPECT_EQ(feed(req), O::kInOrder);
  EXPECT_EQ(feed(resp), O::kInOrder);
  EXPECT_EQ(ctr().flows_created, 1u);
  EXPECT_EQ(rec_.text(1, kC2S), "req");
  EXPECT_EQ(rec_.text(1, kS2C), "resp");
  expect_ledger(*r_, fed_);
}

TEST_F(ReassemblyTest, ValidateRejectsBadReassemblyConfig) {
  ReassemblerConfig c = test_config();
  EXPECT_EQ(validate(c), "");
  c.reassembly.chunk_size = 10;
  EXPECT_NE(validate(c), "");
  c = test_config();
  c.reassembly.max_window = 0x80000000u;
  EXPECT_NE(validate(c), "");
  c = test_config();
  c.reassembly.max_buffer_per_flow = 100;
  EXPECT_NE(validate(c), "");
  c = test_config();
  c.table.capacity = 0;
  EXPECT_NE(validate(c), "");
}

TEST(ReassemblyDescribeTest, EveryOutcomeHasANameAndHelpText) {
  for (size_t i = 0; i < kSegmentOutcomeCount; ++i) {
    auto o = static_cast<SegmentOutcome>(i);
    EXPECT_NE(to_string(o), "unknown") << i;
    EXPECT_FALSE(describe(o).empty()) << i;
  }
  for (size_t i = 0; i < kGapReasonCount; ++i) EXPECT_NE(to_string(static_cast<GapReason>(i)), "unknown");
  for (size_t i = 0; i < kCloseReasonCount; ++i) EXPECT_NE(to_string(static_cast<CloseReason>(i)), "unknown");
}

TEST(SeqCompareTest, WrapSafe) {
  EXPECT_TRUE(seq_lt(0xFFFFFFF0u, 0x10u));
  EXPECT_TRUE(seq_gt(0x10u, 0xFFFFFFF0u));
  EXPECT_TRUE(seq_leq(5u, 5u));
  EXPECT_FALSE(seq_lt(5u, 5u));
  EXPECT_EQ(seq_diff(0x10u, 0xFFFFFFF0u), 0x20);
}

}  // namespace
}  // namespace spanfeed
