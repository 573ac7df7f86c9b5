// MySQL decoder tests: bundled captures against golden records + tshark key fields, crafted streams for each
// edge case (segments, 16 MiB packets, compression, gaps, prepared statements, ERR), normalisation, fuzz replay.
// Runs in the test thread; allocates freely (tests only).
#include <zlib.h>

#include "../../src/decode/db_util.h"
#include "db_test_util.h"

int spanfeed_fuzz_mysql(const uint8_t* data, size_t size);

namespace spanfeed {
namespace {

using dbtest::GoldenCase;
using dbtest::KeyField;
using dbtest::le16s;
using dbtest::le24s;
using dbtest::le32s;
using dectest::Harness;
using dectest::kMs;
using dectest::kT0;
using json = nlohmann::json;

constexpr Protocol kP = Protocol::kMysql;

// Non-standard server ports of the DeepFlow captures are bound through DecodeConfig::ports (the sniff would
// only catch the captures that start with a greeting).
const std::vector<GoldenCase> kCases = {
    {"mysql", "171-mysql", kP, {20130}, false, 390, 390, 0, 0, 0},
    {"mysql", "binary-in-sql", kP, {2883}, true, 2, 2, 0, 0, 0},
    {"mysql", "large-response", kP, {6033}, false, 2, 2, 0, 0, 0},
    {"mysql", "mysql-compressed-response", kP, {30130}, false, 1, 1, 0, 0, 0},
    {"mysql", "mysql-database", kP, {20130}, false, 6, 6, 0, 0, 0},
    {"mysql", "mysql-error", kP, {20130}, false, 5, 4, 1, 0, 0},
    {"mysql", "mysql-exec", kP, {30130}, false, 2, 2, 0, 0, 0},
    {"mysql", "mysql-login-error", kP, {}, false, 1, 0, 1, 0, 0},
    {"mysql", "mysql-statement-id", kP, {30130}, false, 1, 1, 0, 0, 0},
    {"mysql", "mysql-statement", kP, {30130}, false, 13, 10, 0, 3, 0},
    {"mysql", "mysql-table-alter", kP, {20130}, false, 4, 4, 0, 0, 0},
    {"mysql", "mysql-table-create", kP, {20130}, false, 9, 9, 0, 0, 0},
    {"mysql", "mysql-table-delete", kP, {20130}, false, 4, 4, 0, 0, 0},
    {"mysql", "mysql-table-desc", kP, {20130}, false, 4, 4, 0, 0, 0},
    {"mysql", "mysql-table-destroy", kP, {20130}, false, 4, 4, 0, 0, 0},
    {"mysql", "mysql-table-insert", kP, {20130}, false, 4, 4, 0, 0, 0},
    {"mysql", "mysql-table-select", kP, {20130}, false, 4, 4, 0, 0, 0},
    {"mysql", "mysql-table-update", kP, {20130}, false, 4, 4, 0, 0, 0},
    {"mysql", "mysql-use", kP, {}, false, 1, 1, 0, 0, 0},
    {"mysql", "mysql", kP, {20130}, false, 7, 7, 0, 0, 0},
    {"mysql", "partial-packet-compressed", kP, {30130}, false, 2, 2, 0, 0, 0},
    {"mysql", "truncate-1024", kP, {6033}, false, 4, 4, 0, 0, 0},
};

class MysqlGolden : public ::testing::TestWithParam<GoldenCase> {};
TEST_P(MysqlGolden, MatchesCheckedInRecords) { dbtest::check_golden(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Captures, MysqlGolden, ::testing::ValuesIn(kCases),
                         dbtest::golden_case_name);

// From `tshark -r F -d tcp.port==P,mysql -T fields -e mysql.command -e mysql.query -e mysql.error_code
// -e mysql.error.message -e mysql.affected_rows ...` and DeepFlow's .result.
TEST(MysqlGoldenKeys, FieldsAgreeWithTshark) {
  const std::vector<KeyField> keys = {
      {"mysql-error", 3, "/request/command", "COM_INIT_DB"},
      {"mysql-error", 3, "/request/database", "abcd"},
      {"mysql-error", 3, "/response/error_code", 1049},
      {"mysql-error", 3, "/response/sql_state", "42000"},
      {"mysql-error", 3, "/response/error_message", "Unknown database 'abcd'"},
      {"mysql-error", 3, "/status", "error"},
      {"mysql-login-error", 0, "/request/command", "LOGIN"},
      {"mysql-login-error", 0, "/request/user", "mydemo"},
      {"mysql-login-error", 0, "/request/database", "mydemo-dn1"},
      {"mysql-login-error", 0, "/request/server_version", "5.7.18"},
      {"mysql-login-error", 0, "/response/error_code", 1040},
      {"mysql-login-error", 0, "/response/error_message", "Too many connections"},
      {"mysql", 0, "/request/user", "root"},
      {"mysql", 0, "/request/database", "deepflow"},
      {"mysql", 0, "/request/server_version", "8.0.21"},
      {"mysql", 1, "/request/query", "SET NAMES utf8"},
      {"mysql", 2, "/request/normalized", "set autocommit=?"},
      {"mysql", 4, "/request/query", "SHOW WARNINGS"},
      {"mysql", 4, "/response/rows", 1},
      {"mysql", 6, "/request/command", "COM_QUIT"},
      {"mysql-table-insert", 2, "/request/query", "insert into tmp (id,lcuuid) values (1000,'yuanchao-test')"},
      {"mysql-table-insert", 2, "/request/normalized", "insert into tmp (id,lcuuid) values (?)"},
      {"mysql-table-insert", 2, "/response/affected_rows", 1},
      {"mysql-table-update", 2, "/request/normalized", "update test_table set age=? where id=?"},
      {"mysql-table-select", 2, "/response/rows", 3},
      {"mysql-table-select", 2, "/response/columns", 3},
      {"mysql-table-desc", 2, "/response/rows", 3},
      {"mysql-table-create", 6, "/request/command", "COM_FIELD_LIST"},
      {"mysql-table-create", 6, "/request/table", "test_table"},
      {"mysql-table-create", 4, "/response/rows", 31},
      {"mysql-use", 0, "/request/query", "use `test`"},
      {"mysql-statement-id", 0, "/request/command", "COM_STMT_PREPARE"},
      {"mysql-statement-id", 0, "/response/statement_id", 510},
      {"mysql-statement", 1, "/request/command", "COM_STMT_EXECUTE"},
      {"mysql-statement", 1, "/request/statement_id", 96},
      {"mysql-statement", 1, "/request/normalized", "SELECT * FROM `controller` WHERE name = ?"},
      {"mysql-statement", 2, "/request/command", "COM_STMT_CLOSE"},
      {"mysql-exec", 1, "/request/statement_id", 55},
      {"truncate-1024", 1, "/response/rows", 3},
      {"truncate-1024", 3, "/request/query", "SELECT * FROM `controller`"},
      {"large-response", 1, "/response/rows", 3},
      {"large-response", 1, "/response/columns", 21},
      {"mysql-compressed-response", 0, "/request/query", "SELECT * FROM `az_controller_connection`"},
      {"mysql-compressed-response", 0, "/response/rows", 5},
      {"mysql-compressed-response", 0, "/response/bytes", 374},
      {"partial-packet-compressed", 0, "/request/query",
       "SELECT * FROM `process` WHERE `process`.`deleted_at` IS NULL"},
      {"partial-packet-compressed", 0, "/response/columns", 24},
      {"partial-packet-compressed", 0, "/response/rows", 1992},
      {"partial-packet-compressed", 1, "/request/query", "SELECT * FROM `vip`"},
      {"partial-packet-compressed", 1, "/response/rows", 0},
      {"binary-in-sql", 0, "/request/query", "set @@SQL_SELECT_LIMIT=60001"},
  };
  dbtest::check_keys(kCases, keys);
}

// ---------------------------------------------------------------- crafted streams

std::string pkt(uint8_t seq, const std::string& payload) {
  return le24s(static_cast<uint32_t>(payload.size())) + std::string(1, static_cast<char>(seq)) + payload;
}
std::string query(const std::string& sql) { return pkt(0, std::string("\x03", 1) + sql); }
std::string ok_pkt(uint8_t seq, uint8_t affected = 0, uint8_t last_id = 0, uint16_t status = 2) {
  return pkt(seq, std::string("\x00", 1) + static_cast<char>(affected) + static_cast<char>(last_id) + le16s(status) +
                      le16s(0));
}
std::string eof_pkt(uint8_t seq, uint16_t status = 2) { return pkt(seq, std::string("\xfe", 1) + le16s(0) + le16s(status)); }
std::string err_pkt(uint8_t seq, uint16_t code, const std::string& state, const std::string& msg) {
  return pkt(seq, std::string("\xff", 1) + le16s(code) + "#" + state + msg);
}
std::string coldef(uint8_t seq, const std::string& name) {
  auto lstr = [](const std::string& s) { return std::string(1, static_cast<char>(s.size())) + s; };
  return pkt(seq, lstr("def") + lstr("db") + lstr("t") + lstr("t") + lstr(name) + lstr(name) + "\x0c" +
                      le16s(33) + le32s(255) + "\xfd" + le16s(0) + "\x00" + std::string(2, '\0'));
}
std::string row(uint8_t seq, const std::string& v) { return pkt(seq, std::string(1, static_cast<char>(v.size())) + v); }

// Result set: column count, definitions, EOF, rows, EOF (classic protocol).
std::string result_set(int cols, int rows) {
  uint8_t s = 1;
  std::string r = pkt(s++, std::string(1, static_cast<char>(cols)));
  for (int i = 0; i < cols; ++i) r += coldef(s++, "c" + std::to_string(i));
  r += eof_pkt(s++);
  for (int i = 0; i < rows; ++i) r += row(s++, std::string(static_cast<size_t>(i % 50), 'v'));
  r += eof_pkt(s++);
  return r;
}

std::string greeting(uint32_t caps) {
  std::string p = "\x0a" + std::string("8.0.33") + std::string(1, '\0') + le32s(7) + "abcdefgh" + std::string(1, '\0') +
                  le16s(static_cast<uint16_t>(caps)) + "\x21" + le16s(2) + le16s(static_cast<uint16_t>(caps >> 16)) +
                  "\x15" + std::string(10, '\0') + "ijklmnopqrst" + std::string(1, '\0') + "mysql_native_password" +
                  std::string(1, '\0');
  return pkt(0, p);
}
std::string login(uint32_t caps, const std::string& user, const std::string& db) {
  std::string p = le32s(caps) + le32s(1 << 24) + "\x21" + std::string(23, '\0') + user + std::string(1, '\0') +
                  "\x14" + "SECRETSECRETSECRET!!" + db + std::string(1, '\0') + "mysql_native_password" +
                  std::string(1, '\0');
  return pkt(1, p);
}
constexpr uint32_t kCaps = 0x200 | 0x8000 | 0x8 | 0x80000;  // 4.1, secure connection, with db, plugin auth

TEST(Mysql, LoginQueryAndResultSetSplitOverManySegments) {
  Harness h;
  h.open(3306);
  h.s2c(greeting(kCaps), kT0);
  h.c2s(login(kCaps, "alice", "shop"), kT0 + 1 * kMs);
  h.s2c(ok_pkt(2), kT0 + 2 * kMs);
  h.c2s(query("select name from users where id = 42 and tag in ('a', 'b', 'c')"), kT0 + 3 * kMs);
  h.builder();
  const std::string rs = result_set(3, 200);
  h.dribble(Direction::kServerToClient, rs, 7, kT0 + 4 * kMs);  // packets split at every 7 bytes
  ASSERT_EQ(h.size(), 2u);
  json l = h.rec(0);
  EXPECT_EQ(l["request"]["command"], "LOGIN");
  EXPECT_EQ(l["request"]["user"], "alice");
  EXPECT_EQ(l["request"]["database"], "shop");
  EXPECT_EQ(l["request"]["server_version"], "8.0.33");
  EXPECT_EQ(h.lines()[0].find("SECRET"), std::string::npos);  // the auth response is never exported
  json q = h.rec(1);
  EXPECT_EQ(q["request"]["command"], "COM_QUERY");
  EXPECT_EQ(q["request"]["normalized"], "select name from users where id = ? and tag in (?)");
  EXPECT_EQ(q["response"]["columns"], 3);
  EXPECT_EQ(q["response"]["rows"], 200);
  EXPECT_EQ(q["response"]["bytes"], rs.size());
  EXPECT_EQ(q["latency_us"], 1000);
  h.expect_ledger();
}

TEST(Mysql, EmptyResultSetClassicAndDeprecateEof) {
  Harness h;
  h.open(3306);
  h.c2s(query("select * from t where 1 = 0"), kT0);
  h.s2c(result_set(2, 0), kT0 + kMs);
  // DEPRECATE_EOF: definitions, then straight the OK (0xfe header) terminator
  h.c2s(query("select * from t where 2 = 0"), kT0 + 2 * kMs);
  h.s2c(pkt(1, "\x02") + coldef(2, "a") + coldef(3, "b") + pkt(4, std::string("\xfe\x00\x00\x02\x00\x00\x00", 7)),
        kT0 + 3 * kMs);
  h.c2s(query("select 1"), kT0 + 4 * kMs);
  h.s2c(pkt(1, "\x01") + coldef(2, "1") + row(3, "1") + pkt(4, std::string("\xfe\x00\x00\x02\x00\x00\x00", 7)),
        kT0 + 5 * kMs);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(0)["response"]["rows"], 0);
  EXPECT_EQ(h.rec(0)["response"]["columns"], 2);
  EXPECT_EQ(h.rec(1)["response"]["rows"], 0);
  EXPECT_EQ(h.rec(1)["response"]["columns"], 2);
  EXPECT_EQ(h.rec(2)["response"]["rows"], 1);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(h.rec(i)["status"], "ok");
  h.expect_ledger();
}

TEST(Mysql, ErrAndOkFields) {
  Harness h;
  h.open(3306);
  h.c2s(query("insert into t values (1)"), kT0);
  h.s2c(ok_pkt(1, 1, 77), kT0 + kMs);
  h.c2s(query("select * from nope"), kT0 + 2 * kMs);
  h.s2c(err_pkt(1, 1146, "42S02", "Table 'db.nope' doesn't exist"), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  json a = h.rec(0);
  EXPECT_EQ(a["status"], "ok");
  EXPECT_EQ(a["response"]["affected_rows"], 1);
  EXPECT_EQ(a["response"]["last_insert_id"], 77);
  EXPECT_EQ(a["response"]["warnings"], 0);
  json e = h.rec(1);
  EXPECT_EQ(e["status"], "error");
  EXPECT_EQ(e["response"]["error_code"], 1146);
  EXPECT_EQ(e["response"]["sql_state"], "42S02");
  EXPECT_EQ(e["response"]["error_message"], "Table 'db.nope' doesn't exist");
  EXPECT_EQ(h.counters().of(Protocol::kMysql, RecordStatus::kError), 1u);
  h.expect_ledger();
}

// CLIENT_MULTI_STATEMENTS / CALL: one response with a result set then several OKs (SERVER_MORE_RESULTS_EXISTS,
// 0x0008): each key once (pymysql's "SELECT 1; UPDATE ...; UPDATE ..." repeated warnings and affected_rows).
TEST(Mysql, MultiStatementResponseHasEachKeyOnce) {
  Harness h;
  h.open(3306);
  h.c2s(query("select 1; update t set v = 1 where id < 10; insert into t values (5)"), kT0);
  std::string rs = result_set(1, 1);
  rs.replace(rs.size() - 9, 9, eof_pkt(4, 0x000a));  // the result set's last EOF says more results follow
  h.s2c(rs + ok_pkt(5, 9, 0, 0x000a) + ok_pkt(6, 1, 42, 0x0002), kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  const std::string& line = h.lines()[0];
  for (const char* k : {"\"warnings\"", "\"affected_rows\"", "\"last_insert_id\""}) {
    EXPECT_EQ(line.find(k), line.rfind(k)) << k << " in " << line;
  }
  json a = h.rec(0);
  EXPECT_EQ(a["status"], "ok");
  EXPECT_EQ(a["response"]["rows"], 1);
  EXPECT_EQ(a["response"]["columns"], 1);
  EXPECT_EQ(a["response"]["affected_rows"], 10);  // 9 + 1
  EXPECT_EQ(a["response"]["last_insert_id"], 42);
  EXPECT_EQ(a["response"]["warnings"], 0);
  h.expect_ledger();
}

TEST(Mysql, NonQueryCommands) {
  Harness h;
  h.open(3306);
  h.c2s(pkt(0, "\x02shop"), kT0);  // INIT_DB
  h.s2c(ok_pkt(1), kT0 + kMs);
  h.c2s(pkt(0, "\x0e"), kT0 + 2 * kMs);  // PING
  h.s2c(ok_pkt(1), kT0 + 3 * kMs);
  h.c2s(pkt(0, std::string("\x04users\x00%", 8)), kT0 + 4 * kMs);  // FIELD_LIST
  h.s2c(coldef(1, "id") + coldef(2, "name") + eof_pkt(3), kT0 + 5 * kMs);
  h.c2s(pkt(0, "\x09"), kT0 + 6 * kMs);  // STATISTICS
  h.s2c(pkt(1, "Uptime: 5  Threads: 1"), kT0 + 7 * kMs);
  h.c2s(pkt(0, "\x01"), kT0 + 8 * kMs);  // QUIT: no reply
  ASSERT_EQ(h.size(), 5u);
  EXPECT_EQ(h.rec(0)["request"]["command"], "COM_INIT_DB");
  EXPECT_EQ(h.rec(0)["request"]["database"], "shop");
  EXPECT_EQ(h.rec(1)["request"]["command"], "COM_PING");
  EXPECT_EQ(h.rec(2)["request"]["command"], "COM_FIELD_LIST");
  EXPECT_EQ(h.rec(2)["request"]["table"], "users");
  EXPECT_EQ(h.rec(2)["response"]["columns"], 2);
  EXPECT_EQ(h.rec(3)["request"]["command"], "COM_STATISTICS");
  EXPECT_EQ(h.rec(4)["request"]["command"], "COM_QUIT");
  EXPECT_TRUE(h.rec(4)["response"].is_null());
  EXPECT_EQ(h.rec(4)["status"], "ok");
  h.expect_ledger();
}

TEST(Mysql, PreparedStatementIdsTieExecutesToTheirSql) {
  Harness h;
  h.open(3306);
  h.c2s(pkt(0, "\x16SELECT * FROM users WHERE id = ? AND name = 'x'"), kT0);
  // PREPARE_OK: id 7, 1 column, 2 params; 2 param defs + EOF, 1 column def + EOF
  h.s2c(pkt(1, std::string("\x00", 1) + le32s(7) + le16s(1) + le16s(2) + std::string(1, '\0') + le16s(0)) +
            coldef(2, "?") + coldef(3, "?") + eof_pkt(4) + coldef(5, "id") + eof_pkt(6),
        kT0 + kMs);
  h.c2s(pkt(0, std::string("\x17", 1) + le32s(7) + std::string("\x00\x01\x00\x00\x00", 5)), kT0 + 2 * kMs);
  h.s2c(pkt(1, "\x01") + coldef(2, "id") + eof_pkt(3) + pkt(4, std::string("\x00\x00\x05", 3)) + eof_pkt(5),
        kT0 + 3 * kMs);
  h.c2s(pkt(0, std::string("\x19", 1) + le32s(7)), kT0 + 4 * kMs);  // STMT_CLOSE: no reply
  h.c2s(pkt(0, std::string("\x17", 1) + le32s(7) + std::string("\x00\x01\x00\x00\x00", 5)), kT0 + 5 * kMs);
  h.s2c(err_pkt(1, 1243, "HY000", "Unknown prepared statement handler"), kT0 + 6 * kMs);
  ASSERT_EQ(h.size(), 4u);
  json p = h.rec(0);
  EXPECT_EQ(p["request"]["command"], "COM_STMT_PREPARE");
  EXPECT_EQ(p["request"]["normalized"], "SELECT * FROM users WHERE id = ? AND name = ?");
  EXPECT_EQ(p["response"]["statement_id"], 7);
  EXPECT_EQ(p["response"]["params"], 2);
  json e = h.rec(1);
  EXPECT_EQ(e["request"]["command"], "COM_STMT_EXECUTE");
  EXPECT_EQ(e["request"]["statement_id"], 7);
  EXPECT_EQ(e["request"]["normalized"], "SELECT * FROM users WHERE id = ? AND name = ?");
  EXPECT_EQ(e["response"]["rows"], 1);
  EXPECT_EQ(h.rec(2)["request"]["command"], "COM_STMT_CLOSE");
  json after = h.rec(3);  // closed: the id no longer ties to SQL
  EXPECT_EQ(after["request"]["statement_id"], 7);
  EXPECT_FALSE(after["request"].contains("normalized"));
  EXPECT_EQ(after["status"], "error");
  h.expect_ledger();
}

// A PREPARE whose tail the capture lost (a snaplen cut): its record is flagged, and the statement id no
// longer ties later executions to part of its SQL ("INSERT INTO items (id, name, descr, price) VALUES (?, ?,"
// had gone on every EXECUTE, unflagged); they carry the id without text, as when the PREPARE was not seen.
TEST(Mysql, PrepareCutByTheCaptureTiesNoSqlToItsExecutes) {
  Harness h;
  h.open(3306);
  const std::string prep = pkt(0, "\x16INSERT INTO items (id, name, price) VALUES (?, ?, ?)");
  h.c2s(prep.substr(0, 30), kT0);
  h.gap(Direction::kClientToServer, prep.size() - 30, kT0);
  h.s2c(pkt(1, std::string("\x00", 1) + le32s(9) + le16s(0) + le16s(3) + std::string(1, '\0') + le16s(0)) +
            coldef(2, "?") + coldef(3, "?") + coldef(4, "?") + eof_pkt(5),
        kT0 + kMs);
  h.c2s(pkt(0, std::string("\x17", 1) + le32s(9) + std::string("\x00\x01\x00\x00\x00", 5)), kT0 + 2 * kMs);
  h.s2c(ok_pkt(1, 1), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["request"]["command"], "COM_STMT_PREPARE");
  EXPECT_EQ(h.rec(0)["response"]["statement_id"], 9);
  EXPECT_EQ(dectest::flags_of(h.rec(0)), (std::vector<std::string>{"gap", "truncated"}));
  json e = h.rec(1);
  EXPECT_EQ(e["request"]["command"], "COM_STMT_EXECUTE");
  EXPECT_EQ(e["request"]["statement_id"], 9);
  EXPECT_FALSE(e["request"].contains("normalized"));
  EXPECT_TRUE(dectest::flags_of(e).empty());
  EXPECT_EQ(e["response"]["affected_rows"], 1);
  h.expect_ledger();
}

// MariaDB with MARIADB_CLIENT_CACHE_METADATA (DBD::MariaDB against MariaDB
// 10.11, from a real capture): an execute's column count carries a "metadata
// follows" byte of 0, and no column definitions come; EOF, rows, EOF follow.
TEST(Mysql, MariadbCachedMetadataExecuteHasNoColumnDefinitions) {
  Harness h;
  h.open(3306);
  h.c2s(pkt(0, "\x16SELECT id, name, price FROM items WHERE id = ?"), kT0);
  h.s2c(pkt(1, std::string("\x00", 1) + le32s(1) + le16s(3) + le16s(1) + std::string(1, '\0') + le16s(0)) +
            coldef(2, "?") + eof_pkt(3) + coldef(4, "id") + coldef(5, "name") + coldef(6, "price") + eof_pkt(7),
        kT0 + kMs);
  for (int i = 0; i < 3; ++i) {
    h.c2s(pkt(0, std::string("\x17", 1) + le32s(1) + std::string("\x00\x01\x00\x00\x00\x01\xfe\x00\x01\x31", 10)),
          kT0 + (2 + 2 * i) * kMs);
    // column count 3 + metadata-follows 0; EOF; one binary row; EOF (bytes as captured)
    h.s2c(pkt(1, std::string("\x03\x00", 2)) + eof_pkt(2) +
              pkt(3, std::string("\x00\x00\x01\x00\x00\x00\x06item-1\x043.50", 18)) + eof_pkt(4),
          kT0 + (3 + 2 * i) * kMs);
  }
  ASSERT_EQ(h.size(), 4u);
  for (int i = 1; i < 4; ++i) {
    json e = h.rec(i);
    EXPECT_EQ(e["status"], "ok") << i;
    EXPECT_EQ(e["request"]["command"], "COM_STMT_EXECUTE");
    EXPECT_EQ(e["response"]["rows"], 1) << i;
    EXPECT_EQ(e["response"]["columns"], 3) << i;
  }
  h.expect_ledger();
}

TEST(Mysql, PacketsOver16MiBContinue) {
  Harness h;
  h.open(3306);
  // COM_QUERY of 0xffffff + 10 payload bytes: one full packet, then a 10-byte continuation.
  std::string sql = "select '" + std::string(0xffffff + 10 - 16, 'x') + "' as ab";
  std::string payload = "\x03" + sql;
  ASSERT_EQ(payload.size(), 0xffffffu + 10);
  std::string wire = le24s(0xffffff) + std::string(1, '\0') + payload.substr(0, 0xffffff) + le24s(10) +
                     std::string(1, '\x01') + payload.substr(0xffffff);
  h.dribble(Direction::kClientToServer, wire, 65536, kT0);
  // Response: a row of 0xffffff bytes (continued by an empty packet) inside a result set.
  std::string big_row = std::string(1, '\xfd') + le24s(0xffffff - 4) + std::string(0xffffff - 4, 'y');
  std::string rs = pkt(1, "\x01") + coldef(2, "c") + eof_pkt(3) + le24s(0xffffff) + std::string(1, '\x04') + big_row +
                   pkt(5, "") + eof_pkt(6);
  h.dribble(Direction::kServerToClient, rs, 65536, kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["request"]["bytes"], wire.size());
  EXPECT_EQ(r["request"]["query_bytes"], sql.size());
  EXPECT_EQ(r["response"]["rows"], 1);
  EXPECT_EQ(r["response"]["bytes"], rs.size());
  EXPECT_EQ(r["status"], "ok");
  h.expect_ledger();
}

std::string zlib(const std::string& s) {
  uLongf n = compressBound(static_cast<uLong>(s.size()));
  std::string out(n, '\0');
  compress(reinterpret_cast<Bytef*>(out.data()), &n, reinterpret_cast<const Bytef*>(s.data()),
           static_cast<uLong>(s.size()));
  out.resize(n);
  return out;
}
std::string comp_pkt(uint8_t seq, const std::string& inner, bool deflate) {
  if (!deflate) return le24s(static_cast<uint32_t>(inner.size())) + std::string(1, static_cast<char>(seq)) + le24s(0) + inner;
  const std::string z = zlib(inner);
  return le24s(static_cast<uint32_t>(z.size())) + std::string(1, static_cast<char>(seq)) +
         le24s(static_cast<uint32_t>(inner.size())) + z;
}

TEST(Mysql, CompressedProtocolAfterNegotiation) {
  Harness h;
  h.open(3306);
  h.s2c(greeting(kCaps | 0x20), kT0);
  h.c2s(login(kCaps | 0x20, "bob", ""), kT0 + kMs);
  h.s2c(ok_pkt(2), kT0 + 2 * kMs);
  h.c2s(comp_pkt(0, query("select 1"), false), kT0 + 3 * kMs);  // small: sent uncompressed inside the frame
  const std::string rs = result_set(4, 500);
  // the server's response in two compressed packets, the MySQL packets straddling them; each split in segments
  const std::string c1 = comp_pkt(1, rs.substr(0, rs.size() / 2), true);
  const std::string c2 = comp_pkt(2, rs.substr(rs.size() / 2), true);
  h.dribble(Direction::kServerToClient, c1 + c2, 100, kT0 + 4 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(0)["request"]["compressed"], true);
  json q = h.rec(1);
  EXPECT_EQ(q["request"]["query"], "select 1");
  EXPECT_EQ(q["response"]["rows"], 500);
  EXPECT_EQ(q["response"]["columns"], 4);
  EXPECT_EQ(q["response"]["bytes"], c1.size() + c2.size());
  // corrupt deflate data: counted, the flow resyncs on the next command
  h.c2s(comp_pkt(0, query("select 2"), false), kT0 + 5 * kMs);
  std::string bad = comp_pkt(1, rs, true);
  for (size_t i = 12; i < 40; ++i) bad[i] = 'Z';
  h.s2c(bad, kT0 + 6 * kMs);
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(Protocol::kMysql)], 1u);
  h.c2s(comp_pkt(0, query("select 3"), false), kT0 + 7 * kMs);
  h.s2c(comp_pkt(1, ok_pkt(1), true), kT0 + 8 * kMs);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h.rec(2)["status"], "timeout");  // select 2: its response was undecodable
  EXPECT_EQ(h.rec(3)["request"]["query"], "select 3");
  EXPECT_EQ(h.rec(3)["status"], "ok");
  h.expect_ledger();
}

TEST(Mysql, GapDropsStateUntilTheNextCommand) {
  Harness h;
  h.open(3306);
  h.c2s(query("select a from t"), kT0);
  const std::string rs = result_set(1, 50);
  h.s2c(rs.substr(0, 100), kT0 + kMs);
  h.gap(Direction::kServerToClient, 200, kT0 + 2 * kMs);  // the rest of the result set is lost
  h.s2c(rs.substr(300), kT0 + 3 * kMs);                   // its tail: not a packet boundary, skipped
  ASSERT_EQ(h.size(), 1u);
  // rows wholly inside the first 100 bytes: packets after the count, 1 definition and the EOF
  int whole = 0;
  for (size_t at = 0; at + 4 <= 100;) {
    const size_t len = static_cast<uint8_t>(rs[at]) | static_cast<uint8_t>(rs[at + 1]) << 8;
    if (at + 4 + len > 100) break;
    at += 4 + len;
    ++whole;
  }
  ASSERT_GT(whole, 3);
  // what arrived of the result set is the response, flagged gap (status from it, rows so far)
  EXPECT_EQ(h.rec(0)["status"], "ok");
  EXPECT_EQ(dectest::flags_of(h.rec(0)), std::vector<std::string>{"gap"});
  EXPECT_EQ(h.rec(0)["response"]["bytes"], 100);
  EXPECT_EQ(h.rec(0)["response"]["columns"], 1);
  EXPECT_EQ(h.rec(0)["response"]["rows"], whole - 3);
  EXPECT_EQ(h.counters().timeouts[static_cast<size_t>(TimeoutCause::kGap)], 0u);
  // client gap in the middle of a command: what arrived of it is the request (flagged), its answer pairs
  // with it; bytes up to the next command are skipped
  const std::string q2 = query("update t set a = 1 where b = 'xyz'");
  h.c2s(q2.substr(0, 10), kT0 + 4 * kMs);
  h.gap(Direction::kClientToServer, 5, kT0 + 5 * kMs);
  h.c2s(q2.substr(15), kT0 + 6 * kMs);
  h.s2c(ok_pkt(1, 1), kT0 + 7 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(1)["request"]["query"], "updat");
  EXPECT_EQ(h.rec(1)["request"]["bytes"], 10);
  EXPECT_EQ(h.rec(1)["status"], "ok");
  EXPECT_EQ(h.rec(1)["response"]["affected_rows"], 1);
  EXPECT_EQ(dectest::flags_of(h.rec(1)), (std::vector<std::string>{"gap", "truncated"}));
  h.c2s(query("select 2"), kT0 + 8 * kMs);
  h.s2c(result_set(1, 1), kT0 + 9 * kMs);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(2)["request"]["query"], "select 2");
  EXPECT_EQ(h.rec(2)["response"]["rows"], 1);
  EXPECT_GE(h.counters().resyncs, 1u);
  h.expect_ledger();
}

