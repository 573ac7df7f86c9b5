// FieldList and the hand-written JSON-lines encoder for Record records.
// Runs on worker lcores; FieldList never allocates, the encoder appends to a caller-owned reused string.
#include "spanfeed/record.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstring>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace spanfeed {

std::string_view to_string(Protocol p) {
  // The registry's folder names are the protocol names (records, config, metric labels, topics).
  static constexpr std::string_view kNames[] = {
      "unknown",
#define SPANFEED_PROTOCOL(id, folder) #folder,
#include "spanfeed/protocols.def"
#undef SPANFEED_PROTOCOL
  };
  static_assert(std::size(kNames) == kProtocolCount);
  const auto i = static_cast<size_t>(p);
  return i < kProtocolCount ? kNames[i] : "?";
}

bool protocol_from_string(std::string_view s, Protocol* out) {
  for (size_t i = 0; i < kProtocolCount; ++i) {
    auto p = static_cast<Protocol>(i);
    if (to_string(p) == s) {
      *out = p;
      return true;
    }
  }
  return false;
}

std::string_view to_string(RecordStatus s) {
  switch (s) {
    case RecordStatus::kOk: return "ok";
    case RecordStatus::kError: return "error";
    case RecordStatus::kTimeout: return "timeout";
    case RecordStatus::kUnmatched: return "unmatched";
    case RecordStatus::kCount: break;
  }
  return "?";
}

// ---- FieldList ----

void FieldList::add_num(const char* key, uint8_t key_len, FieldKind kind, uint64_t v) {
  if (count_ >= kMaxFields) {
    truncated_ = true;
    return;
  }
  Field& f = fields_[count_++];
  f.key = key;
  f.key_len = key_len;
  f.kind = kind;
  f.off = f.len = 0;
  f.num = v;
}

bool FieldList::replace_string(size_t i, std::string_view value) {
  if (i >= count_ || fields_[i].kind != FieldKind::kString) return false;
  Field& f = fields_[i];
  if (value.size() <= f.len) {
    std::memcpy(arena_.data() + f.off, value.data(), value.size());
  } else {
    if (value.size() > arena_left()) return false;
    std::memcpy(arena_.data() + used_, value.data(), value.size());
    f.off = used_;
    used_ = static_cast<uint16_t>(used_ + value.size());
  }
  strings_ = static_cast<uint16_t>(strings_ + !value.empty() - (f.len != 0));
  f.len = static_cast<uint16_t>(value.size());
  return true;
}

void FieldList::mask(size_t i, size_t from, size_t to, char c) {
  if (i >= count_ || fields_[i].kind != FieldKind::kString) return;
  Field& f = fields_[i];
  if (to > f.len) to = f.len;
  if (from < to) std::memset(arena_.data() + f.off + from, c, to - from);
}

void FieldList::add_string(const char* key, uint8_t key_len, std::string_view value, size_t max_len) {
  const size_t count = count_;
  if (count >= kMaxFields) {
    truncated_ = true;
    return;
  }
  // used_ and count_ in locals: the value's byte stores may alias them, so members would be reloaded.
  const size_t used = used_;
  size_t n = value.size();
  if (n > max_len || n > kArenaBytes - used) [[unlikely]] {
    if (n > max_len) n = max_len;
    if (n > kArenaBytes - used) {
      n = kArenaBytes - used;
      truncated_ = true;
    }
    // Do not cut inside a UTF-8 sequence: back up over continuation bytes.
    if (n < value.size()) {
      while (n > 0 && (static_cast<uint8_t>(value[n]) & 0xC0) == 0x80) --n;
    }
  }
  Field& f = fields_[count];
  f.key = key;
  f.key_len = key_len;
  f.kind = FieldKind::kString;
  f.off = static_cast<uint16_t>(used);
  f.len = static_cast<uint16_t>(n);
  f.num = 0;
  count_ = static_cast<uint16_t>(count + 1);
  strings_ = static_cast<uint16_t>(strings_ + (n != 0));
  char* const dst = arena_.data() + used;
  const char* const src = value.data();
  if (n <= 16) {
    copy_short(dst, src, n);  // most values are short: no call
  } else {
    // 16 bytes at a time, the last 16 overlapping: no call, never a read past the value.
#ifdef __SSE2__
    for (size_t i = 0; i + 16 < n; i += 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + n - 16),
                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + n - 16)));
