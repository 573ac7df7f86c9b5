// Prometheus /metrics on the control core. The control core turns each
// counter snapshot (a RunReport) into metric families and hands them over;
// the HTTP server thread only copies the latest set. Allocates per publish.
#pragma once

#include <memory>
#include <string>

#include "spanfeed/config.h"
#include "jobs/summary.h"

namespace spanfeed {

class MetricsServer {
 public:
  // Listens on "HOST:PORT" (port 0: any free port); "off": no HTTP server
  // (the snapshots still go to the remote writer). nullptr + error on failure.
  static std::unique_ptr<MetricsServer> start(const std::string& listen, std::string& error);
  // Also push every snapshot to a Prometheus remote-write endpoint, from a
  // thread of its own (docs/metrics.md). false + error: a credentials file.
  bool start_remote_write(const RemoteWriteConfig& cfg, std::string& error);
  // Ends the remote writer after its final flush (at most its timeout_s):
  // a line saying what became of its pushes; "" without a remote writer.
  std::string finish_remote_write();
  ~MetricsServer();
  // Control core: replace what /metrics serves (and the remote writer
  // pushes) with this snapshot.
  void publish(const RunReport& r, bool final);
  // Stops the HTTP server from a thread of its own (civetweb takes ~10 ms to
  // stop) while the run tears down; the destructor waits for it. For a run
  // whose final numbers nobody reads (no linger, no remote writer).
  void stop_serving();
  int port() const;  // 0 without an HTTP server; only before stop_serving

 private:
  struct Impl;
  MetricsServer();
  std::unique_ptr<Impl> impl_;
};

}  // namespace spanfeed
