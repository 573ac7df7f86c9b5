// Per-lcore counters: plain cache-line aligned structs bumped by their own
// lcore and read (relaxed) by the control core. No allocation.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

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
  kCount,
};

std::string_view to_string(RxOutcome o);
RxOutcome rx_outcome_for(ParseOutcome p);

// A counter written by exactly one thread and read by others. Relaxed atomics
// compile to plain loads/stores on x86 but keep the reads race-free.
struct Counter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n) { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

struct alignas(64) RxCounters {
  Counter received;   // packets returned by rte_eth_rx_burst
  Counter bytes;      // captured bytes of those
  std::array<Counter, static_cast<size_t>(RxOutcome::kCount)> outcome;
  // Informational (not ledger lines): a delivered packet may carry these.
  Counter ip_fragments;
  Counter l4_truncated;
  Counter snaplen_truncated;
  Counter ring_wait_spins;  // offline mode: bursts that waited for ring space
  Counter bursts;
  Counter empty_polls;
};

struct alignas(64) WorkerCounters {
  Counter received;        // packets dequeued from the rings
  Counter order_violations;  // per-ring RX sequence went backwards (must stay 0)
  Counter multi_segment;   // chained mbufs linearised into scratch
  Counter busy_cycles;     // TSC cycles spent processing bursts (not polling)
  // payload-sum job
  Counter packets;
  Counter payload_bytes;
};

}  // namespace spanfeed
