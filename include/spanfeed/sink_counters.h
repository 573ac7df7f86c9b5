// An output's (sink's) counters, declared once as a counter list
// (counter_list.h): SinkCounters' and SinkSnapshot's fields, the summary's
// sinks[] keys, the /metrics families (label `output`) and docs/metrics.md's
// sinks block. Header only; no allocation.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "spanfeed/counter_list.h"
#include "spanfeed/counters.h"

namespace spanfeed {

// Every record handed to a sink ends as exactly one of delivered, failed or
// dropped (the sink's ledger); queued ones are on their way.
#define SPANFEED_SINK_COUNTERS(X)                                                                          \
  X(batches, kCounter, "", "Record batches handed to the output.")                                         \
  X(records, kCounter, "",                                                                                 \
    "Records handed to the output: delivered + failed + dropped once nothing is queued.")                  \
  X(delivered, kCounter, "sink_records_total{outcome=delivered}",                                          \
    "records the output wrote, sent, or had acknowledged by the broker.")                                  \
  X(failed, kCounter, "sink_records_total{outcome=failed}",                                                \
    "records the sink or broker refused; the reasons are in the summary's `failure_reasons`.")             \
  X(dropped, kCounter, "sink_records_total{outcome=dropped}",                                              \
    "live mode: records dropped because the sink's buffer was full (e.g. the broker is down).")            \
  X(queued, kGauge, "sink_queued",                                                                         \
    "Records an output has accepted but not yet confirmed (Kafka: awaiting delivery reports). 0 for JSON " \
    "lines and GELF.")                                                                                    \
  X(bytes, kCounter, "", "Bytes of the batches handed to the output.")

SPANFEED_COUNTER_STRUCT(SinkCountersOf, kSinkCounterFields, SPANFEED_SINK_COUNTERS)

// One exporter thread's counters of one output: written by that thread only
// (delivery reports too: librdkafka serves them in rd_kafka_poll), read by the
// control core.
struct alignas(64) SinkCounters : SinkCountersOf<Counter> {
  // Offline waits on a destination that takes nothing (Kafka queue full, or
  // the final flush while the broker is unreachable): 1 while waiting, and
  // the waited time in total. A flag and a duration, not counts: the summary
  // has them as `waiting_for_broker` (bool) and `broker_wait_s`.
  Counter waiting_for_broker;
  Counter broker_wait_ms;
};

// An output's counters summed over the exporter threads (control core).
struct SinkSnapshot : SinkCountersOf<uint64_t> {
  std::string output;  // as written in the config
  std::vector<std::pair<std::string, uint64_t>> failure_reasons;  // final snapshot only
  bool waiting_for_broker = false;  // offline: some thread waits on the destination now
  double broker_wait_s = 0;         // total time spent waiting on it
};

}  // namespace spanfeed
