// PostgreSQL decoder tests: bundled captures against golden records + tshark key fields, crafted streams
// (startup, SSL refused/accepted, simple and extended query, errors, gaps), fuzz replay.
// Runs in the test thread; allocates freely (tests only).
#include "db_test_util.h"

int spanfeed_fuzz_pgsql(const uint8_t* data, size_t size);

namespace spanfeed {
namespace {

using dbtest::be16s;
using dbtest::be32s;
using dbtest::GoldenCase;
using dbtest::KeyField;
using dectest::Harness;
using dectest::kMs;
using dectest::kT0;
using json = nlohmann::json;

constexpr Protocol kP = Protocol::kPgsql;

// pgsql-all runs on port 8000 (mapped to HTTP by default): bound to pgsql for the test.
const std::vector<GoldenCase> kCases = {
    {"pgsql", "error", kP, {}, false, 1, 0, 1, 0, 0},
    {"pgsql", "pgsql-all", kP, {8000}, false, 32, 32, 0, 0, 0},
    {"pgsql", "prepare_stat", kP, {}, false, 1, 1, 0, 0, 0},
    {"pgsql", "simple_query", kP, {}, false, 1, 1, 0, 0, 0},
};

class PgsqlGolden : public ::testing::TestWithParam<GoldenCase> {};
TEST_P(PgsqlGolden, MatchesCheckedInRecords) { dbtest::check_golden(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Captures, PgsqlGolden, ::testing::ValuesIn(kCases),
                         dbtest::golden_case_name);

// From `tshark -r F [-d tcp.port==8000,pgsql] -T fields -e pgsql.type -e pgsql.query -e pgsql.tag -e pgsql.code
// -e pgsql.message`.
TEST(PgsqlGoldenKeys, FieldsAgreeWithTshark) {
  const std::vector<KeyField> keys = {
      {"error", 0, "/request/query", "asdsdfdsf;"},
      {"error", 0, "/response/sql_state", "42601"},
      {"error", 0, "/response/error_message", "syntax error at or near \"asdsdfdsf\""},
      {"error", 0, "/response/severity", "ERROR"},
      {"simple_query", 0, "/request/query", "delete  from test;"},
      {"simple_query", 0, "/request/normalized", "delete from test;"},
      {"simple_query", 0, "/response/tag", "DELETE 1"},
      {"simple_query", 0, "/response/rows", 1},
      {"prepare_stat", 0, "/request/query", "delete from test where id=$1 returning id"},
      {"prepare_stat", 0, "/request/command", "PARSE"},
      {"prepare_stat", 0, "/response/tag", "DELETE 0"},
      {"pgsql-all", 0, "/request/query", "SELECT 'x'"},
      {"pgsql-all", 0, "/request/normalized", "SELECT ?"},
      {"pgsql-all", 0, "/response/tag", "SELECT 1"},
      {"pgsql-all", 0, "/response/columns", 1},
      {"pgsql-all", 1, "/request/command", "EXECUTE"},
      {"pgsql-all", 7, "/response/data_rows", 1},
  };
  dbtest::check_keys(kCases, keys);
}

std::string msg(char type, const std::string& body) {
  return std::string(1, type) + be32s(static_cast<uint32_t>(body.size() + 4)) + body;
}
std::string z(char status = 'I') { return msg('Z', std::string(1, status)); }
std::string cstr(const std::string& s) { return s + std::string(1, '\0'); }
std::string startup(const std::string& user, const std::string& db) {
  std::string body = be32s(196608) + cstr("user") + cstr(user) + cstr("database") + cstr(db) + std::string(1, '\0');
  return be32s(static_cast<uint32_t>(body.size() + 4)) + body;
}
std::string ssl_request() { return be32s(8) + be32s(80877103); }
std::string row_desc(int cols) {
  std::string b = be16s(static_cast<uint16_t>(cols));
  for (int i = 0; i < cols; ++i) b += cstr("c" + std::to_string(i)) + std::string(18, '\0');
  return msg('T', b);
}
std::string data_row(const std::string& v) { return msg('D', be16s(1) + be32s(static_cast<uint32_t>(v.size())) + v); }
std::string error(const std::string& code, const std::string& m) {
  return msg('E', "SERROR" + std::string(1, '\0') + "VERROR" + std::string(1, '\0') + "C" + cstr(code) + "M" + cstr(m) +
                      std::string(1, '\0'));
}

TEST(Pgsql, StartupSslRefusedThenSimpleQuery) {
  Harness h;
  h.open(5432);
  h.c2s(ssl_request(), kT0);
  h.s2c("N", kT0 + kMs);
  h.c2s(startup("alice", "shop"), kT0 + 2 * kMs);
  h.s2c(msg('R', be32s(5) + "salt"), kT0 + 3 * kMs);
  h.c2s(msg('p', cstr("md5secretsecretsecret")), kT0 + 4 * kMs);  // password: never exported
  h.s2c(msg('R', be32s(0)) + msg('S', cstr("server_version") + cstr("16.1")) + msg('K', be32s(1) + be32s(2)) + z(),
        kT0 + 5 * kMs);
  h.c2s(msg('Q', cstr("select * from items where price > 10.5 and name = 'x'")), kT0 + 6 * kMs);
  std::string resp = row_desc(2);
  for (int i = 0; i < 25; ++i) resp += data_row("value-" + std::to_string(i));
  resp += msg('C', cstr("SELECT 25")) + z();
  h.dribble(Direction::kServerToClient, resp, 9, kT0 + 7 * kMs);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(0)["request"]["command"], "SSL_REQUEST");
  EXPECT_EQ(h.rec(0)["response"]["ssl"], "refused");
  json s = h.rec(1);
  EXPECT_EQ(s["request"]["command"], "STARTUP");
  EXPECT_EQ(s["request"]["user"], "alice");
  EXPECT_EQ(s["request"]["database"], "shop");
  for (const auto& l : h.lines()) EXPECT_EQ(l.find("md5secret"), std::string::npos);
  json q = h.rec(2);
  EXPECT_EQ(q["request"]["normalized"], "select * from items where price > ? and name = ?");
  EXPECT_EQ(q["response"]["tag"], "SELECT 25");
  EXPECT_EQ(q["response"]["rows"], 25);
  EXPECT_EQ(q["response"]["data_rows"], 25);
  EXPECT_EQ(q["response"]["columns"], 2);
  EXPECT_EQ(q["response"]["bytes"], resp.size());
  h.expect_ledger();
}

TEST(Pgsql, SslAcceptedStopsDecoding) {
  Harness h;
  h.open(5432);
  h.c2s(ssl_request(), kT0);
  h.s2c("S", kT0 + kMs);
  h.c2s(std::string("\x16\x03\x01\x02\x00\x01", 6), kT0 + 2 * kMs);
  h.s2c(std::string("\x16\x03\x03\x00\x7a\x02", 6), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["response"]["ssl"], "accepted");
  EXPECT_EQ(h.counters().encrypted_flows, 1u);
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(kP)], 0u);
  h.expect_ledger();
}

