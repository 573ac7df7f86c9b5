// Micro-benchmark: the start-up cost of the protocol-signature database, compiled by Hyperscan
// versus loaded from the cache directory (decode/detect/hs_cache.h). Single thread; allocates.
#include <benchmark/benchmark.h>
#include <hs.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "decode/detect/hs_cache.h"
#include "spanfeed/protocol.h"

namespace {

struct Patterns {
  std::vector<const char*> exprs;
  std::vector<unsigned> flags, ids;
};

const Patterns& signatures() {
  static const Patterns p = [] {
    Patterns out;
    for (const spanfeed::ProtocolDescriptor* d : spanfeed::protocol_registry()) {
      for (const spanfeed::ProtocolSignature& s : d->signatures) {
        out.ids.push_back(static_cast<unsigned>(out.exprs.size()));
        out.exprs.push_back(s.pattern);
        out.flags.push_back(HS_FLAG_DOTALL | HS_FLAG_SINGLEMATCH);
      }
    }
    return out;
  }();
  return p;
}

void compile_once(benchmark::State& state) {
  const Patterns& p = signatures();
  for (auto _ : state) {
    hs_database_t* db = nullptr;
    hs_compile_error_t* err = nullptr;
    if (spanfeed::hs_compile_multi_cached(p.exprs.data(), p.flags.data(), p.ids.data(),
                                          static_cast<unsigned>(p.exprs.size()), HS_MODE_BLOCK, &db,
                                          &err) != HS_SUCCESS) {
      hs_free_compile_error(err);
      state.SkipWithError("signatures do not compile");
      return;
    }
    hs_free_database(db);
  }
  state.counters["signatures"] = static_cast<double>(p.exprs.size());
}

// No cache directory: every start-up compiles.
void BM_SignatureDatabase_Compile(benchmark::State& state) {
  spanfeed::set_hs_cache_dir("");
  compile_once(state);
}
BENCHMARK(BM_SignatureDatabase_Compile)->Unit(benchmark::kMillisecond);

// A warm cache: read the file, check the key, hs_deserialize_database.
void BM_SignatureDatabase_LoadFromCache(benchmark::State& state) {
  char dir[] = "/tmp/spanfeed-bench-cache-XXXXXX";
  if (mkdtemp(dir) == nullptr) {
    state.SkipWithError("mkdtemp");
    return;
  }
  spanfeed::set_hs_cache_dir(dir);
  {  // the first run of a machine: compile and store
    const Patterns& p = signatures();
    hs_database_t* db = nullptr;
    hs_compile_error_t* err = nullptr;
    if (spanfeed::hs_compile_multi_cached(p.exprs.data(), p.flags.data(), p.ids.data(),
                                          static_cast<unsigned>(p.exprs.size()), HS_MODE_BLOCK, &db,
                                          &err) == HS_SUCCESS) {
      hs_free_database(db);
    }
  }
  compile_once(state);
  spanfeed::set_hs_cache_dir("");
  if (std::system((std::string("rm -rf ") + dir).c_str()) != 0) state.SkipWithError("rm -rf");
}
BENCHMARK(BM_SignatureDatabase_LoadFromCache)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
