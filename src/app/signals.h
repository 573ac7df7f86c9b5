// Signals: SIGINT/SIGTERM stop the capture (a second one stops waiting too),
// SIGHUP asks for a rules reload. Handlers are async-signal-safe; the control
// core polls what they recorded.
#pragma once

namespace spanfeed::app {

void install_signal_handlers();
// SIGINT/SIGTERM received so far.
unsigned stop_signals();
// True once per SIGHUP received since the last call.
bool take_reload_request();

}  // namespace spanfeed::app
