// RED metrics settings (the `red:` section of the config): caps, histogram buckets, label sets
// per protocol, the service address map. Plain data: read at start-up, then only read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "spanfeed/packet.h"

namespace spanfeed {

// Labels a RED series may carry beside `protocol` (bits of RedConfig::labels).
namespace red_label {
inline constexpr uint8_t kServer = 1u << 0;      // "server": a service name, else ip:port
inline constexpr uint8_t kServerPort = 1u << 1;  // "server_port": the server's port alone
inline constexpr uint8_t kEndpoint = 1u << 2;    // "endpoint": the protocol's endpoint
inline constexpr uint8_t kStatus = 1u << 3;      // "status": ok, error, timeout, unmatched
inline constexpr uint8_t kAll = kServer | kServerPort | kEndpoint | kStatus;
}  // namespace red_label

// One `red.services` address: a name for a server ip (and port; 0: any port).
struct RedService {
  std::string name;
  IpAddr ip{};
  uint8_t ip_version = 4;
  uint16_t port = 0;
};

struct RedConfig {
  bool enabled = true;
  uint32_t max_series = 10000;   // per worker, and in /metrics; beyond: folded into "other"
  uint32_t top_n = 100;          // SQL fingerprints, MQTT / Kafka / AMQP names, TLS SNIs per worker and protocol
  double retire_idle_s = 600;    // /metrics drops a series idle this long when it needs the room
  double bucket_min_us = 50;     // duration histogram: first bound
  double bucket_max_s = 60;      // last finite bound
  double bucket_factor = 2;      // each bound = the previous x factor (the last is max)
  uint8_t labels = red_label::kServer | red_label::kEndpoint | red_label::kStatus;
  static constexpr uint8_t kInheritLabels = 0xff;
  struct PerProtocol {
    std::string protocol;
    bool enabled = true;
    uint8_t labels = kInheritLabels;  // kInheritLabels: red.labels
  };
  std::vector<PerProtocol> protocols;  // red.protocols.<name>: overrides, in file order
  std::vector<RedService> services;

  // The bucket bounds in microseconds, ascending (at most kMaxBuckets).
  std::vector<uint64_t> bucket_bounds_us() const;
  static constexpr size_t kMaxBuckets = 64;
};

// Parses a label name of the config ("server", "server.port", "endpoint", "status"); 0 if unknown.
uint8_t parse_red_label(const std::string& s);
// Parses "10.0.0.5:3306", "10.0.0.5", "[2001:db8::1]:443", "2001:db8::1"; false when not an address.
bool parse_red_address(const std::string& s, RedService& out);

}  // namespace spanfeed
