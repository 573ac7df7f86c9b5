// TLS decoder tests: crafted handshakes (split hellos, alerts, resumption, HelloRetryRequest, a 20 KiB ClientHello,
// SSLv2, garbage, gaps) through the RecordBuilder, exact field values; JA3 / JA4 against independent oracles.
// Runs in the test thread; allocates freely (tests only).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "decode_test_util.h"

namespace spanfeed {
namespace {

using dectest::Harness;
using dectest::kMs;
using dectest::kT0;
using json = nlohmann::json;

constexpr Direction kC2S = Direction::kClientToServer;

std::string u8(size_t v) { return std::string(1, static_cast<char>(v)); }
std::string u16(size_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }
std::string u24(size_t v) { return {static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)}; }
std::string list16(const std::vector<uint16_t>& v) {
  std::string s;
  for (uint16_t x : v) s += u16(x);
  return s;
}
std::string ext(uint16_t type, const std::string& data) { return u16(type) + u16(data.size()) + data; }
std::string sni(const std::string& host) { return ext(0, u16(host.size() + 3) + u8(0) + u16(host.size()) + host); }
std::string alpn(const std::vector<std::string>& protos) {
  std::string l;
  for (const auto& p : protos) l += u8(p.size()) + p;
  return ext(16, u16(l.size()) + l);
}
std::string groups(const std::vector<uint16_t>& g) { return ext(10, u16(2 * g.size()) + list16(g)); }
std::string formats() { return ext(11, std::string("\x01\x00", 2)); }
std::string sigalgs(const std::vector<uint16_t>& a) { return ext(13, u16(2 * a.size()) + list16(a)); }
std::string versions(const std::vector<uint16_t>& v) { return ext(43, u8(2 * v.size()) + list16(v)); }
std::string key_share(uint16_t group, size_t key_len) {
  return ext(51, u16(4 + key_len) + u16(group) + u16(key_len) + std::string(key_len, 'k'));
}

std::string handshake(uint8_t type, const std::string& body) { return u8(type) + u24(body.size()) + body; }
// TLS records of `type` carrying `payload`, 16 KiB at most each.
std::string records(uint8_t type, const std::string& payload, uint16_t version = 0x0303) {
  std::string out;
  for (size_t at = 0; at < payload.size() || (at == 0 && payload.empty()); at += 16384) {
    const std::string part = payload.substr(at, 16384);
    out += u8(type) + u16(version) + u16(part.size()) + part;
    if (payload.empty()) break;
  }
  return out;
}
std::string client_hello(const std::vector<uint16_t>& ciphers, const std::string& sid, const std::string& exts) {
  const std::string body = u16(0x0303) + std::string(32, '\x11') + u8(sid.size()) + sid + u16(2 * ciphers.size()) +
                           list16(ciphers) + std::string("\x01\x00", 2) + u16(exts.size()) + exts;
  return handshake(1, body);
}
std::string server_hello(uint16_t cipher, const std::string& sid, const std::string& exts, bool retry = false) {
  std::string random(32, '\x22');
  if (retry) {
    random = std::string("\xcf\x21\xad\x74\xe5\x9a\x61\x11\xbe\x1d\x8c\x02\x1e\x65\xb8\x91\xc2\xa2\x11\x16\x7a\xbb\x8c"
                         "\x5e\x07\x9e\x09\xe2\xc8\xa8\x33\x9c", 32);
  }
  return handshake(2, u16(0x0303) + random + u8(sid.size()) + sid + u16(cipher) + u8(0) + u16(exts.size()) + exts);
}
std::string sh13_exts(bool psk = false) {
  return ext(43, u16(0x0304)) + ext(51, u16(29) + u16(32) + std::string(32, 's')) + (psk ? ext(41, u16(0)) : "");
}
std::string ccs() { return records(20, "\x01"); }
std::string encrypted(uint8_t type, size_t n) { return records(type, std::string(n, '\xee')); }
std::string alert_rec(uint8_t level, uint8_t desc) { return records(21, u8(level) + u8(desc)); }

// A TLS 1.3 ClientHello with GREASE in ciphers, extensions and groups (left out of JA3 / JA4 / counts).
std::string modern_hello(const std::string& host, size_t key_len = 32) {
  const std::string exts = ext(0x1a1a, "") + sni(host) + alpn({"h2", "http/1.1"}) + groups({0x2a2a, 29, 23}) +
                           formats() + sigalgs({0x0403, 0x0804}) + versions({0x0304, 0x0303}) + key_share(29, key_len);
  return client_hello({0x0a0a, 0x1301, 0x1302, 0xc02f, 0x00ff}, std::string(32, 's'), exts);
}

// JA3 string "771,4865-4866-49199-255,0-16-10-11-13-43-51,29-23,0": MD5 by Python's hashlib.
constexpr const char* kModernJa3 = "82721638efef13052c5fbbc4fb84c107";
// JA4 b / c: SHA-256 of "00ff,1301,1302,c02f" and "000a,000b,000d,002b,0033_0403,0804" (hashlib), 12 digits.
constexpr const char* kModernJa4 = "t13d0407h2_09ff34cf8194_078775ef5e04";

// A whole TLS 1.3 handshake: ClientHello (in pieces of `step` bytes; 0: one segment), ServerHello + encrypted
// flight, the client's Finished (the handshake ends there), then application data both ways.
void tls13(Harness& h, const std::string& hello, uint64_t t, size_t step = 0, bool psk = false) {
  const std::string ch = records(22, hello, 0x0301);
  h.dribble(kC2S, ch, step > 0 ? step : ch.size(), t);
  h.s2c(records(22, server_hello(0x1302, std::string(32, 's'), sh13_exts(psk))) + ccs() + encrypted(23, 900),
        t + 2 * kMs);
  h.c2s(ccs() + encrypted(23, 53), t + 5 * kMs);
  h.c2s(encrypted(23, 100), t + 6 * kMs);
  h.s2c(encrypted(23, 300) + encrypted(23, 200), t + 7 * kMs);
}

TEST(Tls, ClientHelloSplitOverThreeSegments) {
  Harness h;
  h.open(443);
  const std::string hello = modern_hello("www.example.org");
  const size_t wire = hello.size() + 5;
  tls13(h, hello, kT0, wire / 3 + 1);  // 3 segments: cuts inside the extensions
  ASSERT_EQ(h.size(), 1u);             // the handshake record, at the client's Finished
  const json r = h.rec(0);
  EXPECT_EQ(r["protocol"], "tls");
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["latency_us"], 5000);  // ClientHello -> client Finished
  const json& q = r["request"];
  EXPECT_EQ(q["kind"], "handshake");
  EXPECT_EQ(q["record_version"], "TLS 1.0");
  EXPECT_EQ(q["client_version"], "TLS 1.2");
  EXPECT_EQ(q["versions"], json::parse(R"(["TLS 1.3","TLS 1.2"])"));
  EXPECT_EQ(q["sni"], "www.example.org");
  EXPECT_EQ(q["alpn"], json::parse(R"(["h2","http/1.1"])"));
  EXPECT_EQ(q["cipher_suites"], 4);
  EXPECT_EQ(q["extensions"], 7);
  EXPECT_EQ(q["groups"], json::parse(R"(["x25519","secp256r1"])"));
  EXPECT_EQ(q["signature_algorithms"], 2);
  EXPECT_EQ(q["session_id"], true);
  EXPECT_EQ(q["session_ticket"], false);
  EXPECT_EQ(q["ja3"], kModernJa3);
  EXPECT_EQ(q["ja4"], kModernJa4);
  EXPECT_EQ(q["hello_bytes"], hello.size());
  const json& a = r["response"];
  EXPECT_EQ(a["version"], "TLS 1.3");
  EXPECT_EQ(a["cipher"], "TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(a["cipher_id"], 0x1302);
  EXPECT_EQ(a["group"], "x25519");
  EXPECT_EQ(a["resumed"], false);
  EXPECT_FALSE(a.contains("certificates"));
  h.close(kT0 + 20 * kMs);
  ASSERT_EQ(h.size(), 2u);
  const json c = h.rec(1);
  EXPECT_EQ(c["request"]["kind"], "close");
  EXPECT_EQ(c["request"]["app_bytes_client"], 100);  // the Finished is not application data
  EXPECT_EQ(c["request"]["app_bytes_server"], 500);
  EXPECT_EQ(c["request"]["app_records_server"], 2);
  EXPECT_EQ(c["request"]["duration_us"], 20000);
  EXPECT_TRUE(c["response"].is_null());
  h.expect_ledger();
}

TEST(Tls, SameHandshakeByteByByteGivesTheSameRecord) {
  Harness one, bytes;
  one.open(443);
  bytes.open(443);
  tls13(one, modern_hello("a.example"), kT0);
  tls13(bytes, modern_hello("a.example"), kT0, 1);
  ASSERT_EQ(one.size(), 1u);
  ASSERT_EQ(bytes.size(), 1u);
  json x = one.rec(0), y = bytes.rec(0);
  x.erase("id");
  y.erase("id");
  EXPECT_EQ(x, y);
}

TEST(Tls, Ja4OfChromeMatchesTheFoxIoExample) {
  // The ClientHello of the JA4 spec's example (Chrome): 15 ciphers, 16 extensions, ALPN h2.
  const std::string exts = sni("example.com") + ext(0x17, "") + ext(0xff01, u8(0)) + groups({29, 23, 24}) +
                           formats() + ext(0x23, "") + alpn({"h2", "http/1.1"}) + ext(5, std::string("\x01\0\0\0\0", 5)) +
                           sigalgs({0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601}) + ext(0x12, "") +
                           key_share(29, 32) + ext(0x2d, std::string("\x01\x01", 2)) + versions({0x0304, 0x0303}) +
                           ext(0x1b, std::string("\x02\x00\x02", 3)) + ext(0x15, std::string(8, '\0')) +
                           ext(0x4469, std::string("\x00\x03\x02h2", 6));
  const std::string ch = client_hello({0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
                                       0xc014, 0x009c, 0x009d, 0x002f, 0x0035},
                                      "", exts);
  Harness h;
  h.open(443);
  h.c2s(records(22, ch, 0x0301), kT0);
  h.close(kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);  // no answer: a timeout record with the ClientHello
  EXPECT_EQ(h.rec(0)["status"], "timeout");
  EXPECT_EQ(h.rec(0)["request"]["ja4"], "t13d1516h2_8daaf6152771_e5627efa2ab1");
  h.expect_ledger();
}

TEST(Tls, ServerAlertEndsTheHandshakeAsError) {
  Harness h;
  h.open(443);
  h.c2s(records(22, modern_hello("old.example"), 0x0301), kT0);
  h.s2c(alert_rec(2, 70), kT0 + 3 * kMs);  // protocol_version
  ASSERT_EQ(h.size(), 1u);
  const json r = h.rec(0);
  EXPECT_EQ(r["status"], "error");
  EXPECT_EQ(r["latency_us"], 3000);
  EXPECT_EQ(r["response"]["alert"], "protocol_version");
  EXPECT_EQ(r["response"]["alert_level"], "fatal");
  EXPECT_EQ(r["request"]["sni"], "old.example");
  h.close(kT0 + 4 * kMs);
  EXPECT_EQ(h.size(), 1u);  // no session record after a failed handshake
  h.expect_ledger();
}

// TLS 1.2 full handshake with a certificate-less flight, then the client refusing it (unknown_ca).
TEST(Tls, ClientAlertAfterServerFlight) {
  Harness h;
  h.open(8443);
  h.c2s(records(22, client_hello({0xc02f}, "", sni("x.example") + groups({23}) + formats())), kT0);
  h.s2c(records(22, server_hello(0xc02f, std::string(32, 'n'), ext(0xff01, u8(0))) +
                        handshake(12, u8(3) + u16(23) + u8(65) + std::string(65, 'p')) + handshake(14, "")),
        kT0 + kMs);
  h.c2s(alert_rec(2, 48), kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 1u);
  const json r = h.rec(0);
  EXPECT_EQ(r["status"], "error");
  EXPECT_EQ(r["request"]["alert"], "unknown_ca");
  EXPECT_EQ(r["response"]["version"], "TLS 1.2");
  EXPECT_EQ(r["response"]["cipher"], "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
  EXPECT_EQ(r["response"]["group"], "secp256r1");  // from the ServerKeyExchange
  h.close(kT0 + 3 * kMs);
  h.expect_ledger();
}

TEST(Tls, ResumedTls12SessionByTicket) {
  Harness h;
  h.open(443);
  const std::string sid(32, 'r');
  h.c2s(records(22, client_hello({0xc02f, 0xc030}, sid, sni("r.example") + ext(35, std::string(160, 't')))), kT0);
  // Abbreviated handshake: ServerHello echoing the id, the server's ChangeCipherSpec and Finished at once.
  h.s2c(records(22, server_hello(0xc030, sid, ext(35, ""))) + ccs() + encrypted(22, 40), kT0 + 4 * kMs);
  ASSERT_EQ(h.size(), 1u);  // the server's Finished ends the handshake
  const json r = h.rec(0);
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["latency_us"], 4000);
  EXPECT_EQ(r["request"]["session_ticket"], true);
  EXPECT_EQ(r["response"]["resumed"], true);
  EXPECT_EQ(r["response"]["resumption"], "ticket");
  EXPECT_EQ(r["response"]["session_id_echoed"], true);
  h.c2s(ccs() + encrypted(22, 40) + encrypted(23, 77), kT0 + 5 * kMs);
  h.close(kT0 + 6 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(1)["request"]["app_bytes_client"], 77);
  h.expect_ledger();
}

TEST(Tls, ResumedTls13SessionByPsk) {
  Harness h;
  h.open(443);
  tls13(h, modern_hello("p.example"), kT0, 0, true);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["response"]["resumed"], true);
  EXPECT_EQ(h.rec(0)["response"]["resumption"], "psk");
  h.close(kT0 + 9 * kMs);
  h.expect_ledger();
}

