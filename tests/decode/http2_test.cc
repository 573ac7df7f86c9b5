// Unit tests for the HTTP/2 (h2c) and gRPC decoders: crafted connections (frames built here, header blocks
// encoded with nghttp2's HPACK deflater) with exact field values: interleaved streams, CONTINUATION,
// padding, RST_STREAM, HPACK dynamic-table eviction, gaps, Upgrade: h2c, gRPC calls, redaction, bounds.
// Runs in the test thread; allocates freely (tests only).
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "decode_test_util.h"

namespace spanfeed {
namespace {

using dectest::flags_of;
using dectest::Harness;
using dectest::kMs;
using dectest::kT0;
using json = nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr Direction kC2S = Direction::kClientToServer;
constexpr Direction kS2C = Direction::kServerToClient;
constexpr uint16_t kPort = 8081;  // http2's default port
const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

std::string frame(uint8_t type, uint8_t flags, uint32_t sid, std::string_view payload) {
  std::string f;
  const size_t n = payload.size();
  f += static_cast<char>(n >> 16);
  f += static_cast<char>(n >> 8);
  f += static_cast<char>(n);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  f += static_cast<char>(sid >> 24);
  f += static_cast<char>(sid >> 16);
  f += static_cast<char>(sid >> 8);
  f += static_cast<char>(sid);
  f += payload;
  return f;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

constexpr uint8_t kEndStream = 1, kEndHeaders = 4, kPadded = 8, kPrio = 0x20;

// One HPACK encoder per direction, as a peer keeps it.
class Encoder {
 public:
  explicit Encoder(size_t table = 4096) { nghttp2_hd_deflate_new(&d_, table); }
  ~Encoder() { nghttp2_hd_deflate_del(d_); }
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;
  std::string block(const Headers& h) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [n, v] : h) {
      nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    std::string out(nghttp2_hd_deflate_bound(d_, nv.data(), nv.size()), '\0');
    const auto n = nghttp2_hd_deflate_hd(d_, reinterpret_cast<uint8_t*>(out.data()), out.size(), nv.data(), nv.size());
    EXPECT_GE(n, 0);
    out.resize(static_cast<size_t>(n));
    return out;
  }

 private:
  nghttp2_hd_deflater* d_ = nullptr;
};

// A connection: both encoders, frames helpers.
struct Conn {
  Harness& h;
  Encoder c{}, s{};
  void start(uint64_t ts) {
    h.c2s(kPreface + frame(4, 0, 0, std::string("\x00\x03\x00\x00\x00\x64", 6)), ts);  // MAX_CONCURRENT_STREAMS 100
    h.s2c(frame(4, 0, 0, "") + frame(4, 1, 0, ""), ts);
    h.c2s(frame(4, 1, 0, ""), ts);
  }
  std::string req(uint32_t sid, const Headers& hd, bool end) { return frame(1, kEndHeaders | (end ? kEndStream : 0), sid, c.block(hd)); }
  std::string resp(uint32_t sid, const Headers& hd, bool end) { return frame(1, kEndHeaders | (end ? kEndStream : 0), sid, s.block(hd)); }
};

Headers get(const std::string& path) {
  return {{":method", "GET"}, {":scheme", "http"}, {":authority", "api.example.org"}, {":path", path},
          {"user-agent", "curl/7.88.1"}, {"accept", "*/*"}};
}

#define DUMP(h) \
  if (std::getenv("H2DUMP") != nullptr) \
  for (const auto& l : (h).lines()) std::fprintf(stderr, "%s", l.c_str())

TEST(Http2, PriorKnowledgeRequestsMatchedByStreamId) {
  Harness h;
  h.open(kPort);
  Conn c{h};
  c.start(kT0);
  h.c2s(c.req(1, get("/a?x=1"), true), kT0 + kMs);
  Headers post = get("/upload");
  post[0].second = "POST";
  post.push_back({"content-type", "application/json"});
  h.c2s(c.req(3, post, false) + frame(0, 0, 3, "{\"k\":") + frame(0, kEndStream, 3, "1}"), kT0 + 2 * kMs);
  // Stream 3 answers first (out of order); stream 1 gets a 503 with a body.
  h.s2c(c.resp(3, {{":status", "201"}, {"content-type", "application/json"}}, true), kT0 + 5 * kMs);
  h.s2c(c.resp(1, {{":status", "503"}, {"content-type", "text/plain"}}, false) + frame(0, kEndStream, 1, "busy"),
        kT0 + 9 * kMs);
  DUMP(h);
  ASSERT_EQ(h.size(), 2u);
  const json a = h.rec(0);
  EXPECT_EQ(a["protocol"], "http2");
  EXPECT_EQ(a["status"], "ok");
  EXPECT_EQ(a["request"]["method"], "POST");
  EXPECT_EQ(a["request"]["path"], "/upload");
  EXPECT_EQ(a["request"]["body_bytes"], 7);
  EXPECT_EQ(a["request"]["stream_id"], 3);
  EXPECT_EQ(a["request"]["content_type"], "application/json");
  EXPECT_EQ(a["response"]["status_code"], 201);
  EXPECT_EQ(a["latency_us"], 3000);
  const json b = h.rec(1);
  EXPECT_EQ(b["status"], "error");  // 5xx
  EXPECT_EQ(b["request"]["method"], "GET");
  EXPECT_EQ(b["request"]["scheme"], "http");
  EXPECT_EQ(b["request"]["authority"], "api.example.org");
  EXPECT_EQ(b["request"]["path"], "/a?x=1");
  EXPECT_EQ(b["request"]["user_agent"], "curl/7.88.1");
  EXPECT_EQ(b["request"]["metadata"], "accept");
  EXPECT_EQ(b["request"]["stream_id"], 1);
  EXPECT_EQ(b["response"]["status_code"], 503);
  EXPECT_EQ(b["response"]["body_bytes"], 4);
  EXPECT_EQ(b["response"]["content_type"], "text/plain");
  EXPECT_EQ(b["latency_us"], 8000);
  EXPECT_FALSE(b["request"].contains("undecodable"));
  h.close(kT0 + 10 * kMs);
  h.expect_ledger();
}

TEST(Http2, InterleavedStreamsByteByByte) {
  Harness h;
  h.open(kPort);
  Conn c{h};
  c.start(kT0);
  std::string cli, srv;
  for (uint32_t sid = 1; sid <= 9; sid += 2) cli += c.req(sid, get("/item/" + std::to_string(sid)), true);
  // Responses: headers of all, then DATA frames interleaved in reverse order.
  for (int sid = 9; sid >= 1; sid -= 2) srv += c.resp(static_cast<uint32_t>(sid), {{":status", std::to_string(200 + sid)}}, false);
  for (int round = 0; round < 2; ++round) {
    for (uint32_t sid = 1; sid <= 9; sid += 2) srv += frame(0, round == 1 ? kEndStream : 0, sid, std::string(sid, 'x'));
  }
  h.dribble(kC2S, cli, 1, kT0 + kMs);
  h.dribble(kS2C, srv, 1, kT0 + 2 * kMs);
  DUMP(h);
  ASSERT_EQ(h.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    const json r = h.rec(i);
    const int sid = 1 + 2 * static_cast<int>(i);
    EXPECT_EQ(r["request"]["stream_id"], sid);
    EXPECT_EQ(r["request"]["path"], "/item/" + std::to_string(sid));
    EXPECT_EQ(r["response"]["status_code"], 200 + sid);
    EXPECT_EQ(r["response"]["body_bytes"], 2 * sid);
  }
  h.expect_ledger();
}

TEST(Http2, ContinuationPaddingAndPriority) {
  Harness h;
  h.open(kPort);
  Conn c{h};
  c.start(kT0);
  Headers hd = get("/long");
  hd.push_back({"x-trace", std::string(300, 't')});
  const std::string block = c.c.block(hd);
  ASSERT_GT(block.size(), 40u);
  // HEADERS (padded, with priority) + two CONTINUATION frames, the last with END_HEADERS.
  std::string first = std::string(1, '\x03') + be32(0) + std::string(1, '\x10') + block.substr(0, 10) + "pad";
  std::string cli = frame(1, kEndStream | kPadded | kPrio, 1, first) + frame(9, 0, 1, block.substr(10, 20)) +
                    frame(9, kEndHeaders, 1, block.substr(30));
  h.dribble(kC2S, cli, 3, kT0 + kMs);
  // The response: padded DATA.
  h.s2c(c.resp(1, {{":status", "200"}}, false) + frame(0, kEndStream | kPadded, 1, std::string("\x02") + "hello" + "zz"),
        kT0 + 4 * kMs);
  DUMP(h);
  ASSERT_EQ(h.size(), 1u);
  const json r = h.rec(0);
  EXPECT_EQ(r["request"]["path"], "/long");
  EXPECT_EQ(r["request"]["metadata"], "accept,x-trace");
  EXPECT_EQ(r["response"]["body_bytes"], 5);  // padding excluded
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kHttp2)], 0u);
  h.expect_ledger();
}

