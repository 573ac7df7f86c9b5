// The exporter: batch pool, the bounded TBB queue from workers to the
// exporter thread, and the JSON-lines sink. Pools are allocated at start-up;
// the exporter thread writes batches out and returns them to their worker.
#include "spanfeed/export.h"

#include <tbb/concurrent_queue.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include <sys/stat.h>
#include <unistd.h>

#include "export/gelf_encoder.h"
#include "spanfeed/config.h"
#include "spanfeed/host_port.h"

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
  } else if (kind == "gelf-tls") {
    o.kind = OutputSpec::Kind::kGelfTls;
  } else {
    throw ConfigError("output '" + s + "': unknown kind '" + kind +
                      "' (known: jsonl, kafka, gelf-udp, gelf-tcp, gelf-tls)");
  }
  if (o.kind == OutputSpec::Kind::kKafka) {
    auto slash = o.target.rfind('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == o.target.size()) {
      throw ConfigError("output '" + s + "': expected kafka:HOST:PORT[,HOST:PORT...]/TOPIC");
    }
  }
  if ((o.kind == OutputSpec::Kind::kGelfUdp || o.kind == OutputSpec::Kind::kGelfTcp ||
       o.kind == OutputSpec::Kind::kGelfTls) &&
      !split_host_port(o.target)) {
    throw ConfigError("output '" + s + "': expected " + kind + ":HOST:PORT");
  }
  return o;
}

void check_outputs(const std::vector<OutputSpec>& outputs,
                   const std::vector<std::pair<std::string, std::string>>& kafka_props, const GelfConfig& gelf) {
  bool kafka = false, gelf_tls = false;
  for (const OutputSpec& o : outputs) {
    kafka |= o.kind == OutputSpec::Kind::kKafka;
    gelf_tls |= o.kind == OutputSpec::Kind::kGelfTls;
    if (o.kind != OutputSpec::Kind::kJsonl || o.target == "-") continue;
    // The file is opened for appending at start: it, or its directory, must
    // be writable now.
    const std::string where = "output " + o.text + " (outputs / --output): ";
    struct stat st {};
    if (::stat(o.target.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) throw ConfigError(where + "'" + o.target + "' is a directory");
      if (::access(o.target.c_str(), W_OK) != 0) {
        throw ConfigError(where + "cannot write '" + o.target + "': " + std::strerror(errno));
      }
      continue;
    }
    auto slash = o.target.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : o.target.substr(0, slash);
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      throw ConfigError(where + "directory '" + dir + "' does not exist");
    }
    if (::access(dir.c_str(), W_OK) != 0) {
      throw ConfigError(where + "cannot create a file in '" + dir + "': " + std::strerror(errno));
    }
  }
  if (kafka) {
    std::string why = validate_kafka_properties(kafka_props);
    if (!why.empty()) throw ConfigError("kafka.properties: " + why);
  }
  if (gelf_tls) {
    std::string why = check_gelf_tls(gelf);
    if (!why.empty()) throw ConfigError("gelf.tls: " + why);
  }
}

namespace {

class JsonlSink final : public Sink {
 public:
  JsonlSink(std::FILE* f, std::string path, uint64_t rotate_bytes, uint32_t keep)
      : f_(f), path_(std::move(path)), rotate_bytes_(rotate_bytes), keep_(keep) {
    if (f_ != stdout) {
      std::fseek(f_, 0, SEEK_END);
      size_ = static_cast<uint64_t>(std::ftell(f_));
    }
  }
  ~JsonlSink() override {
    if (f_ == nullptr) return;
    if (f_ != stdout) std::fclose(f_);
    else std::fflush(f_);
  }
  void write(const RecordBatch& b, SinkCounters& c, bool) override {
    // Record by record: a short write (disk full) fails only what it cut.
    size_t start = 0;
    for (const RecordRef& r : b.refs) {
      size_t n = r.end - start;
      if (f_ != nullptr && std::fwrite(b.data.data() + start, 1, n, f_) == n) {
        c.add(c.delivered, 1);
        size_ += n;
      } else {
        c.add(c.failed, 1);
        ++failures_;
      }
      start = r.end;
      if (rotate_bytes_ != 0 && size_ >= rotate_bytes_) rotate();
    }
  }
  void close(SinkCounters&) override {
    if (f_ != nullptr) std::fflush(f_);
  }
  std::vector<std::pair<std::string, uint64_t>> failure_reasons() const override {
    if (failures_ == 0) return {};
    return {{"write", failures_}};
  }

