// Per-lcore counters: plain cache-line aligned structs bumped by their own
// lcore and read (relaxed) by the control core (no allocation), and the
// snapshots the control core takes of them and of the ports (allocate).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spanfeed/counter_list.h"
#include "spanfeed/defrag_counters.h"
#include "spanfeed/packet.h"

namespace spanfeed {

// Every packet an RX lcore receives ends in exactly one of these (the RX
// ledger lines), declared once: X(enumerator, name, help). The enum, its
// names (summary keys, the `outcome` label of rx_outcome_total) and the
// metric's help come from it.
#define SPANFEED_RX_OUTCOMES(X)                                                                            \
  X(kDelivered, delivered, "enqueued to a worker ring.")                                                   \
  X(kNonIp, non_ip, "not IPv4/IPv6 (ARP, LLDP, STP...): normal.")                                          \
  X(kTruncated, truncated,                                                                                 \
    "the frame ends inside the L2, tunnel or IP headers (a tunnel header cut by the snaplen counts here).") \
  X(kMalformed, malformed, "the IP header contradicts itself.")                                            \
  X(kRingFull, ring_full,                                                                                  \
    "live mode: the worker's ring was full and the packet was dropped. Non-zero: workers are behind; add " \
    "workers or `rings.size`.")                                                                            \
  X(kFiltered, filtered, "rejected by the capture filter (`capture.filter` / `--filter`): wanted, not a loss.") \
  X(kTunnelTooDeep, tunnel_too_deep, "more nested encapsulations than `decap.max_depth`.")                 \
  X(kTunnelMalformed, tunnel_malformed,                                                                    \
    "a GRE, ERSPAN, VXLAN, VXLAN-GPE/NSH or Geneve header contradicts itself: the I flag missing, a "      \
    "version we do not know, GRE source routing, an NSH length below 2 words.")

#define SPANFEED_RX_OUTCOME_ENUM(e, name, help) e,
enum class RxOutcome : uint8_t {
  SPANFEED_RX_OUTCOMES(SPANFEED_RX_OUTCOME_ENUM)
  kCount,
};
#undef SPANFEED_RX_OUTCOME_ENUM
inline constexpr size_t kRxOutcomeCount = static_cast<size_t>(RxOutcome::kCount);

#define SPANFEED_RX_OUTCOME_NAME(e, name, help) #name,
#define SPANFEED_RX_OUTCOME_HELP(e, name, help) help,
inline constexpr std::string_view kRxOutcomeNames[] = {SPANFEED_RX_OUTCOMES(SPANFEED_RX_OUTCOME_NAME)};
inline constexpr std::string_view kRxOutcomeHelp[] = {SPANFEED_RX_OUTCOMES(SPANFEED_RX_OUTCOME_HELP)};
#undef SPANFEED_RX_OUTCOME_NAME
#undef SPANFEED_RX_OUTCOME_HELP
// rx_outcome_total (label `outcome`): this, then each outcome's help.
inline constexpr std::string_view kRxOutcomeMetric = "rx_outcome_total";
inline constexpr std::string_view kRxOutcomeIntro =
    "Where each received packet ended; the outcomes sum to `rx_packets_total` (docs/encapsulation.md).";

std::string_view to_string(RxOutcome o);
RxOutcome rx_outcome_for(ParseOutcome p);

// A count one thread writes and other threads read (RX, worker, rules counters): relaxed atomic loads and
// stores, plain moves on x86 (no lock prefix: there is one writer), so the readers' loads are not data races.
// Converts to and from uint64_t, so code that counts and sums reads as it does with a plain integer.
class Counter {
 public:
  Counter(uint64_t v = 0) : v_(v) {}  // NOLINT(google-explicit-constructor): a drop-in integer
  Counter(const Counter& o) : v_(o.get()) {}
  Counter& operator=(const Counter& o) { return set(o.get()); }
  Counter& operator=(uint64_t v) { return set(v); }
  operator uint64_t() const { return get(); }  // NOLINT(google-explicit-constructor)
  Counter& operator++() { return set(get() + 1); }
  Counter& operator--() { return set(get() - 1); }
  Counter& operator+=(uint64_t n) { return set(get() + n); }
  Counter& operator-=(uint64_t n) { return set(get() - n); }
  void add(uint64_t n) { set(get() + n); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  Counter& set(uint64_t v) {
    v_.store(v, std::memory_order_relaxed);
    return *this;
  }
  std::atomic<uint64_t> v_;
};

// A value type's copy of `from` into `to`, element by element (Counter <-> uint64_t).
template <class To, class From, size_t N>
void copy_counter_array(std::array<To, N>& to, const std::array<From, N>& from) {
  for (size_t i = 0; i < N; ++i) to[i] = from[i];
}

// An RX lcore's scalar counters, declared once (counter_list.h): RxCounters'
// and RxSnapshot's fields, the keys of a summary rx_lcores[] entry, the
// /metrics families (label `lcore`) and docs/metrics.md's rx block.
#define SPANFEED_RX_COUNTERS(X)                                                                            \
  X(received, kCounter, "rx_packets_total",                                                                \
    "Packets an RX lcore received from `rte_eth_rx_burst`; the sum of its outcomes. `sum(rate(...))` is "  \
    "the capture's packets/s.")                                                                           \
  X(bytes, kCounter, "", "Captured bytes of those packets.")                                               \
  X(ip_fragments, kCounter, "rx_ip_fragments_total",                                                       \
    "Delivered packets that were IP fragments (without `ip_fragments.reassemble` their flows miss these "  \
    "bytes). Informational.")                                                                             \
  X(l4_truncated, kCounter, "", "Delivered packets whose TCP/UDP header was cut by the capture snaplen.")  \
  X(snaplen_truncated, kCounter, "rx_snaplen_truncated_total",                                             \
    "Delivered packets whose IP payload was cut by the capture snaplen. Informational.")                  \
  X(ring_wait_spins, kCounter, "",                                                                         \
    "Offline mode: looks for space in a full worker ring that found none, each then paused or slept (the " \
    "workers set the pace).")                                                                             \
  X(bursts, kCounter, "",                                                                                  \
    "Polls that returned at least one packet (`received / bursts` is the burst fill).")                    \
  X(empty_polls, kCounter, "", "Polls that returned no packet (an idle RX lcore).")

SPANFEED_COUNTER_STRUCT(RxScalarsOf, kRxCounterFields, SPANFEED_RX_COUNTERS)

template <class V>
struct RxCountersOf : RxScalarsOf<V> {
  std::array<V, kRxOutcomeCount> outcome{};  // index RxOutcome: the ledger lines
  // Informational (not ledger lines): delivered packets per encapsulation
  // layer removed (a VXLAN inside ERSPAN counts once in each); index
  // TunnelType (kNone: delivered bare).
  std::array<V, kTunnelTypeCount> decapsulated{};