#else
    std::memcpy(dst, src, n);
#endif
  }
  used_ = static_cast<uint16_t>(used + n);
}

bool FieldList::raw_append(std::string_view s) {
  if (s.size() > arena_left()) {
    truncated_ = true;
    return false;
  }
  std::memcpy(arena_.data() + used_, s.data(), s.size());
  used_ = static_cast<uint16_t>(used_ + s.size());
  return true;
}

bool FieldList::raw_commit(const char* key, uint8_t key_len, size_t begin, FieldKind kind) {
  if (count_ >= kMaxFields) {
    truncated_ = true;
    used_ = static_cast<uint16_t>(begin);
    return false;
  }
  Field& f = fields_[count_++];
  f.key = key;
  f.key_len = key_len;
  f.kind = kind;
  f.off = static_cast<uint16_t>(begin);
  f.len = static_cast<uint16_t>(used_ - begin);
  f.num = 0;
  if (kind == FieldKind::kString && f.len != 0) ++strings_;
  return true;
}

void FieldList::set_uint(const char* key, uint8_t key_len, uint64_t v) {
  for (size_t i = 0; i < count_; ++i) {
    Field& f = fields_[i];
    if (f.key_len == key_len && std::memcmp(f.key, key, key_len) == 0) {
      if (f.kind == FieldKind::kString && f.len != 0) --strings_;
      f.kind = FieldKind::kUint;
      f.num = v;
      return;
    }
  }
  add_num(key, key_len, FieldKind::kUint, v);
}

namespace {

// FieldList::find when no field has the key's pointer: lengths first, then the first byte (most keys
// of one length differ there), then the rest. Out of line: find and get_string then save no registers.
[[gnu::noinline]] const Field* find_by_text(const FieldList& fl, std::string_view key) {
  const size_t n = key.size();
  if (n == 0 || n > UINT8_MAX) return nullptr;  // keys are not empty
  const char c0 = key[0];
  const size_t count = fl.size();
  for (size_t i = 0; i < count; ++i) {
    const Field& f = fl[i];
    if (f.key_len == n && f.key[0] == c0 && std::memcmp(f.key + 1, key.data() + 1, n - 1) == 0) return &f;
  }
  return nullptr;
}

// Keys are literals and the linker merges equal ones: the same pointer (and length) nearly always
// answers, one compare per field. Inline in find and get_string (no call, no register saves).
inline const Field* find_by_pointer(const FieldList& fl, std::string_view key) {
  const size_t count = fl.size();
  for (size_t i = 0; i < count; ++i) {
    if (fl[i].key == key.data() && fl[i].key_len == key.size()) return &fl[i];
  }
  return nullptr;
}

}  // namespace

const Field* FieldList::find(std::string_view key) const {
  if (const Field* f = find_by_pointer(*this, key)) return f;
  return find_by_text(*this, key);  // a key not from a literal, or absent
}

std::string_view FieldList::get_string(std::string_view key) const {
  const Field* f = find_by_pointer(*this, key);
  if (f == nullptr) f = find_by_text(*this, key);
  if (f == nullptr || f->kind != FieldKind::kString) return {};
  return string_of(*f);
}

// ---- JSON encoding ----

namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr uint64_t kNsPerSecond = 1'000'000'000ull;

// Writes straight into a string's own storage: the string's size() is the room, the bytes between
// the cursor and size() are scratch that the caller cuts off (write_json_line returns the end). No
// intermediate buffer and no copy per record; a bounds check per piece (per field in put_fields),
// growing is out of line.
class JsonOut {
 public:
  JsonOut(std::string& s, size_t at) : s_(s), p_(s.data() + at), end_(s.data() + s.size()) {}
  JsonOut(const JsonOut&) = delete;
  JsonOut& operator=(const JsonOut&) = delete;

  size_t offset() const { return static_cast<size_t>(p_ - s_.data()); }
  // Room for k bytes at the returned pointer; advance() commits them.
  char* room(size_t k) {
    if (static_cast<size_t>(end_ - p_) < k) grow(k);
    return p_;
  }
  void advance(size_t k) { p_ += k; }
  // A stretch of writes keeps the cursor in a local (a member would be reloaded after every
  // char store, which may alias it) and hands it back with set().
  char* cursor() const { return p_; }
  char* end() const { return end_; }
  void set(char* p) { p_ = p; }
  void push_back(char c) {
    *room(1) = c;
    ++p_;
  }
  void append(const char* p, size_t k) {
    std::memcpy(room(k), p, k);
    p_ += k;
  }
  void append(std::string_view v) { append(v.data(), v.size()); }
  template <size_t N>
  void lit(const char (&p)[N]) {
    append(p, N - 1);
  }

