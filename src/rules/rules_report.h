// Rules counters and the rules part of the run report (summary, /metrics). Plain structs, no
// Hyperscan: what other modules see of the rules engine. Workers write their own counters; the
// control core folds and copies them (RulesControl::report) while they run: every field is a
// Counter (relaxed atomic loads and stores, one writer), so those reads are not data races.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "spanfeed/counters.h"

namespace spanfeed {

// Per-rule counters (one entry per rule of a set, per worker).
struct RuleCounters {
  Counter matches = 0;     // Hyperscan match events in streams the rule applies to
  Counter records = 0;     // records the rule tagged
  Counter redactions = 0;  // field ranges the rule redacted
};

// Per-worker scanner counters. Ledger:
//   hits_stored == hits_attributed + hits_discarded + hits_pending
struct RulesCounters {
  Counter bytes_scanned = 0;
  Counter streams_opened = 0;     // a direction got a Hyperscan stream
  Counter streams_exhausted = 0;  // a direction found the stream pool empty: not scanned (rules.max_streams)
  Counter stream_restarts = 0;    // a gap ended a stream; scanning starts afresh after it (no match across the hole)
  Counter scan_errors = 0;        // Hyperscan returned an error: the direction stops being scanned
  Counter hits_stored = 0;        // matches kept until their message is complete
  Counter hits_attributed = 0;    // ... given to a request or response
  Counter hits_discarded = 0;     // ... in bytes outside any record, or their flow ended first, or a reload
  Counter hits_dropped = 0;       // match not kept: hit pool or per-direction cap full (still counted per rule)
  Counter hits_pending = 0;       // kept now (gauge)
  Counter records_tagged = 0;     // records with at least one tag
  Counter tags_truncated = 0;     // a message or record matched more rules than it has slots for (8 each)
  Counter tags_lost_reload = 0;   // a message's rule hits belonged to a set replaced before it left
  Counter fields_scanned = 0;     // string fields checked by the redaction rules
  Counter fields_redacted = 0;    // ... with at least one range replaced
  Counter redaction_masked = 0;   // a replacement did not fit the field arena: masked with '*' instead
  Counter rule_sets_adopted = 0;  // rule sets this worker switched to after start-up (reloads)
  // Decoded content (gzip/deflate HTTP bodies, MySQL compressed packets):
  Counter bodies_inflated = 0;    // compressed HTTP bodies inflated for the rules
  Counter decoded_bytes = 0;      // inflated / decompressed bytes scanned
  Counter inflate_errors = 0;     // not gzip/zlib data, or corrupt: the rest of that body is not scanned
  Counter inflate_truncated = 0;  // a body inflated past rules.inflate_max_kb: the rest is not scanned
  Counter inflate_busy = 0;       // no inflate context free (rules.inflate_contexts): body not scanned
  Counter inflate_gaps = 0;       // the capture lost bytes of a compressed body: the rest is not scanned
  Counter inflate_reload = 0;     // a reload came in the middle of a compressed body: the rest is not scanned
};
using ContentCounters = RulesCounters;  // the former name (src/metrics still uses it)

// a += b, field by field.
void accumulate(RulesCounters& a, const RulesCounters& b);
void accumulate(RuleCounters& a, const RuleCounters& b);

// Rules as the run reports them (summary, /metrics).
struct RulesReport {
  bool present = false;
  std::string file;
  uint64_t version = 0;  // 1 at start, +1 per successful reload
  uint64_t rules = 0;    // user rules in the active set
  uint64_t builtin = 0;  // built-in redaction rules enabled
  uint64_t reloads_ok = 0, reloads_failed = 0;
  std::string last_error;
  uint64_t stream_memory_bytes = 0;  // Hyperscan stream state preallocated, all workers
  struct PerRule {
    std::string id;
    bool active = true;  // in the current set (counts of removed rules stay)
    RuleCounters c;
  };
  std::vector<PerRule> per_rule;
  RulesCounters totals;  // summed over workers
};

}  // namespace spanfeed
