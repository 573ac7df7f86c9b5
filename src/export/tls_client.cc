// TLS client over OpenSSL (TLS 1.2+, peer verification on by default, SNI, host name check): the
// GELF TLS sink's transport. Runs on the exporter thread (and once at --check-config); allocates at
// set-up and per connection.
#include "export/tls_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

namespace spanfeed {
namespace {

std::string openssl_error(const char* what) {
  unsigned long e = ERR_get_error();
  std::string out = what;
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += ": ";
    out += buf;
  }
  ERR_clear_error();
  return out;
}

constexpr int kCloseWaitMs = 1000;

void drain_until_closed(int fd) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kCloseWaitMs);
  char buf[4096];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return;
    if (::recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0) return;  // closed, or an error
  }
}

class Session final : public TlsSession {
 public:
  Session(SSL* ssl, int fd) : ssl_(ssl), fd_(fd) {}
  ~Session() override {
    SSL_shutdown(ssl_);  // close_notify after the last record
    SSL_free(ssl_);
    // A socket closed with unread bytes (a TLS 1.3 server's session tickets, which this client
    // never reads) sends RST, and RST discards what is still in the send queue: records counted
    // delivered would be lost. So: FIN after the data, then read what the server sends until it
    // closes too (it has read everything), bounded by kCloseWaitMs.
    ::shutdown(fd_, SHUT_WR);
    drain_until_closed(fd_);
    ::close(fd_);
  }
  bool write_all(const char* data, size_t len) override {
    size_t off = 0;
    while (off < len) {
      size_t n = 0;
      if (SSL_write_ex(ssl_, data + off, len - off, &n) != 1) {
        ERR_clear_error();
        return false;
      }
      off += n;
    }
    return true;
  }

 private:
  SSL* ssl_;
  int fd_;
};

class Client final : public TlsClient {
 public:
  Client(SSL_CTX* ctx, TlsClientConfig cfg) : ctx_(ctx), cfg_(std::move(cfg)) {}
  ~Client() override { SSL_CTX_free(ctx_); }

  std::unique_ptr<TlsSession> handshake(int fd, const std::string& host, std::string& error) override {
    SSL* ssl = SSL_new(ctx_);
    if (ssl == nullptr) {
      ::close(fd);
      error = openssl_error("tls");
      return nullptr;
    }
    const std::string& name = cfg_.server_name.empty() ? host : cfg_.server_name;
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, name.c_str());  // SNI
    if (cfg_.verify) SSL_set1_host(ssl, name.c_str());  // the certificate must name this host
    if (SSL_connect(ssl) != 1) {
      long v = SSL_get_verify_result(ssl);
      error = v != X509_V_OK ? std::string("certificate: ") + X509_verify_cert_error_string(v)
                             : openssl_error("tls handshake");
      ERR_clear_error();
      SSL_free(ssl);
      ::close(fd);
      return nullptr;
    }
    return std::make_unique<Session>(ssl, fd);
  }

 private:
  SSL_CTX* ctx_;
  TlsClientConfig cfg_;
};

}  // namespace

std::unique_ptr<TlsClient> make_tls_client(const TlsClientConfig& cfg, std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    error = openssl_error("tls");
    return nullptr;
  }
  auto fail = [&](std::string why) {
    error = std::move(why);
    SSL_CTX_free(ctx);
    return nullptr;
  };
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, cfg.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  if (!cfg.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, cfg.ca_file.c_str(), nullptr) != 1) {
      return fail(openssl_error(("cannot load CA file '" + cfg.ca_file + "'").c_str()));
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return fail(openssl_error("cannot load the system's CA certificates"));
  }
  if (cfg.cert_file.empty() != cfg.key_file.empty()) {
    return fail("a client certificate needs both cert and key");
  }
  if (!cfg.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg.cert_file.c_str()) != 1) {
      return fail(openssl_error(("cannot load certificate '" + cfg.cert_file + "'").c_str()));
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return fail(openssl_error(("cannot load key '" + cfg.key_file + "'").c_str()));
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      return fail("key '" + cfg.key_file + "' does not match certificate '" + cfg.cert_file + "'");
    }
  }
  return std::make_unique<Client>(ctx, cfg);
}

}  // namespace spanfeed
