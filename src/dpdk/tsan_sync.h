// ThreadSanitizer annotations for the synchronisation DPDK does in code TSan
// cannot see (the DPDK libraries are not instrumented): an mbuf handed over an
// rte_ring, and an mbuf returned to the mempool and received again. Any lcore;
// no allocation; compiles to nothing outside a TSan build (scripts/tsan.sh).
#pragma once

#if defined(__SANITIZE_THREAD__)
#define SPANFEED_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPANFEED_TSAN 1
#endif
#endif

#ifdef SPANFEED_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace spanfeed::dpdk {

// Everything this thread wrote before tsan_release(x) happens before what a
// thread does after a later tsan_acquire(x): what rte_ring's enqueue/dequeue
// (and the mempool's free/alloc) guarantee with their own barriers.
inline void tsan_release(const void* sync) {
#ifdef SPANFEED_TSAN
  __tsan_release(const_cast<void*>(sync));
#else
  (void)sync;
#endif
}

inline void tsan_acquire(const void* sync) {
#ifdef SPANFEED_TSAN
  __tsan_acquire(const_cast<void*>(sync));
#else
  (void)sync;
#endif
}

}  // namespace spanfeed::dpdk
