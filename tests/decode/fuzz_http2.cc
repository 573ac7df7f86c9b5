// libFuzzer target for the HTTP/2 (h2c) decoder (scripts/fuzz-decoders.sh); also replayed by fuzz_replay_test without clang.
// Runs in the fuzzer thread; the RecordBuilder is allocated once and reused.
#include "fuzz_common.h"

int spanfeed_fuzz_http2(const uint8_t* data, size_t size) { return spanfeed::fuzz::run_script(8081, data, size); }

#ifdef SPANFEED_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return spanfeed_fuzz_http2(data, size); }
#endif
