// Prometheus remote-write pusher: protobuf WriteRequest, snappy framing, HTTP
// POST with libcurl, on its own thread (never an lcore). A bounded queue of
// pending pushes (the oldest dropped, counted), retries with backoff on 5xx,
// 429 and network errors, none on 4xx; a final flush at shutdown bounded by
// timeout_s. Allocates. The only source with protobuf, snappy and curl.
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <snappy.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <type_traits>

#include "metrics/remote_write.h"
#include "remote.pb.h"

#ifndef SPANFEED_VERSION
#define SPANFEED_VERSION "dev"
#endif

namespace spanfeed {

using Clock = std::chrono::steady_clock;

namespace {

// Backoff between retries of one push: from 100 ms, doubling, to 5 s (the
// store is down: one request per 5 s is enough to notice it is back).
constexpr double kMinBackoffS = 0.1;
constexpr double kMaxBackoffS = 5;
// Bytes of a refusal's body kept for the log line.
constexpr size_t kErrorBodyMax = 512;

// libcurl, opened when a remote_write section first asks for it. Linked, it
// and the two dozen libraries it pulls in (GnuTLS, Kerberos, LDAP, libssh2,
// ...) cost every run ~6 ms of CPU before main, remote write or not.
struct CurlApi {
  decltype(&::curl_global_init) global_init;
  decltype(&::curl_easy_init) easy_init;
  decltype(&::curl_easy_setopt) easy_setopt;
  decltype(&::curl_easy_perform) easy_perform;
  decltype(&::curl_easy_getinfo) easy_getinfo;
  decltype(&::curl_easy_strerror) easy_strerror;
  decltype(&::curl_easy_cleanup) easy_cleanup;
  decltype(&::curl_slist_append) slist_append;
  decltype(&::curl_slist_free_all) slist_free_all;
};

constexpr const char* kLibcurl = "libcurl.so.4";

// The loaded API, or nullptr with the reason in `error`. Once per process.
const CurlApi* curl_api(std::string& error) {
  static CurlApi api{};
  static const std::string failure = [] () -> std::string {
    void* lib = dlopen(kLibcurl, RTLD_NOW | RTLD_LOCAL);  // never closed: the process's lifetime
    if (lib == nullptr) return dlerror();
    bool ok = true;
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      ok = ok && fn != nullptr;
    };
    sym(api.global_init, "curl_global_init");
    sym(api.easy_init, "curl_easy_init");
    sym(api.easy_setopt, "curl_easy_setopt");
    sym(api.easy_perform, "curl_easy_perform");
    sym(api.easy_getinfo, "curl_easy_getinfo");
    sym(api.easy_strerror, "curl_easy_strerror");
    sym(api.easy_cleanup, "curl_easy_cleanup");
    sym(api.slist_append, "curl_slist_append");
    sym(api.slist_free_all, "curl_slist_free_all");
    return ok ? std::string() : std::string(kLibcurl) + " lacks a libcurl 7 function";
  }();
  if (!failure.empty()) {
    error = "metrics.remote_write: cannot load libcurl: " + failure;
    return nullptr;
  }
  return &api;
}

prometheus::MetricMetadata::MetricType metadata_type(prometheus::MetricType t) {
  using MT = prometheus::MetricType;
  using PT = prometheus::MetricMetadata;
  switch (t) {
    case MT::Counter: return PT::COUNTER;
    case MT::Gauge: return PT::GAUGE;
    case MT::Histogram: return PT::HISTOGRAM;
    case MT::Summary: return PT::SUMMARY;
    default: return PT::UNKNOWN;
  }
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

bool read_secret(const std::string& path, std::string& out, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in.good() && !in.eof()) {
    error = "metrics.remote_write: cannot read '" + path + "'";
    return false;
  }
  out = ss.str();
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.pop_back();
  if (out.empty()) {
    error = "metrics.remote_write: '" + path + "' is empty";
    return false;
  }
  return true;
}

size_t keep_body(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  const size_t len = size * n;
  if (body->size() < kErrorBodyMax) body->append(data, std::min(len, kErrorBodyMax - body->size()));
  return len;
}

}  // namespace

