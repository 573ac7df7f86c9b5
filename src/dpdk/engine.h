// The capture engine: EAL, ports, mempool, rings, RX and worker lcores, run
// to completion. The one entry point into the DPDK adapter (src/dpdk/); it
// knows nothing of jobs, exporters, rules or the run report: it takes a small
// config and a per-worker packet-handler factory and hands back raw counters.
// Called on the main (control) lcore; allocates at set-up.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/capture_file.h"
#include "spanfeed/capture_policy.h"
#include "spanfeed/counters.h"
#include "spanfeed/packet.h"
#include "spanfeed/packet_handler.h"

namespace spanfeed {

struct EngineConfig {
  // --- source: a capture file, a Linux interface, or the EAL arguments alone ---
  std::string pcap_file;       // net_pcap vdev
  bool pcap_infinite = false;  // replay the file from memory
  // Read pcap_file through the net_pcap vdev (libpcap, one copy per packet)
  // instead of mapping it and attaching the records to mbufs (no copy).
  bool pcap_pmd = false;
  const CaptureFileInfo* file = nullptr;  // the probed capture file (pcap runs)
  std::string iface;           // net_af_packet vdev
  std::string eal_args;        // raw EAL arguments, appended
  std::string filter;          // tcpdump expression run on the RX lcores ("" = none)
  bool filter_inner = false;   // run it on the innermost IP packet (after decapsulation)
  CapturePolicy policy;        // lossless (offline) or drop-and-count (live)
  double duration_s = 0;       // stop after this long; 0 = end of input or stop request
  // --- lcores ---
  unsigned rx_lcores = 1;
  unsigned workers = 2;
  std::vector<int> cpus;       // CPUs to place lcores on; empty = process affinity
  bool hash_vlan = true;       // VLAN ids part of the flow hash
  DecapConfig decap;           // encapsulations RX removes before the hash
  bool defrag = true;          // reassemble IP fragments on the workers (rte_ip_frag)
  uint32_t defrag_max_datagrams = 512;  // per worker: datagrams in reassembly at once
  // Mirror copies of a fragment seen within this window are dropped before
  // reassembly (0: off); dedup.window_us when dedup is on for this input.
  uint64_t defrag_dedup_window_ns = 0;
  double defrag_timeout_s = 5;          // packet time (offline) / TSC time (live)
  // --- sizes ---
  uint32_t ring_size = 4096;
  uint32_t burst_size = 32;
  uint32_t mempool_size = 0;   // 0 = sized from rings and bursts
  uint32_t mempool_cache = 256;
  uint32_t mbuf_data_room = 2048 + 128;
  uint32_t eal_memory_mb = 0;  // -m floor for --no-huge runs; 0 = sized from the pool
  std::string log_level = "warning";  // DPDK log level; info/debug also print the plan
};

// One worker lcore's loop counters (the handler reports its own).
struct WorkerLoopSnapshot : WorkerCountersOf<uint64_t> {
  unsigned lcore = 0;
  bool defrag_present = false;
  DefragCounters defrag;  // IP fragment reassembly (ip_fragments.reassemble)
  double busy_s = 0;  // time spent processing packets (the rest was polling/idle)
};

// Every raw counter the engine keeps, read on the control core.
struct EngineCounters {
  double elapsed_s = 0;
  bool interrupted = false;  // stopped by request_stop() or the duration
  LinkType link = LinkType::kEthernet;
  std::vector<NicSnapshot> nics;
  std::vector<RxSnapshot> rx;
  std::vector<WorkerLoopSnapshot> workers;
  uint64_t ring_size = 0;
  std::vector<std::vector<uint64_t>> ring_used;  // [rx][worker] slots in use
  uint64_t mempool_size = 0, mempool_in_use = 0;
  // The mapped capture file as read so far (`present`: a finite file whose
  // records were not counted before the run): `records` read so far;
  // `ended`, `stopped_early` and `truncated_by_snaplen` once `final` is.
  struct FileRead {
    bool present = false;
    uint64_t records = 0, truncated_by_snaplen = 0, offset = 0, size = 0;
    bool ended = false, stopped_early = false;
  } file;
};

struct EngineHooks {
  // Before launch, once per worker, all workers' at once: each call on a
  // thread of its own pinned to that worker's CPUs (so it must be safe to
  // call concurrently). The worker's packet handler; the engine owns it and
  // destroys it before run_engine returns. An exception is rethrown on the
  // control core.
  std::function<std::unique_ptr<PacketHandler>(unsigned worker)> make_handler;
  // Control core, after the EAL and ports are up and before handlers are
  // made: start helper threads. The calling thread's CPU affinity is moved
  // to CPUs no lcore uses while it runs, so threads it creates land there.
  // Return false with `error` set to abort the run.
  std::function<bool(std::string& error)> start_helpers;
  // Control core, once every lcore has stopped (every handler has finished):
  // begin stopping the helpers (the exporter drains and flushes). The
  // control loop keeps turning (counters, ticks, the duration) until
  // `helpers_done` says they have stopped (no `helpers_done`: at once).
  // helpers_done(wait) waits up to `wait` for them (returning as soon as they
  // have stopped: no turn is slept out); true once they have.
  std::function<void()> stop_helpers;
  std::function<bool(std::chrono::milliseconds wait)> helpers_done;
  // Control core: the counters every `period_ms` while the lcores run
  // (final = false; handlers may be a burst ahead), and once after the
  // lcores and helpers have stopped (final = true; handlers are still alive).
  unsigned period_ms = 1000;
  std::function<void(const EngineCounters&, bool final)> on_counters;
  // Control core, every control-loop turn (about 20 ms).
  std::function<void()> on_tick;
};

// Runs a capture to completion. Returns 0 on success; on a start-up failure
// returns non-zero with `error` set (nothing was captured).
int run_engine(const EngineConfig& cfg, const EngineHooks& hooks, std::string& error);

// Async-signal-safe. First call: stop receiving, drain, flush, report.
// Second call: stop waiting on full rings too (lossless runs), count the rest.
void request_stop();

// The run's stop requests, for helpers that wait in lossless runs (the
// exporter's sinks, the workers' batch wait): `stop_flag` is set by the first
// request_stop() or the duration, `abandon_flag` by the second request_stop().
const std::atomic<bool>& stop_flag();
const std::atomic<bool>& abandon_flag();

}  // namespace spanfeed
