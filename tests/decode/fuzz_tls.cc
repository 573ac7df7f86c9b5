// libFuzzer target for the TLS decoder (scripts/fuzz-decoders.sh); also replayed by fuzz_replay_test without clang.
// Runs in the fuzzer thread; the RecordBuilder is allocated once and reused.
#include "fuzz_common.h"

int spanfeed_fuzz_tls(const uint8_t* data, size_t size) { return spanfeed::fuzz::run_script(443, data, size); }

#ifdef SPANFEED_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return spanfeed_fuzz_tls(data, size); }
#endif