 private:
  // Room in steps of kGrowStep: resize() zeroes what it adds, and below glibc's rep-stosb threshold
  // (2 KiB) it does so with vector stores, ~1/32 of an instruction per byte.
  static constexpr size_t kGrowStep = 1536;
  [[gnu::noinline]] void grow(size_t k) {
    const size_t at = offset();
    s_.resize(at + k + kGrowStep);
    p_ = s_.data() + at;
    end_ = s_.data() + s_.size();
  }
  std::string& s_;
  char* p_;
  char* end_;
};

// The same calls on a plain string (the public append_* functions).
struct StringOut {
  std::string& s;
  void push_back(char c) { s.push_back(c); }
  void append(const char* p, size_t k) { s.append(p, k); }
  void append(std::string_view v) { s.append(v); }
  template <size_t N>
  void lit(const char (&p)[N]) {
    s.append(p, N - 1);
  }
};

// "00" .. "99": two digits per division.
constexpr auto kDigitPairs = [] {
  std::array<char, 200> t{};
  for (int i = 0; i < 100; ++i) {
    t[2 * i] = static_cast<char>('0' + i / 10);
    t[2 * i + 1] = static_cast<char>('0' + i % 10);
  }
  return t;
}();

// Decimal digits of v (1..20).
inline size_t decimal_len(uint64_t v) {
  size_t n = 1;
  for (;;) {
    if (v < 10) return n;
    if (v < 100) return n + 1;
    if (v < 1000) return n + 2;
    if (v < 10000) return n + 3;
    v /= 10000;
    n += 4;
  }
}

// v in decimal at p (decimal_len(v) bytes), written from its last digit back.
inline void write_decimal(uint64_t v, char* p, size_t len) {
  char* e = p + len;
  while (v >= 100) {
    const size_t r = static_cast<size_t>(v % 100);
    v /= 100;
    e -= 2;
    e[0] = kDigitPairs[2 * r];
    e[1] = kDigitPairs[2 * r + 1];
  }
  if (v >= 10) {
    e[-2] = kDigitPairs[2 * v];
    e[-1] = kDigitPairs[2 * v + 1];
  } else {
    e[-1] = static_cast<char>('0' + v);
  }
}

inline void put_decimal(uint64_t v, JsonOut& out) {
  char* p = out.room(20);  // 20 digits at most
  const size_t len = decimal_len(v);
  write_decimal(v, p, len);
  out.advance(len);
}
// Length of the valid UTF-8 sequence starting at s[i] (>= 0x80), 0 if invalid.
size_t utf8_seq_len(const unsigned char* s, size_t i, size_t n) {
  unsigned char c = s[i];
  size_t len;
  uint32_t min;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
    min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
    min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > n) return 0;
  for (size_t k = 1; k < len; ++k) {
    unsigned char cc = s[i + k];
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

// Eight bytes at once: does any need a look (>= 0x80, and when quoted < 0x20, '"', '\\')?
inline bool any_special8(const unsigned char* p, bool quoted) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  uint64_t w;
  std::memcpy(&w, p, 8);
  if (!quoted) return (w & kHigh) != 0;
  const uint64_t q = w ^ (kOnes * '"');
  const uint64_t b = w ^ (kOnes * '\\');
  const uint64_t t = w | ((w - kOnes * 0x20) & ~w) | ((q - kOnes) & ~q) | ((b - kOnes) & ~b);
  return (t & kHigh) != 0;
}

#ifdef __SSE2__
// Sixteen bytes at once: bit k set when byte k needs a look (as any_special8).
inline unsigned special16(const unsigned char* p, bool quoted) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if (!quoted) return static_cast<unsigned>(_mm_movemask_epi8(v));
  // Signed: bytes >= 0x80 are negative, so "< 0x20" takes them too.
  const __m128i t = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                 _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
  return static_cast<unsigned>(_mm_movemask_epi8(t));
}
#endif

