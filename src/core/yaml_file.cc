// YAML file loading shared by the config and rules loaders (duplicate keys
// are an error, not "last one wins"). Control core; allocates.
#include "core/yaml_file.h"

#include <map>

#include "spanfeed/config.h"

namespace spanfeed {

void reject_duplicate_keys(const std::string& path, const YAML::Node& node,
                           const std::string& prefix) {
  if (node.IsSequence()) {
    size_t i = 0;
    for (const auto& item : node) {
      reject_duplicate_keys(path, item, prefix + "[" + std::to_string(i++) + "]");
    }
    return;
  }
  if (!node.IsMap()) return;
  std::map<std::string, int> seen;  // key -> 1-based line of its first occurrence
  for (const auto& kv : node) {
    // Keys are scalars in every file we read; a complex key is left to the loader.
    if (!kv.first.IsScalar()) continue;
    const std::string& k = kv.first.Scalar();
    const std::string full = prefix.empty() ? k : prefix + "." + k;
    const int line = kv.first.Mark().line + 1;
    auto [it, fresh] = seen.emplace(k, line);
    if (!fresh) {
      throw ConfigError(path + ":" + std::to_string(line) + ": '" + full +
                        "': key given twice (lines " + std::to_string(it->second) + " and " +
                        std::to_string(line) + "); keep one");
    }
    reject_duplicate_keys(path, kv.second, full);
  }
}

void yaml_fail(const std::string& file, const YAML::Node* node, const std::string& what) {
  std::string where = file;
  if (node != nullptr && node->Mark().line >= 0) where += ":" + std::to_string(node->Mark().line + 1);
  throw ConfigError(where + ": " + what);
}

void walk_yaml_map(const std::string& file, const std::string& prefix, const YAML::Node& map,
                   const YamlHandlers& handlers, const YamlUnknownKey& unknown) {
  if (!map.IsMap()) yaml_fail(file, &map, "'" + (prefix.empty() ? "(top level)" : prefix) + "': expected a mapping");
  for (const auto& kv : map) {
    const std::string k = kv.first.as<std::string>();
    const std::string full = prefix.empty() ? k : prefix + "." + k;
    const auto it = handlers.find(k);
    if (it != handlers.end()) {
      it->second(full, kv.second);
      continue;
    }
    std::string known;
    for (const auto& h : handlers) known += (known.empty() ? "" : ", ") + h.first;
    if (unknown) unknown(k, kv.first, known);
    yaml_fail(file, &kv.first, "'" + full + "': unknown key (known here: " + known + ")");
  }
}

YAML::Node load_yaml_file(const std::string& path, const char* what) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError(path + ": cannot open " + what);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(path + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  reject_duplicate_keys(path, root);
  return root;
}

}  // namespace spanfeed
