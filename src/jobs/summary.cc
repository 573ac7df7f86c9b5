// End-of-run summary rendering and ledger checks. Control core; allocates.
#include "jobs/summary.h"

#include <nlohmann/json.hpp>

#include <cinttypes>
#include <cstdio>

namespace spanfeed {

// Rules counters are Counters (read while the workers write them): JSON sees their value.
static void to_json(nlohmann::json& j, const Counter& v) { j = v.get(); }

uint64_t RunReport::rx_received() const {
  uint64_t n = 0;
  for (const auto& r : rx) n += r.received;
  return n;
}

uint64_t RunReport::rx_outcome(RxOutcome o) const {
  uint64_t n = 0;
  for (const auto& r : rx) n += r.outcome[static_cast<size_t>(o)];
  return n;
}

uint64_t RunReport::workers_received() const {
  uint64_t n = 0;
  for (const auto& w : workers) n += w.received;
  return n;
}

uint64_t RunReport::payload_bytes() const {
  uint64_t n = 0;
  for (const auto& w : workers) n += w.payload_bytes;
  return n;
}

std::vector<std::string> RunReport::ledger_problems() const {
  std::vector<std::string> p;
  auto eq = [&](const char* what, uint64_t a, uint64_t b) {
    if (a != b) p.push_back(std::string(what) + ": " + std::to_string(a) + " != " + std::to_string(b));
  };
  uint64_t outcomes = 0;
  for (size_t i = 0; i < static_cast<size_t>(RxOutcome::kCount); ++i) {
    outcomes += rx_outcome(static_cast<RxOutcome>(i));
  }
  eq("rx received == sum of rx outcomes", rx_received(), outcomes);
  eq("rx delivered == workers received", rx_outcome(RxOutcome::kDelivered), workers_received());
  uint64_t nic_ipackets = 0;
  for (const auto& n : nics) nic_ipackets += n.ipackets;
  eq("nic ipackets == rx received", nic_ipackets, rx_received());
  if (policy.expects_whole_input() && !interrupted && expected_packets != 0) {
    eq("packets in file == rx received", expected_packets, rx_received());
  }
  for (size_t i = 0; i < workers.size(); ++i) {
    const auto& w = workers[i];
    if (!w.reassembly.present) continue;
    const auto& c = w.reassembly.counters;
    std::string who = "worker " + std::to_string(i) + " ";
    // Fragments the worker kept become one packet per datagram reassembled.
    const uint64_t handled = w.defrag_present
        ? w.received - w.defrag.fragments - w.defrag.duplicate + w.defrag.reassembled - w.defrag.unparsed
        : w.received;
    eq((who + "reassembly segments == packets received (fragments counted as their datagrams)").c_str(),
       c.segments, handled);
    eq((who + "reassembly segments == sum of segment outcomes").c_str(), c.segments,
       c.outcome_total());
    // finish() closes every flow at the end, interrupted or not
    eq((who + "flows created == flows closed").c_str(), c.flows_created, c.closed_total());
  }
  for (size_t i = 0; i < workers.size(); ++i) {
    const auto& w = workers[i];
    if (!w.defrag_present) continue;
    const DefragCounters& d = w.defrag;
    std::string who = "worker " + std::to_string(i) + " ";
    eq((who + "ip fragments == reassembled + overlap + table full + timed out + pending").c_str(),
       d.fragments, d.reassembled_fragments + d.overlap + d.table_full + d.timed_out + d.pending);
  }
  uint64_t batched = 0;
  bool any_records = false;
  for (size_t i = 0; i < workers.size(); ++i) {
    const auto& rs = workers[i].records;
    if (!rs.present) continue;
    any_records = true;
    std::string who = "worker " + std::to_string(i) + " ";
    eq((who + "records emitted == records batched + dropped").c_str(), rs.decode.records_emitted,
       rs.batched + rs.dropped);
    const auto& d = rs.decode;
    eq((who + "requests == matched + timeouts + pending").c_str(), d.sum(d.requests),
       d.sum(d.matched) + d.timeouts_total() + d.pending_now);
    eq((who + "responses == matched + unmatched + responses of evicted requests").c_str(), d.sum(d.responses),
       d.sum(d.matched) + d.unmatched + d.responses_of_evicted);
    eq((who + "records == matched + timeouts + unmatched + no-reply").c_str(), d.records_emitted,
       d.sum(d.matched) + d.timeouts_total() + d.unmatched + d.sum(d.no_reply));
    eq((who + "records == roundtrips by protocol and status").c_str(), d.records_emitted,
       d.roundtrips_total());
    batched += rs.batched;
  }
  if (any_records) {
    for (const auto& sk : sinks) {
      eq(("sink " + sk.output + ": records == records batched").c_str(), sk.records, batched);
      eq(("sink " + sk.output + ": delivered + failed + dropped == records").c_str(),
         sk.delivered + sk.failed + sk.dropped, sk.records);
      eq(("sink " + sk.output + ": nothing left queued").c_str(), sk.queued, 0);
    }
  }
  if (rules.present) {
    const RulesCounters& c = rules.totals;
    eq("rule hits stored == attributed + discarded + pending", c.hits_stored,
       c.hits_attributed + c.hits_discarded + c.hits_pending);
  }
  uint64_t violations = 0;
  for (const auto& w : workers) violations += w.order_violations;
  eq("per-ring order violations == 0", violations, 0);
  return p;
}

namespace {

nlohmann::json reassembly_json(const ReassemblySnapshot& s) {
  using nlohmann::json;
  const auto& c = s.counters;
  json outcomes = json::object();
  for (size_t i = 0; i < kSegmentOutcomeCount; ++i) {
    outcomes[std::string(to_string(static_cast<SegmentOutcome>(i)))] = c.outcome[i];
  }
  json gaps = json::object();
  for (size_t i = 0; i < kGapReasonCount; ++i) {
    gaps[std::string(to_string(static_cast<GapReason>(i)))] = {{"events", c.gap_events[i]},
                                                               {"bytes", c.gap_bytes[i]}};
  }
  json closed = json::object();
  for (size_t i = 0; i < kCloseReasonCount; ++i) {
    closed[std::string(to_string(static_cast<CloseReason>(i)))] = c.closed[i];
  }
  json out = {
    {"outcomes", outcomes}, {"gaps", gaps}, {"closed", closed},
    {"table", json::object()},
  };
  for (const auto& f : kFlowTableCounterFields) out["table"][std::string(f.name)] = s.table.*f.member;
  for (const auto& f : kReassemblerCounterFields) out[std::string(f.name)] = c.*f.member;
  return out;
}

nlohmann::json records_json(const RecordsSnapshot& s) {
  using nlohmann::json;
  const auto& d = s.decode;
  json by_proto = json::object();
  for (size_t p = 1; p < kProtocolCount; ++p) {
    json st = json::object();
    uint64_t any = d.requests[p] + d.responses[p] + d.decode_errors[p];
    for (size_t k = 0; k < kRecordStatusCount; ++k) {
      st[std::string(to_string(static_cast<RecordStatus>(k)))] = d.roundtrips[p][k];
      any += d.roundtrips[p][k];
    }
    if (any == 0) continue;
    by_proto[std::string(to_string(static_cast<Protocol>(p)))] = {
        {"roundtrips", st}, {"requests", d.requests[p]}, {"responses", d.responses[p]},
        {"matched", d.matched[p]}, {"no_reply", d.no_reply[p]},
        {"decode_errors", d.decode_errors[p]}, {"interim", d.interim[p]}};
  }
  json timeouts = json::object();
  for (size_t i = 0; i < kTimeoutCauseCount; ++i) {
    timeouts[std::string(to_string(static_cast<TimeoutCause>(i)))] = d.timeouts[i];
  }
  json detect = json::object();
  for (size_t i = 0; i < kDetectOutcomeCount; ++i) {
    detect[std::string(to_string(static_cast<DetectOutcome>(i)))] = d.detect[i];
  }
  json by_payload = json::object();
  for (size_t p = 1; p < kProtocolCount; ++p) {
    if (d.detected_by_payload[p] != 0) by_payload[std::string(to_string(static_cast<Protocol>(p)))] = d.detected_by_payload[p];
  }
  detect["by_payload_protocol"] = by_payload;
  detect["signature_rejected"] = d.detect_rejected;
  json out = {
    {"protocols", by_proto}, {"timeouts", timeouts}, {"detect", detect},
    {"batched", s.batched}, {"dropped", s.dropped}, {"dropped_abandoned", s.dropped_abandoned},
    {"batches", s.batches},
  };
  for (const auto& f : kDecodeCounterFields) out[std::string(f.name)] = d.*f.member;
  return out;
}

}  // namespace

static nlohmann::json rules_json(const RulesReport& r) {
  using nlohmann::json;
  const RulesCounters& c = r.totals;
  json per_rule = json::object();
  for (const auto& pr : r.per_rule) {
    per_rule[pr.id] = {{"matches", pr.c.matches}, {"records", pr.c.records},
                       {"redactions", pr.c.redactions}, {"active", pr.active}};
  }
  return {
    {"file", r.file}, {"version", r.version}, {"rules", r.rules}, {"builtin", r.builtin},
    {"reloads_ok", r.reloads_ok}, {"reloads_failed", r.reloads_failed}, {"last_error", r.last_error},
    {"stream_memory_bytes", r.stream_memory_bytes}, {"per_rule", per_rule},
    {"bytes_scanned", c.bytes_scanned}, {"streams_opened", c.streams_opened},
    {"streams_exhausted", c.streams_exhausted}, {"stream_restarts", c.stream_restarts},
    {"scan_errors", c.scan_errors},
    {"hits", {{"stored", c.hits_stored}, {"attributed", c.hits_attributed}, {"discarded", c.hits_discarded},
              {"dropped", c.hits_dropped}, {"pending", c.hits_pending}}},
    {"records_tagged", c.records_tagged}, {"tags_truncated", c.tags_truncated},
    {"tags_lost_reload", c.tags_lost_reload}, {"fields_scanned", c.fields_scanned},
    {"fields_redacted", c.fields_redacted}, {"redaction_masked", c.redaction_masked},
    {"rule_sets_adopted", c.rule_sets_adopted},
    {"decoded_content", {{"bodies_inflated", c.bodies_inflated}, {"bytes", c.decoded_bytes},
                         {"inflate_errors", c.inflate_errors}, {"inflate_truncated", c.inflate_truncated},
                         {"inflate_busy", c.inflate_busy}, {"inflate_gaps", c.inflate_gaps}, {"inflate_reload", c.inflate_reload}}},
  };
}

// Packets per encapsulation layer removed, by tunnel type.
nlohmann::json decap_json(const RxSnapshot& x) {
  nlohmann::json d = nlohmann::json::object();
  for (size_t t = 1; t < kTunnelTypeCount; ++t) {
    d[std::string(to_string(static_cast<TunnelType>(t)))] = x.decapsulated[t];
  }
  return d;
}

nlohmann::json to_json(const RunReport& r) {
  using nlohmann::json;
  json nics = json::array();
  for (const auto& n : r.nics) {
    json xs = json::object();
    for (const auto& [k, v] : n.xstats) xs[k] = v;
    nics.push_back({{"port", n.port}, {"name", n.name}, {"ipackets", n.ipackets},
                    {"ibytes", n.ibytes}, {"imissed", n.imissed}, {"ierrors", n.ierrors},
                    {"rx_nombuf", n.rx_nombuf}, {"xstats", xs}});
  }
  json rx = json::array();
  for (const auto& x : r.rx) {
    json o = json::object();
    for (size_t i = 0; i < x.outcome.size(); ++i) {
      o[std::string(to_string(static_cast<RxOutcome>(i)))] = x.outcome[i];
    }
    json xj = {{"lcore", x.lcore}, {"outcomes", o}, {"decapsulated", decap_json(x)}};
    for (const auto& f : kRxCounterFields) xj[std::string(f.name)] = x.*f.member;
    rx.push_back(xj);
  }
  json workers = json::array();
  std::array<uint64_t, kSegmentOutcomeCount> seg_total{};
  uint64_t segments_total = 0;
  bool any_reassembly = false;
  for (const auto& w : r.workers) {
    json wj = {{"lcore", w.lcore}, {"busy_s", w.busy_s}};
    for (const auto& f : kWorkerCounterFields) wj[std::string(f.name)] = w.*f.member;
    for (const auto& f : kJobCounterFields) wj[std::string(f.name)] = w.*f.member;
    if (w.records.present) wj["records"] = records_json(w.records);
    if (w.defrag_present) {
      json d = json::object();
      for (const auto& f : kDefragCounterFields) d[std::string(f.name)] = w.defrag.*(f.member);
      wj["ip_fragments"] = d;
    }
    if (w.reassembly.present) {
      any_reassembly = true;
      wj["reassembly"] = reassembly_json(w.reassembly);
      segments_total += w.reassembly.counters.segments;
      for (size_t i = 0; i < kSegmentOutcomeCount; ++i) seg_total[i] += w.reassembly.counters.outcome[i];
    }
    workers.push_back(wj);
  }
  json rx_ledger = {{"received", r.rx_received()}};
  for (size_t i = 0; i < static_cast<size_t>(RxOutcome::kCount); ++i) {
    auto o = static_cast<RxOutcome>(i);
    rx_ledger[std::string(to_string(o))] = r.rx_outcome(o);
  }
  uint64_t ipk = 0, imiss = 0, ierr = 0, nombuf = 0;
  for (const auto& n : r.nics) {
    ipk += n.ipackets; imiss += n.imissed; ierr += n.ierrors; nombuf += n.rx_nombuf;
  }
  auto problems = r.ledger_problems();
  json ledger = {
    {"nic", {{"ipackets", ipk}, {"imissed", imiss}, {"ierrors", ierr}, {"rx_nombuf", nombuf}}},
    {"rx", rx_ledger},
    {"workers", {{"received", r.workers_received()}}},
    {"balanced", problems.empty()},
    {"problems", problems},
  };
  if (r.expected_packets != 0) ledger["file_packets"] = r.expected_packets;
  json sinks = json::array();
  for (const auto& sk : r.sinks) {
    json reasons = json::object();
    for (const auto& [why, n] : sk.failure_reasons) reasons[why] = n;
    json sj = {{"output", sk.output}, {"failure_reasons", reasons},
               {"waiting_for_broker", sk.waiting_for_broker}, {"broker_wait_s", sk.broker_wait_s}};
    for (const auto& f : kSinkCounterFields) sj[std::string(f.name)] = sk.*f.member;
    sinks.push_back(sj);
  }
  bool any_records = false;
  json rec = {{"emitted", 0}, {"batched", 0}, {"dropped", 0}, {"dropped_abandoned", 0}};
  for (const auto& w : r.workers) {
    if (!w.records.present) continue;
    any_records = true;
    rec["emitted"] = rec["emitted"].get<uint64_t>() + w.records.decode.records_emitted;
    rec["batched"] = rec["batched"].get<uint64_t>() + w.records.batched;
    rec["dropped"] = rec["dropped"].get<uint64_t>() + w.records.dropped;
    rec["dropped_abandoned"] = rec["dropped_abandoned"].get<uint64_t>() + w.records.dropped_abandoned;
  }
  if (any_records) {
    rec["sinks"] = sinks;
    ledger["records"] = rec;
  }
  if (any_reassembly) {
    json seg = {{"segments", segments_total}};
    for (size_t i = 0; i < kSegmentOutcomeCount; ++i) {
      seg[std::string(to_string(static_cast<SegmentOutcome>(i)))] = seg_total[i];
    }
    ledger["reassembly"] = seg;
  }
  json out = {
    {"source", r.source}, {"mode", r.policy.name()}, {"job", r.job}, {"link_type", r.link_type},
    {"interrupted", r.interrupted}, {"elapsed_s", r.elapsed_s},
    {"rx_packets", r.rx_received()}, {"payload_bytes", r.payload_bytes()},
    {"nics", nics}, {"rx_lcores", rx}, {"workers", workers}, {"sinks", sinks},
    {"ledger", ledger},
  };
  if (r.rules.present) out["rules"] = rules_json(r.rules);
  if (r.capture.present) {
    const auto& c = r.capture;
    out["capture_snaplen"] = c.snaplen;
    out["capture_file"] = {{"snaplen", c.snaplen}, {"records_read", c.records_read},
                           {"truncated_by_snaplen", c.truncated_by_snaplen},
                           {"damaged", c.damaged}, {"read_error", c.read_error}};
  }
  return out;
}

std::string to_text(const RunReport& r) {
  std::string s;
  char line[256];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof(line), fmt, args...);
    s += line;
  };
  add("spanfeed %s: %s (%s, %s), %.3f s%s\n", r.job.c_str(), r.source.c_str(), r.policy.name(),
      r.link_type.c_str(), r.elapsed_s, r.interrupted ? ", interrupted" : "");
  for (const auto& n : r.nics) {
    add("  nic %u %-14s ipackets %" PRIu64 "  imissed %" PRIu64 "  ierrors %" PRIu64
        "  rx_nombuf %" PRIu64 "\n", n.port, n.name.c_str(), n.ipackets, n.imissed, n.ierrors,
        n.rx_nombuf);
  }
  for (const auto& x : r.rx) {
    add("  rx lcore %-3u received %" PRIu64, x.lcore, x.received);
    for (size_t i = 0; i < x.outcome.size(); ++i) {
      add("  %s %" PRIu64, std::string(to_string(static_cast<RxOutcome>(i))).c_str(), x.outcome[i]);
    }
    s += "\n";
    bool any = false;
    for (size_t t = 1; t < x.decapsulated.size(); ++t) {
      if (x.decapsulated[t] == 0) continue;
      if (!any) s += "    decapsulated";
      any = true;
      add("  %s %" PRIu64, std::string(to_string(static_cast<TunnelType>(t))).c_str(), x.decapsulated[t]);
    }
    if (any) s += "\n";
  }
  for (const auto& w : r.workers) {
    add("  worker lcore %-3u packets %12" PRIu64 "  payload_bytes %14" PRIu64, w.lcore, w.packets,
        w.payload_bytes);
    // Busy time: TSC time spent on bursts (packets / busy second is the per-core rate).
    if (w.busy_s > 0) add("  busy %.3f s (%.2f M packets per busy second)", w.busy_s, w.packets / w.busy_s / 1e6);
    s += "\n";
    if (w.defrag_present && w.defrag.fragments != 0) {
      const DefragCounters& d = w.defrag;
      add("    ip fragments %" PRIu64 ": reassembled %" PRIu64 " datagrams, dropped overlap %" PRIu64
          " table_full %" PRIu64 " timed_out %" PRIu64 "\n",
          d.fragments, d.reassembled, d.overlap, d.table_full, d.timed_out);
    }
  }
  uint64_t pk = 0;
  for (const auto& w : r.workers) pk += w.packets;
  add("  total             packets %12" PRIu64 "  payload_bytes %14" PRIu64 "\n", pk,
      r.payload_bytes());
  if (r.rules.present) {
    add("  rules v%" PRIu64 ": %" PRIu64 " rule(s) + %" PRIu64 " built-in, %" PRIu64 " record(s) tagged, %" PRIu64
        " field(s) redacted, reloads %" PRIu64 " ok / %" PRIu64 " refused\n",
        r.rules.version, r.rules.rules, r.rules.builtin, r.rules.totals.records_tagged.get(),
        r.rules.totals.fields_redacted.get(), r.rules.reloads_ok, r.rules.reloads_failed);
  }
  if (r.capture.present && r.capture.truncated_by_snaplen != 0) {
    add("  capture snaplen %u: %" PRIu64 " packet(s) cut short of their wire length: their payload "
        "is counted as gaps, not decoded\n", r.capture.snaplen, r.capture.truncated_by_snaplen);
  }
  if (r.capture.present && r.capture.damaged) {
    s += "  CAPTURE FILE DAMAGED: read stopped after " + std::to_string(r.capture.records_read) +
         " record(s): " + r.capture.read_error + "\n";
  }
  auto problems = r.ledger_problems();
  if (problems.empty()) {
    s += "  ledger balanced\n";
  } else {
    for (const auto& p : problems) s += "  LEDGER NOT BALANCED: " + p + "\n";
  }
  return s;
}

}  // namespace spanfeed