template <typename Out>
void json_string(std::string_view sv, Out& out, JsonEscapes style) {
  const auto* s = reinterpret_cast<const unsigned char*>(sv.data());
  const size_t n = sv.size();
  const bool quoted = style != JsonEscapes::kUnquoted;
  if (quoted) out.push_back('"');
  size_t run = 0;  // start of the pending run of bytes that need no escaping
  size_t i = 0;
  while (i < n) {
#ifdef __SSE2__
    while (i + 16 <= n) {
      const unsigned m = special16(s + i, quoted);
      if (m != 0) {
        i += static_cast<size_t>(std::countr_zero(m));  // at the byte that needs a look
        break;
      }
      i += 16;
    }
    if (i < n && n - i < 16) {
      // The last bytes in one more 16-byte look: the string's last 16 bytes when it has them,
      // else a copy padded with a byte that needs no look.
      const size_t left = n - i;
      unsigned m;
      if (n >= 16) {
        m = special16(s + n - 16, quoted) >> (16 - left);
      } else {
        unsigned char pad[16];
        std::memset(pad, 'a', sizeof(pad));
        std::memcpy(pad, s + i, left);
        m = special16(pad, quoted) & ((1u << left) - 1);
      }
      if (m == 0) break;
      i += static_cast<size_t>(std::countr_zero(m));
    }
#endif
    while (i + 8 <= n && !any_special8(s + i, quoted)) i += 8;
    if (i >= n) break;
    unsigned char c = s[i];
    if (c < 0x80 && (!quoted || (c >= 0x20 && c != '"' && c != '\\'))) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      size_t len = utf8_seq_len(s, i, n);
      if (len != 0) {
        i += len;
        continue;
      }
    }
    out.append(sv.data() + run, i - run);
    switch (c) {
      case '"': out.lit("\\\""); break;
      case '\\': out.lit("\\\\"); break;
      case '\n': out.lit("\\n"); break;
      case '\r': out.lit("\\r"); break;
      case '\t': out.lit("\\t"); break;
      case '\b':
      case '\f':
        if (style == JsonEscapes::kShortEscapes) {
          if (c == '\b') out.lit("\\b");
          else out.lit("\\f");
          break;
        }
        [[fallthrough]];
      default:
        if (c < 0x20) {
          out.lit("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.lit("\xEF\xBF\xBD");  // invalid UTF-8 byte: U+FFFD
        }
    }
    ++i;
    run = i;
  }
  out.append(sv.data() + run, n - run);
  if (quoted) out.push_back('"');
}

#ifdef __SSE2__
// Bit k set when byte k of x needs a look in a quoted string (as special16).
inline unsigned special_mask(__m128i x) {
  const __m128i t = _mm_or_si128(_mm_cmplt_epi8(x, _mm_set1_epi8(0x20)),
                                 _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))));
  return static_cast<unsigned>(_mm_movemask_epi8(t));
}

// The low n bits set (n <= 16): the bytes of a value's last 16-byte chunk.
constexpr auto kLowBits = [] {
  std::array<uint16_t, 17> t{};
  for (unsigned n = 0; n <= 16; ++n) t[n] = static_cast<uint16_t>((1u << n) - 1);
  return t;
}();
#endif

// A string field's value (n bytes at s, n <= 16 or not) and its closing quote at q: 16 bytes at a
// time straight from the arena (it has kArenaSlack readable bytes past any value), with no escaping
// to do; the caller reserved n + 17 bytes (the last store may overshoot). Returns the end, or nullptr
// (the bytes at q scratch) when a byte needs a look (an escape, a byte >= 0x80): json_string writes
// that value.
inline char* put_plain_string(const char* s, size_t n, char* q) {
#ifdef __SSE2__
  static_assert(FieldList::kArenaSlack >= 16);
  if (n <= 16) {  // most values: one load, one look, one store
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    if ((special_mask(x) & kLowBits[n]) != 0) return nullptr;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), x);
    q[n] = '"';
    return q + n + 1;
  }
  for (size_t i = 0; i < n; i += 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    unsigned m = special_mask(x);
    if (n - i < 16) m &= kLowBits[n - i];
    if (m != 0) return nullptr;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), x);
  }
  q[n] = '"';
  return q + n + 1;
#else
  (void)s;
  (void)n;
  (void)q;
  return nullptr;
#endif
}

