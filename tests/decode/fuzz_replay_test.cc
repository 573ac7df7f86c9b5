// Replays the decoder fuzz targets without libFuzzer: checked-in corpus, crafted seeds, their mutations, random input.
// Runs in the test thread; allocates freely (tests only). SPANFEED_WRITE_CORPUS=1 (re)writes tests/decode/corpus/.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "fuzz_common.h"

int spanfeed_fuzz_http(const uint8_t* data, size_t size);
int spanfeed_fuzz_redis(const uint8_t* data, size_t size);
int spanfeed_fuzz_dns(const uint8_t* data, size_t size);
int spanfeed_fuzz_memcached(const uint8_t* data, size_t size);
int spanfeed_fuzz_smtp(const uint8_t* data, size_t size);
int spanfeed_fuzz_tls(const uint8_t* data, size_t size);

namespace spanfeed {
namespace {

using fuzz::Chunk;
using fuzz::make_script;
using Target = int (*)(const uint8_t*, size_t);

const std::string kCorpus = std::string(SPANFEED_SOURCE_ROOT) + "/tests/decode/corpus/";

std::string dns_query(bool tcp, bool response) {
  std::string m("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07""example\x03""com\x00\x00\x01\x00\x01", 33);
  if (response) {
    m[2] = static_cast<char>(0x81);
    m[3] = static_cast<char>(0x80);
    m[7] = 1;
    m += std::string("\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x01\x02\x03\x04", 16);
  }
  if (tcp) m = std::string{static_cast<char>(m.size() >> 8), static_cast<char>(m.size() & 0xff)} + m;
  return m;
}

// A TLS record of `type` around `payload`; a handshake message of `type`.
std::string tls_record(char type, const std::string& payload) {
  return std::string{type, 3, 3, static_cast<char>(payload.size() >> 8), static_cast<char>(payload.size())} + payload;
}
std::string tls_handshake(char type, const std::string& body) {
  return std::string{type, 0, static_cast<char>(body.size() >> 8), static_cast<char>(body.size())} + body;
}
std::string tls_hello(bool server) {
  std::string b("\x03\x03", 2);
  b += std::string(32, 'r') + std::string(1, '\0');
  b += server ? std::string("\x13\x01\x00", 3) : std::string("\x00\x04\x13\x01\xc0\x2f\x01\x00", 8);
  const std::string ext = server ? std::string("\x00\x2b\x00\x02\x03\x04", 6)
                                 : std::string("\x00\x00\x00\x06\x00\x04\x00\x00\x01h\x00\x10\x00\x05\x00\x03\x02h2"
                                               "\x00\x2b\x00\x03\x02\x03\x04", 26);
  b += std::string{0, static_cast<char>(ext.size())} + ext;
  return tls_handshake(server ? 2 : 1, b);
}

std::vector<std::string> seeds(const std::string& proto) {
  if (proto == "tls") {
    return {
        make_script(false, {{false, tls_record(22, tls_hello(false))},
                            {true, tls_record(22, tls_hello(true)) + tls_record(20, "\x01") + tls_record(23, "enc")},
                            {false, tls_record(23, "finished") + tls_record(23, "data")},
                            {true, tls_record(21, "\x02\x28")}}),
        make_script(false, {{false, std::string("\x80\x1f\x01\x03\x01\x00\x06\x00\x00\x00\x10\x00\x00\x2f\x00\x00\x35", 17) +
                                        std::string(16, 'c')},
                            {true, tls_record(22, tls_hello(true).substr(0, 30))},
                            {true, tls_record(22, tls_handshake(11, std::string("\x00\x00\x05\x00\x00\x02\x30\x00", 8)) +
                                                      tls_handshake(14, ""))}}),
    };
  }
  if (proto == "http") {
    return {
        make_script(false, {{false, "GET /a?b=c HTTP/1.1\r\nHost: h\r\nCookie: x\r\n\r\n"},
                            {true, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"}}),
        make_script(false, {{false, "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n\r\n"},
                            {true, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 E\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   "1;e\r\nz\r\n0\r\nT: 1\r\n\r\n"}}),
        make_script(false, {{false, "HEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\n"},
                            {true, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nHTTP/1.0 200 OK\r\n\r\nuntil close"}}),
    };
  }
  if (proto == "redis") {
    return {
        make_script(false, {{false, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\nPING\r\n"},
                            {true, "+OK\r\n-ERR no\r\n+PONG\r\n"}}),
        make_script(false, {{false, "*1\r\n$4\r\nHELO\r\n*1\r\n$1\r\nX\r\n"},
                            {true, "%1\r\n+a\r\n*2\r\n:1\r\n$2\r\nxy\r\n|1\r\n+k\r\n+v\r\n~1\r\n,1.5\r\n>1\r\n#f\r\n"}}),
    };
  }
  if (proto == "dns") {
    std::string udp = make_script(true, {{false, dns_query(false, false)}, {true, dns_query(false, true)}});
    std::string tcp = make_script(false, {{false, dns_query(true, false) + dns_query(true, false)},
                                          {true, dns_query(true, true)}});
    return {udp, tcp};
  }
  if (proto == "smtp") {
    return {
        make_script(false, {{true, "220 mx ESMTP\r\n"},
                            {false, "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"},
                            {true, "250-mx\r\n250 PIPELINING\r\n250 ok\r\n550 no\r\n354 go\r\n"},
                            {false, "Subject: x\r\n\r\n..\r\n.\r\nQUIT\r\n"},
                            {true, "250 queued\r\n221 bye\r\n"}}),
        make_script(false, {{true, "220-mx\r\n220 ESMTP\r\n"},
                            {false, "AUTH LOGIN\r\n"}, {true, "334 VXNlcg==\r\n"}, {false, "dXNlcg==\r\n"},
                            {true, "235 ok\r\n"}, {false, "BDAT 3 LAST\r\nabcSTARTTLS\r\n"},
                            {true, "250 ok\r\n220 go\r\n"}, {false, "\x16\x03\x01"}}),
    };
  }
  return {
      make_script(false, {{false, "set foo 0 0 3\r\nbar\r\nget foo bar\r\ngets x\r\ndelete foo noreply\r\n"},
                          {true, "STORED\r\nVALUE foo 0 3 1\r\nbar\r\nEND\r\nEND\r\n"}}),
      make_script(false, {{false, "stats\r\nmg k v\r\nms k 1\r\nx\r\nincr n 1\r\nquit\r\n"},
                          {true, "STAT a 1\r\nEND\r\nVA 1\r\ny\r\nHD\r\n2\r\nCLIENT_ERROR bad\r\n"}}),
  };
}

std::vector<std::string> corpus_files(const std::string& proto) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(kCorpus + proto, ec)) {
    std::ifstream in(e.path(), std::ios::binary);
    out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

void run(Target t, const std::string& s) { t(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

void exercise(const std::string& proto, Target t) {
  std::vector<std::string> inputs = seeds(proto);
  if (std::getenv("SPANFEED_WRITE_CORPUS") != nullptr) {
    std::filesystem::create_directories(kCorpus + proto);
    for (size_t i = 0; i < inputs.size(); ++i)
      std::ofstream(kCorpus + proto + "/seed-" + std::to_string(i), std::ios::binary) << inputs[i];
  }
  for (auto& c : corpus_files(proto)) inputs.push_back(std::move(c));
  std::mt19937 rng(12345);
  size_t base = inputs.size();
  for (size_t i = 0; i < base; ++i) {
    run(t, inputs[i]);
    // mutations: byte flips, truncations, splices of other seeds
    for (int m = 0; m < 300; ++m) {
      std::string s = inputs[i];
      const int kind = static_cast<int>(rng() % 3);
      if (kind == 0 && !s.empty()) {
        for (int k = 0; k < 4; ++k) s[rng() % s.size()] = static_cast<char>(rng());
      } else if (kind == 1 && !s.empty()) {
        s.resize(rng() % s.size());
      } else {
        const std::string& o = inputs[rng() % base];
        if (!o.empty()) s.insert(rng() % (s.size() + 1), o.substr(1 + rng() % o.size() / 2));
      }
      run(t, s);
    }
  }
  for (int i = 0; i < 500; ++i) {  // pure random scripts
    std::string s(static_cast<size_t>(rng() % 600), '\0');
    for (char& ch : s) ch = static_cast<char>(rng());
    run(t, s);
  }
}

TEST(FuzzReplay, Http) { exercise("http", spanfeed_fuzz_http); }
TEST(FuzzReplay, Redis) { exercise("redis", spanfeed_fuzz_redis); }
TEST(FuzzReplay, Dns) { exercise("dns", spanfeed_fuzz_dns); }
TEST(FuzzReplay, Memcached) { exercise("memcached", spanfeed_fuzz_memcached); }
TEST(FuzzReplay, Smtp) { exercise("smtp", spanfeed_fuzz_smtp); }
TEST(FuzzReplay, Tls) { exercise("tls", spanfeed_fuzz_tls); }

}  // namespace
}  // namespace spanfeed
