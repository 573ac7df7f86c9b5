// FieldList and the hand-written JSON-lines encoder for Record records.
// Runs on worker lcores; FieldList never allocates, the encoder appends to a caller-owned reused string.
#include "spanfeed/record.h"

#include <arpa/inet.h>

#include <charconv>
#include <chrono>
#include <cstring>

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

void FieldList::add_num(const char* key, FieldKind kind, uint64_t v) {
  if (count_ >= kMaxFields) {
    truncated_ = true;
    return;
  }
  Field& f = fields_[count_++];
  f.key = key;
  f.kind = kind;
  f.off = f.len = 0;
  f.num = v;
}

bool FieldList::replace_string(size_t i, std::string_view value) {
  if (i >= count_ || fields_[i].kind != FieldKind::kString) return false;
  Field& f = fields_[i];
  if (value.size() <= f.len) {
    std::memcpy(arena_.data() + f.off, value.data(), value.size());
    f.len = static_cast<uint16_t>(value.size());
    return true;
  }
  if (value.size() > arena_left()) return false;
  std::memcpy(arena_.data() + used_, value.data(), value.size());
  f.off = used_;
  f.len = static_cast<uint16_t>(value.size());
  used_ = static_cast<uint16_t>(used_ + value.size());
  return true;
}

void FieldList::mask(size_t i, size_t from, size_t to, char c) {
  if (i >= count_ || fields_[i].kind != FieldKind::kString) return;
  Field& f = fields_[i];
  if (to > f.len) to = f.len;
  if (from < to) std::memset(arena_.data() + f.off + from, c, to - from);
}

void FieldList::add_string(const char* key, std::string_view value, size_t max_len) {
  if (count_ >= kMaxFields) {
    truncated_ = true;
    return;
  }
  size_t n = value.size();
  if (n > max_len) n = max_len;
  if (n > arena_left()) {
    n = arena_left();
    truncated_ = true;
  }
  // Do not cut inside a UTF-8 sequence: back up over continuation bytes.
  if (n < value.size()) {
    while (n > 0 && (static_cast<uint8_t>(value[n]) & 0xC0) == 0x80) --n;
  }
  Field& f = fields_[count_++];
  f.key = key;
  f.kind = FieldKind::kString;
  f.off = used_;
  f.len = static_cast<uint16_t>(n);
  f.num = 0;
  if (n > 0) std::memcpy(arena_.data() + used_, value.data(), n);
  used_ = static_cast<uint16_t>(used_ + n);
}

