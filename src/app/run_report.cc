// Run report assembly, status line and summaries. Control core; allocates.
#include "app/run_report.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "rules/rules_control.h"
#include "export/export.h"
#include "jobs/jobs.h"
#include "red/merger.h"

#include <chrono>

namespace spanfeed::app {

void assemble_report(const EngineCounters& c, const ReportSources& from, bool final, RunReport& rep) {
  const Config& cfg = *from.cfg;
  if (from.rules != nullptr) rep.rules = from.rules->report();
  rep.interrupted = c.interrupted;
  rep.elapsed_s = c.elapsed_s;
  rep.policy = cfg.capture_policy();
  rep.job = to_string(cfg.job);
  rep.link_type = std::string(to_string(c.link));
  rep.expected_packets = from.expected_packets;
  rep.nics = c.nics;
  rep.rx = c.rx;
  rep.workers.clear();
  for (size_t w = 0; w < c.workers.size(); ++w) {
    const WorkerLoopSnapshot& l = c.workers[w];
    WorkerSnapshot ws;
    ws.lcore = l.lcore;
    l.copy_to(ws);
    ws.defrag_present = l.defrag_present;
    ws.defrag = l.defrag;
    ws.busy_s = l.busy_s;
    if (from.jobs != nullptr && w < from.jobs->size() && (*from.jobs)[w] != nullptr) (*from.jobs)[w]->report(ws);
    rep.workers.push_back(std::move(ws));
  }
  if (from.red != nullptr && from.jobs != nullptr) {
    const double now_s = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    for (size_t w = 0; w < from.jobs->size(); ++w) {
      if ((*from.jobs)[w] == nullptr) continue;
      if (red::Exchange* x = (*from.jobs)[w]->red_exchange()) {
        x->take([&](const red::Delta& d) { from.red->add(w, d, now_s); });
      }
    }
    rep.red = from.red->report();
  }
  rep.gauges.ring_size = c.ring_size;
  rep.gauges.ring_used = c.ring_used;
  rep.gauges.mempool_size = c.mempool_size;
  rep.gauges.mempool_in_use = c.mempool_in_use;
  rep.sinks.clear();
  if (const Exporter* ex = from.exporter) {
    rep.gauges.export_queue_depth = ex->queue_depth();
    for (size_t i = 0; i < ex->sink_count(); ++i) {
      SinkSnapshot s = ex->sink_totals(i);
      s.output = ex->sink_spec(i).text;
      if (final) s.failure_reasons = ex->failure_reasons(i);
      rep.sinks.push_back(std::move(s));
    }
  }
}

void StatusLine::update(const RunReport& r, bool final) {
  if (!enabled_) return;
  if (final) {
    std::fputs("\n", stderr);
    return;
  }
  uint64_t rx = r.rx_received(), rt = 0, drops = r.rx_outcome(RxOutcome::kRingFull);
  for (const auto& n : r.nics) drops += n.imissed + n.rx_nombuf;
  for (const auto& w : r.workers) {
    rt += w.records.decode.records_emitted;
    drops += w.records.dropped;
  }
  double dt = r.elapsed_s - last_t_;
  char progress[64] = "";
  if (r.expected_packets > 0) {
    std::snprintf(progress, sizeof(progress), "  file %.0f%%", 100.0 * rx / r.expected_packets);
  } else if (r.file_fraction >= 0) {
    std::snprintf(progress, sizeof(progress), "  file %.0f%%", 100.0 * r.file_fraction);
  }
  std::fprintf(stderr, "\r[spanfeed] %7.1f s  rx %8.3f Mpps  drops %llu  roundtrips %9.0f/s%s   ",
               r.elapsed_s, dt > 0 ? (rx - last_rx_) / dt / 1e6 : 0.0,
               static_cast<unsigned long long>(drops), dt > 0 ? (rt - last_rt_) / dt : 0.0, progress);
  last_rx_ = rx;
  last_rt_ = rt;
  last_t_ = r.elapsed_s;
}

bool write_summaries(const Config& cfg, const RunReport& report) {
  // Records on stdout keep stdout to themselves: the summary goes to stderr.
  bool records_on_stdout = false;
  for (const auto& o : cfg.outputs) records_on_stdout |= o == "jsonl:-";
  if (!cfg.quiet) std::fputs(to_text(report).c_str(), records_on_stdout ? stderr : stdout);
  if (!cfg.summary_json.empty()) {
    std::ofstream out(cfg.summary_json);
    out << to_json(report).dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "spanfeed: cannot write summary to '%s'\n", cfg.summary_json.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace spanfeed::app