TEST(Pgsql, ExtendedQueryOneRoundtripPerSync) {
  Harness h;
  h.open(5432);
  const std::string parse = msg('P', cstr("s1") + cstr("update t set a = $1 where id = 42") + be16s(0));
  const std::string bind = msg('B', cstr("") + cstr("s1") + be16s(0) + be16s(0) + be16s(0));
  const std::string exec = msg('E', cstr("") + be32s(0));
  const std::string sync = msg('S', "");
  h.c2s(parse + bind + msg('D', "P" + cstr("")) + exec + sync, kT0);
  h.s2c(msg('1', "") + msg('2', "") + msg('n', "") + msg('C', cstr("UPDATE 3")) + z('T'), kT0 + kMs);
  // pipelined: two Bind/Execute/Sync batches on the named statement before any answer
  h.c2s(bind + exec + sync + bind + exec + sync, kT0 + 2 * kMs);
  h.s2c(msg('2', "") + msg('C', cstr("UPDATE 1")) + z('T'), kT0 + 3 * kMs);
  h.s2c(msg('2', "") + error("23505", "duplicate key value violates unique constraint") + z('E'), kT0 + 4 * kMs);
  ASSERT_EQ(h.size(), 3u);
  json a = h.rec(0);
  EXPECT_EQ(a["request"]["command"], "EXECUTE");
  EXPECT_EQ(a["request"]["statement"], "s1");
  EXPECT_EQ(a["request"]["normalized"], "update t set a = $1 where id = ?");
  EXPECT_EQ(a["response"]["tag"], "UPDATE 3");
  EXPECT_EQ(a["response"]["rows"], 3);
  json b = h.rec(1);
  EXPECT_EQ(b["request"]["normalized"], "update t set a = $1 where id = ?");  // from the Parse of s1
  EXPECT_EQ(b["response"]["rows"], 1);
  json c = h.rec(2);
  EXPECT_EQ(c["status"], "error");
  EXPECT_EQ(c["response"]["sql_state"], "23505");
  EXPECT_EQ(c["response"]["severity"], "ERROR");
  EXPECT_EQ(c["response"]["error_message"], "duplicate key value violates unique constraint");
  h.expect_ledger();
}

