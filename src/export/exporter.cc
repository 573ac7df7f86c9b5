// The exporter: batch pool, the queues from workers to the exporter threads
// and back, and the JSON-lines sink. Pools and queues are allocated at
// start-up; each exporter thread writes its workers' batches out and returns
// them.
#include "export/export.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export/gelf_encoder.h"
#include "spanfeed/config.h"
#include "core/host_port.h"

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

int open_append(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
}

// Writes `len` bytes to `fd` (a regular file, a pipe or a terminal): as many
// write(2) calls as the kernel needs. Returns the bytes written; fewer on an
// error (disk full, closed pipe).
size_t write_all(int fd, const char* p, size_t len) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n = ::write(fd, p + done, len - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  return done;
}

// JSON lines straight to the file descriptor, no stdio buffer: what write(2)
// accepted is what counts as delivered (a buffered stream would count
// records that a later flush to a full disk loses).
class JsonlSink final : public Sink {
 public:
  JsonlSink(int fd, std::string path, uint64_t rotate_bytes, uint32_t keep)
      : fd_(fd), path_(std::move(path)), rotate_bytes_(rotate_bytes), keep_(keep) {
    if (fd_ != STDOUT_FILENO) {
      const off_t end = ::lseek(fd_, 0, SEEK_END);
      size_ = end > 0 ? static_cast<uint64_t>(end) : 0;
    } else {
      std::fflush(stdout);  // anything printed before goes first
    }
  }
  ~JsonlSink() override {
    if (fd_ >= 0 && fd_ != STDOUT_FILENO) ::close(fd_);
  }
  void write(const RecordBatch& b, SinkCounters& c, bool) override {
    // A run of records in one write (the whole batch, or up to the record
    // that reaches the rotation size). A short write (disk full) delivers
    // the records it holds whole and fails the one it cut; the rest are
    // tried again.
    const size_t n = b.refs.size();
    size_t i = 0, start = 0;
    while (i < n) {
      size_t j = i;  // the run's last record
      if (rotate_bytes_ == 0) {
        j = n - 1;
      } else {
        while (j + 1 < n && size_ + (b.refs[j].end - start) < rotate_bytes_) ++j;
      }
      const size_t len = b.refs[j].end - start;
      const size_t wrote = fd_ >= 0 ? write_all(fd_, b.data.data() + start, len) : 0;
      size_t whole = i;
      while (whole <= j && b.refs[whole].end - start <= wrote) ++whole;
      if (whole > i) c.delivered.add(whole - i);
      size_ += wrote;
      if (whole <= j) {  // cut, or not written at all
        c.failed.add(1);
        ++failures_;
        ++whole;
      }
      start = b.refs[whole - 1].end;
      i = whole;
      if (rotate_bytes_ != 0 && size_ >= rotate_bytes_) rotate();
    }
  }
  std::vector<std::pair<std::string, uint64_t>> failure_reasons() const override {
    if (failures_ == 0) return {};
    return {{"write", failures_}};
  }

 private:
  // PATH -> PATH.1 -> ... -> PATH.keep (the oldest is removed), new PATH.
  void rotate() {
    ::close(fd_);
    std::remove((path_ + "." + std::to_string(keep_)).c_str());
    for (uint32_t i = keep_; i > 1; --i) {
      std::rename((path_ + "." + std::to_string(i - 1)).c_str(), (path_ + "." + std::to_string(i)).c_str());
    }
    std::rename(path_.c_str(), (path_ + ".1").c_str());
    fd_ = open_append(path_);
    size_ = 0;
  }

  int fd_;
  std::string path_;
  uint64_t rotate_bytes_;
  uint32_t keep_;
  uint64_t size_ = 0;
  uint64_t failures_ = 0;
};

}  // namespace

std::unique_ptr<Sink> make_jsonl_sink(const std::string& path, uint64_t rotate_bytes, uint32_t keep,
                                      std::string& error) {
  if (path == "-") return std::make_unique<JsonlSink>(STDOUT_FILENO, path, 0, 0);
  const int fd = open_append(path);
  if (fd < 0) {
    error = "output jsonl:" + path + ": cannot open: " + std::strerror(errno);
    return nullptr;
  }
  return std::make_unique<JsonlSink>(fd, path, rotate_bytes, keep);
}

namespace {

// One JSON-lines file written by several exporter threads: batch by batch
// under a lock (each thread's batches stay in order; a batch is never split).
class SharedSink final : public Sink {
 public:
  SharedSink(std::shared_ptr<Sink> inner, std::shared_ptr<std::mutex> mu, bool reports)
      : inner_(std::move(inner)), mu_(std::move(mu)), reports_(reports) {}
  void write(const RecordBatch& b, SinkCounters& c, bool wait) override {
    std::lock_guard lock(*mu_);
    inner_->write(b, c, wait);
  }
  void poll(SinkCounters& c) override {
    std::lock_guard lock(*mu_);
    inner_->poll(c);
  }
  void close(SinkCounters& c) override {
    std::lock_guard lock(*mu_);
    inner_->close(c);
  }
  std::vector<std::pair<std::string, uint64_t>> failure_reasons() const override {
    if (!reports_) return {};  // the first thread's wrapper reports for the shared sink
    std::lock_guard lock(*mu_);
    return inner_->failure_reasons();
  }

