// Signal handlers and the flags they leave for the control core.
// Handlers: async-signal-safe, no allocation.
#include "app/signals.h"

#include <csignal>

#include <atomic>

#include "dpdk/engine.h"

namespace spanfeed::app {
namespace {

std::atomic<unsigned> g_signals{0};  // SIGINT/SIGTERM received so far
std::atomic<bool> g_reload{false};   // SIGHUP: reload the rules

void on_signal(int) {
  request_stop();
  g_signals.fetch_add(1);
}

void on_hangup(int) { g_reload.store(true); }

}  // namespace

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction hup {};
  hup.sa_handler = on_hangup;
  sigemptyset(&hup.sa_mask);
  hup.sa_flags = SA_RESTART;
  sigaction(SIGHUP, &hup, nullptr);
}

unsigned stop_signals() { return g_signals.load(); }

bool take_reload_request() { return g_reload.exchange(false); }

}  // namespace spanfeed::app