// asyncpg's copy_records_to_table: Parse + Describe + Flush (no Sync) to learn the columns, then the COPY as a
// simple query. One ReadyForQuery ends both: one roundtrip, the simple query's, each key once.
TEST(Pgsql, SimpleQueryAfterFlushedBatchIsOneRoundtrip) {
  Harness h;
  h.open(5432);
  const std::string copy = "COPY \"t\" FROM STDIN (FORMAT binary)";
  h.c2s(msg('P', cstr("stmt_5") + cstr("SELECT * FROM \"t\" LIMIT 1") + be16s(0)) + msg('D', "S" + cstr("stmt_5")) +
            msg('H', ""),
        kT0);
  h.s2c(msg('1', "") + msg('t', be16s(0)) + row_desc(3), kT0 + kMs);
  h.c2s(msg('Q', cstr(copy)), kT0 + 2 * kMs);
  h.s2c(msg('G', std::string(1, '\1') + be16s(0)), kT0 + 3 * kMs);
  h.c2s(msg('d', "PGCOPY") + msg('c', ""), kT0 + 4 * kMs);
  h.s2c(msg('C', cstr("COPY 300")) + z('I'), kT0 + 5 * kMs);
  ASSERT_EQ(h.size(), 1u);
  const std::string& line = h.lines()[0];
  EXPECT_EQ(line.find("\"query\""), line.rfind("\"query\"")) << line;
  EXPECT_EQ(line.find("\"normalized\""), line.rfind("\"normalized\"")) << line;
  json a = h.rec(0);
  EXPECT_EQ(a["status"], "ok");
  EXPECT_EQ(a["request"]["command"], "QUERY");
  EXPECT_EQ(a["request"]["query"], copy);
  EXPECT_FALSE(a["request"].contains("statement"));
  EXPECT_EQ(a["response"]["tag"], "COPY 300");
  EXPECT_EQ(a["response"]["rows"], 300);
  h.expect_ledger();
}

