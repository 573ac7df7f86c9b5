// The TLS decoder's OpenSSL adapter: MD5 / SHA-256 digests and X.509 certificates (d2i_X509) to JSON.
// Runs on a worker lcore. The digest context is made once (start-up); OpenSSL allocates while it parses a
// certificate (d2i_X509, the SAN list, UTF-8 conversions): only for Certificate messages, bounded in count.
// The only decoder file that includes OpenSSL headers (STYLE.md: heavy libraries at the edge).
#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "tls.h"
#include "tls_wire.h"

namespace spanfeed::tls {
namespace {

constexpr size_t kNameMax = 256;   // subject / issuer text kept
constexpr size_t kSanMax = 8;      // DNS names kept per certificate
constexpr size_t kSerialMax = 32;  // serial bytes kept (RFC 5280 4.1.2.2: at most 20)
constexpr size_t kCacheEntries = 32;   // certificates remembered per worker (a few servers' chains)
constexpr size_t kCacheDerMax = 4096;  // larger certificates are described every time

EVP_MD_CTX* ctx_of(void* p) { return static_cast<EVP_MD_CTX*>(p); }

void append_hex(const unsigned char* p, size_t n, std::string& out) {
  constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) {
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 15];
  }
}

// An ASN1 string as UTF-8 (BMPString and the like converted by OpenSSL), cut to `max` bytes.
void append_asn1_text(const ASN1_STRING* s, std::string& text, size_t max) {
  unsigned char* utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n > 0) text.append(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n) < max ? n : max);
  OPENSSL_free(utf8);
}

// RFC 2253 order (most specific first): "CN=corpus.test,O=Corpus Test", cut to kNameMax.
void append_name(const X509_NAME* name, std::string& out) {
  std::string text;
  for (int i = X509_NAME_entry_count(name) - 1; i >= 0 && text.size() < kNameMax; --i) {
    const X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    const int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    const char* sn = nid != NID_undef ? OBJ_nid2sn(nid) : "?";
    if (!text.empty()) text += ',';
    text += sn;
    text += '=';
    append_asn1_text(X509_NAME_ENTRY_get_data(e), text, kNameMax);
  }
  if (text.size() > kNameMax) text.resize(kNameMax);
  append_json_string(text, out);
}

// ISO-8601 UTC (or null) into out; returns the time as epoch seconds (`none` when absent or unparsable).
int64_t append_time(const ASN1_TIME* t, std::string& out, int64_t none) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    out += "null";
    return none;
  }
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "\"%04d-%02d-%02dT%02d:%02d:%02dZ\"", tm.tm_year + 1900,
                              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  out.append(buf, n > 0 ? static_cast<size_t>(n) : 0);
  return static_cast<int64_t>(timegm(&tm));
}

std::string_view key_type(int id) {
  switch (id) {
    case EVP_PKEY_RSA: return "rsa";
    case EVP_PKEY_RSA_PSS: return "rsa-pss";
    case EVP_PKEY_EC: return "ec";
    case EVP_PKEY_DSA: return "dsa";
    case EVP_PKEY_ED25519: return "ed25519";
    case EVP_PKEY_ED448: return "ed448";
    default: return "other";
  }
}

}  // namespace

namespace {

// The digests, fetched once for the process (OpenSSL 3 would look them up, under a lock, on every
// EVP_md5() init). Fetched objects are immutable and shared by every worker's contexts; freed at
// exit, before OpenSSL's own clean-up (registered earlier, by the first fetch).
struct Digests {
  EVP_MD* md5 = EVP_MD_fetch(nullptr, "MD5", nullptr);
  EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  ~Digests() {
    EVP_MD_free(md5);
    EVP_MD_free(sha256);
  }
};

const Digests& digests() {
  static const Digests d;
  return d;
}

}  // namespace

void prepare_crypto() { digests(); }

Crypto::Crypto()
    : md_(EVP_MD_CTX_new()), md5_(digests().md5), sha256_(digests().sha256), cache_(kCacheEntries) {
  for (CachedCert& c : cache_) {
    c.der.reserve(kCacheDerMax);
    c.json.reserve(1024);
  }
}
Crypto::~Crypto() { EVP_MD_CTX_free(ctx_of(md_)); }

void Crypto::begin(Algo a) {
  const EVP_MD* md = static_cast<const EVP_MD*>(a == Algo::kMd5 ? md5_ : sha256_);
  if (md == nullptr) md = a == Algo::kMd5 ? EVP_md5() : EVP_sha256();
  if (md_ != nullptr) EVP_DigestInit_ex(ctx_of(md_), md, nullptr);
}

void Crypto::update(std::string_view s) {
  if (md_ != nullptr && !s.empty()) EVP_DigestUpdate(ctx_of(md_), s.data(), s.size());
}

