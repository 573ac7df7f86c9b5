// Rules files: YAML loading and checks (every error names the file, the line and the rule).
// Control core only (start-up and SIGHUP reload); allocates.
#include "rules/rule_file.h"

#include <yaml-cpp/yaml.h>

#include <set>
#include <string_view>

#include "spanfeed/config.h"
#include "spanfeed/protocol.h"
#include "spanfeed/yaml_file.h"

namespace spanfeed {

namespace {

[[noreturn]] void rules_fail(const std::string& file, const YAML::Node* node, const std::string& what) {
  std::string where = file;
  if (node != nullptr && node->Mark().line >= 0) where += ":" + std::to_string(node->Mark().line + 1);
  throw ConfigError(where + ": " + what);
}

std::string scalar_string(const std::string& file, const YAML::Node& n, const std::string& what) {
  if (!n.IsScalar()) rules_fail(file, &n, what + ": expected a single value");
  return n.Scalar();
}

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::vector<RuleSpec> load_rules_file(const std::string& path) {
  YAML::Node root = load_yaml_file(path, "rules file");
  std::vector<RuleSpec> out;
  if (root.IsNull()) return out;  // an empty file: no rules
  if (!root.IsMap()) rules_fail(path, &root, "expected a mapping with a 'rules' list");
  for (const auto& kv : root) {
    const std::string k = kv.first.as<std::string>();
    if (k != "rules") rules_fail(path, &kv.first, "unknown key '" + k + "' (known: rules)");
  }
  const YAML::Node list = root["rules"];
  if (!list || list.IsNull()) return out;
  if (!list.IsSequence()) rules_fail(path, &list, "'rules' must be a list");
  std::set<std::string> ids;
  size_t index = 0;
  for (const auto& n : list) {
    ++index;
    if (!n.IsMap()) rules_fail(path, &n, "rule #" + std::to_string(index) + ": expected a mapping");
    RuleSpec r;
    std::string name = "rule #" + std::to_string(index);
    if (n["id"]) {
      r.id = scalar_string(path, n["id"], name + ": 'id'");
      name = "rule '" + r.id + "'";
    }
    if (!valid_id(r.id)) rules_fail(path, &n, name + ": 'id' must be 1-128 characters of [A-Za-z0-9_.:-]");
    if (!ids.insert(r.id).second) rules_fail(path, &n, name + ": duplicate id");
    bool has_pattern = false;
    for (const auto& kv : n) {
      const std::string k = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      const std::string what = name + ": '" + k + "'";
      if (k == "id") continue;
      if (k == "pattern") {
        r.pattern = scalar_string(path, v, what);
        has_pattern = true;
      } else if (k == "flags") {
        r.flags = scalar_string(path, v, what);
        for (char c : r.flags) {
          if (std::string_view("ismu").find(c) == std::string_view::npos)
            rules_fail(path, &v, what + ": unknown flag '" + std::string(1, c) +
                                     "' (known: i caseless, s dot-all, m multi-line, u UTF-8)");
        }
      } else if (k == "side") {
        const std::string s = scalar_string(path, v, what);
        if (s == "request") r.side = RuleSide::kRequest;
        else if (s == "response") r.side = RuleSide::kResponse;
        else if (s == "both") r.side = RuleSide::kBoth;
        else rules_fail(path, &v, what + ": must be request, response or both");
      } else if (k == "scope") {
        const std::string s = scalar_string(path, v, what);
        if (s == "message") r.scope = RuleScope::kMessage;
        else if (s == "headers") r.scope = RuleScope::kHeaders;
        else rules_fail(path, &v, what + ": must be message or headers");
      } else if (k == "protocols") {
        if (!v.IsSequence()) rules_fail(path, &v, what + ": expected a list of protocol names");
        r.protocols = 0;
        for (const auto& p : v) {
          const std::string s = scalar_string(path, p, what);
          Protocol pr;
          if (s == "any") {
            r.protocols = kAllProtocols;
          } else if (protocol_from_string(s, &pr)) {
            r.protocols |= protocol_bit(pr);
          } else {
            rules_fail(path, &p, what + ": unknown protocol '" + s +
                                     "' (known: " + protocol_names() + ", unknown, any)");
          }
        }
        if (r.protocols == 0) rules_fail(path, &v, what + ": empty list (leave it out for every protocol)");
      } else if (k == "tag") {
        r.tag = scalar_string(path, v, what);
        if (r.tag.empty()) rules_fail(path, &v, what + ": empty tag");
      } else if (k == "redact") {
        if (!v.IsScalar()) rules_fail(path, &v, what + ": expected true or false");
        try {
          r.redact = v.as<bool>();
        } catch (const YAML::Exception&) {
          rules_fail(path, &v, what + ": expected true or false");
        }
      } else {
        rules_fail(path, &kv.first,
                   name + ": unknown key '" + k + "' (known: id, pattern, flags, side, protocols, scope, tag, redact)");
      }
    }
    if (!has_pattern || r.pattern.empty()) rules_fail(path, &n, name + ": 'pattern' is missing or empty");
    if (r.tag.empty()) r.tag = r.id;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace spanfeed