std::string encode_write_request(const std::vector<PromSeries>& series, const Families& metadata) {
  prometheus::WriteRequest req;
  req.mutable_timeseries()->Reserve(static_cast<int>(series.size()));
  for (const auto& s : series) {
    auto* ts = req.add_timeseries();
    for (const auto& [k, v] : s.labels) {
      auto* l = ts->add_labels();
      l->set_name(k);
      l->set_value(v);
    }
    auto* sample = ts->add_samples();
    sample->set_value(s.value);
    sample->set_timestamp(s.timestamp_ms);
  }
  for (const auto& f : metadata) {
    auto* m = req.add_metadata();
    m->set_type(metadata_type(f.type));
    m->set_metric_family_name(f.name);
    m->set_help(f.help);
  }
  std::string raw, out;
  req.SerializeToString(&raw);
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

bool decode_write_request(const std::string& body, std::vector<PromSeries>& series, std::string& error) {
  std::string raw;
  if (!snappy::Uncompress(body.data(), body.size(), &raw)) {
    error = "not snappy block-compressed";
    return false;
  }
  prometheus::WriteRequest req;
  if (!req.ParseFromString(raw)) {
    error = "not a WriteRequest";
    return false;
  }
  series.clear();
  for (const auto& ts : req.timeseries()) {
    PromLabels labels;
    for (const auto& l : ts.labels()) labels.emplace_back(l.name(), l.value());
    for (const auto& s : ts.samples()) series.push_back({labels, s.value(), s.timestamp()});
  }
  return true;
}

struct RemoteWriter::Impl {
  RemoteWriteConfig cfg;
  PromLabels labels;    // cfg.labels over the defaults job and instance
  std::string password, token;
  const CurlApi* api = nullptr;
  CURL* curl = nullptr;
  curl_slist* headers = nullptr;

  // Shared with the control core.
  mutable std::mutex mu;
  std::condition_variable cv;
  std::shared_ptr<const Families> latest;
  int64_t latest_ms = 0;
  uint64_t latest_seq = 0;
  bool final_offered = false;
  bool stop = false;
  std::array<std::atomic<uint64_t>, kPushOutcomeCount> pushes{}, samples{};
  std::array<std::atomic<uint64_t>, kRequestResultCount> requests{};
  std::atomic<uint64_t> duplicates{0}, pending{0};
  std::atomic<int64_t> last_ok_ms{0};

  // The pusher thread's own.
  struct Push {
    std::string body;
    uint64_t samples;
  };
  std::deque<Push> queue;
  uint64_t encoded_seq = 0;
  int64_t last_ts_ms = 0;
  bool final_taken = false;
  double backoff_s = kMinBackoffS;
  Clock::time_point retry_at{};
  bool failing = false;  // the last request failed: the next success is logged
  std::thread thread;

  void count(PushOutcome o, uint64_t n) {
    pushes[size_t(o)].fetch_add(1, std::memory_order_relaxed);
    samples[size_t(o)].fetch_add(n, std::memory_order_relaxed);
  }

  void enqueue(const Families& families, int64_t ts_ms) {
    ts_ms = std::max(ts_ms, last_ts_ms + 1);  // a series' samples must go forward in time
    last_ts_ms = ts_ms;
    uint64_t dup = 0;
    auto series = to_series(families, labels, ts_ms, dup);
    duplicates.fetch_add(dup, std::memory_order_relaxed);
    if (queue.size() >= cfg.queue) {
      count(PushOutcome::kDropped, queue.front().samples);
      queue.pop_front();
    }
    queue.push_back({encode_write_request(series, families), series.size()});
    pending.store(queue.size(), std::memory_order_relaxed);
  }

  void log(const std::string& what) {
    std::fprintf(stderr, "spanfeed: remote_write %s: %s\n", cfg.url.c_str(), what.c_str());
  }

  // Posts the oldest pending push once, within `budget_s`.
  void send_head(double budget_s) {
    const Push& p = queue.front();
    std::string body;
    api->easy_setopt(curl, CURLOPT_POSTFIELDS, p.body.data());
    api->easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(p.body.size()));
    api->easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    const long ms = std::max(1L, static_cast<long>(std::min(budget_s, cfg.timeout_s) * 1000));
    api->easy_setopt(curl, CURLOPT_TIMEOUT_MS, ms);
    api->easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, ms);
    const CURLcode rc = api->easy_perform(curl);
    long status = 0;
    if (rc == CURLE_OK) api->easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    RequestResult r;
    if (rc == CURLE_OPERATION_TIMEDOUT) r = RequestResult::kTimeout;
    else if (rc != CURLE_OK) r = RequestResult::kUnreachable;
    else if (status >= 200 && status < 300) r = RequestResult::kOk;
    else if (status >= 500 || status == 429) r = RequestResult::kServerError;
    else r = RequestResult::kRejected;  // 4xx, and 1xx/3xx: a URL to fix, not a store to wait for
    requests[size_t(r)].fetch_add(1, std::memory_order_relaxed);
    for (char& c : body) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    while (!body.empty() && body.back() == ' ') body.pop_back();
    const auto now = Clock::now();
    if (r == RequestResult::kOk || r == RequestResult::kRejected) {
      if (r == RequestResult::kOk) {
        last_ok_ms.store(unix_ms(), std::memory_order_relaxed);
        if (failing) log("delivering again");
        failing = false;
      } else {
        log("HTTP " + std::to_string(status) + (body.empty() ? "" : " (" + body + ")") +
            ": the store refused a push of " + std::to_string(p.samples) + " samples; not retried");
        failing = true;
      }
      count(r == RequestResult::kOk ? PushOutcome::kOk : PushOutcome::kRejected, p.samples);
      queue.pop_front();
      pending.store(queue.size(), std::memory_order_relaxed);
      backoff_s = kMinBackoffS;
      retry_at = now;
      return;
    }
    if (!failing) {
      log((r == RequestResult::kServerError ? "HTTP " + std::to_string(status) +
                                                  (body.empty() ? "" : " (" + body + ")")
                                            : std::string(api->easy_strerror(rc))) +
          "; retrying with backoff (the queue keeps " + std::to_string(cfg.queue) + " pushes)");
    }
    failing = true;
    retry_at = now + std::chrono::microseconds(static_cast<int64_t>(backoff_s * 1e6));
    backoff_s = std::min(backoff_s * 2, kMaxBackoffS);
  }

  void run() {
    pthread_setname_np(pthread_self(), "spanfeed-rwrite");
    const auto interval = std::chrono::microseconds(static_cast<int64_t>(cfg.interval_s * 1e6));
    auto next_tick = Clock::now() + interval;
    for (;;) {
      std::shared_ptr<const Families> take;
      int64_t take_ms = 0;
      bool stopping;
      {
        std::unique_lock<std::mutex> lk(mu);
        auto wake = next_tick;
        if (!queue.empty()) wake = std::min(wake, retry_at);
        cv.wait_until(lk, wake, [&] { return stop || (final_offered && !final_taken); });
        stopping = stop;
        const bool final_now = final_offered && !final_taken;
        if ((final_now || Clock::now() >= next_tick) && latest_seq != encoded_seq) {
          take = latest;
          take_ms = latest_ms;
          encoded_seq = latest_seq;
        }
        if (final_now) final_taken = true;
      }
      if (take) enqueue(*take, take_ms);
      const auto now = Clock::now();
      while (next_tick <= now) next_tick += interval;
      if (stopping) break;
      if (!queue.empty() && now >= retry_at) send_head(cfg.timeout_s);
    }
    // Shutdown: what is pending (the final snapshot last) gets timeout_s.
    const auto deadline = Clock::now() + std::chrono::microseconds(static_cast<int64_t>(cfg.timeout_s * 1e6));
    while (!queue.empty()) {
      auto now = Clock::now();
      if (now >= deadline) break;
      if (retry_at > now) std::this_thread::sleep_until(std::min(retry_at, deadline));
      now = Clock::now();
      if (now >= deadline) break;
      send_head(std::chrono::duration<double>(deadline - now).count());
    }
    if (!queue.empty()) {
      char what[128];
      std::snprintf(what, sizeof(what), "%zu push(es) still pending at shutdown after %g s (timeout_s): abandoned",
                    queue.size(), cfg.timeout_s);
      log(what);
    }
    for (const auto& p : queue) count(PushOutcome::kAbandoned, p.samples);
    queue.clear();
    pending.store(0, std::memory_order_relaxed);
  }
};

