// Micro-benchmark: what an RX lcore does per packet (parse L2-L4, symmetric
// MurmurHash3, pick a worker), over synthetic 64-byte frames and over the
// frames of a real capture. Single thread; allocates only at set-up.
#include <benchmark/benchmark.h>
#include <murmurhash.h>
#include <pcap/pcap.h>

#include <cstring>
#include <string>
#include <vector>

#include "spanfeed/flow_hash.h"
#include "spanfeed/packet.h"

namespace {

using spanfeed::LinkType;
using spanfeed::ParsedPacket;

// 64-byte Ethernet/IPv4/TCP frames from 1024 different flows.
std::vector<std::vector<uint8_t>> synthetic_frames() {
  std::vector<std::vector<uint8_t>> frames;
  for (uint32_t i = 0; i < 1024; ++i) {
    std::vector<uint8_t> f(64, 0);
    f[12] = 0x08; f[13] = 0x00;                  // IPv4
    f[14] = 0x45; f[16] = 0; f[17] = 46;         // total length 46 (20 IP + 20 TCP + 6)
    f[23] = 6;                                   // TCP
    f[26] = 10; f[29] = static_cast<uint8_t>(i); f[28] = static_cast<uint8_t>(i >> 8);
    f[30] = 10; f[33] = 1;
    f[34] = static_cast<uint8_t>(0x80 | (i & 0x3f)); f[35] = static_cast<uint8_t>(i);  // sport
    f[36] = 0x0c; f[37] = 0xea;                  // dport 3306
    f[46] = 0x50; f[47] = 0x18;                  // data offset 5, PSH|ACK
    frames.push_back(std::move(f));
  }
  return frames;
}

std::vector<std::vector<uint8_t>> capture_frames(const char* path) {
  std::vector<std::vector<uint8_t>> frames;
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(path, err);
  if (p == nullptr) return frames;
  pcap_pkthdr* h;
  const u_char* d;
  while (pcap_next_ex(p, &h, &d) == 1) frames.emplace_back(d, d + h->caplen);
  pcap_close(p);
  return frames;
}

void run(benchmark::State& state, const std::vector<std::vector<uint8_t>>& frames) {
  if (frames.empty()) {
    state.SkipWithError("no frames");
    return;
  }
  ParsedPacket p;
  uint64_t workers_hit = 0;
  size_t i = 0;
  for (auto _ : state) {
    const auto& f = frames[i];
    i = i + 1 == frames.size() ? 0 : i + 1;
    auto span = std::span<const std::byte>(reinterpret_cast<const std::byte*>(f.data()), f.size());
    if (spanfeed::parse_packet(span, LinkType::kEthernet, p) == spanfeed::ParseOutcome::kOk) {
      workers_hit += spanfeed::worker_for_hash(spanfeed::symmetric_flow_hash(p, true), 4);
    }
    benchmark::DoNotOptimize(workers_hit);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["Mpps"] = benchmark::Counter(static_cast<double>(state.iterations()) / 1e6,
                                              benchmark::Counter::kIsRate);
}

void BM_ParseHash_Synthetic64(benchmark::State& state) {
  static const auto frames = synthetic_frames();
  run(state, frames);
}
BENCHMARK(BM_ParseHash_Synthetic64);

void BM_ParseHash_Capture(benchmark::State& state) {
  static const auto frames = capture_frames(SPANFEED_BENCH_PCAP);
  run(state, frames);
}
BENCHMARK(BM_ParseHash_Capture);

void BM_ParseOnly_Synthetic64(benchmark::State& state) {
  static const auto frames = synthetic_frames();
  ParsedPacket p;
  size_t i = 0;
  for (auto _ : state) {
    const auto& f = frames[i];
    i = (i + 1) & 1023;
    auto o = spanfeed::parse_packet(
        std::span<const std::byte>(reinterpret_cast<const std::byte*>(f.data()), f.size()),
        LinkType::kEthernet, p);
    benchmark::DoNotOptimize(o);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseOnly_Synthetic64);

// The flow hash alone over the parsed synthetic frames: the inline MurmurHash3 the RX lcore runs,
// and libmurmurhash over the same 44-byte canonical tuple (what it replaced; equal values).
std::vector<ParsedPacket> parsed_synthetic() {
  std::vector<ParsedPacket> out;
  for (const auto& f : synthetic_frames()) {
    ParsedPacket p;
    auto span = std::span<const std::byte>(reinterpret_cast<const std::byte*>(f.data()), f.size());
    if (spanfeed::parse_packet(span, LinkType::kEthernet, p) == spanfeed::ParseOutcome::kOk) out.push_back(p);
  }
  return out;
}

void BM_FlowHash_Inline(benchmark::State& state) {
  static const auto pkts = parsed_synthetic();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(spanfeed::symmetric_flow_hash(pkts[i], true));
    i = i + 1 == pkts.size() ? 0 : i + 1;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FlowHash_Inline);

void BM_FlowHash_Libmurmurhash(benchmark::State& state) {
  static const auto pkts = parsed_synthetic();
  size_t i = 0;
  for (auto _ : state) {
    const ParsedPacket& p = pkts[i];
    i = i + 1 == pkts.size() ? 0 : i + 1;
    struct {
      uint8_t lo[16], hi[16];
      uint16_t port_lo, port_hi;
      uint8_t proto, pad[3];
      uint32_t vlan;
    } t;
    std::memset(&t, 0, sizeof(t));
    const int c = std::memcmp(p.src.bytes, p.dst.bytes, 16);
    const bool src_first = c < 0 || (c == 0 && p.src_port <= p.dst_port);
    std::memcpy(t.lo, (src_first ? p.src : p.dst).bytes, 16);
    std::memcpy(t.hi, (src_first ? p.dst : p.src).bytes, 16);
    t.port_lo = src_first ? p.src_port : p.dst_port;
    t.port_hi = src_first ? p.dst_port : p.src_port;
    t.proto = p.l4_proto;
    t.vlan = p.vlan;
    uint32_t out[1];
    lmmh_x86_32(&t, sizeof(t), spanfeed::kFlowHashSeed, out);
    benchmark::DoNotOptimize(out[0]);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FlowHash_Libmurmurhash);

}  // namespace

BENCHMARK_MAIN();