std::string_view Crypto::hex(size_t hex_len) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (md_ == nullptr || EVP_DigestFinal_ex(ctx_of(md_), md, &len) != 1) return {};
  constexpr char kHex[] = "0123456789abcdef";
  size_t n = 0;
  for (unsigned i = 0; i < len && n + 2 <= sizeof hex_ - 1; ++i) {
    hex_[n++] = kHex[md[i] >> 4];
    hex_[n++] = kHex[md[i] & 15];
  }
  return {hex_, hex_len < n ? hex_len : n};
}

bool Crypto::describe_one(std::span<const std::byte> der, std::string& out, int64_t* not_before, int64_t* not_after) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (x == nullptr) return false;
  out += "{\"subject\":";
  append_name(X509_get_subject_name(x), out);
  out += ",\"issuer\":";
  append_name(X509_get_issuer_name(x), out);
  out += ",\"serial\":\"";
  if (const ASN1_INTEGER* sn = X509_get0_serialNumber(x); sn != nullptr) {
    const int n = ASN1_STRING_length(sn);
    append_hex(ASN1_STRING_get0_data(sn), n > 0 ? (static_cast<size_t>(n) < kSerialMax ? n : kSerialMax) : 0, out);
  }
  out += "\",\"not_before\":";
  *not_before = append_time(X509_get0_notBefore(x), out, INT64_MIN);
  out += ",\"not_after\":";
  *not_after = append_time(X509_get0_notAfter(x), out, INT64_MAX);
  out += ",\"san\":[";
  if (auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr))) {
    size_t kept = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(names) && kept < kSanMax; ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
      if (g->type != GEN_DNS) continue;
      std::string dns;
      append_asn1_text(g->d.dNSName, dns, 253);
      if (kept++ > 0) out += ',';
      append_json_string(dns, out);
    }
    GENERAL_NAMES_free(names);
  }
  out += "],\"sha256\":\"";
  begin(Algo::kSha256);
  update({reinterpret_cast<const char*>(der.data()), der.size()});
  out += hex(64);
  out += "\",\"key\":\"";
  const EVP_PKEY* pk = X509_get0_pubkey(x);
  out += pk != nullptr ? key_type(EVP_PKEY_get_base_id(pk)) : "none";
  out += "\",\"bits\":";
  out += std::to_string(pk != nullptr ? EVP_PKEY_get_bits(pk) : 0);
  X509_free(x);
  return true;
}

// The JSON of a certificate, from the cache when these exact DER bytes were described before (servers send the
// same chain on every handshake: d2i_X509 and its key decoding are most of the decoder's cost otherwise).
bool Crypto::describe_cached(std::span<const std::byte> der, int64_t now_s, std::string& out, uint8_t* state) {
  uint64_t h = 1469598103934665603ull;
  for (std::byte b : der) h = (h ^ static_cast<uint8_t>(b)) * 1099511628211ull;
  CachedCert* hit = nullptr;
  for (CachedCert& c : cache_) {
    if (c.used && c.hash == h && c.der.size() == der.size() && std::memcmp(c.der.data(), der.data(), der.size()) == 0) {
      hit = &c;
      break;
    }
  }
  std::string fresh;
  int64_t nb = 0, na = 0;
  const std::string* json = nullptr;
  if (hit != nullptr) {
    json = &hit->json;
    nb = hit->not_before;
    na = hit->not_after;
  } else {
    if (!describe_one(der, fresh, &nb, &na)) {
      *state = 3;
      return false;
    }
    json = &fresh;
    if (der.size() <= kCacheDerMax && fresh.size() <= hit_room_) {
      CachedCert& c = cache_[next_++ % cache_.size()];  // round robin: the oldest goes
      c.used = true;
      c.hash = h;
      c.der.assign(der.begin(), der.end());
      c.json = fresh;
      c.not_before = nb;
      c.not_after = na;
    }
  }
  out += *json;
  *state = now_s > na ? 1 : now_s < nb ? 2 : 0;
  out += ",\"validity\":\"";
  out += *state == 1 ? "expired" : *state == 2 ? "not_yet_valid" : "valid";
  out += "\"}";
  return true;
}

bool Crypto::describe_chain(std::span<const std::byte> list, int64_t now_s, size_t max_certs, size_t budget,
                            std::string& out, uint32_t* total, uint32_t* described, uint8_t* leaf_state) {
  *total = 0;
  *described = 0;
  *leaf_state = 3;
  WireReader r(list);
  WireReader all = r.take(r.u24());
  if (!r.ok()) return false;
  out += '[';
  std::string one;
  bool room = true;
  while (all.remaining() > 0) {
    WireReader c = all.take(all.u24());
    if (!all.ok()) break;
    const uint32_t index = (*total)++;
    if (!room || index >= max_certs) continue;
    one.clear();
    uint8_t state = 3;
    const bool parsed = describe_cached(c.bytes(), now_s, one, &state);
    if (index == 0) *leaf_state = state;
    if (!parsed) continue;
    if (out.size() + one.size() + 2 > budget) {
      room = false;  // the arena is full: later certificates are counted, not described
      continue;
    }
    if (*described > 0) out += ',';
    out += one;
    ++*described;
  }
  out += ']';
  return all.ok();
}

}  // namespace spanfeed::tls
