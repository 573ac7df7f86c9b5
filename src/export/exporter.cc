// The exporter: batch pool, the bounded TBB queue from workers to the
// exporter thread, and the JSON-lines sink. Pools are allocated at start-up;
// the exporter thread writes batches out and returns them to their worker.
#include "spanfeed/export.h"

#include <tbb/concurrent_queue.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "spanfeed/config.h"

namespace spanfeed {

OutputSpec parse_output(const std::string& s) {
  OutputSpec o;
  o.text = s;
  auto colon = s.find(':');
  if (colon == std::string::npos || colon + 1 >= s.size()) {
    throw ConfigError("output '" + s + "': expected KIND:TARGET, e.g. jsonl:-, jsonl:/var/log/rt.jsonl");
  }
  std::string kind = s.substr(0, colon);
  o.target = s.substr(colon + 1);
  if (kind == "jsonl") {
    o.kind = OutputSpec::Kind::kJsonl;
  } else if (kind == "kafka") {
    o.kind = OutputSpec::Kind::kKafka;
  } else if (kind == "gelf-udp") {
    o.kind = OutputSpec::Kind::kGelfUdp;
  } else if (kind == "gelf-tcp") {
    o.kind = OutputSpec::Kind::kGelfTcp;
  } else {
    throw ConfigError("output '" + s + "': unknown kind '" + kind + "' (known: jsonl)");
  }
  if (o.kind != OutputSpec::Kind::kJsonl) {
    throw ConfigError("output '" + s + "': " + kind + " output is not available in this build "
                      "(jsonl is)");
  }
  return o;
}

namespace {

class JsonlSink final : public Sink {
 public:
  JsonlSink(std::FILE* f, bool owned) : f_(f), owned_(owned) {}
  ~JsonlSink() override {
    if (owned_) std::fclose(f_);
    else std::fflush(f_);
  }
  size_t write(const RecordBatch& b) override {
    if (b.data.empty()) return 0;
    if (std::fwrite(b.data.data(), 1, b.data.size(), f_) == b.data.size()) return b.records();
    // A short write: count the records whose bytes did not all make it.
    return 0;
  }
  void flush() override { std::fflush(f_); }

 private:
  std::FILE* f_;
  bool owned_;
};

}  // namespace

std::unique_ptr<Sink> make_jsonl_sink(const std::string& path, std::string& error) {
  if (path == "-") return std::make_unique<JsonlSink>(stdout, false);
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) {
    error = "output jsonl:" + path + ": cannot open: " + std::strerror(errno);
    return nullptr;
  }
  return std::make_unique<JsonlSink>(f, true);
}

struct Exporter::Impl {
  std::vector<std::unique_ptr<RecordBatch>> all;
  // Free batches per worker; the exporter thread pushes them back.
  std::vector<std::unique_ptr<tbb::concurrent_bounded_queue<RecordBatch*>>> free;
  // Filled batches from every worker, in submission order per worker.
  tbb::concurrent_bounded_queue<RecordBatch*> filled;
};

std::unique_ptr<Exporter> Exporter::create(const ExportConfig& cfg, unsigned workers,
                                           std::string& error) {
  std::unique_ptr<Exporter> e(new Exporter());
  e->cfg_ = cfg;
  e->impl_ = std::make_unique<Impl>();
  for (const auto& o : cfg.outputs) {
    std::unique_ptr<Sink> s;
    switch (o.kind) {
      case OutputSpec::Kind::kJsonl: s = make_jsonl_sink(o.target, error); break;
      default: error = "output " + o.text + " is not available"; break;
    }
    if (!s) return nullptr;
    e->sinks_.push_back(std::move(s));
    e->counters_.push_back(std::make_unique<SinkCounters>());
  }
  Impl& im = *e->impl_;
  im.filled.set_capacity(static_cast<std::ptrdiff_t>(workers) * cfg.batches_per_worker + 1);
  for (unsigned w = 0; w < workers; ++w) {
    im.free.push_back(std::make_unique<tbb::concurrent_bounded_queue<RecordBatch*>>());
    for (uint32_t i = 0; i < cfg.batches_per_worker; ++i) {
      auto b = std::make_unique<RecordBatch>();
      b->owner = w;
      b->data.reserve(cfg.batch_bytes + 16 * 1024);  // a record may overshoot the threshold
      b->refs.reserve(cfg.batch_records);
      im.free[w]->push(b.get());
      im.all.push_back(std::move(b));
    }
  }
  return e;
}

Exporter::~Exporter() {
  if (thread_.joinable()) stop();
}

RecordBatch* Exporter::try_acquire(unsigned w) {
  RecordBatch* b = nullptr;
  if (!impl_->free[w]->try_pop(b)) return nullptr;
  b->clear();
  return b;
}

void Exporter::submit(RecordBatch* b) { impl_->filled.push(b); }

size_t Exporter::queue_depth() const {
  auto n = impl_->filled.size();
  return n > 0 ? static_cast<size_t>(n) : 0;
}

void Exporter::start() { thread_ = std::thread([this] { run(); }); }

void Exporter::stop() {
  impl_->filled.push(nullptr);  // after every worker's last submit: drains the rest first
  thread_.join();
}

void Exporter::run() {
  while (true) {
    RecordBatch* b = nullptr;
    impl_->filled.pop(b);
    if (b == nullptr) break;
    for (size_t i = 0; i < sinks_.size(); ++i) {
      size_t ok = sinks_[i]->write(*b);
      SinkCounters& c = *counters_[i];
      c.batches.fetch_add(1, std::memory_order_relaxed);
      c.delivered.fetch_add(ok, std::memory_order_relaxed);
      c.failed.fetch_add(b->records() - ok, std::memory_order_relaxed);
      c.bytes.fetch_add(b->data.size(), std::memory_order_relaxed);
    }
    impl_->free[b->owner]->push(b);
  }
  for (auto& s : sinks_) s->flush();
}

}  // namespace spanfeed