// v in decimal at p; returns the end. Most numbers of a record (ports, status codes, byte counts,
// latencies) have at most 4 digits: those take no loop.
inline char* put_dec(uint64_t v, char* p) {
  if (v < 100) {
    if (v < 10) {
      *p = static_cast<char>('0' + v);
      return p + 1;
    }
    std::memcpy(p, &kDigitPairs[2 * v], 2);
    return p + 2;
  }
  if (v < 10000) {
    const auto hi = static_cast<uint32_t>(v) / 100, lo = static_cast<uint32_t>(v) % 100;
    if (v < 1000) {
      *p = static_cast<char>('0' + hi);
      std::memcpy(p + 1, &kDigitPairs[2 * lo], 2);
      return p + 3;
    }
    std::memcpy(p, &kDigitPairs[2 * hi], 2);
    std::memcpy(p + 2, &kDigitPairs[2 * lo], 2);
    return p + 4;
  }
  const size_t len = decimal_len(v);
  write_decimal(v, p, len);
  return p + len;
}

// The low `width` decimal digits of `v`, zero-padded (fixed-width date and time fields).
// `width` digits of v (the low ones, zero-padded), two per division.
void put_digits(uint64_t v, int width, char* buf) {
  int i = width;
  for (; i >= 2; i -= 2) {
    const auto r = static_cast<size_t>(v % 100);
    v /= 100;
    buf[i - 2] = kDigitPairs[2 * r];
    buf[i - 1] = kDigitPairs[2 * r + 1];
  }
  if (i == 1) buf[0] = static_cast<char>('0' + v % 10);
}

// The text of the last millisecond seen, "YYYY-MM-DDTHH:MM:SS.mmm" (per thread: records come in
// time order, a few share each millisecond and most their second).
struct MsText {
  uint64_t ms = ~0ull;
  uint64_t secs = ~0ull;
  char text[24] = {};  // 23 bytes and one of scratch
};

[[gnu::noinline]] void fill_ms_text(uint64_t ms, MsText& c) {
  using namespace std::chrono;
  const uint64_t secs = ms / 1000;  // uint64 ns: up to year 2554
  if (secs != c.secs) {
    const sys_seconds t{seconds{static_cast<int64_t>(secs)}};
    const sys_days day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss hms{t - day};
    char* b = c.text;
    put_digits(static_cast<uint64_t>(static_cast<int>(ymd.year())), 4, b);
    b[4] = '-';
    put_digits(static_cast<unsigned>(ymd.month()), 2, b + 5);
    b[7] = '-';
    put_digits(static_cast<unsigned>(ymd.day()), 2, b + 8);
    b[10] = 'T';
    put_digits(static_cast<uint64_t>(hms.hours().count()), 2, b + 11);
    b[13] = ':';
    put_digits(static_cast<uint64_t>(hms.minutes().count()), 2, b + 14);
    b[16] = ':';
    put_digits(static_cast<uint64_t>(hms.seconds().count()), 2, b + 17);
    b[19] = '.';
    c.secs = secs;
  }
  put_digits(ms - secs * 1000, 3, c.text + 20);
  c.ms = ms;
}

// "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" (27 bytes): the cached millisecond's text and three digits.
inline void put_iso8601_us(uint64_t ts_ns, char* out) {
  thread_local MsText cache;
  const uint64_t us = ts_ns / 1000;
  const uint64_t ms = us / 1000;
  MsText& c = cache;
  if (ms != c.ms) [[unlikely]] fill_ms_text(ms, c);
  std::memcpy(out, c.text, 24);  // its 24th byte is overwritten next
  const auto u = static_cast<uint32_t>(us - ms * 1000);
  const uint32_t hi = u / 100, lo = u % 100;
  out[23] = static_cast<char>('0' + hi);
  std::memcpy(out + 24, &kDigitPairs[2 * lo], 2);
  out[26] = 'Z';
}

void put_ip(const IpAddr& ip, uint8_t ip_version, JsonOut& out) {
  char* p = out.room(64);
  size_t n = format_ip(ip, ip_version, p, 64);
  if (n == 0) {
    p[0] = '?';
    n = 1;
  }
  out.advance(n);
}

// The 8 hex digits of x (lower case, most significant first) as 8 bytes in memory order.
constexpr uint64_t hex8(uint32_t x) {
  uint64_t y = x;
  y = (y | (y << 16)) & 0x0000FFFF0000FFFFull;
  y = (y | (y << 8)) & 0x00FF00FF00FF00FFull;
  y = (y | (y << 4)) & 0x0F0F0F0F0F0F0F0Full;  // byte k: nibble k
  y = __builtin_bswap64(y);                     // most significant nibble first in memory
  const uint64_t letters = ((y + 0x0606060606060606ull) >> 4) & 0x0101010101010101ull;  // nibble > 9
  return y + 0x3030303030303030ull + letters * ('a' - '0' - 10);
}

