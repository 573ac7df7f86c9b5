// The offline/live difference, decided once per run: a lossless run (a
// capture file) waits wherever a live run drops and counts. A plain value,
// copied into each component at construction; any thread, no allocation.
#pragma once

#include <sched.h>
#include <time.h>

namespace spanfeed {

class CapturePolicy {
 public:
  // Offline: nothing is lost; back-pressure travels from the sinks to RX,
  // and the run ends by itself when the file is done.
  static constexpr CapturePolicy lossless() { return CapturePolicy(true); }
  // Live: nothing waits; a full ring, batch pool or sink buffer is a counted
  // drop.
  static constexpr CapturePolicy drop_and_count() { return CapturePolicy(false); }

  constexpr CapturePolicy() = default;  // live

  // RX lcore: a full worker ring is waited on, not dropped.
  constexpr bool wait_for_ring_space() const { return lossless_; }
  // RX lcore: stop polling while the mempool runs low (net_pcap loses a
  // packet it has read when it finds no mbuf).
  constexpr bool keep_mbufs_in_reserve() const { return lossless_; }
  // Worker: no free export batch means wait for the exporter, not drop.
  constexpr bool wait_for_batches() const { return lossless_; }
  // Exporter thread: sinks wait (Kafka queue full, GELF reconnecting).
  constexpr bool wait_for_sinks() const { return lossless_; }
  // Kafka: no per-message delivery timeout unless the config sets one.
  constexpr bool deliver_without_timeout() const { return lossless_; }
  // Ledger: an uninterrupted run must have received every record of the file.
  constexpr bool expects_whole_input() const { return lossless_; }
  // Idle lcores (RX on a full ring, a worker on empty rings or without a free
  // export batch) sleep briefly once a few polls found nothing: an offline
  // run's CPU time is its work, not its waiting. Live polls without sleeping
  // (a sleep would be packets lost on the NIC).
  constexpr bool sleep_when_idle() const { return lossless_; }
  // Large preallocated pools (the reassembly's out-of-order arena) are
  // touched at start-up, so that no page fault lands on the data path (live);
  // offline, their pages become resident as used: a quicker start, and a
  // small capture stays small.
  constexpr bool prefault_pools() const { return !lossless_; }

  constexpr bool is_lossless() const { return lossless_; }
  // "offline" or "live", as summaries and metrics name the mode.
  constexpr const char* name() const { return lossless_ ? "offline" : "live"; }

 private:
  constexpr explicit CapturePolicy(bool lossless) : lossless_(lossless) {}
  bool lossless_ = false;
};

// How a loop that found nothing to do waits before it looks again, as the
// policy says. Live: a CPU pause, or a yield when lcores share CPUs. Offline:
// a few pauses (a ring usually refills within a burst), then short sleeps.
// reset() once the loop found work. Any thread; no allocation.
class IdleWait {
 public:
  // Pauses before an offline wait starts sleeping (a few microseconds).
  static constexpr unsigned kPausesBeforeSleep = 64;
  // Offline sleeps double from the first to the longest while nothing comes:
  // short against what a ring holds (4096 packets are milliseconds of work),
  // long against the cost of waking (a context switch each), so a lcore
  // waiting on a slower one wakes a few times per ring, not per burst.
  static constexpr long kFirstSleepNs = 50'000;
  static constexpr long kLongestSleepNs = 400'000;

  constexpr IdleWait(CapturePolicy policy, bool shared_cpu)
      : sleep_(policy.sleep_when_idle()), yield_(shared_cpu) {}

  void wait() {
    if (idle_ < kPausesBeforeSleep) {
      ++idle_;
      cpu_pause();
    } else if (sleep_) {
      const timespec ts{0, sleep_ns_};
      clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr);
      if (sleep_ns_ < kLongestSleepNs) sleep_ns_ *= 2;
    } else if (yield_) {
      sched_yield();
    } else {
      cpu_pause();
    }
  }
  void reset() {
    idle_ = 0;
    sleep_ns_ = kFirstSleepNs;
  }

 private:
  static void cpu_pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
  bool sleep_;
  bool yield_;
  unsigned idle_ = 0;
  long sleep_ns_ = kFirstSleepNs;
};

}  // namespace spanfeed
