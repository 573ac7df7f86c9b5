// libFuzzer target for the mqtt decoder; also replayed by mqtt_test (FuzzReplay.Mqtt) without clang.
// Runs in the fuzzer thread; the RecordBuilder is allocated once and reused.
#include "fuzz_common.h"

int spanfeed_fuzz_mqtt(const uint8_t* data, size_t size) { return spanfeed::fuzz::run_script(1883, data, size); }

#ifdef SPANFEED_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return spanfeed_fuzz_mqtt(data, size); }
#endif