// A batch that only describes a prepared statement (psycopg 3's and JDBC's Describe + Sync) is a DESCRIBE
// roundtrip of Describe's bytes and Sync's, whole in one segment or cut inside the Describe: the client's
// 'D' is Describe, not a row to skip (it was skipped: a SYNC record of 5 bytes).
TEST(Pgsql, DescribeOnlyBatchIsADescribeRoundtrip) {
  const std::string describe = msg('D', "S" + cstr("stmt_1"));
  const std::string sync = msg('S', "");
  for (const size_t cut : {describe.size() + sync.size(), size_t{8}}) {
    Harness h;
    h.open(5432);
    const std::string req = describe + sync;
    h.c2s(req.substr(0, cut), kT0);
    if (cut < req.size()) h.c2s(req.substr(cut), kT0 + kMs / 2);
    h.s2c(msg('t', be16s(0)) + row_desc(2) + z('I'), kT0 + kMs);
    ASSERT_EQ(h.size(), 1u) << "cut " << cut;
    json a = h.rec(0);
    EXPECT_EQ(a["status"], "ok");
    EXPECT_EQ(a["request"]["command"], "DESCRIBE") << "cut " << cut;
    EXPECT_EQ(a["request"]["bytes"], describe.size() + sync.size()) << "cut " << cut;
    EXPECT_EQ(a["latency_us"], 1000);
    EXPECT_TRUE(dectest::flags_of(a).empty());
    h.expect_ledger();
  }
}

// psycopg 3's executemany: one Parse, then Bind/Describe/Execute per row, one Sync. Bytes lost in the middle
// leave the batch open, flagged `gap`: one record with the Parse's text. A Bind batch of a statement whose
// Parse was never seen names it once.
TEST(Pgsql, GapInsideAnExtendedBatchKeepsItsRecord) {
  Harness h;
  h.open(5432);
  const std::string parse = msg('P', cstr("_pg3_0") + cstr("INSERT INTO t VALUES ($1)") + be16s(0));
  const std::string bind = msg('B', cstr("") + cstr("_pg3_0") + be16s(0) + be16s(0) + be16s(0));
  const std::string exec = msg('E', cstr("") + be32s(0));
  h.c2s(parse + bind + exec, kT0);
  h.gap(Direction::kClientToServer, bind.size() + exec.size(), kT0 + kMs);
  h.c2s(bind + exec + msg('S', ""), kT0 + 2 * kMs);
  std::string answer = msg('1', "");
  for (int i = 0; i < 3; ++i) answer += msg('2', "") + msg('C', cstr("INSERT 0 1"));
  h.s2c(answer + z('I'), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 1u);
  json a = h.rec(0);
  EXPECT_EQ(a["status"], "ok");
  EXPECT_EQ(a["request"]["command"], "EXECUTE");
  EXPECT_EQ(a["request"]["query"], "INSERT INTO t VALUES ($1)");
  EXPECT_EQ(a["request"]["bytes"], parse.size() + 3 * (bind.size() + exec.size()) + 5);
  EXPECT_EQ(a["response"]["rows"], 3);
  EXPECT_EQ(dectest::flags_of(a), std::vector<std::string>{"gap"});

  Harness g;  // the capture began after the Parse
  g.open(5432);
  const std::string bind2 = msg('B', cstr("") + cstr("_pg3_7") + be16s(0) + be16s(0) + be16s(0));
  g.c2s(bind2 + exec + bind2 + exec + bind2 + exec + msg('S', ""), kT0);
  g.s2c(answer + z('I'), kT0 + kMs);
  ASSERT_EQ(g.size(), 1u);
  const std::string& line = g.lines()[0];
  EXPECT_EQ(line.find("\"statement\""), line.rfind("\"statement\"")) << line;
  EXPECT_EQ(g.rec(0)["request"]["statement"], "_pg3_7");
}

