// Start-up shortcuts inside rte_eal_init, for a statically linked DPDK (-Wl,--wrap=get_tsc_freq,
// --wrap=eal_cpu_socket_id, --wrap=eal_cpu_detected, --wrap=memfd_create: only DPDK's own objects
// and ours see these). Control core, start-up only; allocates once (the NUMA node and CPU
// listings). With a shared DPDK (no --wrap) none of them is called.
#include "dpdk/eal_wraps.h"

#include <dirent.h>
#include <fcntl.h>
#include <rte_config.h>
#include <rte_cycles.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <set>
#include <string>
#include <utility>

namespace spanfeed::dpdk {
namespace {

thread_local bool t_in_eal_init = false;
thread_local bool t_private_memory = false;
std::atomic<unsigned> g_calibration_us{0};
std::atomic<unsigned> g_node_lookups{0};
std::atomic<unsigned> g_cpu_lookups{0};
std::atomic<unsigned> g_private_memory{0};

// DPDK's TSC calibration without /dev/cpu/*/msr or CPUID leaf 0x15 (get_tsc_freq in
// lib/eal/linux/eal_timer.c) reads CLOCK_MONOTONIC_RAW and the TSC, sleeps 100 ms, reads both
// again and rounds the ratio to the nearest 10 MHz. Here the first reading is taken when the
// process starts (a constructor), so the window is everything the process did before the EAL
// asks, and only what is missing of kWindowNs is slept. Each reading brackets the TSC between two
// clock reads and keeps the tightest of five tries (~40 ns), so 2 ms resolves the frequency to
// ~4e-5 (100 kHz at 2.6 GHz), 100 times finer than the rounding, and a preemption between the
// reads cannot skew it.
constexpr int64_t kWindowNs = 2'000'000;
constexpr double kRoundHz = 1e7;  // DPDK's CYC_PER_10MHZ

struct ClockTsc {
  int64_t ns = -1;  // CLOCK_MONOTONIC_RAW; -1: unavailable
  uint64_t tsc = 0;
};

int64_t raw_ns() {
  timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC_RAW, &ts) != 0) return -1;
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

ClockTsc read_clock_tsc() {
  ClockTsc best;
  int64_t best_gap = std::numeric_limits<int64_t>::max();
  for (int i = 0; i < 5; ++i) {
    const int64_t a = raw_ns();
    const uint64_t tsc = rte_rdtsc();
    const int64_t b = raw_ns();
    if (a < 0 || b < a) return {};
    if (b - a < best_gap) {
      best_gap = b - a;
      best = {a + (b - a) / 2, tsc};
    }
  }
  return best;
}

const ClockTsc g_process_start = read_clock_tsc();  // static initialisation: the window's start

// Calls f(n, name) for each entry of `dir` named `prefix` and a number ("node0", "cpu12"); false
// when `dir` cannot be listed or an f returns false.
template <typename F>
bool for_each_numbered(const std::string& dir, const std::string& prefix, F&& f) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return false;
  const std::string format = prefix + "%u%c";
  bool ok = true;
  while (dirent* e = readdir(d)) {
    unsigned n = 0;
    char tail = 0;
    if (std::sscanf(e->d_name, format.c_str(), &n, &tail) != 1) continue;
    if (!f(n, e->d_name)) {
      ok = false;
      break;
    }
  }
  closedir(d);
  return ok;
}

// (node, cpu) pairs under /sys/devices/system/node: what DPDK's eal_cpu_socket_id asks access()
// about, node after node, for each of RTE_MAX_LCORE (128) lcore ids: ~4,000 snprintf and failing
// lookups. One directory listing per node answers them all the same way.
struct NodeMap {
  bool ok = false;  // false: a directory could not be listed, every lookup goes to the file system
  std::set<std::pair<unsigned, unsigned>> cpus;
};

const NodeMap& node_map() {
  static const NodeMap m = [] {
    NodeMap out;
    out.ok = for_each_numbered("/sys/devices/system/node", "node", [&](unsigned node, const char* name) {
      return for_each_numbered(std::string("/sys/devices/system/node/") + name, "cpu", [&](unsigned cpu, const char*) {
        out.cpus.insert({node, cpu});
        return true;
      });
    });
    return out;
  }();
  return m;
}

// The CPUs whose "/sys/devices/system/cpu/cpu<N>/topology/core_id" exists: what DPDK's
// eal_cpu_detected asks access() about for every lcore id. One listing of the CPU directory and
// one check per CPU found answer them.
struct CpuMap {
  bool ok = false;  // false: the directory could not be listed
  std::set<unsigned> cpus;
};

