// Endpoint writing for RED metrics: path templates, SQL fingerprints, the per-worker top-N bound.
// Worker thread; TopNames allocates only in its constructor.
#include "spanfeed/endpoint.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <span>

#include "decode/fnv.h"
#include "decode/text_memo.h"

namespace spanfeed {
namespace {

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

// --- TopNames ---

TopNames::TopNames(uint32_t n, uint32_t decay_every)
    : n_(n == 0 ? 1 : n), decay_every_(decay_every == 0 ? 1 : decay_every), entries_(n_),
      index_(std::bit_ceil(size_t{n_} * 2), -1), candidates_(1024, 0) {}

int32_t TopNames::find(uint64_t h) const {
  const size_t mask = index_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const int32_t s = index_[i];
    if (s < 0) return -1;
    if (entries_[static_cast<size_t>(s)].hash == h) return s;
  }
}

void TopNames::index_insert(uint64_t h, uint32_t slot) {
  const size_t mask = index_.size() - 1;
  size_t i = h & mask;
  while (index_[i] >= 0) i = (i + 1) & mask;
  index_[i] = static_cast<int32_t>(slot);
}

void TopNames::index_erase(uint64_t h) {
  // Linear probing: delete by shifting back the entries of the run that follow.
  const size_t mask = index_.size() - 1;
  size_t i = h & mask;
  while (entries_[static_cast<size_t>(index_[i])].hash != h) i = (i + 1) & mask;
  index_[i] = -1;
  for (size_t j = (i + 1) & mask; index_[j] >= 0; j = (j + 1) & mask) {
    const size_t home = entries_[static_cast<size_t>(index_[j])].hash & mask;
    // Move j to the hole i when its home is not in (i, j] (cyclically).
    if (((j - home) & mask) >= ((j - i) & mask)) {
      index_[i] = index_[j];
      index_[j] = -1;
      i = j;
    }
  }
}

void TopNames::decay() {
  for (uint32_t s = 0; s < used_; ++s) entries_[s].hits >>= 1;
  for (auto& c : candidates_) c >>= 1;
  refresh_min();
}

void TopNames::refresh_min() {
  min_slot_ = 0;
  for (uint32_t s = 1; s < used_; ++s) {
    if (entries_[s].hits < entries_[min_slot_].hits) min_slot_ = s;
  }
}

uint64_t TopNames::hash(std::string_view name) { return fnv1a64(name.data(), name.size()); }

bool TopNames::admit_hash(uint64_t h) {
  if (++lookups_ >= decay_every_) {
    lookups_ = 0;
    decay();
  }
  if (const int32_t s = find(h); s >= 0) {
    Entry& e = entries_[static_cast<size_t>(s)];
    if (e.hits < UINT32_MAX) ++e.hits;
    return true;
  }
  if (used_ < n_) {
    entries_[used_] = {h, 1};
    index_insert(h, used_);
    ++used_;
    if (used_ == n_) refresh_min();
    return true;
  }
  uint16_t& c = candidates_[(h >> 32) & (candidates_.size() - 1)];
  if (c < UINT16_MAX) ++c;
  // Replace the least-hit admitted name once this one was seen more often (and twice at least).
  Entry& low = entries_[min_slot_];
  if (c >= 2 && c > low.hits) {
    index_erase(low.hash);
    low = {h, c};
    index_insert(h, min_slot_);
    c = 0;
    refresh_min();
    return true;
  }
  return false;
}

// --- EndpointWriter ---

void EndpointWriter::add(std::string_view s) {
  const size_t n = std::min(s.size(), kMax - len_);
  char* out = buf_.data() + len_;
  // Names are short (a method, a command): inline moves up to 16 bytes, where a copy of n bytes was a
  // library call.
  copy_short(out, s.data(), n);
  // Printable ASCII only. Names are short and nearly always clean: eight bytes are checked at once
  // (any byte < 0x20, any byte > 0x7e), and only a word that has one is rewritten byte by byte.
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  auto fix = [](char* p, size_t k) {
    for (size_t i = 0; i < k; ++i) {
      const auto c = static_cast<unsigned char>(p[i]);
      p[i] = static_cast<unsigned char>(c - 0x20) < 0x5f ? static_cast<char>(c) : '?';
    }
  };
  auto bad8 = [](const char* p, uint64_t keep) {  // keep: the bytes of the word that count
    uint64_t w;
    std::memcpy(&w, p, 8);
    w = (w & keep) | (kOnes * 'a' & ~keep);
    return (((w - kOnes * 0x20) & ~w) | ((w + kOnes) | w)) & kHigh;  // some byte < 0x20 or > 0x7e
  };
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (bad8(out + i, ~0ull)) fix(out + i, 8);
  }
  if (i < n) {
    if (n >= 8) {
      if (bad8(out + n - 8, ~0ull)) fix(out + i, n - i);  // the last eight (some already checked)
    } else if (len_ + 8 <= kMax) {
      if (bad8(out, (1ull << (8 * n)) - 1)) fix(out, n);  // inside buf_: bytes past n masked out
    } else {
      fix(out, n);
    }
  }
  len_ += n;
}

