// Hyperscan databases compiled once per machine: serialized into a cache directory, loaded by
// later runs (a compile is ~100 M instructions per database; a load is a copy). Control core and
// the start-up compile thread; allocates.
#include "hs_cache.h"

#include <fcntl.h>
#include <hs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace spanfeed {
namespace {

std::mutex g_dir_mu;
std::string g_dir;
std::atomic<unsigned> g_loaded{0}, g_compiled{0}, g_stored{0};

constexpr char kMagic[8] = {'S', 'F', 'H', 'S', 'D', 'B', '0', '1'};

// FNV-1a 64: names the cache file; the file holds the full key, compared on load.
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

void put_u64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof(v)); }

// Everything the compiled bytes depend on.
std::string key_of(const char* const* exprs, const unsigned* flags, const unsigned* ids, unsigned n, unsigned mode,
                   const hs_platform_info_t& plat) {
  std::string k = hs_version();
  k += '\0';
  put_u64(k, mode);
  put_u64(k, plat.tune);
  put_u64(k, plat.cpu_features);
  put_u64(k, n);
  for (unsigned i = 0; i < n; ++i) {
    put_u64(k, flags != nullptr ? flags[i] : 0);
    put_u64(k, ids != nullptr ? ids[i] : 0);
    const size_t len = std::strlen(exprs[i]);
    put_u64(k, len);
    k.append(exprs[i], len);
  }
  return k;
}

bool read_file(const std::string& path, std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size < (1ll << 30);
  if (ok) {
    out.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < out.size()) {
      const ssize_t r = ::read(fd, out.data() + got, out.size() - got);
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    ok = got == out.size();
  }
  ::close(fd);
  return ok;
}

// mkdir -p, private to the user (the databases are the user's rules).
bool make_dirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      const std::string part = dir.substr(0, i);
      if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return false;
    }
  }
  return true;
}

// Written under a temporary name and renamed: concurrent runs never see half a file.
void store(const std::string& dir, const std::string& path, const std::string& key, const hs_database_t* db) {
  char* bytes = nullptr;
  size_t len = 0;
  if (hs_serialize_database(db, &bytes, &len) != HS_SUCCESS) return;
  std::string file(kMagic, sizeof(kMagic));
  put_u64(file, key.size());
  file += key;
  file.append(bytes, len);
  std::free(bytes);
  if (!make_dirs(dir)) return;
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  size_t put = 0;
  while (put < file.size()) {
    const ssize_t w = ::write(fd, file.data() + put, file.size() - put);
    if (w <= 0) break;
    put += static_cast<size_t>(w);
  }
  const bool ok = ::close(fd) == 0 && put == file.size();
  if (ok && ::rename(tmp.c_str(), path.c_str()) == 0) {
    g_stored.fetch_add(1, std::memory_order_relaxed);
  } else {
    ::unlink(tmp.c_str());
  }
}

}  // namespace

void set_hs_cache_dir(std::string dir) {
  std::lock_guard<std::mutex> lock(g_dir_mu);
  g_dir = std::move(dir);
}

std::string hs_cache_dir() {
  std::lock_guard<std::mutex> lock(g_dir_mu);
  return g_dir;
}

std::string resolve_hs_cache_dir(const std::string& setting) {
  if (setting == "off" || setting.empty()) return "";
  if (setting != "auto") return setting;
  // systemd's CacheDirectory= (deploy/spanfeed.service): an absolute path, or several joined by ':'.
  if (const char* c = std::getenv("CACHE_DIRECTORY"); c != nullptr && c[0] == '/') {
    std::string dir(c);
    return dir.substr(0, dir.find(':'));
  }
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && x[0] == '/') return std::string(x) + "/spanfeed";
  if (const char* h = std::getenv("HOME"); h != nullptr && h[0] == '/' && h[1] != '\0') {
    return std::string(h) + "/.cache/spanfeed";
  }
  return "";
}

HsCacheStats hs_cache_stats() {
  return {g_loaded.load(std::memory_order_relaxed), g_compiled.load(std::memory_order_relaxed),
          g_stored.load(std::memory_order_relaxed)};
}

int hs_compile_multi_cached(const char* const* exprs, const unsigned* flags, const unsigned* ids, unsigned n,
                            unsigned mode, hs_database_t** db, hs_compile_error_t** err) {
  const std::string dir = hs_cache_dir();
  hs_platform_info_t plat{};
  if (dir.empty() || hs_populate_platform(&plat) != HS_SUCCESS) {
    g_compiled.fetch_add(1, std::memory_order_relaxed);
    return hs_compile_multi(exprs, flags, ids, n, mode, nullptr, db, err);
  }
  const std::string key = key_of(exprs, flags, ids, n, mode, plat);
  char name[40];
  std::snprintf(name, sizeof(name), "/hs-%016llx.db", static_cast<unsigned long long>(fnv1a(key)));
  const std::string path = dir + name;
  std::string file;
  if (read_file(path, file) && file.size() > sizeof(kMagic) + 8 && std::memcmp(file.data(), kMagic, sizeof(kMagic)) == 0) {
    uint64_t klen = 0;
    std::memcpy(&klen, file.data() + sizeof(kMagic), sizeof(klen));
    const size_t at = sizeof(kMagic) + sizeof(klen);
    if (klen == key.size() && file.size() > at + klen && file.compare(at, klen, key) == 0) {
      hs_database_t* loaded = nullptr;
      // Hyperscan checks the blob itself (version, platform, CRC): a damaged entry is recompiled.
      if (hs_deserialize_database(file.data() + at + klen, file.size() - at - klen, &loaded) == HS_SUCCESS) {
        g_loaded.fetch_add(1, std::memory_order_relaxed);
        *db = loaded;
        return HS_SUCCESS;
      }
    }
  }
  g_compiled.fetch_add(1, std::memory_order_relaxed);
  const int rc = hs_compile_multi(exprs, flags, ids, n, mode, &plat, db, err);
  if (rc == HS_SUCCESS) store(dir, path, key, *db);
  return rc;
}

}  // namespace spanfeed