TEST(Http2, RstStreamMidResponse) {
  Harness h;
  h.open(kPort);
  Conn c{h};
  c.start(kT0);
  std::string two = c.req(1, get("/stream"), true);  // one statement per block: encoders run in wire order
  two += c.req(3, get("/ok"), true);
  h.c2s(two, kT0 + kMs);
  h.s2c(c.resp(1, {{":status", "200"}}, false) + frame(0, 0, 1, std::string(100, 'd')), kT0 + 2 * kMs);
  h.c2s(frame(3, 0, 1, be32(8)), kT0 + 3 * kMs);  // RST_STREAM CANCEL from the client
  h.s2c(c.resp(3, {{":status", "200"}}, true), kT0 + 4 * kMs);
  DUMP(h);
  ASSERT_EQ(h.size(), 2u);
  const json r = h.rec(0);
  EXPECT_EQ(r["status"], "error");
  EXPECT_EQ(r["request"]["path"], "/stream");
  EXPECT_EQ(r["response"]["status_code"], 200);
  EXPECT_EQ(r["response"]["body_bytes"], 100);
  EXPECT_EQ(r["response"]["rst_error"], "CANCEL");
  EXPECT_EQ(r["latency_us"], 2000);
  EXPECT_EQ(h.rec(1)["status"], "ok");
  EXPECT_EQ(h.rec(1)["request"]["path"], "/ok");
  h.expect_ledger();
}

