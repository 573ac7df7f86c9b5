// libFuzzer target for the mysql decoder; also replayed by mysql_test (FuzzReplay.Mysql) without clang.
// Runs in the fuzzer thread; the RecordBuilder is allocated once and reused.
#include "fuzz_common.h"

int spanfeed_fuzz_mysql(const uint8_t* data, size_t size) { return spanfeed::fuzz::run_script(3306, data, size); }

#ifdef SPANFEED_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return spanfeed_fuzz_mysql(data, size); }
#endif