 private:
  // PATH -> PATH.1 -> ... -> PATH.keep (the oldest is removed), new PATH.
  void rotate() {
    std::fclose(f_);
    std::remove((path_ + "." + std::to_string(keep_)).c_str());
    for (uint32_t i = keep_; i > 1; --i) {
      std::rename((path_ + "." + std::to_string(i - 1)).c_str(), (path_ + "." + std::to_string(i)).c_str());
    }
    std::rename(path_.c_str(), (path_ + ".1").c_str());
    f_ = std::fopen(path_.c_str(), "a");
    size_ = 0;
  }

  std::FILE* f_;
  std::string path_;
  uint64_t rotate_bytes_;
  uint32_t keep_;
  uint64_t size_ = 0;
  uint64_t failures_ = 0;
};

}  // namespace

std::unique_ptr<Sink> make_jsonl_sink(const std::string& path, uint64_t rotate_bytes, uint32_t keep,
                                      std::string& error) {
  if (path == "-") return std::make_unique<JsonlSink>(stdout, path, 0, 0);
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) {
    error = "output jsonl:" + path + ": cannot open: " + std::strerror(errno);
    return nullptr;
  }
  return std::make_unique<JsonlSink>(f, path, rotate_bytes, keep);
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
      case OutputSpec::Kind::kJsonl:
        s = make_jsonl_sink(o.target, cfg.jsonl_rotate_bytes, cfg.jsonl_keep, error);
        break;
      case OutputSpec::Kind::kKafka:
        s = make_kafka_sink(o.target, cfg.kafka_props, cfg.kafka_flush_timeout_s, cfg.policy, error);
        break;
      case OutputSpec::Kind::kGelfUdp:
      case OutputSpec::Kind::kGelfTcp:
      case OutputSpec::Kind::kGelfTls:
        s = make_gelf_sink(o.kind == OutputSpec::Kind::kGelfUdp   ? GelfTransport::kUdp
                           : o.kind == OutputSpec::Kind::kGelfTcp ? GelfTransport::kTcp
                                                                  : GelfTransport::kTls,
                           o.target, cfg.gelf, error);
        if (!s) error = "output " + o.text + ": " + error;
        if (e->gelf_host_.empty()) e->gelf_host_ = gelf_hostname();  // the workers encode GELF documents
        break;
    }
    if (!s) return nullptr;
    s->set_wait_policy({cfg.policy, cfg.stop, cfg.abandon});
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
      if (!e->gelf_host_.empty()) b->gelf.reserve(2 * (cfg.batch_bytes + 16 * 1024));  // GELF repeats keys
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

void Exporter::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  impl_->filled.push(nullptr);  // after every worker's last submit: drains the rest first
}

void Exporter::stop() {
  begin_stop();
  if (thread_.joinable()) thread_.join();
}

void Exporter::run() {
  while (true) {
    RecordBatch* b = nullptr;
    if (!impl_->filled.try_pop(b)) {
      // Idle: serve delivery reports, then wait a little for the next batch.
      for (size_t i = 0; i < sinks_.size(); ++i) sinks_[i]->poll(*counters_[i]);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    if (b == nullptr) break;
    for (size_t i = 0; i < sinks_.size(); ++i) {
      SinkCounters& c = *counters_[i];
      c.add(c.batches, 1);
      c.add(c.records, b->records());
      c.add(c.bytes, b->data.size());
      sinks_[i]->write(*b, c, cfg_.policy.wait_for_sinks());
    }
    impl_->free[b->owner]->push(b);
  }
  for (size_t i = 0; i < sinks_.size(); ++i) sinks_[i]->close(*counters_[i]);
  finished_.store(true, std::memory_order_release);
}

}  // namespace spanfeed
