// StatementCache: the prepared-statement table of the database decoders (see statement_cache.h).
// Runs on a worker lcore; allocates only in the constructor.
#include "statement_cache.h"

#include <algorithm>
#include <cstring>

namespace spanfeed::db {

StatementCache::StatementCache(size_t entries) : entries_(entries) {}

size_t StatementCache::set_of(uint32_t gen, uint32_t key) const {
  const uint32_t h = (gen * 0x9E3779B1u) ^ (key * 0x85EBCA6Bu);
  return (h % (entries_.size() / kWays)) * kWays;
}

std::optional<std::string_view> StatementCache::find(uint32_t gen, uint32_t key) const {
  const Entry* s = &entries_[set_of(gen, key)];
  for (size_t w = 0; w < kWays; ++w) {
    if (s[w].used != 0 && s[w].gen == gen && s[w].key == key) return std::string_view(s[w].text, s[w].len);
  }
  return std::nullopt;
}

void StatementCache::remember(uint32_t gen, uint32_t key, std::string_view text) {
  Entry* s = &entries_[set_of(gen, key)];
  Entry* v = &s[0];
  for (size_t w = 0; w < kWays; ++w) {
    if (s[w].used != 0 && s[w].gen == gen && s[w].key == key) {
      v = &s[w];
      break;
    }
    if (s[w].used == 0) v = &s[w];
    else if (v->used != 0 && s[w].used < v->used) v = &s[w];  // oldest stamp goes
  }
  v->gen = gen;
  v->key = key;
  v->len = static_cast<uint16_t>(std::min(text.size(), kText));
  if (v->len > 0) std::memcpy(v->text, text.data(), v->len);
  v->used = ++stamp_ == 0 ? ++stamp_ : stamp_;
}

void StatementCache::forget(uint32_t gen, uint32_t key) {
  Entry* s = &entries_[set_of(gen, key)];
  for (size_t w = 0; w < kWays; ++w) {
    if (s[w].used != 0 && s[w].gen == gen && s[w].key == key) s[w].used = 0;
  }
}

}  // namespace spanfeed::db
