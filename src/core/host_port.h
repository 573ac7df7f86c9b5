// HOST:PORT splitting for every address the config names (GELF outputs, the metrics listener).
// Pure function over a string_view; any thread; no allocation.
#pragma once

#include <optional>
#include <string_view>

namespace spanfeed {

struct HostPort {
  std::string_view host;  // without the brackets of an IPv6 literal
  std::string_view port;
};

// Splits at the last ':' ("db1:12201", "[::1]:12201" -> "::1", "12201");
// nullopt when there is no ':'.
inline std::optional<HostPort> split_host_port(std::string_view s) {
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  HostPort hp{s.substr(0, colon), s.substr(colon + 1)};
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  return hp;
}

}  // namespace spanfeed
