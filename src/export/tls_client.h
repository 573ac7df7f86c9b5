// A TLS client over a connected TCP socket (OpenSSL; the only export file that includes it): CA, client
// certificate and server-name verification. Used by the GELF TLS sink on the exporter thread; allocates
// at set-up and per connection.
#pragma once

#include <memory>
#include <string>

#include "export/export.h"  // TlsClientConfig

namespace spanfeed {

class TlsSession {
 public:
  virtual ~TlsSession() = default;
  // Writes all of [data, data+len); false when the connection broke.
  virtual bool write_all(const char* data, size_t len) = 0;
};

class TlsClient {
 public:
  virtual ~TlsClient() = default;
  // Runs the handshake on connected socket `fd` (which the session then owns and closes). Null on
  // failure, with `error` naming the reason (certificate verification, protocol, peer closed).
  virtual std::unique_ptr<TlsSession> handshake(int fd, const std::string& host, std::string& error) = 0;
};

// Loads the CA, certificate and key; null and `error` (naming the file) when one cannot be used.
std::unique_ptr<TlsClient> make_tls_client(const TlsClientConfig& cfg, std::string& error);

}  // namespace spanfeed
