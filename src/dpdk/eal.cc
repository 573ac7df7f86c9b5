// EAL planning and lifetime. Control core, start-up and teardown; allocates.
#include "dpdk/eal.h"
#include "dpdk/eal_wraps.h"

#include <pthread.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_memory.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>

namespace spanfeed::dpdk {
namespace {

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

std::vector<int> usable_cpus(const EngineConfig& cfg) {
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

// The EAL heap beyond the mempool: rings, ethdev queues, memzones, the
// EAL's own tables. --no-huge memory is only resident once used.
constexpr uint64_t kEalBaseMb = 64;

}  // namespace

EalPlan plan_eal(const EngineConfig& cfg, uint64_t pool_bytes) {
  EalPlan plan;
  auto user = split_args(cfg.eal_args);
  plan.lcores_needed = 1 + cfg.rx_lcores + cfg.workers;
  plan.args.push_back("spanfeed");
  if (!has_arg(user, {"-l", "--lcores", "-c"})) {
    auto cpus = usable_cpus(cfg);
    std::string map;
    std::vector<int> used;  // distinct CPUs: --cpus may name one twice (0,0,1: control and RX on CPU 0)
    for (unsigned i = 0; i < plan.lcores_needed; ++i) {
      if (i) map += ",";
      const int cpu = cpus[i % cpus.size()];
      map += std::to_string(i) + "@" + std::to_string(cpu);
      if (std::find(used.begin(), used.end(), cpu) == used.end()) used.push_back(cpu);
    }
    plan.args.push_back("--lcores=" + map);
    plan.oversubscribed = plan.lcores_needed > used.size();
  }
  bool vdev_source = !cfg.pcap_file.empty() || !cfg.iface.empty();
  // File and af_packet sources never need hugepages; raw EAL devices use them
  // when the machine has some free, and run without otherwise.
  bool no_huge = vdev_source || free_hugepages() == 0;
  if (no_huge && !has_arg(user, {"--huge-dir", "--socket-mem", "--no-huge", "-m", "--in-memory"})) {
    // No hugepages needed for file and af_packet sources; size the heap
    // from the mempool (plus room for rings, ports and the EAL itself:
    // kEalBaseMb). eal_memory_mb (0 = automatic) is a floor.
    uint64_t mb = std::max<uint64_t>(cfg.eal_memory_mb, pool_bytes / (1 << 20) * 5 / 4 + kEalBaseMb);
    plan.args.push_back("--no-huge");
    plan.args.push_back("-m");
    plan.args.push_back(std::to_string(mb));
    // Only a vhost-user backend or a secondary process (dpdk-pdump, dpdk-proc-info: they need a
    // --file-prefix) maps the EAL's memory: only they need DPDK's shared memfd.
    plan.private_memory = !has_arg(user, {"--file-prefix", "--proc-type"}) &&
                          std::none_of(user.begin(), user.end(), [](const std::string& a) {
                            return a.find("virtio_user") != std::string::npos || a.find("vhost") != std::string::npos;
                          });
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
  if (!cfg.pcap_file.empty() && cfg.pcap_pmd) {
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

std::unique_ptr<Eal> Eal::start(const EalPlan& plan, bool verbose, std::string& error) {
  std::vector<std::string> args = plan.args;  // rte_eal_init may permute argv
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (verbose) {
    std::string line;
    for (auto& a : plan.args) line += a + " ";
    std::fprintf(stderr, "spanfeed: EAL arguments: %s\n", line.c_str());
  }
  std::unique_ptr<Eal> eal(new Eal());
  CPU_ZERO(&eal->process_cpus_);
  if (sched_getaffinity(0, sizeof(eal->process_cpus_), &eal->process_cpus_) != 0) {
    CPU_SET(0, &eal->process_cpus_);
  }
  int rc;
  {
    EalInitScope shortcuts(plan.private_memory);  // calibration, probes, memory (eal_wraps.h)
    rc = rte_eal_init(static_cast<int>(argv.size() - 1), argv.data());
  }
  if (verbose) {
    char calibrated[64] = "";
    if (eal_calibration_us() != 0) {
      std::snprintf(calibrated, sizeof(calibrated), " (calibrated over %.1f ms)", eal_calibration_us() / 1e3);
    }
    std::fprintf(stderr, "spanfeed: EAL: TSC %.3f GHz%s, %u NUMA and %u CPU lookups answered from listings%s\n",
                 static_cast<double>(rte_get_tsc_hz()) / 1e9, calibrated, eal_node_lookups_answered(),
                 eal_cpu_lookups_answered(), eal_memory_private() ? ", memory private" : "");
  }
  if (rc < 0) {
    error = std::string("EAL initialisation failed: ") + rte_strerror(rte_errno) +
            " (check --eal arguments, lcores and memory)";
    eal.release();  // never initialised: nothing to clean up
    return nullptr;
  }
  if (eal_memory_private()) {
    // Private --no-huge memory may take transparent huge pages, as hugepage-backed memory has
    // them by construction: the mbufs and rings every packet touches then cost far fewer TLB
    // misses and page faults (mixed.pcap, one worker: ~5% of the whole run). Advice only: the
    // kernel may decline (transparent_hugepage=never), and the run goes on with 4 KiB pages.
    rte_memseg_list_walk(
        [](const rte_memseg_list* msl, void*) {
          if (msl->base_va != nullptr && msl->len != 0) madvise(msl->base_va, msl->len, MADV_HUGEPAGE);
          return 0;
        },
        nullptr);
  }
  return eal;
}

Eal::~Eal() { rte_eal_cleanup(); }

bool Eal::run_off_lcores(const std::function<bool()>& fn) const {
  // The EAL pinned this (control) thread to lcore 0's CPU, and threads it
  // creates inherit that.
  cpu_set_t control_cpus;
  bool moved = pthread_getaffinity_np(pthread_self(), sizeof(control_cpus), &control_cpus) == 0;
  if (moved) {
    cpu_set_t spare = process_cpus_;
    unsigned lc_id;
    RTE_LCORE_FOREACH_WORKER(lc_id) {
      rte_cpuset_t lc_set = rte_lcore_cpuset(lc_id);
      for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &lc_set)) CPU_CLR(c, &spare);
      }
    }
    if (CPU_COUNT(&spare) == 0) spare = process_cpus_;
    moved = pthread_setaffinity_np(pthread_self(), sizeof(spare), &spare) == 0;
  }
  bool ok = fn();
  if (moved) pthread_setaffinity_np(pthread_self(), sizeof(control_cpus), &control_cpus);
  return ok;
}

}  // namespace spanfeed::dpdk
