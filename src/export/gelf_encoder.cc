// GelfEncoder: GELF documents from records, on the worker lcore. Keys are sorted and values
// written the way nlohmann-json dumps them (short escapes, its double format), so documents are
// byte for byte what the exporter made when it re-parsed each JSON line.
#include "export/gelf_encoder.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <nlohmann/detail/conversions/to_chars.hpp>

#include "spanfeed/protocol.h"

namespace spanfeed {

namespace {

constexpr size_t kShortMessageMax = 250;
constexpr int kMaxDepth = 16;       // deeper embedded JSON is copied as it is
constexpr size_t kMaxMembers = 64;  // members of one embedded object sorted at most (more: copied as they are)

size_t skip_ws(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

// End of the JSON string starting at s[i] == '"' (just past its closing quote).
size_t string_end(std::string_view s, size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return s.size();
}

unsigned hex_value(std::string_view h) {
  unsigned v = 0;
  for (char c : h) v = v * 16 + static_cast<unsigned>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  return v;
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | cp >> 6));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | cp >> 12));
    out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | cp >> 18));
    out.push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// The JSON string token `tok` (quotes included) re-escaped as nlohmann dumps it
// (decoded into `dec` first).
void restring(std::string_view tok, std::string& out, std::string& dec) {
  dec.clear();
  for (size_t i = 1; i + 1 < tok.size(); ++i) {
    const char c = tok[i];
    if (c != '\\') {
      dec.push_back(c);
      continue;
    }
    const char e = tok[++i];
    switch (e) {
      case 'b': dec.push_back('\b'); break;
      case 'f': dec.push_back('\f'); break;
      case 'n': dec.push_back('\n'); break;
      case 'r': dec.push_back('\r'); break;
      case 't': dec.push_back('\t'); break;
      case 'u': {
        if (i + 4 >= tok.size()) break;
        uint32_t cp = hex_value(tok.substr(i + 1, 4));
        i += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < tok.size() && tok[i + 1] == '\\' && tok[i + 2] == 'u') {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (hex_value(tok.substr(i + 3, 4)) - 0xDC00);
          i += 6;
        }
        append_utf8(cp, dec);
        break;
      }
      default: dec.push_back(e);  // \" \\ \/
    }
  }
  append_json_string(dec, out, JsonEscapes::kShortEscapes);
}

// Writes the JSON value starting at s[i] as nlohmann dumps it (objects with
// their keys in byte order, no spaces); returns the index just past it.
size_t canonical(std::string_view s, size_t i, std::string& out, std::string& dec, int depth) {
  i = skip_ws(s, i);
  if (i >= s.size()) return i;
  const char c = s[i];
  if (c == '"') {
    const size_t e = string_end(s, i);
    restring(s.substr(i, e - i), out, dec);
    return e;
  }
  if (c == '[' || c == '{') {
    const char close = c == '[' ? ']' : '}';
    if (depth >= kMaxDepth) {  // copied as it is: find its end
      size_t j = i + 1;
      for (int level = 1; j < s.size() && level > 0; ++j) {
        if (s[j] == '"') j = string_end(s, j) - 1;
        else if (s[j] == '[' || s[j] == '{') ++level;
        else if (s[j] == ']' || s[j] == '}') --level;
      }
      out.append(s.substr(i, j - i));
      return j;
    }
    struct Member {
      std::string_view key;  // raw key text (quotes included): the record's keys need no escapes
      size_t value;
    };
    std::array<Member, kMaxMembers> members;
    size_t n = 0;
    bool sortable = true;
    size_t j = skip_ws(s, i + 1);
    const size_t mark = out.size();
    out.push_back(c);
    bool first = true;
    while (j < s.size() && s[j] != close) {
      if (!first) out.push_back(',');
      first = false;
      if (c == '{') {
        const size_t ke = string_end(s, j);
        const std::string_view key = s.substr(j, ke - j);
        j = skip_ws(s, ke);
        if (j < s.size() && s[j] == ':') ++j;
        if (n < kMaxMembers) members[n++] = {key, j};
        else sortable = false;
        restring(key, out, dec);
        out.push_back(':');
      }
      j = canonical(s, j, out, dec, depth + 1);
      j = skip_ws(s, j);
      if (j < s.size() && s[j] == ',') j = skip_ws(s, j + 1);
    }
    out.push_back(close);
    if (c == '{' && sortable && n > 1) {  // again, members in key order
      std::sort(members.begin(), members.begin() + static_cast<std::ptrdiff_t>(n),
                [](const Member& a, const Member& b) { return a.key < b.key; });
      out.resize(mark);
      out.push_back('{');
      for (size_t k = 0; k < n; ++k) {
        if (k != 0) out.push_back(',');
        restring(members[k].key, out, dec);
        out.push_back(':');
        canonical(s, members[k].value, out, dec, depth + 1);
      }
      out.push_back('}');
    }
    return j < s.size() ? j + 1 : j;
  }
  size_t e = i;  // number, true, false, null
  while (e < s.size() && s[e] != ',' && s[e] != ']' && s[e] != '}' && s[e] != ' ') ++e;
  out.append(s.substr(i, e - i));
  return e;
}

}  // namespace