void EndpointWriter::add_printable(std::string_view s) {
  const size_t n = std::min(s.size(), kMax - len_);
  std::memcpy(buf_.data() + len_, s.data(), n);
  len_ += n;
}

void EndpointWriter::add_top(std::string_view name) { add_top(name, TopNames::hash(name)); }

void EndpointWriter::add_top(std::string_view name, uint64_t hash) {
  if (top_ == nullptr || top_->admit_hash(hash)) {
    add(name);
  } else {
    add(kOtherEndpoint);
  }
}

bool is_id_segment(std::string_view seg) {
  if (seg.empty()) return false;
  bool all_digits = true, all_hex = true, has_digit = false, has_alpha = false;
  for (char c : seg) {
    all_digits &= is_digit(c);
    all_hex &= is_hex(c);
    has_digit |= is_digit(c);
    has_alpha |= !is_digit(c);
  }
  if (all_digits) return true;
  if (all_hex && (seg.size() >= 16 || (seg.size() >= 8 && has_digit && has_alpha))) return true;
  // UUID 8-4-4-4-12
  if (seg.size() == 36) {
    for (size_t i = 0; i < 36; ++i) {
      const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash ? seg[i] != '-' : !is_hex(seg[i])) return false;
    }
    return true;
  }
  return false;
}

void EndpointWriter::add_path_template(std::string_view path) {
  // Paths repeat: their template is remembered (when it was written whole).
  uint64_t memo_hash = 0;
  const size_t start = len_;
  if (path_memo_ != nullptr) {
    memo_hash = TextMemo::sample_hash(path);
    TextMemo::Hit hit;
    if (path_memo_->find(path, memo_hash, &hit)) {
      add_printable(hit.value);  // remembered as written: printable already
      return;
    }
  }
  write_path_template(path);
  if (path_memo_ != nullptr && len_ < kMax) {
    path_memo_->remember(path, memo_hash, std::string_view(buf_.data() + start, len_ - start), 0);
  }
}

void EndpointWriter::write_path_template(std::string_view path) {
  if (!path.empty() && path.front() != '/') {
    // absolute-form request target (scheme://authority/path): keep the path only
    if (const size_t scheme = path.find("://"); scheme != std::string_view::npos) {
      const size_t slash = path.find('/', scheme + 3);
      path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
    }
  }
  // One pass: segments end at '/', the path at '?' or '#' (the query is dropped).
  const char* p = path.data();
  const size_t n = path.size();
  size_t seg = 0;
  bool wrote = false;
  for (size_t i = 0; i <= n; ++i) {
    const char c = i < n ? p[i] : '?';
    if (c != '/' && c != '?' && c != '#') continue;
    if (i > seg) {
      const std::string_view s(p + seg, i - seg);
      add(is_id_segment(s) ? std::string_view("{id}") : s);
      wrote = true;
    }
    if (c != '/') break;
    add('/');
    wrote = true;
    seg = i + 1;
  }
  if (!wrote) add('/');
}

