// RED settings helpers: bucket bounds, label names, service addresses. Control core at start-up;
// allocates.
#include "spanfeed/red_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace spanfeed {

std::vector<uint64_t> RedConfig::bucket_bounds_us() const {
  std::vector<uint64_t> out;
  const double max_us = bucket_max_s * 1e6;
  for (double b = bucket_min_us; b < max_us && out.size() + 1 < kMaxBuckets; b *= bucket_factor) {
    const auto v = static_cast<uint64_t>(std::llround(b));
    if (out.empty() || v > out.back()) out.push_back(v);
  }
  const auto last = static_cast<uint64_t>(std::llround(max_us));
  if (out.empty() || last > out.back()) out.push_back(last);
  return out;
}

uint8_t parse_red_label(const std::string& s) {
  if (s == "server") return red_label::kServer;
  if (s == "server.port") return red_label::kServerPort;
  if (s == "endpoint") return red_label::kEndpoint;
  if (s == "status") return red_label::kStatus;
  return 0;
}

bool parse_red_address(const std::string& s, RedService& out) {
  std::string host = s;
  std::string port;
  if (!s.empty() && s.front() == '[') {  // [v6]:port or [v6]
    const size_t close = s.find(']');
    if (close == std::string::npos) return false;
    host = s.substr(1, close - 1);
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') return false;
      port = s.substr(close + 2);
    }
  } else if (std::count(s.begin(), s.end(), ':') == 1) {  // v4:port
    host = s.substr(0, s.find(':'));
    port = s.substr(s.find(':') + 1);
  }
  std::memset(out.ip.bytes, 0, sizeof(out.ip.bytes));
  if (inet_pton(AF_INET, host.c_str(), out.ip.bytes) == 1) {
    out.ip_version = 4;
  } else if (inet_pton(AF_INET6, host.c_str(), out.ip.bytes) == 1) {
    out.ip_version = 6;
  } else {
    return false;
  }
  out.port = 0;
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
    const int p = std::stoi(port);
    if (p < 1 || p > 65535) return false;
    out.port = static_cast<uint16_t>(p);
  }
  return true;
}

}  // namespace spanfeed
