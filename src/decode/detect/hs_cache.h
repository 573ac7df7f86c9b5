// Hyperscan databases compiled once per machine: a compiled database is kept, serialized, in a
// cache directory and loaded by later runs. Control core and the start-up compile thread; allocates.
#pragma once

#include <string>
#include <vector>

struct hs_database;
struct hs_compile_error;

namespace spanfeed {

// The directory the compiled databases are kept in: "" keeps none (the default until set;
// unit tests and tools compile every time). Set once, before the first compile.
void set_hs_cache_dir(std::string dir);
std::string hs_cache_dir();
// The directory `setting` names: "off" -> "", "auto" -> $XDG_CACHE_HOME/spanfeed or
// $HOME/.cache/spanfeed ("" without either), anything else as given.
std::string resolve_hs_cache_dir(const std::string& setting);

// How the last database came to be (for the start-up log and the tests).
struct HsCacheStats {
  unsigned loaded = 0;    // found in the cache and deserialized
  unsigned compiled = 0;  // compiled (no cache, a miss, or an unusable entry)
  unsigned stored = 0;    // compiled and written to the cache
};
HsCacheStats hs_cache_stats();

// hs_compile_multi with the cache in front: the key is every expression, flag and id, the mode,
// the target platform and the Hyperscan version, compared in full on load (no hash collisions).
// Returns hs_compile_multi's result; `*err` is set only when it fails (a bad pattern is never
// cached). A cache that cannot be read or written is skipped: the database is compiled.
int hs_compile_multi_cached(const char* const* expressions, const unsigned* flags, const unsigned* ids,
                            unsigned elements, unsigned mode, hs_database** db, hs_compile_error** err);

}  // namespace spanfeed
