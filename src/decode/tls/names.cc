// TLS names: protocol versions, cipher suites, supported groups and alert descriptions (IANA registries).
// Constant tables read on a worker lcore; no allocation.
#include "tls_wire.h"

namespace spanfeed::tls {
namespace {

struct Named {
  uint16_t id;
  std::string_view name;
};

// The suites seen in practice (OpenSSL, BoringSSL, NSS, SChannel defaults); others print as 0x....
constexpr Named kCiphers[] = {
    {0x0005, "TLS_RSA_WITH_RC4_128_SHA"},
    {0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"},
    {0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA"},
    {0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"},
    {0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"},
    {0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"},
    {0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256"},
    {0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256"},
    {0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"},
    {0x006b, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"},
    {0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256"},
    {0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384"},
    {0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"},
    {0x009f, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"},
    {0x00ff, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"},
    {0x1301, "TLS_AES_128_GCM_SHA256"},
    {0x1302, "TLS_AES_256_GCM_SHA384"},
    {0x1303, "TLS_CHACHA20_POLY1305_SHA256"},
    {0x1304, "TLS_AES_128_CCM_SHA256"},
    {0x1305, "TLS_AES_128_CCM_8_SHA256"},
    {0x5600, "TLS_FALLBACK_SCSV"},
    {0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"},
    {0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"},
    {0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"},
    {0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"},
    {0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"},
    {0xc024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"},
    {0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"},
    {0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"},
    {0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
    {0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
    {0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
    {0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"},
    {0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
    {0xcca9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
    {0xccaa, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
};

constexpr Named kGroups[] = {
    {23, "secp256r1"},       {24, "secp384r1"},         {25, "secp521r1"},
    {29, "x25519"},          {30, "x448"},              {31, "brainpoolP256r1tls13"},
    {32, "brainpoolP384r1tls13"}, {33, "brainpoolP512r1tls13"},
    {256, "ffdhe2048"},      {257, "ffdhe3072"},        {258, "ffdhe4096"},
    {259, "ffdhe6144"},      {260, "ffdhe8192"},        {0x0200, "MLKEM512"},
    {0x0201, "MLKEM768"},    {0x0202, "MLKEM1024"},     {0x11eb, "SecP256r1MLKEM768"},
    {0x11ec, "X25519MLKEM768"}, {0x11ed, "SecP384r1MLKEM1024"}, {0x6399, "X25519Kyber768Draft00"},
};

struct Alert {
  uint8_t id;
  std::string_view name;
};
constexpr Alert kAlerts[] = {
    {0, "close_notify"},           {10, "unexpected_message"},    {20, "bad_record_mac"},
    {21, "decryption_failed"},     {22, "record_overflow"},       {30, "decompression_failure"},
    {40, "handshake_failure"},     {41, "no_certificate"},        {42, "bad_certificate"},
    {43, "unsupported_certificate"}, {44, "certificate_revoked"}, {45, "certificate_expired"},
    {46, "certificate_unknown"},   {47, "illegal_parameter"},     {48, "unknown_ca"},
    {49, "access_denied"},         {50, "decode_error"},          {51, "decrypt_error"},
    {60, "export_restriction"},    {70, "protocol_version"},      {71, "insufficient_security"},
    {80, "internal_error"},        {86, "inappropriate_fallback"}, {90, "user_canceled"},
    {100, "no_renegotiation"},     {109, "missing_extension"},    {110, "unsupported_extension"},
    {111, "certificate_unobtainable"}, {112, "unrecognized_name"},
    {113, "bad_certificate_status_response"}, {114, "bad_certificate_hash_value"},
    {115, "unknown_psk_identity"}, {116, "certificate_required"}, {120, "no_application_protocol"},
};

template <typename T, size_t N, typename K>
std::string_view find(const T (&table)[N], K id) {
  for (const T& e : table) {
    if (e.id == id) return e.name;
  }
  return {};
}

}  // namespace

void hex4(uint16_t v, char* out) {
  constexpr char kHex[] = "0123456789abcdef";
  out[0] = kHex[v >> 12 & 15];
  out[1] = kHex[v >> 8 & 15];
  out[2] = kHex[v >> 4 & 15];
  out[3] = kHex[v & 15];
}

std::string_view version_name(uint16_t v, char (&buf)[8]) {
  switch (v) {
    case 0x0002: return "SSL 2.0";
    case 0x0300: return "SSL 3.0";
    case 0x0301: return "TLS 1.0";
    case 0x0302: return "TLS 1.1";
    case 0x0303: return "TLS 1.2";
    case 0x0304: return "TLS 1.3";
    default: break;
  }
  buf[0] = '0';
  buf[1] = 'x';
  hex4(v, buf + 2);
  return {buf, 6};
}

std::string_view cipher_name(uint16_t id) { return find(kCiphers, id); }
std::string_view group_name(uint16_t id) { return find(kGroups, id); }
std::string_view alert_name(uint8_t description) { return find(kAlerts, description); }

}  // namespace spanfeed::tls