// The 16 hex digits of v at p. Record ids count up per worker: the text of the last one is kept
// per thread, and the next id (15 times in 16) changes only its last digit.
inline void put_hex16(uint64_t v, char* p) {
  struct LastId {
    uint64_t id = ~0ull;
    char text[16] = {'f', 'f', 'f', 'f', 'f', 'f', 'f', 'f', 'f', 'f', 'f', 'f', 'f', 'f', 'f', 'f'};
  };
  thread_local LastId last;
  LastId& l = last;
  if (v == l.id + 1 && (v & 15) != 0) {
    l.text[15] = kHex[v & 15];
  } else {
    const uint64_t hi = hex8(static_cast<uint32_t>(v >> 32));
    const uint64_t lo = hex8(static_cast<uint32_t>(v));
    std::memcpy(l.text, &hi, 8);
    std::memcpy(l.text + 8, &lo, 8);
  }
  l.id = v;
  std::memcpy(p, l.text, 16);
}

// The text of the last address written at one place of the record: the client and the server
// addresses repeat from record to record, formatting them is most of their cost.
struct IpText {
  uint8_t version = 0;  // 0: empty
  uint8_t len = 0;
  IpAddr ip{};
  char text[64];
};

std::string_view ip_text(const IpAddr& ip, uint8_t ip_version, IpText& last) {
  if (last.version != ip_version || last.version == 0 || std::memcmp(last.ip.bytes, ip.bytes, sizeof(ip.bytes)) != 0) {
    size_t n = format_ip(ip, ip_version, last.text, sizeof(last.text));
    if (n == 0) {
      last.text[0] = '?';
      n = 1;
    }
    last.len = static_cast<uint8_t>(n);
    last.ip = ip;
    last.version = ip_version;
  }
  return {last.text, last.len};
}

// The record's text from `","protocol":"` to `"latency_us":` of recent connections (per worker
// thread, direct-mapped by a mix of the ports and addresses): formatting the addresses and ports
// was most of the record head's cost, and records of a few hundred connections interleave.
struct ConnText {
  IpAddr client{};
  IpAddr server{};
  uint16_t client_port = 0;
  uint16_t server_port = 0;
  Protocol protocol = Protocol::kUnknown;
  uint8_t ip_version = 0;  // 0: empty
  uint8_t len = 0;
  char text[184];  // two IPv6 addresses fit (181 bytes at most)
};
constexpr size_t kConnTexts = 128;  // ~28 KiB per thread

ConnText& conn_text(const Record& r) {
  thread_local std::array<ConnText, kConnTexts> texts;
  static_assert(kConnTexts == 128, "the index is the mix's top 7 bits");
  return texts[connection_mix(r) >> 25];
}

// Writes without bounds checks into room the caller reserved (kHeadRoom bytes).
constexpr size_t kHeadRoom = 512;
struct Raw {
  char* p;
  template <size_t N>
  void lit(const char (&s)[N]) {
    std::memcpy(p, s, N - 1);
    p += N - 1;
  }
  void str(std::string_view v) {
    copy_short(p, v.data(), v.size());
    p += v.size();
  }
  void dec(uint64_t v) { p = put_dec(v, p); }
};


// Room one field needs besides its key and its value's bytes: punctuation (4), a number (21), a
// string's quotes and the fast path's overshoot (18), and the message's closing brace.
constexpr size_t kFieldRoom = 48;

