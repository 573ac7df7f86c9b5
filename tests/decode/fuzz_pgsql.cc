// libFuzzer target for the pgsql decoder; also replayed by pgsql_test (FuzzReplay.Pgsql) without clang.
// Runs in the fuzzer thread; the RecordBuilder is allocated once and reused.
#include "fuzz_common.h"

int spanfeed_fuzz_pgsql(const uint8_t* data, size_t size) { return spanfeed::fuzz::run_script(5432, data, size); }

#ifdef SPANFEED_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return spanfeed_fuzz_pgsql(data, size); }
#endif