bool FieldList::add_raw_json(const char* key, std::string_view json) {
  size_t b = raw_begin();
  if (!raw_append(json)) return false;
  return raw_commit(key, b, FieldKind::kRawJson);
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

bool FieldList::raw_commit(const char* key, size_t begin, FieldKind kind) {
  if (count_ >= kMaxFields) {
    truncated_ = true;
    used_ = static_cast<uint16_t>(begin);
    return false;
  }
  Field& f = fields_[count_++];
  f.key = key;
  f.kind = kind;
  f.off = static_cast<uint16_t>(begin);
  f.len = static_cast<uint16_t>(used_ - begin);
  f.num = 0;
  return true;
}

void FieldList::set_uint(const char* key, uint64_t v) {
  for (size_t i = 0; i < count_; ++i) {
    if (std::strcmp(fields_[i].key, key) == 0) {
      fields_[i].kind = FieldKind::kUint;
      fields_[i].num = v;
      return;
    }
  }
  add_uint(key, v);
}

const Field* FieldList::find(std::string_view key) const {
  for (size_t i = 0; i < count_; ++i) {
    if (key == fields_[i].key) return &fields_[i];
  }
  return nullptr;
}

std::string_view FieldList::get_string(std::string_view key) const {
  const Field* f = find(key);
  if (f == nullptr || f->kind != FieldKind::kString) return {};
  return string_of(*f);
}

// ---- JSON encoding ----

namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr uint64_t kNsPerSecond = 1'000'000'000ull;

template <typename Int>
void append_decimal(Int v, std::string& out) {
  char buf[24];  // 20 digits and a sign at most
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}
void append_uint(uint64_t v, std::string& out) { append_decimal(v, out); }
void append_int(int64_t v, std::string& out) { append_decimal(v, out); }

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

void append_key(const char* key, std::string& out) {
  out.push_back('"');
  out.append(key);
  out.append("\":");
}

void append_fields(const Message& m, std::string& out) {
  out.append("{\"bytes\":");
  append_uint(m.bytes, out);
  const FieldList& fl = m.fields;
  for (size_t i = 0; i < fl.size(); ++i) {
    const Field& f = fl[i];
    out.push_back(',');
    append_key(f.key, out);
    switch (f.kind) {
      case FieldKind::kString: append_json_string(fl.string_of(f), out); break;
      case FieldKind::kInt: append_int(static_cast<int64_t>(f.num), out); break;
      case FieldKind::kUint: append_uint(f.num, out); break;
      case FieldKind::kBool: out.append(f.num != 0 ? "true" : "false"); break;
      case FieldKind::kNull: out.append("null"); break;
      case FieldKind::kRawJson: out.append(fl.string_of(f)); break;
    }
  }
  out.push_back('}');
}

// The low `width` decimal digits of `v`, zero-padded (fixed-width date and time fields).
void append_digits(uint64_t v, int width, std::string& out) {
  char buf[20];
  for (int i = width - 1; i >= 0; --i) {
    buf[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  out.append(buf, static_cast<size_t>(width));
}

}  // namespace

void append_json_string(std::string_view sv, std::string& out, JsonEscapes style) {
  const auto* s = reinterpret_cast<const unsigned char*>(sv.data());
  const size_t n = sv.size();
  const bool quoted = style != JsonEscapes::kUnquoted;
  if (quoted) out.push_back('"');
  size_t run = 0;  // start of the pending run of bytes that need no escaping
  size_t i = 0;
  while (i < n) {
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
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      case '\b':
      case '\f':
        if (style == JsonEscapes::kShortEscapes) {
          out.append(c == '\b' ? "\\b" : "\\f");
          break;
        }
        [[fallthrough]];
      default:
        if (c < 0x20) {
          out.append("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.append("\xEF\xBF\xBD");  // invalid UTF-8 byte: U+FFFD
        }
    }
    ++i;
    run = i;
  }
  out.append(sv.data() + run, n - run);
  if (quoted) out.push_back('"');
}

void append_iso8601_us(uint64_t ts_ns, std::string& out) {
  using namespace std::chrono;
  const sys_seconds t{seconds{static_cast<int64_t>(ts_ns / kNsPerSecond)}};  // uint64 ns: up to year 2554
  const uint64_t us = (ts_ns % kNsPerSecond) / 1000;
  const sys_days day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  append_digits(static_cast<uint64_t>(static_cast<int>(ymd.year())), 4, out);
  out.push_back('-');
  append_digits(static_cast<unsigned>(ymd.month()), 2, out);
  out.push_back('-');
  append_digits(static_cast<unsigned>(ymd.day()), 2, out);
  out.push_back('T');
  append_digits(static_cast<uint64_t>(hms.hours().count()), 2, out);
  out.push_back(':');
  append_digits(static_cast<uint64_t>(hms.minutes().count()), 2, out);
  out.push_back(':');
  append_digits(static_cast<uint64_t>(hms.seconds().count()), 2, out);
  out.push_back('.');
  append_digits(us, 6, out);
  out.push_back('Z');
}

void append_ip(const IpAddr& ip, uint8_t ip_version, std::string& out) {
  char buf[64];
  size_t n = format_ip(ip, ip_version, buf, sizeof(buf));
  out.append(n > 0 ? std::string_view(buf, n) : std::string_view("?"));
}

void append_json_line(const Record& r, std::string& out) {
  out.append("{\"schema_version\":\"");
  out.append(kRecordSchemaVersion);
  out.append("\",\"ts\":\"");
  append_iso8601_us(r.ts_ns, out);
  out.append("\",\"id\":\"");
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(r.id >> shift) & 15]);
  out.append("\",\"protocol\":\"");
  out.append(to_string(r.protocol));
  out.append("\",\"client\":{\"ip\":\"");
  append_ip(r.client.ip, r.ip_version, out);
  out.append("\",\"port\":");
  append_uint(r.client.port, out);
  out.append("},\"server\":{\"ip\":\"");
  append_ip(r.server.ip, r.ip_version, out);
  out.append("\",\"port\":");
  append_uint(r.server.port, out);
  out.append("},\"latency_us\":");
  if (r.has_latency) {
    append_uint(r.latency_us, out);
  } else {
    out.append("null");
  }
  out.append(",\"status\":\"");
  out.append(to_string(r.status));
  out.append("\",\"request\":");
  if (r.request != nullptr) {
    append_fields(*r.request, out);
  } else {
    out.append("null");
  }
  out.append(",\"response\":");
  if (r.response != nullptr) {
    append_fields(*r.response, out);
  } else {
    out.append("null");
  }
  out.append(",\"tags\":[");
  for (size_t i = 0; i < r.tags.size(); ++i) {
    if (i != 0) out.push_back(',');
    append_json_string(r.tags[i], out);
  }
  out.append("],\"flags\":[");
  bool first = true;
  if (r.flags & record_flag::kGap) {
    out.append("\"gap\"");
    first = false;
  }
  if (r.flags & record_flag::kTruncated) {
    if (!first) out.push_back(',');
    out.append("\"truncated\"");
    first = false;
  }
  if (r.flags & record_flag::kOverlapConflict) {
    if (!first) out.push_back(',');
    out.append("\"overlap_conflict\"");
  }
  out.push_back(']');
  if (r.tunnel != nullptr) {
    const TunnelSummary& t = *r.tunnel;
    out.append(",\"tunnel\":{\"type\":\"");
    out.append(to_string(t.type));
    out.append("\",\"depth\":");
    append_uint(t.depth, out);
    if (t.has_id) {
      out.append(",\"id\":");
      append_uint(t.id, out);
    }
    out.append(",\"outer_src\":\"");
    append_ip(t.outer_src, t.outer_ip_version, out);
    out.append("\",\"outer_dst\":\"");
    append_ip(t.outer_dst, t.outer_ip_version, out);
    out.append("\"}");
  }
  if (!r.recording_id.empty()) {
    out.append(",\"recording_id\":");
    append_json_string(r.recording_id, out);
  }
  out.append("}\n");
}

}  // namespace spanfeed
