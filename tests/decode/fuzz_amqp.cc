// libFuzzer target for the amqp decoder; also replayed by amqp_test (FuzzReplay.Amqp) without clang.
// Runs in the fuzzer thread; the RecordBuilder is allocated once and reused.
#include "fuzz_common.h"

int spanfeed_fuzz_amqp(const uint8_t* data, size_t size) { return spanfeed::fuzz::run_script(5672, data, size); }

#ifdef SPANFEED_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return spanfeed_fuzz_amqp(data, size); }
#endif
