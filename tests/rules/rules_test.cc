// Rules: rule files, streaming matches over reassembled bytes (split, gapped, overlapping,
// pipelined), tags, redaction, big rule sets, reloads, and payload detection against the decoders' sniffs.
// Test thread only; allocates freely.
#include <gtest/gtest.h>

#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "../decode/decode_test_util.h"
#include "decode/detect/hyperscan_signatures.h"
#include "spanfeed/config.h"
#include "rules/rules_control.h"
#include "rules/builtin_redaction.h"
#include <hs.h>

namespace spanfeed {
namespace {

using dectest::bytes_of;
using dectest::Harness;
using dectest::kMs;
using dectest::kT0;

constexpr Direction kReq = Direction::kClientToServer;
constexpr Direction kResp = Direction::kServerToClient;

// A rules file in a temporary directory, removed with the object.
class RulesFile {
 public:
  explicit RulesFile(const std::string& yaml) {
    char tmpl[] = "/tmp/spanfeed-rules-XXXXXX";
    const int fd = mkstemp(tmpl);
    path_ = tmpl;
    close(fd);
    write(yaml);
  }
  ~RulesFile() { std::remove(path_.c_str()); }
  void write(const std::string& yaml) const { std::ofstream(path_) << yaml; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

BuiltinRedaction no_builtins() { return {false, false, false}; }

RulesControl::Limits small_limits() {
  RulesControl::Limits l;
  l.max_streams = 8;
  l.hit_pool = 64;
  return l;
}

std::vector<std::string> tags_of(const nlohmann::json& r) {
  std::vector<std::string> v;
  for (const auto& t : r["tags"]) v.push_back(t.get<std::string>());
  return v;
}

const RuleCounters& per_rule(const RulesReport& r, const std::string& id) {
  for (const auto& p : r.per_rule) {
    if (p.id == id) return p.c;
  }
  static RuleCounters none;
  ADD_FAILURE() << "no rule " << id;
  return none;
}

void expect_hits_ledger(const RulesCounters& c) {
  EXPECT_EQ(c.hits_stored, c.hits_attributed + c.hits_discarded + c.hits_pending)
      << "stored " << c.hits_stored << " attributed " << c.hits_attributed << " discarded " << c.hits_discarded
      << " pending " << c.hits_pending;
}

// A Harness whose builder scans with the given rules.
struct Rig {
  explicit Rig(const std::string& yaml, BuiltinRedaction b = no_builtins(), RulesControl::Limits l = small_limits())
      : file(yaml), control(file.path(), b, l) {
    scanner = control.scanner(16);
    h.builder().set_observer(scanner.get());
  }
  ~Rig() { h.builder().set_observer(nullptr); }
  RulesFile file;
  RulesControl control;
  std::unique_ptr<RulesScanner> scanner;
  Harness h;
};

// One HTTP exchange on a fresh flow to port 80: the request, a 200 with no
// body, and the single record it makes.
nlohmann::json http_record(Harness& h, const std::string& request) {
  h.open(80);
  h.c2s(request, kT0);
  h.s2c("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", kT0 + kMs);
  EXPECT_EQ(h.size(), 1u);
  return h.size() == 1 ? h.rec(0) : nlohmann::json::object();
}

const char* kSqli = R"(
rules:
  - id: union-select
    pattern: "union\\s+select"
    flags: i
    side: request
    tag: sqli
)";

// ---------------------------------------------------------------- matching

TEST(ContentRules, PatternSplitAcrossSegmentsMatches) {
  Rig rig(kSqli);
  Harness& h = rig.h;
  h.open(80);
  const std::string req = "GET /q?x=1%20UNION SELECT%20pw HTTP/1.1\r\nHost: a\r\n\r\n";
  h.dribble(kReq, req, 3, kT0);  // "UNION SELECT" arrives in 3-byte pieces
  h.s2c("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(tags_of(h.rec(0)), std::vector<std::string>{"sqli"});
  const RulesReport r = rig.control.report();
  EXPECT_EQ(per_rule(r, "union-select").matches, 1u);
  EXPECT_EQ(per_rule(r, "union-select").records, 1u);
  EXPECT_EQ(r.totals.bytes_scanned, req.size());  // response side has no rules: not scanned
  EXPECT_EQ(r.totals.records_tagged, 1u);
  expect_hits_ledger(r.totals);
  h.expect_ledger();
}

TEST(ContentRules, NoMatchAcrossAGap) {
  Rig rig(kSqli);
  Harness& h = rig.h;
  h.open(80);
  // "union " + 7 lost bytes + "select": the bytes on either side would match
  // if the hole were ignored.
  h.c2s("GET /a?q=union ", kT0);
  h.gap(kReq, 7, kT0);
  h.c2s("select HTTP/1.1\r\nHost: a\r\n\r\n", kT0);
  h.c2s("GET /b?q=union select HTTP/1.1\r\nHost: a\r\n\r\n", kT0);  // a whole one still matches
  h.s2c("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", kT0 + kMs);
  h.close(kT0 + 2 * kMs);
  const RulesReport r = rig.control.report();
  EXPECT_EQ(per_rule(r, "union-select").matches, 1u);
  EXPECT_EQ(r.totals.stream_restarts, 1u);
  size_t tagged = 0;
  for (size_t i = 0; i < h.size(); ++i) {
    const auto rec = h.rec(i);
    if (!tags_of(rec).empty()) {
      ++tagged;
      EXPECT_EQ(rec["request"]["path"], "/b");
    }
  }
  EXPECT_EQ(tagged, 1u);
  expect_hits_ledger(r.totals);
  EXPECT_EQ(r.totals.hits_pending, 0u);
}

TEST(ContentRules, OverlappingMatchesOfSeveralRulesAllTag) {
  Rig rig(R"(
rules:
  - id: abcd
    pattern: "abcd"
  - id: cdef
    pattern: "cdef"
  - id: digits
    pattern: "[0-9]+"
    tag: has-digits
  - id: twice
    pattern: "xy"
)");
  Harness& h = rig.h;
  h.open(6379);
  h.c2s("*2\r\n$3\r\nGET\r\n$12\r\nabcdef12xyxy\r\n", kT0);
  h.s2c("$-1\r\n", kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  auto tags = tags_of(h.rec(0));
  std::sort(tags.begin(), tags.end());
  EXPECT_EQ(tags, (std::vector<std::string>{"abcd", "cdef", "has-digits", "twice"}));
  const RulesReport r = rig.control.report();
  EXPECT_EQ(per_rule(r, "abcd").matches, 1u);
  EXPECT_EQ(per_rule(r, "cdef").matches, 1u);
  EXPECT_EQ(per_rule(r, "twice").matches, 2u);  // two matches, one tag
  EXPECT_EQ(per_rule(r, "twice").records, 1u);
  EXPECT_EQ(per_rule(r, "abcd").records, 1u);
  expect_hits_ledger(r.totals);
}

TEST(ContentRules, PipelinedRequestsGetOnlyTheirOwnMatches) {
  Rig rig(kSqli);
  Harness& h = rig.h;
  h.open(80);
  // Three requests in one segment: only the middle one matches.
  h.c2s("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
        "GET /2?q=union%20select HTTP/1.1\r\nHost: a\r\n\r\n"
        "GET /2?q=union select HTTP/1.1\r\nHost: a\r\n\r\n"
        "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
        kT0);
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  h.s2c(ok + ok + ok + ok, kT0 + kMs);
  ASSERT_EQ(h.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    const auto rec = h.rec(i);
    const bool third = i == 2;
    EXPECT_EQ(tags_of(rec).size(), third ? 1u : 0u) << rec.dump();
  }
  EXPECT_EQ(per_rule(rig.control.report(), "union-select").records, 1u);
}

TEST(ContentRules, HeadersScopeIgnoresTheBody) {
  Rig rig(R"(
rules:
  - id: secret-head
    pattern: "secret"
    scope: headers
    side: request
  - id: secret-any
    pattern: "secret"
    side: request
)");
  Harness& h = rig.h;
  h.open(80);
  h.c2s("POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nsecret", kT0);   // body only
  h.c2s("GET /secret HTTP/1.1\r\nHost: a\r\n\r\n", kT0);                           // request line
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  h.s2c(ok + ok, kT0 + kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(tags_of(h.rec(0)), std::vector<std::string>{"secret-any"});
  auto t1 = tags_of(h.rec(1));
  std::sort(t1.begin(), t1.end());
  EXPECT_EQ(t1, (std::vector<std::string>{"secret-any", "secret-head"}));
}

TEST(ContentRules, ProtocolAndSideFilters) {
  Rig rig(R"(
rules:
  - id: only-redis
    pattern: "ping"
    flags: i
    protocols: [redis]
  - id: only-response
    pattern: "PONG"
    side: response
  - id: on-unknown
    pattern: "hello"
    protocols: [unknown]
)");
  Harness& h = rig.h;
  h.open(6379, false, kT0, 0);
  h.c2s("*1\r\n$4\r\nPING\r\n", kT0, 0);
  h.s2c("+PONG\r\n", kT0 + kMs, 0);
  h.open(11211, false, kT0, 1);  // memcached: "ping" is not a redis flow here
  h.c2s("get ping\r\n", kT0, 1);
  h.s2c("END\r\n", kT0 + kMs, 1);
  h.open(4444, false, kT0, 2);  // nothing recognisable: unknown, counted only
  h.c2s("hello there", kT0, 2);
  h.close(kT0 + 2 * kMs, 2);
  ASSERT_EQ(h.size(), 2u);
  auto t0 = tags_of(h.rec(0));
  std::sort(t0.begin(), t0.end());
  EXPECT_EQ(t0, (std::vector<std::string>{"only-redis", "only-response"}));
  EXPECT_TRUE(tags_of(h.rec(1)).empty());
  const RulesReport r = rig.control.report();
  EXPECT_EQ(per_rule(r, "only-redis").matches, 1u);
  EXPECT_EQ(per_rule(r, "only-response").matches, 1u);  // "PONG" in the request side is not looked for
  EXPECT_EQ(per_rule(r, "on-unknown").matches, 1u);
  EXPECT_EQ(per_rule(r, "on-unknown").records, 0u);
  expect_hits_ledger(r.totals);
}

TEST(ContentRules, UdpDatagramsAreScannedOneByOne) {
  Rig rig(R"(
rules:
  - id: end-of-name
    pattern: "example\\x03com\\x00$"
    side: request
)");
  Harness& h = rig.h;
  h.open(53, true);
  // Two queries; an end-anchored pattern matches at each datagram's end.
  auto query = [](uint8_t id) {
    std::string q = {static_cast<char>(0), static_cast<char>(id), 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    q += std::string("\x07" "example" "\x03" "com", 12);
    q += std::string(1, '\0');
    return q;
  };
  h.c2s(query(1), kT0);
  h.c2s(query(2), kT0);
  h.close(kT0 + kMs);
  const RulesReport r = rig.control.report();
  EXPECT_EQ(per_rule(r, "end-of-name").matches, 2u);
}

TEST(ContentRules, ThousandsOfPatterns) {
  std::string yaml = "rules:\n";
  for (int i = 0; i < 1500; ++i) {
    char line[160];
    std::snprintf(line, sizeof(line), "  - id: tok%04d\n    pattern: \"tok%04d[a-f]{2}\"\n    side: request\n", i, i);
    yaml += line;
  }
  Rig rig(yaml);
  EXPECT_EQ(rig.control.report().rules, 1500u);
  Harness& h = rig.h;
  h.open(80);
  h.c2s("GET /tok0007ab/tok1499ff/tok0042zz/tok0100 HTTP/1.1\r\nHost: a\r\n\r\n", kT0);
  h.s2c("HTTP/1.1 204 No Content\r\n\r\n", kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  auto tags = tags_of(h.rec(0));
  std::sort(tags.begin(), tags.end());
  EXPECT_EQ(tags, (std::vector<std::string>{"tok0007", "tok1499"}));
  const RulesReport r = rig.control.report();
  uint64_t matches = 0;
  for (const auto& p : r.per_rule) matches += p.c.matches;
  EXPECT_EQ(matches, 2u);
}

// ---------------------------------------------------------------- bounds

TEST(ContentRules, HitPoolAndStreamPoolLimitsAreCounted) {
  RulesControl::Limits l = small_limits();
  l.max_streams = 2;  // two request directions can be scanned at once
  l.hit_pool = 3;
  Rig rig(R"(
rules:
  - id: x
    pattern: "x[0-9]"
    side: request
)",
          no_builtins(), l);
  Harness& h = rig.h;
  for (uint32_t s = 0; s < 3; ++s) h.open(6379, false, kT0, s, static_cast<uint16_t>(40000 + s));
  // Flow 0: five separate matches in a message still in progress: three
  // kept (waiting for its end), two dropped.
  h.c2s("*1\r\n$14\r\nx1 x2 x3 x4 x5", kT0, 0);
  h.c2s("*1\r\n$2\r\nx9\r\n", kT0, 1);  // pool empty: dropped too
  h.c2s("*1\r\n$2\r\nx8\r\n", kT0, 2);  // no stream left: not scanned
  RulesReport r = rig.control.report();
  EXPECT_EQ(r.totals.streams_opened, 2u);
  EXPECT_EQ(r.totals.streams_exhausted, 1u);
  EXPECT_EQ(per_rule(r, "x").matches, 6u);  // counted per rule even when not kept
  EXPECT_EQ(r.totals.hits_stored, 3u);
  EXPECT_EQ(r.totals.hits_dropped, 3u);
  EXPECT_EQ(r.totals.hits_pending, 3u);
  for (uint32_t s = 0; s < 3; ++s) h.close(kT0 + kMs, s);
  r = rig.control.report();
  EXPECT_EQ(r.totals.hits_pending, 0u);
  // Closing flow 0 ends its request (cut short, a timeout record): the kept matches tag it.
  EXPECT_EQ(r.totals.hits_attributed, 3u);
  EXPECT_EQ(r.totals.hits_discarded, 0u);
  expect_hits_ledger(r.totals);
  ASSERT_EQ(h.size(), 3u);
  size_t tagged = 0;
  for (size_t i = 0; i < h.size(); ++i) tagged += !tags_of(h.rec(i)).empty();
  EXPECT_EQ(tagged, 1u);  // flow 0's; flow 1's match was dropped, flow 2 was not scanned
  // Streams went back to the pool: a new flow is scanned again.
  h.open(6379, false, kT0, 3);
  h.c2s("*1\r\n$2\r\nx7\r\n", kT0, 3);
  h.s2c("$-1\r\n", kT0 + kMs, 3);
  EXPECT_EQ(tags_of(h.rec(h.size() - 1)), std::vector<std::string>{"x"});
}

// ---------------------------------------------------------------- redaction

TEST(ContentRules, BuiltinRedaction) {
  Rig rig("rules: []\n", BuiltinRedaction{});
  const auto rec = http_record(
      rig.h, "GET /pay?card=4111111111111111&bad=4111111111111112&id=387066153056345308&amex=3782-822463-10005"
             "&access_token=abc.DEF-123&password=hunter2 HTTP/1.1\r\nHost: a\r\nUser-Agent: Bearer tok_123==\r\n\r\n");
  EXPECT_EQ(rec["request"]["query"],
            "card=<redacted>&bad=4111111111111112&id=387066153056345308&amex=<redacted>"
            "&access_token=<redacted>&password=<redacted>");
  EXPECT_EQ(rec["request"]["user_agent"], "Bearer <redacted>");
  auto tags = tags_of(rec);
  std::sort(tags.begin(), tags.end());
  EXPECT_EQ(tags, (std::vector<std::string>{"bearer_token", "credit_card", "password"}));
  const RulesReport r = rig.control.report();
  EXPECT_EQ(per_rule(r, "credit_card").redactions, 2u);
  EXPECT_EQ(per_rule(r, "bearer_token").redactions, 2u);
  EXPECT_EQ(per_rule(r, "password").redactions, 1u);
  EXPECT_EQ(r.totals.fields_redacted, 2u);
}

// The prefilter that lets a message skip the redaction scan must say "may
// match" wherever a built-in pattern matches: checked against Hyperscan
// itself on crafted text and on random text biased towards the literals.
TEST(ContentRules, BuiltinPrefilterNeverHidesAMatch) {
  std::vector<const char*> pats;
  std::vector<unsigned> flags, ids;
  for (const BuiltinPattern& b : builtin_patterns()) {
    ids.push_back(static_cast<unsigned>(pats.size()));
    pats.push_back(b.pattern);
    flags.push_back(b.flags);
  }
  hs_database_t* db = nullptr;
  hs_compile_error_t* err = nullptr;
  ASSERT_EQ(hs_compile_multi(pats.data(), flags.data(), ids.data(), static_cast<unsigned>(pats.size()), HS_MODE_BLOCK,
                             nullptr, &db, &err),
            HS_SUCCESS);
  hs_scratch_t* scratch = nullptr;
  ASSERT_EQ(hs_alloc_scratch(db, &scratch), HS_SUCCESS);
  auto hs_matches = [&](const std::string& t) {
    bool hit = false;
    hs_scan(db, t.data(), static_cast<unsigned>(t.size()), 0, scratch,
            [](unsigned, unsigned long long, unsigned long long, unsigned, void* c) {
              *static_cast<bool*>(c) = true;
              return 1;
            },
            &hit);
    return hit;
  };
  for (const std::string t : {"Authorization: BEARER abc", "x access_TOKEN=1", "IDENTIFIED  by 'x'", "PassWord='x'",
                              "pwd=1", "4111 1111-1111 1111", "1234567890123", "select 1 from t", "tok en=1"}) {
    EXPECT_EQ(builtin_may_match(t) || !hs_matches(t), true) << t;
  }
  EXPECT_TRUE(builtin_may_match("4111 1111-1111 1111"));
  EXPECT_FALSE(builtin_may_match("GET /index.html?id=123456789012 HTTP/1.1"));  // 12 digits, no literal
  EXPECT_FALSE(builtin_may_match("select * from users where id = 7"));
  std::mt19937 rng(17);
  // Random sequences of pieces of the patterns: literals, digits, separators, quotes.
  const std::vector<std::string> pieces = {"bearer", "BeArEr", "access_token", "id_token", "token", "=", "password",
                                           "PASSWD", "pwd", "pass", "identified", "IDENTIFIED", "by", "with", " ",
                                           "\t", "'", "\"", "x", "4111", "1111", "12", "5", "-", "&", "_", "abc"};
  size_t matched = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string t;
    for (size_t k = 1 + rng() % 10; k > 0; --k) t += pieces[rng() % pieces.size()];
    if (!hs_matches(t)) continue;
    ++matched;
    ASSERT_TRUE(builtin_may_match(t)) << t;
  }
  EXPECT_GT(matched, 50u);  // the random text does reach the patterns
  hs_free_scratch(scratch);
  hs_free_database(db);
}

// The 16-bytes-at-a-time prefilter answers exactly as the bytewise one, at every
// length and alignment (literals and digit runs across chunk edges).
TEST(ContentRules, BuiltinPrefilterChunkedEqualsBytewise) {
  std::mt19937 rng(23);
  const std::vector<std::string> pieces = {"bearer", "BEA", "tok", "token=", "ToKeN", "ide", "identified", "pass",
                                           "PAS", "pwd=", "pw", "1", "12", "4111", "0000000", " ", "-", "x", "abc",
                                           "where id = ?", "\n", "=", "T", "P", "\xff"};
  size_t hits = 0, total = 0;
  for (int i = 0; i < 50000; ++i) {
    std::string t;
    for (size_t k = rng() % 24; k > 0; --k) t += pieces[rng() % pieces.size()];
    const bool want = builtin_may_match_bytewise(t);
    ASSERT_EQ(builtin_may_match(t), want) << t;
    // Followed by bytes that would complete a literal or a digit run: the slack variant ignores them.
    std::string padded = t;
    padded.append("earer 41111111111111111");
    static_assert(kBuiltinMayMatchSlack <= 23);
    ASSERT_EQ(builtin_may_match_slack(std::string_view(padded).substr(0, t.size())), want) << t;
    for (size_t skip = 1; skip < 4 && skip < t.size(); ++skip) {
      ASSERT_EQ(builtin_may_match(std::string_view(t).substr(skip)), builtin_may_match_bytewise(std::string_view(t).substr(skip))) << t;
    }
    hits += want;
    ++total;
  }
  EXPECT_GT(hits, total / 10);
  EXPECT_LT(hits, total - total / 10);  // both answers are common
  EXPECT_TRUE(builtin_may_match("x-x-x-x-x-x-x-x-x-x-x-x-x-x 1234567 1234 56"));   // 13 digits across a chunk edge
  EXPECT_FALSE(builtin_may_match("x-x-x-x-x-x-x-x-x-x-x-x-x-x 1234567 123x4 56"));  // broken by 'x'
  EXPECT_TRUE(builtin_may_match("0123456789abcdPaSsword=1 and more text after it"));
}

TEST(ContentRules, PasswordsInQueryText) {
  Rig rig("rules: []\n", BuiltinRedaction{false, false, true});
  Harness& h = rig.h;
  h.open(6379);  // any field of any protocol: a Redis key carries the text here
  h.c2s("*2\r\n$3\r\nGET\r\n$47\r\nCREATE USER bob IDENTIFIED BY 'S3cret' PASSWORD\r\n", kT0);
  h.s2c("$-1\r\n", kT0 + kMs);
  h.c2s("*2\r\n$3\r\nGET\r\n$45\r\nALTER ROLE x WITH PASSWORD 'pw' VALID UNTIL 1\r\n", kT0 + 2 * kMs);
  h.s2c("$-1\r\n", kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["request"]["key"], "CREATE USER bob IDENTIFIED BY '<redacted>' PASSWORD");
  EXPECT_EQ(h.rec(1)["request"]["key"], "ALTER ROLE x WITH PASSWORD '<redacted>' VALID UNTIL 1");
}

TEST(ContentRules, UserRedactionAndSwitchedOffBuiltins) {
  Rig rig(R"(
rules:
  - id: aws-key
    pattern: "AKIA[0-9A-Z]{16}"
    tag: secret
    redact: true
)");
  const auto rec = http_record(rig.h, "GET /k?a=AKIAABCDEFGHIJKLMNOP&c=4111111111111111 HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(rec["request"]["query"], "a=<redacted>&c=4111111111111111");  // card rule off
  EXPECT_EQ(tags_of(rec), std::vector<std::string>{"secret"});
  EXPECT_EQ(per_rule(rig.control.report(), "aws-key").records, 1u);  // stream match and redaction: one record
}

TEST(ContentRules, RedactionNeverJoinsTwoFields) {
  Rig rig(R"(
rules:
  - id: k-to-z
    pattern: "k.{0,40}z"
    flags: s
    redact: true
)");
  // "k" ends the path and "z" starts the query: no value holds a match.
  const auto rec = http_record(rig.h, "GET /a/k?z=1 HTTP/1.1\r\nHost: kaz.example\r\n\r\n");
  EXPECT_EQ(rec["request"]["path"], "/a/k");
  EXPECT_EQ(rec["request"]["query"], "z=1");
  EXPECT_EQ(rec["request"]["host"], "<redacted>.example");
  EXPECT_EQ(per_rule(rig.control.report(), "k-to-z").redactions, 1u);
}

TEST(ContentRules, CardNumberChecks) {
  Rig rig("rules: []\n", BuiltinRedaction{true, false, false});
  Harness& h = rig.h;
  h.open(6379);
  const std::pair<std::string, std::string> cases[] = {
      {"4111 1111 1111 1111", "<redacted>"},            // spaced Visa
      {"5500-0000-0000-0004", "<redacted>"},            // dashed Mastercard
      {"30569309025904", "<redacted>"},                 // Diners, 14 digits
      {"6011000990139424", "<redacted>"},               // Discover
      {"4111111111111113", "4111111111111113"},         // Luhn fails
      {"1700000000123", "1700000000123"},               // a millisecond timestamp
      {"41111111111111111111", "41111111111111111111"},  // 20 digits: part of something longer
      {"x4111111111111111", "x<redacted>"},
  };
  uint64_t ts = kT0;
  for (const auto& [in, out] : cases) {
    const std::string req = "*2\r\n$3\r\nGET\r\n$" + std::to_string(in.size()) + "\r\n" + in + "\r\n";
    h.c2s(req, ts);
    h.s2c("$-1\r\n", ts + kMs);
    ts += 2 * kMs;
    ASSERT_GT(h.size(), 0u);
    EXPECT_EQ(h.rec(h.size() - 1)["request"]["key"], out) << in;
  }
}

// ---------------------------------------------------------------- compressed content

// gzip (window 15 + 16) or zlib of `plain`.
std::string compress(const std::string& plain, bool gzip) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, gzip ? 15 + 16 : 15, 9, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, plain.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
  z.avail_in = static_cast<uInt>(plain.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

const char* kBodyRules = R"(
rules:
  - id: leak
    pattern: "internal-secret-[0-9]+"
    side: response
  - id: leak-head
    pattern: "internal-secret"
    side: response
    scope: headers
)";

std::string gzip_response(const std::string& body, const char* encoding = "gzip") {
  return std::string("HTTP/1.1 200 OK\r\nContent-Encoding: ") + encoding +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(ContentRules, GzipBodiesAreInflatedForTheRules) {
  RulesControl::Limits l = small_limits();
  Rig rig(kBodyRules, no_builtins(), l);
  Harness& h = rig.h;
  const std::string plain = std::string(5000, 'a') + " internal-secret-42 " + std::string(3000, 'b');
  const std::string gz = compress(plain, true);
  ASSERT_EQ(gz.find("internal-secret"), std::string::npos);  // the wire never shows it
  h.open(80);
  h.c2s("GET /a HTTP/1.1\r\nHost: a\r\n\r\n", kT0);
  h.dribble(kResp, gzip_response(gz), 7, kT0 + kMs);  // compressed bytes in 7-byte segments
  // zlib-wrapped "deflate", chunked
  const std::string z = compress("x internal-secret-7 y", false);
  h.c2s("GET /b HTTP/1.1\r\nHost: a\r\n\r\n", kT0 + 2 * kMs);
  char size[16];
  std::snprintf(size, sizeof(size), "%zx", z.size() - 5);
  h.s2c(std::string("HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n") +
            size + "\r\n" + z.substr(0, z.size() - 5) + "\r\n5\r\n" + z.substr(z.size() - 5) + "\r\n0\r\n\r\n",
        kT0 + 3 * kMs);
  // the same text uncompressed: the ordinary stream scan finds it
  h.c2s("GET /c HTTP/1.1\r\nHost: a\r\n\r\n", kT0 + 4 * kMs);
  h.s2c(gzip_response("internal-secret-9", "identity"), kT0 + 5 * kMs);
  ASSERT_EQ(h.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(tags_of(h.rec(i)), std::vector<std::string>{"leak"}) << i;
  const RulesReport r = rig.control.report();
  EXPECT_EQ(per_rule(r, "leak").records, 3u);
  EXPECT_EQ(per_rule(r, "leak-head").records, 0u);  // a body is never the header block
  EXPECT_EQ(r.totals.bodies_inflated, 2u);
  EXPECT_EQ(r.totals.decoded_bytes, plain.size() + 21u);
  EXPECT_EQ(r.totals.inflate_errors, 0u);
  expect_hits_ledger(r.totals);
  h.expect_ledger();
}

TEST(ContentRules, InflationIsBoundedAndItsFailuresCounted) {
  RulesControl::Limits l = small_limits();
  l.inflaters = 1;
  l.inflate_max_bytes = 64 * 1024;
  Rig rig(kBodyRules, no_builtins(), l);
  Harness& h = rig.h;
  // A bomb: 4 MiB of zeros compress to a few KiB; the secret after them is past the cap.
  const std::string bomb = compress(std::string(4 << 20, '\0') + "internal-secret-1", true);
  h.open(80, false, kT0, 0);
  h.c2s("GET /bomb HTTP/1.1\r\nHost: a\r\n\r\n", kT0, 0);
  h.s2c(gzip_response(bomb), kT0 + kMs, 0);
  // Not gzip at all.
  h.open(80, false, kT0, 1, 40001);
  h.c2s("GET /junk HTTP/1.1\r\nHost: a\r\n\r\n", kT0, 1);
  h.s2c(gzip_response("this is not gzip at all"), kT0 + kMs, 1);
  // A gap inside a compressed body: nothing after it is inflated.
  const std::string gz = compress(std::string(20000, 'q') + "internal-secret-3", true);
  h.open(80, false, kT0, 2, 40002);
  h.c2s("GET /gap HTTP/1.1\r\nHost: a\r\n\r\n", kT0, 2);
  const std::string resp = gzip_response(gz);
  const size_t head = resp.size() - gz.size();
  h.s2c(resp.substr(0, head + 10), kT0 + kMs, 2);
  h.gap(kResp, 10, kT0 + kMs, 2);
  h.s2c(resp.substr(head + 20), kT0 + kMs, 2);
  // Two bodies at once with one inflate context: the second is not inflated.
  h.open(80, false, kT0, 3, 40003);
  h.open(80, false, kT0, 4, 40004);
  h.c2s("GET /x HTTP/1.1\r\nHost: a\r\n\r\n", kT0, 3);
  h.c2s("GET /y HTTP/1.1\r\nHost: a\r\n\r\n", kT0, 4);
  const std::string two = gzip_response(compress("internal-secret-4", true));
  h.s2c(two.substr(0, two.size() - 3), kT0 + kMs, 3);  // flow 3's body in progress
  h.s2c(two, kT0 + kMs, 4);                            // flow 4's whole body: no context free
  h.s2c(two.substr(two.size() - 3), kT0 + kMs, 3);
  ASSERT_EQ(h.size(), 5u);
  const RulesReport r = rig.control.report();
  EXPECT_EQ(r.totals.inflate_truncated, 1u);
  EXPECT_EQ(r.totals.inflate_errors, 1u);
  EXPECT_EQ(r.totals.inflate_gaps, 1u);
  EXPECT_EQ(r.totals.inflate_busy, 1u);
  EXPECT_EQ(r.totals.bodies_inflated, 4u);
  EXPECT_EQ(per_rule(r, "leak").records, 1u);  // flow 3 only
  for (size_t i = 0; i < h.size(); ++i) {
    const auto rec = h.rec(i);
    EXPECT_EQ(!tags_of(rec).empty(), rec["request"]["path"] == "/x") << rec.dump();
  }
  expect_hits_ledger(r.totals);
}

TEST(ContentRules, AReloadFreesTheInflateContextsOfBodiesInProgress) {
  RulesControl::Limits l = small_limits();
  l.inflaters = 1;
  Rig rig(kBodyRules, no_builtins(), l);
  Harness& h = rig.h;
  const std::string resp = gzip_response(compress("internal-secret-8", true));
  h.open(80, false, kT0, 0);
  h.c2s("GET /a HTTP/1.1\r\nHost: a\r\n\r\n", kT0, 0);
  h.s2c(resp.substr(0, resp.size() - 4), kT0 + kMs, 0);  // holds the only context
  std::string msg;
  ASSERT_TRUE(rig.control.reload(msg)) << msg;
  rig.scanner->poll_reload();
  h.open(80, false, kT0, 1, 40001);
  h.c2s("GET /b HTTP/1.1\r\nHost: a\r\n\r\n", kT0, 1);
  h.s2c(resp, kT0 + kMs, 1);  // the context is free again: inflated and tagged
  h.s2c(resp.substr(resp.size() - 4), kT0 + 2 * kMs, 0);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["request"]["path"], "/b");
  EXPECT_EQ(tags_of(h.rec(0)), std::vector<std::string>{"leak"});
  EXPECT_TRUE(tags_of(h.rec(1)).empty());  // its body began under the old set
  const RulesReport r = rig.control.report();
  EXPECT_EQ(r.totals.inflate_busy, 0u);
  EXPECT_EQ(r.totals.bodies_inflated, 2u);
  EXPECT_EQ(r.totals.inflate_reload, 1u);  // flow 0's body: its rest is not inflated
  EXPECT_EQ(r.totals.inflate_errors, 0u);
  expect_hits_ledger(r.totals);
}

TEST(ContentRules, MysqlCompressedPayloadsAreScanned) {
  DecodeConfig cfg = dectest::small_config();
  cfg.flow_capacity = 64;
  cfg.ports.push_back({Protocol::kMysql, Transport::kTcp, 30130});
  RulesFile file(R"(
rules:
  - id: schema
    pattern: "deepflow"
    side: response
    protocols: [mysql]
)");
  RulesControl::Limits l = small_limits();
  RulesControl control(file.path(), no_builtins(), l);
  auto scanner = control.scanner(64);
  CollectingSink sink;
  RecordBuilder b(cfg, sink);
  b.set_observer(scanner.get());
  ReplayStats st;
  std::string err;
  ASSERT_TRUE(replay_pcap_streams(std::string(SPANFEED_SOURCE_ROOT) + "/tests/data/pcaps/mysql/mysql-compressed-response.pcap",
                                  offline_reassembler_config(), b, &st, &err))
      << err;
  b.finish(0);
  ASSERT_EQ(sink.lines.size(), 1u);
  // "deepflow" is only in the zlib-compressed result set (column definitions).
  EXPECT_EQ(tags_of(nlohmann::json::parse(sink.lines[0])), std::vector<std::string>{"schema"});
  const RulesReport r = control.report();
  EXPECT_EQ(r.totals.decoded_bytes, 995u);  // the response inflated (no request-side rules: the request is not)
  b.set_observer(nullptr);
}

std::string le32(uint32_t v) {
  return std::string{static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 24)};
}

TEST(ContentRules, MongoCompressedMessagesAreScanned) {
  Rig rig(R"(
rules:
  - id: coll
    pattern: "secretcoll"
    side: request
    protocols: [mongodb]
)");
  Harness& h = rig.h;
  h.open(27017);
  auto wire = [](uint32_t id, uint32_t to, uint32_t op, const std::string& body) {
    return le32(static_cast<uint32_t>(16 + body.size())) + le32(id) + le32(to) + le32(op) + body;
  };
  const std::string doc = le32(26) + std::string("\x02" "find\0", 6) + le32(11) + std::string("secretcoll\0", 11) +
                          std::string(1, '\0');
  const std::string msg = le32(0) + std::string(1, '\0') + doc;  // OP_MSG: flags, section kind 0
  const std::string z = compress(msg, false);
  const std::string req = wire(5, 0, 2012, le32(2013) + le32(static_cast<uint32_t>(msg.size())) + '\x02' + z);
  ASSERT_EQ(req.find("secretcoll"), std::string::npos);  // only zlib bytes on the wire
  const std::string ok = le32(17) + std::string("\x01" "ok\0", 4) + std::string("\0\0\0\0\0\0\xf0\x3f", 8) +
                         std::string(1, '\0');
  h.c2s(req, kT0);
  h.s2c(wire(6, 5, 2013, le32(0) + std::string(1, '\0') + ok), kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["status"], "ok");
  EXPECT_EQ(tags_of(h.rec(0)), std::vector<std::string>{"coll"});
  EXPECT_EQ(rig.control.report().totals.decoded_bytes, msg.size());
}

// Hostile input: random flows of protocol-like and random bytes, random
// chunking, gaps, closes and a reload midway, with stream rules, redaction
// and compressed bodies all active. Nothing may leak or break a ledger.
TEST(ContentRules, RandomizedSoakKeepsEveryLedger) {
  RulesControl::Limits l = small_limits();
  l.max_streams = 12;  // fewer than the directions: exhaustion happens
  l.hit_pool = 40;
  l.inflaters = 3;
  l.inflate_max_bytes = 4096;
  Rig rig(R"(
rules:
  - id: a
    pattern: "ab+c"
  - id: digits
    pattern: "[0-9]{4}"
    redact: true
  - id: head
    pattern: "host"
    flags: i
    scope: headers
  - id: anyend
    pattern: "z$"
    side: response
)",
          BuiltinRedaction{}, l);
  Harness& h = rig.h;
  std::mt19937 rng(7);
  const std::string gz = compress(std::string(3000, 'a') + "abbbc 1234 z", true);
  const std::string pieces[] = {
      "GET /abc?card=4111111111111111 HTTP/1.1\r\nHost: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + std::to_string(gz.size()) + "\r\n\r\n" + gz,
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabbcz",
      "*2\r\n$3\r\nGET\r\n$8\r\n12345678\r\n",
      "+OK\r\n",
      "get password=hunter2\r\n",
      "VALUE k 0 4\r\nabcz\r\nEND\r\n",
      std::string("\x1f\x8b\x08\x00garbage", 12),
  };
  uint16_t ports[] = {80, 6379, 11211, 9999};
  bool open[16] = {};
  for (int step = 0; step < 20000; ++step) {
    const uint32_t slot = rng() % 16;
    if (!open[slot]) {
      h.open(ports[rng() % 4], false, kT0, slot, static_cast<uint16_t>(40000 + slot));
      open[slot] = true;
      continue;
    }
    const unsigned what = rng() % 20;
    const Direction d = (rng() & 1) ? kReq : kResp;
    if (what == 0) {
      h.close(kT0 + step, slot);
      open[slot] = false;
    } else if (what == 1) {
      h.gap(d, 1 + rng() % 50, kT0 + step, slot);
    } else if (what == 2 && step == 10000) {
      std::string msg;
      ASSERT_TRUE(rig.control.reload(msg));
      rig.scanner->poll_reload();
    } else {
      std::string p = pieces[rng() % std::size(pieces)];
      if (rng() % 4 == 0) {
        for (auto& c : p) {
          if (rng() % 16 == 0) c = static_cast<char>(rng());
        }
      }
      const size_t step_size = 1 + rng() % 64;
      h.dribble(d, p, step_size, kT0 + step, slot);
    }
  }
  for (uint32_t s = 0; s < 16; ++s) {
    if (open[s]) h.close(kT0 + 30000, s);
  }
  rig.control.collect();
  const RulesReport r = rig.control.report();
  expect_hits_ledger(r.totals);
  EXPECT_EQ(r.totals.hits_pending, 0u);
  EXPECT_GT(r.totals.hits_stored, 100u);
  EXPECT_GT(r.totals.streams_exhausted, 0u);
  EXPECT_GT(r.totals.bodies_inflated, 0u);
  EXPECT_GT(r.totals.fields_redacted, 0u);
  EXPECT_EQ(r.totals.scan_errors, 0u);
  h.expect_ledger();
  for (const std::string& line : h.lines()) {
    EXPECT_EQ(line.find("4111111111111111"), std::string::npos);  // never leaves unredacted
  }
}

// ---------------------------------------------------------------- rule files

std::string load_error(const std::string& yaml) {
  RulesFile f(yaml);
  try {
    RulesControl c(f.path(), no_builtins(), small_limits());
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ContentRules, BadRuleFilesNameTheRule) {
  EXPECT_NE(load_error("rules:\n  - id: broken\n    pattern: \"(unclosed\"\n").find("rule 'broken'"),
            std::string::npos);
  EXPECT_NE(load_error("rules:\n  - id: rep\n    pattern: \"a{5,3}\"\n").find("rule 'rep'"), std::string::npos);
  const std::string dup = load_error("rules:\n  - id: a\n    pattern: x\n  - id: a\n    pattern: y\n");
  EXPECT_NE(dup.find("rule 'a': duplicate id"), std::string::npos) << dup;
  EXPECT_NE(dup.find(":4:"), std::string::npos) << dup;  // the line of the second one
  EXPECT_NE(load_error("rules:\n  - id: k\n    pattern: x\n    sid: 1\n").find("rule 'k': unknown key 'sid'"),
            std::string::npos);
  EXPECT_NE(load_error("rules:\n  - id: f\n    pattern: x\n    flags: iq\n").find("unknown flag 'q'"),
            std::string::npos);
  EXPECT_NE(load_error("rules:\n  - id: p\n").find("rule 'p': 'pattern' is missing"), std::string::npos);
  EXPECT_NE(load_error("rules:\n  - id: s\n    pattern: x\n    side: sideways\n").find("request, response or both"),
            std::string::npos);
  EXPECT_NE(load_error("rules:\n  - id: pr\n    pattern: x\n    protocols: [gopher]\n").find("unknown protocol 'gopher'"),
            std::string::npos);
  EXPECT_NE(load_error("rules:\n  - id: 'bad id'\n    pattern: x\n").find("'id' must be"), std::string::npos);
  EXPECT_NE(load_error("rules: [\n").find("YAML syntax error"), std::string::npos);
  EXPECT_NE(load_error("filters: []\n").find("unknown key 'filters'"), std::string::npos);
  EXPECT_NE(load_error("rules:\n  - id: credit_card\n    pattern: x\n").find("reserved for a built-in"),
            std::string::npos);
  EXPECT_EQ(load_error("# nothing yet\n"), "");
}

// ---------------------------------------------------------------- reload

TEST(ContentRules, ReloadSwapsBetweenPacketsAndRefusesABadSet) {
  Rig rig(R"(
rules:
  - id: old
    pattern: "alpha"
)");
  Harness& h = rig.h;
  h.open(6379);
  h.c2s("*1\r\n$5\r\nalpha\r\n", kT0);
  h.s2c("$-1\r\n", kT0 + kMs);

  rig.file.write("rules:\n  - id: new\n    pattern: \"beta\"\n");
  std::string msg;
  ASSERT_TRUE(rig.control.reload(msg)) << msg;
  // Offered, not yet taken: the worker still runs the old set.
  h.c2s("*1\r\n$5\r\nalpha\r\n", kT0 + 2 * kMs);
  h.s2c("$-1\r\n", kT0 + 3 * kMs);
  EXPECT_EQ(tags_of(h.rec(1)), std::vector<std::string>{"old"});
  rig.scanner->poll_reload();
  h.c2s("*2\r\n$5\r\nalpha\r\n$4\r\nbeta\r\n", kT0 + 4 * kMs);
  h.s2c("$-1\r\n", kT0 + 5 * kMs);
  EXPECT_EQ(tags_of(h.rec(2)), std::vector<std::string>{"new"});
  rig.control.collect();

  rig.file.write("rules:\n  - id: bad\n    pattern: \"(\"\n");
  EXPECT_FALSE(rig.control.reload(msg));
  EXPECT_NE(msg.find("refused"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rule 'bad'"), std::string::npos) << msg;
  rig.scanner->poll_reload();  // nothing offered
  h.c2s("*1\r\n$4\r\nbeta\r\n", kT0 + 6 * kMs);
  h.s2c("$-1\r\n", kT0 + 7 * kMs);
  EXPECT_EQ(tags_of(h.rec(3)), std::vector<std::string>{"new"});

  const RulesReport r = rig.control.report();
  EXPECT_EQ(r.version, 2u);
  EXPECT_EQ(r.reloads_ok, 1u);
  EXPECT_EQ(r.reloads_failed, 1u);
  EXPECT_NE(r.last_error.find("rule 'bad'"), std::string::npos);
  EXPECT_EQ(r.totals.rule_sets_adopted, 1u);
  EXPECT_EQ(per_rule(r, "old").matches, 2u);  // kept after its set retired
  EXPECT_EQ(per_rule(r, "old").records, 2u);
  EXPECT_EQ(per_rule(r, "new").matches, 2u);
  for (const auto& p : r.per_rule) EXPECT_EQ(p.active, p.id == "new") << p.id;
  expect_hits_ledger(r.totals);
}

// ---------------------------------------------------------------- detection

// The Hyperscan candidates plus the decoders' checks pick exactly what trying
// every decoder's check in order picks.
TEST(ProtocolDetection, SignaturesNeverHideWhatTheDecodersRecognise) {
    const auto decs = protocol_registry();
  HyperscanSignatures det;
  auto pick = [&](std::span<const std::byte> c, Transport t, uint32_t mask) -> int {
    for (size_t i = 0; i < decs.size(); ++i) {
      if ((mask & protocol_bit(decs[i]->id)) == 0) continue;
      if (decs[i]->confirm(c, t) != SniffResult::kNo) return static_cast<int>(i);
    }
    return -1;
  };
  const std::string dns_q = std::string("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12) +
                            std::string("\x03www\x07" "example\x03" "com\x00\x00\x01\x00\x01", 21);
  const std::string seeds[] = {
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
      "OPTIONS * HTTP/1.1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
      "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
      "get foo\r\n",
      "set foo 0 0 3\r\nbar\r\n",
      "VALUE foo 0 3\r\nbar\r\nEND\r\n",
      std::string("\x80\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x07", 16) + std::string(8, '\0') + "k",
      std::string("\x81\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07", 16) + std::string(8, '\0'),
      std::string("\x01\x02\x00\x00\x00\x01\x00\x00", 8) + "get foo\r\n",
      std::string("\x01\x02\x00\x00\x00\x01\x00\x00", 8) + "VALUE k 0 1\r\nx\r\nEND\r\n",
      dns_q,
      std::string("\x00\x21", 2) + dns_q,
      std::string("\x4a\x00\x00\x00\x0a" "8.0.33\x00", 12) + std::string(62, 'a'),
      std::string("\x14\x00\x00\x00\x03" "select * from t x", 21) + std::string(3, ' '),
      std::string("\x00\x00\x00\x08\x04\xd2\x16\x2f", 8),
      std::string("\x00\x00\x00\x13\x00\x03\x00\x00user\x00" "bob\x00\x00\x00", 19),
      std::string("\x20\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\xdd\x07\x00\x00", 16) + std::string(16, '\0'),
      "220 mx.example.org ESMTP Postfix\r\n",
      "220-mx.example.org smtp\r\n220 ok\r\n",
      "EHLO client.example.net\r\n",
      "helo c\r\n",
      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + std::string(32, 'r'),
      std::string("\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03", 11),
      std::string("\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10", 11),
      std::string("AMQP\x00\x00\x09\x01", 8),
      std::string("\x01\x00\x00\x00\x00\x01\xf4\x00\x0a\x00\x0a\x00\x09\x00\x00\x00\x00", 17),
      std::string("\x10\x13\x00\x04MQTT\x04\x02\x00\x3c\x00\x07sensor1", 21),
      std::string("\x10\x80\x01\x00\x04MQTT\x05\xc2\x00\x3c\x00", 14),
      std::string("\x10\x18\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x0asub-orders", 26),
      // Kafka: ApiVersions v0, Metadata v1 (topic "t"), ApiVersions v3 (flexible: header tags, compact strings).
      std::string("\x00\x00\x00\x15\x00\x12\x00\x00\x00\x00\x00\x01\x00\x0b", 14) + "corpus-kcat",
      std::string("\x00\x00\x00\x13\x00\x03\x00\x01\x00\x00\x00\x07\x00\x03", 14) + "cli" +
          std::string("\x00\x00\x00\x01\x00\x01t", 7),
      std::string("\x00\x00\x00\x31\x00\x12\x00\x03\x00\x00\x00\x02\x00\x0d", 14) + "adminclient-1" +
          std::string("\x00\x12", 2) + "apache-kafka-java" + std::string("\x06", 1) + "3.0.0" + std::string(1, '\0'),
      std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00", 33),
      std::string("\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64", 15),     // server SETTINGS
      std::string("\x00\x00\x05\x01\x05\x00\x00\x00\x01\x83\x86\x84\x41\x00", 14),          // HEADERS mid-connection
      std::string("\x00\x00\x08\x06\x01\x00\x00\x00\x00", 9) + std::string(8, '\0') +
          std::string("\x00\x00\x01\x01\x04\x00\x00\x00\x03\x88", 10),                         // PING ACK, :status 200
  };
  std::mt19937 rng(42);
  size_t detected = 0, checked = 0;
  for (const std::string& seed : seeds) {
    for (int round = 0; round < 400; ++round) {
      std::string s = seed;
      if (round > 0) {  // mutate: flip bytes, cut, extend
        const int edits = 1 + static_cast<int>(rng() % 3);
        for (int e = 0; e < edits && !s.empty(); ++e) {
          const size_t at = rng() % s.size();
          switch (rng() % 4) {
            case 0: s[at] = static_cast<char>(rng()); break;
            case 1: s.resize(at + 1); break;
            case 2: s.insert(at, 1, static_cast<char>(rng())); break;
            default: s[at] = static_cast<char>(s[at] ^ 0x20); break;
          }
        }
      }
      for (Transport t : {Transport::kTcp, Transport::kUdp}) {
        const auto c = bytes_of(s);
        const int all = pick(c, t, kAllProtocols);
        const int sig = pick(c, t, det.candidates(c, t));
        EXPECT_EQ(sig, all) << "transport " << (t == Transport::kUdp ? "udp" : "tcp") << " bytes "
                            << nlohmann::json(s).dump();
        detected += all >= 0;
        ++checked;
      }
    }
  }
  EXPECT_GT(detected, checked / 10);  // the mutations keep plenty of recognisable chunks
}

TEST(ProtocolDetection, ServiceOnAnUnusualPortIsDecodedAndCounted) {
  Harness h;
  h.open(9999);
  h.c2s("GET /x HTTP/1.1\r\nHost: a\r\n\r\n", kT0);
  h.s2c("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", kT0 + kMs);
  h.open(9998, false, kT0, 1);
  h.c2s("GEX /x HTTP/1.1\r\n\r\n", kT0, 1);  // looks like nothing
  h.close(kT0 + kMs, 1);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["protocol"], "http");
  EXPECT_EQ(h.counters().detected_by_payload[static_cast<size_t>(Protocol::kHttp)], 1u);
  EXPECT_EQ(h.counters().detect[static_cast<size_t>(DetectOutcome::kBySniff)], 1u);
  EXPECT_EQ(h.counters().detect[static_cast<size_t>(DetectOutcome::kUnknown)], 1u);
}

TEST(ProtocolDetection, FirstBytesSplitIntoTinySegmentsAreKeptAndDecoded) {
  Harness h;
  h.open(9999);
  h.c2s("GE", kT0);  // too short for any signature: kept for the next try
  h.c2s("T /sh", kT0);
  h.c2s("ort HTTP/1.1\r\nHost: a\r\n\r\n", kT0);
  h.s2c("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", kT0 + kMs);
  h.open(9998, false, kT0, 1);  // memcached typed slowly
  h.c2s("g", kT0, 1);
  h.c2s("e", kT0, 1);
  h.c2s("t k\r\n", kT0, 1);
  h.s2c("END\r\n", kT0 + kMs, 1);
  h.open(9997, false, kT0, 2);  // short junk that never becomes anything
  for (int i = 0; i < 10; ++i) h.c2s("zz", kT0, 2);
  h.close(kT0 + 2 * kMs, 2);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["status"], "ok");
  EXPECT_EQ(h.rec(0)["request"]["path"], "/short");
  EXPECT_EQ(h.rec(0)["request"]["bytes"], 32);  // every byte of the request, the kept ones included
  EXPECT_EQ(h.rec(1)["protocol"], "memcached");
  EXPECT_EQ(h.rec(1)["request"]["command"], "get");
  EXPECT_EQ(h.counters().detected_by_payload[static_cast<size_t>(Protocol::kHttp)], 1u);
  EXPECT_EQ(h.counters().detected_by_payload[static_cast<size_t>(Protocol::kMemcached)], 1u);
  EXPECT_EQ(h.counters().detect[static_cast<size_t>(DetectOutcome::kUnknown)], 1u);
  EXPECT_EQ(h.counters().undecoded_bytes, 20u);  // the junk flow's kept bytes, counted when it closed
  h.expect_ledger();
}

TEST(ProtocolDetection, KeptBytesAreBoundedAndCounted) {
  Harness h;
  h.open(9996);
  // Segments of something unknown: kept while sniffing (4 tries), then given
  // up and counted as undecoded, like everything after them.
  for (int i = 0; i < 3; ++i) h.c2s(std::string(50, 'x'), kT0);  // the third does not fit the 120 kept bytes
  EXPECT_EQ(h.counters().undecoded_bytes, 100u + 50u);
  for (int i = 0; i < 5; ++i) h.c2s("x", kT0);
  h.close(kT0 + kMs);
  EXPECT_EQ(h.counters().undecoded_bytes, 155u);
  EXPECT_EQ(h.counters().detect[static_cast<size_t>(DetectOutcome::kUnknown)], 1u);
  EXPECT_EQ(h.size(), 0u);
  h.expect_ledger();
}

}  // namespace
}  // namespace spanfeed