[[gnu::always_inline]] inline void put_fields(const Message& m, JsonOut& out) {
  const FieldList& fl = m.fields;
  char* p = out.room(kFieldRoom + 9);
  std::memcpy(p, "{\"bytes\":", 9);
  p = put_dec(m.bytes, p + 9);
  char* end = out.end();
  const char* const arena = fl.arena().data();
  const size_t count = fl.size();
  for (size_t i = 0; i < count; ++i) {
    const Field& f = fl[i];
    const size_t klen = f.key_len;
    const size_t vlen = f.len;  // 0 for numbers
    if (static_cast<size_t>(end - p) < klen + vlen + kFieldRoom) {
      out.set(p);
      p = out.room(klen + vlen + kFieldRoom);
      end = out.end();
    }
    std::memcpy(p, ",\"", 2);
    copy_short(p + 2, f.key, klen);
    p += klen + 2;
    if (f.kind == FieldKind::kString) {  // most fields: tested first, no jump table
      std::memcpy(p, "\":\"", 4);  // the 4th byte (NUL) is scratch: the value or its closing quote lands there
      const char* const v = arena + f.off;
      if (char* e = put_plain_string(v, vlen, p + 3)) {
        p = e;
        continue;
      }
      out.set(p + 2);
      json_string(std::string_view(v, vlen), out, JsonEscapes::kRecord);
      p = out.cursor();
      end = out.end();
      if (end == p) {
        p = out.room(1);
        end = out.end();
      }
      continue;
    }
    std::memcpy(p, "\":", 2);
    p += 2;
    switch (f.kind) {
      case FieldKind::kString: break;
      case FieldKind::kInt: {
        const auto v = static_cast<int64_t>(f.num);
        uint64_t u = static_cast<uint64_t>(v);
        if (v < 0) {
          *p++ = '-';
          u = 0 - u;
        }
        p = put_dec(u, p);
        break;
      }
      case FieldKind::kUint: p = put_dec(f.num, p); break;
      case FieldKind::kBool:
        if (f.num != 0) {
          std::memcpy(p, "true", 4);
          p += 4;
        } else {
          std::memcpy(p, "false", 5);
          p += 5;
        }
        break;
      case FieldKind::kNull:
        std::memcpy(p, "null", 4);
        p += 4;
        break;
      case FieldKind::kRawJson:
        std::memcpy(p, arena + f.off, vlen);
        p += vlen;
        break;
    }
  }
  *p++ = '}';
  out.set(p);
}

// `{...},"response":{...}` (or null for either): one call per record, the field loops inline.
[[gnu::noinline]] void put_messages(const Record& r, JsonOut& out) {
  if (r.request != nullptr) {
    put_fields(*r.request, out);
  } else {
    out.lit("null");
  }
  out.lit(",\"response\":");
  if (r.response != nullptr) {
    put_fields(*r.response, out);
  } else {
    out.lit("null");
  }
}

}  // namespace

void append_json_string(std::string_view sv, std::string& out, JsonEscapes style) {
  StringOut o{out};
  json_string(sv, o, style);
}

void append_iso8601_us(uint64_t ts_ns, std::string& out) {
  char buf[27];
  put_iso8601_us(ts_ns, buf);
  out.append(buf, sizeof(buf));
}

void append_ip(const IpAddr& ip, uint8_t ip_version, std::string& out) {
  char buf[64];
  size_t n = format_ip(ip, ip_version, buf, sizeof(buf));
  out.append(n > 0 ? std::string_view(buf, n) : std::string_view("?"));
}