TEST(Tls, HelloRetryRequestGivesOneRecordWithTheSecondHello) {
  Harness h;
  h.open(443);
  h.c2s(records(22, modern_hello("first.example"), 0x0301), kT0);
  h.s2c(records(22, server_hello(0x1301, std::string(32, 's'), ext(43, u16(0x0304)) + ext(51, u16(24)), true)) + ccs(),
        kT0 + kMs);
  h.c2s(ccs() + records(22, modern_hello("second.example")), kT0 + 2 * kMs);
  h.s2c(records(22, server_hello(0x1301, std::string(32, 's'), sh13_exts())) + encrypted(23, 700), kT0 + 3 * kMs);
  h.c2s(encrypted(23, 53), kT0 + 4 * kMs);
  ASSERT_EQ(h.size(), 1u);
  const json r = h.rec(0);
  EXPECT_EQ(r["request"]["sni"], "second.example");
  EXPECT_EQ(r["response"]["hello_retry"], true);
  EXPECT_EQ(r["response"]["version"], "TLS 1.3");
  EXPECT_EQ(r["latency_us"], 4000);
  h.close(kT0 + 5 * kMs);
  h.expect_ledger();
}

TEST(Tls, ClientHelloOver16KiBAcrossRecordsAndSegments) {
  Harness h;
  h.open(443);
  const std::string hello = modern_hello("pq.example", 20000);  // a post-quantum sized key share
  ASSERT_GT(hello.size(), 16384u);
  tls13(h, hello, kT0, 1448);  // 2 records, 15 segments
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["request"]["sni"], "pq.example");
  EXPECT_EQ(h.rec(0)["request"]["hello_bytes"], hello.size());
  EXPECT_EQ(h.rec(0)["request"]["ja3"], kModernJa3);
  EXPECT_FALSE(h.rec(0)["request"].contains("flags"));
  h.close(kT0 + 9 * kMs);
  EXPECT_EQ(h.counters().carry_overflow, 0u);
  h.expect_ledger();
}

