// Micro-benchmarks: what the worker pays per packet for mirror duplicates (the duplicate
// filter) and for ordering the two directions by their ACKs (the ack hold).
// Runs in the benchmark thread; allocates only while setting up each benchmark.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "spanfeed/duplicate_filter.h"
#include "spanfeed/tcp_reassembly.h"

namespace spanfeed {
namespace {

constexpr uint16_t kHeaderBytes = 54;
constexpr uint16_t kPayload = 200;  // a small request or response
constexpr uint64_t kT0 = 1'000'000'000'000ull;

class SinkConsumer : public StreamConsumer {
 public:
  void on_data(const Flow&, Direction, std::span<const std::byte> data, uint64_t, uint64_t) override {
    bytes += data.size();
    checksum += static_cast<uint8_t>(data.front());
  }
  void on_gap(const Flow&, Direction, uint64_t missing, GapReason, uint64_t) override { gaps += missing; }
  uint64_t bytes = 0, checksum = 0, gaps = 0;
};

IpAddr ip_of(uint32_t i) {
  IpAddr a{};
  a.bytes[0] = 10;
  a.bytes[1] = static_cast<uint8_t>(i >> 16);
  a.bytes[2] = static_cast<uint8_t>(i >> 8);
  a.bytes[3] = static_cast<uint8_t>(i);
  return a;
}

ParsedPacket packet(uint32_t flow, bool from_client) {
  ParsedPacket p{};
  p.src = from_client ? ip_of(flow) : ip_of(0xFFFFFF);
  p.dst = from_client ? ip_of(0xFFFFFF) : ip_of(flow);
  p.src_port = from_client ? static_cast<uint16_t>(1024 + flow % 60000) : 3306;
  p.dst_port = from_client ? 3306 : static_cast<uint16_t>(1024 + flow % 60000);
  p.ip_version = 4;
  p.l4_proto = kProtoTcp;
  p.tcp_flags = tcp_flag::kAck | tcp_flag::kPsh;
  p.l3_offset = 14;
  p.l4_offset = 34;
  p.payload_offset = kHeaderBytes;
  p.payload_len = kPayload;
  p.l4_len_claimed = kPayload;
  p.ip_payload_len = kPayload + 20;
  return p;
}

// The filter alone: every packet new (a miss and an insert), or every packet
// followed by its copy (half hits). 100k distinct packets in flight.
void BM_DuplicateFilter(benchmark::State& state) {
  const bool copies = state.range(0) != 0;
  DuplicateFilter f(1'000'000, 16384, 7);
  std::vector<std::byte> frame(kHeaderBytes + kPayload, std::byte{3});
  ParsedPacket p = packet(1, true);
  uint64_t ts = kT0, n = 0, dups = 0;
  for (auto _ : state) {
    if (!copies || (n & 1) == 0) {
      p.tcp_seq += kPayload;
      ts += 100;
    }
    dups += f.seen(frame, p, ts);
    ++n;
  }
  state.counters["dup_pct"] = 100.0 * static_cast<double>(dups) / static_cast<double>(std::max<uint64_t>(n, 1));
  state.SetItemsProcessed(static_cast<int64_t>(n));
}
BENCHMARK(BM_DuplicateFilter)->Arg(0)->Arg(1)->ArgNames({"copies"});

// Request/response pairs on `flows` established connections, round-robin:
// range(1) 0 = in capture order, 1 = each response captured before its
// request; range(2) = ack hold on; range(3) = dedup on; range(4) = every
// packet twice. Per packet cost of the whole reassembler.
void BM_Exchange(benchmark::State& state) {
  const auto flows = static_cast<uint32_t>(state.range(0));
  const bool swapped = state.range(1) != 0;
  ReassemblerConfig cfg;
  cfg.table.capacity = flows * 2;
  cfg.reassembly.memory_cap_bytes = 64ull << 20;
  cfg.reassembly.ack_hold_ns = state.range(2) != 0 ? 10'000'000 : 0;
  cfg.reassembly.dedup_window_ns = state.range(3) != 0 ? 1'000'000 : 0;
  const bool doubled = state.range(4) != 0;
  SinkConsumer sink;
  auto r = std::make_unique<Reassembler>(cfg, sink);
  std::vector<std::byte> frame(kHeaderBytes + kPayload);
  for (size_t i = 0; i < frame.size(); ++i) frame[i] = static_cast<std::byte>(i * 7);
  std::vector<ParsedPacket> c(flows), s(flows);
  std::vector<uint32_t> cseq(flows), sseq(flows);
  for (uint32_t f = 0; f < flows; ++f) {
    c[f] = packet(f, true);
    s[f] = packet(f, false);
    cseq[f] = f * 2654435761u;
    sseq[f] = f * 40503u + 7;
  }
  uint64_t ts = kT0, packets = 0;
  uint32_t f = 0;
  uint32_t step = 0;  // 0: first packet of the pair, 1: second
  for (auto _ : state) {
    const bool client = (step == 0) != swapped;
    ParsedPacket& p = client ? c[f] : s[f];
    p.tcp_seq = client ? cseq[f] : sseq[f];
    p.tcp_ack = client ? sseq[f] : cseq[f] + kPayload;  // the response acks the request
    if (!client) p.tcp_seq = sseq[f];
    ts += 1000;
    benchmark::DoNotOptimize(r->process(frame, p, ts));
    if (doubled) benchmark::DoNotOptimize(r->process(frame, p, ts + 1));
    packets += doubled ? 2 : 1;
    if (++step == 2) {
      step = 0;
      cseq[f] += kPayload;
      sseq[f] += kPayload;
      if (++f == flows) f = 0;
    }
  }
  const ReassemblerCounters& k = r->counters();
  state.counters["held_pct"] =
      100.0 * static_cast<double>(k.ack_held_segments) / static_cast<double>(std::max<uint64_t>(packets, 1));
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  if (sink.gaps != 0 || k.ack_hold_timeouts != 0 || k.get(SegmentOutcome::kFlowRefused) != 0) {
    state.SkipWithError("unexpected gaps, hold timeouts or refusals: the figure would be wrong");
  }
}
BENCHMARK(BM_Exchange)
    ->ArgNames({"flows", "swapped", "hold", "dedup", "doubled"})
    ->Args({1000, 0, 0, 0, 0})
    ->Args({1000, 0, 1, 0, 0})
    ->Args({1000, 1, 1, 0, 0})
    ->Args({1000, 1, 0, 0, 0})
    ->Args({1000, 0, 0, 1, 0})
    ->Args({1000, 0, 0, 1, 1})
    ->Args({1000, 1, 1, 1, 1});

}  // namespace
}  // namespace spanfeed

BENCHMARK_MAIN();