size_t write_json_line(const Record& r, std::string& buf, size_t at) {
  JsonOut out(buf, at);
  // The record's fixed part up to "request" (at most ~400 bytes: two IPv6 addresses, 20-digit
  // numbers) is written through one reservation, without a bounds check per piece.
  char* const head = out.room(kHeadRoom);
  Raw w{head};
  w.lit("{\"schema_version\":\"");
  w.str(kRecordSchemaVersion);
  w.lit("\",\"ts\":\"");
  put_iso8601_us(r.ts_ns, w.p);
  w.p += 27;
  w.lit("\",\"id\":\"");
  put_hex16(r.id, w.p);
  w.p += 16;
  // From the protocol to the server's port: the same for every record of a connection.
  ConnText& ct = conn_text(r);
  if (ct.ip_version == r.ip_version && ct.protocol == r.protocol && ct.client_port == r.client.port &&
      ct.server_port == r.server.port && std::memcmp(ct.client.bytes, r.client.ip.bytes, 16) == 0 &&
      std::memcmp(ct.server.bytes, r.server.ip.bytes, 16) == 0) {
    if (ct.len <= 128) {
      std::memcpy(w.p, ct.text, 128);  // a fixed size: no call (kHeadRoom covers the overshoot)
    } else {
      std::memcpy(w.p, ct.text, ct.len);
    }
    w.p += ct.len;
  } else {
    char* const from = w.p;
    w.lit("\",\"protocol\":\"");
    w.str(to_string(r.protocol));
    thread_local IpText last_client, last_server;  // per worker thread
    w.lit("\",\"client\":{\"ip\":\"");
    w.str(ip_text(r.client.ip, r.ip_version, last_client));
    w.lit("\",\"port\":");
    w.dec(r.client.port);
    w.lit("},\"server\":{\"ip\":\"");
    w.str(ip_text(r.server.ip, r.ip_version, last_server));
    w.lit("\",\"port\":");
    w.dec(r.server.port);
    w.lit("},\"latency_us\":");
    const auto len = static_cast<size_t>(w.p - from);
    if (len <= sizeof(ct.text)) {
      ct.ip_version = r.ip_version;
      ct.protocol = r.protocol;
      ct.client_port = r.client.port;
      ct.server_port = r.server.port;
      ct.client = r.client.ip;
      ct.server = r.server.ip;
      ct.len = static_cast<uint8_t>(len);
      std::memcpy(ct.text, from, len);
    } else {
      ct.ip_version = 0;
    }
  }
  if (r.has_latency) {
    w.dec(r.latency_us);
  } else {
    w.lit("null");
  }
  // `,"status":"ok","request":` and the like: one fixed-size copy (kHeadRoom covers the overshoot).
  struct StatusText {
    char text[32];
    size_t len;
  };
  static constexpr auto kStatusText = [] {
    constexpr std::string_view kNames[] = {"ok", "error", "timeout", "unmatched"};
    static_assert(std::size(kNames) == kRecordStatusCount);
    std::array<StatusText, kRecordStatusCount> t{};
    for (size_t i = 0; i < kRecordStatusCount; ++i) {
      size_t n = 0;
      for (char c : std::string_view(",\"status\":\"")) t[i].text[n++] = c;
      for (char c : kNames[i]) t[i].text[n++] = c;
      for (char c : std::string_view("\",\"request\":")) t[i].text[n++] = c;
      t[i].len = n;
    }
    return t;
  }();
  const auto st = static_cast<size_t>(r.status);
  if (st < kRecordStatusCount) {
    std::memcpy(w.p, kStatusText[st].text, 32);
    w.p += kStatusText[st].len;
  } else {
    w.lit(",\"status\":\"");
    w.str(to_string(r.status));
    w.lit("\",\"request\":");
  }
  out.advance(static_cast<size_t>(w.p - head));
  put_messages(r, out);
  if (r.tags.empty() && r.flags == 0 && r.tunnel == nullptr && r.recording_id.empty()) {
    out.lit(",\"tags\":[],\"flags\":[]}\n");  // most records
    return out.offset();
  }
  out.lit(",\"tags\":[");
  for (size_t i = 0; i < r.tags.size(); ++i) {
    if (i != 0) out.push_back(',');
    json_string(r.tags[i], out, JsonEscapes::kRecord);
  }
  out.lit("],\"flags\":[");
  bool first = true;
  if (r.flags & record_flag::kGap) {
    out.lit("\"gap\"");
    first = false;
  }
  if (r.flags & record_flag::kTruncated) {
    if (!first) out.push_back(',');
    out.lit("\"truncated\"");
    first = false;
  }
  if (r.flags & record_flag::kOverlapConflict) {
    if (!first) out.push_back(',');
    out.lit("\"overlap_conflict\"");
    first = false;
  }
  if (r.flags & record_flag::kReordered) {
    if (!first) out.push_back(',');
    out.lit("\"reordered\"");
  }
  out.push_back(']');
  if (r.tunnel != nullptr) {
    const TunnelSummary& t = *r.tunnel;
    out.lit(",\"tunnel\":{\"type\":\"");
    out.append(to_string(t.type));
    out.lit("\",\"depth\":");
    put_decimal(t.depth, out);
    if (t.has_id) {
      out.lit(",\"id\":");
      put_decimal(t.id, out);
    }
    out.lit(",\"outer_src\":\"");
    put_ip(t.outer_src, t.outer_ip_version, out);
    out.lit("\",\"outer_dst\":\"");
    put_ip(t.outer_dst, t.outer_ip_version, out);
    out.lit("\"}");
  }
  if (!r.recording_id.empty()) {
    out.lit(",\"recording_id\":");
    json_string(r.recording_id, out, JsonEscapes::kRecord);
  }
  out.lit("}\n");
  return out.offset();
}

void append_json_line(const Record& r, std::string& s) {
  s.resize(write_json_line(r, s, s.size()));
}

}  // namespace spanfeed
