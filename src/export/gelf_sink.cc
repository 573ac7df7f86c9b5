// GELF sinks for Graylog: UDP (optional gzip/zlib, chunked with the 0x1e 0x0f
// magic when over the chunk size, at most 128 chunks) and TCP, plain or TLS
// (null-byte framed, reconnect with backoff). The documents come encoded by the workers
// (GelfEncoder). Runs on the exporter thread; allocates per record there.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <thread>

#include "export/tls_client.h"
#include "export/export.h"
#include "core/host_port.h"

namespace spanfeed {
namespace {

constexpr size_t kChunkHeader = 12;  // magic (2) + message id (8) + seq (1) + count (1)
constexpr size_t kMaxChunks = 128;   // GELF limit

bool resolve(const std::string& hostport, int socktype, sockaddr_storage& sa, socklen_t& len,
             std::string& error) {
  const std::optional<HostPort> hp = split_host_port(hostport);
  if (!hp) {
    error = "'" + hostport + "': expected HOST:PORT";
    return false;
  }
  const std::string host(hp->host), port(hp->port);
  addrinfo hints{};
  hints.ai_socktype = socktype;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    error = "'" + hostport + "': " + gai_strerror(rc);
    return false;
  }
  std::memcpy(&sa, res->ai_addr, res->ai_addrlen);
  len = static_cast<socklen_t>(res->ai_addrlen);
  freeaddrinfo(res);
  return true;
}

class GelfBase : public Sink {
 public:
  explicit GelfBase(const GelfConfig& cfg) : cfg_(cfg) {}
  std::vector<std::pair<std::string, uint64_t>> failure_reasons() const override {
    return {reasons_.begin(), reasons_.end()};
  }

 protected:
  // The GELF document of record `i` of `b` (the worker encoded it).
  static std::string_view document(const RecordBatch& b, size_t i) {
    const uint32_t start = i == 0 ? 0 : b.refs[i - 1].gelf_end;
    return std::string_view(b.gelf).substr(start, b.refs[i].gelf_end - start);
  }
  void fail(SinkCounters& c, const char* why, uint64_t n = 1) {
    c.failed.add(n);
    reasons_[why] += n;
  }

  GelfConfig cfg_;
  std::map<std::string, uint64_t> reasons_;
};

class GelfUdpSink final : public GelfBase {
 public:
  using GelfBase::GelfBase;
  ~GelfUdpSink() override {
    if (fd_ >= 0) ::close(fd_);
  }
  bool init(const std::string& target, std::string& error) {
    if (!resolve(target, SOCK_DGRAM, sa_, sa_len_, error)) return false;
    fd_ = ::socket(sa_.ss_family, SOCK_DGRAM, 0);
    if (fd_ < 0) {
      error = std::string("socket: ") + std::strerror(errno);
      return false;
    }
    std::random_device rd;
    id_base_ = (uint64_t{rd()} << 32) | rd();
    return true;
  }
  void write(const RecordBatch& b, SinkCounters& c, bool) override {
    for (size_t i = 0; i < b.refs.size(); ++i) {
      std::string msg(document(b, i));
      if (!compress(msg)) {
        fail(c, "compress");
        continue;
      }
      send_chunked(msg, c);
    }
  }

 private:
  bool compress(std::string& msg) {
    if (cfg_.compression == GelfConfig::Compression::kNone) return true;
    z_stream zs{};
    int wbits = cfg_.compression == GelfConfig::Compression::kGzip ? 15 + 16 : 15;
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
    std::string out(deflateBound(&zs, msg.size()), '\0');
    zs.next_in = reinterpret_cast<Bytef*>(msg.data());
    zs.avail_in = static_cast<uInt>(msg.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    int rc = deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) return false;
    msg.swap(out);
    return true;
  }
  void send_chunked(const std::string& msg, SinkCounters& c) {
    const size_t chunk = cfg_.chunk_size;
    if (msg.size() <= chunk) {
      if (::sendto(fd_, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&sa_), sa_len_) < 0) {
        fail(c, "send");
      } else {
        c.delivered.add(1);
      }
      return;
    }
    const size_t data_per_chunk = chunk - kChunkHeader;
    const size_t count = (msg.size() + data_per_chunk - 1) / data_per_chunk;
    if (count > kMaxChunks) {
      c.dropped.add(1);
      reasons_["too_many_chunks"] += 1;
      return;
    }
    uint64_t id = id_base_ + ++seq_;
    std::string dgram;
    for (size_t i = 0; i < count; ++i) {
      dgram.assign("\x1e\x0f", 2);
      for (int k = 7; k >= 0; --k) dgram.push_back(static_cast<char>((id >> (8 * k)) & 0xFF));
      dgram.push_back(static_cast<char>(i));
      dgram.push_back(static_cast<char>(count));
      dgram.append(msg, i * data_per_chunk, data_per_chunk);
      if (::sendto(fd_, dgram.data(), dgram.size(), 0, reinterpret_cast<sockaddr*>(&sa_), sa_len_) < 0) {
        fail(c, "send");
        return;
      }
    }
    c.delivered.add(1);
  }