// The flow ends inside a query: what arrived of it is the request, a timeout flagged truncated (as HTTP);
// a response cut short is recorded with what arrived (truncated); an ERR cut short is an error.
TEST(Mysql, MessagesCutByTheCloseAreRecorded) {
  Harness h;
  h.open(3306);
  h.c2s(query("select a from t"), kT0);
  const std::string rs = result_set(1, 5);
  h.s2c(rs.substr(0, rs.size() - 9), kT0 + kMs);  // the final EOF is missing
  const std::string q = query("select b from u where c = 1");
  h.c2s(q.substr(0, 16), kT0 + 2 * kMs);
  h.close(kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  json a = h.rec(0);
  EXPECT_EQ(a["status"], "ok");
  EXPECT_EQ(a["response"]["rows"], 5);
  EXPECT_EQ(dectest::flags_of(a), std::vector<std::string>{"truncated"});
  json b = h.rec(1);
  EXPECT_EQ(b["status"], "timeout");
  EXPECT_EQ(b["request"]["command"], "COM_QUERY");
  EXPECT_EQ(b["request"]["query"], "select b fr");  // 16 bytes: header, command, 11 of the text
  EXPECT_EQ(b["request"]["bytes"], 16);
  EXPECT_EQ(dectest::flags_of(b), std::vector<std::string>{"truncated"});
  EXPECT_EQ(h.counters().timeouts[static_cast<size_t>(TimeoutCause::kClose)], 1u);
  EXPECT_EQ(h.counters().partial_at_close, 0u);

  h.open(3306, false, kT0, 1);
  h.c2s(query("select 1"), kT0, 1);
  const std::string err = pkt(1, std::string("\xff\x7a\x04#42S02Table 'x' doesn't exist", 34));
  h.s2c(err.substr(0, 14), kT0 + kMs, 1);  // ERR cut
  h.c2s(std::string("\x20\x00", 2), kT0 + 2 * kMs, 1);  // a header cut: too little to tell
  h.close(kT0 + 3 * kMs, 1);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(2)["status"], "error");
  EXPECT_EQ(dectest::flags_of(h.rec(2)), std::vector<std::string>{"truncated"});
  EXPECT_EQ(h.counters().partial_at_close, 1u);
  h.expect_ledger();
}

