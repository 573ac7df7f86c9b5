// ThreadSanitizer builds only (scripts/tsan.sh): meson adds this file to the executables that
// load librdkafka when b_sanitize=thread. librdkafka starts its threads with C11 thrd_create;
// glibc implements that without calling pthread_create, and GCC 12's TSan runtime intercepts
// only pthread_create. A thread TSan never saw start has no TSan state: its first malloc
// crashes inside the TSan allocator (SIGSEGV). Likewise a thread joined by glibc's thrd_join
// stays running for TSan ("thread leak", then "dup thread" when its id comes back). Defined in
// the executable, these are the ones librdkafka binds to; they go through pthread_create and
// pthread_join, which TSan intercepts. Same contract as glibc's: the start function's int is
// the thread's result, carried as the pthread one (as glibc's thrd_exit does).
#include <pthread.h>
#include <threads.h>

#include <cerrno>
#include <cstdint>
#include <new>

namespace {

struct Start {
  thrd_start_t fn;
  void* arg;
};

void* run(void* p) {
  const Start s = *static_cast<Start*>(p);
  delete static_cast<Start*>(p);
  return reinterpret_cast<void*>(static_cast<intptr_t>(s.fn(s.arg)));
}

}  // namespace

extern "C" int thrd_create(thrd_t* thr, thrd_start_t fn, void* arg) {
  auto* s = new (std::nothrow) Start{fn, arg};
  if (s == nullptr) return thrd_nomem;
  const int rc = pthread_create(thr, nullptr, run, s);
  if (rc == 0) return thrd_success;
  delete s;
  return rc == EAGAIN ? thrd_nomem : thrd_error;
}

extern "C" int thrd_join(thrd_t thr, int* res) {
  void* out = nullptr;
  if (pthread_join(thr, &out) != 0) return thrd_error;
  if (res != nullptr) *res = static_cast<int>(reinterpret_cast<intptr_t>(out));
  return thrd_success;
}
