// The DPDK adapter: EAL start-up, ports, mempool, SPSC rings, the RX and
// worker lcore loops, shutdown and counter snapshots. Set-up and teardown run
// on the main (control) lcore and allocate; the lcore loops never allocate.
#include "spanfeed/engine.h"

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "dpdk/capture_filter.h"
#include "dpdk/handoff.h"
#include "spanfeed/counters.h"
#include "spanfeed/flow_hash.h"
#include "spanfeed/jobs.h"

namespace spanfeed {
namespace {

constexpr unsigned kMaxBurst = 512;
constexpr uint16_t kRxDescriptors = 1024;
constexpr unsigned kIdlePollsBeforeBackoff = 64;
// A capture file that returns nothing for this long has stalled (net_pcap
// returns 0 forever at end of file; normally the record count ends the run).
constexpr uint64_t kOfflineIdleEndNs = 2'000'000'000ull;
// Multi-segment frames are linearised into this per-worker scratch buffer:
// larger than any IP datagram plus link headers.
constexpr size_t kScratchBytes = 256 * 1024;
// Mbuf private area: what the RX lcore parsed, so workers never re-parse.
struct MbufMeta {
  ParsedPacket parsed;
  uint64_t ts_ns;
  uint64_t seq;  // RX order on this RX lcore, for the order check
  uint32_t hash;
};
constexpr uint16_t kPrivSize = RTE_ALIGN_CEIL(sizeof(MbufMeta), RTE_MBUF_PRIV_ALIGN);

std::atomic<bool> g_stop{false};
std::atomic<bool> g_force_stop{false};

inline MbufMeta* meta_of(rte_mbuf* m) { return static_cast<MbufMeta*>(rte_mbuf_to_priv(m)); }

uint64_t wall_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

// Converts TSC readings to wall-clock nanoseconds (live mode timestamps).
struct TscClock {
  uint64_t tsc0 = 0, wall0 = 0, hz = 1;
  void init() {
    hz = rte_get_tsc_hz();
    tsc0 = rte_rdtsc();
    wall0 = wall_ns();
  }
  uint64_t now_ns() const {
    uint64_t d = rte_rdtsc() - tsc0;
    return wall0 + (d / hz) * 1'000'000'000ull + (d % hz) * 1'000'000'000ull / hz;
  }
};

struct RxQueueRef {
  uint16_t port;
  uint16_t queue;
};

struct Shared;

struct RxContext {
  Shared* sh = nullptr;
  unsigned index = 0;
  unsigned lcore = 0;
  std::vector<RxQueueRef> queues;
  std::vector<rte_ring*> rings;  // one per worker
  RxCounters* counters = nullptr;
  std::atomic<bool> done{false};
};

struct WorkerContext {
  Shared* sh = nullptr;
  unsigned index = 0;
  unsigned lcore = 0;
  std::vector<rte_ring*> rings;  // one per RX lcore
  WorkerCounters* counters = nullptr;
  std::unique_ptr<Job> job;
  std::vector<std::byte> scratch;
  std::atomic<bool> done{false};
};

struct Shared {
  const Config* cfg = nullptr;
  const dpdk::CaptureFilter* filter = nullptr;
  LinkType link = LinkType::kEthernet;
  bool offline = true;
  bool yield_when_idle = false;  // more lcores than CPUs
  // A finite capture file read by one RX lcore: the run ends by itself once
  // expected_packets (the records libpcap could read, maybe 0) are in.
  bool finite_file = false;
  uint64_t expected_packets = 0;
  unsigned burst = 32;
  rte_mempool* pool = nullptr;
  unsigned pool_reserve = 0;  // offline: free mbufs the PMD must always find
  int ts_offset = -1;
  uint64_t ts_flag = 0;
  bool ts_is_us = true;  // net_pcap stores microseconds in the dynfield
  // Packets carry capture timestamps (a file, in either mode): timers run on
  // packet time. Otherwise (live ports) on the TSC clock.
  bool packet_time = false;
  TscClock clock;
  std::vector<std::unique_ptr<RxContext>> rx;
  std::vector<std::unique_ptr<WorkerContext>> workers;
  std::atomic<unsigned> rx_done{0};
};

void idle(bool yield, unsigned& empty) {
  if (++empty < kIdlePollsBeforeBackoff) {
    rte_pause();
  } else if (yield) {
    sched_yield();
  } else {
    rte_pause();
  }
}

int rx_main(void* arg) {
  auto& ctx = *static_cast<RxContext*>(arg);
  Shared& sh = *ctx.sh;
  RxCounters& c = *ctx.counters;
  const unsigned nw = static_cast<unsigned>(ctx.rings.size());
  const unsigned burst = sh.burst;
  const bool hash_vlan = sh.cfg->hash_vlan;
  rte_mbuf* pkts[kMaxBurst];
  rte_mbuf* drop[kMaxBurst];
  // Per-worker staging: nw x burst pointers, preallocated before launch.
  std::vector<rte_mbuf*> staging(size_t{nw} * burst);
  std::vector<unsigned> staged(nw);
  uint64_t seq = 0;
  unsigned empty = 0;
  uint64_t last_packet_ns = sh.clock.now_ns();
  size_t qi = 0;
  uint64_t waits = 0;

  while (!g_stop.load(std::memory_order_relaxed)) {
    if (sh.finite_file && c.received.get() >= sh.expected_packets) break;
    if (sh.offline) {
      // net_pcap loses the packet it has read when it finds no mbuf: never
      // let it get there in a lossless run.
      if (rte_mempool_avail_count(sh.pool) < sh.pool_reserve + burst) {
        idle(sh.yield_when_idle, empty);
        continue;
      }
    }
    const RxQueueRef q = ctx.queues[qi];
    qi = qi + 1 == ctx.queues.size() ? 0 : qi + 1;
    uint16_t n = rte_eth_rx_burst(q.port, q.queue, pkts, static_cast<uint16_t>(burst));
    if (n == 0) {
      c.empty_polls.add(1);
      if (sh.finite_file && (empty & 1023u) == 1023u) {
        // A finite file: it has ended once every record was either received
        // or lost inside the PMD (live mode: no mbuf; read errors).
        rte_eth_stats st{};
        rte_eth_stats_get(q.port, &st);
        if (st.ipackets + st.rx_nombuf + st.ierrors >= sh.expected_packets) break;
        if (sh.clock.now_ns() - last_packet_ns > kOfflineIdleEndNs) break;  // stalled source
      }
      idle(sh.yield_when_idle, empty);
      continue;
    }
    empty = 0;
    c.bursts.add(1);
    const uint64_t now = sh.clock.now_ns();
    last_packet_ns = now;
    uint64_t bytes = 0;
    unsigned ndrop = 0;
    std::array<uint64_t, static_cast<size_t>(RxOutcome::kCount)> out{};
    const uint16_t received = n;
    for (uint16_t i = 0; i < n; ++i) bytes += rte_pktmbuf_pkt_len(pkts[i]);
    if (sh.filter != nullptr) {
      n = static_cast<uint16_t>(sh.filter->apply(pkts, n, drop, ndrop));
      out[static_cast<size_t>(RxOutcome::kFiltered)] += ndrop;
    }
    uint64_t frags = 0, l4t = 0, snapt = 0;
    for (uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = pkts[i];
      MbufMeta* meta = meta_of(m);
      std::span<const std::byte> frame(rte_pktmbuf_mtod(m, const std::byte*), rte_pktmbuf_data_len(m));
      ParseOutcome po = parse_packet(frame, sh.link, meta->parsed);
      if (unlikely(po != ParseOutcome::kOk)) {
        ++out[static_cast<size_t>(rx_outcome_for(po))];
        drop[ndrop++] = m;
        continue;
      }
      const ParsedPacket& p = meta->parsed;
      frags += (p.flags & packet_flag::kFragment) != 0;
      l4t += (p.flags & packet_flag::kL4Truncated) != 0;
      snapt += (p.flags & packet_flag::kPayloadTruncated) != 0;
      if (sh.ts_offset >= 0 && (m->ol_flags & sh.ts_flag)) {
        uint64_t ts = *RTE_MBUF_DYNFIELD(m, sh.ts_offset, rte_mbuf_timestamp_t*);
        meta->ts_ns = sh.ts_is_us ? ts * 1000 : ts;
      } else {
        meta->ts_ns = now;
      }
      meta->seq = seq++;
      meta->hash = symmetric_flow_hash(p, hash_vlan);
      unsigned w = worker_for_hash(meta->hash, nw);
      staging[size_t{w} * burst + staged[w]++] = m;
    }
    if (ndrop != 0) rte_pktmbuf_free_bulk(drop, ndrop);
    for (unsigned w = 0; w < nw; ++w) {
      unsigned k = staged[w];
      if (k == 0) continue;
      staged[w] = 0;
      rte_mbuf** batch = &staging[size_t{w} * burst];
      unsigned lost = sh.offline
          ? dpdk::enqueue_or_wait(ctx.rings[w], batch, k, sh.yield_when_idle, g_force_stop, waits)
          : dpdk::enqueue_or_drop(ctx.rings[w], batch, k);
      out[static_cast<size_t>(RxOutcome::kDelivered)] += k - lost;
      out[static_cast<size_t>(RxOutcome::kRingFull)] += lost;
    }
    // Publish after the hand-off so that a reader never sees received ahead
    // of the outcomes by more than one burst.
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i] != 0) c.outcome[i].add(out[i]);
    }
    c.received.add(received);
    c.bytes.add(bytes);
    if (frags) c.ip_fragments.add(frags);
    if (l4t) c.l4_truncated.add(l4t);
    if (snapt) c.snaplen_truncated.add(snapt);
    if (waits) { c.ring_wait_spins.add(waits); waits = 0; }
  }
  ctx.done.store(true, std::memory_order_release);
  sh.rx_done.fetch_add(1, std::memory_order_release);
  return 0;
}