TEST(Http2, HpackDynamicTableEvictionStaysInStep) {
  Harness h;
  h.open(kPort);
  Conn c{h};
  Encoder small_c(256), small_s(256);  // the encoders keep 256-byte tables: entries are evicted constantly
  c.start(kT0);
  std::string cli, srv;
  std::vector<std::string> paths;
  for (uint32_t i = 0; i < 40; ++i) {
    const uint32_t sid = 1 + 2 * i;
    const std::string path = "/resource/" + std::string(40, static_cast<char>('a' + i % 7)) + "/" + std::to_string(i % 5);
    paths.push_back(path);
    Headers hd = get(path);
    hd.push_back({"x-tenant", "tenant-" + std::to_string(i % 3)});
    cli += frame(1, kEndHeaders | kEndStream, sid, small_c.block(hd));
    srv += frame(1, kEndHeaders | kEndStream, sid, small_s.block({{":status", i % 4 == 0 ? "404" : "200"},
                                                                    {"x-served-by", "node-" + std::to_string(i % 6)}}));
  }
  h.c2s(cli, kT0 + kMs);
  h.s2c(srv, kT0 + 2 * kMs);
  DUMP(h);
  ASSERT_EQ(h.size(), 40u);
  for (size_t i = 0; i < 40; ++i) {
    const json r = h.rec(i);
    EXPECT_EQ(r["request"]["path"], paths[i]) << i;
    EXPECT_EQ(r["request"]["authority"], "api.example.org") << i;
    EXPECT_EQ(r["response"]["status_code"], i % 4 == 0 ? 404 : 200) << i;
  }
  EXPECT_EQ(h.counters().h2_streams_undecodable, 0u);
  h.expect_ledger();
}

TEST(Http2, GapDestroysHpackStateLaterStreamsUndecodable) {
  Harness h;
  h.open(kPort);
  Conn c{h};
  c.start(kT0);
  h.c2s(c.req(1, get("/before"), true), kT0 + kMs);
  h.s2c(c.resp(1, {{":status", "200"}}, true), kT0 + 2 * kMs);
  // The client's next request is lost in a gap (its literals would have entered the table)...
  const std::string lost = c.req(3, get("/lost-" + std::string(20, 'q')), true);
  h.gap(kC2S, lost.size(), kT0 + 3 * kMs);
  // ...so what follows (which may refer to those entries) is never decoded: recorded, counted, no fields.
  h.c2s(c.req(5, get("/lost-" + std::string(20, 'q')), true), kT0 + 4 * kMs);
  std::string answers = c.resp(3, {{":status", "200"}}, true);
  answers += c.resp(5, {{":status", "200"}}, true);
  h.s2c(answers, kT0 + 5 * kMs);
  DUMP(h);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(0)["request"]["path"], "/before");
  const json r3 = h.rec(1);  // its request was in the hole: what the response says is still known
  EXPECT_EQ(r3["request"]["stream_id"], 3);
  EXPECT_FALSE(r3["request"].contains("path"));
  EXPECT_EQ(r3["response"]["status_code"], 200);
  const json r5 = h.rec(2);
  EXPECT_EQ(r5["request"]["stream_id"], 5);
  EXPECT_EQ(r5["request"]["undecodable"], true);
  EXPECT_FALSE(r5["request"].contains("path"));
  EXPECT_FALSE(r5["request"].contains("method"));
  EXPECT_EQ(r5["response"]["status_code"], 200);  // the server's table is intact
  EXPECT_EQ(h.counters().h2_streams_undecodable, 1u);
  EXPECT_EQ(h.counters().resyncs, 1u);
  h.expect_ledger();
}

