// Mirror-duplicate filter (see include/spanfeed/duplicate_filter.h).
// Runs on one worker lcore; allocates only in the constructor.
#include "spanfeed/duplicate_filter.h"

#include <algorithm>
#include <bit>

namespace spanfeed {

DuplicateFilter::DuplicateFilter(uint64_t window_ns, uint32_t entries, uint64_t seed)
    : window_ns_(window_ns), seed_(seed | 1) {
  if (window_ns_ == 0) return;
  const uint32_t lines = std::bit_ceil(std::max<uint32_t>(entries, kWays) / kWays);
  mask_ = lines - 1;
  entries_ = lines * kWays;
  lines_ = std::make_unique<Line[]>(lines);  // value-initialised: every entry empty
}

bool DuplicateFilter::seen_fingerprint(uint64_t fp, uint64_t ts_ns) {
  Entry* const e = lines_[line_of(fp)].e;
  auto again = [&](Entry& x) {
    const uint64_t age = ts_ns >= x.ts_ns ? ts_ns - x.ts_ns : x.ts_ns - ts_ns;
    if (age < window_ns_) return true;  // the copy: the first one's time stays
    x.ts_ns = ts_ns;  // same identity, long after: a retransmission, remembered anew
    return false;
  };
  // Entries fill from the front and are never emptied: the used ones are a
  // prefix of the line, and the first empty one (if any) is the one to take.
  Entry* victim;
  if (e[kWays - 1].fp != 0) [[likely]] {
    // A full line (most lines, once the run has warmed up): no empty entry
    // to look for (a fingerprint is never 0).
    for (uint32_t i = 0; i < kWays; ++i) {
      if (e[i].fp == fp) return again(e[i]);
    }
    // The oldest entry goes (the first of equals).
    static_assert(kWays == 4);
    Entry* const a = e[1].ts_ns < e[0].ts_ns ? &e[1] : &e[0];
    Entry* const b = e[3].ts_ns < e[2].ts_ns ? &e[3] : &e[2];
    victim = b->ts_ns < a->ts_ns ? b : a;
    if (ts_ns - victim->ts_ns < window_ns_ && ts_ns >= victim->ts_ns) ++evicted_live_;
  } else {
    uint32_t i = 0;
    for (; e[i].fp != 0; ++i) {  // stops at the empty last entry at the latest
      if (e[i].fp == fp) return again(e[i]);
    }
    victim = &e[i];
  }
  victim->fp = fp;
  victim->ts_ns = ts_ns;
  return false;
}

}  // namespace spanfeed
