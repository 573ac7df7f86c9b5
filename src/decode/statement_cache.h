// Prepared-statement table shared by the database decoders (MySQL statement ids, PostgreSQL statement names):
// (flow generation, key) -> normalized SQL, set-associative, oldest entry of a set replaced.
// One per decoder per worker lcore; allocates only in the constructor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace spanfeed::db {

class StatementCache {
 public:
  static constexpr size_t kWays = 4;
  static constexpr size_t kText = 240;  // normalized SQL kept per statement

  // entries: statements remembered (all flows of the worker); a multiple of kWays.
  explicit StatementCache(size_t entries);

  // The text remembered for (gen, key), if any (possibly empty).
  std::optional<std::string_view> find(uint32_t gen, uint32_t key) const;
  // Remembers text (cut to kText) for (gen, key): replaces the same key, else a free way, else the oldest.
  void remember(uint32_t gen, uint32_t key, std::string_view text);
  void forget(uint32_t gen, uint32_t key);

 private:
  struct Entry {
    uint32_t gen = 0;
    uint32_t key = 0;
    uint16_t len = 0;
    uint16_t used = 0;  // age stamp; 0: free
    char text[kText] = {};
  };

  size_t set_of(uint32_t gen, uint32_t key) const;

  std::vector<Entry> entries_;
  uint16_t stamp_ = 0;
};

}  // namespace spanfeed::db
