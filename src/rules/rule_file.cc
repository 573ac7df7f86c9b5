// Rules files: YAML loading and checks (every error names the file, the line and the rule).
// Control core only (start-up and SIGHUP reload); allocates.
#include "rules/rule_file.h"

#include <yaml-cpp/yaml.h>

#include <set>
#include <string_view>

#include "spanfeed/config.h"
#include "spanfeed/protocol.h"
#include "core/yaml_file.h"

namespace spanfeed {

namespace {

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
  if (!root.IsMap()) yaml_fail(path, &root, "expected a mapping with a 'rules' list");
  walk_yaml_map(path, "", root, {{"rules", [](const std::string&, const YAML::Node&) {}}},
                [&](const std::string& k, const YAML::Node& key, const std::string& known) {
                  yaml_fail(path, &key, "unknown key '" + k + "' (known: " + known + ")");
                });
  const YAML::Node list = root["rules"];
  if (!list || list.IsNull()) return out;
  if (!list.IsSequence()) yaml_fail(path, &list, "'rules' must be a list");
  std::set<std::string> ids;
  size_t index = 0;
  for (const auto& n : list) {
    ++index;
    if (!n.IsMap()) yaml_fail(path, &n, "rule #" + std::to_string(index) + ": expected a mapping");
    RuleSpec r;
    std::string name = "rule #" + std::to_string(index);
    if (n["id"]) {
      r.id = yaml_scalar<std::string>(path, n["id"], name + ": 'id'");
      name = "rule '" + r.id + "'";
    }
    if (!valid_id(r.id)) yaml_fail(path, &n, name + ": 'id' must be 1-128 characters of [A-Za-z0-9_.:-]");
    if (!ids.insert(r.id).second) yaml_fail(path, &n, name + ": duplicate id");
    bool has_pattern = false;
    auto what = [&name](const std::string& k) { return name + ": '" + k + "'"; };
    walk_yaml_map(path, "", n, {
      {"id", [](const std::string&, const YAML::Node&) {}},
      {"pattern", [&](const std::string& k, const YAML::Node& v) {
         r.pattern = yaml_scalar<std::string>(path, v, what(k));
         has_pattern = true;
       }},
      {"flags", [&](const std::string& k, const YAML::Node& v) {
         r.flags = yaml_scalar<std::string>(path, v, what(k));
         for (char c : r.flags) {
           if (std::string_view("ismu").find(c) == std::string_view::npos)
             yaml_fail(path, &v, what(k) + ": unknown flag '" + std::string(1, c) +
                                      "' (known: i caseless, s dot-all, m multi-line, u UTF-8)");
         }
       }},
      {"side", [&](const std::string& k, const YAML::Node& v) {
         const std::string s = yaml_scalar<std::string>(path, v, what(k));
         if (s == "request") r.side = RuleSide::kRequest;
         else if (s == "response") r.side = RuleSide::kResponse;
         else if (s == "both") r.side = RuleSide::kBoth;
         else yaml_fail(path, &v, what(k) + ": must be request, response or both");
       }},
      {"scope", [&](const std::string& k, const YAML::Node& v) {
         const std::string s = yaml_scalar<std::string>(path, v, what(k));
         if (s == "message") r.scope = RuleScope::kMessage;
         else if (s == "headers") r.scope = RuleScope::kHeaders;
         else yaml_fail(path, &v, what(k) + ": must be message or headers");
       }},
      {"protocols", [&](const std::string& k, const YAML::Node& v) {
         if (!v.IsSequence()) yaml_fail(path, &v, what(k) + ": expected a list of protocol names");
         r.protocols = 0;
         for (const auto& p : v) {
           const std::string s = yaml_scalar<std::string>(path, p, what(k));
           Protocol pr;
           if (s == "any") {
             r.protocols = kAllProtocols;
           } else if (protocol_from_string(s, &pr)) {
             r.protocols |= protocol_bit(pr);
           } else {
             yaml_fail(path, &p, what(k) + ": unknown protocol '" + s +
                                      "' (known: " + protocol_names() + ", unknown, any)");
           }
         }
         if (r.protocols == 0) yaml_fail(path, &v, what(k) + ": empty list (leave it out for every protocol)");
       }},
      {"tag", [&](const std::string& k, const YAML::Node& v) {
         r.tag = yaml_scalar<std::string>(path, v, what(k));
         if (r.tag.empty()) yaml_fail(path, &v, what(k) + ": empty tag");
       }},
      {"redact", [&](const std::string& k, const YAML::Node& v) {
         if (!v.IsScalar()) yaml_fail(path, &v, what(k) + ": expected true or false");
         try {
           r.redact = v.as<bool>();
         } catch (const YAML::Exception&) {
           yaml_fail(path, &v, what(k) + ": expected true or false");
         }
       }},
    }, [&](const std::string& k, const YAML::Node& key, const std::string& /*known*/) {
      yaml_fail(path, &key,
                 name + ": unknown key '" + k + "' (known: id, pattern, flags, side, protocols, scope, tag, redact)");
    });
    if (!has_pattern || r.pattern.empty()) yaml_fail(path, &n, name + ": 'pattern' is missing or empty");
    if (r.tag.empty()) r.tag = r.id;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace spanfeed