  int fd_ = -1;
  sockaddr_storage sa_{};
  socklen_t sa_len_ = 0;
  uint64_t id_base_ = 0, seq_ = 0;
};

class GelfTcpSink final : public GelfBase {
 public:
  using GelfBase::GelfBase;
  ~GelfTcpSink() override { disconnect(); }
  // `tls`: null for plain TCP.
  bool init(const std::string& target, std::unique_ptr<TlsClient> tls, std::string& error) {
    tls_ = std::move(tls);
    if (auto hp = split_host_port(target)) host_ = std::string(hp->host);
    return resolve(target, SOCK_STREAM, sa_, sa_len_, error);
  }
  void write(const RecordBatch& b, SinkCounters& c, bool wait) override {
    for (size_t i = 0; i < b.refs.size(); ++i) {
      std::string msg(document(b, i));
      msg.push_back('\0');  // GELF TCP framing
      send_one(msg, c, wait);
    }
  }

 private:
  void disconnect() {
    session_.reset();  // closes the socket under TLS
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool connected() const { return tls_ ? session_ != nullptr : fd_ >= 0; }
  bool connect_now() {
    auto now = std::chrono::steady_clock::now();
    if (now < next_attempt_) return false;
    int fd = ::socket(sa_.ss_family, SOCK_STREAM, 0);
    bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&sa_), sa_len_) == 0;
    if (ok && tls_) {
      timeval tv{kHandshakeTimeoutS, 0};  // a silent peer must not stall the exporter
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      std::string error;
      session_ = tls_->handshake(fd, host_, error);  // owns fd from here
      fd = -1;
      ok = session_ != nullptr;
      if (!ok) {
        ++tls_failures_[error.rfind("certificate", 0) == 0 ? "tls_certificate" : "tls_handshake"];
        if (error != last_tls_error_) {  // once per distinct reason, not per attempt
          std::fprintf(stderr, "spanfeed: gelf-tls %s: %s\n", host_.c_str(), error.c_str());
          last_tls_error_ = error;
        }
      }
    }
    if (ok) {
      if (!tls_) fd_ = fd;
      backoff_ = std::chrono::milliseconds(100);
      ++connects_;
      return true;
    }
    if (fd >= 0) ::close(fd);
    next_attempt_ = now + backoff_;
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(5000));  // 100 ms .. 5 s
    return false;
  }
  bool send_all(const std::string& msg) {
    if (session_) return session_->write_all(msg.data(), msg.size());
    size_t off = 0;
    while (off < msg.size()) {
      ssize_t n = ::send(fd_, msg.data() + off, msg.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Why the last connection attempt failed, for the failure reasons.
  const char* not_connected_reason() const {
    if (!tls_failures_.empty() && last_tls_error_.rfind("certificate", 0) == 0) return "tls_certificate";
    if (!tls_failures_.empty() && !last_tls_error_.empty()) return "tls_handshake";
    return "not_connected";
  }
  void send_one(const std::string& msg, SinkCounters& c, bool wait) {
    // Offline: keep retrying (with backoff) for up to retry_s; live: one
    // attempt per backoff period, the rest is counted as failed.
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>((wait ? cfg_.retry_s : 0) * 1000));
    while (true) {
      if (connected() || connect_now()) {
        if (send_all(msg)) {
          c.delivered.add(1);
          return;
        }
        disconnect();  // broken connection: reconnect (after backoff) and resend this one
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        fail(c, connected() ? "send" : not_connected_reason());
        return;
      }
      if (policy_.abandoned()) {  // a second signal ends the offline retries
        fail(c, "abandoned");
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  static constexpr time_t kHandshakeTimeoutS = 5;
  sockaddr_storage sa_{};
  socklen_t sa_len_ = 0;
  std::string host_;
  int fd_ = -1;                             // plain TCP
  std::unique_ptr<TlsClient> tls_;          // TLS: set up once
  std::unique_ptr<TlsSession> session_;     // TLS: the current connection
  std::map<std::string, uint64_t> tls_failures_;
  std::string last_tls_error_;
  std::chrono::milliseconds backoff_{100};
  std::chrono::steady_clock::time_point next_attempt_{};
  uint64_t connects_ = 0;
};

}  // namespace

std::unique_ptr<Sink> make_gelf_sink(GelfTransport transport, const std::string& target, const GelfConfig& cfg,
                                     std::string& error) {
  if (transport == GelfTransport::kUdp) {
    auto s = std::make_unique<GelfUdpSink>(cfg);
    if (!s->init(target, error)) return nullptr;
    return s;
  }
  std::unique_ptr<TlsClient> tls;
  if (transport == GelfTransport::kTls) {
    tls = make_tls_client(cfg.tls, error);
    if (!tls) return nullptr;
  }
  auto s = std::make_unique<GelfTcpSink>(cfg);
  if (!s->init(target, std::move(tls), error)) return nullptr;
  return s;
}

std::string check_gelf_tls(const GelfConfig& cfg) {
  std::string error;
  return make_tls_client(cfg.tls, error) ? std::string() : error;
}

}  // namespace spanfeed
