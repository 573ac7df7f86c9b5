// Tests for RED metrics: endpoint functions of every protocol's descriptor, path templates, SQL
// fingerprints and top N, the worker aggregator (exact counts, buckets, LRU folding, a 100,000-path
// scan with no allocation), the control core's merge, and the red: config section. Test only.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "decode/decode_config.h"
#include "decode/text_memo.h"
#include "red/aggregator.h"
#include "red/exchange.h"
#include "red/merger.h"
#include "spanfeed/config.h"
#include "spanfeed/protocol.h"

// Allocation counter: the hot path must not allocate.
static std::atomic<uint64_t> g_allocs{0};
void* operator new(size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace spanfeed {
namespace {

struct Rec {
  Message req, resp;
  Record r;
  explicit Rec(Protocol p, RecordStatus st = RecordStatus::kOk) {
    r.protocol = p;
    r.status = st;
    r.request = &req;
    r.response = st == RecordStatus::kTimeout ? nullptr : &resp;
    r.ip_version = 4;
    r.server.ip.bytes[0] = 10;
    r.server.ip.bytes[3] = 5;
    r.server.port = 3306;
  }
  // The record points at this copy's messages.
  Rec(const Rec& o) : req(o.req), resp(o.resp), r(o.r) {
    r.request = o.r.request != nullptr ? &req : nullptr;
    r.response = o.r.response != nullptr ? &resp : nullptr;
  }
  Rec& operator=(const Rec&) = delete;
};

std::string endpoint_of(const Record& r, TopNames* top = nullptr) {
  const ProtocolDescriptor* d = protocol_descriptor(r.protocol);
  EXPECT_NE(d, nullptr);
  EXPECT_NE(d->endpoint, nullptr) << to_string(r.protocol);
  EndpointWriter w(top);
  if (!d->endpoint(r, w)) return "(skip)";
  return std::string(w.view());
}

TEST(Endpoint, IdSegments) {
  EXPECT_TRUE(is_id_segment("12345"));
  EXPECT_TRUE(is_id_segment("550e8400-e29b-41d4-a716-446655440000"));
  EXPECT_TRUE(is_id_segment("0123456789abcdef0123"));
  EXPECT_TRUE(is_id_segment("deadbeef42"));
  EXPECT_FALSE(is_id_segment("users"));
  EXPECT_FALSE(is_id_segment("v2"));
  EXPECT_FALSE(is_id_segment("cafe"));      // short hex word
  EXPECT_FALSE(is_id_segment("deadbeef"));  // hex letters only, under 16
  EXPECT_FALSE(is_id_segment(""));
}

TEST(Endpoint, PathTemplates) {
  auto t = [](std::string_view p) {
    EndpointWriter w;
    w.add_path_template(p);
    return std::string(w.view());
  };
  EXPECT_EQ(t("/users/42/orders/550e8400-e29b-41d4-a716-446655440000"), "/users/{id}/orders/{id}");
  EXPECT_EQ(t("/api/v2/items?id=7&x=1"), "/api/v2/items");
  EXPECT_EQ(t("http://example.com/a/123#frag"), "/a/{id}");
  EXPECT_EQ(t("/blob/0123456789abcdef0123/raw/"), "/blob/{id}/raw/");
  EXPECT_EQ(t(""), "/");
  EXPECT_EQ(t("/caf\xc3\xa9\n"), "/caf???");  // label values stay printable ASCII
  EndpointWriter w;
  w.add_path_template(std::string(400, 'z'));
  EXPECT_EQ(w.size(), EndpointWriter::kMax);
}

TEST(Endpoint, NonPrintableBytesAnywhere) {
  // add() checks words of eight bytes and a masked tail: a bad byte in any position, in strings of
  // every length around the word size, near the end of the buffer too.
  for (size_t n = 1; n <= 24; ++n) {
    for (size_t bad = 0; bad < n; ++bad) {
      for (char c : {'\x00', '\x1f', '\x7f', '\x80', '\xff'}) {
        std::string s(n, 'a');
        s[bad] = c;
        std::string want(n, 'a');
        want[bad] = '?';
        for (size_t lead : {size_t{0}, size_t{3}, EndpointWriter::kMax - n}) {
          EndpointWriter w;
          w.add(std::string(lead, 'b'));
          w.add(s);
          EXPECT_EQ(w.view(), std::string(lead, 'b') + want) << n << " " << bad << " " << lead;
        }
      }
    }
  }
  EndpointWriter w;
  w.add(" ~ok~ ");
  EXPECT_EQ(w.view(), " ~ok~ ");  // 0x20 and 0x7e are printable
}

TEST(Endpoint, PathTemplatesRemembered) {
  // With a memo the template of a path seen before comes from it: the same text, also cut the same
  // way when less room is left.
  TextMemo memo(16);
  for (int round = 0; round < 2; ++round) {
    EndpointWriter w;
    w.set_path_memo(&memo);
    w.add_path_template("/users/42/orders");
    EXPECT_EQ(w.view(), "/users/{id}/orders");
    EndpointWriter cut;
    cut.set_path_memo(&memo);
    cut.add(std::string(EndpointWriter::kMax - 5, 'm'));
    cut.add_path_template("/users/42/orders");
    EXPECT_EQ(cut.view(), std::string(EndpointWriter::kMax - 5, 'm') + "/user");
  }
}

TEST(Endpoint, EveryProtocolHasOne) {
  for (const ProtocolDescriptor* d : protocol_registry()) EXPECT_NE(d->endpoint, nullptr) << d->name;
}

TEST(Endpoint, PerProtocol) {
  {
    Rec x(Protocol::kHttp);
    x.req.fields.add_string("method", "GET");
    x.req.fields.add_string("path", "/users/42/profile");
    EXPECT_EQ(endpoint_of(x.r), "GET /users/{id}/profile");
  }
  {
    Rec x(Protocol::kHttp);
    x.req.fields.add_string("method", "CONNECT");
    x.req.fields.add_string("path", "example.com:443");
    EXPECT_EQ(endpoint_of(x.r), "CONNECT");
  }
  {
    Rec x(Protocol::kHttp2);
    x.req.fields.add_string("method", "POST");
    x.req.fields.add_string("path", "/v1/carts/99?expand=1");
    EXPECT_EQ(endpoint_of(x.r), "POST /v1/carts/{id}");
  }
  {
    Rec x(Protocol::kGrpc);
    x.req.fields.add_string("service", "helloworld.Greeter");
    x.req.fields.add_string("grpc_method", "SayHello");
    EXPECT_EQ(endpoint_of(x.r), "helloworld.Greeter/SayHello");
  }
  {
    Rec x(Protocol::kMysql);
    x.req.fields.add_string("command", "COM_QUERY");
    x.req.fields.add_string("normalized", "select *  from t where id in (?, ?,?) and\n x = ?");
    EXPECT_EQ(endpoint_of(x.r), "COM_QUERY select * from t where id in (?+) and x = ?");
  }
  {
    Rec x(Protocol::kMysql);
    x.req.fields.add_string("command", "COM_PING");
    EXPECT_EQ(endpoint_of(x.r), "COM_PING");
  }
  {
    Rec x(Protocol::kPgsql);
    x.req.fields.add_string("command", "QUERY");
    x.req.fields.add_string("normalized", "SELECT 1");
    EXPECT_EQ(endpoint_of(x.r), "QUERY SELECT 1");
  }
  {
    Rec x(Protocol::kRedis);
    x.req.fields.add_string("command", "HGETALL");
    x.req.fields.add_string("key", "user:1");
    EXPECT_EQ(endpoint_of(x.r), "HGETALL");
  }
  {
    Rec x(Protocol::kMemcached);
    x.req.fields.add_string("command", "get");
    EXPECT_EQ(endpoint_of(x.r), "get");
  }
  {
    Rec x(Protocol::kMongodb);
    x.req.fields.add_string("command", "find");
    x.req.fields.add_string("collection", "orders");
    EXPECT_EQ(endpoint_of(x.r), "find orders");
  }
  {
    Rec x(Protocol::kDns);
    x.req.fields.add_string("qtype", "AAAA");
    x.resp.fields.add_string("rcode", "NXDOMAIN");
    EXPECT_EQ(endpoint_of(x.r), "AAAA NXDOMAIN");
    Rec y(Protocol::kDns, RecordStatus::kTimeout);
    y.req.fields.add_string("qtype", "A");
    EXPECT_EQ(endpoint_of(y.r), "A");
  }
  {
    Rec x(Protocol::kKafka);
    x.req.fields.add_string("api", "Produce");
    x.req.fields.add_raw_json("topics", "[\"orders\",\"audit\"]");
    EXPECT_EQ(endpoint_of(x.r), "Produce orders+");
    Rec y(Protocol::kKafka);
    y.req.fields.add_string("api", "Metadata");
    EXPECT_EQ(endpoint_of(y.r), "Metadata");
  }
  {
    Rec x(Protocol::kAmqp);
    x.req.fields.add_string("method", "basic.publish");
    x.req.fields.add_string("exchange", "");
    x.req.fields.add_string("routing_key", "jobs");
    EXPECT_EQ(endpoint_of(x.r), "basic.publish (default)");
    Rec y(Protocol::kAmqp);
    y.req.fields.add_string("method", "queue.declare");
    y.req.fields.add_string("queue", "amq.gen-JzTY20BRgKO-HjmUJj0wLg");
    EXPECT_EQ(endpoint_of(y.r), "queue.declare amq.gen-{id}");
    Rec z(Protocol::kAmqp);
    z.req.fields.add_string("method", "exchange.declare");
    z.req.fields.add_string("exchange", "logs");
    EXPECT_EQ(endpoint_of(z.r), "exchange.declare logs");
  }
  {
    Rec x(Protocol::kMqtt);
    x.req.fields.add_string("packet", "SUBSCRIBE");
    x.req.fields.add_string("topic_filters", "sensors/#");
    EXPECT_EQ(endpoint_of(x.r), "SUBSCRIBE sensors/#");
  }
  {
    Rec x(Protocol::kTls);
    x.req.fields.add_string("kind", "handshake");
    x.req.fields.add_string("sni", "api.example.com");
    EXPECT_EQ(endpoint_of(x.r), "handshake api.example.com");
    Rec y(Protocol::kTls);
    y.req.fields.add_string("kind", "close");
    EXPECT_EQ(endpoint_of(y.r), "(skip)");
  }
  {
    Rec x(Protocol::kSmtp);
    x.req.fields.add_string("command", "RCPT");
    EXPECT_EQ(endpoint_of(x.r), "RCPT");
  }
}

TEST(Endpoint, TopNKeepsTheFrequentNames) {
  TopNames top(5, 512);
  auto admitted = [&](const std::string& n) { return top.admit(n); };
  // 5 rare names fill the table first; then 5 frequent ones among 20,000 one-off names.
  for (int i = 0; i < 5; ++i) admitted("early" + std::to_string(i));
  int frequent_named = 0, rare_named = 0;
  for (int i = 0; i < 20000; ++i) {
    if (admitted("hot" + std::to_string(i % 5))) ++frequent_named;
    if (admitted("rare" + std::to_string(i))) ++rare_named;
  }
  EXPECT_EQ(top.admitted(), 5u);
  EXPECT_GT(frequent_named, 20000 * 9 / 10);  // the hot names took the slots
  EXPECT_LT(rare_named, 20000 / 10);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(admitted("hot" + std::to_string(i)));
}

// The fingerprint as first written (one byte per step): the run-copying one must give the same names.
std::string reference_fingerprint(std::string_view normalized) {
  std::string fp;
  const size_t cap = EndpointWriter::kMax;
  bool space = false;
  for (size_t i = 0; i < normalized.size() && fp.size() < cap; ++i) {
    char c = normalized[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = !fp.empty();
      continue;
    }
    if (c == '?' && i + 1 < normalized.size()) {
      size_t j = i + 1;
      bool list = false;
      while (true) {
        size_t k = j;
        while (k < normalized.size() && normalized[k] == ' ') ++k;
        if (k < normalized.size() && normalized[k] == ',') {
          ++k;
          while (k < normalized.size() && normalized[k] == ' ') ++k;
          if (k < normalized.size() && normalized[k] == '?') {
            list = true;
            j = k + 1;
            continue;
          }
        }
        break;
      }
      if (list) {
        if (space && fp.size() < cap) fp += ' ';
        space = false;
        if (fp.size() < cap) fp += '?';
        if (fp.size() < cap) fp += '+';
        i = j - 1;
        continue;
      }
    }
    if (space && fp.size() < cap) fp += ' ';
    space = false;
    if (fp.size() < cap) fp += c;
  }
  return fp;
}

TEST(Endpoint, SqlFingerprintMatchesTheBytewiseOne) {
  std::mt19937 rng(5);
  const std::vector<std::string> pieces = {"select", "insert into t", " ", "  ", "\t", "\n", "?", ",", ", ", "(", ")",
                                           "?,?", "? , ?", "where id = ", "x", "`a b`", "values", "\r"};
  for (int i = 0; i < 20000; ++i) {
    std::string q;
    for (size_t k = rng() % 40; k > 0; --k) q += pieces[rng() % pieces.size()];
    EndpointWriter w;
    w.add_sql_fingerprint(q);
    ASSERT_EQ(w.view(), reference_fingerprint(q)) << '[' << q << ']';
  }
  EndpointWriter w;
  w.add_sql_fingerprint("insert into t values (?, ?,?) ,  (?)");
  EXPECT_EQ(w.view(), "insert into t values (?+) , (?)");
}

// --- aggregator ---

RedConfig small_config(uint32_t cap) {
  RedConfig c;
  c.max_series = cap;
  return c;
}

Rec http(const std::string& path, RecordStatus st = RecordStatus::kOk, uint64_t latency_us = 0) {
  Rec x(Protocol::kHttp, st);
  x.req.fields.add_string("method", "GET");
  x.req.fields.add_string("path", path);
  x.req.bytes = 100;
  x.resp.bytes = st == RecordStatus::kTimeout ? 0 : 1000;
  x.r.server.port = 80;
  x.r.has_latency = latency_us != 0;
  x.r.latency_us = latency_us;
  return x;
}

const red::Counts* find(const red::Delta& d, std::string_view endpoint, uint8_t status, size_t* index = nullptr) {
  for (size_t i = 0; i < d.size(); ++i) {
    if (d.keys[i].endpoint_view() == endpoint && d.keys[i].status == status && !d.keys[i].other) {
      if (index) *index = i;
      return &d.counts[i];
    }
  }
  return nullptr;
}

TEST(Aggregator, ExactCountsAndBuckets) {
  red::Shared sh(small_config(100));
  ASSERT_EQ(sh.bounds_us.front(), 50u);
  ASSERT_EQ(sh.bounds_us.back(), 60'000'000u);
  ASSERT_EQ(sh.bounds_us[1], 100u);
  red::Aggregator a(sh, 1);
  const uint64_t lat[] = {50, 51, 100, 60'000'000, 60'000'001};
  for (uint64_t us : lat) a.add(http("/users/" + std::to_string(us), RecordStatus::kOk, us).r);
  a.add(http("/users/7", RecordStatus::kError, 300).r);
  a.add(http("/users/8", RecordStatus::kTimeout).r);
  a.add(http("/health").r);
  EXPECT_EQ(a.series(), 4u);  // GET /users/{id} ok, error, timeout; GET /health ok
  red::Delta d;
  d.reserve(a.capacity_for_harvest(), sh.buckets());
  a.harvest(d);
  ASSERT_EQ(d.size(), 4u);
  size_t i = 0;
  const red::Counts* ok = find(d, "GET /users/{id}", uint8_t(RecordStatus::kOk), &i);
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(ok->requests, 5u);
  EXPECT_EQ(ok->errors, 0u);
  EXPECT_EQ(ok->request_bytes, 500u);
  EXPECT_EQ(ok->response_bytes, 5000u);
  EXPECT_EQ(ok->duration_count, 5u);
  EXPECT_EQ(ok->duration_sum_us, 50u + 51 + 100 + 60'000'000 + 60'000'001);
  const uint64_t* h = &d.hist[i * sh.buckets()];
  EXPECT_EQ(h[0], 1u);  // 50 <= 50 us
  EXPECT_EQ(h[1], 2u);  // 51, 100 <= 100 us
  EXPECT_EQ(h[sh.buckets() - 2], 1u);  // 60 s exactly
  EXPECT_EQ(h[sh.buckets() - 1], 1u);  // +Inf
  const red::Counts* er = find(d, "GET /users/{id}", uint8_t(RecordStatus::kError));
  ASSERT_NE(er, nullptr);
  EXPECT_EQ(er->requests, 1u);
  EXPECT_EQ(er->errors, 1u);
  const red::Counts* to = find(d, "GET /users/{id}", uint8_t(RecordStatus::kTimeout));
  ASSERT_NE(to, nullptr);
  EXPECT_EQ(to->errors, 1u);
  EXPECT_EQ(to->duration_count, 0u);
  EXPECT_EQ(to->response_bytes, 0u);
  EXPECT_EQ(d.keys[i].port, 80);
  EXPECT_EQ(d.keys[i].ip[0], 10);
  // a second harvest has nothing: the counts were handed over
  d.clear();
  a.harvest(d);
  EXPECT_EQ(d.size(), 0u);
  EXPECT_EQ(a.series(), 4u);
}

TEST(Aggregator, LabelsAndServicesShapeTheKey) {
  RedConfig c = small_config(100);
  RedService s;
  ASSERT_TRUE(parse_red_address("10.0.0.5:3306", s));
  s.name = "orders-db";
  c.services.push_back(s);
  c.protocols.push_back({"http", true, red_label::kServerPort});  // port only: no endpoint, no status
  c.protocols.push_back({"redis", false, RedConfig::kInheritLabels});
  red::Shared sh(c);
  red::Aggregator a(sh, 7);
  Rec m(Protocol::kMysql);
  m.req.fields.add_string("command", "COM_PING");
  a.add(m.r);
  a.add(http("/a").r);
  a.add(http("/b", RecordStatus::kError).r);
  Rec rd(Protocol::kRedis);
  a.add(rd.r);
  red::Delta d;
  a.harvest(d);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d.skipped, 1u);
  for (size_t i = 0; i < d.size(); ++i) {
    const red::SeriesKey& k = d.keys[i];
    if (k.protocol == uint8_t(Protocol::kMysql)) {
      EXPECT_EQ(k.service, 0);
      EXPECT_EQ(k.ip_version, 0);
      EXPECT_EQ(k.endpoint_view(), "COM_PING");
    } else {
      EXPECT_EQ(k.protocol, uint8_t(Protocol::kHttp));
      EXPECT_EQ(k.status, red::kNoStatus);
      EXPECT_EQ(k.endpoint_len, 0);
      EXPECT_EQ(k.port, 80);
      EXPECT_EQ(d.counts[i].requests, 2u);
      EXPECT_EQ(d.counts[i].errors, 1u);
    }
  }
}

TEST(Aggregator, LeastRecentlySeenFoldsIntoOther) {
  red::Shared sh(small_config(3));
  red::Aggregator a(sh, 3);
  a.add(http("/a").r);
  a.add(http("/b").r);
  a.add(http("/b").r);
  a.add(http("/c").r);
  a.add(http("/a").r);  // /b is now the least recently seen
  a.add(http("/d").r);  // folds /b (2 records)
  a.add(http("/e").r);  // folds /c (1 record)
  EXPECT_EQ(a.series(), 3u);
  EXPECT_EQ(a.folded_records_total(), 3u);
  red::Delta d;
  a.harvest(d);
  EXPECT_EQ(d.folded_records, 3u);
  EXPECT_EQ(d.folded_series, 2u);
  uint64_t total = 0, other = 0;
  for (size_t i = 0; i < d.size(); ++i) {
    total += d.counts[i].requests;
    if (d.keys[i].other) other += d.counts[i].requests;
  }
  EXPECT_EQ(total, 7u);  // nothing lost
  EXPECT_EQ(other, 3u);
  ASSERT_NE(find(d, "GET /a", 0), nullptr);
  EXPECT_EQ(find(d, "GET /a", 0)->requests, 2u);
  EXPECT_EQ(find(d, "GET /b", 0), nullptr);
}

TEST(Aggregator, HundredThousandPathsStayAtTheCapWithoutAllocating) {
  constexpr uint32_t kCap = 10'000;
  constexpr int kPaths = 100'000;
  red::Shared sh(small_config(kCap));
  red::Aggregator a(sh, 11);
  red::Delta d;
  d.reserve(a.capacity_for_harvest(), sh.buckets());
  // Build the records first (the strings allocate), then count allocations while adding.
  std::vector<Rec> recs;
  recs.reserve(1000);
  for (int i = 0; i < 1000; ++i) recs.push_back(http("/p", RecordStatus::kOk, 1000));
  uint64_t harvested = 0, harvested_other = 0;
  auto tally = [&] {
    for (size_t j = 0; j < d.size(); ++j) {
      harvested += d.counts[j].requests;
      if (d.keys[j].other) harvested_other += d.counts[j].requests;
    }
  };
  const uint64_t before = g_allocs.load();
  for (int i = 0; i < kPaths; ++i) {
    Rec& x = recs[static_cast<size_t>(i % 1000)];
    char path[32];
    const int n = std::snprintf(path, sizeof(path), "/item-x%d", i);  // not an id: one series each
    x.req.fields.clear();
    x.req.fields.add_string("method", "GET");
    x.req.fields.add_string("path", std::string_view(path, static_cast<size_t>(n)));
    a.add(x.r);
    if (i % 20'000 == 19'999) {  // the control core takes a harvest now and then
      d.clear();
      a.harvest(d);
      tally();
    }
  }
  d.clear();
  a.harvest(d);
  tally();
  EXPECT_EQ(g_allocs.load() - before, 0u) << "the worker allocated while aggregating";
  EXPECT_EQ(a.series(), kCap);
  EXPECT_EQ(harvested, uint64_t(kPaths));  // every record handed over once
  // Folding moves only counts not handed over yet: 10,000 of every 20,000 between harvests.
  EXPECT_EQ(a.folded_records_total(), uint64_t(kPaths / 2));
  EXPECT_EQ(harvested_other, a.folded_records_total());
  // Without harvests in between, every record past the cap folds.
  red::Aggregator c(sh, 13);
  for (int i = 0; i < kPaths; ++i) {
    Rec& x = recs[static_cast<size_t>(i % 1000)];
    char path[32];
    const int n = std::snprintf(path, sizeof(path), "/item-z%d", i);
    x.req.fields.clear();
    x.req.fields.add_string("method", "GET");
    x.req.fields.add_string("path", std::string_view(path, static_cast<size_t>(n)));
    c.add(x.r);
  }
  EXPECT_EQ(c.series(), kCap);
  EXPECT_EQ(c.folded_records_total(), uint64_t(kPaths - kCap));
  // The merge is bounded too: /metrics keeps max_series series, the rest counted under other.
  red::Shared msh(small_config(kCap));
  red::Merger m(msh, 1);
  red::Aggregator b(msh, 12);
  red::Delta db;
  db.reserve(b.capacity_for_harvest(), msh.buckets());
  uint64_t total = 0;
  for (int i = 0; i < kPaths; ++i) {
    Rec x = http("/item-y" + std::to_string(i));
    b.add(x.r);
    ++total;
    if (i % 5'000 == 4'999) {
      db.clear();
      b.harvest(db);
      m.add(0, db, i / 5'000.0);  // under red.retire_idle_s: nothing retires
    }
  }
  EXPECT_LE(m.series(), size_t{kCap} + kRecordStatusCount * kProtocolCount);
  auto rep = m.report();
  uint64_t sum = 0;
  for (const auto& s : rep->series) sum += s.c.requests;
  EXPECT_EQ(sum, total);  // every record is in some series
  EXPECT_EQ(rep->folded_records_merge, uint64_t(kPaths - kCap));
  EXPECT_EQ(rep->retired_series, 0u);
}

TEST(Merger, SumsWorkersAndRetiresIdleSeries) {
  RedConfig c = small_config(2);
  c.retire_idle_s = 10;
  red::Shared sh(c);
  red::Merger m(sh, 2);
  red::Aggregator w0(sh, 1), w1(sh, 2);
  red::Delta d;
  w0.add(http("/a").r);
  w1.add(http("/a").r);
  w1.add(http("/b").r);
  w0.harvest(d);
  m.add(0, d, 0);
  d.clear();
  w1.harvest(d);
  m.add(1, d, 0);
  auto r = m.report();
  ASSERT_EQ(r->series.size(), 2u);
  for (const auto& s : r->series) {
    EXPECT_EQ(s.c.requests, s.key.endpoint_view() == "GET /a" ? 2u : 1u);
    EXPECT_EQ(r->server_label(s.key), "10.0.0.5:80");
  }
  // full: /c at t=5 goes to other; at t=20 /b (idle since 0) is retired for /d... and /a too
  d.clear();
  w0.add(http("/c").r);
  w0.harvest(d);
  m.add(0, d, 5);
  EXPECT_EQ(m.report()->folded_records_merge, 1u);
  d.clear();
  w0.add(http("/d").r);
  w0.harvest(d);
  m.add(0, d, 20);
  r = m.report();
  EXPECT_EQ(r->retired_series, 1u);
  bool has_d = false;
  for (const auto& s : r->series) has_d |= s.key.endpoint_view() == "GET /d";
  EXPECT_TRUE(has_d);
}

TEST(Exchange, HandsOverOnlyWhenAskedAndAfterTheEnd) {
  red::Shared sh(small_config(10));
  red::Exchange x(sh, 5);
  x.aggregator().add(http("/a").r);
  x.offer();  // wanted from the start: the harvest moves into the hand-over
  x.aggregator().add(http("/a").r);
  x.offer();  // the last one was not taken yet: stays with the worker
  uint64_t seen = 0;
  x.take([&](const red::Delta& d) {
    for (const auto& c : d.counts) seen += c.requests;
  });
  EXPECT_EQ(seen, 1u);
  x.finish();
  x.take([&](const red::Delta& d) {
    for (const auto& c : d.counts) seen += c.requests;
  });
  EXPECT_EQ(seen, 2u);
}

// --- config ---

std::string load(const std::string& yaml, Config& cfg) {
  char path[] = "/tmp/red_cfg_XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return "mkstemp";
  close(fd);
  std::ofstream(path) << yaml;
  std::string err;
  try {
    load_config_file(path, cfg, decode_config_keys(cfg, path));
  } catch (const ConfigError& e) {
    err = e.what();
  }
  std::remove(path);
  return err;
}

TEST(RedConfig, ReadsAndRejects) {
  Config cfg;
  EXPECT_EQ(load("red:\n  max_series: 500\n  labels: [server.port, endpoint]\n"
                 "  buckets: {min_us: 100, max_s: 10, factor: 10}\n"
                 "  protocols:\n    dns: {enabled: false}\n    http: {labels: [status]}\n"
                 "  services:\n    orders-db: 10.0.0.5:3306\n    web: [10.0.0.7, '[2001:db8::1]:443']\n",
                 cfg),
            "");
  EXPECT_EQ(cfg.red.max_series, 500u);
  EXPECT_EQ(cfg.red.labels, red_label::kServerPort | red_label::kEndpoint);
  EXPECT_EQ(cfg.red.bucket_bounds_us(), (std::vector<uint64_t>{100, 1000, 10000, 100000, 1000000, 10000000}));
  ASSERT_EQ(cfg.red.services.size(), 3u);
  EXPECT_EQ(cfg.red.services[1].port, 0);
  EXPECT_EQ(cfg.red.services[2].ip_version, 6);
  red::Shared sh(cfg.red);
  EXPECT_FALSE(sh.enabled[size_t(Protocol::kDns)]);
  EXPECT_EQ(sh.labels[size_t(Protocol::kHttp)], red_label::kStatus);
  EXPECT_EQ(sh.labels[size_t(Protocol::kMysql)], red_label::kServerPort | red_label::kEndpoint);
  IpAddr ip{};
  ip.bytes[0] = 10;
  ip.bytes[3] = 7;
  EXPECT_EQ(sh.service_of(ip, 4, 1234), 1);

  auto err = [](const std::string& y) {
    Config c;
    return load(y, c);
  };
  EXPECT_NE(err("red:\n  labels: [server, path]\n").find("unknown label 'path'"), std::string::npos);
  EXPECT_NE(err("red:\n  services:\n    a: 10.0.0.300:80\n").find("is not an address"), std::string::npos);
  EXPECT_NE(err("red:\n  services:\n    a: 10.0.0.1:80\n    b: 10.0.0.1:80\n").find("already the address of service 'a'"),
            std::string::npos);
  EXPECT_NE(err("red:\n  protocols:\n    gopher: {enabled: false}\n").find("unknown protocol"), std::string::npos);
  EXPECT_NE(err("red:\n  max_series: 0\n").find("must be between 1"), std::string::npos);
  EXPECT_NE(err("red:\n  buckets: {factor: 1.01}\n").find("between 1.1 and 100"), std::string::npos);
  EXPECT_NE(err("red:\n  buckets: {min_us: 1, max_s: 3600, factor: 1.2}\n").find("raise factor"), std::string::npos);
  EXPECT_NE(err("red:\n  colour: red\n").find("unknown key"), std::string::npos);
}

}  // namespace
}  // namespace spanfeed