void EndpointWriter::add_sql_fingerprint(std::string_view normalized) {
  // Statements repeat: their fingerprint and its name hash are remembered.
  uint64_t memo_hash = 0;
  if (memo_ != nullptr) {
    memo_hash = TextMemo::sample_hash(normalized);  // the statement is compared whole on a hit
    TextMemo::Hit hit;
    if (memo_->find(normalized, memo_hash, &hit)) {
      // Remembered printable (as add() would write it), with the hash of the name as built.
      if (top_ == nullptr || top_->admit_hash(hit.extra)) {
        add_printable(hit.value);
      } else {
        add(kOtherEndpoint);
      }
      return;
    }
  }
  // Built in a local buffer (the name must be whole before the top-N lookup).
  // Byte classes: white space, '?', and the rest (copied in runs).
  enum : uint8_t { kPlain = 0, kSpace = 1, kMark = 2 };
  static constexpr auto kClass = [] {
    std::array<uint8_t, 256> t{};
    t[' '] = t['\t'] = t['\n'] = t['\r'] = kSpace;
    t['?'] = kMark;
    return t;
  }();
  auto cls = [](char c) { return kClass[static_cast<unsigned char>(c)]; };
  std::array<char, kMax> fp;  // written before read: no need to clear
  const char* s = normalized.data();
  const size_t len = normalized.size();
  size_t n = 0;
  bool space = false;
  size_t i = 0;
  while (i < len && n < fp.size()) {
    const uint8_t k = cls(s[i]);
    if (k == kSpace) {
      space = n != 0;
      ++i;
      continue;
    }
    // "?, ?, ?" after "(" (or "?,?"): one "?+"
    if (k == kMark && i + 1 < len) {
      size_t j = i + 1;
      bool list = false;
      while (true) {
        size_t q = j;
        while (q < len && s[q] == ' ') ++q;
        if (q < len && s[q] == ',') {
          ++q;
          while (q < len && s[q] == ' ') ++q;
          if (q < len && s[q] == '?') {
            list = true;
            j = q + 1;
            continue;
          }
        }
        break;
      }
      if (list) {
        if (space && n < fp.size()) fp[n++] = ' ';
        space = false;
        if (n < fp.size()) fp[n++] = '?';
        if (n < fp.size()) fp[n++] = '+';
        i = j;
        continue;
      }
    }
    if (space) {
      fp[n++] = ' ';
      space = false;
      if (n == fp.size()) break;
    }
    // This byte, then the run of plain bytes after it.
    fp[n++] = s[i++];
    while (i < len && n < fp.size() && cls(s[i]) == kPlain) fp[n++] = s[i++];
  }
  const std::string_view name(fp.data(), n);
  const uint64_t hash = TopNames::hash(name);
  if (memo_ != nullptr) {
    std::array<char, kMax> clean;  // what add() writes of the name: hits copy it as it is
    for (size_t k = 0; k < n; ++k) {
      const auto c = static_cast<unsigned char>(fp[k]);
      clean[k] = static_cast<unsigned char>(c - 0x20) < 0x5f ? static_cast<char>(c) : '?';
    }
    memo_->remember(normalized, memo_hash, std::string_view(clean.data(), n), hash);
  }
  add_top(name, hash);
}

// --- record helpers ---

std::string_view request_string(const Record& r, std::string_view key) {
  return r.request != nullptr ? r.request->fields.get_string(key) : std::string_view{};
}

std::string_view response_string(const Record& r, std::string_view key) {
  return r.response != nullptr ? r.response->fields.get_string(key) : std::string_view{};
}

bool sql_endpoint(const Record& r, EndpointWriter& out) {
  out.add(request_string(r, "command"));
  if (const std::string_view n = request_string(r, "normalized"); !n.empty()) {
    out.sep();
    out.add_sql_fingerprint(n);
  }
  return true;
}

bool first_array_string(const Record& r, std::string_view key, std::span<char> out, size_t& len, bool& more) {
  len = 0;
  more = false;
  if (r.request == nullptr) return false;
  const Field* f = r.request->fields.find(key);
  if (f == nullptr || f->kind != FieldKind::kRawJson) return false;
  const std::string_view a = r.request->fields.string_of(*f);
  size_t i = a.find('"');
  if (i == std::string_view::npos) return false;
  for (++i; i < a.size() && a[i] != '"'; ++i) {
    char c = a[i];
    if (c == '\\' && i + 1 < a.size()) {
      c = a[++i];
      if (c == 'u') {  // \u00XX: not a name byte we keep
        i += 4;
        c = '?';
      }
    }
    if (len < out.size()) out[len++] = c;
  }
  more = a.find(',', i) != std::string_view::npos;
  return len != 0;
}

}  // namespace spanfeed