int worker_main(void* arg) {
  auto& ctx = *static_cast<WorkerContext*>(arg);
  Shared& sh = *ctx.sh;
  WorkerCounters& c = *ctx.counters;
  const unsigned nrx = static_cast<unsigned>(ctx.rings.size());
  const unsigned burst = sh.burst;
  rte_mbuf* pkts[kMaxBurst];
  std::vector<uint64_t> next_seq(nrx, 0);
  unsigned empty = 0;
  uint64_t newest_ns = 0;
  PacketHandler& job = *ctx.job;

  while (true) {
    // Read the RX-done count before polling: if all RX lcores had finished
    // before this poll and the poll finds nothing, nothing more can come.
    bool rx_finished = sh.rx_done.load(std::memory_order_acquire) == sh.rx.size();
    unsigned got = 0;
    for (unsigned r = 0; r < nrx; ++r) {
      unsigned n = rte_ring_sc_dequeue_burst(ctx.rings[r], reinterpret_cast<void**>(pkts), burst,
                                             nullptr);
      if (n == 0) continue;
      got += n;
      const uint64_t t_start = rte_rdtsc();
      uint64_t violations = 0, multiseg = 0;
      for (unsigned i = 0; i < n; ++i) {
        rte_mbuf* m = pkts[i];
        const MbufMeta* meta = meta_of(m);
        if (unlikely(meta->seq < next_seq[r])) ++violations;
        next_seq[r] = meta->seq + 1;
        newest_ns = std::max(newest_ns, meta->ts_ns);
        if (likely(m->nb_segs == 1)) {
          std::span<const std::byte> frame(rte_pktmbuf_mtod(m, const std::byte*),
                                           rte_pktmbuf_data_len(m));
          job.on_packet(PacketView{frame, &meta->parsed, meta->ts_ns, meta->hash});
        } else {
          // A frame chained over several mbufs: RX parsed the first segment
          // only, so its payload bounds stop there. Linearise and parse the
          // whole frame again (rare: jumbo/TSO captures).
          ++multiseg;
          uint32_t len = std::min<uint32_t>(rte_pktmbuf_pkt_len(m), kScratchBytes);
          const void* p = rte_pktmbuf_read(m, 0, len, ctx.scratch.data());
          std::span<const std::byte> frame(static_cast<const std::byte*>(p), len);
          ParsedPacket whole;
          if (parse_packet(frame, sh.link, whole) != ParseOutcome::kOk) whole = meta->parsed;
          job.on_packet(PacketView{frame, &whole, meta->ts_ns, meta->hash});
        }
      }
      rte_pktmbuf_free_bulk(pkts, n);
      c.busy_cycles.add(rte_rdtsc() - t_start);
      c.received.add(n);
      if (violations) c.order_violations.add(violations);
      if (multiseg) c.multi_segment.add(multiseg);
    }
    if (got != 0) {
      empty = 0;
      continue;
    }
    if (rx_finished) break;
    if ((empty & 255u) == 0) job.on_idle(sh.packet_time ? newest_ns : sh.clock.now_ns());
    idle(sh.yield_when_idle, empty);
  }
  // Expire what is due at the final time first, so that a flow idle past its
  // timeout at the end is counted as timed out, not as shut down.
  const uint64_t end_ns = sh.packet_time ? newest_ns : sh.clock.now_ns();
  job.on_idle(end_ns);
  job.finish(end_ns);
  ctx.done.store(true, std::memory_order_release);
  return 0;
}

