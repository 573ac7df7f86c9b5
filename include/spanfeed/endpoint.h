// What a protocol contributes to RED metrics: the endpoint of a finished record (descriptor field
// `endpoint`), written into a fixed buffer, plus the per-worker top-N bound for open-ended names
// (SQL fingerprints, MQTT topics). Worker thread; no allocation after construction.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "spanfeed/record.h"

namespace spanfeed {

class TextMemo;  // decode/text_memo.h

// Endpoint label value of the records that fall outside a bound (top N, the series cap).
inline constexpr std::string_view kOtherEndpoint = "other";

// The N most frequent names of one protocol on one worker (approximately: hits decay by half
// every `decay_every` lookups; a name replaces the least-hit admitted one once its candidate
// count passes it). The first N distinct names are admitted at once; the rest wait. Fixed memory.
class TopNames {
 public:
  explicit TopNames(uint32_t n, uint32_t decay_every = 4096);
  // True when `name` is (now) one of the admitted names.
  bool admit(std::string_view name) { return admit_hash(hash(name)); }
  // The same with the name's hash(name) known.
  bool admit_hash(uint64_t h);
  static uint64_t hash(std::string_view name);
  uint32_t admitted() const { return used_; }

 private:
  struct Entry {
    uint64_t hash = 0;
    uint32_t hits = 0;
  };
  int32_t find(uint64_t h) const;
  void index_insert(uint64_t h, uint32_t slot);
  void index_erase(uint64_t h);
  void decay();
  void refresh_min();

  uint32_t n_;
  uint32_t decay_every_;
  uint32_t used_ = 0;
  uint32_t lookups_ = 0;
  uint32_t min_slot_ = 0;
  std::vector<Entry> entries_;   // n_
  std::vector<int32_t> index_;   // power of two >= 2 n_: slot or -1 (linear probing)
  std::vector<uint16_t> candidates_;  // counts of names not admitted, by hash
};

// Where an endpoint function writes: at most kMax bytes, printable ASCII (other bytes become
// '?': label values stay valid UTF-8 whatever the traffic sends).
class EndpointWriter {
 public:
  static constexpr size_t kMax = 120;

  // `top`: the worker's TopNames of the record's protocol (nullptr: no bound, names kept).
  explicit EndpointWriter(TopNames* top = nullptr) : top_(top) {}
  void clear() { len_ = 0; }
  void reset(TopNames* top) {
    len_ = 0;
    top_ = top;
  }
  void add(std::string_view s);
  void add(char c) {
    if (len_ < kMax) buf_[len_++] = (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  // A space, unless nothing was written yet.
  void sep() {
    if (len_ != 0) add(' ');
  }
  // `name` when it is among the protocol's top N on this worker, else "other".
  void add_top(std::string_view name);
  // Fingerprints of normalized statements remembered across records (the worker's; nullptr: none).
  void set_memo(TextMemo* memo) { memo_ = memo; }
  // Path templates remembered across records (the worker's; nullptr: none).
  void set_path_memo(TextMemo* memo) { path_memo_ = memo; }
  // HTTP path template: the query (from '?') dropped; a scheme://authority prefix dropped;
  // numeric, UUID and long hex segments (>= 16 hex digits, or >= 8 with a digit and a letter
  // only from a-f) become {id}.
  void add_path_template(std::string_view path);
  // A SQL fingerprint: the normalized statement with runs of white space as one space and
  // lists of placeholders "(?, ?, ?)" as "(?+)", through add_top.
  void add_sql_fingerprint(std::string_view normalized);
  std::string_view view() const { return {buf_.data(), len_}; }
  size_t size() const { return len_; }

 private:
  void add_top(std::string_view name, uint64_t hash);
  void add_printable(std::string_view s);  // add() for text known printable (remembered output)
  void write_path_template(std::string_view path);

  std::array<char, kMax> buf_{};
  size_t len_ = 0;
  TopNames* top_;
  TextMemo* memo_ = nullptr;
  TextMemo* path_memo_ = nullptr;
};

// A protocol's endpoint of a finished record. False: the record is not a request for RED
// (TLS close records); it is not counted. Records without a request get kOtherEndpoint's
// sibling "unknown" from the aggregator without calling this.
using EndpointFn = bool (*)(const Record& r, EndpointWriter& out);

// Helpers for endpoint functions: string fields of the request / response (empty when absent).
std::string_view request_string(const Record& r, std::string_view key);
std::string_view response_string(const Record& r, std::string_view key);
// The first string of a raw-JSON array field (Kafka topics) unescaped into `out` (cut at its
// size); false when absent or empty. `more` says whether the array has other elements.
bool first_array_string(const Record& r, std::string_view key, std::span<char> out, size_t& len, bool& more);

// SQL protocols (MySQL, PostgreSQL): the request's `command`, then the fingerprint of its
// `normalized` statement ("COM_QUERY select * from t where id = ?"); beyond the top N: "other".
bool sql_endpoint(const Record& r, EndpointWriter& out);

// A segment that add_path_template replaces with {id}.
bool is_id_segment(std::string_view seg);

}  // namespace spanfeed