// asyncpg's fetch of a bad statement: Parse+Describe+Flush, the server's error, then Sync. With the first
// segment lost, the Sync begins the record after the hole: it carries the lost statement's error, so it is
// flagged `gap` (it was a clean SYNC record). A whole request lost whose answer came (unmatched) leaves the
// next batch clean; so does a simple query, which is a whole request of its own. A server-side gap flags the
// batch open on the client side (its Flush's answer may be in the hole).
TEST(Pgsql, RecordBegunAfterARequestGapIsFlagged) {
  Harness h;
  h.open(5432);
  const std::string parse = msg('P', cstr("__asyncpg_stmt_3__") + cstr("SELECT * FROM t WHERE idx = $1") + be16s(0));
  const std::string describe = msg('D', "S" + cstr("__asyncpg_stmt_3__"));
  const std::string err = error("42703", "column \"idx\" does not exist");
  h.gap(Direction::kClientToServer, parse.size() + describe.size() + 5, kT0);  // Parse, Describe, Flush
  h.s2c(err, kT0 + kMs);
  h.c2s(msg('S', ""), kT0 + 2 * kMs);
  h.s2c(z('I'), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 1u);
  json a = h.rec(0);
  EXPECT_EQ(a["status"], "error");
  EXPECT_EQ(a["request"]["command"], "SYNC");
  EXPECT_EQ(a["request"]["bytes"], 5);
  EXPECT_EQ(a["response"]["sql_state"], "42703");
  EXPECT_EQ(a["response"]["error_message"], "column \"idx\" does not exist");
  EXPECT_EQ(a["response"]["bytes"], err.size() + 6);
  EXPECT_EQ(dectest::flags_of(a), std::vector<std::string>{"gap"});

  // The next batch begins with its own Parse after a ReadyForQuery: clean.
  const std::string batch = msg('P', cstr("") + cstr("SELECT 1") + be16s(0)) +
                            msg('B', cstr("") + cstr("") + be16s(0) + be16s(0) + be16s(0)) +
                            msg('E', cstr("") + be32s(0)) + msg('S', "");
  const std::string answer = msg('1', "") + msg('2', "") + data_row("1") + msg('C', cstr("SELECT 1")) + z('I');
  h.c2s(batch, kT0 + 4 * kMs);
  h.s2c(answer, kT0 + 5 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(1)["request"]["command"], "EXECUTE");
  EXPECT_EQ(h.rec(1)["response"]["tag"], "SELECT 1");
  EXPECT_EQ(dectest::flags_of(h.rec(1)), std::vector<std::string>{});

  // A whole batch lost: its answer is unmatched, the batch after it is clean.
  h.gap(Direction::kClientToServer, batch.size(), kT0 + 6 * kMs);
  h.s2c(answer, kT0 + 7 * kMs);
  h.c2s(batch, kT0 + 8 * kMs);
  h.s2c(answer, kT0 + 9 * kMs);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h.rec(2)["status"], "unmatched");
  EXPECT_EQ(h.rec(3)["status"], "ok");
  EXPECT_EQ(h.rec(3)["request"]["query"], "SELECT 1");
  EXPECT_EQ(dectest::flags_of(h.rec(3)), std::vector<std::string>{});

  // Bind/Execute/Sync right after a hole (its Parse may have been in it): flagged. A simple query: clean.
  h.gap(Direction::kClientToServer, 20, kT0 + 10 * kMs);
  h.c2s(batch.substr(batch.find('B')), kT0 + 11 * kMs);
  h.s2c(answer, kT0 + 12 * kMs);
  h.gap(Direction::kClientToServer, 20, kT0 + 13 * kMs);
  h.c2s(msg('Q', cstr("select 2")), kT0 + 14 * kMs);
  h.s2c(msg('C', cstr("SELECT 0")) + z(), kT0 + 15 * kMs);
  ASSERT_EQ(h.size(), 6u);
  EXPECT_EQ(h.rec(4)["request"]["command"], "EXECUTE");
  EXPECT_EQ(dectest::flags_of(h.rec(4)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(5)["request"]["query"], "select 2");
  EXPECT_EQ(dectest::flags_of(h.rec(5)), std::vector<std::string>{});
  h.expect_ledger();

  // asyncpg's executemany: Parse+Describe+Flush, its answer lost in a gap of the server side, then the Binds
  // and the Sync: the batch's response lacks what the hole held (it was a clean record, 29 bytes short).
  Harness g;
  g.open(5432);
  const std::string prep = msg('P', cstr("__asyncpg_stmt_4__") + cstr("INSERT INTO t VALUES ($1)") + be16s(0)) +
                           msg('D', "S" + cstr("__asyncpg_stmt_4__")) + msg('H', "");
  g.c2s(prep, kT0);
  const std::string prepared = msg('1', "") + msg('t', be16s(1) + be32s(23)) + msg('n', "");
  g.gap(Direction::kServerToClient, prepared.size(), kT0 + kMs);
  const std::string rows = msg('B', cstr("") + cstr("__asyncpg_stmt_4__") + be16s(0) + be16s(0) + be16s(0)) +
                           msg('E', cstr("") + be32s(0));
  g.c2s(rows + rows + msg('S', ""), kT0 + 2 * kMs);
  const std::string done = msg('2', "") + msg('C', cstr("INSERT 0 1")) + msg('2', "") + msg('C', cstr("INSERT 0 1")) + z('I');
  g.s2c(done, kT0 + 3 * kMs);
  ASSERT_EQ(g.size(), 1u);
  json b = g.rec(0);
  EXPECT_EQ(b["status"], "ok");
  EXPECT_EQ(b["request"]["command"], "EXECUTE");
  EXPECT_EQ(b["request"]["statement"], "__asyncpg_stmt_4__");
  EXPECT_EQ(b["request"]["bytes"], prep.size() + 2 * rows.size() + 5);
  EXPECT_EQ(b["response"]["bytes"], done.size());
  EXPECT_EQ(b["response"]["rows"], 2);
  EXPECT_EQ(dectest::flags_of(b), std::vector<std::string>{"gap"});
  g.expect_ledger();
}

