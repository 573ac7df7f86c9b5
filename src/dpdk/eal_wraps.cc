// Start-up shortcuts inside rte_eal_init, for a statically linked DPDK (-Wl,--wrap=nanosleep,
// --wrap=access: only DPDK's own objects and ours see these). Control core, during rte_eal_init
// only (a thread-local flag); allocates once (the NUMA node and CPU listings). Outside that window, and
// with a shared DPDK (no --wrap), they are plain nanosleep and access.
#include "dpdk/eal_wraps.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <set>
#include <string>
#include <utility>

namespace spanfeed::dpdk {
namespace {

thread_local bool t_in_eal_init = false;
std::atomic<unsigned> g_calibrations_shortened{0};
std::atomic<unsigned> g_node_lookups{0};
std::atomic<unsigned> g_cpu_lookups{0};

// DPDK's TSC calibration without /dev/cpu/*/msr or CPUID leaf 0x15 (get_tsc_freq in
// lib/eal/linux/eal_timer.c): clock_gettime, rdtsc, nanosleep(100 ms), clock_gettime, rdtsc, then
// rounded to the nearest 10 MHz. The reads bracket the sleep within ~100 ns, so 5 ms already
// gives the frequency to 2e-5 (50 kHz at 2.6 GHz), 100 times finer than the rounding.
constexpr long kDpdkCalibrationNs = 100'000'000;
constexpr long kCalibrationNs = 5'000'000;

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
// about, once per node for every one of RTE_MAX_LCORE (128) lcore ids: ~4,000 failing lookups.
// One directory listing per node answers them all the same way.
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
// eal_cpu_detected asks access() about for every lcore id (~1,000 lookups, nearly all failing,
// ~2 ms of path walks). One listing of the CPU directory and one check per CPU found answer them.
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

// Reads a decimal of at most 6 digits at `p`, advancing it.
bool read_number(const char*& p, unsigned& out) {
  if (*p < '0' || *p > '9') return false;
  out = 0;
  for (int digits = 0; *p >= '0' && *p <= '9'; ++p) {
    if (++digits > 6) return false;
    out = out * 10 + static_cast<unsigned>(*p - '0');
  }
  return true;
}

// "/sys/devices/system/cpu/cpu<N>/topology/core_id" -> N.
bool parse_cpu_core_id(const char* path, unsigned& cpu) {
  static constexpr char kPrefix[] = "/sys/devices/system/cpu/cpu";
  static constexpr char kSuffix[] = "/topology/core_id";
  if (std::strncmp(path, kPrefix, sizeof(kPrefix) - 1) != 0) return false;
  const char* p = path + sizeof(kPrefix) - 1;
  return read_number(p, cpu) && std::strcmp(p, kSuffix) == 0;
}

// "/sys/devices/system/node/node<N>/cpu<M>" -> N, M (sscanf costs ~2.7 k instructions a call,
// 11 M over DPDK's 4,036 probes; this is ~50).
bool parse_node_cpu(const char* path, unsigned& node, unsigned& cpu) {
  static constexpr char kPrefix[] = "/sys/devices/system/node/node";
  if (std::strncmp(path, kPrefix, sizeof(kPrefix) - 1) != 0) return false;
  const char* p = path + sizeof(kPrefix) - 1;
  if (!read_number(p, node) || std::strncmp(p, "/cpu", 4) != 0) return false;
  p += 4;
  return read_number(p, cpu) && *p == '\0';
}

}  // namespace

EalInitScope::EalInitScope() { t_in_eal_init = true; }
EalInitScope::~EalInitScope() { t_in_eal_init = false; }

unsigned eal_calibrations_shortened() { return g_calibrations_shortened.load(std::memory_order_relaxed); }
unsigned eal_node_lookups_answered() { return g_node_lookups.load(std::memory_order_relaxed); }
unsigned eal_cpu_lookups_answered() { return g_cpu_lookups.load(std::memory_order_relaxed); }

}  // namespace spanfeed::dpdk

using spanfeed::dpdk::g_calibrations_shortened;
using spanfeed::dpdk::g_cpu_lookups;
using spanfeed::dpdk::g_node_lookups;
using spanfeed::dpdk::t_in_eal_init;

extern "C" {

int __wrap_nanosleep(const struct timespec* req, struct timespec* rem) {
  timespec shorter;
  if (t_in_eal_init && rem == nullptr && req != nullptr && req->tv_sec == 0 &&
      req->tv_nsec == spanfeed::dpdk::kDpdkCalibrationNs) {
    shorter = {0, spanfeed::dpdk::kCalibrationNs};
    req = &shorter;
    g_calibrations_shortened.fetch_add(1, std::memory_order_relaxed);
  }
  // nanosleep is clock_nanosleep on CLOCK_REALTIME, relative (glibc does the same).
  const int rc = clock_nanosleep(CLOCK_REALTIME, 0, req, rem);
  if (rc != 0) {
    errno = rc;
    return -1;
  }
  return 0;
}

int __wrap_access(const char* path, int mode) {
  // A probe answered from a listing: counted, and 0 or ENOENT as faccessat would say.
  auto answer = [](std::atomic<unsigned>& answered, bool exists) {
    answered.fetch_add(1, std::memory_order_relaxed);
    if (exists) return 0;
    errno = ENOENT;
    return -1;
  };
  unsigned node = 0, cpu = 0;
  if (t_in_eal_init && mode == F_OK && path != nullptr) {
    if (spanfeed::dpdk::parse_node_cpu(path, node, cpu)) {
      const auto& m = spanfeed::dpdk::node_map();
      if (m.ok) return answer(g_node_lookups, m.cpus.count({node, cpu}) != 0);
    } else if (spanfeed::dpdk::parse_cpu_core_id(path, cpu)) {
      const auto& m = spanfeed::dpdk::cpu_map();
      if (m.ok) return answer(g_cpu_lookups, m.cpus.count(cpu) != 0);
    }
  }
  return faccessat(AT_FDCWD, path, mode, 0);
}

}  // extern "C"
