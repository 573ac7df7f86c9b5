// decode.ports and decode.<protocol> config keys, checked against the protocol registry.
// Control core at start-up; allocates, throws ConfigError.
#include "decode_config.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "spanfeed/protocol.h"
#include "core/yaml_file.h"

namespace spanfeed {

RegistryKeys decode_config_keys(Config& cfg, const std::string& file) {
  auto fail = [file](const std::string& key, const std::string& what, const YAML::Node& n) {
    yaml_fail(file, &n, "'" + key + "': " + what);
  };
  ConfigKeys keys;
  auto protocol_name = [fail](const std::string& k, const YAML::Node& v) {
    if (protocol_descriptor(v.as<std::string>()) == nullptr) {
      fail(k, "unknown protocol (known: " + protocol_names() + ")", v);
    }
  };
  keys["ports"] = [&cfg, file, fail, protocol_name](const std::string& k, const YAML::Node& v) {
    if (!v.IsMap()) fail(k, "expected protocol: [ports] entries", v);
    for (const auto& kv : v) {
      std::string proto = kv.first.as<std::string>();
      std::string key = k + "." + proto;
      protocol_name(key, kv.first);
      if (!kv.second.IsSequence()) fail(key, "expected a list of ports", kv.second);
      std::vector<uint16_t> ports;
      for (const auto& pn : kv.second) {
        const auto port = yaml_scalar<int64_t>(file, pn, "'" + key + "'");
        if (port < 1 || port > 65535) fail(key, "ports are 1-65535", pn);
        ports.push_back(static_cast<uint16_t>(port));
      }
      cfg.decode_ports.emplace_back(proto, std::move(ports));
    }
  };
  // decode.<protocol>: that protocol's own options, from its descriptor.
  for (const ProtocolDescriptor* d : protocol_registry()) {
    if (d->options.empty()) continue;
    keys[std::string(d->name)] = [&cfg, file, fail, d](const std::string& pk, const YAML::Node& pn) {
      if (!pn.IsMap()) fail(pk, "expected a mapping of " + std::string(d->name) + " options", pn);
      for (const auto& kv : pn) {
        const std::string name = kv.first.as<std::string>();
        const std::string key = pk + "." + name;
        const auto v = yaml_scalar<int64_t>(file, kv.second, "'" + key + "'");
        const std::string err = v < 0 ? "must be >= 0" : check_protocol_option(d->id, name, static_cast<uint64_t>(v));
        if (!err.empty()) fail(key, err, kv.first);
        cfg.decode_options.push_back({std::string(d->name), name, static_cast<uint64_t>(v)});
      }
    };
  }
  return RegistryKeys{std::move(keys), protocol_name};
}

}  // namespace spanfeed