// Every record a gap may have changed says so: a stream whose HEADERS were in a hole of the client side
// (it had no flag: a clean record with no request fields), a stream whose header block could not be decoded
// because a gap took that side's HPACK state (the request's, or the response's: records without a path or a
// status and no flag, nghttp2/h2load under loss), whether it is answered or times out. A block undecodable
// for another reason (a capture that begins mid-connection) is `undecodable` only.
TEST(Http2, RecordsAGapMadeUndecodableAreFlagged) {
  Harness h;
  h.open(kPort);
  Conn c{h};
  c.start(kT0);
  const std::string lost = c.req(1, get("/lost-" + std::string(20, 'q')), true);
  h.gap(kC2S, lost.size(), kT0 + kMs);
  const std::string req3 = c.req(3, get("/lost-" + std::string(20, 'q')), true);
  const std::string req5 = c.req(5, get("/never-answered"), true);
  h.c2s(req3, kT0 + 2 * kMs);
  h.c2s(req5, kT0 + 3 * kMs);
  h.s2c(c.resp(1, {{":status", "200"}}, true) + c.resp(3, {{":status", "404"}}, true), kT0 + 4 * kMs);
  // The server side loses a frame too: the next response's block is undecodable.
  h.gap(kS2C, c.resp(9, {{":status", "500"}, {"x-lost", std::string(30, 'l')}}, true).size(), kT0 + 5 * kMs);
  const std::string req7 = c.req(7, get("/after"), true);
  h.c2s(req7, kT0 + 6 * kMs);
  const std::string resp7 = c.resp(7, {{":status", "200"}, {"x-lost", std::string(30, 'l')}}, true);
  h.s2c(resp7, kT0 + 7 * kMs);
  h.close(kT0 + 8 * kMs);
  DUMP(h);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h.rec(0)["request"], json::parse(R"({"bytes":0,"body_bytes":0,"stream_id":1})"));
  EXPECT_EQ(h.rec(0)["response"], json::parse(R"({"bytes":10,"status_code":200,"body_bytes":0})"));
  EXPECT_EQ(flags_of(h.rec(0)), std::vector<std::string>{"gap"});
  auto undecodable = [](const std::string& frames, uint32_t sid) {
    return json{{"bytes", frames.size()}, {"body_bytes", 0}, {"stream_id", sid}, {"undecodable", true}};
  };
  EXPECT_EQ(h.rec(1)["request"], undecodable(req3, 3));
  EXPECT_EQ(h.rec(1)["response"], json::parse(R"({"bytes":10,"status_code":404,"body_bytes":0})"));
  EXPECT_EQ(flags_of(h.rec(1)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(2)["status"], "ok");
  EXPECT_EQ(h.rec(2)["request"], undecodable(req7, 7));
  EXPECT_EQ(h.rec(2)["response"], json::parse("{\"bytes\":" + std::to_string(resp7.size()) + ",\"body_bytes\":0}"));
  EXPECT_EQ(flags_of(h.rec(2)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(3)["status"], "timeout");
  EXPECT_EQ(h.rec(3)["request"], undecodable(req5, 5));
  EXPECT_EQ(flags_of(h.rec(3)), std::vector<std::string>{"gap"});
  h.expect_ledger();

  // Mid-connection: the first request refers to a dynamic-table entry never seen. Undecodable, no gap.
  Harness g;
  g.open(kPort);
  Conn m{g};
  m.req(1, get("/warm"), true);  // fills the client encoder's table; never sent
  g.c2s(m.req(3, get("/warm"), true), kT0);
  g.s2c(frame(1, kEndHeaders | kEndStream, 3, std::string("\x88", 1)), kT0 + kMs);  // :status 200, static
  DUMP(g);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g.rec(0)["request"]["undecodable"], true);
  EXPECT_EQ(g.rec(0)["response"]["status_code"], 200);
  EXPECT_EQ(flags_of(g.rec(0)), std::vector<std::string>{});
  g.expect_ledger();

  // Mid-connection again: the response's HEADERS open the stream, the request's DATA loses bytes inside a
  // frame (absorbed: no request message had begun to carry the flag). The record says so.
  Harness u;
  u.open(kPort);
  u.s2c(frame(1, kEndHeaders, 1, std::string("\x88", 1)), kT0);  // :status 200
  const std::string body = frame(0, kEndStream, 1, std::string(300, 'u'));
  u.c2s(body.substr(0, 100), kT0 + kMs);
  u.gap(kC2S, 100, kT0 + 2 * kMs);
  u.c2s(body.substr(200), kT0 + 3 * kMs);
  u.s2c(frame(0, kEndStream, 1, "ok"), kT0 + 4 * kMs);
  DUMP(u);
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u.rec(0)["request"], json::parse("{\"bytes\":" + std::to_string(body.size()) + R"(,"body_bytes":300,"stream_id":1})"));
  EXPECT_EQ(u.rec(0)["response"]["status_code"], 200);
  EXPECT_EQ(flags_of(u.rec(0)), std::vector<std::string>{"gap"});
  EXPECT_EQ(u.counters().gaps_absorbed, 1u);
  u.expect_ledger();
}