TEST(Tls, ClientHelloOverTheBufferIsCountedAndTheRecordFlagged) {
  DecodeConfig cfg = dectest::small_config();
  cfg.options.push_back({Protocol::kTls, "max_handshake_bytes", 16384});
  Harness h(cfg);
  h.open(443);
  tls13(h, modern_hello("big.example", 20000), kT0, 1448);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.counters().carry_overflow, 1u);
  const json r = h.rec(0);
  EXPECT_EQ(r["flags"], json::parse(R"(["truncated"])"));
  EXPECT_FALSE(r["request"].contains("sni"));
  EXPECT_EQ(r["response"]["version"], "TLS 1.3");  // the rest of the handshake still decoded
  h.close(kT0 + 9 * kMs);
  h.expect_ledger();
}

TEST(Tls, BufferPoolExhaustedIsCounted) {
  DecodeConfig cfg = dectest::small_config();
  cfg.options.push_back({Protocol::kTls, "buffers", 1});
  Harness h(cfg);
  h.open(443, false, kT0, 0, 40000);
  h.open(443, false, kT0, 1, 40001);
  const std::string ch = records(22, modern_hello("one.example"), 0x0301);
  h.c2s(ch.substr(0, 100), kT0, 0);  // flow 0 holds the only buffer
  h.c2s(ch.substr(0, 100), kT0, 1);
  h.c2s(ch.substr(100), kT0 + kMs, 1);
  EXPECT_EQ(h.counters().carry_pool_exhausted, 1u);
  h.c2s(ch.substr(100), kT0 + kMs, 0);
  h.close(kT0 + 2 * kMs, 0);
  h.close(kT0 + 2 * kMs, 1);
  ASSERT_EQ(h.size(), 2u);  // both ClientHellos unanswered: timeouts, the second without its fields
  EXPECT_EQ(h.rec(0)["request"]["sni"], "one.example");
  EXPECT_FALSE(h.rec(1)["request"].contains("sni"));
  h.expect_ledger();
}

