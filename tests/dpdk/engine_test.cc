// The DPDK adapter on its own: run_engine over a capture file (net_pcap, no
// hugepages) with a fake packet handler, no jobs, exporter or rules. Every
// packet reaches exactly one handler, both directions of a flow the same one,
// and the raw counters balance. One run per process (the EAL starts once).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dpdk/engine.h"
#include "core/capture_file.h"

namespace spanfeed {
namespace {

constexpr const char* kCapture = SPANFEED_TEST_DATA "/pcaps/mysql/171-mysql.pcap";
constexpr uint64_t kCapturePackets = 1040;  // tshark -r ... | wc -l

// What each worker's handler saw; written by its worker, read after the run.
struct Seen {
  uint64_t packets = 0, payload_bytes = 0, idle_calls = 0, finish_calls = 0;
  uint64_t last_ts = 0, ts_backwards = 0;
  std::map<uint32_t, uint64_t> per_hash;  // flow hash -> packets
  bool destroyed = false;
};

class CountingHandler final : public PacketHandler {
 public:
  explicit CountingHandler(Seen& s) : s_(s) {}
  ~CountingHandler() override { s_.destroyed = true; }
  void on_packet(const PacketView& pkt) override {
    ++s_.packets;
    s_.payload_bytes += pkt.parsed->ip_payload_len;
    if (pkt.ts_ns < s_.last_ts) ++s_.ts_backwards;
    s_.last_ts = pkt.ts_ns;
    ++s_.per_hash[pkt.flow_hash];
  }
  void on_idle(uint64_t) override { ++s_.idle_calls; }
  void finish(uint64_t) override { ++s_.finish_calls; }

 private:
  Seen& s_;
};

TEST(Engine, RunsACaptureFileThroughFakeHandlers) {
  std::string error;
  auto file = probe_capture_file(kCapture, error);
  ASSERT_TRUE(file) << error;
  ASSERT_EQ(file->packets, kCapturePackets);

  EngineConfig cfg;
  cfg.pcap_file = kCapture;
  cfg.file = &*file;
  cfg.policy = CapturePolicy::lossless();
  cfg.rx_lcores = 1;
  cfg.workers = 3;
  cfg.ring_size = 64;  // small rings: the lossless RX must wait, not drop
  cfg.log_level = "error";

  std::vector<Seen> seen(cfg.workers);
  std::vector<unsigned> made;
  EngineCounters final_counters;
  unsigned finals = 0;
  EngineHooks hooks;
  std::mutex made_mu;
  hooks.make_handler = [&](unsigned w) {  // called for all workers at once, a thread each
    std::lock_guard lock(made_mu);
    made.push_back(w);
    return std::make_unique<CountingHandler>(seen[w]);
  };
  hooks.on_counters = [&](const EngineCounters& c, bool final) {
    if (!final) return;  // periodic: none may come before a small file is done
    ++finals;
    final_counters = c;
    for (const Seen& s : seen) EXPECT_FALSE(s.destroyed);  // handlers live until after this
  };
  ASSERT_EQ(run_engine(cfg, hooks, error), 0) << error;

  std::sort(made.begin(), made.end());
  EXPECT_EQ(made, (std::vector<unsigned>{0, 1, 2}));
  EXPECT_EQ(finals, 1u);
  const EngineCounters& c = final_counters;
  EXPECT_FALSE(c.interrupted);
  ASSERT_EQ(c.nics.size(), 1u);
  EXPECT_EQ(c.nics[0].ipackets, kCapturePackets);
  ASSERT_EQ(c.rx.size(), 1u);
  EXPECT_EQ(c.rx[0].received, kCapturePackets);
  EXPECT_EQ(c.rx[0].outcome[static_cast<size_t>(RxOutcome::kDelivered)], kCapturePackets);
  EXPECT_EQ(c.rx[0].outcome[static_cast<size_t>(RxOutcome::kRingFull)], 0u);
  ASSERT_EQ(c.workers.size(), 3u);
  uint64_t handled = 0, payload = 0;
  std::map<uint32_t, unsigned> hash_owner;
  for (unsigned w = 0; w < 3; ++w) {
    EXPECT_EQ(c.workers[w].received, seen[w].packets) << "worker " << w;
    EXPECT_EQ(c.workers[w].order_violations, 0u);
    EXPECT_EQ(seen[w].finish_calls, 1u);
    EXPECT_GE(seen[w].idle_calls, 1u);  // at least the final timer run
    EXPECT_EQ(seen[w].ts_backwards, 0u);  // one RX lcore, file order kept
    EXPECT_TRUE(seen[w].destroyed);     // the engine destroyed its handlers
    handled += seen[w].packets;
    payload += seen[w].payload_bytes;
    for (const auto& [h, n] : seen[w].per_hash) {
      auto [it, fresh] = hash_owner.emplace(h, w);
      EXPECT_TRUE(fresh || it->second == w) << "hash " << h << " on two workers";
    }
  }
  EXPECT_EQ(handled, kCapturePackets);
  EXPECT_EQ(payload, 62103u);  // what payload-sum reports for this file
  EXPECT_EQ(c.mempool_in_use, 0u);  // every mbuf returned
  ASSERT_EQ(c.ring_used.size(), 1u);
  for (uint64_t used : c.ring_used[0]) EXPECT_EQ(used, 0u);
}

}  // namespace
}  // namespace spanfeed