TEST(Http2, GapInsideDataIsAbsorbed) {
  Harness h;
  h.open(kPort);
  Conn c{h};
  c.start(kT0);
  h.c2s(c.req(1, get("/big"), true), kT0 + kMs);
  const std::string head = c.resp(1, {{":status", "200"}}, false);
  const std::string data = frame(0, kEndStream, 1, std::string(1000, 'b'));
  h.s2c(head + data.substr(0, 300), kT0 + 2 * kMs);
  h.gap(kS2C, 500, kT0 + 3 * kMs);
  h.s2c(data.substr(800), kT0 + 4 * kMs);
  h.c2s(c.req(3, get("/next"), true), kT0 + 5 * kMs);
  h.s2c(c.resp(3, {{":status", "204"}}, true), kT0 + 6 * kMs);
  DUMP(h);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["response"]["body_bytes"], 1000);
  EXPECT_EQ(flags_of(h.rec(0)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(1)["request"]["path"], "/next");
  EXPECT_EQ(h.rec(1)["response"]["status_code"], 204);
  EXPECT_EQ(h.counters().gaps_absorbed, 1u);
  h.expect_ledger();
}

Headers grpc_req(const std::string& path) {
  return {{":method", "POST"}, {":scheme", "http"}, {":path", path}, {":authority", "localhost:50051"},
          {"content-type", "application/grpc"}, {"te", "trailers"}, {"grpc-encoding", "identity"},
          {"user-agent", "grpc-python/1.51.1"}, {"authorization", "Bearer abc.def"}, {"x-api-key", "s3cr3t"}};
}

std::string grpc_msg(size_t n) { return std::string("\x00", 1) + be32(static_cast<uint32_t>(n)) + std::string(n, 'm'); }