TEST(Tls, Sslv2CompatibleHello) {
  Harness h;
  h.open(443);
  // SSLv2 record: CLIENT-HELLO, version TLS 1.0, 3 cipher specs, no session id, 16-byte challenge.
  const std::string body = u8(1) + u16(0x0301) + u16(9) + u16(0) + u16(16) +
                           std::string("\x00\x00\x2f\x00\x00\x35\x01\x00\x80", 9) + std::string(16, 'c');
  h.c2s(u8(0x80 | (body.size() >> 8)) + u8(body.size() & 0xff) + body, kT0);
  h.s2c(records(22, server_hello(0x002f, std::string(32, 'z'), ""), 0x0301) , kT0 + kMs);
  h.close(kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 1u);
  const json r = h.rec(0);
  EXPECT_EQ(r["request"]["sslv2"], true);
  EXPECT_EQ(r["request"]["record_version"], "SSL 2.0");
  EXPECT_EQ(r["request"]["client_version"], "TLS 1.0");
  EXPECT_EQ(r["request"]["cipher_suites"], 3);
  EXPECT_EQ(r["response"]["cipher"], "TLS_RSA_WITH_AES_128_CBC_SHA");
  EXPECT_EQ(r["flags"], json::parse(R"(["truncated"])"));  // the flow ended inside the handshake
  h.expect_ledger();
}