  template <class W>
  void copy_to(RxCountersOf<W>& to) const {
    RxScalarsOf<V>::copy_to(to);
    copy_counter_array(to.outcome, outcome);
    copy_counter_array(to.decapsulated, decapsulated);
  }
};

// Bumped by its RX lcore, once per burst.
struct alignas(64) RxCounters : RxCountersOf<Counter> {};
// One per RX lcore in a std::vector: whole cache lines each, so no two lcores
// write to one line (the control core only reads them).
static_assert(alignof(RxCounters) == 64 && sizeof(RxCounters) % 64 == 0);

// A worker loop's counters, declared once: WorkerCounters' and the
// snapshots' fields, the keys of a summary workers[] entry, the /metrics
// families (label `worker`) and docs/metrics.md's workers block (with the
// job's, below).
#define SPANFEED_WORKER_COUNTERS(X)                                                                        \
  X(received, kCounter, "worker_packets_total",                                                            \
    "Packets a worker took from its rings. The sum equals `rx_outcome_total{outcome=\"delivered\"}`. An "  \
    "uneven spread means a few heavy flows (the hash places flows, not packets).")                         \
  X(order_violations, kCounter, "worker_order_violations_total",                                           \
    "Packets that arrived out of RX order on a ring. Must stay 0; non-zero is a bug.")                     \
  X(multi_segment, kCounter, "",                                                                           \
    "Frames chained over several mbufs (jumbo/TSO captures), copied into one buffer and parsed again.")

SPANFEED_COUNTER_STRUCT(WorkerCountersOf, kWorkerCounterFields, SPANFEED_WORKER_COUNTERS)

// Bumped by its worker, once per burst.
struct alignas(64) WorkerCounters : WorkerCountersOf<Counter> {
  // TSC cycles spent processing bursts (not polling); the summary has them in
  // seconds (`busy_s`): the engine knows the TSC rate.
  Counter busy_cycles;
  std::array<Counter, kDefragCounterCount> defrag;  // kDefragCounterFields order
};
// One per worker in a std::vector: whole cache lines each (docs/tuning.md, Scaling).
static_assert(alignof(WorkerCounters) == 64 && sizeof(WorkerCounters) % 64 == 0);

// What every job counts, declared once: written and read by its worker only
// (the control core reads the copy the job publishes, Job::publish). Keys of
// a summary workers[] entry beside the loop's.
#define SPANFEED_JOB_COUNTERS(X)                                                                           \
  X(packets, kCounter, "", "Packets the worker's job was given.")                                          \
  X(payload_bytes, kCounter, "worker_ip_payload_bytes_total",                                              \
    "IP payload bytes (IPv4 total length - header; IPv6 payload length) of the packets a worker processed.")

struct JobCounters {
  SPANFEED_JOB_COUNTERS(SPANFEED_COUNTER_DECLARE)
};

inline constexpr CounterField<JobCounters> kJobCounterFields[] = {
#define SPANFEED_X(...) SPANFEED_COUNTER_ENTRY(JobCounters, __VA_ARGS__)
    SPANFEED_JOB_COUNTERS(SPANFEED_X)
#undef SPANFEED_X
};

// Snapshots, taken on the control core.
struct NicSnapshot {
  uint16_t port = 0;
  std::string name;
  uint64_t ipackets = 0, ibytes = 0, imissed = 0, ierrors = 0, rx_nombuf = 0;
  std::vector<std::pair<std::string, uint64_t>> xstats;  // the PMD's extended stats
};

struct RxSnapshot : RxCountersOf<uint64_t> {
  unsigned lcore = 0;
};

}  // namespace spanfeed