TEST(Grpc, UnaryAndServerStreamingCallsWithTrailers) {
  Harness h;
  h.open(50051);
  Conn c{h};
  c.start(kT0);
  // Unary, answered NOT_FOUND in trailers; the message split across two DATA frames.
  const std::string m = grpc_msg(10);
  h.c2s(c.req(1, grpc_req("/corpus.Inventory/GetItem"), false) + frame(0, 0, 1, m.substr(0, 3)) +
            frame(0, kEndStream, 1, m.substr(3)),
        kT0 + kMs);
  std::string unary = c.resp(1, {{":status", "200"}, {"content-type", "application/grpc"}}, false);
  unary += frame(0, 0, 1, grpc_msg(0));
  unary += c.resp(1, {{"grpc-status", "5"}, {"grpc-message", "no such item"}}, true);  // trailers
  h.s2c(unary, kT0 + 3 * kMs);
  // Server streaming: three messages in one DATA frame, OK.
  h.c2s(c.req(3, grpc_req("/corpus.Inventory/ListItems"), false) + frame(0, kEndStream, 3, grpc_msg(4)), kT0 + 4 * kMs);
  std::string stream = c.resp(3, {{":status", "200"}, {"content-type", "application/grpc"}}, false);
  stream += frame(0, 0, 3, grpc_msg(7) + grpc_msg(8) + grpc_msg(9));
  stream += c.resp(3, {{"grpc-status", "0"}}, true);
  h.s2c(stream, kT0 + 6 * kMs);
  DUMP(h);
  ASSERT_EQ(h.size(), 2u);
  const json u = h.rec(0);
  EXPECT_EQ(u["protocol"], "grpc");
  EXPECT_EQ(u["status"], "error");
  EXPECT_EQ(u["request"]["service"], "corpus.Inventory");
  EXPECT_EQ(u["request"]["grpc_method"], "GetItem");
  EXPECT_EQ(u["request"]["call_type"], "unary");
  EXPECT_EQ(u["request"]["messages"], 1);
  EXPECT_EQ(u["request"]["message_bytes"], 10);
  EXPECT_EQ(u["request"]["grpc_encoding"], "identity");
  EXPECT_EQ(u["request"]["authorization"], "<redacted>");
  EXPECT_EQ(u["request"]["metadata"], "x-api-key");  // the name only: its value is never kept
  EXPECT_EQ(u.dump().find("s3cr3t"), std::string::npos);
  EXPECT_EQ(u.dump().find("abc.def"), std::string::npos);
  EXPECT_EQ(u["response"]["grpc_status"], 5);
  EXPECT_EQ(u["response"]["grpc_status_name"], "NOT_FOUND");
  EXPECT_EQ(u["response"]["grpc_message"], "no such item");
  EXPECT_EQ(u["response"]["messages"], 1);
  EXPECT_EQ(u["response"]["message_bytes"], 0);
  EXPECT_EQ(u["latency_us"], 2000);
  const json s = h.rec(1);
  EXPECT_EQ(s["status"], "ok");
  EXPECT_EQ(s["request"]["call_type"], "server_streaming");
  EXPECT_EQ(s["response"]["messages"], 3);
  EXPECT_EQ(s["response"]["message_bytes"], 24);
  EXPECT_EQ(s["response"]["grpc_status_name"], "OK");
  EXPECT_EQ(h.counters().of(Protocol::kGrpc, RecordStatus::kError), 1u);
  EXPECT_EQ(h.counters().of(Protocol::kGrpc, RecordStatus::kOk), 1u);
  h.expect_ledger();
}

TEST(Http2, UpgradeFromHttp1) {
  Harness h;
  h.open(80);
  Encoder srv;
  h.c2s("GET /hello HTTP/1.1\r\nHost: web.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nUser-Agent: curl/7.88.1\r\n\r\n",
        kT0);
  // The 101, then (same segment) the server's SETTINGS and the answer to the request on stream 1.
  h.s2c("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + frame(4, 0, 0, "") +
            frame(1, kEndHeaders, 1, srv.block({{":status", "200"}, {"content-type", "text/html"}})) +
            frame(0, kEndStream, 1, "<html/>"),
        kT0 + 2 * kMs);
  Encoder cli;
  h.c2s(kPreface + frame(4, 0, 0, "") + frame(4, 1, 0, "") +
            frame(1, kEndHeaders | kEndStream, 3, cli.block(get("/second"))),
        kT0 + 3 * kMs);
  h.s2c(frame(1, kEndHeaders | kEndStream, 3, srv.block({{":status", "404"}})), kT0 + 4 * kMs);
  DUMP(h);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(0)["protocol"], "http");
  EXPECT_EQ(h.rec(0)["response"]["status_code"], 101);
  const json r1 = h.rec(1);
  EXPECT_EQ(r1["protocol"], "http2");
  EXPECT_EQ(r1["request"]["stream_id"], 1);
  EXPECT_EQ(r1["request"]["method"], "GET");
  EXPECT_EQ(r1["request"]["path"], "/hello");
  EXPECT_EQ(r1["request"]["authority"], "web.example");
  EXPECT_EQ(r1["response"]["status_code"], 200);
  EXPECT_EQ(r1["response"]["body_bytes"], 7);
  EXPECT_EQ(r1["latency_us"], 2000);
  EXPECT_EQ(h.rec(2)["request"]["path"], "/second");
  EXPECT_EQ(h.rec(2)["response"]["status_code"], 404);
  h.expect_ledger();
}

