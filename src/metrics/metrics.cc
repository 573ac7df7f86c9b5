// Prometheus exposition (prometheus-cpp pull): /metrics with every ledger
// line and gauge, /health. Built on the control core at each publish; the
// exposer's HTTP thread only copies the prepared families under a mutex. At
// the end a short-lived thread stops the exposer (stop_serving) and another
// wakes its listener (stop_exposer).
#include "metrics/metrics.h"

#include "remote_write.h"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>

#include "core/host_port.h"
#include "metrics/red_families.h"

namespace spanfeed {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<std::pair<std::string, std::string>>;

class SnapshotCollectable final : public prometheus::Collectable {
 public:
  std::vector<MetricFamily> Collect() const override {
    std::lock_guard<std::mutex> g(mu_);
    return families_ ? *families_ : std::vector<MetricFamily>{};
  }
  void set(std::shared_ptr<const std::vector<MetricFamily>> f) {
    std::lock_guard<std::mutex> g(mu_);
    families_ = std::move(f);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const std::vector<MetricFamily>> families_;  // shared with the remote writer
};

class Builder {
 public:
  MetricFamily& family(const std::string& name, MetricType type, const std::string& help) {
    out.push_back(MetricFamily{"spanfeed_" + name, help, type, {}});
    return out.back();
  }
  // A family from a component's counter list (include/spanfeed/counter_list.h);
  // the help loses its Markdown backticks.
  MetricFamily& listed_family(std::string_view name, CounterKind kind, std::string_view help) {
    std::string plain;
    for (char ch : help) {
      if (ch != '`') plain += ch;
    }
    return family(std::string(name), kind == CounterKind::kCounter ? MetricType::Counter : MetricType::Gauge, plain);
  }
  // A counter list's families, one per entry (nullptr: summary only); the
  // entries of a labelled family share it (counter_list.h, parse_metric).
  template <class Fields>
  std::vector<MetricFamily*> listed(const Fields& fields) {
    std::vector<MetricFamily*> per_entry;
    std::vector<std::pair<std::string_view, MetricFamily*>> made;
    for (const auto& f : fields) {
      MetricFamily* fam = nullptr;
      if (!f.metric.empty()) {
        const std::string_view name = parse_metric(f.metric).family;
        for (const auto& [n, m] : made) {
          if (n == name) fam = m;
        }
        if (fam == nullptr) {
          fam = &listed_family(name, f.kind, family_help(fields, name));
          made.emplace_back(name, fam);
        }
      }
      per_entry.push_back(fam);
    }
    return per_entry;
  }
  // One series per listed entry of `obj` (a snapshot of the list's struct).
  template <class Fields, class Obj>
  static void add_listed(const std::vector<MetricFamily*>& fams, const Fields& fields, const Labels& labels,
                         const Obj& obj) {
    for (size_t k = 0; k < fams.size(); ++k) {
      if (fams[k] == nullptr) continue;
      const MetricName m = parse_metric(fields[k].metric);
      Labels l = labels;
      if (!m.label.empty()) l.emplace_back(std::string(m.label), std::string(m.value));
      add(*fams[k], l, double(obj.*fields[k].member));
    }
  }
  static void add(MetricFamily& f, const Labels& labels, double v) {
    ClientMetric m;
    for (const auto& [k, val] : labels) m.label.push_back({k, val});
    if (f.type == MetricType::Counter) m.counter.value = v;
    else m.gauge.value = v;
    f.metric.push_back(std::move(m));
  }
  std::deque<MetricFamily> out;  // a deque: references to earlier families stay valid
};

std::vector<MetricFamily> build(const RunReport& r, bool final) {
  Builder b;
  using MT = MetricType;
  auto s = [](auto v) { return std::to_string(v); };

  auto& up = b.family("up", MT::Gauge, "1 while the capture runs; 0 once it has ended (final numbers).");
  Builder::add(up, {}, final ? 0 : 1);
  auto& el = b.family("elapsed_seconds", MT::Gauge, "Seconds since the lcores were launched.");
  Builder::add(el, {}, r.elapsed_s);
  if (r.capture.present) {
    auto& cs = b.family("capture_snaplen_bytes", MT::Gauge,
                        "Snapshot length of the capture file. Under 256: payloads are cut, records are few or none.");
    Builder::add(cs, {}, double(r.capture.snaplen));
    auto& ct = b.family("capture_truncated_by_snaplen", MT::Gauge,
                        "Records of the capture file captured shorter than their wire length.");
    Builder::add(ct, {}, double(r.capture.truncated_by_snaplen));
    auto& cd = b.family("capture_file_damaged", MT::Gauge,
                        "1 when the capture file has a record libpcap cannot read: only the records before it "
                        "(capture_file_records_read) are processed, and the run exits with code 3.");
    Builder::add(cd, {}, r.capture.damaged ? 1.0 : 0.0);
    auto& cr = b.family("capture_file_records_read", MT::Gauge, "Records libpcap could read from the capture file.");
    Builder::add(cr, {}, double(r.capture.records_read));
  }

  // NIC
  auto& nip = b.family("nic_rx_packets_total", MT::Counter, "Packets the port received (rte_eth_stats ipackets).");
  auto& nib = b.family("nic_rx_bytes_total", MT::Counter, "Bytes the port received (ibytes).");
  auto& nim = b.family("nic_rx_missed_total", MT::Counter,
                       "Packets the NIC dropped because RX did not poll fast enough (imissed). Non-zero: "
                       "add RX lcores/queues or give RX lcores their own CPUs.");
  auto& nie = b.family("nic_rx_errors_total", MT::Counter,
                       "Erroneous received packets (ierrors). Non-zero usually indicates a link or HW problem "
                       "(for a capture file: unreadable records).");
  auto& nin = b.family("nic_rx_nombuf_total", MT::Counter,
                       "RX mbuf allocation failures (rx_nombuf). Non-zero: the mempool is too small for the "
                       "rings and bursts in flight; raise mempool.size.");
  auto& nx = b.family("nic_xstat_total", MT::Counter,
                      "The PMD's extended statistics (rte_eth_xstats), one series per name; what "
                      "each means is PMD-specific (rx_missed_errors, rx_crc_errors: link or HW trouble).");
  for (const auto& n : r.nics) {
    for (const auto& [xname, v] : n.xstats) {
      Builder::add(nx, {{"port", s(n.port)}, {"xstat", xname}}, double(v));
    }
  }
  for (const auto& n : r.nics) {
    Labels l = {{"port", s(n.port)}, {"name", n.name}};
    Builder::add(nip, l, double(n.ipackets));
    Builder::add(nib, l, double(n.ibytes));
    Builder::add(nim, l, double(n.imissed));
    Builder::add(nie, l, double(n.ierrors));
    Builder::add(nin, l, double(n.rx_nombuf));
  }

  // RX lcores: the packet ledger
  const auto rx_listed = b.listed(kRxCounterFields);
  auto& rxo = b.listed_family(kRxOutcomeMetric, CounterKind::kCounter,
                              labelled_help(kRxOutcomeIntro, kRxOutcomeNames, kRxOutcomeHelp));
  auto& rxd = b.family("rx_decapsulated_total", MT::Counter,
                       "Packets whose encapsulation RX removed before the flow hash, per layer and tunnel type "
                       "(a VXLAN inside ERSPAN counts once in each). Informational.");
  for (const auto& x : r.rx) {
    Labels l = {{"lcore", s(x.lcore)}};
    Builder::add_listed(rx_listed, kRxCounterFields, l, x);
    for (size_t i = 0; i < x.outcome.size(); ++i) {
      Builder::add(rxo, {{"lcore", s(x.lcore)}, {"outcome", std::string(to_string(static_cast<RxOutcome>(i)))}},
                   double(x.outcome[i]));
    }
    for (size_t t = 1; t < x.decapsulated.size(); ++t) {
      Builder::add(rxd, {{"lcore", s(x.lcore)}, {"type", std::string(to_string(static_cast<TunnelType>(t)))}},
                   double(x.decapsulated[t]));
    }
  }
  auto& ring = b.family("ring_used", MT::Gauge, "Packets waiting in each (RX lcore, worker) ring. Near ring_capacity: that worker is behind.");
  auto& ringc = b.family("ring_capacity", MT::Gauge, "Slots in each (RX lcore, worker) ring.");
  Builder::add(ringc, {}, double(r.gauges.ring_size));
  for (size_t rx = 0; rx < r.gauges.ring_used.size(); ++rx) {
    for (size_t w = 0; w < r.gauges.ring_used[rx].size(); ++w) {
      Builder::add(ring, {{"rx", s(rx)}, {"worker", s(w)}}, double(r.gauges.ring_used[rx][w]));
    }
  }
  auto& mp = b.family("mempool_in_use", MT::Gauge, "Mbufs in use (in rings, bursts and caches).");
  Builder::add(mp, {}, double(r.gauges.mempool_in_use));
  auto& mps = b.family("mempool_size", MT::Gauge, "Mbufs in the pool.");
  Builder::add(mps, {}, double(r.gauges.mempool_size));

  // Workers
  const auto worker_listed = b.listed(kWorkerCounterFields);
  const auto job_listed = b.listed(kJobCounterFields);
  MetricFamily* seg = nullptr; MetricFamily* gaps = nullptr; MetricFamily* gapb = nullptr;
  MetricFamily* fcl = nullptr; MetricFamily* fa = nullptr;
  std::vector<MetricFamily*> listed;  // kReassemblerCounterFields' families, in list order
  std::vector<MetricFamily*> table_listed;  // kFlowTableCounterFields' families
  std::vector<MetricFamily*> defrag_listed;  // kDefragCounterFields' families
  for (size_t i = 0; i < r.workers.size(); ++i) {
    const auto& w = r.workers[i];
    if (!w.defrag_present) continue;
    if (defrag_listed.empty()) {
      for (const auto& f : kDefragCounterFields) defrag_listed.push_back(&b.listed_family(f.metric, f.kind, f.help));
    }
    for (size_t k = 0; k < kDefragCounterCount; ++k) {
      Builder::add(*defrag_listed[k], {{"worker", s(i)}}, double(w.defrag.*kDefragCounterFields[k].member));
    }
  }
  for (size_t i = 0; i < r.workers.size(); ++i) {
    const auto& w = r.workers[i];
    Labels l = {{"worker", s(i)}};
    Builder::add_listed(worker_listed, kWorkerCounterFields, l, w);
    Builder::add_listed(job_listed, kJobCounterFields, l, w);
    if (!w.reassembly.present) continue;
    if (seg == nullptr) {
      seg = &b.family("reassembly_segments_total", MT::Counter,
                      "Where each packet a worker processed ended in TCP reassembly (see docs/reassembly.md). "
                      "Non-zero dropped_memory: raise reassembly.memory_mb; flow_refused: raise flow.capacity.");
      gaps = &b.family("reassembly_gaps_total", MT::Counter,
                       "Holes in TCP streams that never filled, by reason. Captures drop packets: some is "
                       "normal; a rising rate means the capture (NIC, SPAN) is losing packets.");
      gapb = &b.family("reassembly_gap_bytes_total", MT::Counter, "Bytes missing from TCP streams, by reason.");
      fcl = &b.family("flows_closed_total", MT::Counter, "Flows a worker stopped tracking, by reason (fin, rst, idle_timeout, evicted, reused, shutdown).");
      fa = &b.family("flows_active", MT::Gauge, "Flows a worker tracks now.");
      for (const auto& f : kFlowTableCounterFields) {
        table_listed.push_back(f.metric.empty() ? nullptr : &b.listed_family(f.metric, f.kind, f.help));
      }
      for (const auto& f : kReassemblerCounterFields) {
        listed.push_back(f.metric.empty() ? nullptr : &b.listed_family(f.metric, f.kind, f.help));
      }
    }
    const auto& c = w.reassembly.counters;
    for (size_t k = 0; k < kSegmentOutcomeCount; ++k) {
      Builder::add(*seg, {{"worker", s(i)}, {"outcome", std::string(to_string(static_cast<SegmentOutcome>(k)))}}, double(c.outcome[k]));
    }
    for (size_t k = 0; k < kGapReasonCount; ++k) {
      Labels gl = {{"worker", s(i)}, {"reason", std::string(to_string(static_cast<GapReason>(k)))}};
      Builder::add(*gaps, gl, double(c.gap_events[k]));
      Builder::add(*gapb, gl, double(c.gap_bytes[k]));
    }
    for (size_t k = 0; k < kCloseReasonCount; ++k) {
      Builder::add(*fcl, {{"worker", s(i)}, {"reason", std::string(to_string(static_cast<CloseReason>(k)))}}, double(c.closed[k]));
    }
    Builder::add(*fa, l, double(c.flows_created - c.closed_total()));
    for (size_t k = 0; k < std::size(kFlowTableCounterFields); ++k) {
      const auto m = kFlowTableCounterFields[k].member;
      if (table_listed[k] != nullptr) Builder::add(*table_listed[k], l, double(w.reassembly.table.*m));
    }
    for (size_t k = 0; k < std::size(kReassemblerCounterFields); ++k) {
      if (listed[k] != nullptr) Builder::add(*listed[k], l, double(c.*kReassemblerCounterFields[k].member));
    }
  }

  // Records
  bool any_records = false;
  std::array<std::array<uint64_t, kRecordStatusCount>, kProtocolCount> rt{};
  std::array<uint64_t, kProtocolCount> derr{};
  std::array<uint64_t, kTimeoutCauseCount> tmo{};
  std::array<LatencyHistogram, kProtocolCount> lat{};
  uint64_t dropped = 0, dropped_abandoned = 0;
  std::array<uint64_t, std::size(kDecodeCounterFields)> decode_sums{};
  for (const auto& w : r.workers) {
    if (!w.records.present) continue;
    any_records = true;
    const auto& d = w.records.decode;
    for (size_t p = 0; p < kProtocolCount; ++p) {
      for (size_t k = 0; k < kRecordStatusCount; ++k) rt[p][k] += d.roundtrips[p][k];
      derr[p] += d.decode_errors[p];
      const auto& h = w.records.latency[p];
      for (size_t k = 0; k < kLatencyBuckets; ++k) lat[p].buckets[k] += h.buckets[k];
      lat[p].count += h.count;
      lat[p].sum_us += h.sum_us;
    }
    for (size_t k = 0; k < kTimeoutCauseCount; ++k) tmo[k] += d.timeouts[k];
    dropped += w.records.dropped;
    dropped_abandoned += w.records.dropped_abandoned;
    for (size_t k = 0; k < decode_sums.size(); ++k) decode_sums[k] += d.*kDecodeCounterFields[k].member;
  }
  if (any_records) {
    auto& rtf = b.family("roundtrips_total", MT::Counter,
                         "Request/response records built, by protocol and status (ok, error = the server "
                         "said so, timeout = no response, unmatched = a response without its request).");
    auto& def = b.family("decode_errors_total", MT::Counter,
                         "Bytes that did not parse as the flow's protocol, by protocol. Non-zero: a client or "
                         "server speaking something unexpected, or a wrong port-to-protocol mapping.");
    auto& hist = b.family("roundtrip_latency_seconds", MT::Histogram,
                          "Latency from the first request packet to the last response packet, by protocol.");
    for (size_t p = 1; p < kProtocolCount; ++p) {
      std::string proto(to_string(static_cast<Protocol>(p)));
      for (size_t k = 0; k < kRecordStatusCount; ++k) {
        Builder::add(rtf, {{"protocol", proto}, {"status", std::string(to_string(static_cast<RecordStatus>(k)))}}, double(rt[p][k]));
      }
      Builder::add(def, {{"protocol", proto}}, double(derr[p]));
      ClientMetric m;
      m.label.push_back({"protocol", proto});
      uint64_t cum = 0;
      for (size_t k = 0; k < kLatencyBoundsUs.size(); ++k) {
        cum += lat[p].buckets[k];
        m.histogram.bucket.push_back({cum, double(kLatencyBoundsUs[k]) / 1e6});
      }
      cum += lat[p].buckets.back();
      m.histogram.bucket.push_back({cum, std::numeric_limits<double>::infinity()});
      m.histogram.sample_count = lat[p].count;
      m.histogram.sample_sum = double(lat[p].sum_us) / 1e6;
      hist.metric.push_back(std::move(m));
    }
    for (size_t k = 0; k < decode_sums.size(); ++k) {
      const auto& f = kDecodeCounterFields[k];
      if (!f.metric.empty()) Builder::add(b.listed_family(f.metric, f.kind, f.help), {}, double(decode_sums[k]));
    }
    auto& tf = b.family("request_timeouts_total", MT::Counter,
                        "Requests that became timeout records, by cause (expired, overflow of the per-flow "
                        "pending queue, gap in the response direction, flow closed).");
    for (size_t k = 0; k < kTimeoutCauseCount; ++k) {
      Builder::add(tf, {{"cause", std::string(to_string(static_cast<TimeoutCause>(k)))}}, double(tmo[k]));
    }
    auto& df = b.family("records_dropped_total", MT::Counter,
                        "Records dropped before export: export_backpressure (live mode: every export batch was "
                        "in flight because the sinks are slower than the traffic; faster sinks or more batches), "
                        "abandoned (offline: a second signal ended the wait for the sinks).");
    Builder::add(df, {{"reason", "export_backpressure"}}, double(dropped - dropped_abandoned));
    Builder::add(df, {{"reason", "abandoned"}}, double(dropped_abandoned));
    auto& qd = b.family("export_queue_depth", MT::Gauge, "Record batches waiting for the exporter thread.");
    Builder::add(qd, {}, double(r.gauges.export_queue_depth));
    const auto sink_listed = b.listed(kSinkCounterFields);
    for (const auto& sk : r.sinks) Builder::add_listed(sink_listed, kSinkCounterFields, {{"output", sk.output}}, sk);
    auto& ww = b.family("export_waiting_for_broker", MT::Gauge,
                        "1 while an offline run waits for an output's destination to take records (Kafka: "
                        "the broker is down or slow). The run loses nothing and does not end until it is back "
                        "or the run is stopped (first signal: flush for kafka.flush_timeout_s; second: give up).");
    auto& ws = b.family("export_broker_wait_seconds_total", MT::Counter,
                        "Time spent waiting for an output's destination to take records (offline runs).");
    for (const auto& sk : r.sinks) {
      Builder::add(ww, {{"output", sk.output}}, sk.waiting_for_broker ? 1.0 : 0.0);
      Builder::add(ws, {{"output", sk.output}}, sk.broker_wait_s);
    }
  }
  if (any_records) {
    std::array<uint64_t, kDetectOutcomeCount> det{};
    std::array<uint64_t, kProtocolCount> by_payload{};
    uint64_t rejected = 0;
    for (const auto& w : r.workers) {
      if (!w.records.present) continue;
      for (size_t k = 0; k < kDetectOutcomeCount; ++k) det[k] += w.records.decode.detect[k];
      for (size_t p = 0; p < kProtocolCount; ++p) by_payload[p] += w.records.decode.detected_by_payload[p];
      rejected += w.records.decode.detect_rejected;
    }
    auto& dt = b.family("flow_detection_total", MT::Counter,
                        "How flows got their decoder: by_port (a configured server port), by_sniff (payload "
                        "signatures on an unmapped port, confirmed by the decoder), no_decoder, unknown (nothing "
                        "matched: not decoded), no_data. A growing unknown: a service on a port spanfeed does not know.");
    for (size_t k = 0; k < kDetectOutcomeCount; ++k) {
      Builder::add(dt, {{"outcome", std::string(to_string(static_cast<DetectOutcome>(k)))}}, double(det[k]));
    }
    auto& dp = b.family("flows_detected_by_payload_total", MT::Counter,
                        "Flows on unmapped ports classified from their first bytes, by protocol found. Non-zero: "
                        "a service on a non-standard port (add it to decode.ports to skip detection).");
    for (size_t p = 1; p < kProtocolCount; ++p) {
      Builder::add(dp, {{"protocol", std::string(to_string(static_cast<Protocol>(p)))}}, double(by_payload[p]));
    }
    auto& dr = b.family("detection_signature_rejected_total", MT::Counter,
                        "A protocol signature matched a flow's first bytes but the decoder's structural check "
                        "refused them (look-alike traffic).");
    Builder::add(dr, {}, double(rejected));
  }
  if (r.rules.present) {
    const RulesReport& ru = r.rules;
    const ContentCounters& c = ru.totals;
    auto& rm = b.family("rule_matches_total", MT::Counter,
                        "Rule matches (Hyperscan match events) in the streams each rule applies to, by rule id.");
    auto& rr = b.family("rule_records_total", MT::Counter, "Records each rule tagged, by rule id.");
    auto& rd = b.family("rule_redactions_total", MT::Counter,
                        "Ranges of exported fields each redaction rule replaced with <redacted>, by rule id "
                        "(built-in: credit_card, bearer_token, password).");
    for (const auto& pr : ru.per_rule) {
      Builder::add(rm, {{"rule", pr.id}}, double(pr.c.matches));
      Builder::add(rr, {{"rule", pr.id}}, double(pr.c.records));
      Builder::add(rd, {{"rule", pr.id}}, double(pr.c.redactions));
    }
    auto& rl = b.family("rules_loaded", MT::Gauge, "Rules in the running set, by kind (user, builtin).");
    Builder::add(rl, {{"kind", "user"}}, double(ru.rules));
    Builder::add(rl, {{"kind", "builtin"}}, double(ru.builtin));
    auto& rv = b.family("rules_version", MT::Gauge, "Version of the running rule set: 1 at start, +1 per accepted reload.");
    Builder::add(rv, {}, double(ru.version));
    auto& rel = b.family("rules_reloads_total", MT::Counter,
                         "SIGHUP reloads of the rules file, by result. refused: the new file did not load or "
                         "compile; the old set keeps running (the log says why).");
    Builder::add(rel, {{"result", "ok"}}, double(ru.reloads_ok));
    Builder::add(rel, {{"result", "refused"}}, double(ru.reloads_failed));
    auto& sm = b.family("rules_stream_memory_bytes", MT::Gauge,
                        "Hyperscan stream state preallocated for rules (all workers, both sides).");
    Builder::add(sm, {}, double(ru.stream_memory_bytes));
    auto& sb = b.family("rules_scanned_bytes_total", MT::Counter, "Stream bytes scanned by the rules.");
    Builder::add(sb, {}, double(c.bytes_scanned));
    auto& st = b.family("rules_streams_total", MT::Counter,
                        "Per-direction scan streams, by event: opened, exhausted (the pool was empty: that direction "
                        "was NOT scanned; raise rules.max_streams), restarted (a capture gap: no match spans the "
                        "hole), error (Hyperscan failed: the direction stopped being scanned).");
    Builder::add(st, {{"event", "opened"}}, double(c.streams_opened));
    Builder::add(st, {{"event", "exhausted"}}, double(c.streams_exhausted));
    Builder::add(st, {{"event", "restarted"}}, double(c.stream_restarts));
    Builder::add(st, {{"event", "error"}}, double(c.scan_errors));
    auto& hi = b.family("rule_hits_total", MT::Counter,
                        "Matches kept until their message completes, by outcome: stored = attributed + discarded + "
                        "pending; dropped = not kept (rules.hit_pool or the per-direction cap was full: a record may "
                        "miss a tag).");
    Builder::add(hi, {{"outcome", "stored"}}, double(c.hits_stored));
    Builder::add(hi, {{"outcome", "attributed"}}, double(c.hits_attributed));
    Builder::add(hi, {{"outcome", "discarded"}}, double(c.hits_discarded));
    Builder::add(hi, {{"outcome", "dropped"}}, double(c.hits_dropped));
    auto& hp = b.family("rule_hits_pending", MT::Gauge, "Matches waiting for their message to complete.");
    Builder::add(hp, {}, double(c.hits_pending));
    auto& rt2 = b.family("records_tagged_total", MT::Counter, "Records that left with at least one rule tag.");
    Builder::add(rt2, {}, double(c.records_tagged));
    auto& tl = b.family("rule_tags_lost_total", MT::Counter,
                        "Tags not written, by reason: truncated (more than 8 rules matched one message or record), "
                        "reload (the message was marked under a rule set replaced before it left).");
    Builder::add(tl, {{"reason", "truncated"}}, double(c.tags_truncated));
    Builder::add(tl, {{"reason", "reload"}}, double(c.tags_lost_reload));
    auto& dc = b.family("rules_decoded_bytes_total", MT::Counter,
                        "Decoded content scanned by the rules: inflated gzip/deflate HTTP bodies, MySQL "
                        "compressed-protocol payloads and MongoDB OP_COMPRESSED messages (the stream scan sees only "
                        "their compressed bytes).");
    Builder::add(dc, {}, double(c.decoded_bytes));
    auto& inf = b.family("rules_bodies_total", MT::Counter,
                         "Compressed HTTP bodies, by outcome: inflated (scanned); error (not gzip/zlib, or corrupt), "
                         "truncated (past rules.inflate_max_kb: a decompression bomb), gap (the capture lost bytes of "
                         "it), busy (no inflate context free: raise rules.inflaters), reload (a SIGHUP reload came "
                         "mid-body) - the rest of each such body is not scanned.");
    Builder::add(inf, {{"outcome", "inflated"}}, double(c.bodies_inflated));
    Builder::add(inf, {{"outcome", "error"}}, double(c.inflate_errors));
    Builder::add(inf, {{"outcome", "truncated"}}, double(c.inflate_truncated));
    Builder::add(inf, {{"outcome", "gap"}}, double(c.inflate_gaps));
    Builder::add(inf, {{"outcome", "busy"}}, double(c.inflate_busy));
    Builder::add(inf, {{"outcome", "reload"}}, double(c.inflate_reload));
    auto& fr = b.family("fields_redacted_total", MT::Counter,
                        "Exported string fields rewritten by redaction rules; masked: the replacement did not fit "
                        "the record's field space and the bytes were overwritten with '*' instead.");
    Builder::add(fr, {{"how", "replaced"}}, double(c.fields_redacted - c.redaction_masked));
    Builder::add(fr, {{"how", "masked"}}, double(c.redaction_masked));
  }
  if (r.red) append_red_families(*r.red, b.out);
  if (final) {
    auto& lb = b.family("ledger_balanced", MT::Gauge,
                        "1 when every ledger equation of the finished run holds (see the summary's problems).");
    Builder::add(lb, {}, r.ledger_problems().empty() ? 1 : 0);
  }
  return {std::make_move_iterator(b.out.begin()), std::make_move_iterator(b.out.end())};
}

}  // namespace

struct MetricsServer::Impl {
  std::shared_ptr<SnapshotCollectable> metrics = std::make_shared<SnapshotCollectable>();
  std::shared_ptr<SnapshotCollectable> health = std::make_shared<SnapshotCollectable>();
  // Destroyed after the exposer: its final flush may still be under way.
  std::unique_ptr<RemoteWriter> remote_writer;
  std::shared_ptr<const std::vector<MetricFamily>> last;  // the latest snapshot...
  size_t last_base = 0;                                   // ...and its families before the remote writer's
  std::string listen_host;  // where a connection reaches the listener (stop_exposer)
  std::thread stopping;     // stop_serving's
  // Declared last, destroyed first: its HTTP threads are joined before the snapshots they read go.
  std::unique_ptr<prometheus::Exposer> exposer;
};

namespace {

// One connection to host:port, closed at once (bounded by 100 ms).
void poke(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* ai = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &ai) != 0) return;
  const int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    const timeval bound{0, 100'000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof(bound));
    (void)connect(fd, ai->ai_addr, ai->ai_addrlen);
    close(fd);
  }
  freeaddrinfo(ai);
}

