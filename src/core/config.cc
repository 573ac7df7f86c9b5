// YAML config loading and validation. Control core at start-up; allocates,
// throws ConfigError with the file and key path in the message.
#include "spanfeed/config.h"

#include <yaml-cpp/yaml.h>

#include "core/yaml_file.h"

#include <sched.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

namespace spanfeed {
namespace {

[[noreturn]] void fail(const std::string& file, const std::string& key, const std::string& what,
                       const YAML::Node* node = nullptr) {
  yaml_fail(file, node, "'" + key + "': " + what);
}

template <typename T>
T scalar(const std::string& file, const std::string& key, const YAML::Node& n) {
  return yaml_scalar<T>(file, n, "'" + key + "'");
}

uint32_t positive(const std::string& file, const std::string& key, const YAML::Node& n,
                  uint64_t max) {
  auto v = scalar<int64_t>(file, key, n);
  if (v <= 0 || static_cast<uint64_t>(v) > max) {
    fail(file, key, "must be between 1 and " + std::to_string(max), &n);
  }
  return static_cast<uint32_t>(v);
}

using Handler = YamlHandler;
void walk(const std::string& file, const std::string& prefix, const YAML::Node& map, const YamlHandlers& handlers) {
  walk_yaml_map(file, prefix, map, handlers);
}

// metrics.remote_write: each value checked here, so --check-config and the
// start both refuse a bad one (exit 2) before any packet is read.
void load_remote_write(const std::string& f, const std::string& p, const YAML::Node& n,
                       RemoteWriteConfig& rw, const std::function<std::string(const std::string&)>& beside) {
  auto seconds = [&](double& dst, double min, double max, const char* why) {
    return [&, min, max, why](const std::string& k, const YAML::Node& v) {
      dst = scalar<double>(f, k, v);
      if (!(dst >= min && dst <= max)) fail(f, k, why, &v);
    };
  };
  auto readable = [&](std::string& dst) {
    return [&](const std::string& k, const YAML::Node& v) {
      dst = beside(scalar<std::string>(f, k, v));
      if (!std::ifstream(dst).good()) fail(f, k, "cannot read '" + dst + "'", &v);
    };
  };
  walk(f, p, n, {
    {"url", [&](const std::string& k, const YAML::Node& v) {
       rw.url = scalar<std::string>(f, k, v);
       const auto scheme = rw.url.find("://");
       const std::string s = scheme == std::string::npos ? "" : rw.url.substr(0, scheme);
       if ((s != "http" && s != "https") || rw.url.size() <= scheme + 3 || rw.url[scheme + 3] == '/') {
         fail(f, k, "must be an http:// or https:// URL with a host (e.g. http://prometheus:9090/api/v1/write)", &v);
       }
       if (rw.url.find_first_of(" \t\r\n") != std::string::npos) fail(f, k, "must not contain spaces", &v);
     }},
    {"interval_s", seconds(rw.interval_s, 0.1, 86400, "must be a number of seconds between 0.1 and 86400")},
    {"timeout_s", seconds(rw.timeout_s, 0.1, 600, "must be a number of seconds between 0.1 and 600")},
    {"queue", [&](const std::string& k, const YAML::Node& v) { rw.queue = positive(f, k, v, 100000); }},
    {"basic_auth", [&](const std::string& bp, const YAML::Node& bn) {
       walk(f, bp, bn, {
         {"username", [&](const std::string& k, const YAML::Node& v) { rw.basic_auth_username = scalar<std::string>(f, k, v); }},
         {"password_file", readable(rw.basic_auth_password_file)},
       });
       if (rw.basic_auth_username.empty() || rw.basic_auth_password_file.empty()) {
         fail(f, bp, "needs both username and password_file", &bn);
       }
     }},
    {"bearer_token_file", readable(rw.bearer_token_file)},
    {"ca_file", readable(rw.ca_file)},
    {"labels", [&](const std::string& lp, const YAML::Node& ln) {
       if (!ln.IsMap()) fail(f, lp, "expected a mapping of label name: value", &ln);
       for (const auto& kv : ln) {
         const std::string name = kv.first.as<std::string>();
         const std::string key = lp + "." + name;
         bool ok = !name.empty() && !(name[0] >= '0' && name[0] <= '9') && name.rfind("__", 0) != 0;
         for (char c : name) {
           ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
         }
         if (!ok) fail(f, key, "a label name is [a-zA-Z_][a-zA-Z0-9_]* and does not start with __", &kv.first);
         rw.labels.emplace_back(name, scalar<std::string>(f, key, kv.second));
       }
     }},
  });
  if (!rw.basic_auth_password_file.empty() && !rw.bearer_token_file.empty()) {
    fail(f, p, "give basic_auth or bearer_token_file, not both", &n);
  }
  if (rw.url.empty()) fail(f, p + ".url", "is required to push (remove metrics.remote_write to turn it off)", &n);
}

}  // namespace

RunMode parse_run_mode(const std::string& s) {
  if (s == "auto") return RunMode::kAuto;
  if (s == "offline") return RunMode::kOffline;
  if (s == "live") return RunMode::kLive;
  throw ConfigError("mode must be auto, offline or live, not '" + s + "'");
}

JobKind parse_job(const std::string& s) {
  if (s == "payload-sum") return JobKind::kPayloadSum;
  if (s == "flows") return JobKind::kFlows;
  if (s == "records") return JobKind::kRecords;
  throw ConfigError("unknown job '" + s + "' (known: payload-sum, flows, records)");
}

const char* to_string(RunMode m) {
  switch (m) {
    case RunMode::kAuto: return "auto";
    case RunMode::kOffline: return "offline";
    case RunMode::kLive: return "live";
  }
  return "?";
}

const char* to_string(JobKind j) {
  switch (j) {
    case JobKind::kPayloadSum: return "payload-sum";
    case JobKind::kFlows: return "flows";
    case JobKind::kRecords: return "records";
  }
  return "?";
}

void load_config_file(const std::string& path, Config& cfg, const RegistryKeys& registry) {
  YAML::Node root = load_yaml_file(path, "config file");
  if (root.IsNull()) return;  // an empty file means all defaults
  const std::string& f = path;
  auto str = [&](std::string& dst) {
    return [&, f](const std::string& k, const YAML::Node& n) { dst = scalar<std::string>(f, k, n); };
  };
  // A relative path in the file names a file beside it (as Prometheus and
  // nginx read theirs), whatever directory spanfeed was started from.
  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  auto beside = [base](const std::string& p) {
    if (p.empty() || p == "-" || base.empty() || std::filesystem::path(p).is_absolute()) return p;
    return (base / p).string();
  };
  auto file_path = [&](std::string& dst) {
    return [&, f](const std::string& k, const YAML::Node& n) { dst = beside(scalar<std::string>(f, k, n)); };
  };
  auto u32 = [&](uint32_t& dst, uint64_t max) {
    return [&, f, max](const std::string& k, const YAML::Node& n) { dst = positive(f, k, n, max); };
  };
  auto boolean = [&](bool& dst) {
    return [&, f](const std::string& k, const YAML::Node& n) { dst = scalar<bool>(f, k, n); };
  };
  auto seconds = [&](double& dst) {
    return [&, f](const std::string& k, const YAML::Node& n) {
      dst = scalar<double>(f, k, n);
      if (!(dst > 0) || dst > 86400 * 7) fail(f, k, "must be a number of seconds > 0 (at most a week)", &n);
    };
  };
  walk(f, "", root, {
    {"capture", [&](const std::string& p, const YAML::Node& n) {
       walk(f, p, n, {
         {"pcap", file_path(cfg.pcap_file)},
         {"infinite", boolean(cfg.pcap_infinite)},
         {"reader", [&](const std::string& k, const YAML::Node& v) {
            std::string r = scalar<std::string>(f, k, v);
            if (r != "mmap" && r != "net_pcap") fail(f, k, "must be mmap or net_pcap", &v);
            cfg.pcap_pmd = r == "net_pcap";
          }},
         {"iface", str(cfg.iface)},
         {"filter", str(cfg.filter)},
         {"filter_on", [&](const std::string& k, const YAML::Node& v) {
            const std::string on = scalar<std::string>(f, k, v);
            if (on != "outer" && on != "inner") fail(f, k, "must be outer (the frame as captured) or inner (the packet after decapsulation)", &v);
            cfg.filter_inner = on == "inner";
          }},
         {"eal", str(cfg.eal_args)},
         {"mode", [&](const std::string& k, const YAML::Node& v) {
            try { cfg.mode = parse_run_mode(scalar<std::string>(f, k, v)); }
            catch (const ConfigError& e) { fail(f, k, e.what(), &v); }
          }},
         {"duration_s", [&](const std::string& k, const YAML::Node& v) {
            cfg.duration_s = scalar<double>(f, k, v);
            if (cfg.duration_s < 0) fail(f, k, "must be >= 0", &v);
          }},
       });
     }},
    {"lcores", [&](const std::string& p, const YAML::Node& n) {
       walk(f, p, n, {
         {"rx", u32(cfg.rx_lcores, 64)},
         {"workers", u32(cfg.workers, 256)},
         {"cpus", [&](const std::string& k, const YAML::Node& v) {
            if (!v.IsSequence()) fail(f, k, "expected a list of CPU numbers", &v);
            cfg.cpus.clear();
            for (const auto& c : v) {
              auto cpu = scalar<int>(f, k, c);
              if (cpu < 0) fail(f, k, "CPU numbers are >= 0", &c);
              cfg.cpus.push_back(cpu);
            }
          }},
       });
     }},
    {"rings", [&](const std::string& p, const YAML::Node& n) {
       walk(f, p, n, {
         {"size", u32(cfg.ring_size, 1u << 24)},
         {"burst", u32(cfg.burst_size, 512)},
       });
     }},
    {"mempool", [&](const std::string& p, const YAML::Node& n) {
       walk(f, p, n, {
         {"size", [&](const std::string& k, const YAML::Node& v) {
            auto n = scalar<int64_t>(f, k, v);  // 0 = sized automatically
            if (n < 0 || n > (1 << 28)) fail(f, k, "must be between 0 (automatic) and 268435456", &v);
            cfg.mempool_size = static_cast<uint32_t>(n);
          }},
         {"cache", [&](const std::string& k, const YAML::Node& v) {
            auto c = scalar<int64_t>(f, k, v);
            if (c < 0 || c > 512) fail(f, k, "must be between 0 and 512 (RTE_MEMPOOL_CACHE_MAX_SIZE)", &v);
            cfg.mempool_cache = static_cast<uint32_t>(c);
          }},
         {"data_room", u32(cfg.mbuf_data_room, 65535)},
       });
     }},
    {"eal_memory_mb", [&](const std::string& k, const YAML::Node& v) {
       auto mb = scalar<int64_t>(f, k, v);  // 0 = sized from the mempool
       if (mb < 0 || mb > (1 << 20)) fail(f, k, "must be between 0 (sized from the mempool) and 1048576", &v);
       cfg.eal_memory_mb = static_cast<uint32_t>(mb);
     }},
    {"flow", [&](const std::string& p, const YAML::Node& n) {
       walk(f, p, n, {
         {"hash_vlan", boolean(cfg.hash_vlan)},
         {"capacity", u32(cfg.flow_capacity, 1u << 26)},
         {"tcp_opening_timeout_s", seconds(cfg.tcp_opening_timeout_s)},
         {"tcp_established_timeout_s", seconds(cfg.tcp_established_timeout_s)},
         {"tcp_closing_timeout_s", seconds(cfg.tcp_closing_timeout_s)},
         {"udp_timeout_s", seconds(cfg.udp_timeout_s)},
       });
     }},
    {"reassembly", [&](const std::string& p, const YAML::Node& n) {
       walk(f, p, n, {
         {"memory_mb", u32(cfg.reassembly_memory_mb, 1u << 20)},
         {"flow_buffer_kb", u32(cfg.reassembly_flow_buffer_kb, 1u << 20)},
         {"ack_hold_ms", [&](const std::string& k, const YAML::Node& v) {
            cfg.reassembly_ack_hold_ms = scalar<double>(f, k, v);
            if (!(cfg.reassembly_ack_hold_ms >= 0) || cfg.reassembly_ack_hold_ms > 60000) {
              fail(f, k, "must be between 0 (off) and 60000 milliseconds", &v);
            }
          }},
         {"ack_hold_kb", u32(cfg.reassembly_ack_hold_kb, 1u << 20)},
       });
     }},
    {"dedup", [&](const std::string& p, const YAML::Node& n) {
       walk(f, p, n, {
         {"live", boolean(cfg.dedup_live)},
         {"files", boolean(cfg.dedup_files)},
         {"window_us", u32(cfg.dedup_window_us, 10'000'000)},
         {"entries", u32(cfg.dedup_entries, 1u << 26)},
       });
     }},
    {"decap", [&](const std::string& p, const YAML::Node& n) {
       auto ports = [&](uint16_t (&dst)[kMaxTunnelPorts]) {
         return [&, f](const std::string& k, const YAML::Node& v) {
           if (!v.IsSequence() || v.size() == 0 || v.size() > kMaxTunnelPorts) {
             fail(f, k, "expected a list of 1 to " + std::to_string(kMaxTunnelPorts) + " UDP ports", &v);
           }
           for (auto& d : dst) d = 0;
           size_t i = 0;
           for (const auto& e : v) dst[i++] = static_cast<uint16_t>(positive(f, k, e, 65535));
         };
       };
       walk(f, p, n, {
         {"enabled", boolean(cfg.decap.enabled)},
         {"max_depth", [&](const std::string& k, const YAML::Node& v) {
            cfg.decap.max_depth = static_cast<uint8_t>(positive(f, k, v, kMaxTunnelDepth));
          }},
         {"vxlan_ports", ports(cfg.decap.vxlan_ports)},
         {"vxlan_gpe_ports", ports(cfg.decap.vxlan_gpe_ports)},
         {"geneve_ports", ports(cfg.decap.geneve_ports)},
         {"flow_key", boolean(cfg.decap.tunnel_in_flow_key)},
         {"records", boolean(cfg.tunnel_in_records)},
       });
       // One port, one meaning: a port listed for two kinds would decode as the first.
       std::map<uint16_t, std::string> seen;
       auto claim = [&](const uint16_t (&ps)[kMaxTunnelPorts], const char* kind) {
         for (uint16_t port : ps) {
           if (port == 0) continue;
           auto [it, fresh] = seen.emplace(port, kind);
           if (!fresh && it->second != kind) {
             fail(f, p, "UDP port " + std::to_string(port) + " is listed for both " + it->second +
                            " and " + kind, &n);
           }
         }
       };
       claim(cfg.decap.vxlan_ports, "vxlan_ports");
       claim(cfg.decap.vxlan_gpe_ports, "vxlan_gpe_ports");
       claim(cfg.decap.geneve_ports, "geneve_ports");
     }},
    {"ip_fragments", [&](const std::string& p, const YAML::Node& n) {
       walk(f, p, n, {
         {"reassemble", boolean(cfg.defrag)},
         {"max_datagrams", u32(cfg.defrag_max_datagrams, 1u << 20)},
         {"timeout_s", [&](const std::string& k, const YAML::Node& v) {
            cfg.defrag_timeout_s = scalar<double>(f, k, v);
            if (!(cfg.defrag_timeout_s >= 0.001) || cfg.defrag_timeout_s > 3600) {
              fail(f, k, "must be a number of seconds between 0.001 and 3600", &v);
            }
          }},
       });
     }},
    {"flows_out", file_path(cfg.flows_out)},
    {"outputs", [&](const std::string& k, const YAML::Node& v) {
       if (!v.IsSequence()) fail(f, k, "expected a list of KIND:TARGET strings", &v);
       cfg.outputs.clear();
       for (const auto& o : v) {
         std::string out = scalar<std::string>(f, k, o);
         if (out.rfind("jsonl:", 0) == 0) out = "jsonl:" + beside(out.substr(6));
         cfg.outputs.push_back(out);
       }
     }},
    {"recording_id", str(cfg.recording_id)},
    {"export", [&](const std::string& p, const YAML::Node& n) {
       walk(f, p, n, {
         {"threads", [&](const std::string& k, const YAML::Node& v) {
            auto t = scalar<int64_t>(f, k, v);  // 0: one per 4 workers, at most one per 4 CPUs
            if (t < 0 || t > 64) fail(f, k, "must be between 0 (auto) and 64", &v);
            cfg.export_threads = static_cast<uint32_t>(t);
          }},
       });
     }},
    {"jsonl", [&](const std::string& p, const YAML::Node& n) {
       walk(f, p, n, {
         {"rotate_mb", [&](const std::string& k, const YAML::Node& v) {
            double mb = scalar<double>(f, k, v);
            if (mb < 0) fail(f, k, "must be >= 0 (0: never rotate)", &v);
            cfg.jsonl_rotate_bytes = static_cast<uint64_t>(mb * 1024 * 1024);
          }},
         {"keep", u32(cfg.jsonl_keep, 1000)},
       });
     }},
    {"gelf", [&](const std::string& p, const YAML::Node& n) {
       walk(f, p, n, {
         {"compression", [&](const std::string& k, const YAML::Node& v) {
            cfg.gelf_compression = scalar<std::string>(f, k, v);
            if (cfg.gelf_compression != "none" && cfg.gelf_compression != "gzip" &&
                cfg.gelf_compression != "zlib") {
              fail(f, k, "must be none, gzip or zlib", &v);
            }
          }},
         {"chunk_size", [&](const std::string& k, const YAML::Node& v) {
            auto n = scalar<int64_t>(f, k, v);
            if (n < 16 || n > 65000) fail(f, k, "must be between 16 and 65000 bytes", &v);
            cfg.gelf_chunk_size = static_cast<uint32_t>(n);
          }},
         {"retry_s", [&](const std::string& k, const YAML::Node& v) {
            cfg.gelf_retry_s = scalar<double>(f, k, v);
            if (cfg.gelf_retry_s < 0) fail(f, k, "must be >= 0", &v);
          }},
         {"tls", [&](const std::string& k, const YAML::Node& v) {
            walk(f, k, v, {
              {"ca", file_path(cfg.gelf_tls_ca)},
              {"cert", file_path(cfg.gelf_tls_cert)},
              {"key", file_path(cfg.gelf_tls_key)},
              {"server_name", str(cfg.gelf_tls_server_name)},
              {"verify", boolean(cfg.gelf_tls_verify)},
            });
          }},
       });
     }},
    {"kafka", [&](const std::string& p, const YAML::Node& n) {
       walk(f, p, n, {
         {"properties", [&](const std::string& k, const YAML::Node& v) {
            if (!v.IsMap()) fail(f, k, "expected a mapping of librdkafka properties", &v);
            for (const auto& kv : v) {
              cfg.kafka_props.emplace_back(kv.first.as<std::string>(),
                                           scalar<std::string>(f, k + "." + kv.first.as<std::string>(), kv.second));
            }
          }},
         {"flush_timeout_s", seconds(cfg.kafka_flush_timeout_s)},
       });
     }},
    {"rules", [&](const std::string& p, const YAML::Node& n) {
       walk(f, p, n, {
         {"file", file_path(cfg.rules_file)},
         {"redact_credit_cards", boolean(cfg.redact_credit_cards)},
         {"redact_bearer_tokens", boolean(cfg.redact_bearer_tokens)},
         {"redact_passwords", boolean(cfg.redact_passwords)},
         {"max_streams", u32(cfg.rules_max_streams, 1u << 22)},
         {"hit_pool", u32(cfg.rules_hit_pool, 1u << 24)},
         {"inflaters", u32(cfg.rules_inflaters, 65536)},
         {"inflate_max_kb", u32(cfg.rules_inflate_max_kb, 1u << 20)},
       });
     }},
    {"decode", [&](const std::string& p, const YAML::Node& n) {
       // ports and decode.<protocol> options: the registry's names, from the decode module.
       YamlHandlers keys = registry.decode;
       keys["response_timeout_s"] = seconds(cfg.response_timeout_s);
       keys["redact_secrets"] = boolean(cfg.redact_secrets);
       walk(f, p, n, keys);
     }},
    {"job", [&](const std::string& k, const YAML::Node& v) {
       try { cfg.job = parse_job(scalar<std::string>(f, k, v)); }
       catch (const ConfigError& e) { fail(f, k, e.what(), &v); }
     }},
    {"summary_json", file_path(cfg.summary_json)},
    {"metrics", [&](const std::string& p, const YAML::Node& n) {
       walk(f, p, n, {
         {"listen", str(cfg.metrics_listen)},
         {"linger_s", [&](const std::string& k, const YAML::Node& v) {
            cfg.metrics_linger_s = scalar<double>(f, k, v);
            if (cfg.metrics_linger_s < 0) fail(f, k, "must be >= 0", &v);
          }},
         {"remote_write", [&](const std::string& rp, const YAML::Node& rn) {
            load_remote_write(f, rp, rn, cfg.remote_write, beside);
          }},
       });
     }},
    {"red", [&](const std::string& p, const YAML::Node& n) {
       RedConfig& red = cfg.red;
       auto labels = [&](uint8_t& dst) {
         return [&, f](const std::string& k, const YAML::Node& v) {
           if (!v.IsSequence()) fail(f, k, "expected a list of labels (server, server.port, endpoint, status)", &v);
           dst = 0;
           for (const auto& e : v) {
             const std::string name = scalar<std::string>(f, k, e);
             const uint8_t bit = parse_red_label(name);
             if (bit == 0) fail(f, k, "unknown label '" + name + "' (known: server, server.port, endpoint, status)", &e);
             dst |= bit;
           }
         };
       };
       auto number = [&](double& dst, double lo, double hi, const char* what) {
         return [&, f, lo, hi, what](const std::string& k, const YAML::Node& v) {
           dst = scalar<double>(f, k, v);
           if (!(dst >= lo && dst <= hi)) fail(f, k, what, &v);
         };
       };
       walk(f, p, n, {
         {"enabled", boolean(red.enabled)},
         {"max_series", u32(red.max_series, 1'000'000)},
         {"top_n", u32(red.top_n, 100'000)},
         {"retire_idle_s", number(red.retire_idle_s, 1, 86400 * 7, "must be between 1 and 604800 seconds")},
         {"buckets", [&](const std::string& bk, const YAML::Node& bn) {
            walk(f, bk, bn, {
              {"min_us", number(red.bucket_min_us, 1, 1e9, "must be between 1 and 1000000000 microseconds")},
              {"max_s", number(red.bucket_max_s, 1e-6, 86400, "must be between 0.000001 and 86400 seconds")},
              {"factor", number(red.bucket_factor, 1.1, 100, "must be between 1.1 and 100")},
            });
            if (red.bucket_max_s * 1e6 <= red.bucket_min_us) {
              fail(f, bk, "max_s must be above min_us", &bn);
            }
            if (red.bucket_bounds_us().size() >= RedConfig::kMaxBuckets) {
              fail(f, bk, "more than " + std::to_string(RedConfig::kMaxBuckets - 1) +
                              " buckets from min_us to max_s: raise factor", &bn);
            }
          }},
         {"labels", labels(red.labels)},
         {"protocols", [&](const std::string& pk, const YAML::Node& pn) {
            if (!pn.IsMap()) fail(f, pk, "expected protocol: {enabled, labels} entries", &pn);
            for (const auto& kv : pn) {
              const std::string proto = kv.first.as<std::string>();
              const std::string key = pk + "." + proto;
              if (registry.protocol_name) registry.protocol_name(key, kv.first);
              RedConfig::PerProtocol pp{proto, true, RedConfig::kInheritLabels};
              walk(f, key, kv.second, {
                {"enabled", boolean(pp.enabled)},
                {"labels", labels(pp.labels)},
              });
              red.protocols.push_back(pp);
            }
          }},
         {"services", [&](const std::string& sk, const YAML::Node& sn) {
            if (!sn.IsMap()) fail(f, sk, "expected name: address (or a list of addresses) entries", &sn);
            for (const auto& kv : sn) {
              const std::string name = kv.first.as<std::string>();
              const std::string key = sk + "." + name;
              if (name.empty() || name.size() > 64) fail(f, key, "a service name is 1 to 64 characters", &kv.first);
              auto add = [&](const YAML::Node& a) {
                const std::string text = scalar<std::string>(f, key, a);
                RedService s;
                if (!parse_red_address(text, s)) {
                  fail(f, key, "'" + text + "' is not an address (IP, IP:PORT, [IPv6]:PORT)", &a);
                }
                s.name = name;
                for (const auto& o : red.services) {
                  if (o.ip_version == s.ip_version && o.port == s.port &&
                      std::memcmp(o.ip.bytes, s.ip.bytes, sizeof(s.ip.bytes)) == 0) {
                    fail(f, key, "'" + text + "' is already the address of service '" + o.name + "'", &a);
                  }
                }
                red.services.push_back(std::move(s));
              };
              if (kv.second.IsSequence()) {
                for (const auto& a : kv.second) add(a);
              } else {
                add(kv.second);
              }
            }
          }},
       });
     }},
    {"status_line", boolean(cfg.status_line)},
    {"log_level", str(cfg.log_level)},
    {"cache_dir", str(cfg.cache_dir)},
  });
}

uint64_t minimum_mempool_size(const Config& cfg) {
  // What the engine keeps free for the PMD (engine.cc: pool_reserve, the
  // offline check): every lcore's cache at its flush threshold (1.5x), the
  // RX descriptors, a burst, and 1024 mbufs to move packets at all.
  constexpr uint64_t kRxDescriptors = 1024;
  const uint64_t lcores = 1 + uint64_t{cfg.rx_lcores} + cfg.workers;
  return lcores * (cfg.mempool_cache * 3 / 2) + kRxDescriptors + cfg.burst_size + 1024;
}

void validate_config(const Config& cfg) {
  int sources = !cfg.pcap_file.empty() + !cfg.iface.empty();
  if (sources > 1) throw ConfigError("give one capture source: --pcap or --iface, not both");
  if (sources == 0 && cfg.eal_args.empty()) {
    throw ConfigError("no capture source: give --pcap FILE, --iface NAME, or --eal with the "
                      "device arguments (--vdev ..., -a PCI_ADDR)");
  }
  if (cfg.ring_size < 2 || (cfg.ring_size & (cfg.ring_size - 1)) != 0) {
    throw ConfigError("rings.size must be a power of two >= 2 (rte_ring), not " +
                      std::to_string(cfg.ring_size));
  }
  if (cfg.burst_size == 0 || cfg.burst_size > 512) {
    throw ConfigError("rings.burst must be between 1 and 512");
  }
  if (cfg.burst_size > cfg.ring_size) {
    throw ConfigError("rings.burst (" + std::to_string(cfg.burst_size) +
                      ") must not exceed rings.size (" + std::to_string(cfg.ring_size) + ")");
  }
  if (cfg.workers == 0) throw ConfigError("lcores.workers must be at least 1");
  if (cfg.rx_lcores == 0) throw ConfigError("lcores.rx must be at least 1");
  if (cfg.mbuf_data_room < 256 + 128) {
    throw ConfigError("mempool.data_room must be at least 384 bytes (128 headroom + a header)");
  }
  if (cfg.mempool_size != 0 && cfg.mempool_size < minimum_mempool_size(cfg)) {
    throw ConfigError("mempool.size (--mempool-size) " + std::to_string(cfg.mempool_size) +
                      " is too small: the RX descriptors, every lcore's cache and a burst need at "
                      "least " + std::to_string(minimum_mempool_size(cfg)) +
                      " mbufs here; raise it, or 0 to size it automatically");
  }
  if (!cfg.flows_out.empty() && cfg.job != JobKind::kFlows) {
    throw ConfigError("flows_out (--flows-out) needs the flows job (--job flows)");
  }
  if (!cfg.outputs.empty() && cfg.job != JobKind::kRecords) {
    throw ConfigError("outputs (--output) carry roundtrip records: they need --job records");
  }
  if (!cfg.cpus.empty()) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0) {
      std::string have;
      for (int i = 0; i < CPU_SETSIZE; ++i) {
        if (CPU_ISSET(i, &allowed)) have += (have.empty() ? "" : ",") + std::to_string(i);
      }
      for (int c : cfg.cpus) {
        if (c >= CPU_SETSIZE || !CPU_ISSET(c, &allowed)) {
          throw ConfigError("lcores.cpus: CPU " + std::to_string(c) +
                            " does not exist or is not allowed for this process (allowed: " + have + ")");
        }
      }
    }
  }
  static const std::set<std::string> kLevels = {"emergency", "alert", "critical", "error",
                                               "warning", "notice", "info", "debug"};
  if (kLevels.count(cfg.log_level) == 0) {
    throw ConfigError("log_level must be one of emergency, alert, critical, error, warning, "
                      "notice, info, debug; not '" + cfg.log_level + "'");
  }
}

}  // namespace spanfeed
