// TLS wire constants, names and the OpenSSL adapter's interface; internal to src/decode/tls/.
// Used on a worker lcore; nothing here allocates except Crypto (OpenSSL, at start-up and in d2i_X509).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "wire_reader.h"

#include "spanfeed/record.h"

namespace spanfeed::tls {

// Record content types (RFC 8446 5.1).
inline constexpr uint8_t kChangeCipherSpec = 20;
inline constexpr uint8_t kAlert = 21;
inline constexpr uint8_t kHandshake = 22;
inline constexpr uint8_t kApplicationData = 23;
inline constexpr uint8_t kHeartbeat = 24;
// Handshake message types.
inline constexpr uint8_t kClientHello = 1;
inline constexpr uint8_t kServerHello = 2;
inline constexpr uint8_t kNewSessionTicket = 4;
inline constexpr uint8_t kCertificate = 11;
inline constexpr uint8_t kServerKeyExchange = 12;
inline constexpr uint8_t kServerHelloDone = 14;
inline constexpr uint16_t kTls13 = 0x0304;
// A record's payload: 2^14 plaintext + 2048 expansion (RFC 5246 6.2.3; TLS 1.3 allows 2^14 + 256).
inline constexpr uint32_t kMaxRecordPayload = 16384 + 2048;

// GREASE values (RFC 8701): 0x?a?a with both bytes equal, as tshark's IS_GREASE_TLS.
inline constexpr bool is_grease(uint16_t v) { return (v & 0x0f0f) == 0x0a0a && (v & 0xff) == (v >> 8); }

// ---------------------------------------------------------------- names (names.cc)

// "TLS 1.2", "SSL 3.0", ... or "0x7f1c" (written into buf) for anything else.
std::string_view version_name(uint16_t v, char (&buf)[8]);
// IANA name of a cipher suite, empty when not in the table.
std::string_view cipher_name(uint16_t id);
// IANA name of a supported group, empty when not in the table.
std::string_view group_name(uint16_t id);
// RFC 8446 6 alert description name, empty when unknown.
std::string_view alert_name(uint8_t description);
// 4 lower-case hex digits.
void hex4(uint16_t v, char* out);

// ---------------------------------------------------------------- the OpenSSL adapter (crypto.cc)

// Digests (MD5 for JA3/JA3S, SHA-256 for JA4 and certificate fingerprints) and X.509 parsing: the only
// code of the decoder that calls OpenSSL. One per decoder (worker); the digest context is made once.
class Crypto {
 public:
  enum class Algo : uint8_t { kMd5, kSha256 };
  Crypto();
  ~Crypto();
  Crypto(const Crypto&) = delete;
  Crypto& operator=(const Crypto&) = delete;

  // Streaming digest: begin, update..., hex (lower-case, the first `hex_len` digits; at most 64).
  void begin(Algo a);
  void update(std::string_view s);
  std::string_view hex(size_t hex_len);

  // The certificate_list of a TLS <= 1.2 Certificate message: appends a JSON array of the first
  // `max_certs` certificates (as many as fit in `budget` bytes) to `out`. `*total`: certificates in the
  // message; `*described`: in the array; `*leaf_state`: 0 valid, 1 expired, 2 not yet valid at `now_s`
  // (capture time), 3 unparsable. False when the list is malformed.
  bool describe_chain(std::span<const std::byte> list, int64_t now_s, size_t max_certs, size_t budget,
                      std::string& out, uint32_t* total, uint32_t* described, uint8_t* leaf_state);

 private:
  struct CachedCert {
    uint64_t hash = 0;
    std::vector<std::byte> der;  // reserved at start-up: the bytes compared on a hit
    std::string json;            // the certificate's JSON without its validity (which depends on the time)
    int64_t not_before = 0;
    int64_t not_after = 0;
    bool used = false;
  };
  bool describe_cached(std::span<const std::byte> der, int64_t now_s, std::string& out, uint8_t* state);
  bool describe_one(std::span<const std::byte> der, std::string& out, int64_t* not_before, int64_t* not_after);

  void* md_ = nullptr;            // EVP_MD_CTX
  const void* md5_ = nullptr;     // EVP_MD, the process's (prepare_crypto)
  const void* sha256_ = nullptr;  // EVP_MD
  std::vector<CachedCert> cache_;
  size_t next_ = 0;
  size_t hit_room_ = 1024;  // cached JSON at most this long (reserved capacity)
  char hex_[65] = {};
};

// ---------------------------------------------------------------- hello parsing (hello.cc)

// What the record layer needs to know about a ClientHello beyond its fields.
struct ClientInfo {
  uint64_t sid_hash = 0;   // FNV-1a of the session id (resumption by id: the server echoes it)
  uint8_t sid_len = 0;
  bool ticket = false;     // a non-empty session_ticket extension (RFC 5077 resumption offered)
  bool psk = false;        // pre_shared_key extension (TLS 1.3 resumption offered)
  uint16_t max_version = 0;  // highest version offered (supported_versions, else legacy_version)
};

struct ServerInfo {
  uint64_t sid_hash = 0;
  uint8_t sid_len = 0;
  bool psk = false;        // pre_shared_key accepted (TLS 1.3 resumption)
  bool retry = false;      // a HelloRetryRequest (RFC 8446 4.1.4)
  uint16_t version = 0;    // negotiated: supported_versions, else legacy_version
};

// ClientHello body (after the 4-byte handshake header): fields into `f`. False: malformed.
bool parse_client_hello(std::span<const std::byte> body, FieldList& f, Crypto& c, ClientInfo* info);
// SSLv2-compatible CLIENT-HELLO (RFC 6101 E.1 / RFC 5246 E.2), the body after the 2-byte record header.
bool parse_sslv2_hello(std::span<const std::byte> body, FieldList& f, ClientInfo* info);
// ServerHello body: fields into `f`. False: malformed.
bool parse_server_hello(std::span<const std::byte> body, FieldList& f, Crypto& c, ServerInfo* info);

}  // namespace spanfeed::tls