const CpuMap& cpu_map() {
  static const CpuMap m = [] {
    CpuMap out;
    out.ok = for_each_numbered("/sys/devices/system/cpu", "cpu", [&](unsigned cpu, const char* name) {
      const std::string path = std::string("/sys/devices/system/cpu/") + name + "/topology/core_id";
      if (faccessat(AT_FDCWD, path.c_str(), F_OK, 0) == 0) out.cpus.insert(cpu);
      return true;
    });
    return out;
  }();
  return m;
}

// DPDK's own probe, for when a listing failed.
bool exists(const std::string& path) { return faccessat(AT_FDCWD, path.c_str(), F_OK, 0) == 0; }

}  // namespace

EalInitScope::EalInitScope(bool private_memory) {
  t_in_eal_init = true;
  t_private_memory = private_memory;
}
EalInitScope::~EalInitScope() {
  t_in_eal_init = false;
  t_private_memory = false;
}

unsigned eal_calibration_us() { return g_calibration_us.load(std::memory_order_relaxed); }
unsigned eal_node_lookups_answered() { return g_node_lookups.load(std::memory_order_relaxed); }
unsigned eal_cpu_lookups_answered() { return g_cpu_lookups.load(std::memory_order_relaxed); }
bool eal_memory_private() { return g_private_memory.load(std::memory_order_relaxed) != 0; }

}  // namespace spanfeed::dpdk

namespace sd = spanfeed::dpdk;

extern "C" {

// The TSC frequency in Hz, rounded as DPDK rounds it; 0 (DPDK then estimates it) only when
// CLOCK_MONOTONIC_RAW cannot be read, as DPDK's own.
uint64_t __wrap_get_tsc_freq(void) {
  sd::ClockTsc start = sd::g_process_start;
  if (start.ns < 0) start = sd::read_clock_tsc();
  if (start.ns < 0) return 0;
  sd::ClockTsc end = sd::read_clock_tsc();
  if (end.ns < 0) return 0;
  if (end.ns - start.ns < sd::kWindowNs) {
    const int64_t rest = sd::kWindowNs - (end.ns - start.ns);
    const timespec wait = {0, static_cast<long>(rest)};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &wait, nullptr);  // EINTR: the window is read again below
    end = sd::read_clock_tsc();
    if (end.ns < 0) return 0;
  }
  const int64_t window = end.ns - start.ns;
  if (window <= 0 || end.tsc <= start.tsc) return 0;
  const double hz = static_cast<double>(end.tsc - start.tsc) * 1e9 / static_cast<double>(window);
  sd::g_calibration_us.store(static_cast<unsigned>(window / 1000), std::memory_order_relaxed);
  return static_cast<uint64_t>(std::llround(hz / sd::kRoundHz)) * static_cast<uint64_t>(sd::kRoundHz);
}

// The first NUMA node listing `lcore_id` (below RTE_MAX_NUMA_NODES), else 0: DPDK's answer.
unsigned __wrap_eal_cpu_socket_id(unsigned lcore_id) {
  const auto& m = sd::node_map();
  for (unsigned node = 0; node < RTE_MAX_NUMA_NODES; ++node) {
    const bool listed = m.ok ? m.cpus.count({node, lcore_id}) != 0
                             : sd::exists("/sys/devices/system/node/node" + std::to_string(node) + "/cpu" +
                                          std::to_string(lcore_id));
    if (listed) {
      if (m.ok) sd::g_node_lookups.fetch_add(1, std::memory_order_relaxed);
      return node;
    }
  }
  if (m.ok) sd::g_node_lookups.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

// 1 when the CPU `lcore_id` has a topology/core_id file: DPDK's answer.
int __wrap_eal_cpu_detected(unsigned lcore_id) {
  const auto& m = sd::cpu_map();
  if (!m.ok) return sd::exists("/sys/devices/system/cpu/cpu" + std::to_string(lcore_id) + "/topology/core_id") ? 1 : 0;
  sd::g_cpu_lookups.fetch_add(1, std::memory_order_relaxed);
  return m.cpus.count(lcore_id) != 0 ? 1 : 0;
}

// --no-huge memory: DPDK backs it with a memfd mapped shared (for a vhost-user backend to map)
// and falls back to private anonymous memory when memfd_create fails. A file or af_packet source
// has no such backend: the private mapping's page faults and its release at exit cost about half
// of a shared file's (~2 ms a run for DPDK's own tables). Everything else goes to the kernel.
int __wrap_memfd_create(const char* name, unsigned flags) {
  if (sd::t_in_eal_init && sd::t_private_memory && name != nullptr && std::strcmp(name, "nohuge") == 0) {
    sd::g_private_memory.store(1, std::memory_order_relaxed);
    errno = ENOSYS;
    return -1;
  }
  return static_cast<int>(syscall(SYS_memfd_create, name, flags));
}

}  // extern "C"