TEST(Mysql, MidStreamCaptureStartsAtTheFirstCommand) {
  Harness h;
  h.open(3306);
  h.s2c(row(7, "tail of an earlier result") + eof_pkt(8), kT0);  // no request: skipped
  h.c2s(std::string("junk that is not a packet"), kT0 + kMs);
  h.c2s(query("select 1"), kT0 + 2 * kMs);
  h.s2c(result_set(1, 1), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["status"], "ok");
  h.expect_ledger();
}

TEST(Mysql, SslRequestStopsDecoding) {
  Harness h;
  h.open(3306);
  h.s2c(greeting(kCaps | 0x800), kT0);
  h.c2s(pkt(1, le32s(kCaps | 0x800) + le32s(1 << 24) + "\x21" + std::string(23, '\0')), kT0 + kMs);
  h.s2c(std::string("\x16\x03\x01\x00\x05hello", 10), kT0 + 2 * kMs);
  h.c2s(query("select 1"), kT0 + 3 * kMs);  // inside TLS as far as we know: not decoded
  EXPECT_EQ(h.size(), 0u);
  EXPECT_EQ(h.counters().encrypted_flows, 1u);
  h.expect_ledger();
}

TEST(Mysql, SniffFindsGreetingsOnUnmappedPorts) {
  Harness h;
  h.open(20130);
  h.s2c(greeting(kCaps), kT0);
  h.c2s(login(kCaps, "u", "d"), kT0 + kMs);
  h.s2c(ok_pkt(2), kT0 + 2 * kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["protocol"], "mysql");
  EXPECT_EQ(h.counters().detect[static_cast<size_t>(DetectOutcome::kBySniff)], 1u);
}