TEST(Pgsql, ErrorDuringStartupAndTerminate) {
  Harness h;
  h.open(5432);
  h.c2s(startup("bob", "nope"), kT0);
  h.s2c(error("3D000", "database \"nope\" does not exist"), kT0 + kMs);
  h.fin(Direction::kServerToClient, kT0 + 2 * kMs);  // fatal: the server closes without ReadyForQuery
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["status"], "error");
  EXPECT_EQ(h.rec(0)["response"]["sql_state"], "3D000");
  Harness g;
  g.open(5432);
  g.c2s(msg('Q', cstr("select 1")), kT0);
  g.s2c(row_desc(1) + data_row("1") + msg('C', cstr("SELECT 1")) + z(), kT0 + kMs);
  g.c2s(msg('X', ""), kT0 + 2 * kMs);
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g.rec(1)["request"]["command"], "TERMINATE");
  EXPECT_TRUE(g.rec(1)["response"].is_null());
  g.expect_ledger();
}

TEST(Pgsql, GapInRowsIsAbsorbedGapElsewhereResyncs) {
  Harness h;
  h.open(5432);
  h.c2s(msg('Q', cstr("select v from big")), kT0);
  const std::string r1 = data_row(std::string(1000, 'a'));
  h.s2c(row_desc(1) + r1.substr(0, 100), kT0 + kMs);
  h.gap(Direction::kServerToClient, 500, kT0 + 2 * kMs);  // inside the DataRow: skipped, counted
  h.s2c(r1.substr(600) + msg('C', cstr("SELECT 1")) + z(), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["response"]["rows"], 1);
  EXPECT_EQ(dectest::flags_of(h.rec(0)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.counters().gaps_absorbed, 1u);
  // a gap over message boundaries: pending requests time out (gap), the next message boundary resyncs
  h.c2s(msg('Q', cstr("select 2")), kT0 + 4 * kMs);
  h.s2c(row_desc(1).substr(0, 3), kT0 + 5 * kMs);
  h.gap(Direction::kServerToClient, 40, kT0 + 6 * kMs);
  h.s2c("garbage", kT0 + 7 * kMs);
  h.c2s(msg('Q', cstr("select 3")), kT0 + 8 * kMs);
  h.s2c(msg('C', cstr("SELECT 0")) + z(), kT0 + 9 * kMs);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(1)["status"], "timeout");
  EXPECT_EQ(h.rec(2)["request"]["query"], "select 3");
  EXPECT_EQ(h.rec(2)["status"], "ok");
  h.expect_ledger();
}