RemoteWriter::RemoteWriter() : impl_(std::make_unique<Impl>()) {}

std::unique_ptr<RemoteWriter> RemoteWriter::start(const RemoteWriteConfig& cfg, std::string& error) {
  std::unique_ptr<RemoteWriter> w(new RemoteWriter());
  Impl& m = *w->impl_;
  m.cfg = cfg;
  if (!cfg.basic_auth_password_file.empty() && !read_secret(cfg.basic_auth_password_file, m.password, error)) {
    return nullptr;
  }
  if (!cfg.bearer_token_file.empty() && !read_secret(cfg.bearer_token_file, m.token, error)) return nullptr;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  m.labels = {{"instance", host}, {"job", "spanfeed"}};
  for (const auto& [k, v] : cfg.labels) {
    auto it = std::find_if(m.labels.begin(), m.labels.end(), [&](const auto& l) { return l.first == k; });
    if (it != m.labels.end()) it->second = v;
    else m.labels.emplace_back(k, v);
  }
  m.api = curl_api(error);
  if (m.api == nullptr) return nullptr;
  m.api->global_init(CURL_GLOBAL_DEFAULT);  // before any thread: not thread-safe in every libcurl
  m.curl = m.api->easy_init();
  if (m.curl == nullptr) {
    error = "metrics.remote_write: libcurl could not start";
    return nullptr;
  }
  for (const char* h : {"Content-Encoding: snappy", "Content-Type: application/x-protobuf",
                        "X-Prometheus-Remote-Write-Version: 0.1.0", "Expect:"}) {
    m.headers = m.api->slist_append(m.headers, h);
  }
  if (!m.token.empty()) m.headers = m.api->slist_append(m.headers, ("Authorization: Bearer " + m.token).c_str());
  CURL* c = m.curl;
  m.api->easy_setopt(c, CURLOPT_URL, cfg.url.c_str());
  m.api->easy_setopt(c, CURLOPT_HTTPHEADER, m.headers);
  m.api->easy_setopt(c, CURLOPT_POST, 1L);
  m.api->easy_setopt(c, CURLOPT_USERAGENT, "spanfeed/" SPANFEED_VERSION);
  m.api->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // a thread: no SIGALRM for DNS timeouts
  m.api->easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
  m.api->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  m.api->easy_setopt(c, CURLOPT_PROXY, "");  // straight to the store: no http_proxy from the environment
  if (!cfg.ca_file.empty()) m.api->easy_setopt(c, CURLOPT_CAINFO, cfg.ca_file.c_str());
  if (!cfg.basic_auth_username.empty()) {
    m.api->easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    m.api->easy_setopt(c, CURLOPT_USERNAME, cfg.basic_auth_username.c_str());
    m.api->easy_setopt(c, CURLOPT_PASSWORD, m.password.c_str());
  }
  m.thread = std::thread([&m] { m.run(); });
  return w;
}