 private:
  std::shared_ptr<Sink> inner_;
  std::shared_ptr<std::mutex> mu_;
  bool reports_;
};

std::unique_ptr<Sink> make_sink(const OutputSpec& o, const ExportConfig& cfg, std::string& error) {
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
      break;
  }
  if (s) s->set_wait_policy({cfg.policy, cfg.stop, cfg.abandon});
  return s;
}

}  // namespace

unsigned default_export_threads(unsigned workers, unsigned cpus) {
  unsigned t = std::min((workers + 3) / 4, std::max(1u, cpus / 4));
  return std::clamp(t, 1u, 8u);
}

// Batches passed between threads (workers and an exporter thread). Sized at
// start-up for every batch that can be in it at once, so a push never waits
// or allocates. A mutex: one push and one pop per batch (up to 256 records).
class BatchQueue {
 public:
  explicit BatchQueue(size_t capacity) : ring_(capacity) {}
  void push(RecordBatch* b) {
    std::lock_guard lock(mu_);
    if (size_ == ring_.size()) grow();  // never, by construction: kept for safety
    ring_[(head_ + size_) % ring_.size()] = b;
    ++size_;
  }
  bool try_pop(RecordBatch*& b) {
    std::lock_guard lock(mu_);
    if (size_ == 0) return false;
    b = ring_[head_];
    head_ = (head_ + 1) % ring_.size();
    --size_;
    return true;
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return size_;
  }

 private:
  void grow() {
    std::vector<RecordBatch*> bigger(std::max<size_t>(2 * ring_.size(), 1));
    for (size_t i = 0; i < size_; ++i) bigger[i] = ring_[(head_ + i) % ring_.size()];
    ring_.swap(bigger);
    head_ = 0;
  }
  mutable std::mutex mu_;
  std::vector<RecordBatch*> ring_;
  size_t head_ = 0;
  size_t size_ = 0;
};

// One exporter thread: its queue of filled batches (from workers w with
// w % threads == its index) and its own sinks and counters. Aligned: the
// threads never share a cache line.
struct alignas(64) Exporter::Lane {
  explicit Lane(size_t capacity) : filled(capacity) {}
  BatchQueue filled;
  std::vector<std::unique_ptr<Sink>> sinks;            // one per output
  std::vector<std::unique_ptr<SinkCounters>> counters;  // one per output
  std::thread thread;
  std::atomic<bool> finished{false};
};

// A worker's free batches: popped by that worker, pushed back by its exporter
// thread. Aligned: the queue's own fields, read on every acquire, share no
// line with another worker's batches or queue.
struct alignas(64) FreeBatches {
  explicit FreeBatches(size_t capacity) : q(capacity) {}
  BatchQueue q;
};

struct Exporter::Impl {
  std::vector<std::unique_ptr<RecordBatch>> all;
  // Rung by each exporter thread as it finishes (wait_finished).
  std::mutex finished_mu;
  std::condition_variable finished_cv;
  // Free batches per worker; the exporter threads push them back.
  std::vector<std::unique_ptr<FreeBatches>> free;
  std::vector<std::unique_ptr<Lane>> lanes;
};

std::unique_ptr<Exporter> Exporter::create(const ExportConfig& cfg, unsigned workers,
                                           std::string& error) {
  std::unique_ptr<Exporter> e(new Exporter());
  e->cfg_ = cfg;
  e->impl_ = std::make_unique<Impl>();
  Impl& im = *e->impl_;
  workers = std::max(workers, 1u);
  unsigned threads = cfg.threads != 0 ? cfg.threads
                                      : default_export_threads(workers, std::thread::hardware_concurrency());
  threads = std::min(threads, workers);  // a thread without a worker would have nothing to do
  for (unsigned t = 0; t < threads; ++t) {
    // Each queue holds every batch of its workers (and the stop marker): a submit never blocks.
    const unsigned served = (workers - t + threads - 1) / threads;
    im.lanes.push_back(std::make_unique<Lane>(size_t{served} * cfg.batches_per_worker + 1));
  }
  for (const auto& o : cfg.outputs) {
    if (o.kind != OutputSpec::Kind::kJsonl && o.kind != OutputSpec::Kind::kKafka && e->gelf_host_.empty()) {
      e->gelf_host_ = gelf_hostname();  // the workers encode GELF documents
    }
    if (o.kind == OutputSpec::Kind::kJsonl && threads > 1) {
      std::shared_ptr<Sink> shared = make_sink(o, cfg, error);
      if (!shared) return nullptr;
      auto mu = std::make_shared<std::mutex>();
      for (unsigned t = 0; t < threads; ++t) {
        im.lanes[t]->sinks.push_back(std::make_unique<SharedSink>(shared, mu, t == 0));
      }
    } else {
      for (unsigned t = 0; t < threads; ++t) {
        std::unique_ptr<Sink> s = make_sink(o, cfg, error);
        if (!s) return nullptr;
        im.lanes[t]->sinks.push_back(std::move(s));
      }
    }
    for (unsigned t = 0; t < threads; ++t) im.lanes[t]->counters.push_back(std::make_unique<SinkCounters>());
  }
  for (unsigned w = 0; w < workers; ++w) {
    im.free.push_back(std::make_unique<FreeBatches>(cfg.batches_per_worker));
    for (uint32_t i = 0; i < cfg.batches_per_worker; ++i) {
      auto b = std::make_unique<RecordBatch>();
      b->owner = w;
      b->data.reserve(cfg.batch_bytes + 16 * 1024);  // a record may overshoot the threshold
      b->refs.reserve(cfg.batch_records);
      if (!e->gelf_host_.empty()) b->gelf.reserve(2 * (cfg.batch_bytes + 16 * 1024));  // GELF repeats keys
      im.free[w]->q.push(b.get());
      im.all.push_back(std::move(b));
    }
  }
  return e;
}

