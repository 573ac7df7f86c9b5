// Prometheus /metrics on the control core. The control core turns each
// counter snapshot (a RunReport) into metric families and hands them over;
// the HTTP server thread only copies the latest set. Allocates per publish.
#pragma once

#include <memory>
#include <string>

#include "spanfeed/summary.h"

namespace spanfeed {

class MetricsServer {
 public:
  // Listens on "HOST:PORT" (port 0: any free port). nullptr + error on failure.
  static std::unique_ptr<MetricsServer> start(const std::string& listen, std::string& error);
  ~MetricsServer();
  // Control core: replace what /metrics serves with this snapshot.
  void publish(const RunReport& r, bool final);
  int port() const;

 private:
  struct Impl;
  MetricsServer();
  std::unique_ptr<Impl> impl_;
};

}  // namespace spanfeed
