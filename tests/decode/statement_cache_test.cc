// Unit tests for db::StatementCache (the MySQL / PostgreSQL prepared-statement table): lookup per flow
// generation, text cut, replacement, forget, oldest-first eviction within a set. Test thread; allocates freely.
#include <gtest/gtest.h>

#include <string>

#include "../../src/decode/statement_cache.h"

namespace spanfeed::db {
namespace {

TEST(StatementCache, FindsByGenerationAndKey) {
  StatementCache c(1024);
  EXPECT_FALSE(c.find(1, 7).has_value());
  c.remember(1, 7, "select ?");
  ASSERT_TRUE(c.find(1, 7).has_value());
  EXPECT_EQ(*c.find(1, 7), "select ?");
  EXPECT_FALSE(c.find(2, 7).has_value());  // another flow: same id, other statement
  EXPECT_FALSE(c.find(1, 8).has_value());
  c.remember(1, 9, "");
  ASSERT_TRUE(c.find(1, 9).has_value());  // remembered with no text: found, empty
  EXPECT_EQ(c.find(1, 9)->size(), 0u);
}

TEST(StatementCache, CutsReplacesAndForgets) {
  StatementCache c(1024);
  const std::string long_text(StatementCache::kText + 50, 'x');
  c.remember(3, 1, long_text);
  EXPECT_EQ(c.find(3, 1)->size(), StatementCache::kText);
  c.remember(3, 1, "update t set a = ?");
  EXPECT_EQ(*c.find(3, 1), "update t set a = ?");
  c.forget(3, 1);
  EXPECT_FALSE(c.find(3, 1).has_value());
  c.forget(3, 1);  // twice: nothing
  EXPECT_FALSE(c.find(3, 1).has_value());
}

TEST(StatementCache, OneSetEvictsOldestAndReusesFreedWays) {
  StatementCache c(StatementCache::kWays);  // a single set: every key competes
  constexpr const char* kTexts[] = {"q1", "q2", "q3", "q4"};
  for (uint32_t k = 1; k <= 4; ++k) c.remember(5, k, kTexts[k - 1]);
  c.remember(5, 1, "q1 again");  // refreshed: now the newest
  c.remember(5, 5, "q5");        // the oldest (2) goes
  EXPECT_FALSE(c.find(5, 2).has_value());
  EXPECT_EQ(*c.find(5, 1), "q1 again");
  EXPECT_EQ(*c.find(5, 3), "q3");
  EXPECT_EQ(*c.find(5, 4), "q4");
  EXPECT_EQ(*c.find(5, 5), "q5");
  c.forget(5, 4);
  c.remember(5, 6, "q6");  // takes the freed way: nothing else evicted
  EXPECT_TRUE(c.find(5, 1).has_value());
  EXPECT_TRUE(c.find(5, 3).has_value());
  EXPECT_TRUE(c.find(5, 5).has_value());
  EXPECT_EQ(*c.find(5, 6), "q6");
}

}  // namespace
}  // namespace spanfeed::db