Exporter::~Exporter() {
  if (impl_ == nullptr) return;
  for (const auto& l : impl_->lanes) {
    if (l->thread.joinable()) {
      stop();
      break;
    }
  }
}

RecordBatch* Exporter::try_acquire(unsigned w) {
  RecordBatch* b = nullptr;
  if (!impl_->free[w]->q.try_pop(b)) return nullptr;
  b->clear();
  return b;
}

void Exporter::submit(RecordBatch* b) { impl_->lanes[b->owner % impl_->lanes.size()]->filled.push(b); }

size_t Exporter::queue_depth() const {
  size_t total = 0;
  for (const auto& l : impl_->lanes) total += l->filled.size();
  return total;
}

unsigned Exporter::threads() const { return static_cast<unsigned>(impl_->lanes.size()); }

SinkSnapshot Exporter::sink_totals(size_t i) const {
  SinkSnapshot t;
  uint64_t wait_ms = 0;
  for (const auto& l : impl_->lanes) {
    const SinkCounters& c = *l->counters[i];
    SinkCountersOf<uint64_t> one;
    c.copy_to(one);
    for (const auto& f : kSinkCounterFields) t.*f.member += one.*f.member;
    t.waiting_for_broker |= c.waiting_for_broker.get() != 0;
    wait_ms += c.broker_wait_ms.get();
  }
  t.broker_wait_s = static_cast<double>(wait_ms) / 1e3;
  return t;
}

std::vector<std::pair<std::string, uint64_t>> Exporter::failure_reasons(size_t i) const {
  std::map<std::string, uint64_t> sum;
  for (const auto& l : impl_->lanes) {
    for (const auto& [why, n] : l->sinks[i]->failure_reasons()) sum[why] += n;
  }
  return {sum.begin(), sum.end()};
}

void Exporter::start() {
  for (auto& l : impl_->lanes) {
    Lane* lane = l.get();
    lane->thread = std::thread([this, lane] { run(*lane); });
  }
}

void Exporter::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  // After every worker's last submit: each thread drains the rest first.
  for (auto& l : impl_->lanes) l->filled.push(nullptr);
}

bool Exporter::finished() const {
  for (const auto& l : impl_->lanes) {
    if (!l->finished.load(std::memory_order_acquire)) return false;
  }
  return true;
}

bool Exporter::wait_finished(std::chrono::milliseconds d) {
  std::unique_lock lock(impl_->finished_mu);
  return impl_->finished_cv.wait_for(lock, d, [&] { return finished(); });
}

void Exporter::stop() {
  begin_stop();
  for (auto& l : impl_->lanes) {
    if (l->thread.joinable()) l->thread.join();
  }
}

void Exporter::run(Lane& lane) {
  auto& sinks = lane.sinks;
  auto& counters = lane.counters;
  while (true) {
    RecordBatch* b = nullptr;
    if (!lane.filled.try_pop(b)) {
      // Idle: serve delivery reports, then wait a little for the next batch.
      for (size_t i = 0; i < sinks.size(); ++i) sinks[i]->poll(*counters[i]);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    if (b == nullptr) break;
    for (size_t i = 0; i < sinks.size(); ++i) {
      SinkCounters& c = *counters[i];
      c.batches.add(1);
      c.records.add(b->records());
      c.bytes.add(b->data.size());
      sinks[i]->write(*b, c, cfg_.policy.wait_for_sinks());
    }
    impl_->free[b->owner]->q.push(b);
  }
  for (size_t i = 0; i < sinks.size(); ++i) sinks[i]->close(*counters[i]);
  lane.finished.store(true, std::memory_order_release);
  { std::lock_guard lock(impl_->finished_mu); }  // a waiter between its check and its wait sees it
  impl_->finished_cv.notify_all();
}

}  // namespace spanfeed