TEST(MysqlNormalize, LiteralsBecomePlaceholders) {
  auto n = [](std::string_view s) {
    char buf[512];
    return std::string(buf, db::normalize_sql(s, buf, sizeof(buf), db::SqlDialect::kMysql));
  };
  EXPECT_EQ(n("select * from t where id = 7"), "select * from t where id = ?");
  EXPECT_EQ(n("SELECT a FROM t1 WHERE b='it''s' AND c=\"x\\\"y\" AND d=-3.5e10"),
            "SELECT a FROM t1 WHERE b=? AND c=? AND d=-?");
  EXPECT_EQ(n("select 0xFF, X'0a', b'101', col2 from `t3`"), "select ?, ?, ?, col2 from `t3`");
  EXPECT_EQ(n("insert into t values (1, 'a', 2.5), (2, 'b', NULL)"), "insert into t values (?), (?, NULL)");
  EXPECT_EQ(n("select *   from t /* hint */\n where x in (1,2,3) -- tail"), "select * from t where x in (?)");
  EXPECT_EQ(n("select ? from t where a = ?"), "select ? from t where a = ?");
}

// normalize_sql copies identifiers eight bytes at a time: ident_bytes must
// agree with is_ident_char for every byte value at every position of a word.
TEST(MysqlNormalize, IdentBytesMatchesIsIdentChar) {
  for (int pos = 0; pos < 8; ++pos) {
    for (int c = 0; c < 256; ++c) {
      for (const uint8_t fill : {uint8_t{'a'}, uint8_t{' '}, uint8_t{0xff}, uint8_t{0x00}, uint8_t{'9'}}) {
        uint8_t b[8];
        std::memset(b, fill, sizeof(b));
        b[pos] = static_cast<uint8_t>(c);
        uint64_t w;
        std::memcpy(&w, b, sizeof(w));
        const uint64_t m = db::ident_bytes(w);
        for (int k = 0; k < 8; ++k) {
          const bool want = db::is_ident_char(static_cast<char>(b[k]));
          ASSERT_EQ((m >> (8 * k + 7)) & 1, want ? 1u : 0u) << "byte " << int(b[k]) << " at " << k;
        }
        ASSERT_EQ(m & ~0x8080808080808080ull, 0u);
      }
    }
  }
}

