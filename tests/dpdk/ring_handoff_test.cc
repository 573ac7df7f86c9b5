// Ring hand-off under a real EAL (--no-huge): SPSC rings carry every mbuf in
// order; the live policy drops and frees exactly what does not fit; the
// offline policy waits for the consumer and loses nothing.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <atomic>
#include <thread>
#include <vector>

#include "dpdk/handoff.h"
#include "dpdk/tsan_sync.h"

namespace spanfeed::dpdk {
namespace {

rte_mempool* g_pool = nullptr;

uint64_t& seq_of(rte_mbuf* m) { return *rte_pktmbuf_mtod(m, uint64_t*); }

std::vector<rte_mbuf*> alloc(unsigned n, uint64_t first_seq) {
  std::vector<rte_mbuf*> v(n);
  EXPECT_EQ(rte_pktmbuf_alloc_bulk(g_pool, v.data(), n), 0);
  tsan_acquire(g_pool);  // as rx_main after rte_eth_rx_burst: the consumer freed these
  for (unsigned i = 0; i < n; ++i) {
    rte_pktmbuf_append(v[i], sizeof(uint64_t));
    seq_of(v[i]) = first_seq + i;
  }
  return v;
}

TEST(RingHandoff, LiveDropsAndFreesWhatDoesNotFit) {
  rte_ring* r = create_pair_ring("t_live", 64, SOCKET_ID_ANY);  // 63 usable slots
  ASSERT_NE(r, nullptr);
  unsigned before = rte_mempool_avail_count(g_pool);
  auto a = alloc(50, 0);
  EXPECT_EQ(enqueue_or_drop(r, a.data(), 50), 0u);
  auto b = alloc(32, 50);
  EXPECT_EQ(enqueue_or_drop(r, b.data(), 32), 19u);  // 13 fit, 19 dropped
  EXPECT_EQ(rte_ring_count(r), 63u);
  EXPECT_EQ(rte_mempool_avail_count(g_pool), before - 63) << "dropped mbufs returned to the pool";
  rte_mbuf* out[64];
  unsigned n = rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(out), 64, nullptr);
  ASSERT_EQ(n, 63u);
  for (unsigned i = 0; i < n; ++i) EXPECT_EQ(seq_of(out[i]), i);  // FIFO, the first 63
  rte_pktmbuf_free_bulk(out, n);
  EXPECT_EQ(rte_mempool_avail_count(g_pool), before);
  rte_ring_free(r);
}

TEST(RingHandoff, OfflineWaitsAndLosesNothingInOrder) {
  rte_ring* r = create_pair_ring("t_off", 256, SOCKET_ID_ANY);
  ASSERT_NE(r, nullptr);
  constexpr uint64_t kTotal = 200000;
  constexpr unsigned kBurst = 32;
  std::atomic<bool> abort{false};
  std::atomic<bool> producer_done{false};
  uint64_t received = 0, out_of_order = 0;
  std::thread consumer([&] {
    rte_mbuf* m[kBurst];
    uint64_t expect = 0;
    while (true) {
      bool done = producer_done.load(std::memory_order_acquire);
      unsigned n = rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(m), kBurst, nullptr);
      tsan_acquire(r);  // as worker_main: the producer's enqueue released
      for (unsigned i = 0; i < n; ++i) {
        if (seq_of(m[i]) != expect) ++out_of_order;
        expect = seq_of(m[i]) + 1;
      }
      received += n;
      if (n) {
        tsan_release(g_pool);
        rte_pktmbuf_free_bulk(m, n);
      }
      if (n == 0 && done) break;
    }
  });
  uint64_t waits = 0, lost = 0;
  IdleWait idle(CapturePolicy::lossless(), /*shared_cpu=*/true);
  for (uint64_t s = 0; s < kTotal; s += kBurst) {
    auto b = alloc(kBurst, s);
    lost += enqueue_or_wait(r, b.data(), kBurst, idle, abort, waits);
  }
  producer_done.store(true, std::memory_order_release);
  consumer.join();
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(received, kTotal);
  EXPECT_EQ(out_of_order, 0u);
  rte_ring_free(r);
}

TEST(RingHandoff, OfflineWaitEndsOnForcedStop) {
  rte_ring* r = create_pair_ring("t_abort", 16, SOCKET_ID_ANY);  // 15 usable
  ASSERT_NE(r, nullptr);
  unsigned before = rte_mempool_avail_count(g_pool);
  std::atomic<bool> abort{true};
  uint64_t waits = 0;
  auto b = alloc(20, 0);
  IdleWait idle(CapturePolicy::lossless(), false);
  EXPECT_EQ(enqueue_or_wait(r, b.data(), 20, idle, abort, waits), 5u);
  EXPECT_EQ(rte_ring_count(r), 15u);
  rte_mbuf* out[16];
  unsigned n = rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(out), 16, nullptr);
  rte_pktmbuf_free_bulk(out, n);
  EXPECT_EQ(rte_mempool_avail_count(g_pool), before);
  rte_ring_free(r);
}

}  // namespace
}  // namespace spanfeed::dpdk

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const char* eal[] = {"ring_handoff_test", "--no-huge", "-m", "256", "--no-pci", "--no-shconf",
                       "--no-telemetry", "--log-level=error", "-l", "0"};
  if (rte_eal_init(static_cast<int>(std::size(eal)), const_cast<char**>(eal)) < 0) {
    std::fprintf(stderr, "EAL init failed\n");
    return 1;
  }
  spanfeed::dpdk::g_pool = rte_pktmbuf_pool_create("test_pool", 4095, 0, 0, 256, SOCKET_ID_ANY);
  if (spanfeed::dpdk::g_pool == nullptr) return 1;
  int rc = RUN_ALL_TESTS();
  rte_mempool_free(spanfeed::dpdk::g_pool);
  rte_eal_cleanup();
  return rc;
}
