// RED aggregation on a worker lcore: bounded series table with LRU folding into "other".
// Allocates only in the constructors (Shared at start-up, Aggregator when the job is made).
#include "red/aggregator.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "decode/text_memo.h"
#include "spanfeed/protocol.h"
#include "spanfeed/word_hash.h"

namespace spanfeed::red {

// Distinct statements whose fingerprint is remembered per worker (~135 KiB).
constexpr size_t kSqlMemoEntries = 256;
// Distinct HTTP paths whose template is remembered per worker (~135 KiB).
constexpr size_t kPathMemoEntries = 256;

namespace {

// The series table's hash of a key's k.size() bytes (>= 32), seeded per run and worker: eight bytes
// per multiply (MurmurHash3's x64_128 over a whole key cost ~170 instructions a record).
uint64_t key_hash(const SeriesKey& k, uint32_t seed) {
  return word_hash::bytes(&k, k.size(), uint64_t{seed} << 32 | seed);
}

// The recent-series cache's index: the key's fixed part and its endpoint's first and last words
// (masked to its length), multiplied; the top byte. Not seeded: a miss costs only the table's path.
inline size_t recent_index(const SeriesKey& k) {
  using word_hash::load64;
  static_assert(sizeof(k.endpoint) >= 8 && offsetof(SeriesKey, endpoint) == 32);
  const size_t n = k.endpoint_len;
  uint64_t e = load64(k.endpoint);  // within the key's buffer; bytes past n masked out
  if (n < 8) e &= (uint64_t{1} << (8 * n)) - 1;
  const uint64_t last = n > 8 ? load64(k.endpoint + n - 8) : 0;
  const uint64_t x = (load64(&k) ^ load64(k.ip) ^ load64(k.ip + 8) ^ std::rotl(e, 17) ^ last ^ n) * word_hash::kMul;
  return static_cast<size_t>(x >> 56);
}

}  // namespace

// --- Shared ---

Shared::Shared(const RedConfig& cfg)
    : max_series(cfg.max_series == 0 ? 1 : cfg.max_series), top_n(cfg.top_n), retire_idle_s(cfg.retire_idle_s),
      bounds_us(cfg.bucket_bounds_us()), services(cfg.services) {
  for (size_t p = 0; p < kProtocolCount; ++p) {
    enabled[p] = cfg.enabled && p != 0;
    labels[p] = cfg.labels;
  }
  for (const auto& pp : cfg.protocols) {
    const ProtocolDescriptor* d = protocol_descriptor(pp.protocol);
    if (d == nullptr) continue;
    const auto p = static_cast<size_t>(d->id);
    enabled[p] = cfg.enabled && pp.enabled;
    labels[p] = pp.labels == RedConfig::kInheritLabels ? cfg.labels : pp.labels;
  }
  if (services.size() >= kNoService) services.resize(kNoService - 1);
}

uint16_t Shared::service_of(const IpAddr& ip, uint8_t ip_version, uint16_t port) const {
  const size_t n = ip_version == 6 ? 16 : 4;
  uint16_t any_port = kNoService;
  for (size_t i = 0; i < services.size(); ++i) {
    const RedService& s = services[i];
    if (s.ip_version != ip_version || std::memcmp(s.ip.bytes, ip.bytes, n) != 0) continue;
    if (s.port == port) return static_cast<uint16_t>(i);
    if (s.port == 0 && any_port == kNoService) any_port = static_cast<uint16_t>(i);
  }
  return any_port;
}

inline size_t Shared::bucket_of(uint64_t us) const {
  // Prometheus buckets are "less than or equal": the first bound >= us. A walk from the smallest bound:
  // most latencies fall in the first few of the ~20 (a binary search's branches are a coin toss each).
  const size_t n = bounds_us.size();
  const uint64_t* b = bounds_us.data();
  size_t i = 0;
  while (i < n && b[i] < us) ++i;
  return i;
}

// --- Delta ---

void Delta::reserve(size_t n, size_t buckets) {
  keys.reserve(n);
  counts.reserve(n);
  hist.reserve(n * buckets);
}

void Delta::clear() {
  keys.clear();
  counts.clear();
  hist.clear();
  folded_records = folded_series = skipped = 0;
  series = 0;
}

// --- Aggregator ---

Aggregator::Aggregator(const Shared& shared, uint32_t seed)
    : sh_(shared), seed_(seed), nb_(shared.buckets()), index_(std::bit_ceil(size_t{shared.max_series} * 2), 0),
      other_(kProtocolCount * (kRecordStatusCount + 1)), other_hist_(other_.size() * nb_, 0),
      other_dirty_(other_.size(), 0) {
  // Reserved, not constructed: a series' memory is touched when the table
  // first reaches it (insert), so a run with few series stays small and
  // starts fast (the whole table is ~3 MiB per worker at the defaults).
  // Never reallocated: the capacity is max_series.
  series_.reserve(shared.max_series);
  hist_.reserve(size_t{shared.max_series} * nb_);
  dirty_.reserve(shared.max_series);
  top_.resize(kProtocolCount);
  for (auto& t : top_) t = std::make_unique<TopNames>(shared.top_n == 0 ? 1 : shared.top_n);
  for (size_t p = 0; p < kProtocolCount; ++p) {
    const ProtocolDescriptor* d = protocol_descriptor(static_cast<Protocol>(p));
    endpoint_[p] = d != nullptr ? d->endpoint : nullptr;
  }
  sql_memo_ = std::make_unique<TextMemo>(kSqlMemoEntries);
  path_memo_ = std::make_unique<TextMemo>(kPathMemoEntries);
}

Aggregator::~Aggregator() = default;

size_t Aggregator::capacity_for_harvest() const { return sh_.max_series + other_.size(); }

// find, the LRU moves, count and bucket_of are inline: add() calls them for every record, and their
// calls cost ~3 M instructions on a 93,000-record capture. Nothing outside this file calls them.
inline uint32_t Aggregator::find(const SeriesKey& k, uint64_t h) const {
  const size_t mask = index_.size() - 1;
  const size_t n = k.size();
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const uint32_t v = index_[i];
    if (v == 0) return kNil;
    const Series& s = series_[v - 1];
    if (s.hash == h && s.key.endpoint_len == k.endpoint_len && std::memcmp(&s.key, &k, n) == 0) return v - 1;
  }
}