// Identifiers of every length around the word size, ended by each kind of
// byte, at the end of the text or not, and cut by a small output buffer.
TEST(MysqlNormalize, IdentifiersOfEveryLength) {
  const std::string_view enders[] = {"", " ", ",", "'x'", "\xc3\xa9", "(1)", ".c", "$1", "\t"};
  for (size_t len = 1; len <= 26; ++len) {
    std::string id;
    for (size_t k = 0; k < len; ++k) id += "aZ_9$q\xc3\xa9"[k % 8];
    if (id[0] == '9' || id[0] == '$') id[0] = 'k';
    for (const std::string_view e : enders) {
      const std::string in = "select " + id + std::string(e) + " from t";
      std::string want = "select " + id;
      if (e == "'x'") {
        want += "? from t";
      } else if (e == "(1)") {
        want += "(?) from t";
      } else if (e == " " || e == "\t") {  // one blank with the next
        want += " from t";
      } else {
        want += std::string(e) + " from t";
      }
      char buf[512];
      EXPECT_EQ(std::string(buf, db::normalize_sql(in, buf, sizeof(buf), db::SqlDialect::kMysql)), want) << in;
      const std::string at_end = "select " + id;
      EXPECT_EQ(std::string(buf, db::normalize_sql(at_end, buf, sizeof(buf), db::SqlDialect::kMysql)), at_end);
      // Out of room: what fits of the identifier, nothing past the cap.
      char small[12];
      std::memset(small, '#', sizeof(small));
      const size_t n = db::normalize_sql(in, small, 10, db::SqlDialect::kMysql);
      ASSERT_LE(n, 10u);
      EXPECT_EQ(std::string(small, n), want.substr(0, n)) << in;
      EXPECT_EQ(small[10], '#');
      EXPECT_EQ(small[11], '#');
    }
  }
}

TEST(FuzzReplay, Mysql) {
  using fuzz::make_script;
  const std::vector<std::string> seeds = {
      make_script(false, {{true, greeting(kCaps)}, {false, login(kCaps, "u", "d")}, {true, ok_pkt(2)},
                          {false, query("select 1")}, {true, result_set(2, 3)}}),
      make_script(false, {{false, pkt(0, "\x16select ?")},
                          {true, pkt(1, std::string("\x00", 1) + le32s(1) + le16s(1) + le16s(1) + std::string(3, '\0')) +
                                     coldef(2, "?") + eof_pkt(3) + coldef(4, "a") + eof_pkt(5)},
                          {false, pkt(0, std::string("\x17", 1) + le32s(1) + std::string(5, '\0'))},
                          {true, err_pkt(1, 1, "HY000", "x")}}),
      make_script(false, {{false, comp_pkt(0, query("select 1"), false)}, {true, comp_pkt(1, result_set(1, 2), true)}}),
  };
  dbtest::fuzz_exercise("mysql", spanfeed_fuzz_mysql, seeds);
}

}  // namespace
}  // namespace spanfeed