std::string gelf_hostname() {
  char h[256] = {0};
  if (gethostname(h, sizeof(h) - 1) != 0) return "spanfeed";
  return h;
}

GelfEncoder::GelfEncoder(std::string host) : host_(std::move(host)) {
  keys_.reserve(4096);
  vals_.reserve(FieldList::kArenaBytes * 4);
  tmp_.reserve(FieldList::kArenaBytes * 2);
  dec_.reserve(FieldList::kArenaBytes);
  entries_.reserve(2 * FieldList::kMaxFields + 32);
}

void GelfEncoder::begin(std::string_view a, std::string_view b) {
  Entry e{static_cast<uint32_t>(keys_.size()), 0, static_cast<uint32_t>(vals_.size()), 0};
  keys_.push_back('_');
  keys_.append(a);
  if (!b.empty()) {
    keys_.push_back('_');
    keys_.append(b);
  }
  e.key_len = static_cast<uint32_t>(keys_.size()) - e.key_off;
  entries_.push_back(e);
}

void GelfEncoder::end() {
  Entry& e = entries_.back();
  e.val_len = static_cast<uint32_t>(vals_.size()) - e.val_off;
}

void GelfEncoder::add_fields(std::string_view side, const Message& m) {
  char num[24];
  begin(side, "bytes");  // every message has it (append_json_line writes it first)
  vals_.append(num, std::to_chars(num, num + sizeof(num), m.bytes).ptr);
  end();
  const FieldList& fl = m.fields;
  for (size_t i = 0; i < fl.size(); ++i) {
    const Field& f = fl[i];
    if (f.kind == FieldKind::kNull) continue;
    begin(side, f.key);
    switch (f.kind) {
      case FieldKind::kString: append_json_string(fl.string_of(f), vals_, JsonEscapes::kShortEscapes); break;
      case FieldKind::kInt:
        vals_.append(num, std::to_chars(num, num + sizeof(num), static_cast<int64_t>(f.num)).ptr);
        break;
      case FieldKind::kUint: vals_.append(num, std::to_chars(num, num + sizeof(num), f.num).ptr); break;
      case FieldKind::kBool: vals_.append(f.num != 0 ? "true" : "false"); break;
      case FieldKind::kNull: break;
      case FieldKind::kRawJson:
        // Arrays and objects become their JSON text; a raw scalar (a string a
        // decoder escaped itself, a number) stays that scalar.
        tmp_.clear();
        canonical(fl.string_of(f), 0, tmp_, dec_, 0);
        if (!tmp_.empty() && tmp_[0] != '[' && tmp_[0] != '{') {
          vals_.append(tmp_);
        } else {
          append_json_string(tmp_, vals_, JsonEscapes::kShortEscapes);
        }
        break;
    }
    end();
  }
}

