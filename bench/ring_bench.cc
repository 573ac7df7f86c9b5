// Micro-benchmark: the RX -> worker hand-off over an SPSC rte_ring, bursts of
// 32 pointers: same-thread enqueue+dequeue cost, and a producer/consumer
// pair on two threads. Runs under a real EAL (--no-huge).
#include <benchmark/benchmark.h>
#include <rte_eal.h>
#include <rte_ring.h>

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <thread>

namespace {

constexpr unsigned kBurst = 32;

void BM_Ring_SameThreadBurst32(benchmark::State& state) {
  rte_ring* r = rte_ring_create("b_same", 4096, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  void* objs[kBurst];
  for (unsigned i = 0; i < kBurst; ++i) objs[i] = reinterpret_cast<void*>(uintptr_t{i + 1});
  void* out[kBurst];
  for (auto _ : state) {
    rte_ring_sp_enqueue_burst(r, objs, kBurst, nullptr);
    benchmark::DoNotOptimize(rte_ring_sc_dequeue_burst(r, out, kBurst, nullptr));
  }
  state.SetItemsProcessed(state.iterations() * kBurst);
  rte_ring_free(r);
}
BENCHMARK(BM_Ring_SameThreadBurst32);

void BM_Ring_CrossThreadBurst32(benchmark::State& state) {
  rte_ring* r = rte_ring_create("b_cross", 4096, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> consumed{0};
  std::thread consumer([&] {
    // The EAL pinned this process's main thread to CPU 0 (-l 0) and a new
    // thread inherits that: move the consumer to its own CPU.
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(std::thread::hardware_concurrency() > 1 ? 1 : 0, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    void* out[kBurst];
    uint64_t n = 0;
    while (!stop.load(std::memory_order_relaxed)) n += rte_ring_sc_dequeue_burst(r, out, kBurst, nullptr);
    while (unsigned k = rte_ring_sc_dequeue_burst(r, out, kBurst, nullptr)) n += k;
    consumed = n;
  });
  void* objs[kBurst];
  for (unsigned i = 0; i < kBurst; ++i) objs[i] = reinterpret_cast<void*>(uintptr_t{i + 1});
  uint64_t sent = 0;
  for (auto _ : state) {
    unsigned k = 0;
    while (k < kBurst) k += rte_ring_sp_enqueue_burst(r, objs + k, kBurst - k, nullptr);
    sent += kBurst;
  }
  stop = true;
  consumer.join();
  state.SetItemsProcessed(static_cast<int64_t>(sent));
  if (consumed != sent) state.SkipWithError("lost objects");
  rte_ring_free(r);
}
BENCHMARK(BM_Ring_CrossThreadBurst32)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  const char* eal[] = {"bench_ring", "--no-huge", "-m", "128", "--no-pci", "--no-shconf",
                       "--no-telemetry", "--log-level=error", "-l", "0"};
  if (rte_eal_init(static_cast<int>(std::size(eal)), const_cast<char**>(eal)) < 0) return 1;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  rte_eal_cleanup();
  return 0;
}
