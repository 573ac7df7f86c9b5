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

}  // namespace spanfeed
