// The RX and worker lcore loops and the state they share: what RX parsed into
// each mbuf, the rings between them, the stop flags. Set up on the control
// core (allocates); the loops themselves never allocate. Internal to the DPDK
// adapter (includes rte_*.h).
#pragma once

#include <rte_common.h>
#include <rte_mbuf.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "spanfeed/capture_policy.h"
#include "spanfeed/counters.h"
#include "spanfeed/fragment_steer.h"
#include "spanfeed/packet.h"
#include "spanfeed/packet_handler.h"

struct rte_mempool;
struct rte_ring;

namespace spanfeed::dpdk {

class CaptureFilter;
class Defragmenter;

inline constexpr unsigned kMaxBurst = 512;
// Multi-segment frames are linearised into this per-worker scratch buffer:
// larger than any IP datagram plus link headers.
inline constexpr size_t kScratchBytes = 256 * 1024;

// Mbuf private area: what the RX lcore parsed, so workers never re-parse.
struct MbufMeta {
  ParsedPacket parsed;
  uint64_t ts_ns;
  uint64_t seq;  // RX order on this RX lcore, for the order check
  uint32_t hash;
};
inline constexpr uint16_t kPrivSize = RTE_ALIGN_CEIL(sizeof(MbufMeta), RTE_MBUF_PRIV_ALIGN);

// Converts TSC readings to wall-clock nanoseconds (live mode timestamps).
struct TscClock {
  uint64_t tsc0 = 0, wall0 = 0, hz = 1;
  void init();
  uint64_t now_ns() const;
};

class FileSource;

// What an RX lcore polls: an ethdev queue, or the mapped capture file.
struct RxQueueRef {
  uint16_t port;
  uint16_t queue;
  FileSource* file = nullptr;
};

struct LoopShared;

// Each lcore's context is its own: aligned, so that no two lcores' contexts
// (allocated one after the other on the control core, with the previous
// worker's allocations between them) share a cache line.
struct alignas(64) RxContext {
  LoopShared* sh = nullptr;
  unsigned lcore = 0;
  std::vector<RxQueueRef> queues;
  std::vector<rte_ring*> rings;  // one per worker
  RxCounters* counters = nullptr;
  // Fragments to their datagram's flow worker (null: one worker, or no reassembly)
  std::unique_ptr<FragmentSteer> frag_steer;
  uint64_t first_packet_tsc = 0;  // TSC of the first burst (start-up timeline); 0 = none yet
  double cpu_s = 0;               // this lcore's CPU time at exit (--log-level info)
};
static_assert(alignof(RxContext) == 64);

struct alignas(64) WorkerContext {
  LoopShared* sh = nullptr;
  unsigned lcore = 0;
  std::vector<rte_ring*> rings;  // one per RX lcore
  WorkerCounters* counters = nullptr;
  std::unique_ptr<PacketHandler> handler;
  std::vector<std::byte> scratch;
  unsigned index = 0;                    // this worker's number (worker_for_hash)
  std::unique_ptr<Defragmenter> defrag;  // null: fragments go on unreassembled
  std::atomic<bool> done{false};
  double cpu_s = 0;  // this lcore's CPU time at exit (--log-level info)
  WorkerContext();
  ~WorkerContext();
};
static_assert(alignof(WorkerContext) == 64);

// The control core waits on it between its turns; a worker lcore rings it
// once, when it has finished, so that the end of a run is seen at once, not
// at the next turn.
class Doorbell {
 public:
  void ring() {
    { std::lock_guard lock(mu_); }  // a waiter between its check and its wait sees the ring
    cv_.notify_all();
  }
  // Waits up to `d` for `done()` (checked under the lock); returns it.
  template <class Done>
  bool wait_for(std::chrono::milliseconds d, const Done& done) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, d, done);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

// What every loop reads; written before launch, read-only afterwards (but
// for rx_done and the doorbell, each on a line of its own: the control core
// locks the doorbell's mutex every turn, and that must not take away the
// line the workers read on every poll).
struct LoopShared {
  const CaptureFilter* filter = nullptr;
  bool filter_inner = false;  // filter the innermost IP packet (DLT_RAW program), not the frame
  LinkType link = LinkType::kEthernet;
  CapturePolicy policy;
  bool hash_vlan = true;
  DecapConfig decap;  // what RX removes before the hash (parse_packet)
  bool yield_when_idle = false;   // more lcores than CPUs
  // A finite capture file read by one RX lcore: the run ends by itself once
  // expected_packets (the records libpcap could read, maybe 0) are in, or,
  // when they were not counted (count_known false: the mapped reader counts
  // as it reads), once the file source has read its last record.
  bool finite_file = false;
  bool count_known = true;
  uint64_t expected_packets = 0;
  unsigned burst = 32;
  rte_mempool* pool = nullptr;
  unsigned pool_reserve = 0;  // lossless: free mbufs the PMD must always find
  int ts_offset = -1;
  uint64_t ts_flag = 0;
  bool ts_is_us = true;  // net_pcap stores microseconds in the dynfield
  // Packets carry capture timestamps (a file, in either mode): timers run on
  // packet time. Otherwise (live ports) on the TSC clock.
  bool packet_time = false;
  TscClock clock;
  std::vector<std::unique_ptr<RxContext>> rx;
  std::vector<std::unique_ptr<WorkerContext>> workers;
  alignas(64) std::atomic<unsigned> rx_done{0};  // read by every worker on every poll
  alignas(64) Doorbell workers_done;  // rung by each worker as it finishes
};

// lcore entry points (rte_eal_remote_launch); `arg` is an RxContext or a
// WorkerContext.
int rx_main(void* arg);
int worker_main(void* arg);

// The stop flags: cleared before a run; set by request_stop() (engine.h),
// and by the control loop when the duration is over.
void reset_stop();
bool stop_requested();
void set_stop();

}  // namespace spanfeed::dpdk