void GelfEncoder::append(const Record& r, std::string& out) {
  keys_.clear();
  vals_.clear();
  entries_.clear();
  char buf[64];
  auto str = [&](std::string_view key, std::string_view v) {
    begin(key);
    append_json_string(v, vals_, JsonEscapes::kShortEscapes);
    end();
  };
  auto uint = [&](std::string_view key, uint64_t v) {
    begin(key);
    vals_.append(buf, std::to_chars(buf, buf + sizeof(buf), v).ptr);
    end();
  };
  str("schema_version", kRecordSchemaVersion);
  tmp_.clear();
  append_iso8601_us(r.ts_ns, tmp_);
  str("ts", tmp_);
  static constexpr char kHex[] = "0123456789abcdef";
  for (int k = 0; k < 16; ++k) buf[k] = kHex[(r.id >> (60 - 4 * k)) & 15];
  str("record_id", std::string_view(buf, 16));
  const std::string_view protocol = to_string(r.protocol);
  const std::string_view status = to_string(r.status);
  str("protocol", protocol);
  tmp_.clear();
  append_ip(r.client.ip, r.ip_version, tmp_);
  str("client_ip", tmp_);
  uint("client_port", r.client.port);
  tmp_.clear();
  append_ip(r.server.ip, r.ip_version, tmp_);
  str("server_ip", tmp_);
  uint("server_port", r.server.port);
  if (r.has_latency) uint("latency_us", r.latency_us);
  str("status", status);
  if (r.request != nullptr) add_fields("request", *r.request);
  if (r.response != nullptr) add_fields("response", *r.response);
  tmp_.assign("[");
  for (size_t i = 0; i < r.tags.size(); ++i) {
    if (i != 0) tmp_.push_back(',');
    append_json_string(r.tags[i], tmp_, JsonEscapes::kShortEscapes);
  }
  tmp_.push_back(']');
  str("tags", tmp_);
  tmp_.assign("[");
  const std::pair<uint32_t, std::string_view> kFlags[] = {
      {record_flag::kGap, "\"gap\""}, {record_flag::kTruncated, "\"truncated\""},
      {record_flag::kOverlapConflict, "\"overlap_conflict\""},
      {record_flag::kReordered, "\"reordered\""}};
  for (const auto& [bit, name] : kFlags) {
    if ((r.flags & bit) == 0) continue;
    if (tmp_.size() > 1) tmp_.push_back(',');
    tmp_.append(name);
  }
  tmp_.push_back(']');
  str("flags", tmp_);
  if (!r.recording_id.empty()) str("recording_id", r.recording_id);
  if (r.tunnel != nullptr) {
    str("tunnel_type", to_string(r.tunnel->type));
    if (r.tunnel->has_id) uint("tunnel_id", r.tunnel->id);
    tmp_.clear();
    append_ip(r.tunnel->outer_src, r.tunnel->outer_ip_version, tmp_);
    str("tunnel_outer_src", tmp_);
    tmp_.clear();
    append_ip(r.tunnel->outer_dst, r.tunnel->outer_ip_version, tmp_);
    str("tunnel_outer_dst", tmp_);
  }
  auto key = [this](const Entry& e) { return std::string_view(keys_).substr(e.key_off, e.key_len); };
  std::sort(entries_.begin(), entries_.end(), [&](const Entry& a, const Entry& b) {
    const std::string_view ka = key(a), kb = key(b);
    return ka != kb ? ka < kb : a.val_off < b.val_off;
  });

  out.push_back('{');
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (i + 1 < entries_.size() && key(entries_[i + 1]) == key(e)) continue;  // a key given twice: the last value
    out.push_back('"');
    out.append(keys_, e.key_off, e.key_len);
    out.append("\":");
    out.append(vals_, e.val_off, e.val_len);
    out.push_back(',');
  }
  // The GELF keys sort after every '_' field: host, level, short_message, timestamp, version.
  out.append("\"host\":");
  append_json_string(host_, out, JsonEscapes::kShortEscapes);
  const int level = status == "ok" ? 6 : status == "error" ? 3 : 4;  // info / error / warning
  out.append(",\"level\":");
  out.push_back(static_cast<char>('0' + level));
  // "protocol status" and the field that names the request, as the protocol's descriptor declares it.
  tmp_.assign(protocol);
  tmp_.push_back(' ');
  tmp_.append(status);
  const ProtocolDescriptor* desc = protocol_descriptor(protocol);
  if (desc != nullptr && !desc->summary_field.empty() && r.request != nullptr) {
    const FieldList& fl = r.request->fields;
    for (size_t i = 0; i < fl.size(); ++i) {
      if (fl[i].kind != FieldKind::kString || desc->summary_field != fl[i].key) continue;
      tmp_.push_back(' ');
      append_json_string(fl.string_of(fl[i]), tmp_, JsonEscapes::kUnquoted);
      break;
    }
  }
  if (tmp_.size() > kShortMessageMax) tmp_.resize(kShortMessageMax);
  out.append(",\"short_message\":");
  append_json_string(tmp_, out, JsonEscapes::kShortEscapes);
  out.append(",\"timestamp\":");
  const double ts = static_cast<double>(r.ts_ns / 1'000'000'000ull) +
                    static_cast<double>(r.ts_ns % 1'000'000'000ull / 1000) / 1e6;
  out.append(buf, nlohmann::detail::to_chars(buf, buf + sizeof(buf), ts));
  out.append(",\"version\":\"1.1\"}");
}

}  // namespace spanfeed