TEST(Http2, ConnectionPoolAndStreamTableAreBounded) {
  DecodeConfig cfg = dectest::small_config();
  cfg.options.push_back({Protocol::kHttp2, "connections", 1});
  cfg.options.push_back({Protocol::kHttp2, "max_streams", 2});
  Harness h(cfg);
  h.open(kPort, false, kT0, 0, 40000);
  Conn c{h};
  c.start(kT0);
  h.open(kPort, false, kT0, 1, 40001);
  h.c2s(kPreface, kT0, 1);  // a second connection: no context left, counted, not decoded
  EXPECT_EQ(h.counters().h2_connections_untracked, 1u);
  // Three open streams on a table of two: the first ends early (truncated, pending -> timeout at close).
  std::string three = c.req(1, get("/1"), true);
  three += c.req(3, get("/3"), true);
  three += c.req(5, get("/5"), true);
  h.c2s(three, kT0 + kMs);
  EXPECT_EQ(h.counters().h2_streams_evicted, 1u);
  std::string answers = c.resp(3, {{":status", "200"}}, true);
  answers += c.resp(5, {{":status", "200"}}, true);
  h.s2c(answers, kT0 + 2 * kMs);
  h.close(kT0 + 3 * kMs);
  h.close(kT0 + 3 * kMs, 1);
  DUMP(h);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(0)["request"]["path"], "/3");
  EXPECT_EQ(h.rec(1)["request"]["path"], "/5");
  EXPECT_EQ(h.rec(2)["status"], "timeout");
  EXPECT_EQ(h.rec(2)["request"]["path"], "/1");
  EXPECT_EQ(h.builder().messages_in_use(), 0u);
  h.expect_ledger();
}

// More streams open than the table holds (h2load, browsers: 100 at once; the table keeps max_streams):
// an evicted stream's request stays pending under its id, and its response, when it comes, opens the
// stream again and pairs with it: one record per stream, no empty request left to time out.
TEST(Http2, EvictedStreamsStillPairWithTheirResponses) {
  DecodeConfig cfg = dectest::small_config();
  cfg.options.push_back({Protocol::kHttp2, "max_streams", 2});
  Harness h(cfg);
  h.open(kPort);
  Conn c{h};
  c.start(kT0);
  std::string four;
  for (uint32_t sid : {1u, 3u, 5u, 7u}) four += c.req(sid, get("/" + std::to_string(sid)), true);
  h.c2s(four, kT0 + kMs);
  EXPECT_EQ(h.counters().h2_streams_evicted, 2u);
  // Answered in order, the evicted ones first (their ids are not among the recently closed).
  for (uint32_t sid : {1u, 3u, 5u, 7u}) {
    const std::string code = sid == 5 ? "404" : "200";
    h.s2c(c.resp(sid, {{":status", code}}, false) + frame(0, kEndStream, sid, "body" + std::to_string(sid)),
          kT0 + (1 + sid) * kMs);
  }
  h.close(kT0 + 20 * kMs);
  DUMP(h);
  ASSERT_EQ(h.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    const json r = h.rec(i);
    const uint32_t sid = static_cast<uint32_t>(2 * i + 1);
    EXPECT_EQ(r["status"], "ok") << i;
    EXPECT_EQ(r["request"]["method"], "GET") << i;
    EXPECT_EQ(r["request"]["path"], "/" + std::to_string(sid)) << i;
    EXPECT_EQ(r["request"]["stream_id"], sid) << i;
    EXPECT_EQ(r["response"]["status_code"], sid == 5 ? 404 : 200) << i;
    EXPECT_EQ(r["response"]["body_bytes"], 5) << i;
    EXPECT_EQ(r["latency_us"], sid * 1000) << i;
    EXPECT_TRUE(flags_of(r).empty()) << i;
  }
  EXPECT_EQ(h.builder().messages_in_use(), 0u);
  h.expect_ledger();
}

TEST(Http2, SniffFindsThePrefaceAndMidConnectionHeaders) {
  Harness h;
  h.open(4444);  // no port mapping: the preface finds it
  Conn c{h};
  c.start(kT0);
  h.c2s(c.req(1, get("/sniffed"), true), kT0 + kMs);
  h.s2c(c.resp(1, {{":status", "200"}}, true), kT0 + 2 * kMs);
  DUMP(h);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["request"]["path"], "/sniffed");
  // A capture that starts mid-connection: a HEADERS frame whose first field is :method POST (static table).
  Encoder e;
  const std::string hf = frame(1, kEndHeaders | kEndStream, 7, e.block({{":method", "POST"}, {":path", "/x"}}));
  EXPECT_EQ(spanfeed::protocol_descriptor(Protocol::kHttp2)->confirm(dectest::bytes_of(hf), Transport::kTcp),
            SniffResult::kRequest);
  EXPECT_EQ(spanfeed::protocol_descriptor(Protocol::kHttp2)->confirm(dectest::bytes_of("GET / HTTP/1.1\r\n"), Transport::kTcp),
            SniffResult::kNo);
  h.expect_ledger();
}

