// Loading a YAML file for the config and rules loaders: syntax errors and
// keys given twice become ConfigError with file and line. Control core, at
// start-up and on SIGHUP reloads; allocates.
#pragma once

#include <yaml-cpp/yaml.h>

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

}  // namespace spanfeed
