// TLS ClientHello / ServerHello parsing: record fields, JA3 / JA3S (as tshark 4.0) and JA4 (FoxIO) fingerprints.
// Runs on a worker lcore over a whole handshake message; no allocation (digests stream into Crypto).
#include <algorithm>
#include <charconv>

#include "tls_wire.h"

namespace spanfeed::tls {
namespace {

constexpr size_t kListMax = 1024;    // cipher suites / extensions kept for JA4 sorting (a hello has ~20-60)
constexpr size_t kArrayMax = 16;     // entries of the versions / groups arrays in a record
constexpr size_t kAlpnMax = 8;       // ALPN protocols in a record
constexpr size_t kSniMax = 255;      // RFC 6066 3: a host name is at most 255 bytes
constexpr uint8_t kRetryRandom[32] = {  // RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c};

uint64_t fnv1a(std::span<const std::byte> s) {
  uint64_t h = 1469598103934665603ull;
  for (std::byte b : s) h = (h ^ static_cast<uint8_t>(b)) * 1099511628211ull;
  return h;
}

// Decimal text of v into a stack buffer (JA3 strings).
struct Dec {
  char buf[8];
  size_t n;
  explicit Dec(unsigned v) : n(static_cast<size_t>(std::to_chars(buf, buf + sizeof buf, v).ptr - buf)) {}
  std::string_view sv() const { return {buf, n}; }
};

// Streams "a-b-c" of the u16 values of `r` into the digest (GREASE left out as tshark does).
void ja3_list16(Crypto& c, WireReader r) {
  bool first = true;
  while (r.remaining() >= 2) {
    const uint16_t v = r.u16();
    if (is_grease(v)) continue;
    if (!first) c.update("-");
    c.update(Dec(v).sv());
    first = false;
  }
}

// A value as a JSON string: printable ASCII as is, anything else as 0x<hex> (no escaping needed).
bool raw_string(FieldList& f, std::string_view s) {
  bool plain = true;
  for (char ch : s) plain = plain && ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\';
  if (plain) return f.raw_append("\"") && f.raw_append(s) && f.raw_append("\"");
  if (!f.raw_append("\"0x")) return false;
  for (char ch : s) {
    char h[4];
    hex4(static_cast<uint8_t>(ch), h);
    if (!f.raw_append(std::string_view(h + 2, 2))) return false;
  }
  return f.raw_append("\"");
}

// A JSON array of names of the u16 values in `r` (versions: 1-byte length list; groups: 2-byte).
void add_names(FieldList& f, const char* key, WireReader r, bool versions) {
  const size_t at = f.raw_begin();
  bool ok = f.raw_append("[");
  size_t kept = 0;
  while (ok && r.remaining() >= 2 && kept < kArrayMax) {
    const uint16_t v = r.u16();
    if (is_grease(v)) continue;
    char buf[8];
    std::string_view name = versions ? version_name(v, buf) : group_name(v);
    if (name.empty()) {
      buf[0] = '0';
      buf[1] = 'x';
      hex4(v, buf + 2);
      name = {buf, 6};
    }
    ok = (kept++ == 0 || f.raw_append(",")) && raw_string(f, name);
  }
  ok = ok && f.raw_append("]") && f.raw_commit(key, at, FieldKind::kRawJson);
  if (!ok) f.raw_abort(at);
}

// JA4 version code (FoxIO spec: "13", "12", ..., "s3", "s2", "00").
std::string_view ja4_version(uint16_t v) {
  switch (v) {
    case 0x0304: return "13";
    case 0x0303: return "12";
    case 0x0302: return "11";
    case 0x0301: return "10";
    case 0x0300: return "s3";
    case 0x0002: return "s2";
    case 0xfeff: return "d1";
    case 0xfefd: return "d2";
    case 0xfefc: return "d3";
    default: return "00";
  }
}

bool alnum(uint8_t ch) { return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z'); }

// Sorted values as "0a0b,1301,..." into the digest; 12 hex digits of SHA-256, or twelve zeros when empty.
void ja4_hash_sorted(Crypto& c, uint16_t* v, size_t n, WireReader sigalgs, bool with_sigalgs, char* out12) {
  if (n == 0 && !with_sigalgs) {
    std::fill(out12, out12 + 12, '0');
    return;
  }
  std::sort(v, v + n);
  c.begin(Crypto::Algo::kSha256);
  char h[5] = {0, 0, 0, 0, ','};
  for (size_t i = 0; i < n; ++i) {
    hex4(v[i], h);
    c.update(std::string_view(h, i + 1 < n ? 5 : 4));
  }
  if (with_sigalgs) {
    c.update("_");
    bool first = true;
    while (sigalgs.remaining() >= 2) {
      hex4(sigalgs.u16(), h);
      if (!first) c.update(",");
      c.update(std::string_view(h, 4));
      first = false;
    }
  }
  const std::string_view d = c.hex(12);
  std::copy(d.begin(), d.end(), out12);
  if (d.size() < 12) std::fill(out12 + d.size(), out12 + 12, '0');
}

}  // namespace

bool parse_client_hello(std::span<const std::byte> body, FieldList& f, Crypto& c, ClientInfo* info) {
  WireReader r(body);
  const uint16_t legacy = r.u16();
  r.take(32);  // random
  const WireReader sid = r.take(r.u8());
  const WireReader ciphers = r.take(r.u16());
  const WireReader comp = r.take(r.u8());
  if (!r.ok() || sid.remaining() > 32 || ciphers.remaining() % 2 != 0) return false;
  WireReader exts(nullptr, 0);
  if (r.remaining() > 0) {
    exts = r.take(r.u16());
    if (!r.ok()) return false;
  }
  // 1. Walk the extensions once: remember the ones with fields, count, keep the ids for JA4.
  WireReader sni(nullptr, 0), alpn(nullptr, 0), groups(nullptr, 0), formats(nullptr, 0), sigalgs(nullptr, 0),
      versions(nullptr, 0);
  bool has_sni = false, has_alpn = false, has_groups = false, has_formats = false, has_sigalgs = false,
       has_versions = false;
  uint16_t ext_ids[kListMax];
  size_t n_ext = 0, n_ext_ja4 = 0;
  for (WireReader w = exts; w.remaining() > 0;) {
    const uint16_t type = w.u16();
    const WireReader d = w.take(w.u16());
    if (!w.ok()) return false;
    if (is_grease(type)) continue;
    ++n_ext;
    if (type != 0x0000 && type != 0x0010 && n_ext_ja4 < kListMax) ext_ids[n_ext_ja4++] = type;
    switch (type) {
      case 0: sni = d, has_sni = true; break;
      case 10: groups = d, has_groups = true; break;
      case 11: formats = d, has_formats = true; break;
      case 13: sigalgs = d, has_sigalgs = true; break;
      case 16: alpn = d, has_alpn = true; break;
      case 35: info->ticket = d.remaining() > 0; break;
      case 41: info->psk = true; break;
      case 43: versions = d, has_versions = true; break;
      default: break;
    }
  }
  // The lists inside the extensions, past their own length prefixes.
  WireReader group_list = groups, format_list = formats, sigalg_list = sigalgs, version_list = versions;
  if (has_groups) group_list = group_list.take(group_list.u16());
  if (has_formats) format_list = format_list.take(format_list.u8());
  if (has_sigalgs) sigalg_list = sigalg_list.take(sigalg_list.u16());
  if (has_versions) version_list = version_list.take(version_list.u8());
  std::string_view host;
  if (has_sni) {  // server_name_list: type 0 (host_name) entries
    WireReader list = sni.take(sni.u16());
    while (list.remaining() > 0 && host.empty()) {
      const uint8_t type = list.u8();
      const WireReader name = list.take(list.u16());
      if (type == 0 && list.ok()) host = name.text();
    }
  }
  info->sid_len = static_cast<uint8_t>(sid.remaining());
  info->sid_hash = fnv1a(sid.bytes());
  uint16_t top = 0;
  for (WireReader v = version_list; v.remaining() >= 2;) {
    const uint16_t x = v.u16();
    if (!is_grease(x) && x > top) top = x;
  }
  info->max_version = top != 0 ? top : legacy;

  // 2. Fields.
  char vbuf[8];
  f.add_string("client_version", version_name(legacy, vbuf));
  if (has_versions) add_names(f, "versions", version_list, true);
  if (has_sni) f.add_string("sni", host, kSniMax);
  std::string_view first_alpn;
  if (has_alpn) {
    WireReader list = alpn.take(alpn.u16());
    const size_t at = f.raw_begin();
    bool ok = f.raw_append("[");
    for (size_t kept = 0; ok && list.remaining() > 0 && kept < kAlpnMax; ++kept) {
      const WireReader p = list.take(list.u8());
      if (!list.ok()) break;
      if (kept == 0) first_alpn = p.text();
      ok = (kept == 0 || f.raw_append(",")) && raw_string(f, p.text());
    }
    ok = ok && f.raw_append("]") && f.raw_commit("alpn", at, FieldKind::kRawJson);
    if (!ok) f.raw_abort(at);
  }
  uint16_t cipher_ids[kListMax];
  size_t n_ciphers = 0;
  for (WireReader w = ciphers; w.remaining() >= 2;) {
    const uint16_t v = w.u16();
    if (!is_grease(v) && n_ciphers < kListMax) cipher_ids[n_ciphers++] = v;
  }
  f.add_uint("cipher_suites", n_ciphers);
  f.add_uint("compression_methods", comp.remaining());
  f.add_uint("extensions", n_ext);
  if (has_groups) add_names(f, "groups", group_list, false);
  if (has_sigalgs) f.add_uint("signature_algorithms", sigalg_list.remaining() / 2);
  f.add_bool("session_id", sid.remaining() > 0);
  f.add_bool("session_ticket", info->ticket);
  f.add_bool("psk", info->psk);

  // 3. JA3 (tshark 4.0 tls.handshake.ja3): version,ciphers,extensions,groups,point formats; GREASE left out.
  c.begin(Crypto::Algo::kMd5);
  c.update(Dec(legacy).sv());
  c.update(",");
  ja3_list16(c, ciphers);
  c.update(",");
  bool first = true;
  for (WireReader w = exts; w.remaining() > 0;) {
    const uint16_t type = w.u16();
    w.take(w.u16());
    if (is_grease(type)) continue;
    if (!first) c.update("-");
    c.update(Dec(type).sv());
    first = false;
  }
  c.update(",");
  if (has_groups) ja3_list16(c, group_list);
  c.update(",");
  first = true;
  for (WireReader w = format_list; w.remaining() > 0; first = false) {
    if (!first) c.update("-");
    c.update(Dec(w.u8()).sv());
  }
  f.add_string("ja3", c.hex(32));

  // 4. JA4 (FoxIO): t<ver><d|i><ciphers><extensions><alpn>_<sorted ciphers>_<sorted extensions>_<sigalgs>.
  char ja4[36];
  ja4[0] = 't';
  const std::string_view ver = ja4_version(info->max_version);
  ja4[1] = ver[0];
  ja4[2] = ver[1];
  ja4[3] = has_sni ? 'd' : 'i';
  const size_t nc = n_ciphers < 99 ? n_ciphers : 99, ne = n_ext < 99 ? n_ext : 99;
  ja4[4] = static_cast<char>('0' + nc / 10);
  ja4[5] = static_cast<char>('0' + nc % 10);
  ja4[6] = static_cast<char>('0' + ne / 10);
  ja4[7] = static_cast<char>('0' + ne % 10);
  if (first_alpn.empty()) {
    ja4[8] = ja4[9] = '0';
  } else {
    const auto a = static_cast<uint8_t>(first_alpn.front()), z = static_cast<uint8_t>(first_alpn.back());
    if (alnum(a) && alnum(z)) {
      ja4[8] = static_cast<char>(a);
      ja4[9] = static_cast<char>(z);
    } else {  // non-alphanumeric: first and last characters of the value's hex
      char h[4];
      hex4(a, h);
      ja4[8] = h[2];
      hex4(z, h);
      ja4[9] = h[3];
    }
  }
  ja4[10] = '_';
  ja4_hash_sorted(c, cipher_ids, n_ciphers, WireReader(nullptr, 0), false, ja4 + 11);
  ja4[23] = '_';
  ja4_hash_sorted(c, ext_ids, n_ext_ja4, sigalg_list, has_sigalgs && sigalg_list.remaining() > 0, ja4 + 24);
  f.add_string("ja4", std::string_view(ja4, 36));
  f.add_uint("hello_bytes", body.size() + 4);
  return true;
}

bool parse_sslv2_hello(std::span<const std::byte> body, FieldList& f, ClientInfo* info) {
  WireReader r(body);
  if (r.u8() != 1) return false;  // msg_type CLIENT-HELLO
  const uint16_t version = r.u16();
  const uint16_t specs = r.u16(), sid = r.u16(), challenge = r.u16();
  if (!r.ok() || specs % 3 != 0 || sid > 32 || challenge < 16 || challenge > 32 ||
      r.remaining() < static_cast<size_t>(specs) + sid + challenge)
    return false;
  info->max_version = version;
  info->sid_len = static_cast<uint8_t>(sid);
  char vbuf[8];
  f.add_bool("sslv2", true);
  f.add_string("client_version", version_name(version, vbuf));
  f.add_uint("cipher_suites", specs / 3u);
  f.add_bool("session_id", sid > 0);
  f.add_uint("hello_bytes", body.size() + 2);
  return true;
}

bool parse_server_hello(std::span<const std::byte> body, FieldList& f, Crypto& c, ServerInfo* info) {
  WireReader r(body);
  const uint16_t legacy = r.u16();
  const WireReader random = r.take(32);
  const WireReader sid = r.take(r.u8());
  const uint16_t cipher = r.u16();
  const uint8_t compression = r.u8();
  if (!r.ok() || sid.remaining() > 32) return false;
  WireReader exts(nullptr, 0);
  if (r.remaining() > 0) {
    exts = r.take(r.u16());
    if (!r.ok()) return false;
  }
  info->retry = std::equal(random.cur(), random.cur() + 32, kRetryRandom);
  info->sid_len = static_cast<uint8_t>(sid.remaining());
  info->sid_hash = fnv1a(sid.bytes());
  info->version = legacy;
  std::string_view alpn;
  uint16_t group = 0;
  size_t n_ext = 0;
  c.begin(Crypto::Algo::kMd5);  // JA3S (tshark 4.0 tls.handshake.ja3s): version,cipher,extensions
  c.update(Dec(legacy).sv());
  c.update(",");
  c.update(Dec(cipher).sv());
  c.update(",");
  for (WireReader w = exts; w.remaining() > 0;) {
    const uint16_t type = w.u16();
    WireReader d = w.take(w.u16());
    if (!w.ok()) return false;
    if (is_grease(type)) continue;
    if (n_ext++ > 0) c.update("-");
    c.update(Dec(type).sv());
    switch (type) {
      case 16: {
        WireReader list = d.take(d.u16());
        const WireReader p = list.take(list.u8());
        if (list.ok()) alpn = p.text();
        break;
      }
      case 41: info->psk = true; break;
      case 43: info->version = d.u16(); break;
      case 51: group = d.u16(); break;  // ServerHello: group + key; HelloRetryRequest: the group asked for
      default: break;
    }
  }
  char vbuf[8];
  f.add_string("version", version_name(info->version, vbuf));
  const std::string_view name = cipher_name(cipher);
  char cbuf[6] = {'0', 'x'};
  hex4(cipher, cbuf + 2);
  f.add_string("cipher", name.empty() ? std::string_view(cbuf, 6) : name);
  f.add_uint("cipher_id", cipher);
  f.add_uint("compression", compression);
  if (!alpn.empty()) {
    const size_t at = f.raw_begin();
    if (!(raw_string(f, alpn) && f.raw_commit("alpn", at, FieldKind::kRawJson))) f.raw_abort(at);
  }
  if (group != 0) {
    const std::string_view g = group_name(group);
    hex4(group, cbuf + 2);
    f.add_string("group", g.empty() ? std::string_view(cbuf, 6) : g);
  }
  f.add_uint("extensions", n_ext);
  f.add_string("ja3s", c.hex(32));
  return true;
}

}  // namespace spanfeed::tls