std::vector<std::string> split_args(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

bool has_arg(const std::vector<std::string>& args, std::initializer_list<const char*> names) {
  for (const auto& a : args) {
    for (const char* n : names) {
      size_t len = std::strlen(n);
      if (a == n || (a.size() > len && a.compare(0, len, n) == 0 && a[len] == '=')) return true;
    }
  }
  return false;
}

std::vector<int> usable_cpus(const Config& cfg) {
  if (!cfg.cpus.empty()) return cfg.cpus;
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i) {
      if (CPU_ISSET(i, &set)) cpus.push_back(i);
    }
  }
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}

// Free hugepages of the default size, from /proc/meminfo (0 when unknown).
uint64_t free_hugepages() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (f == nullptr) return 0;
  char line[256];
  unsigned long long n = 0;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::sscanf(line, "HugePages_Free: %llu", &n) == 1) break;
  }
  std::fclose(f);
  return n;
}

// Everything the EAL needs, as argv strings.
struct EalPlan {
  std::vector<std::string> args;
  unsigned lcores_needed = 0;
  bool oversubscribed = false;
};

EalPlan plan_eal(const Config& cfg, uint64_t pool_bytes) {
  EalPlan plan;
  auto user = split_args(cfg.eal_args);
  plan.lcores_needed = 1 + cfg.rx_lcores + cfg.workers;
  plan.args.push_back("spanfeed");
  if (!has_arg(user, {"-l", "--lcores", "-c"})) {
    auto cpus = usable_cpus(cfg);
    std::string map;
    for (unsigned i = 0; i < plan.lcores_needed; ++i) {
      if (i) map += ",";
      map += std::to_string(i) + "@" + std::to_string(cpus[i % cpus.size()]);
    }
    plan.args.push_back("--lcores=" + map);
    plan.oversubscribed = plan.lcores_needed > cpus.size();
  }
  bool vdev_source = !cfg.pcap_file.empty() || !cfg.iface.empty();
  // File and af_packet sources never need hugepages; raw EAL devices use them
  // when the machine has some free, and run without otherwise.
  bool no_huge = vdev_source || free_hugepages() == 0;
  if (no_huge && !has_arg(user, {"--huge-dir", "--socket-mem", "--no-huge", "-m", "--in-memory"})) {
    // No hugepages needed for file and af_packet sources; size the heap
    // from the mempool (plus room for rings and the EAL itself).
    uint64_t mb = std::max<uint64_t>(cfg.eal_memory_mb, pool_bytes / (1 << 20) * 5 / 4 + 256);
    plan.args.push_back("--no-huge");
    plan.args.push_back("-m");
    plan.args.push_back(std::to_string(mb));
  }
  if (vdev_source && !has_arg(user, {"--no-pci", "-a", "--allow", "-b", "--block"})) {
    plan.args.push_back("--no-pci");
  }
  if (!has_arg(user, {"--no-shconf", "--in-memory", "--file-prefix"})) {
    plan.args.push_back("--no-shconf");
  }
  // The control core publishes metrics itself; the telemetry socket would
  // only print a line per run.
  if (!has_arg(user, {"--telemetry", "--no-telemetry"})) plan.args.push_back("--no-telemetry");
  if (!has_arg(user, {"--log-level"})) plan.args.push_back("--log-level=" + cfg.log_level);
  if (!cfg.pcap_file.empty()) {
    std::string v = "net_pcap0,rx_pcap=" + cfg.pcap_file;
    if (cfg.pcap_infinite) v += ",infinite_rx=1";
    plan.args.push_back("--vdev");
    plan.args.push_back(v);
  } else if (!cfg.iface.empty()) {
    std::string v = "net_af_packet0,iface=" + cfg.iface;
    if (cfg.rx_lcores > 1) v += ",qpairs=" + std::to_string(cfg.rx_lcores);
    plan.args.push_back("--vdev");
    plan.args.push_back(v);
  }
  for (auto& a : user) plan.args.push_back(a);
  return plan;
}

