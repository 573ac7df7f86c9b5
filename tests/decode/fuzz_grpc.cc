// libFuzzer target for the gRPC (HTTP/2 on port 50051) decoder (scripts/fuzz-decoders.sh); also replayed by fuzz_replay_test without clang.
// Runs in the fuzzer thread; the RecordBuilder is allocated once and reused.
#include "fuzz_common.h"

int spanfeed_fuzz_grpc(const uint8_t* data, size_t size) { return spanfeed::fuzz::run_script(50051, data, size); }

#ifdef SPANFEED_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return spanfeed_fuzz_grpc(data, size); }
#endif
