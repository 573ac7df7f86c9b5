// libFuzzer target for the kafka decoder; also replayed by kafka_test (FuzzReplay.Kafka) without clang.
// Runs in the fuzzer thread; the RecordBuilder is allocated once and reused.
#include "fuzz_common.h"

int spanfeed_fuzz_kafka(const uint8_t* data, size_t size) { return spanfeed::fuzz::run_script(9092, data, size); }

#ifdef SPANFEED_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return spanfeed_fuzz_kafka(data, size); }
#endif