TEST(Tls, FoundOnAnUnmappedPortByItsClientHello) {
  Harness h;
  h.open(4443);
  tls13(h, modern_hello("alt.example"), kT0, 7);  // the first chunk is 7 bytes: detection keeps them
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["protocol"], "tls");
  EXPECT_EQ(h.rec(0)["request"]["sni"], "alt.example");
  EXPECT_EQ(h.counters().detected_by_payload[static_cast<size_t>(Protocol::kTls)], 1u);
  h.close(kT0 + 9 * kMs);
  h.expect_ledger();
}

// The api.corpus.test leaf of /tmp/corpus-modern/tls.pcap (ECDSA P-256, valid 2026-12-02T04:56:04Z to
// 2027-01-01T04:56:04Z); `openssl x509 -inform der -noout -serial -fingerprint -sha256` gave the values below.
constexpr const char* kLeafHex =
    "308201d230820177a00302010202140f6b53554f39170f388a4f29f4bb52e54ea2b959300a06082a8648ce3d040302303031"
    "143012060355040a0c0b436f7270757320546573743118301606035504030c0f6170692e636f727075732e74657374301e17"
    "0d3236313230323034353630345a170d3237303130313034353630345a303031143012060355040a0c0b436f727075732054"
    "6573743118301606035504030c0f6170692e636f727075732e746573743059301306072a8648ce3d020106082a8648ce3d03"
    "0107034200040fcfad665143c54652c63c51bfc07dd362289f858b8a0a23b876e43e0e6b6f855ec82ae7f1c803d610059aac"
    "a0a1d91ba8fdef7e2d1aead24f553bc030ad9e4ba36f306d301d0603551d0e04160414e00c7890e2037e0b03496110a7add0"
    "45253927c0301f0603551d23041830168014e00c7890e2037e0b03496110a7add045253927c0300f0603551d130101ff0405"
    "30030101ff301a0603551d1104133011820f6170692e636f727075732e74657374300a06082a8648ce3d0403020349003046"
    "022100e45dea5ac55b8eeb93fdfebf8fe5d15d3c108a57829b0f6bcb70086a1d9fb0b0022100c1044f1d03cf3a5b50f57933"
    "350db3447e91fb97c8ef52765d697b05761d377a";

