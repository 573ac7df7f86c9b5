// The TLS protocol's descriptor: its line in the registry's data (ports, signatures, record fields, options).
// Constant data, read from any thread; no allocation.
#include "tls.h"

#include "spanfeed/endpoint.h"
#include "spanfeed/protocol.h"

namespace spanfeed::tls {
namespace {

// HTTPS, HTTPS alternate, IMAPS, POP3S, SMTPS (submissions), LDAPS, AMQPS, Kubernetes API.
constexpr uint16_t kTcpPorts[] = {443, 8443, 993, 995, 465, 636, 5671, 6443};

// Looser than confirm(): a handshake record (TLS 1.0-1.3 record version) whose first message is a
// ClientHello or ServerHello, or an SSLv2 record header with a CLIENT-HELLO.
constexpr ProtocolSignature kSignatures[] = {
    {"^\\x16\\x03[\\x00-\\x04].{2}[\\x01\\x02]", Transport::kTcp},
    {"^[\\x80-\\xff].\\x01[\\x00\\x03]", Transport::kTcp},
};

constexpr RecordFieldSpec kFields[] = {
    {"request", "kind", "string", "`handshake` (one per handshake: ClientHello in the request, the server's answer in the response), or `close` (one per flow whose handshake completed, at its end, without a response: the application data counts below)"},
    {"request", "record_version", "string", "record-layer version of the client's first record (`TLS 1.0`, ...; `SSL 2.0` for an SSLv2-compatible hello)"},
    {"request", "client_version", "string", "ClientHello legacy_version (`TLS 1.2` for every TLS 1.3 client); unknown values as `0x....`"},
    {"request", "versions", "array", "supported_versions offered (GREASE left out), as `TLS 1.3`, ...; absent without the extension"},
    {"request", "sni", "string", "server_name (host_name), 255 B"},
    {"request", "alpn", "array", "ALPN protocols offered, in order (non-printable ones as `0x<hex>`), 8 at most"},
    {"request", "cipher_suites", "integer", "cipher suites offered (GREASE left out; SSLv2: cipher specs)"},
    {"request", "compression_methods", "integer", "compression methods offered"},
    {"request", "extensions", "integer", "extensions sent (GREASE left out)"},
    {"request", "groups", "array", "supported_groups offered (GREASE left out; IANA names, else `0x....`), 16 at most"},
    {"request", "signature_algorithms", "integer", "signature algorithms offered"},
    {"request", "session_id", "boolean", "a non-empty session id (resumption by id possible)"},
    {"request", "session_ticket", "boolean", "a non-empty session_ticket extension (RFC 5077 resumption offered)"},
    {"request", "psk", "boolean", "pre_shared_key extension (TLS 1.3 resumption offered)"},
    {"request", "ja3", "string", "JA3 MD5, as tshark 4.0 `tls.handshake.ja3` (GREASE left out)"},
    {"request", "ja4", "string", "JA4 (FoxIO spec), client fingerprint: `t13d1516h2_8daaf6152771_e5627efa2ab1`"},
    {"request", "hello_bytes", "integer", "ClientHello size with its handshake header (SSLv2: record size)"},
    {"request", "sslv2", "boolean", "the ClientHello came in an SSLv2-compatible record"},
    {"request", "alert", "string", "the client's alert that ended the handshake (`unknown_ca`, ...; `encrypted` after ChangeCipherSpec)"},
    {"request", "alert_level", "string", "`warning` or `fatal`"},
    {"request", "app_bytes_client", "integer", "`close`: application_data payload bytes client to server after the handshake (TLS 1.3: also post-handshake messages, which are encrypted)"},
    {"request", "app_bytes_server", "integer", "`close`: the same, server to client"},
    {"request", "app_records_client", "integer", "`close`: application_data records client to server"},
    {"request", "app_records_server", "integer", "`close`: application_data records server to client"},
    {"request", "duration_us", "integer", "`close`: from the first ClientHello record to the flow's end"},
    {"response", "version", "string", "negotiated version: supported_versions of the ServerHello, else its legacy_version"},
    {"response", "cipher", "string", "chosen cipher suite, IANA name (unknown ones as `0x....`)"},
    {"response", "cipher_id", "integer", "chosen cipher suite, number"},
    {"response", "compression", "integer", "chosen compression method (0: none)"},
    {"response", "alpn", "string", "ALPN protocol selected in the ServerHello (TLS <= 1.2; TLS 1.3 selects it encrypted)"},
    {"response", "group", "string", "key exchange group: TLS 1.3 key_share, TLS <= 1.2 ECDHE ServerKeyExchange"},
    {"response", "extensions", "integer", "extensions in the ServerHello"},
    {"response", "ja3s", "string", "JA3S MD5, as tshark 4.0 `tls.handshake.ja3s`"},
    {"response", "hello_retry", "boolean", "the server sent a HelloRetryRequest first (the record has the second ClientHello)"},
    {"response", "resumed", "boolean", "session resumed: TLS 1.3 PSK accepted; TLS <= 1.2 abbreviated handshake (ChangeCipherSpec without certificates)"},
    {"response", "resumption", "string", "how: `psk` (TLS 1.3), `ticket` (a ticket was offered), `session_id`"},
    {"response", "session_id_echoed", "boolean", "TLS <= 1.2: the ServerHello echoed the client's non-empty session id"},
    {"response", "ticket_issued", "boolean", "TLS <= 1.2: NewSessionTicket sent"},
    {"response", "cert_count", "integer", "certificates in the server's Certificate message (TLS <= 1.2; TLS 1.3 sends them encrypted)"},
    {"response", "certificates", "array", "leaf first, 4 at most (as many as fit the record): `subject`, `issuer` (RFC 2253 order), `serial` (hex), `not_before`, `not_after`, `san` (DNS names, 8 at most), `sha256` (of the DER), `key` (`rsa`, `ec`, `ed25519`, ...), `bits`, `validity` (`valid`, `expired`, `not_yet_valid` at capture time)"},
    {"response", "cert_expired", "boolean", "the leaf certificate was expired or not yet valid at capture time"},
    {"response", "alert", "string", "the server's alert that ended the handshake (`handshake_failure`, `protocol_version`, ...)"},
    {"response", "alert_level", "string", "`warning` or `fatal`"},
};

constexpr ProtocolOption kOptions[] = {
    {"buffers", 64, 1, 4096,
     "buffers per worker joining handshake messages split across records or packets (one per direction while "
     "one is incomplete; none free: the message's fields are lost, `decode_carry_pool_exhausted_total`)"},
    {"max_handshake_bytes", 65536, 16384, 1u << 20,
     "size of each such buffer: the longest ClientHello / ServerHello / certificate chain decoded (longer: "
     "skipped, `decode_carry_overflow_total`); memory per worker = buffers x this"},
};

// RED endpoint: "handshake" and the SNI (top N; "handshake" alone without one). Close records
// (one per flow, no request/response) are not requests: not counted.
bool red_endpoint(const Record& r, EndpointWriter& out) {
  if (request_string(r, "kind") == "close") return false;
  out.add("handshake");
  if (const std::string_view sni = request_string(r, "sni"); !sni.empty()) {
    out.sep();
    out.add_top(sni);
  }
  return true;
}

}  // namespace

extern const ProtocolDescriptor kDescriptor;
const ProtocolDescriptor kDescriptor{
    .id = Protocol::kTls,
    .name = "tls",
    .title = "TLS handshakes",
    .tcp_ports = kTcpPorts,
    .signatures = kSignatures,
    .confirm = confirm,
    .make = make_decoder,
    .fields = kFields,
    .summary_field = "sni",
    .options = kOptions,
    .endpoint = red_endpoint,
    .prepare = prepare_crypto,
};

}  // namespace spanfeed::tls