// The flow ends inside a query: what arrived of it is the request, a timeout flagged truncated (as HTTP);
// a response cut short is recorded with what arrived (truncated); a header cut is only counted.
TEST(Pgsql, MessagesCutByTheCloseAreRecorded) {
  Harness h;
  h.open(5432);
  h.c2s(msg('Q', cstr("select 1")), kT0);  // mid-stream: first query
  std::string resp = row_desc(1) + data_row("a") + data_row("b");
  h.s2c(resp, kT0 + kMs);  // no CommandComplete / ReadyForQuery: the response is cut
  const std::string q = msg('Q', cstr("select name from users where id = 7"));
  h.c2s(q.substr(0, 20), kT0 + 2 * kMs);
  h.close(kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  json a = h.rec(0);
  EXPECT_EQ(a["status"], "ok");
  EXPECT_EQ(a["response"]["columns"], 1);
  EXPECT_EQ(a["response"]["data_rows"], 2);
  EXPECT_EQ(dectest::flags_of(a), std::vector<std::string>{"truncated"});
  json b = h.rec(1);
  EXPECT_EQ(b["status"], "timeout");
  EXPECT_EQ(b["request"]["command"], "QUERY");
  EXPECT_EQ(b["request"]["query"], "select name fro");  // 20 bytes: type, length, 15 of the text
  EXPECT_EQ(b["request"]["bytes"], 20);
  EXPECT_EQ(dectest::flags_of(b), std::vector<std::string>{"truncated"});
  EXPECT_EQ(h.counters().timeouts[static_cast<size_t>(TimeoutCause::kClose)], 1u);

  // an extended-query batch without its Sync, and a message cut inside its header
  h.open(5432, false, kT0, 1);
  h.c2s(msg('Q', cstr("select 1")), kT0, 1);
  h.s2c(msg('C', cstr("SELECT 1")) + z(), kT0 + kMs, 1);
  h.c2s(msg('P', cstr("") + cstr("select $1") + be16s(0)) + msg('B', cstr("") + cstr("") + be16s(0) + be16s(0) + be16s(0)) +
            msg('E', cstr("") + be32s(0)),
        kT0 + 2 * kMs, 1);
  h.close(kT0 + 3 * kMs, 1);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h.rec(3)["status"], "timeout");
  EXPECT_EQ(h.rec(3)["request"]["command"], "EXECUTE");
  EXPECT_EQ(h.rec(3)["request"]["query"], "select $1");
  EXPECT_EQ(dectest::flags_of(h.rec(3)), std::vector<std::string>{"truncated"});
  h.open(5432, false, kT0, 2);
  h.c2s(msg('Q', cstr("select 1")), kT0, 2);
  h.s2c(msg('C', cstr("SELECT 1")) + z(), kT0 + kMs, 2);
  h.c2s(std::string("Q\0", 2), kT0 + 2 * kMs, 2);
  h.close(kT0 + 3 * kMs, 2);
  EXPECT_EQ(h.size(), 5u);
  EXPECT_EQ(h.counters().partial_at_close, 1u);
  h.expect_ledger();
}

TEST(FuzzReplay, Pgsql) {
  using fuzz::make_script;
  const std::vector<std::string> seeds = {
      make_script(false, {{false, ssl_request()}, {true, "N"}, {false, startup("u", "d")},
                          {true, msg('R', be32s(0)) + z()}, {false, msg('Q', cstr("select 1"))},
                          {true, row_desc(1) + data_row("1") + msg('C', cstr("SELECT 1")) + z()}}),
      make_script(false, {{false, msg('P', cstr("") + cstr("select $1") + be16s(0)) + msg('S', "")},
                          {true, msg('1', "") + error("42P01", "x") + z('E')}}),
  };
  dbtest::fuzz_exercise("pgsql", spanfeed_fuzz_pgsql, seeds);
}

}  // namespace
}  // namespace spanfeed
