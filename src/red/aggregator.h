// RED metrics on a worker: every record into a bounded table of series (protocol, server,
// endpoint, status) with request / error / byte counts and a duration histogram; the
// least-recently-seen series folds into "other" when the table is full. Runs on one worker
// lcore (no locks, nothing shared with other workers); allocates only in its constructor.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spanfeed/config.h"
#include "spanfeed/endpoint.h"
#include "spanfeed/record.h"

namespace spanfeed::red {

inline constexpr uint16_t kNoService = 0xffff;
inline constexpr uint8_t kNoStatus = 0xff;

// A series' identity, compared and hashed as bytes (no padding; unused label fields are 0).
struct SeriesKey {
  uint8_t protocol = 0;
  uint8_t status = kNoStatus;  // RecordStatus, or kNoStatus without the status label
  uint8_t labels = 0;          // red_label bits
  uint8_t ip_version = 0;      // 0: no address in the key
  uint16_t port = 0;
  uint16_t service = kNoService;
  uint8_t other = 0;           // 1: the "other" series of (protocol, status)
  uint8_t endpoint_len = 0;
  uint8_t pad[6] = {};
  uint8_t ip[16] = {};
  char endpoint[EndpointWriter::kMax] = {};

  size_t size() const { return offsetof(SeriesKey, endpoint) + endpoint_len; }
  std::string_view endpoint_view() const { return {endpoint, endpoint_len}; }
};
static_assert(offsetof(SeriesKey, ip) == 16 && offsetof(SeriesKey, endpoint) == 32);

struct Counts {
  uint64_t requests = 0;
  uint64_t errors = 0;          // status error or timeout
  uint64_t request_bytes = 0;
  uint64_t response_bytes = 0;
  uint64_t duration_count = 0;  // records with a latency
  uint64_t duration_sum_us = 0;
  void add(const Counts& o) {
    requests += o.requests;
    errors += o.errors;
    request_bytes += o.request_bytes;
    response_bytes += o.response_bytes;
    duration_count += o.duration_count;
    duration_sum_us += o.duration_sum_us;
  }
};

// The settings every worker reads (built once from RedConfig at start-up; then read-only).
struct Shared {
  explicit Shared(const RedConfig& cfg);
  uint32_t max_series;
  uint32_t top_n;
  double retire_idle_s;
  std::vector<uint64_t> bounds_us;  // bucket upper bounds; one more bucket (+Inf) follows
  size_t buckets() const { return bounds_us.size() + 1; }
  std::array<bool, kProtocolCount> enabled{};
  std::array<uint8_t, kProtocolCount> labels{};
  std::vector<RedService> services;
  // Service of a server address: exact (ip, port) first, then (ip, any port). kNoService if none.
  uint16_t service_of(const IpAddr& ip, uint8_t ip_version, uint16_t port) const;
  size_t bucket_of(uint64_t us) const;
};

// What a worker hands over: the series touched since the last harvest, their counts since then.
struct Delta {
  std::vector<SeriesKey> keys;
  std::vector<Counts> counts;
  std::vector<uint64_t> hist;  // buckets() per entry, not cumulative
  uint64_t folded_records = 0;  // since the last harvest: records whose series was folded into other
  uint64_t folded_series = 0;
  uint64_t skipped = 0;         // records not counted (a disabled protocol, TLS close records)
  uint32_t series = 0;          // series in the worker's table at the harvest
  void reserve(size_t n, size_t buckets);
  void clear();
  size_t size() const { return keys.size(); }
};

class Aggregator {
 public:
  Aggregator(const Shared& shared, uint32_t seed);
  ~Aggregator();  // sql_memo_'s type is complete in aggregator.cc
  // One finished record (worker, hot path: no allocation).
  void add(const Record& r);
  // Appends every series touched since the last harvest to `out` and zeroes its counts
  // (worker; or the control core once the worker has ended). No allocation when `out` has
  // room for max_series + the "other" series (Delta::reserve).
  void harvest(Delta& out);
  size_t series() const { return used_; }
  size_t capacity_for_harvest() const;
  uint64_t folded_records_total() const { return folded_records_total_; }

 private:
  struct Series {
    uint64_t hash = 0;
    uint32_t prev = 0, next = 0;  // LRU list (kNil-terminated), most recent at head_
    bool dirty = false;           // in dirty_ (touched since the last harvest)
    Counts c;
    SeriesKey key;
  };
  static constexpr uint32_t kNil = 0xffffffffu;

  uint32_t find(const SeriesKey& k, uint64_t h) const;
  uint32_t insert(const SeriesKey& k, uint64_t h);
  void index_erase(uint64_t h, uint32_t slot);
  void lru_unlink(uint32_t s);
  void lru_push_front(uint32_t s);
  void fold(uint32_t s);  // series s (full table, least recent) into its "other" series
  void count(Counts& c, uint64_t* hist, const Record& r);
  size_t other_index(uint8_t protocol, uint8_t status) const {
    return size_t{protocol} * (kRecordStatusCount + 1) + (status == kNoStatus ? kRecordStatusCount : status);
  }

  const Shared& sh_;
  const uint32_t seed_;
  const size_t nb_;
  std::vector<Series> series_;     // used_ of max_series (capacity)
  std::vector<uint64_t> hist_;     // used_ x buckets (capacity: max_series x buckets)
  std::vector<uint32_t> index_;    // slot + 1, 0: empty; power of two >= 2 x max_series
  std::vector<uint32_t> dirty_;    // slots touched since the last harvest
  uint32_t used_ = 0;
  uint32_t head_ = kNil, tail_ = kNil;
  // "other" per (protocol, status or none): counts, histogram, touched flag
  std::vector<Counts> other_;
  std::vector<uint64_t> other_hist_;
  std::vector<uint8_t> other_dirty_;
  std::vector<std::unique_ptr<TopNames>> top_;  // per protocol
  std::array<EndpointFn, kProtocolCount> endpoint_{};  // per protocol, from its descriptor (null: none)
  // Recent series by a cheap mix of their key (slot + 1; 0: none): most records repeat a series
  // seen a few records before, and a hit costs one compare of the key instead of its seeded hash
  // and the table's probe. A hit is taken only when the slot's key equals the record's, so a stale
  // entry (its slot since given to another series) only misses.
  static constexpr size_t kRecent = 256;
  std::array<uint32_t, kRecent> recent_{};
  SeriesKey k_;                    // scratch key of the record being added
  EndpointWriter w_;
  std::unique_ptr<TextMemo> sql_memo_;  // normalized statement -> SQL fingerprint (w_'s memo)
  std::unique_ptr<TextMemo> path_memo_;  // HTTP path -> path template (w_'s path memo)
  uint64_t folded_records_ = 0, folded_series_ = 0, skipped_ = 0;  // since the last harvest
  uint64_t folded_records_total_ = 0;
};

}  // namespace spanfeed::red
