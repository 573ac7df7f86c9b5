// Unit tests for what TCP reassembly loses or doubts: holes given up at the flow limit, overlapping segments
// whose bytes differ (overlap_conflicts, on_overlap_conflict). Runs in the test thread; allocates freely.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "flow_test_util.h"
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
constexpr uint64_t kSec = kNsPerSec;
constexpr uint64_t kT0 = 1000 * kSec;
constexpr uint32_t kChunk = 2048;

ReassemblerConfig loss_config() {
  ReassemblerConfig c;
  c.table.capacity = 64;
  c.reassembly.chunk_size = kChunk;
  c.reassembly.memory_cap_bytes = 64 * kChunk;
  c.reassembly.max_buffer_per_flow = 16 * kChunk;  // 16 pieces per flow
  return c;
}

class ReassemblyLossTest : public flowtest::ReassemblerTest {
 protected:
  ReassemblyLossTest() : ReassemblerTest(loss_config()) {}
};

// One-byte segments in reverse order: the 17th cannot be buffered (16 pieces per flow), so the hole before it
// is given up as one gap and everything buffered flows; the earlier bytes that come after are duplicates of
// bytes already declared lost. Every byte of the stream is either delivered or in the gap.
TEST_F(ReassemblyLossTest, ReverseOneByteSegmentsPastTheFlowLimitBecomeOneGap) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  const std::string msg = "0123456789abcdefghijklmnopqrstuvwxyzABCD";  // 40 bytes
  for (uint32_t i = msg.size(); i-- > 0;) {
    const O o = feed(c.c_data(i, msg.substr(i, 1), kT0 + 10 + (msg.size() - i)));
    if (i >= 24) EXPECT_EQ(o, O::kBuffered) << i;
    if (i == 23) EXPECT_EQ(o, O::kInOrder);
    if (i < 23) EXPECT_EQ(o, O::kRetransmission) << i;
  }
  EXPECT_EQ(rec_.text(1, kC2S), "<gap 23>" + msg.substr(23));
  EXPECT_EQ(ctr().flow_limit_hits, 1u);
  EXPECT_EQ(ctr().gaps(GapReason::kFlowLimit), 1u);
  EXPECT_EQ(ctr().gap_bytes_of(GapReason::kFlowLimit), 23u);
  EXPECT_EQ(ctr().bytes_in_order + ctr().bytes_from_buffer + ctr().gap_bytes_of(GapReason::kFlowLimit), 40u);
  EXPECT_EQ(ctr().bytes_duplicate, 23u);
  EXPECT_EQ(ctr().chunks_in_use, 0u);
  expect_ledger(*r_, fed_);
}

// A segment overlapping buffered bytes with other content: the buffered copy wins, the conflict is counted
// once and reported right before the bytes are delivered.
TEST_F(ReassemblyLossTest, OverlapThatDiffersFromBufferedBytesIsCountedAndReported) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(10, "XXXX", kT0 + 10)), O::kBuffered);
  EXPECT_EQ(feed(c.c_data(12, "XXXX", kT0 + 11)), O::kOverlapTrimmed);  // same bytes where they overlap
  EXPECT_EQ(ctr().overlap_conflicts, 0u);
  EXPECT_EQ(feed(c.c_data(10, "YYYYYY", kT0 + 12)), O::kRetransmission);  // differs: counted
  EXPECT_EQ(ctr().overlap_conflicts, 1u);
  EXPECT_EQ(rec_.conflicts, 0u);  // reported with the bytes, not before
  EXPECT_EQ(feed(c.c_data(0, "0123456789", kT0 + 13)), O::kInOrder);
  EXPECT_EQ(rec_.text(1, kC2S), "0123456789XXXXXX");
  EXPECT_EQ(rec_.conflicts, 2u);  // both buffered pieces it overlapped: [10,14) and [14,16)
  // The report comes right before the data of the piece that conflicted.
  const auto& ev = rec_.events;
  size_t k = 0;
  while (k < ev.size() && ev[k].kind != "conflict") ++k;
  ASSERT_LT(k + 1, ev.size());
  EXPECT_EQ(ev[k].dir, kC2S);
  EXPECT_EQ(ev[k + 1].kind, "data");
  EXPECT_EQ(ev[k + 1].data, "XXXX");
  expect_ledger(*r_, fed_);
}

// An in-order segment that runs into buffered bytes with other content: compared before the piece flows.
TEST_F(ReassemblyLossTest, InOrderSegmentDifferingFromBufferedBytesIsReported) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(5, "PPPPP", kT0 + 10)), O::kBuffered);
  EXPECT_EQ(feed(c.c_data(0, "aaaaaaaaaaaa", kT0 + 11)), O::kOverlapTrimmed);
  EXPECT_EQ(rec_.text(1, kC2S), "aaaaaPPPPPaa");
  EXPECT_EQ(ctr().overlap_conflicts, 1u);
  EXPECT_EQ(rec_.conflicts, 1u);
  // The same overlap with the same bytes is no conflict.
  EXPECT_EQ(feed(c.c_data(20, "QQ", kT0 + 12)), O::kBuffered);
  EXPECT_EQ(feed(c.c_data(12, "bbbbbbbbQQb", kT0 + 13)), O::kOverlapTrimmed);
  EXPECT_EQ(rec_.text(1, kC2S), "aaaaaPPPPPaabbbbbbbbQQb");
  EXPECT_EQ(ctr().overlap_conflicts, 1u);
  EXPECT_EQ(rec_.conflicts, 1u);
  expect_ledger(*r_, fed_);
}

// Bytes already delivered are not kept: a retransmission of them with other content is not compared (the
// documented limit); it stays a plain retransmission.
TEST_F(ReassemblyLossTest, RetransmissionOfDeliveredBytesIsNotCompared) {
  const TcpConn c = default_conn();
  handshake(c, kT0);
  EXPECT_EQ(feed(c.c_data(0, "abcdef", kT0 + 10)), O::kInOrder);
  EXPECT_EQ(feed(c.c_data(0, "ABCDEF", kT0 + 11)), O::kRetransmission);
  EXPECT_EQ(rec_.text(1, kC2S), "abcdef");
  EXPECT_EQ(ctr().overlap_conflicts, 0u);
  EXPECT_EQ(rec_.conflicts, 0u);
  expect_ledger(*r_, fed_);
}

}  // namespace
}  // namespace spanfeed
