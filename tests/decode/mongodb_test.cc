// MongoDB decoder tests: bundled captures against golden records + tshark key fields, crafted streams (OP_MSG
// ok/error, OP_QUERY/OP_REPLY, OP_COMPRESSED, out-of-order replies, gaps), fuzz replay.
// Runs in the test thread; allocates freely (tests only).
#include <cmath>
#include <zlib.h>

#include "db_test_util.h"

int spanfeed_fuzz_mongodb(const uint8_t* data, size_t size);

namespace spanfeed {
namespace {

using dbtest::GoldenCase;
using dbtest::KeyField;
using dbtest::le32s;
using dectest::Harness;
using dectest::kMs;
using dectest::kT0;
using json = nlohmann::json;

constexpr Protocol kP = Protocol::kMongodb;

// mongo-msg runs on port 3717: bound for the test (the sniff would also find it).
const std::vector<GoldenCase> kCases = {
    {"mongo", "mongo", kP, {}, false, 15, 14, 1, 0, 0},
    {"mongo", "mongo-msg", kP, {3717}, false, 1, 1, 0, 0, 0},
};

class MongoGolden : public ::testing::TestWithParam<GoldenCase> {};
TEST_P(MongoGolden, MatchesCheckedInRecords) { dbtest::check_golden(GetParam()); }
INSTANTIATE_TEST_SUITE_P(Captures, MongoGolden, ::testing::ValuesIn(kCases),
                         dbtest::golden_case_name);

// From `tshark -r F [-d tcp.port==3717,mongo] -T fields -e mongo.opcode -e mongo.request_id -e mongo.response_to
// -e mongo.element.name -e mongo.element.value.string` and DeepFlow's .result.
TEST(MongoGoldenKeys, FieldsAgreeWithTshark) {
  const std::vector<KeyField> keys = {
      {"mongo-msg", 0, "/request/op", "OP_MSG"},
      {"mongo-msg", 0, "/request/command", "find"},
      {"mongo-msg", 0, "/request/collection", "query"},
      {"mongo-msg", 0, "/request/database", "sky-test"},
      {"mongo-msg", 0, "/response/ok", 1},
      {"mongo", 0, "/request/op", "OP_QUERY"},
      {"mongo", 0, "/request/command", "isMaster"},
      {"mongo", 0, "/request/database", "admin"},
      {"mongo", 0, "/response/op", "OP_REPLY"},
      {"mongo", 0, "/response/number_returned", 1},
      {"mongo", 1, "/request/command", "saslContinue"},
      {"mongo", 11, "/request/command", "replSetGetStatus"},
      {"mongo", 11, "/response/ok", 0},
      {"mongo", 11, "/response/error_code", 76},
      {"mongo", 11, "/response/error_message", "not running with --replSet"},
      {"mongo", 11, "/status", "error"},
      {"mongo", 14, "/request/command", "endSessions"},
  };
  dbtest::check_keys(kCases, keys);
}

// Minimal BSON builder for the tests.
struct Bson {
  std::string body;
  Bson& str(const std::string& k, const std::string& v) {
    body += '\x02' + k + '\0' + le32s(static_cast<uint32_t>(v.size() + 1)) + v + '\0';
    return *this;
  }
  Bson& dbl(const std::string& k, double v) {
    std::string b(8, '\0');
    std::memcpy(b.data(), &v, 8);
    body += '\x01' + k + '\0' + b;
    return *this;
  }
  Bson& i32(const std::string& k, int32_t v) {
    body += '\x10' + k + '\0' + le32s(static_cast<uint32_t>(v));
    return *this;
  }
  Bson& i64(const std::string& k, int64_t v) {
    const auto u = static_cast<uint64_t>(v);
    body += '\x12' + k + '\0' + le32s(static_cast<uint32_t>(u)) + le32s(static_cast<uint32_t>(u >> 32));
    return *this;
  }
  Bson& doc(const std::string& k, const Bson& d, bool array = false) {
    body += std::string(1, array ? '\x04' : '\x03') + k + '\0' + d.bytes();
    return *this;
  }
  std::string bytes() const { return le32s(static_cast<uint32_t>(body.size() + 5)) + body + '\0'; }
};

std::string wire(uint32_t id, uint32_t to, int32_t op, const std::string& body) {
  return le32s(static_cast<uint32_t>(body.size() + 16)) + le32s(id) + le32s(to) + le32s(static_cast<uint32_t>(op)) +
         body;
}
std::string op_msg(uint32_t id, uint32_t to, const Bson& b, uint32_t flags = 0) {
  return wire(id, to, 2013, le32s(flags) + '\0' + b.bytes());
}

TEST(Mongo, OpMsgOkErrorAndOutOfOrderReplies) {
  Harness h;
  h.open(27017);
  h.c2s(op_msg(10, 0, Bson().str("find", "users").str("$db", "shop")), kT0);
  h.c2s(op_msg(11, 0, Bson().str("insert", "orders").str("$db", "shop")), kT0 + kMs);
  // replies in the other order; the second one is an error
  h.s2c(op_msg(90, 11, Bson().dbl("ok", 0).str("errmsg", "not primary").i32("code", 10107).str("codeName", "NotWritablePrimary")),
        kT0 + 2 * kMs);
  Bson batch;
  batch.body = Bson().i32("0", 1).body;  // placeholder element list
  Bson arr;
  arr.doc("0", Bson().i32("a", 1)).doc("1", Bson().i32("a", 2)).doc("2", Bson().i32("a", 3));
  h.s2c(op_msg(91, 10, Bson().doc("cursor", Bson().doc("firstBatch", arr, true).str("ns", "shop.users")).dbl("ok", 1)),
        kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  json e = h.rec(0);
  EXPECT_EQ(e["request"]["command"], "insert");
  EXPECT_EQ(e["request"]["collection"], "orders");
  EXPECT_EQ(e["status"], "error");
  EXPECT_EQ(e["response"]["ok"], 0);
  EXPECT_EQ(e["response"]["error_code"], 10107);
  EXPECT_EQ(e["response"]["error_message"], "not primary");
  EXPECT_EQ(e["response"]["code_name"], "NotWritablePrimary");
  json f = h.rec(1);
  EXPECT_EQ(f["request"]["command"], "find");
  EXPECT_EQ(f["request"]["database"], "shop");
  EXPECT_EQ(f["response"]["returned"], 3);
  EXPECT_EQ(f["status"], "ok");
  h.expect_ledger();
}

TEST(Mongo, LegacyQueryReplyAndFireAndForget) {
  Harness h;
  h.open(27017);
  const std::string q = le32s(0) + "admin.$cmd" + '\0' + le32s(0) + le32s(1) + Bson().i32("ismaster", 1).bytes();
  h.c2s(wire(5, 0, 2004, q), kT0);
  const std::string r = le32s(0) + std::string(8, '\0') + le32s(0) + le32s(1) + Bson().dbl("ok", 1).bytes();
  h.s2c(wire(6, 5, 1, r), kT0 + kMs);
  const std::string q2 = le32s(0) + "shop.users" + '\0' + le32s(0) + le32s(10) + Bson().str("name", "x").bytes();
  h.c2s(wire(7, 0, 2004, q2), kT0 + 2 * kMs);
  const std::string r2 = le32s(2) + std::string(8, '\0') + le32s(0) + le32s(1) +
                         Bson().str("$err", "bad query").i32("code", 2).bytes();  // QueryFailure
  h.s2c(wire(8, 7, 1, r2), kT0 + 3 * kMs);
  h.c2s(wire(9, 0, 2002, le32s(0) + "shop.users" + '\0' + Bson().str("a", "b").bytes()), kT0 + 4 * kMs);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.rec(0)["request"]["command"], "ismaster");
  EXPECT_EQ(h.rec(0)["request"]["database"], "admin");
  EXPECT_EQ(h.rec(0)["response"]["number_returned"], 1);
  EXPECT_EQ(h.rec(1)["request"]["command"], "query");
  EXPECT_EQ(h.rec(1)["request"]["collection"], "users");
  EXPECT_EQ(h.rec(1)["status"], "error");
  EXPECT_EQ(h.rec(1)["response"]["error_message"], "bad query");
  EXPECT_EQ(h.rec(2)["request"]["op"], "OP_INSERT");
  EXPECT_TRUE(h.rec(2)["response"].is_null());
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
std::string compressed(uint32_t id, uint32_t to, const std::string& msg_body, uint8_t compressor) {
  const std::string data = compressor == 2 ? zlib(msg_body) : msg_body;
  return wire(id, to, 2012, le32s(2013) + le32s(static_cast<uint32_t>(msg_body.size())) +
                                std::string(1, static_cast<char>(compressor)) + data);
}

TEST(Mongo, OpCompressedZlibAndUndecodableCompressors) {
  Harness h;
  h.open(27017);
  const std::string body = le32s(0) + '\0' + Bson().str("aggregate", "events").str("$db", "logs").bytes();
  const std::string c = compressed(21, 0, body, 2);
  h.dribble(Direction::kClientToServer, c, 5, kT0);
  h.s2c(compressed(70, 21, le32s(0) + '\0' + Bson().dbl("ok", 1).bytes(), 2), kT0 + kMs);
  h.c2s(compressed(22, 0, body, 1), kT0 + 2 * kMs);  // snappy: counted, still matched by id
  h.s2c(compressed(71, 22, body, 1), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  json a = h.rec(0);
  EXPECT_EQ(a["request"]["op"], "OP_COMPRESSED");
  EXPECT_EQ(a["request"]["compressor"], "zlib");
  EXPECT_EQ(a["request"]["original_op"], "OP_MSG");
  EXPECT_EQ(a["request"]["command"], "aggregate");
  EXPECT_EQ(a["request"]["collection"], "events");
  EXPECT_EQ(a["request"]["database"], "logs");
  EXPECT_EQ(a["request"]["bytes"], c.size());
  EXPECT_EQ(a["response"]["ok"], 1);
  EXPECT_EQ(h.rec(1)["request"]["compressor"], "snappy");
  EXPECT_EQ(h.rec(1)["status"], "ok");
  EXPECT_EQ(h.counters().decode_errors[static_cast<size_t>(kP)], 2u);
  h.expect_ledger();
}

TEST(Mongo, GapResyncsByRequestId) {
  Harness h;
  h.open(27017);
  h.c2s(op_msg(1, 0, Bson().str("find", "a").str("$db", "d")), kT0);
  h.c2s(op_msg(2, 0, Bson().str("find", "b").str("$db", "d")), kT0 + kMs);
  const std::string r1 = op_msg(50, 1, Bson().dbl("ok", 1).str("pad", std::string(300, 'p')));
  h.s2c(r1.substr(0, 40), kT0 + 2 * kMs);
  h.gap(Direction::kServerToClient, 100, kT0 + 3 * kMs);
  h.s2c(r1.substr(140), kT0 + 4 * kMs);  // not a header: skipped
  h.s2c(op_msg(51, 2, Bson().dbl("ok", 1)), kT0 + 5 * kMs);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h.rec(0)["request"]["collection"], "b");
  EXPECT_GE(h.counters().resyncs, 1u);
  h.close(kT0 + 6 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(1)["status"], "timeout");
  h.expect_ledger();
}

TEST(FuzzReplay, Mongodb) {
  using fuzz::make_script;
  const std::string body = le32s(0) + '\0' + Bson().str("find", "c").str("$db", "d").bytes();
  const std::vector<std::string> seeds = {
      make_script(false, {{false, op_msg(1, 0, Bson().str("find", "c").str("$db", "d"))},
                          {true, op_msg(2, 1, Bson().dbl("ok", 0).str("errmsg", "x"))}}),
      make_script(false, {{false, compressed(3, 0, body, 2)}, {true, compressed(4, 3, body, 0)}}),
  };
  dbtest::fuzz_exercise("mongodb", spanfeed_fuzz_mongodb, seeds);
}

// ok: 1 with writeErrors (a duplicate key on insert) is an error: code and message of the first write error.
TEST(Mongo, WriteErrorsMakeAnErrorRecord) {
  Harness h;
  h.open(27017);
  h.c2s(op_msg(20, 0, Bson().str("insert", "users").str("$db", "shop")), kT0);
  Bson errs;
  errs.doc("0", Bson().i32("index", 0).i32("code", 11000).str("errmsg", "E11000 duplicate key error"))
      .doc("1", Bson().i32("index", 1).i32("code", 11000).str("errmsg", "E11000 second"));
  h.s2c(op_msg(91, 20, Bson().i32("n", 0).doc("writeErrors", errs, true).dbl("ok", 1)), kT0 + kMs);
  ASSERT_EQ(h.size(), 1u);
  json r = h.rec(0);
  EXPECT_EQ(r["status"], "error");
  EXPECT_EQ(r["response"]["ok"], 1);
  EXPECT_EQ(r["response"]["n"], 0);
  EXPECT_EQ(r["response"]["write_errors"], 2);
  EXPECT_EQ(r["response"]["error_code"], 11000);
  EXPECT_EQ(r["response"]["error_message"], "E11000 duplicate key error");
  EXPECT_EQ(h.counters().of(Protocol::kMongodb, RecordStatus::kError), 1u);
  // an empty writeErrors array is no error
  h.c2s(op_msg(21, 0, Bson().str("insert", "users").str("$db", "shop")), kT0 + 2 * kMs);
  h.s2c(op_msg(92, 21, Bson().i32("n", 1).doc("writeErrors", Bson(), true).dbl("ok", 1)), kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h.rec(1)["status"], "ok");
  EXPECT_FALSE(h.rec(1)["response"].contains("error_code"));
  h.expect_ledger();
}

// Counts and codes are integers: an int64 kept exactly, a double cut toward zero, a double no int64
// holds (found by the fuzzer: 6e175, NaN) left out instead of converted (undefined behaviour).
TEST(Mongo, IntegerFieldsFromAnyBsonNumber) {
  Harness h;
  h.open(27017);
  const struct {
    Bson reply;
    bool has_n;
    int64_t n;
  } cases[] = {
      {Bson().i64("n", 9007199254740993).dbl("ok", 1), true, 9007199254740993},
      {Bson().dbl("n", 3.9).dbl("ok", 1), true, 3},
      {Bson().dbl("n", -2.5).dbl("ok", 1), true, -2},
      {Bson().dbl("n", 6e175).dbl("ok", 1), false, 0},
      {Bson().dbl("n", 9223372036854775808.0).dbl("ok", 1), false, 0},
      {Bson().dbl("n", std::nan("")).dbl("ok", 1), false, 0},
  };
  uint32_t id = 40;
  uint64_t t = kT0;
  for (const auto& c : cases) {
    h.c2s(op_msg(id, 0, Bson().str("count", "users").str("$db", "shop")), t);
    h.s2c(op_msg(id + 1000, id, c.reply), t + kMs);
    ++id;
    t += 2 * kMs;
  }
  ASSERT_EQ(h.size(), std::size(cases));
  for (size_t i = 0; i < std::size(cases); ++i) {
    json r = h.rec(i);
    EXPECT_EQ(r["status"], "ok") << i;
    EXPECT_EQ(r["response"].contains("n"), cases[i].has_n) << i;
    if (cases[i].has_n) EXPECT_EQ(r["response"]["n"].get<int64_t>(), cases[i].n) << i;
  }
  h.c2s(op_msg(60, 0, Bson().str("insert", "users").str("$db", "shop")), t);
  h.s2c(op_msg(61, 60, Bson().dbl("code", -1e300).dbl("ok", 0)), t + kMs);
  ASSERT_EQ(h.size(), std::size(cases) + 1);
  EXPECT_EQ(h.rec(std::size(cases))["status"], "error");
  EXPECT_FALSE(h.rec(std::size(cases))["response"].contains("error_code"));
  h.expect_ledger();
}

// The flow ends inside a request: what arrived is the request, a timeout flagged truncated; a reply cut
// short pairs with its request, flagged truncated; bytes inside a header are only counted.
TEST(Mongo, MessagesCutByTheCloseAreRecorded) {
  Harness h;
  h.open(27017);
  h.c2s(op_msg(30, 0, Bson().str("find", "users").str("$db", "shop")), kT0);
  const std::string reply = op_msg(93, 30, Bson().dbl("ok", 1).str("note", std::string(200, 'x')));
  h.s2c(reply.substr(0, 40), kT0 + kMs);  // reply cut
  const std::string req = op_msg(31, 0, Bson().str("count", "orders").str("$db", "shop"));
  h.c2s(req.substr(0, 40), kT0 + 2 * kMs);  // request cut after its command name
  h.close(kT0 + 3 * kMs);
  ASSERT_EQ(h.size(), 2u);
  json a = h.rec(0);
  EXPECT_EQ(a["request"]["command"], "find");
  EXPECT_EQ(a["status"], "ok");
  EXPECT_EQ(a["response"]["bytes"], 40);
  EXPECT_EQ(a["response"]["ok"], 1);
  EXPECT_EQ(dectest::flags_of(a), std::vector<std::string>{"truncated"});
  json b = h.rec(1);
  EXPECT_EQ(b["status"], "timeout");
  EXPECT_EQ(b["request"]["request_id"], 31);
  EXPECT_EQ(b["request"]["command"], "count");
  EXPECT_EQ(b["request"]["bytes"], 40);
  EXPECT_EQ(dectest::flags_of(b), std::vector<std::string>{"truncated"});
  EXPECT_EQ(h.counters().timeouts[static_cast<size_t>(TimeoutCause::kClose)], 1u);
  EXPECT_EQ(h.counters().partial_at_close, 0u);
  h.expect_ledger();

  h.open(27017, false, kT0, 1);
  h.c2s(req.substr(0, 10), kT0, 1);  // inside the 16-byte header
  h.close(kT0 + kMs, 1);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h.counters().partial_at_close, 1u);
  h.expect_ledger();
}


}  // namespace
}  // namespace spanfeed