std::string unhex(std::string_view h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16));
  return out;
}

// A TLS 1.2 handshake whose Certificate message carries the leaf twice, at capture time `t`, on flow `slot`.
json handshake_with_certificate(Harness& h, uint32_t slot, uint64_t t) {
  h.open(8443, false, t, slot, static_cast<uint16_t>(40000 + slot));
  h.c2s(records(22, client_hello({0xc02b}, "", sni("api.corpus.test"))), t, slot);
  const std::string der = unhex(kLeafHex);
  const std::string chain = u24(der.size()) + der + u24(der.size()) + der;
  h.s2c(records(22, server_hello(0xc02b, "", "") + handshake(11, u24(chain.size()) + chain) + handshake(14, "")),
        t + kMs, slot);
  h.c2s(records(22, handshake(16, std::string(66, 'k'))) + ccs() + encrypted(22, 40), t + 2 * kMs, slot);
  const size_t before = h.size();
  h.s2c(ccs() + encrypted(22, 40), t + 3 * kMs, slot);
  EXPECT_EQ(h.size(), before + 1);
  return h.size() > before ? h.rec(before) : json();
}

TEST(Tls, CertificatesAndTheirValidityAtCaptureTime) {
  Harness h;
  const json valid = handshake_with_certificate(h, 0, 1797292800ull * kNsPerSec);  // 2026-12-15
  EXPECT_EQ(valid["latency_us"], 3000);  // ClientHello -> the server's Finished
  const json& a = valid["response"];
  EXPECT_EQ(a["cert_count"], 2);
  ASSERT_EQ(a["certificates"].size(), 2u);
  const json& c = a["certificates"][0];
  EXPECT_EQ(c["subject"], "CN=api.corpus.test,O=Corpus Test");
  EXPECT_EQ(c["issuer"], "CN=api.corpus.test,O=Corpus Test");
  EXPECT_EQ(c["serial"], "0f6b53554f39170f388a4f29f4bb52e54ea2b959");
  EXPECT_EQ(c["not_before"], "2026-12-02T04:56:04Z");
  EXPECT_EQ(c["not_after"], "2027-01-01T04:56:04Z");
  EXPECT_EQ(c["san"], json::parse(R"(["api.corpus.test"])"));
  EXPECT_EQ(c["sha256"], "a25c7195a017c12d6fa5dee1cd1307a7bdd55c9b73f0d3d0a5fa837a7619e254");
  EXPECT_EQ(c["key"], "ec");
  EXPECT_EQ(c["bits"], 256);
  EXPECT_EQ(c["validity"], "valid");
  EXPECT_EQ(a["certificates"][1], c);  // the second copy comes from the cache: the same description
  EXPECT_EQ(a["cert_expired"], false);
  // The same bytes at other capture times (same worker: the cached description), the validity computed afresh.
  const json early = handshake_with_certificate(h, 1, kT0);  // 2023
  EXPECT_EQ(early["response"]["certificates"][0]["validity"], "not_yet_valid");
  EXPECT_EQ(early["response"]["cert_expired"], true);
  const json late = handshake_with_certificate(h, 2, 1811808000ull * kNsPerSec);  // 2027-06-01
  EXPECT_EQ(late["response"]["certificates"][0]["validity"], "expired");
  EXPECT_EQ(late["response"]["cert_expired"], true);
  EXPECT_EQ(late["response"]["certificates"][0]["sha256"], c["sha256"]);
  for (uint32_t slot = 0; slot < 3; ++slot) h.close(1811808000ull * kNsPerSec + kNsPerSec, slot);
  EXPECT_EQ(h.size(), 6u);  // 3 handshakes, 3 close records
  h.expect_ledger();
}

