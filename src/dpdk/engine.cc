// The DPDK adapter's orchestration: EAL, pool, ports, rings, handlers,
// launch, the control loop (stop, duration, periodic counters) and teardown.
// Control core; allocates at set-up and teardown, never while the lcores run
// but for the counter snapshots.
#include "dpdk/engine.h"

#include <pthread.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <thread>

#include "dpdk/capture_filter.h"
#include "dpdk/eal.h"
#include "dpdk/file_source.h"
#include "dpdk/handoff.h"
#include "dpdk/ip_defrag.h"
#include "dpdk/lcore_loops.h"
#include "dpdk/tsan_sync.h"
#include "dpdk/port.h"

namespace spanfeed {
namespace {

using dpdk::LoopShared;

// The control loop's turn: how often it checks the duration and stop
// requests, ticks the app and may publish counters.
constexpr std::chrono::milliseconds kControlTurn{20};

// What the run created in DPDK: the ports are stopped and the file unmapped
// before the EAL goes. The mempools and rings are not freed one by one: they
// live in the EAL's memory, which rte_eal_cleanup (the Eal guard's
// destructor, right after) unmaps whole. Freeing them first only had DPDK
// zero every byte it freed (5.5 MB for a small capture, 14% of such a run's
// instructions).
struct RunResources {
  std::unique_ptr<dpdk::FileSource> file;  // unmapped last: mbufs point into it
  rte_mempool* pool = nullptr;
  rte_mempool* frag_hdr_pool = nullptr;  // mapped files: first fragments' header copies (ip_defrag.cc)
  std::vector<std::vector<rte_ring*>> rings;  // [rx][worker]
  std::vector<uint16_t> started_ports;
  ~RunResources() {
    for (uint16_t p : started_ports) {
      rte_eth_dev_stop(p);
      rte_eth_dev_close(p);
    }
  }
};

// Where net_pcap and timestamping PMDs leave each packet's capture time.
void find_timestamps(LoopShared& sh, bool capture_file) {
  sh.ts_offset = rte_mbuf_dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, nullptr);
  int ts_bit = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, nullptr);
  sh.ts_flag = ts_bit >= 0 ? (1ull << ts_bit) : 0;
  if (sh.ts_flag == 0) sh.ts_offset = -1;
  // net_pcap fills the dynfield with microseconds; other PMDs use their own
  // clock units, which we do not interpret: take TSC time for them.
  sh.ts_is_us = capture_file;
  if (!capture_file) sh.ts_offset = -1;
  sh.packet_time = sh.ts_offset >= 0;
}

void read_counters(const LoopShared& sh, const std::vector<uint16_t>& ports, const dpdk::FileSource* file,
                   const std::vector<RxCounters>& rx_counters,
                   const std::vector<WorkerCounters>& w_counters, const RunResources& res,
                   uint32_t ring_size, bool final, EngineCounters& out) {
  out.nics.clear();
  out.rx.clear();
  out.workers.clear();
  out.link = sh.link;
  if (file != nullptr) out.nics.push_back(file->snapshot(0));
  if (file != nullptr && file->uncounted()) {
    const dpdk::FileSource::ReadEnd e = file->read_end();
    out.file.present = true;
    out.file.offset = e.offset;
    out.file.size = e.size;
    out.file.records = e.records;
    if (final) {  // the RX lcore has stopped: the rest is its own
      out.file.truncated_by_snaplen = e.truncated_by_snaplen;
      out.file.ended = e.ended;
      out.file.stopped_early = e.stopped_early;
    }
  }
  for (uint16_t p : ports) out.nics.push_back(dpdk::read_port_counters(p));
  for (size_t r = 0; r < rx_counters.size(); ++r) {
    const auto& c = rx_counters[r];
    RxSnapshot x;
    x.lcore = sh.rx[r]->lcore;
    c.copy_to(x);
    out.rx.push_back(x);
  }
  for (size_t w = 0; w < w_counters.size(); ++w) {
    const auto& c = w_counters[w];
    WorkerLoopSnapshot ws;
    ws.lcore = sh.workers[w]->lcore;
    c.copy_to(ws);
    ws.defrag_present = sh.workers[w]->defrag != nullptr;
    for (size_t i = 0; i < kDefragCounterCount; ++i) {
      ws.defrag.*(kDefragCounterFields[i].member) = c.defrag[i].get();
    }
    ws.busy_s = static_cast<double>(c.busy_cycles.get()) / static_cast<double>(rte_get_tsc_hz());
    out.workers.push_back(ws);
  }
  out.ring_size = ring_size;
  out.ring_used.assign(res.rings.size(), std::vector<uint64_t>(w_counters.size(), 0));
  for (size_t r = 0; r < res.rings.size(); ++r) {
    for (size_t w = 0; w < res.rings[r].size(); ++w) out.ring_used[r][w] = rte_ring_count(res.rings[r][w]);
  }
  out.mempool_size = sh.pool->size;
  out.mempool_in_use = rte_mempool_in_use_count(sh.pool);
}

}  // namespace

