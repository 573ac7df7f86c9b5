// The RED hand-over between a worker and the control core. The worker owns an Aggregator and
// fills `delta` when the control core asked for it (Suricata's "sync when signalled"): it
// try-locks, so it never waits; once the worker has ended, the control core harvests the
// aggregator itself. No allocation after construction (the delta has room for every series).
#pragma once

#include <atomic>
#include <mutex>

#include "red/aggregator.h"

namespace spanfeed::red {

class Exchange {
 public:
  Exchange(const Shared& shared, uint32_t seed) : agg_(shared, seed) {
    delta_.reserve(agg_.capacity_for_harvest(), shared.buckets());
  }
  Aggregator& aggregator() { return agg_; }

  // Worker, after its counters are published: hands a harvest over when one is wanted and the
  // last one was taken.
  void offer() {
    if (!want_.load(std::memory_order_relaxed)) return;
    std::unique_lock lock(mu_, std::try_to_lock);
    if (!lock.owns_lock() || delta_.size() != 0) return;
    agg_.harvest(delta_);
    want_.store(false, std::memory_order_relaxed);
  }
  // Worker, last call: it never touches the aggregator again.
  void finish() { finished_.store(true, std::memory_order_release); }

  // Control core: `fn(Delta&)` on the handed-over harvest (and on a final harvest of the
  // aggregator when the worker has ended), then asks for the next one.
  template <class Fn>
  void take(Fn&& fn) {
    std::lock_guard lock(mu_);
    if (delta_.size() != 0 || delta_.folded_records != 0 || delta_.skipped != 0) fn(delta_);
    delta_.clear();
    if (finished_.load(std::memory_order_acquire)) {
      agg_.harvest(delta_);
      fn(delta_);
      delta_.clear();
    }
    want_.store(true, std::memory_order_relaxed);
  }

 private:
  Aggregator agg_;
  std::mutex mu_;
  Delta delta_;  // guarded by mu_
  std::atomic<bool> want_{true};
  std::atomic<bool> finished_{false};
};

}  // namespace spanfeed::red
