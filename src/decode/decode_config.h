// The config keys the protocol registry defines: decode.ports (protocol names), decode.<protocol> options and
// protocol names elsewhere (red.protocols),
// handed to load_config_file so core need not know the registry. Control core at start-up; allocates.
#pragma once

#include <string>

#include "spanfeed/config.h"

namespace spanfeed {

// Handlers for the `decode` section's registry keys of the config file `file`, writing into `cfg`
// (decode_ports, decode_options), and the protocol-name check for red.protocols. Unknown protocols and
// options fail naming the file, line and key.
RegistryKeys decode_config_keys(Config& cfg, const std::string& file);

}  // namespace spanfeed
