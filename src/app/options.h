// Command line: options bound with CLI11, laid over the config file, and
// checked. Control core, start-up; allocates.
#pragma once

#include <string>

#include "spanfeed/config.h"

namespace spanfeed::app {

// Exit codes (README "Exit codes", docs/troubleshooting.md).
inline constexpr int kExitRuntime = 1;      // start-up failed (EAL, ports, memory)
inline constexpr int kExitUsage = 2;        // bad arguments or configuration
inline constexpr int kExitDamagedFile = 3;  // the capture file has unreadable records: read up to them
inline constexpr int kExitUndelivered = 4;  // offline: some packet or record was not delivered

struct CommandLine {
  Config cfg;
  std::string check_config;  // --check-config FILE: validate, do not capture
};

// Parses argv, loads the config file and lays the options over it. Returns
// -1 to go on with `out` filled, or the exit code (0 after --help or
// --version, kExitUsage on a bad option or config, with the message printed).
int parse_command_line(int argc, char** argv, CommandLine& out);

}  // namespace spanfeed::app
