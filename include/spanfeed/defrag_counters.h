// IP fragment reassembly counters (one set per worker), declared once as a
// counter list (counter_list.h): struct fields, summary keys, /metrics and
// docs/metrics.md rows. Header only; no allocation.
#pragma once

#include <cstdint>

#include "spanfeed/counter_list.h"

namespace spanfeed {

// Ledger: fragments == reassembled_fragments + overlap + table_full +
// timed_out + pending (and pending is 0 at the end of a run).
#define SPANFEED_DEFRAG_COUNTERS(X)                                                                   \
  X(fragments, kCounter, "ipfrag_fragments_total",                                                    \
    "IP fragments a worker put into its reassembly table (`ip_fragments.reassemble`).")               \
  X(reassembled, kCounter, "ipfrag_reassembled_total",                                                \
    "Datagrams reassembled from fragments; they go through the same path as unfragmented packets.")  \
  X(reassembled_fragments, kCounter, "ipfrag_reassembled_fragments_total",                            \
    "Fragments that ended in a reassembled datagram.")                                                \
  X(overlap, kCounter, "ipfrag_dropped_overlap_total",                                                \
    "Fragments dropped with their datagram: overlapping or inconsistent offsets and lengths, or more " \
    "than 8 fragments (`RTE_LIBRTE_IP_FRAG_MAX_FRAG`). Non-zero: hostile traffic or a broken sender.") \
  X(table_full, kCounter, "ipfrag_dropped_table_full_total",                                          \
    "Fragments dropped because every table entry was in use (`ip_fragments.max_datagrams` per "      \
    "worker). Non-zero: raise it, or shorten `ip_fragments.timeout_s`.")                              \
  X(timed_out, kCounter, "ipfrag_timed_out_total",                                                    \
    "Fragments dropped because their datagram did not complete within `ip_fragments.timeout_s` "     \
    "(packet time); at the end of a run, the fragments still waiting. A lossy capture or a "         \
    "fragment the mirror missed.")                                                                    \
  X(unsupported, kCounter, "ipfrag_passed_through_total",                                             \
    "Fragments passed on without reassembly: cut by the snaplen, chained mbufs, or an IPv6 fragment " \
    "header behind other extension headers. Their flows miss these bytes.")                           \
  X(unparsed, kCounter, "ipfrag_reassembled_unparsed_total",                                          \
    "Reassembled datagrams whose headers did not parse, or that are themselves fragments (an inner "  \
    "fragment in a fragmented tunnel packet: not reassembled again), dropped.")                       \
  X(other_worker, kCounter, "ipfrag_other_worker_total",                                              \
    "Reassembled datagrams whose flow hashes to another worker: processed here, so that flow may be " \
    "split across workers. RX steers fragments to their first fragment's flow; expect this from "   \
    "fragmented tunnel packets and datagrams whose first fragment came last.")                        \
  X(duplicate, kCounter, "ipfrag_duplicate_total",                                                    \
    "Fragments dropped as mirror copies before reassembly: the same fragment again within "          \
    "`dedup.window_us` (ingress and egress mirrored). rte_ip_frag would take the copy for an "       \
    "overlap and drop the whole datagram. Not in `ipfrag_fragments_total`.")                         \
  X(pending, kGauge, "ipfrag_pending", "Fragments waiting in the table for the rest of their datagram.")

struct DefragCounters {
  SPANFEED_DEFRAG_COUNTERS(SPANFEED_COUNTER_DECLARE)
};

#define SPANFEED_DEFRAG_ENTRY(name, kind, metric, help) \
  SPANFEED_COUNTER_ENTRY(DefragCounters, name, kind, metric, help)
inline constexpr CounterField<DefragCounters> kDefragCounterFields[] = {
    SPANFEED_DEFRAG_COUNTERS(SPANFEED_DEFRAG_ENTRY)};
#undef SPANFEED_DEFRAG_ENTRY
inline constexpr size_t kDefragCounterCount = sizeof(kDefragCounterFields) / sizeof(kDefragCounterFields[0]);

}  // namespace spanfeed
