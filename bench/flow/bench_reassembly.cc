// Micro-benchmarks: TCP reassembly throughput (in order, 10% reordered) and flow-table cost at 1M flows.
// Runs in the benchmark thread; allocates only while setting up each benchmark.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "spanfeed/flow_table.h"
#include "spanfeed/packet_handler.h"
#include "spanfeed/tcp_reassembly.h"

namespace spanfeed {
namespace {

constexpr uint16_t kHeaderBytes = 54;
constexpr uint16_t kMss = 1460;
constexpr uint64_t kT0 = 1'000'000'000'000ull;

// Touches every byte it is given so delivery cannot be optimised away.
class SinkConsumer : public StreamConsumer {
 public:
  void on_data(const Flow&, Direction, std::span<const std::byte> data, uint64_t, uint64_t) override {
    bytes += data.size();
    checksum += static_cast<uint8_t>(data.front()) + static_cast<uint8_t>(data.back());
  }
  void on_gap(const Flow&, Direction, uint64_t missing, GapReason, uint64_t) override { gaps += missing; }
  uint64_t bytes = 0;
  uint64_t checksum = 0;
  uint64_t gaps = 0;
};

IpAddr ip_of(uint32_t i) {
  IpAddr a{};
  a.bytes[0] = 10;
  a.bytes[1] = static_cast<uint8_t>(i >> 16);
  a.bytes[2] = static_cast<uint8_t>(i >> 8);
  a.bytes[3] = static_cast<uint8_t>(i);
  return a;
}

ParsedPacket client_packet(uint32_t i) {
  ParsedPacket p{};
  p.src = ip_of(i);
  p.dst = ip_of(0xFFFFFF);
  p.src_port = static_cast<uint16_t>(1024 + i % 60000);
  p.dst_port = 3306;
  p.ip_version = 4;
  p.l4_proto = kProtoTcp;
  p.tcp_flags = tcp_flag::kAck | tcp_flag::kPsh;
  p.payload_offset = kHeaderBytes;
  p.payload_len = kMss;
  p.l4_len_claimed = kMss;
  return p;
}

ReassemblerConfig bench_config(uint32_t flows) {
  ReassemblerConfig c;
  c.table.capacity = flows;
  c.reassembly.memory_cap_bytes = 64ull << 20;
  return c;
}

// Segments go in blocks of 10 per flow. With reordering, one adjacent pair
// per block is swapped (10% of segments arrive early and are buffered, the
// next one fills the hole and flushes them). The pair's position depends on
// the flow so flows do not all hold a chunk in the same round; position 0 is
// never swapped so a flow's first segment starts its stream.
constexpr uint32_t kBlock = 10;

uint32_t segment_index(uint64_t k, uint32_t flow, bool reorder) {
  const uint64_t block = k / kBlock;
  const uint32_t pos = static_cast<uint32_t>(k % kBlock);
  uint32_t seg = pos;
  if (reorder) {
    const uint32_t swap_at = 1 + flow % (kBlock - 2);  // pair (swap_at, swap_at + 1)
    if (pos == swap_at) seg = pos + 1;
    if (pos == swap_at + 1) seg = pos - 1;
  }
  return static_cast<uint32_t>(block * kBlock + seg);
}

// Round-robin over `flows` mid-stream TCP flows, one MSS segment each turn.
// The first round creates the flows (their inserts are part of the figure).
void run_reassembly(benchmark::State& state, bool reorder) {
  const auto flows = static_cast<uint32_t>(state.range(0));
  SinkConsumer sink;
  ReassemblerConfig cfg = bench_config(flows);
  // About a tenth of the flows hold one chunk at any time; leave room for all of them.
  cfg.reassembly.memory_cap_bytes = (64ull << 20) + uint64_t{flows} / 4 * 2048;
  auto r = std::make_unique<Reassembler>(cfg, sink);
  std::vector<std::byte> frame(kHeaderBytes + kMss);
  for (size_t i = 0; i < frame.size(); ++i) frame[i] = static_cast<std::byte>(i * 7);
  std::vector<ParsedPacket> pkts(flows);
  std::vector<uint32_t> base_seq(flows);
  std::vector<uint64_t> sent(flows, 0);
  for (uint32_t f = 0; f < flows; ++f) {
    pkts[f] = client_packet(f);
    base_seq[f] = f * 2654435761u;
  }
  uint64_t ts = kT0;
  uint32_t f = 0;
  uint64_t segments = 0;
  for (auto _ : state) {
    const uint64_t k = sent[f]++;
    pkts[f].tcp_seq = base_seq[f] + segment_index(k, f, reorder) * uint32_t{kMss};
    benchmark::DoNotOptimize(r->process(frame, pkts[f], ts += 1000));
    ++segments;
    if (++f == flows) f = 0;
  }
  const ReassemblerCounters& c = r->counters();
  state.counters["segments_per_s"] = benchmark::Counter(static_cast<double>(segments), benchmark::Counter::kIsRate);
  state.counters["buffered_pct"] =
      100.0 * static_cast<double>(c.get(SegmentOutcome::kBuffered)) / static_cast<double>(std::max<uint64_t>(segments, 1));
  state.counters["chunks_high_water"] = static_cast<double>(c.chunks_high_water);
  state.SetBytesProcessed(static_cast<int64_t>(sink.bytes));
  state.SetItemsProcessed(static_cast<int64_t>(segments));
  if (sink.gaps != 0 || c.get(SegmentOutcome::kDroppedMemory) != 0 || c.get(SegmentOutcome::kFlowRefused) != 0) {
    state.SkipWithError("unexpected gaps, drops or refusals: the figure would be wrong");
  }
}

void BM_ReassemblyInOrder(benchmark::State& state) { run_reassembly(state, false); }
void BM_ReassemblyReordered10Pct(benchmark::State& state) { run_reassembly(state, true); }
// Enough iterations for every flow to see several blocks (1M flows: 20 rounds).
BENCHMARK(BM_ReassemblyInOrder)->Arg(1)->Arg(1000)->Arg(100000)->Iterations(5'000'000);
BENCHMARK(BM_ReassemblyInOrder)->Arg(1 << 20)->Iterations(20 << 20);
BENCHMARK(BM_ReassemblyReordered10Pct)->Arg(1)->Arg(1000)->Arg(100000)->Iterations(5'000'000);
BENCHMARK(BM_ReassemblyReordered10Pct)->Arg(1 << 20)->Iterations(20 << 20);

constexpr uint32_t kMillion = 1'000'000;

std::vector<OrientedKey> make_keys(uint32_t n, uint32_t seed) {
  std::vector<OrientedKey> keys(n);
  for (uint32_t i = 0; i < n; ++i) {
    ParsedPacket p = client_packet(i ^ seed);
    p.src_port = static_cast<uint16_t>(1024 + (i * 7) % 60000);
    p.dst_port = static_cast<uint16_t>(80 + (i >> 24));
    keys[i] = make_flow_key(p);
  }
  return keys;
}

FlowTableConfig table_config(uint32_t n) {
  FlowTableConfig c;
  c.capacity = n;
  return c;
}

// Insert cost into a table that ends up holding 1M flows.
void BM_FlowTableInsert1M(benchmark::State& state) {
  const std::vector<OrientedKey> keys = make_keys(kMillion, 0);
  uint64_t inserted = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto t = std::make_unique<FlowTable>(table_config(kMillion));
    state.ResumeTiming();
    uint64_t ts = kT0;
    for (const OrientedKey& k : keys) benchmark::DoNotOptimize(t->insert(k, true, TimeoutClass::kTcpEstablished, ++ts));
    inserted += keys.size();
    state.PauseTiming();
    t.reset();
    state.ResumeTiming();
  }
  state.counters["inserts_per_s"] = benchmark::Counter(static_cast<double>(inserted), benchmark::Counter::kIsRate);
  state.counters["ns_per_insert"] = benchmark::Counter(static_cast<double>(inserted),
                                                       benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_FlowTableInsert1M)->Unit(benchmark::kMillisecond);

// Lookup (+ touch: what every packet costs) of random flows in a full 1M-flow table.
void run_lookup(benchmark::State& state, bool touch) {
  FlowTable t(table_config(kMillion));
  std::vector<OrientedKey> keys = make_keys(kMillion, 0);
  uint64_t ts = kT0;
  for (const OrientedKey& k : keys) t.insert(k, true, TimeoutClass::kTcpEstablished, ++ts);
  std::mt19937 rng(7);
  std::shuffle(keys.begin(), keys.end(), rng);
  size_t i = 0;
  uint64_t found = 0;
  for (auto _ : state) {
    FlowLookup lk = t.find(keys[i]);
    found += lk.flow != nullptr;
    if (touch) t.touch(*lk.flow, TimeoutClass::kTcpEstablished, ++ts);
    if (++i == keys.size()) i = 0;
  }
  state.counters["lookups_per_s"] = benchmark::Counter(static_cast<double>(found), benchmark::Counter::kIsRate);
  state.counters["longest_chain"] = t.longest_chain();
  if (found != static_cast<uint64_t>(state.iterations())) state.SkipWithError("lookup missed");
}
void BM_FlowTableLookup1M(benchmark::State& state) { run_lookup(state, false); }
void BM_FlowTableLookupTouch1M(benchmark::State& state) { run_lookup(state, true); }
BENCHMARK(BM_FlowTableLookup1M);
BENCHMARK(BM_FlowTableLookupTouch1M);

// Misses: a SYN flood's lookups of flows that do not exist.
void BM_FlowTableMiss1M(benchmark::State& state) {
  FlowTable t(table_config(kMillion));
  const std::vector<OrientedKey> keys = make_keys(kMillion, 0);
  const std::vector<OrientedKey> absent = make_keys(kMillion, 0x00800000);
  uint64_t ts = kT0;
  for (const OrientedKey& k : keys) t.insert(k, true, TimeoutClass::kTcpEstablished, ++ts);
  size_t i = 0;
  uint64_t found = 0;
  for (auto _ : state) {
    found += t.find(absent[i]).flow != nullptr;
    if (++i == absent.size()) i = 0;
  }
  benchmark::DoNotOptimize(found);
  state.counters["lookups_per_s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                       benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FlowTableMiss1M);

}  // namespace
}  // namespace spanfeed

BENCHMARK_MAIN();