std::string RemoteWriter::finish() {
  if (impl_->thread.joinable()) {
    {
      std::lock_guard<std::mutex> g(impl_->mu);
      impl_->stop = true;
    }
    impl_->cv.notify_one();
    impl_->thread.join();
  }
  const RemoteWriteStats s = stats();
  std::string line = "remote_write " + impl_->cfg.url + ": pushes";
  for (size_t k = 0; k < kPushOutcomeCount; ++k) {
    line += std::string(" ") + to_string(static_cast<PushOutcome>(k)) + "=" + std::to_string(s.pushes[k]);
  }
  line += "; requests";
  for (size_t k = 0; k < kRequestResultCount; ++k) {
    line += std::string(" ") + to_string(static_cast<RequestResult>(k)) + "=" + std::to_string(s.requests[k]);
  }
  return line;
}

RemoteWriter::~RemoteWriter() {
  finish();
  if (impl_->api == nullptr) return;  // libcurl never loaded: nothing of it to free
  if (impl_->curl != nullptr) impl_->api->easy_cleanup(impl_->curl);
  impl_->api->slist_free_all(impl_->headers);
}

void RemoteWriter::offer(std::shared_ptr<const Families> families, bool final) {
  {
    std::lock_guard<std::mutex> g(impl_->mu);
    impl_->latest = std::move(families);
    impl_->latest_ms = unix_ms();
    ++impl_->latest_seq;
    if (final) impl_->final_offered = true;
  }
  if (final) impl_->cv.notify_one();
}

RemoteWriteStats RemoteWriter::stats() const {
  const Impl& m = *impl_;
  RemoteWriteStats s;
  for (size_t k = 0; k < kPushOutcomeCount; ++k) {
    s.pushes[k] = m.pushes[k].load(std::memory_order_relaxed);
    s.samples[k] = m.samples[k].load(std::memory_order_relaxed);
  }
  for (size_t k = 0; k < kRequestResultCount; ++k) s.requests[k] = m.requests[k].load(std::memory_order_relaxed);
  s.duplicate_series = m.duplicates.load(std::memory_order_relaxed);
  s.pending = m.pending.load(std::memory_order_relaxed);
  s.last_ok_unix_s = double(m.last_ok_ms.load(std::memory_order_relaxed)) / 1000;
  return s;
}

}  // namespace spanfeed