TEST(Tls, GarbageOn443IsCountedNotRecorded) {
  Harness h;
  h.open(443);
  h.c2s("GET / HTTP/1.1\r\nHost: a\r\n\r\n", kT0);
  h.s2c(std::string(3000, '\xff'), kT0 + kMs);
  h.c2s(records(22, modern_hello("late.example")), kT0 + 2 * kMs);  // ignored: the stream is not TLS
  h.close(kT0 + 3 * kMs);
  EXPECT_EQ(h.size(), 0u);
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kTls)], 1u);
  h.expect_ledger();
}

TEST(Tls, GapInsideTheClientHelloRecordLosesItsFieldsNotTheHandshake) {
  Harness h;
  h.open(443);
  const std::string ch = records(22, modern_hello("gap.example"), 0x0301);
  h.c2s(ch.substr(0, 40), kT0);
  h.gap(kC2S, 30, kT0);
  h.c2s(ch.substr(70), kT0 + kMs);
  h.s2c(records(22, server_hello(0x1301, std::string(32, 's'), sh13_exts())) + encrypted(23, 900), kT0 + 2 * kMs);
  h.c2s(encrypted(23, 53), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 1u);
  const json r = h.rec(0);
  EXPECT_EQ(r["status"], "ok");  // the ClientHello's fields are lost, the handshake is not
  EXPECT_EQ(r["request"]["kind"], "handshake");
  EXPECT_FALSE(r["request"].contains("sni"));
  EXPECT_EQ(r["response"]["version"], "TLS 1.3");
  EXPECT_EQ(r["flags"], json::parse(R"(["gap","truncated"])"));
  h.close(kT0 + 4 * kMs);
  h.expect_ledger();
}

TEST(Tls, HostileHandshakeLengthsNeverOverrun) {
  Harness h;
  h.open(443);
  // A ClientHello claiming 16 MiB, then records of garbage handshake bytes: skipped by count.
  h.c2s(records(22, u8(1) + u24(0xffffff) + std::string(1000, 'x')), kT0);
  h.c2s(records(22, std::string(16384, 'y')), kT0 + kMs);
  // Extensions whose lengths point past the end.
  h.open(443, false, kT0, 1, 40001);
  const std::string bad = handshake(1, u16(0x0303) + std::string(32, 'r') + u8(0) + u16(2) + u16(0x1301) + u8(1) +
                                           u8(0) + u16(40) + u16(0) + u16(30) + "short");
  h.c2s(records(22, bad), kT0, 1);
  h.close(kT0 + 2 * kMs, 0);
  h.close(kT0 + 2 * kMs, 1);
  EXPECT_EQ(h.counters().carry_overflow, 1u);
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kTls)], 1u);
  ASSERT_EQ(h.size(), 1u);  // the malformed hello: a truncated request, no answer
  EXPECT_EQ(h.rec(0)["status"], "timeout");
  h.expect_ledger();
}

}  // namespace
}  // namespace spanfeed
