// The RED families of /metrics (requests, errors, bytes, duration per series; the caps'
// counters), built from the control core's merged report. Control core; allocates.
#pragma once

#include <deque>

#include <prometheus/metric_family.h>

namespace spanfeed::red {
struct Report;
}  // namespace spanfeed::red

namespace spanfeed {

// Appends the RED families (names from spanfeed_red_) to `out`.
void append_red_families(const red::Report& r, std::deque<prometheus::MetricFamily>& out);

}  // namespace spanfeed