// h2c on 8080, an HTTP/1 port, met mid-connection (no preface in the capture): the server's first bytes are
// the end of a DATA frame; the client's next HEADERS frame hands the flow from HTTP/1 to HTTP/2. (Before,
// HTTP/1 kept the flow and every stream of such connections was lost: 132 of 276 records on the corpus
// h2c capture cut after a third.)
TEST(Http2, MidConnectionOnAnHttp1PortIsHandedOver) {
  Harness h;
  h.open(8080);
  Conn c{h};
  h.s2c(std::string("tail of a body\x00\x01", 16), kT0);
  h.c2s(c.req(41, get("/after-the-cut"), true), kT0 + kMs);
  h.s2c(c.resp(41, {{":status", "200"}}, false) + frame(0, kEndStream, 41, "hello"), kT0 + 2 * kMs);
  h.close(kT0 + 3 * kMs);
  DUMP(h);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["protocol"], "http2");
  EXPECT_EQ(h.rec(0)["request"]["path"], "/after-the-cut");
  EXPECT_EQ(h.rec(0)["request"]["stream_id"], 41);
  EXPECT_EQ(h.rec(0)["response"]["status_code"], 200);
  EXPECT_EQ(h.rec(0)["response"]["body_bytes"], 5);
  EXPECT_EQ(h.rec(0)["latency_us"], 1000);
  EXPECT_EQ(h.counters().detect[static_cast<size_t>(DetectOutcome::kByPort)], 1u);
  h.expect_ledger();
}

// The same connection from its start, with the client's preface and first HEADERS lost: the server's
// SETTINGS and response HEADERS hand the flow to HTTP/2, which now hears of the client's gap. The stream
// whose request was never seen is flagged gap (it was a clean `ok` with an empty request: 14 records of a
// lossy replay of the corpus h2c capture).
TEST(Http2, TakenOverAfterAClientGapFlagsStreamsWithoutRequest) {
  Harness h;
  h.open(8080);
  Conn c{h};
  h.gap(Direction::kClientToServer, 90, kT0);  // preface, SETTINGS, HEADERS of stream 1
  h.s2c(frame(4, 0, 0, "") + c.resp(1, {{":status", "200"}}, false) + frame(0, kEndStream, 1, "hi"), kT0 + kMs);
  h.close(kT0 + 2 * kMs);
  DUMP(h);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["protocol"], "http2");
  EXPECT_EQ(h.rec(0)["request"]["stream_id"], 1);
  EXPECT_EQ(h.rec(0)["response"]["status_code"], 200);
  EXPECT_EQ(h.rec(0)["flags"], json::array({"gap"}));
  h.expect_ledger();
}

// HTTP/2 with prior knowledge on an HTTP port while the HTTP/1 decoder still has a response open (its
// head not ended): the preface hands the flow over, and that response ends first, a record flagged
// truncated, instead of staying in the message pool for good (the fuzzer's find: with the pool at 64
// messages, each such flow took one message until the worker had none).
TEST(Http2, PrefaceWhileAnHttp1ResponseIsOpenEndsThatResponse) {
  Harness h;
  h.open(8080);
  Conn c{h};
  h.s2c("HTTP/1.1 500 Internal Server Error\r\nContent-Ty", kT0);
  c.start(kT0 + kMs);
  h.c2s(c.req(1, get("/h2"), true), kT0 + 2 * kMs);
  h.s2c(c.resp(1, {{":status", "204"}}, true), kT0 + 3 * kMs);
  EXPECT_EQ(h.builder().messages_in_use(), 0u);
  h.close(kT0 + 4 * kMs);
  DUMP(h);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["protocol"], "http");
  EXPECT_EQ(h.rec(0)["response"]["status_code"], 500);
  EXPECT_EQ(h.rec(0)["status"], "unmatched");
  EXPECT_EQ(h.rec(0)["flags"], json::array({"truncated"}));
  EXPECT_EQ(h.rec(1)["protocol"], "http2");
  EXPECT_EQ(h.rec(1)["request"]["path"], "/h2");
  EXPECT_EQ(h.rec(1)["response"]["status_code"], 204);
  EXPECT_EQ(h.builder().messages_in_use(), 0u);
  h.expect_ledger();
}

}  // namespace
}  // namespace spanfeed
