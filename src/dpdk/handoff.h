// RX -> worker hand-off over SPSC rte_rings: the two enqueue policies (live:
// drop and count; offline: wait for space), and mbufs taken from a pool they
// were freed to on another lcore. Runs on RX and worker lcores; no allocation.
// Internal to the DPDK adapter (includes rte_*.h).
#pragma once

#include <rte_branch_prediction.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <cstdint>

#include "dpdk/tsan_sync.h"
#include "spanfeed/capture_policy.h"

namespace spanfeed::dpdk {

// Creates the ring for one (RX lcore, worker lcore) pair: single producer,
// single consumer, so enqueue/dequeue need no CAS.
inline rte_ring* create_pair_ring(const char* name, unsigned size, int socket) {
  return rte_ring_create(name, size, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
}

// rte_pktmbuf_alloc_bulk (a get from the pool, then a reset of each mbuf) with the hand-over
// through the pool told to TSan in between: the reset, inlined here from rte_mbuf.h, writes
// fields the mbufs' last users read before they freed them (every lcore that frees calls
// tsan_release(sync) first). 0, or non-zero with nothing taken.
inline int alloc_bulk_synced(rte_mempool* pool, rte_mbuf** m, unsigned n, const void* sync) {
  if (rte_mempool_get_bulk(pool, reinterpret_cast<void**>(m), n) != 0) return -1;
  tsan_acquire(sync);
  for (unsigned i = 0; i < n; ++i) rte_pktmbuf_reset(m[i]);
  return 0;
}

// Live policy: enqueue what fits, free the rest in bulk. Returns how many
// were dropped (the caller counts them as ring_full).
inline unsigned enqueue_or_drop(rte_ring* r, rte_mbuf** m, unsigned n) {
  tsan_release(r);  // the worker's dequeue acquires: it sees the MbufMeta written here
  unsigned sent = rte_ring_sp_enqueue_burst(r, reinterpret_cast<void* const*>(m), n, nullptr);
  if (unlikely(sent < n)) {
    tsan_release(m[0]->pool);
    rte_pktmbuf_free_bulk(m + sent, n - sent);
    return n - sent;
  }
  return 0;
}

// Offline policy: wait until everything is enqueued; `idle` says how (a few
// pauses, then short sleeps: capture_policy.h). `abort` (a forced second
// stop) ends the wait; what is left is freed and returned as dropped.
// `waits` counts the times the ring had no room (each a pause or a sleep).
inline unsigned enqueue_or_wait(rte_ring* r, rte_mbuf** m, unsigned n, IdleWait& idle,
                                const std::atomic<bool>& abort, uint64_t& waits) {
  unsigned sent = 0;
  tsan_release(r);  // as in enqueue_or_drop
  while (true) {
    sent += rte_ring_sp_enqueue_burst(r, reinterpret_cast<void* const*>(m + sent), n - sent,
                                      nullptr);
    if (likely(sent == n)) {
      idle.reset();
      return 0;
    }
    if (abort.load(std::memory_order_relaxed)) {
      tsan_release(m[0]->pool);
      rte_pktmbuf_free_bulk(m + sent, n - sent);
      return n - sent;
    }
    ++waits;
    idle.wait();
  }
}

}  // namespace spanfeed::dpdk