int run_engine(const EngineConfig& cfg, const EngineHooks& hooks, std::string& error) {
  dpdk::reset_stop();
  const unsigned nrx = cfg.rx_lcores, nw = cfg.workers;
  const CaptureFileInfo* file = cfg.file;
  const bool verbose = cfg.log_level == "info" || cfg.log_level == "debug";
  // Start-up timeline (printed with --log-level info): where the time to the
  // first packet goes.
  const auto t_entry = std::chrono::steady_clock::now();
  std::string timeline;
  auto mark = [&](const char* what) {
    if (!verbose) return;
    char buf[64];
    std::snprintf(buf, sizeof(buf), " %s %.1f", what,
                  std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_entry).count());
    timeline += buf;
  };

  dpdk::PoolPlan pool;
  if (!dpdk::plan_pool(cfg, pool, error)) return 1;
  dpdk::EalPlan plan = dpdk::plan_eal(cfg, pool.heap_bytes());
  std::unique_ptr<dpdk::Eal> eal = dpdk::Eal::start(plan, verbose, error);
  if (!eal) return 1;
  mark("eal");
  if (rte_lcore_count() < plan.lcores_needed) {
    error = "need " + std::to_string(plan.lcores_needed) + " lcores (1 control + " +
            std::to_string(nrx) + " RX + " + std::to_string(nw) + " workers) but the EAL has " +
            std::to_string(rte_lcore_count()) + "; adjust -l/--lcores in --eal or lcores.*";
    return 1;
  }
  uint16_t nports = rte_eth_dev_count_avail();
  const bool mapped_file = !cfg.pcap_file.empty() && !cfg.pcap_pmd;
  if (nports == 0 && !mapped_file) {
    error = "no DPDK ports found (no --vdev given, or no NIC bound to vfio-pci/uio)";
    return 1;
  }
  LoopShared sh;
  sh.hash_vlan = cfg.hash_vlan;
  sh.decap = cfg.decap;
  sh.link = file != nullptr ? file->link : LinkType::kEthernet;
  sh.policy = cfg.policy;
  sh.yield_when_idle = plan.oversubscribed;
  sh.burst = std::min<unsigned>(cfg.burst_size, dpdk::kMaxBurst);
  sh.clock.init();
  sh.pool_reserve = pool.reserve;
  // A finite capture file read by one RX lcore ends the run by itself, in
  // either mode; an infinite replay runs until a signal or the duration.
  if (file != nullptr && !cfg.pcap_infinite && nports + mapped_file == 1 && nrx == 1) {
    sh.finite_file = true;
    sh.count_known = file->counted;
    sh.expected_packets = file->packets;
  }

  RunResources res;  // after the EAL guard: ports stopped, file unmapped before rte_eal_cleanup
  std::vector<uint16_t> port_ids;
  uint16_t pid;
  RTE_ETH_FOREACH_DEV(pid) port_ids.push_back(pid);
  // Packet memory and rings live on the NIC's NUMA socket (the first port's):
  // the NIC DMAs into the mbufs and the RX lcores should sit there too.
  int socket = port_ids.empty() ? -1 : rte_eth_dev_socket_id(port_ids[0]);
  if (socket < 0) socket = static_cast<int>(rte_socket_id());  // vdevs: no socket of their own
  const bool dma = !dpdk::ports_copy_only(port_ids);
  res.pool = dpdk::create_packet_pool("spanfeed_mbufs", static_cast<unsigned>(pool.mbufs),
                                      std::min<unsigned>(cfg.mempool_cache, static_cast<unsigned>(pool.mbufs * 2 / 3)),
                                      static_cast<uint16_t>(pool.data_room), socket, dma);
  sh.pool = res.pool;
  if (sh.pool == nullptr) {
    error = "cannot create mempool of " + std::to_string(pool.mbufs) + " mbufs: " +
            rte_strerror(rte_errno) + " (lower mempool.size or rings.size, or raise eal_memory_mb)";
    return 1;
  }
  if (sh.policy.keep_mbufs_in_reserve() && pool.mbufs < sh.pool_reserve + sh.burst + 1024) {
    error = "mempool.size " + std::to_string(pool.mbufs) + " is too small for a lossless offline run; "
            "need at least " + std::to_string(sh.pool_reserve + sh.burst + 1024);
    return 1;
  }

  if (pool.frag_hdr_mbufs != 0) {
    res.frag_hdr_pool = rte_pktmbuf_pool_create("spanfeed_frag_hdr", static_cast<unsigned>(pool.frag_hdr_mbufs),
                                                dpdk::kFragHdrCache,
                                                dpdk::kPrivSize, dpdk::kFragHeaderRoom + RTE_PKTMBUF_HEADROOM,
                                                socket);
    if (res.frag_hdr_pool == nullptr) {
      error = "cannot create the fragment header pool of " + std::to_string(pool.frag_hdr_mbufs) +
              " mbufs: " + rte_strerror(rte_errno) + " (lower ip_fragments.max_datagrams, or raise eal_memory_mb)";
      return 1;
    }
  }

  mark("pool");
  // Queues: spread RX lcores over ports; each RX lcore polls its (port,
  // queue) list in turn.
  std::vector<dpdk::RxQueueRef> all_queues;
  if (mapped_file) {
    // The capture file, mapped once: records reach the RX lcore as mbufs
    // attached to the mapping, with their capture time in the same dynfield
    // net_pcap uses.
    int ts_offset = -1;
    uint64_t ts_flag = 0;
    if (rte_mbuf_dyn_rx_timestamp_register(&ts_offset, &ts_flag) != 0) {
      error = std::string("cannot register the mbuf timestamp field: ") + rte_strerror(rte_errno);
      return 1;
    }
    dpdk::FileSource::Options fo;
    fo.path = cfg.pcap_file;
    fo.records = file == nullptr ? 0 : file->counted ? file->packets : dpdk::FileSource::kUncounted;
    fo.snaplen = file != nullptr ? file->snaplen : 0;
    fo.infinite = cfg.pcap_infinite;
    fo.drop_without_mbuf = !sh.policy.keep_mbufs_in_reserve();
    res.file = dpdk::FileSource::open(fo, error);
    if (!res.file) return 1;
    // The file alone fills the pool: its mbufs become pinned external-buffer
    // mbufs, set up once here instead of per packet (file_source.h).
    if (port_ids.empty()) res.file->pin_pool(sh.pool);
    all_queues.push_back({0, 0, res.file.get()});
  }
  for (size_t i = 0; i < port_ids.size(); ++i) {
    uint16_t nq = static_cast<uint16_t>(std::max<size_t>(1, nrx / port_ids.size() + (i < nrx % port_ids.size())));
    if (dpdk::setup_port(port_ids[i], nq, sh.pool, error) != 0) return 1;
    res.started_ports.push_back(port_ids[i]);
    for (uint16_t q = 0; q < nq; ++q) all_queues.push_back({port_ids[i], q});
  }
  if (all_queues.size() < nrx && mapped_file && nports == 0) {
    error = "capture file '" + cfg.pcap_file + "' is read by one RX lcore: it has at most 1 RX "
            "queue; lower lcores.rx to 1";
    return 1;
  }
  if (all_queues.size() < nrx) {
    error = "more RX lcores (" + std::to_string(nrx) + ") than RX queues (" +
            std::to_string(all_queues.size()) + "); lower lcores.rx";
    return 1;
  }
  find_timestamps(sh, file != nullptr);
  mark("ports");

  // Helper threads (the application's exporter) start off the lcores' CPUs.
  if (hooks.start_helpers && !eal->run_off_lcores([&] { return hooks.start_helpers(error); })) {
    return 1;
  }

  mark("helpers");
  // The capture filter, compiled for the source's link type.
  std::unique_ptr<dpdk::CaptureFilter> filter;
  if (!cfg.filter.empty()) {
    // Inner: the program reads from the innermost IP header (DLT_RAW, 12).
    const int dlt = cfg.filter_inner ? 12 : file != nullptr ? file->dlt : 1 /* EN10MB */;
    filter = dpdk::CaptureFilter::create(cfg.filter, dlt, error);
    if (!filter) return 1;
    sh.filter = filter.get();
    sh.filter_inner = cfg.filter_inner;
    if (verbose) {
      std::fprintf(stderr, "spanfeed: filter '%s' runs on %s\n", cfg.filter.c_str(), filter->engine());
    }
  }

  // Counters, contexts, rings.
  std::vector<RxCounters> rx_counters(nrx);
  std::vector<WorkerCounters> w_counters(nw);
  res.rings.assign(nrx, std::vector<rte_ring*>(nw, nullptr));
  for (unsigned r = 0; r < nrx; ++r) {
    for (unsigned w = 0; w < nw; ++w) {
      char name[RTE_RING_NAMESIZE];
      std::snprintf(name, sizeof(name), "rx%u_w%u", r, w);
      res.rings[r][w] = dpdk::create_pair_ring(name, cfg.ring_size, socket);
      if (res.rings[r][w] == nullptr) {
        error = std::string("cannot create ring ") + name + ": " + rte_strerror(rte_errno);
        return 1;
      }
    }
  }
  std::vector<unsigned> lcore_ids;
  unsigned lc;
  RTE_LCORE_FOREACH_WORKER(lc) lcore_ids.push_back(lc);
  for (unsigned r = 0; r < nrx; ++r) {
    auto ctx = std::make_unique<dpdk::RxContext>();
    ctx->sh = &sh;
    ctx->lcore = lcore_ids[r];
    for (size_t q = r; q < all_queues.size(); q += nrx) ctx->queues.push_back(all_queues[q]);
    ctx->rings = res.rings[r];
    ctx->counters = &rx_counters[r];
    if (cfg.defrag && nw > 1) {
      // Twice the datagrams all workers can hold in reassembly at once.
      ctx->frag_steer = std::make_unique<FragmentSteer>(size_t{2} * nw * cfg.defrag_max_datagrams,
                                                        static_cast<uint64_t>(cfg.defrag_timeout_s * 1e9));
    }
    sh.rx.push_back(std::move(ctx));
  }
  // The handlers are made at once, each on a thread pinned to its worker's
  // CPUs: its tables are first touched on the NUMA node that uses them, and
  // start-up does not grow with the workers (a live handler prefaults its
  // reassembly arena: ~40 ms each on this project's VM).
  std::vector<std::unique_ptr<PacketHandler>> handlers(nw);
  {
    std::vector<std::exception_ptr> failed(nw);
    std::vector<std::thread> makers;
    makers.reserve(nw);
    for (unsigned w = 0; w < nw; ++w) {
      makers.emplace_back([&, w] {
        rte_cpuset_t cpus = rte_lcore_cpuset(lcore_ids[nrx + w]);
        pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);  // advice: unpinned still works
        try {
          handlers[w] = hooks.make_handler(w);
        } catch (...) {
          failed[w] = std::current_exception();
        }
      });
    }
    for (std::thread& t : makers) t.join();
    for (const std::exception_ptr& e : failed) {
      if (e) std::rethrow_exception(e);
    }
  }
  for (unsigned w = 0; w < nw; ++w) {
    auto ctx = std::make_unique<dpdk::WorkerContext>();
    ctx->sh = &sh;
    ctx->lcore = lcore_ids[nrx + w];
    for (unsigned r = 0; r < nrx; ++r) ctx->rings.push_back(res.rings[r][w]);
    ctx->counters = &w_counters[w];
    ctx->handler = std::move(handlers[w]);
    ctx->scratch.resize(dpdk::kScratchBytes);
    ctx->index = w;
    if (cfg.defrag) {
      ctx->defrag = std::make_unique<dpdk::Defragmenter>(
          cfg.defrag_max_datagrams, static_cast<uint64_t>(cfg.defrag_timeout_s * 1e9),
          static_cast<int>(rte_lcore_to_socket_id(ctx->lcore)), sh.pool, res.frag_hdr_pool,
          cfg.defrag_dedup_window_ns, rte_rand());
      if (!ctx->defrag->ok()) {
        error = "cannot create the IP fragment table (ip_fragments.max_datagrams " +
                std::to_string(cfg.defrag_max_datagrams) + "): " + rte_strerror(rte_errno);
        return 1;
      }
    }
    sh.workers.push_back(std::move(ctx));
  }

  mark("handlers");
  // Launch workers first so the rings drain from the first burst on.
  auto t0 = std::chrono::steady_clock::now();
  const uint64_t launch_tsc = rte_rdtsc();
  for (auto& w : sh.workers) rte_eal_remote_launch(dpdk::worker_main, w.get(), w->lcore);
  for (auto& r : sh.rx) rte_eal_remote_launch(dpdk::rx_main, r.get(), r->lcore);

  EngineCounters counters;
  bool interrupted = false;
  // The first snapshot goes out at once: /metrics has numbers from launch on.
  auto last_publish = std::chrono::steady_clock::now() - std::chrono::milliseconds(hooks.period_ms);
  // One control-loop turn (at most 20 ms): stop on the duration, the app's
  // tick, the periodic counters. False once `wait_done` (which waits up to
  // the turn's length, and no longer than the awaited part takes to finish)
  // says the awaited part has finished.
  auto control_turn = [&](const auto& wait_done) {
    const bool finished = wait_done(kControlTurn);
    if (dpdk::stop_requested()) interrupted = true;
    auto now = std::chrono::steady_clock::now();
    double el = std::chrono::duration<double>(now - t0).count();
    if (cfg.duration_s > 0 && el >= cfg.duration_s && !dpdk::stop_requested()) {
      dpdk::set_stop();
      interrupted = true;
    }
    if (finished) return false;
    if (hooks.on_tick) hooks.on_tick();
    if (now - last_publish >= std::chrono::milliseconds(hooks.period_ms)) {
      last_publish = now;
      counters.elapsed_s = el;
      counters.interrupted = interrupted;
      read_counters(sh, port_ids, res.file.get(), rx_counters, w_counters, res, cfg.ring_size, false, counters);
      if (hooks.on_counters) hooks.on_counters(counters, false);
    }
    return true;
  };
  while (control_turn([&](std::chrono::milliseconds wait) {
    return sh.workers_done.wait_for(wait, [&] {
      bool all_done = true;
      for (auto& w : sh.workers) all_done &= w->done.load(std::memory_order_acquire);
      return all_done;
    });
  })) {
  }
  // Every lcore has signalled; its thread still has a few stores to make
  // before DPDK calls it finished. rte_eal_mp_wait_lcore spins for them: on a
  // box with no spare CPU the woken control core can spin on the very CPU the
  // lcore needs until the next scheduler tick (~5 ms a run measured on 2 CPUs).
  unsigned lcore;
  RTE_LCORE_FOREACH_WORKER(lcore) {
    while (rte_eal_get_lcore_state(lcore) == RUNNING) std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  rte_eal_mp_wait_lcore();
  // Everything the lcores did happens before what follows (TSan cannot see DPDK's own wait).
  dpdk::tsan_acquire(&sh);
  if (verbose) {
    uint64_t first = 0;
    for (auto& r : sh.rx) {
      if (r->first_packet_tsc != 0 && (first == 0 || r->first_packet_tsc < first)) first = r->first_packet_tsc;
    }
    double launch_ms = std::chrono::duration<double, std::milli>(t0 - t_entry).count();
    if (first != 0) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), " first-packet %.1f",
                    launch_ms + 1e3 * static_cast<double>(first - launch_tsc) / static_cast<double>(rte_get_tsc_hz()));
      timeline += buf;
    }
    std::fprintf(stderr, "spanfeed: engine start-up (ms from engine entry):%s\n", timeline.c_str());
    for (size_t r = 0; r < sh.rx.size(); ++r) {
      // CPU time counts only while the lcore ran: a fair rate on a shared box.
      const double pk = static_cast<double>(rx_counters[r].received.get());
      std::fprintf(stderr, "spanfeed: RX lcore %u: %.0f packets, %.3f CPU s, %.2f M packets per RX CPU-second, "
                   "%llu ring-wait spins\n", sh.rx[r]->lcore, pk, sh.rx[r]->cpu_s,
                   sh.rx[r]->cpu_s > 0 ? pk / sh.rx[r]->cpu_s / 1e6 : 0.0,
                   static_cast<unsigned long long>(rx_counters[r].ring_wait_spins.get()));
    }
    for (size_t w = 0; w < sh.workers.size(); ++w) {
      // Per CPU-second, unlike the summary's per busy second (TSC time on
      // bursts): a worker that shares its CPU is not charged for the time the
      // other thread ran (bench/scaling.sh, docs/tuning.md).
      const double pk = static_cast<double>(w_counters[w].received.get());
      const double busy = static_cast<double>(w_counters[w].busy_cycles.get()) / static_cast<double>(rte_get_tsc_hz());
      std::fprintf(stderr, "spanfeed: worker lcore %u: %.0f packets, %.3f CPU s, %.3f busy s, "
                   "%.2f M packets per worker CPU-second\n", sh.workers[w]->lcore, pk, sh.workers[w]->cpu_s, busy,
                   sh.workers[w]->cpu_s > 0 ? pk / sh.workers[w]->cpu_s / 1e6 : 0.0);
    }
  }
  if (hooks.stop_helpers) hooks.stop_helpers();
  if (hooks.helpers_done) {
    while (control_turn(hooks.helpers_done)) {
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  counters.interrupted = interrupted;
  counters.elapsed_s = std::chrono::duration<double>(t1 - t0).count();
  read_counters(sh, port_ids, res.file.get(), rx_counters, w_counters, res, cfg.ring_size, true, counters);
  if (hooks.on_counters) hooks.on_counters(counters, true);
  sh.workers.clear();  // handlers release their state (and close files) before the mempool goes
  return 0;
}

}  // namespace spanfeed