void Aggregator::index_erase(uint64_t h, uint32_t slot) {
  const size_t mask = index_.size() - 1;
  size_t i = h & mask;
  while (index_[i] != slot + 1) i = (i + 1) & mask;
  index_[i] = 0;
  // Linear probing: close the hole by moving back the entries that probed past it.
  for (size_t j = (i + 1) & mask; index_[j] != 0; j = (j + 1) & mask) {
    const size_t home = series_[index_[j] - 1].hash & mask;
    if (((j - home) & mask) >= ((j - i) & mask)) {
      index_[i] = index_[j];
      index_[j] = 0;
      i = j;
    }
  }
}

inline void Aggregator::lru_unlink(uint32_t s) {
  Series& x = series_[s];
  if (x.prev != kNil) series_[x.prev].next = x.next; else head_ = x.next;
  if (x.next != kNil) series_[x.next].prev = x.prev; else tail_ = x.prev;
}

inline void Aggregator::lru_push_front(uint32_t s) {
  Series& x = series_[s];
  x.prev = kNil;
  x.next = head_;
  if (head_ != kNil) series_[head_].prev = s;
  head_ = s;
  if (tail_ == kNil) tail_ = s;
}

void Aggregator::fold(uint32_t s) {
  Series& x = series_[s];
  const size_t o = other_index(x.key.protocol, x.key.status);
  other_[o].add(x.c);
  uint64_t* from = &hist_[size_t{s} * nb_];
  uint64_t* to = &other_hist_[o * nb_];
  for (size_t b = 0; b < nb_; ++b) {
    to[b] += from[b];
    from[b] = 0;
  }
  if (x.c.requests != 0) other_dirty_[o] = 1;
  folded_records_ += x.c.requests;
  folded_records_total_ += x.c.requests;
  ++folded_series_;
  x.c = Counts{};
}

uint32_t Aggregator::insert(const SeriesKey& k, uint64_t h) {
  uint32_t s;
  if (used_ < sh_.max_series) {
    s = used_++;
    series_.emplace_back();
    hist_.resize(hist_.size() + nb_, 0);
  } else {
    s = tail_;  // the least recently seen
    fold(s);
    index_erase(series_[s].hash, s);
    lru_unlink(s);
  }
  Series& x = series_[s];
  x.hash = h;
  std::memcpy(&x.key, &k, k.size());
  const size_t mask = index_.size() - 1;
  size_t i = h & mask;
  while (index_[i] != 0) i = (i + 1) & mask;
  index_[i] = s + 1;
  lru_push_front(s);
  return s;
}

