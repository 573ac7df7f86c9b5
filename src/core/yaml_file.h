// Reading YAML files for the config and rules loaders (and the decode section's registry keys): loading
// (syntax errors and keys given twice become ConfigError with file and line), scalars, and the mapping walker
// that rejects unknown keys. Control core, at start-up and on SIGHUP reloads; allocates.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <string>

namespace spanfeed {

// Loads `path` (`what` names it in messages: "config file", "rules file").
// Throws ConfigError when the file cannot be opened, is not valid YAML, or a
// mapping anywhere in it has the same key twice (naming the key and both lines).
YAML::Node load_yaml_file(const std::string& path, const char* what);

// Throws ConfigError naming the first key that appears twice in a mapping
// of `node`, at any depth.
void reject_duplicate_keys(const std::string& path, const YAML::Node& node,
                           const std::string& prefix = "");

// Throws ConfigError "FILE:LINE: what", LINE where `node` starts (left out when unknown or no node).
[[noreturn]] void yaml_fail(const std::string& file, const YAML::Node* node, const std::string& what);

// `n` as a T. `what` names it in the message ("'capture.pcap'", "rule 'x': 'tag'"): "WHAT: expected a single
// value" for a mapping or a list, "WHAT: cannot read 'V' as the expected type" when it does not convert.
template <typename T>
T yaml_scalar(const std::string& file, const YAML::Node& n, const std::string& what) {
  if (!n.IsScalar()) yaml_fail(file, &n, what + ": expected a single value");
  try {
    return n.as<T>();
  } catch (const YAML::Exception&) {
    yaml_fail(file, &n, what + ": cannot read '" + n.Scalar() + "' as the expected type");
  }
}

// A mapping's keys: each one's handler gets its path (PREFIX.KEY) and its value.
using YamlHandler = std::function<void(const std::string& key, const YAML::Node& value)>;
using YamlHandlers = std::map<std::string, YamlHandler>;
// A key with no handler: `unknown` gets the key's name, its node and the known keys ("a, b, c") and throws;
// without one the message is "'PREFIX.KEY': unknown key (known here: ...)". Not a mapping: "'PREFIX': expected
// a mapping".
using YamlUnknownKey = std::function<void(const std::string& key, const YAML::Node& node, const std::string& known)>;
void walk_yaml_map(const std::string& file, const std::string& prefix, const YAML::Node& map,
                   const YamlHandlers& handlers, const YamlUnknownKey& unknown = {});

}  // namespace spanfeed
