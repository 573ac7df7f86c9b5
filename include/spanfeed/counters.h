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

#include "spanfeed/defrag_counters.h"
#include "spanfeed/packet.h"

namespace spanfeed {

// Every packet an RX lcore receives ends in exactly one of these.
enum class RxOutcome : uint8_t {
  kDelivered,    // enqueued to a worker ring
  kNonIp,        // not IPv4/IPv6 (ARP, LLDP, ...)
  kTruncated,    // frame ends inside L2 or L3 headers
  kMalformed,    // IP header self-inconsistent
  kRingFull,     // live mode: worker ring full, packet dropped
  kFiltered,     // rejected by the capture filter (--filter)
  kTunnelTooDeep,    // encapsulated deeper than decap.max_depth
  kTunnelMalformed,  // a tunnel header (GRE, ERSPAN, VXLAN, Geneve, NSH) contradicts itself
  kCount,
};

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

struct alignas(64) RxCounters {
  Counter received;   // packets returned by rte_eth_rx_burst
  Counter bytes;      // captured bytes of those
  std::array<Counter, static_cast<size_t>(RxOutcome::kCount)> outcome;
  // Informational (not ledger lines): a delivered packet may carry these.
  Counter ip_fragments;
  // Delivered packets per encapsulation layer removed (a VXLAN inside ERSPAN
  // counts once in each); index TunnelType (kNone: delivered bare).
  std::array<Counter, kTunnelTypeCount> decapsulated;
  Counter l4_truncated;
  Counter snaplen_truncated;
  Counter ring_wait_spins;  // offline mode: looks for ring space that found none (each then paused or slept)
  Counter bursts;
  Counter empty_polls;
};

struct alignas(64) WorkerCounters {
  Counter received;        // packets dequeued from the rings
  Counter order_violations;  // per-ring RX sequence went backwards (must stay 0)
  Counter multi_segment;   // chained mbufs linearised into scratch
  Counter busy_cycles;     // TSC cycles spent processing bursts (not polling)
  std::array<Counter, kDefragCounterCount> defrag;  // kDefragCounterFields order
};

// Snapshots, taken on the control core.
struct NicSnapshot {
  uint16_t port = 0;
  std::string name;
  uint64_t ipackets = 0, ibytes = 0, imissed = 0, ierrors = 0, rx_nombuf = 0;
  std::vector<std::pair<std::string, uint64_t>> xstats;  // the PMD's extended stats
};

struct RxSnapshot {
  unsigned lcore = 0;
  uint64_t received = 0, bytes = 0;
  std::array<uint64_t, static_cast<size_t>(RxOutcome::kCount)> outcome{};
  uint64_t ip_fragments = 0, l4_truncated = 0, snaplen_truncated = 0, ring_wait_spins = 0;
  std::array<uint64_t, kTunnelTypeCount> decapsulated{};
};

}  // namespace spanfeed