// civetweb's listener thread polls its sockets in 2 s turns and looks at its stop flag only
// between them, so destroying the Exposer (mg_stop) took up to 2 s: the last 2 s of every run
// with /metrics on. A connection to the listener while it stops ends the turn at once; the
// connections made before the flag is set are served (they send nothing) and closed.
void stop_exposer(std::unique_ptr<prometheus::Exposer>& exposer, const std::string& host) {
  if (!exposer) return;
  const std::vector<int> ports = exposer->GetListeningPorts();
  std::atomic<bool> stopped{false};
  std::thread waker([&] {
    while (!stopped.load(std::memory_order_acquire)) {
      for (int port : ports) poke(host, port);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  exposer.reset();
  stopped.store(true, std::memory_order_release);
  waker.join();
}

// The address to connect to for a listener on `listen` (HOST:PORT): the host itself, loopback
// for a wildcard.
std::string connect_host(const std::string& listen) {
  const auto hp = split_host_port(listen);
  const std::string host = hp ? std::string(hp->host) : std::string();
  if (host.empty() || host == "0.0.0.0" || host == "*") return "127.0.0.1";
  if (host == "::") return "::1";
  return host;
}

}  // namespace

MetricsServer::MetricsServer() : impl_(std::make_unique<Impl>()) {}
MetricsServer::~MetricsServer() {
  if (impl_->stopping.joinable()) impl_->stopping.join();
  stop_exposer(impl_->exposer, impl_->listen_host);
  impl_->remote_writer.reset();  // the final flush, bounded by remote_write.timeout_s
}

namespace {
std::shared_ptr<const std::vector<MetricFamily>> health_family(double value) {
  MetricFamily h{"spanfeed_healthy", "1 while spanfeed runs its capture.", MetricType::Gauge, {}};
  ClientMetric cm;
  cm.gauge.value = value;
  h.metric.push_back(cm);
  return std::make_shared<const std::vector<MetricFamily>>(std::vector<MetricFamily>{h});
}
}  // namespace

void MetricsServer::stop_serving() {
  if (!impl_->exposer || impl_->stopping.joinable()) return;
  Impl* impl = impl_.get();
  impl_->stopping = std::thread([impl] { stop_exposer(impl->exposer, impl->listen_host); });
}

std::unique_ptr<MetricsServer> MetricsServer::start(const std::string& listen, std::string& error) {
  std::unique_ptr<MetricsServer> m(new MetricsServer());
  if (listen == "off") return m;  // no HTTP server: the snapshots feed the remote writer only
  try {
    m->impl_->exposer = std::make_unique<prometheus::Exposer>(listen, 2);
  } catch (const std::exception& e) {
    error = "metrics: cannot listen on " + listen + " (" + e.what() +
            "); choose another with --metrics HOST:PORT or metrics.listen, or --metrics off";
    return nullptr;
  }
  m->impl_->listen_host = connect_host(listen);
  m->impl_->exposer->RegisterCollectable(m->impl_->metrics, "/metrics");
  m->impl_->exposer->RegisterCollectable(m->impl_->health, "/health");
  m->impl_->health->set(health_family(1));
  return m;
}

bool MetricsServer::start_remote_write(const RemoteWriteConfig& cfg, std::string& error) {
  impl_->remote_writer = RemoteWriter::start(cfg, error);
  return impl_->remote_writer != nullptr;
}

std::string MetricsServer::finish_remote_write() {
  if (!impl_->remote_writer) return {};
  std::string line = impl_->remote_writer->finish();
  if (impl_->last) {  // what /metrics shows from now on (the linger) has the final push's outcome too
    std::vector<MetricFamily> families(impl_->last->begin(), impl_->last->begin() + impl_->last_base);
    append_remote_write_families(impl_->remote_writer->stats(), families);
    impl_->metrics->set(std::make_shared<const std::vector<MetricFamily>>(std::move(families)));
  }
  return line;
}

void MetricsServer::publish(const RunReport& r, bool final) {
  auto families = build(r, final);
  impl_->last_base = families.size();
  if (impl_->remote_writer) append_remote_write_families(impl_->remote_writer->stats(), families);
  auto snapshot = std::make_shared<const std::vector<MetricFamily>>(std::move(families));
  impl_->last = snapshot;
  impl_->metrics->set(snapshot);
  if (impl_->remote_writer) impl_->remote_writer->offer(std::move(snapshot), final);
  if (final) impl_->health->set(health_family(0));
}

int MetricsServer::port() const {
  if (!impl_->exposer) return 0;
  auto p = impl_->exposer->GetListeningPorts();
  return p.empty() ? 0 : p[0];
}

}  // namespace spanfeed
