// libFuzzer target for the mongodb decoder; also replayed by mongodb_test (FuzzReplay.Mongodb) without clang.
// Runs in the fuzzer thread; the RecordBuilder is allocated once and reused.
#include "fuzz_common.h"

int spanfeed_fuzz_mongodb(const uint8_t* data, size_t size) { return spanfeed::fuzz::run_script(27017, data, size); }

#ifdef SPANFEED_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return spanfeed_fuzz_mongodb(data, size); }
#endif