std::string port_name(uint16_t port) {
  char name[RTE_ETH_NAME_MAX_LEN] = {0};
  if (rte_eth_dev_get_name_by_port(port, name) != 0) return "port" + std::to_string(port);
  return name;
}

int setup_port(uint16_t port, uint16_t nq, rte_mempool* pool, std::string& error) {
  rte_eth_dev_info info;
  if (int rc = rte_eth_dev_info_get(port, &info); rc != 0) {
    error = "port " + std::to_string(port) + ": cannot read device info: " + rte_strerror(-rc);
    return -1;
  }
  if (nq > info.max_rx_queues) {
    error = "port " + std::to_string(port) + " (" + port_name(port) + ") has at most " +
            std::to_string(info.max_rx_queues) + " RX queue(s); lower lcores.rx to " +
            std::to_string(info.max_rx_queues);
    return -1;
  }
  rte_eth_conf conf{};
  if (nq > 1) {
    // Symmetric RSS key (0x6d5a repeated) so both directions of a flow land
    // on one queue and so one RX lcore: per-flow order is kept end to end.
    static uint8_t key[40];
    for (size_t i = 0; i < sizeof(key); i += 2) { key[i] = 0x6d; key[i + 1] = 0x5a; }
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = key;
    conf.rx_adv_conf.rss_conf.rss_key_len = sizeof(key);
    conf.rx_adv_conf.rss_conf.rss_hf =
        (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
  }
  if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TIMESTAMP) {
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TIMESTAMP;
  }
  uint16_t ntx = info.max_tx_queues > 0 ? 1 : 0;
  if (int rc = rte_eth_dev_configure(port, nq, ntx, &conf); rc != 0) {
    error = "port " + std::to_string(port) + ": configure failed: " + rte_strerror(-rc);
    return -1;
  }
  uint16_t nrxd = kRxDescriptors, ntxd = 512;
  rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrxd, &ntxd);
  int socket = rte_eth_dev_socket_id(port);
  for (uint16_t q = 0; q < nq; ++q) {
    if (int rc = rte_eth_rx_queue_setup(port, q, nrxd, socket, nullptr, pool); rc != 0) {
      error = "port " + std::to_string(port) + " queue " + std::to_string(q) +
              ": RX queue setup failed: " + rte_strerror(-rc) +
              " (for an infinite replay the mempool must hold the whole file)";
      return -1;
    }
  }
  for (uint16_t q = 0; q < ntx; ++q) {
    if (int rc = rte_eth_tx_queue_setup(port, q, ntxd, socket, nullptr); rc != 0) {
      error = "port " + std::to_string(port) + ": TX queue setup failed: " + rte_strerror(-rc);
      return -1;
    }
  }
  rte_eth_promiscuous_enable(port);  // SPAN traffic is not addressed to us; errors are fine
  if (int rc = rte_eth_dev_start(port); rc != 0) {
    error = "port " + std::to_string(port) + " (" + port_name(port) + "): start failed: " +
            rte_strerror(-rc);
    return -1;
  }
  return 0;
}