inline void Aggregator::count(Counts& c, uint64_t* hist, const Record& r) {
  ++c.requests;
  if (r.status == RecordStatus::kError || r.status == RecordStatus::kTimeout) ++c.errors;
  if (r.request != nullptr) c.request_bytes += r.request->bytes;
  if (r.response != nullptr) c.response_bytes += r.response->bytes;
  if (r.has_latency) {
    ++c.duration_count;
    c.duration_sum_us += r.latency_us;
    ++hist[sh_.bucket_of(r.latency_us)];
  }
}

void Aggregator::add(const Record& r) {
  const auto p = static_cast<size_t>(r.protocol);
  if (p >= kProtocolCount || !sh_.enabled[p]) {
    ++skipped_;
    return;
  }
  const uint8_t labels = sh_.labels[p];
  SeriesKey& k = k_;
  // The endpoint first: the protocol may decline the record (not a request).
  w_.reset(top_[p].get());
  w_.set_memo(sql_memo_.get());
  w_.set_path_memo(path_memo_.get());
  if (r.request == nullptr) {
    w_.add("unknown");
  } else if (const EndpointFn endpoint = endpoint_[p]; endpoint != nullptr) {
    if (!endpoint(r, w_)) {
      ++skipped_;
      return;
    }
    if (w_.size() == 0) w_.add("-");
  } else {
    w_.add("-");
  }
  k.protocol = static_cast<uint8_t>(p);
  k.status = (labels & red_label::kStatus) ? static_cast<uint8_t>(r.status) : kNoStatus;
  k.labels = labels;
  k.other = 0;
  k.ip_version = 0;
  k.port = 0;
  k.service = kNoService;
  std::memset(k.ip, 0, sizeof(k.ip));
  if (labels & red_label::kServer) {
    k.service = sh_.services.empty() ? kNoService : sh_.service_of(r.server.ip, r.ip_version, r.server.port);
    if (k.service == kNoService) {
      k.ip_version = r.ip_version;
      std::memcpy(k.ip, r.server.ip.bytes, r.ip_version == 6 ? 16 : 4);
      k.port = r.server.port;
    }
  }
  if (labels & red_label::kServerPort) k.port = r.server.port;
  if (labels & red_label::kEndpoint) {
    const std::string_view e = w_.view();
    std::memcpy(k.endpoint, e.data(), e.size());
    k.endpoint_len = static_cast<uint8_t>(e.size());
  } else {
    k.endpoint_len = 0;
  }
  uint32_t& recent = recent_[recent_index(k)];
  static_assert(kRecent == 256, "the index is a byte");
  uint32_t s = recent - 1;  // kNil when empty
  if (s >= used_ || series_[s].key.endpoint_len != k.endpoint_len || std::memcmp(&series_[s].key, &k, k.size()) != 0) {
    const uint64_t h = key_hash(k, seed_);
    s = find(k, h);
    if (s == kNil) s = insert(k, h);  // at the LRU's head already
    recent = s + 1;
  }
  if (s != head_) {
    lru_unlink(s);
    lru_push_front(s);
  }
  Series& x = series_[s];
  count(x.c, &hist_[size_t{s} * nb_], r);
  if (!x.dirty) {
    x.dirty = true;
    dirty_.push_back(s);
  }
}

void Aggregator::harvest(Delta& out) {
  auto emit = [&](const SeriesKey& key, Counts& c, uint64_t* hist) {
    out.keys.push_back(key);
    out.counts.push_back(c);
    out.hist.insert(out.hist.end(), hist, hist + nb_);
    c = Counts{};
    std::fill(hist, hist + nb_, 0);
  };
  for (uint32_t s : dirty_) {
    Series& x = series_[s];
    x.dirty = false;
    if (x.c.requests != 0) emit(x.key, x.c, &hist_[size_t{s} * nb_]);
  }
  dirty_.clear();
  for (size_t o = 0; o < other_.size(); ++o) {
    if (!other_dirty_[o]) continue;
    other_dirty_[o] = 0;
    SeriesKey key;
    key.protocol = static_cast<uint8_t>(o / (kRecordStatusCount + 1));
    const size_t st = o % (kRecordStatusCount + 1);
    key.status = st == kRecordStatusCount ? kNoStatus : static_cast<uint8_t>(st);
    key.labels = sh_.labels[key.protocol];
    key.other = 1;
    emit(key, other_[o], &other_hist_[o * nb_]);
  }
  out.folded_records += folded_records_;
  out.folded_series += folded_series_;
  out.skipped += skipped_;
  out.series = used_;
  folded_records_ = folded_series_ = skipped_ = 0;
}

}  // namespace spanfeed::red