uint32_t round_pool_size(uint64_t n) {
  // rte_mempool is most memory-efficient at 2^k - 1 elements.
  uint64_t p = 1;
  while (p - 1 < n) p <<= 1;
  return static_cast<uint32_t>(std::min<uint64_t>(p - 1, UINT32_MAX));
}

}  // namespace

void request_stop() {
  if (g_stop.exchange(true)) g_force_stop.store(true);
}

int run_engine(const Config& cfg, const CaptureFileInfo* file, RunReport& report,
               std::string& error, const EngineHooks& hooks) {
  g_stop = false;
  g_force_stop = false;
  const unsigned nrx = cfg.rx_lcores, nw = cfg.workers;
  const unsigned cache = cfg.mempool_cache;
  uint32_t data_room = cfg.mbuf_data_room;
  if (file != nullptr && cfg.pcap_infinite) {
    // net_pcap's in-memory replay cannot chain mbufs: every record must fit
    // one mbuf's data room (after the headroom).
    uint64_t want = uint64_t{file->max_caplen} + RTE_PKTMBUF_HEADROOM;
    if (want > UINT16_MAX) {
      error = "cannot replay '" + cfg.pcap_file + "' from memory: it holds a " +
              std::to_string(file->max_caplen) + "-byte frame, over the 65535-byte mbuf limit";
      return 1;
    }
    data_room = std::max<uint32_t>(data_room, static_cast<uint32_t>(want));
  }
  const uint32_t mbuf_bytes = data_room + kPrivSize + sizeof(rte_mbuf) + 64;

  // Mempool: every ring full, every lcore cache full (1.5x: the flush
  // threshold), a burst in flight per lcore, the NIC descriptors, and for an
  // infinite replay the whole file held by net_pcap.
  uint64_t pool_n = cfg.mempool_size;
  uint64_t lcores = 1 + nrx + nw;
  uint64_t needed = uint64_t{nrx} * nw * cfg.ring_size + lcores * (cache * 3 / 2 + cfg.burst_size * 2) +
                    uint64_t{nrx} * kRxDescriptors + 1024;
  if (file != nullptr && cfg.pcap_infinite) {
    // one mbuf per record, plus the chained ones of records over a data room
    needed += file->packets;
  }
  if (pool_n == 0) pool_n = round_pool_size(needed);

  EalPlan plan = plan_eal(cfg, pool_n * mbuf_bytes);
  std::vector<char*> argv;
  for (auto& a : plan.args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (cfg.log_level == "debug" || cfg.log_level == "info") {
    std::string line;
    for (auto& a : plan.args) line += a + " ";
    std::fprintf(stderr, "spanfeed: EAL arguments: %s\n", line.c_str());
  }
  cpu_set_t process_cpus;  // before the EAL pins this thread: where helper threads may run
  CPU_ZERO(&process_cpus);
  if (sched_getaffinity(0, sizeof(process_cpus), &process_cpus) != 0) CPU_SET(0, &process_cpus);
  int eal_rc = rte_eal_init(static_cast<int>(argv.size() - 1), argv.data());
  if (eal_rc < 0) {
    error = std::string("EAL initialisation failed: ") + rte_strerror(rte_errno) +
            " (check --eal arguments, lcores and memory)";
    return 1;
  }
  struct EalGuard {
    ~EalGuard() { rte_eal_cleanup(); }
  } eal_guard;

  if (rte_lcore_count() < plan.lcores_needed) {
    error = "need " + std::to_string(plan.lcores_needed) + " lcores (1 control + " +
            std::to_string(nrx) + " RX + " + std::to_string(nw) + " workers) but the EAL has " +
            std::to_string(rte_lcore_count()) + "; adjust -l/--lcores in --eal or lcores.*";
    return 1;
  }
  uint16_t nports = rte_eth_dev_count_avail();
  if (nports == 0) {
    error = "no DPDK ports found (no --vdev given, or no NIC bound to vfio-pci/uio)";
    return 1;
  }
  Shared sh;
  sh.cfg = &cfg;
  sh.link = file != nullptr ? file->link : LinkType::kEthernet;
  sh.offline = cfg.offline();
  sh.yield_when_idle = plan.oversubscribed;
  sh.burst = std::min<unsigned>(cfg.burst_size, kMaxBurst);
  sh.clock.init();
  sh.pool_reserve = static_cast<unsigned>(lcores * (cache * 3 / 2) + kRxDescriptors);
  // A finite capture file read by one RX lcore ends the run by itself, in
  // either mode; an infinite replay runs until a signal or --duration.
  if (file != nullptr && !cfg.pcap_infinite && nports == 1 && nrx == 1) {
    sh.finite_file = true;
    sh.expected_packets = file->packets;
  }

  std::vector<uint16_t> port_ids;
  uint16_t pid;
  RTE_ETH_FOREACH_DEV(pid) port_ids.push_back(pid);
  // Packet memory and rings live on the NIC's NUMA socket (the first port's):
  // the NIC DMAs into the mbufs and the RX lcores should sit there too.
  int socket = rte_eth_dev_socket_id(port_ids[0]);
  if (socket < 0) socket = static_cast<int>(rte_socket_id());  // vdevs: no socket of their own
  sh.pool = rte_pktmbuf_pool_create("spanfeed_mbufs", static_cast<unsigned>(pool_n), cache,
                                    kPrivSize, static_cast<uint16_t>(data_room), socket);
  if (sh.pool == nullptr) {
    error = "cannot create mempool of " + std::to_string(pool_n) + " mbufs: " +
            rte_strerror(rte_errno) + " (lower mempool.size or rings.size, or raise eal_memory_mb)";
    return 1;
  }
  if (sh.offline && pool_n < sh.pool_reserve + sh.burst + 1024) {
    error = "mempool.size " + std::to_string(pool_n) + " is too small for a lossless offline run; "
            "need at least " + std::to_string(sh.pool_reserve + sh.burst + 1024);
    return 1;
  }

  // Queues: spread RX lcores over ports; each RX lcore polls its (port,
  // queue) list in turn.
  std::vector<RxQueueRef> all_queues;
  for (size_t i = 0; i < port_ids.size(); ++i) {
    uint16_t nq = static_cast<uint16_t>(std::max<size_t>(1, nrx / port_ids.size() + (i < nrx % port_ids.size())));
    if (setup_port(port_ids[i], nq, sh.pool, error) != 0) return 1;
    for (uint16_t q = 0; q < nq; ++q) all_queues.push_back({port_ids[i], q});
  }
  if (all_queues.size() < nrx) {
    error = "more RX lcores (" + std::to_string(nrx) + ") than RX queues (" +
            std::to_string(all_queues.size()) + "); lower lcores.rx";
    return 1;
  }
  sh.ts_offset = rte_mbuf_dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, nullptr);
  int ts_bit = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, nullptr);
  sh.ts_flag = ts_bit >= 0 ? (1ull << ts_bit) : 0;
  if (sh.ts_flag == 0) sh.ts_offset = -1;
  // net_pcap fills the dynfield with microseconds; other PMDs use their own
  // clock units, which we do not interpret: take TSC time for them.
  sh.ts_is_us = file != nullptr;
  if (file == nullptr) sh.ts_offset = -1;
  sh.packet_time = sh.ts_offset >= 0;

  // Records leave through the exporter thread (off the lcores).
  std::unique_ptr<Exporter> exporter;
  if (cfg.job == JobKind::kRecords) {
    ExportConfig ec;
    for (const auto& o : cfg.outputs) ec.outputs.push_back(parse_output(o));
    ec.offline = cfg.offline();
    ec.gelf.compression = cfg.gelf_compression == "gzip"   ? GelfConfig::Compression::kGzip
                          : cfg.gelf_compression == "zlib" ? GelfConfig::Compression::kZlib
                                                           : GelfConfig::Compression::kNone;
    ec.gelf.chunk_size = cfg.gelf_chunk_size;
    ec.gelf.retry_s = cfg.gelf_retry_s;
    ec.jsonl_rotate_bytes = cfg.jsonl_rotate_bytes;
    ec.jsonl_keep = cfg.jsonl_keep;
    ec.kafka_props = cfg.kafka_props;
    ec.kafka_flush_timeout_s = cfg.kafka_flush_timeout_s;
    ec.stop = &g_stop;  // sinks and workers end their offline waits on a forced stop
    ec.abandon = &g_force_stop;
    if (ec.offline) {
      // Offline loses nothing: no per-message timeout unless the config sets one.
      bool has_timeout = false;
      for (const auto& [k, v] : ec.kafka_props) has_timeout |= k == "message.timeout.ms";
      if (!has_timeout) ec.kafka_props.insert(ec.kafka_props.begin(), {"message.timeout.ms", "0"});
    }
    // The EAL pinned this (control) thread to lcore 0's CPU, and threads it
    // creates inherit that: create the exporter thread and the sinks' own
    // threads (librdkafka's) on the CPUs the process had that no RX or
    // worker lcore uses (or on all of them when every CPU hosts an lcore).
    cpu_set_t control_cpus;
    bool moved = pthread_getaffinity_np(pthread_self(), sizeof(control_cpus), &control_cpus) == 0;
    if (moved) {
      cpu_set_t spare = process_cpus;
      unsigned lc_id;
      RTE_LCORE_FOREACH_WORKER(lc_id) {
        rte_cpuset_t lc_set = rte_lcore_cpuset(lc_id);
        for (int c = 0; c < CPU_SETSIZE; ++c) {
          if (CPU_ISSET(c, &lc_set)) CPU_CLR(c, &spare);
        }
      }
      if (CPU_COUNT(&spare) == 0) spare = process_cpus;
      moved = pthread_setaffinity_np(pthread_self(), sizeof(spare), &spare) == 0;
    }
    exporter = Exporter::create(ec, nw, error);
    if (exporter) exporter->start();
    if (moved) pthread_setaffinity_np(pthread_self(), sizeof(control_cpus), &control_cpus);
    if (!exporter) return 1;
  }

  // The capture filter, compiled for the source's link type.
  std::unique_ptr<dpdk::CaptureFilter> filter;
  if (!cfg.filter.empty()) {
    filter = dpdk::CaptureFilter::create(cfg.filter, file != nullptr ? file->dlt : 1 /* EN10MB */, error);
    if (!filter) return 1;
    sh.filter = filter.get();
    if (cfg.log_level == "info" || cfg.log_level == "debug") {
      std::fprintf(stderr, "spanfeed: filter '%s' runs on %s\n", cfg.filter.c_str(), filter->engine());
    }
  }

  // Counters, contexts, rings.
  std::vector<RxCounters> rx_counters(nrx);
  std::vector<WorkerCounters> w_counters(nw);
  std::vector<std::vector<rte_ring*>> rings(nrx, std::vector<rte_ring*>(nw, nullptr));
  struct RingGuard {
    std::vector<std::vector<rte_ring*>>& r;
    ~RingGuard() {
      for (auto& row : r) for (auto* x : row) if (x) rte_ring_free(x);
    }
  } ring_guard{rings};
  for (unsigned r = 0; r < nrx; ++r) {
    for (unsigned w = 0; w < nw; ++w) {
      char name[RTE_RING_NAMESIZE];
      std::snprintf(name, sizeof(name), "rx%u_w%u", r, w);
      rings[r][w] = dpdk::create_pair_ring(name, cfg.ring_size, socket);
      if (rings[r][w] == nullptr) {
        error = std::string("cannot create ring ") + name + ": " + rte_strerror(rte_errno);
        return 1;
      }
    }
  }
  std::vector<unsigned> lcore_ids;
  unsigned lc;
  RTE_LCORE_FOREACH_WORKER(lc) lcore_ids.push_back(lc);
  for (unsigned r = 0; r < nrx; ++r) {
    auto ctx = std::make_unique<RxContext>();
    ctx->sh = &sh;
    ctx->index = r;
    ctx->lcore = lcore_ids[r];
    for (size_t q = r; q < all_queues.size(); q += nrx) ctx->queues.push_back(all_queues[q]);
    ctx->rings = rings[r];
    ctx->counters = &rx_counters[r];
    sh.rx.push_back(std::move(ctx));
  }
  for (unsigned w = 0; w < nw; ++w) {
    auto ctx = std::make_unique<WorkerContext>();
    ctx->sh = &sh;
    ctx->index = w;
    ctx->lcore = lcore_ids[nrx + w];
    for (unsigned r = 0; r < nrx; ++r) ctx->rings.push_back(rings[r][w]);
    ctx->counters = &w_counters[w];
    std::string part = cfg.flows_out.empty() ? "" : cfg.flows_out + ".part" + std::to_string(w);
    ctx->job = make_job(cfg, w, w_counters[w], part, exporter.get(), hooks.rules);
    ctx->scratch.resize(kScratchBytes);
    sh.workers.push_back(std::move(ctx));
  }

  // Launch workers first so the rings drain from the first burst on.
  auto t0 = std::chrono::steady_clock::now();
  for (auto& w : sh.workers) rte_eal_remote_launch(worker_main, w.get(), w->lcore);
  for (auto& r : sh.rx) rte_eal_remote_launch(rx_main, r.get(), r->lcore);

  // Everything the counters say now, as a report: used every second for
  // /metrics and the status line (live = the lcores are still running: job
  // counters are read while they change, and may be a burst behind) and once
  // at the end for the summary.
  auto take_snapshot = [&](RunReport& rep, bool final) {
    if (hooks.rules != nullptr) rep.rules = hooks.rules->report();
    rep.nics.clear();
    rep.rx.clear();
    rep.workers.clear();
    rep.sinks.clear();
    rep.mode = sh.offline ? "offline" : "live";
    rep.job = to_string(cfg.job);
    rep.link_type = std::string(to_string(sh.link));
    rep.expected_packets = file != nullptr && !cfg.pcap_infinite ? file->packets : 0;
    for (uint16_t p : port_ids) {
      rte_eth_stats st{};
      rte_eth_stats_get(p, &st);
      NicSnapshot ns{p, port_name(p), st.ipackets, st.ibytes, st.imissed, st.ierrors,
                     st.rx_nombuf, {}};
      int nx = rte_eth_xstats_get(p, nullptr, 0);
      if (nx > 0) {
        std::vector<rte_eth_xstat> xs(static_cast<size_t>(nx));
        std::vector<rte_eth_xstat_name> names(static_cast<size_t>(nx));
        if (rte_eth_xstats_get_names(p, names.data(), static_cast<unsigned>(nx)) == nx &&
            rte_eth_xstats_get(p, xs.data(), static_cast<unsigned>(nx)) == nx) {
          for (const auto& x : xs) ns.xstats.emplace_back(names[x.id].name, x.value);
        }
      }
      rep.nics.push_back(std::move(ns));
    }
    for (unsigned r = 0; r < nrx; ++r) {
      const auto& c = rx_counters[r];
      RxSnapshot x;
      x.lcore = sh.rx[r]->lcore;
      x.received = c.received.get();
      x.bytes = c.bytes.get();
      for (size_t i = 0; i < x.outcome.size(); ++i) x.outcome[i] = c.outcome[i].get();
      x.ip_fragments = c.ip_fragments.get();
      x.l4_truncated = c.l4_truncated.get();
      x.snaplen_truncated = c.snaplen_truncated.get();
      x.ring_wait_spins = c.ring_wait_spins.get();
      rep.rx.push_back(x);
    }
    for (unsigned w = 0; w < nw; ++w) {
      const auto& c = w_counters[w];
      WorkerSnapshot ws;
      ws.lcore = sh.workers[w]->lcore;
      ws.received = c.received.get();
      ws.order_violations = c.order_violations.get();
      ws.multi_segment = c.multi_segment.get();
      ws.packets = c.packets.get();
      ws.payload_bytes = c.payload_bytes.get();
      ws.busy_s = static_cast<double>(c.busy_cycles.get()) / static_cast<double>(rte_get_tsc_hz());
      sh.workers[w]->job->report(ws);
      rep.workers.push_back(ws);
    }
    rep.gauges.ring_size = cfg.ring_size;
    rep.gauges.ring_used.assign(nrx, std::vector<uint64_t>(nw, 0));
    for (unsigned r = 0; r < nrx; ++r) {
      for (unsigned w = 0; w < nw; ++w) rep.gauges.ring_used[r][w] = rte_ring_count(rings[r][w]);
    }
    rep.gauges.mempool_size = sh.pool->size;
    rep.gauges.mempool_in_use = rte_mempool_in_use_count(sh.pool);
    if (exporter) {
      rep.gauges.export_queue_depth = exporter->queue_depth();
      for (size_t i = 0; i < exporter->sink_count(); ++i) {
        const SinkCounters& c = exporter->sink_counters(i);
        rep.sinks.push_back({exporter->sink_spec(i).text, c.batches.load(), c.records.load(),
                             c.queued.load(), c.delivered.load(), c.failed.load(),
                             c.dropped.load(), c.bytes.load(),
                             final ? exporter->sink(i).failure_reasons()
                                   : std::vector<std::pair<std::string, uint64_t>>{},
                             c.waiting_for_broker.load() != 0, c.broker_wait_ms.load() / 1e3});
      }
    }
  };

  bool interrupted = false;
  // The first snapshot goes out at once: /metrics has numbers from launch on.
  auto last_publish = std::chrono::steady_clock::now() - std::chrono::milliseconds(hooks.period_ms);
  RunReport live;
  live.source = report.source;
  live.capture = report.capture;
  // One control-loop turn (20 ms): stop on --duration, reloads, publish.
  // Returns false once `done` says the awaited part has finished.
  auto control_turn = [&](const auto& done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (g_stop.load()) interrupted = true;
    auto now = std::chrono::steady_clock::now();
    double el = std::chrono::duration<double>(now - t0).count();
    if (cfg.duration_s > 0 && el >= cfg.duration_s && !g_stop.load()) {
      g_stop.store(true);
      interrupted = true;
    }
    if (done()) return false;
    if (hooks.on_tick) hooks.on_tick();
    if (now - last_publish >= std::chrono::milliseconds(hooks.period_ms)) {
      last_publish = now;
      live.elapsed_s = el;
      live.interrupted = interrupted;
      take_snapshot(live, false);
      if (hooks.on_snapshot) hooks.on_snapshot(live, false);
    }
    return true;
  };
  while (control_turn([&] {
    bool all_done = true;
    for (auto& w : sh.workers) all_done &= w->done.load(std::memory_order_acquire);
    return all_done;
  })) {
  }
  rte_eal_mp_wait_lcore();
  if (exporter) {
    // Every worker has handed over its last batch: drain and flush. Offline,
    // the sinks may wait for a broker for as long as it is down: keep
    // publishing (the wait shows in /metrics and on stderr) until they end.
    exporter->begin_stop();
    while (control_turn([&] { return exporter->finished(); })) {
    }
    exporter->stop();
  }
  auto t1 = std::chrono::steady_clock::now();
  report.interrupted = interrupted;
  report.elapsed_s = std::chrono::duration<double>(t1 - t0).count();
  take_snapshot(report, true);
  for (uint16_t p : port_ids) {
    rte_eth_dev_stop(p);
    rte_eth_dev_close(p);
  }
  if (hooks.on_snapshot) hooks.on_snapshot(report, true);
  sh.workers.clear();  // jobs release their state (and close files) before the mempool goes
  if (!cfg.flows_out.empty()) {
    // Stitch the workers' parts into one file (control core, after the run).
    std::FILE* out = std::fopen(cfg.flows_out.c_str(), "w");
    for (unsigned w = 0; w < nw; ++w) {
      std::string part = cfg.flows_out + ".part" + std::to_string(w);
      if (std::FILE* in = std::fopen(part.c_str(), "r")) {
        char buf[1 << 16];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof(buf), in)) > 0 && out != nullptr) std::fwrite(buf, 1, n, out);
        std::fclose(in);
      }
      std::remove(part.c_str());
    }
    if (out == nullptr || std::fclose(out) != 0) {
      error = "cannot write flows output '" + cfg.flows_out + "'";
      rte_mempool_free(sh.pool);
      return 1;
    }
  }
  rte_mempool_free(sh.pool);
  return 0;
}

}  // namespace spanfeed
