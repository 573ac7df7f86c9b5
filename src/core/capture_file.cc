// Capture-file probe over libpcap. Control core, before capture starts;
// allocates freely.
#include "core/capture_file.h"

#include <pcap/pcap.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

namespace spanfeed {
namespace {

std::string sniff_format(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return "unknown";
  unsigned char m[4] = {0, 0, 0, 0};
  size_t n = std::fread(m, 1, 4, f);
  std::fclose(f);
  if (n < 4) return "unknown";
  uint32_t be = uint32_t{m[0]} << 24 | uint32_t{m[1]} << 16 | uint32_t{m[2]} << 8 | m[3];
  switch (be) {
    case 0xa1b2c3d4: return "pcap (big-endian, us)";
    case 0xd4c3b2a1: return "pcap (little-endian, us)";
    case 0xa1b23c4d: return "pcap (big-endian, ns)";
    case 0x4d3cb2a1: return "pcap (little-endian, ns)";
    case 0x0a0d0d0a: return "pcapng";
    default: return "unknown";
  }
}

// Some writers put a little-endian magic in front of a big-endian version
// (0x0002, 0x0004 reads back as 512.1024). Wireshark tolerates it, libpcap
// refuses. Writes a copy with the version fixed; returns its path or "".
std::string repair_swapped_version(const std::string& path) {
  FILE* in = std::fopen(path.c_str(), "rb");
  if (in == nullptr) return "";
  unsigned char h[24];
  if (std::fread(h, 1, sizeof(h), in) != sizeof(h)) {
    std::fclose(in);
    return "";
  }
  bool le_magic = (h[0] == 0xd4 && h[1] == 0xc3 && h[2] == 0xb2 && h[3] == 0xa1) ||
                  (h[0] == 0x4d && h[1] == 0x3c && h[2] == 0xb2 && h[3] == 0xa1);
  bool be_magic = (h[3] == 0xd4 && h[2] == 0xc3 && h[1] == 0xb2 && h[0] == 0xa1) ||
                  (h[3] == 0x4d && h[2] == 0x3c && h[1] == 0xb2 && h[0] == 0xa1);
  // version 2.4 in the other byte order than the magic says
  bool swapped = (le_magic && h[4] == 0 && h[5] == 2 && h[6] == 0 && h[7] == 4) ||
                 (be_magic && h[4] == 2 && h[5] == 0 && h[6] == 4 && h[7] == 0);
  if (!swapped) {
    std::fclose(in);
    return "";
  }
  std::swap(h[4], h[5]);
  std::swap(h[6], h[7]);
  const char* dir = std::getenv("TMPDIR");
  std::string tmpl = std::string(dir != nullptr ? dir : "/tmp") + "/spanfeed-repaired-XXXXXX";
  int fd = mkstemp(tmpl.data());
  if (fd < 0) {
    std::fclose(in);
    return "";
  }
  FILE* out = fdopen(fd, "wb");
  bool ok = out != nullptr && std::fwrite(h, 1, sizeof(h), out) == sizeof(h);
  char buf[1 << 16];
  size_t n;
  while (ok && (n = std::fread(buf, 1, sizeof(buf), in)) > 0) ok = std::fwrite(buf, 1, n, out) == n;
  std::fclose(in);
  if (out != nullptr) ok = std::fclose(out) == 0 && ok;
  if (!ok) {
    std::remove(tmpl.c_str());
    return "";
  }
  return tmpl;
}

// The probe reads the file in blocks of this size: big enough that the
// reads cost little, small enough to stay in cache.
constexpr size_t kWalkBlock = 1u << 20;

// Counts a classic pcap file's records by walking the record headers: the
// file is read in 1 MiB blocks into one reused buffer and only the 16-byte
// record headers are looked at (libpcap's loop copies every record into its
// own buffer; a read-only mapping pays a page fault per few pages, which on
// a 179 MB file costs more than the copy: about 48 -> 33 ms). Only for files
// libpcap would read to the end without a remark: every record whole and no
// longer than the snapshot length. Anything else returns false and the
// caller counts with libpcap, which has the last word on what is damaged and
// why.
bool fast_count_pcap(const std::string& path, uint32_t snaplen, CaptureFileInfo& info) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size < 24) {
    ::close(fd);
    return false;
  }
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  const size_t size = static_cast<size_t>(st.st_size);
  std::unique_ptr<unsigned char[]> buf(new unsigned char[kWalkBlock]);
  size_t block_at = 0, block_len = 0;  // the file's bytes [block_at, block_at + block_len) are in buf
  bool io_ok = true;
  // The `n` bytes at file offset `at` (n <= 24), or nullptr when they cannot be read.
  auto bytes_at = [&](size_t at, size_t n) -> const unsigned char* {
    if (at >= block_at && at + n <= block_at + block_len) return buf.get() + (at - block_at);
    const size_t want = std::min(kWalkBlock, size - at);
    size_t got = 0;
    while (got < want) {
      ssize_t r = ::pread(fd, buf.get() + got, want - got, static_cast<off_t>(at + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    block_at = at;
    block_len = got;
    if (got < n) {
      io_ok = false;
      return nullptr;
    }
    return buf.get();
  };
  const unsigned char* h = bytes_at(0, 24);
  uint32_t magic = 0;
  if (h != nullptr) std::memcpy(&magic, h, 4);
  const bool swapped = magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1;
  auto rd16 = [&](const unsigned char* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return swapped ? __builtin_bswap16(v) : v;
  };
  auto rd32 = [&](const unsigned char* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return swapped ? __builtin_bswap32(v) : v;
  };
  bool ok = h != nullptr && (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d || swapped) && rd16(h + 4) == 2 &&
            rd16(h + 6) >= 3 && snaplen != 0;
  uint64_t packets = 0, bytes = 0, truncated = 0;
  uint32_t max_caplen = 0;
  size_t pos = 24;
  while (ok && pos < size) {
    if (size - pos < 16) { ok = false; break; }
    const unsigned char* r = bytes_at(pos, 16);
    if (r == nullptr) { ok = false; break; }
    const uint32_t caplen = rd32(r + 8), len = rd32(r + 12);
    if (caplen > snaplen || caplen > size - pos - 16) { ok = false; break; }
    ++packets;
    bytes += caplen;
    max_caplen = std::max(max_caplen, caplen);
    truncated += caplen < len;
    pos += 16 + size_t{caplen};
  }
  ::close(fd);
  if (!ok || !io_ok) return false;
  info.packets = packets;
  info.bytes = bytes;
  info.max_caplen = max_caplen;
  info.truncated_by_snaplen = truncated;
  return true;
}

}  // namespace

uint64_t max_flow_records(const CaptureFileInfo& info) {
  if (info.counted) return info.packets;
  // A record that can make a flow: 16-byte header + at least an IPv4 header.
  constexpr uint64_t kSmallestFlowRecord = 16 + 20;
  return info.file_size > 24 ? (info.file_size - 24) / kSmallestFlowRecord : 0;
}

bool compile_capture_filter(const std::string& expr, int dlt, bpf_program& prog, std::string& error) {
  pcap_t* p = pcap_open_dead(dlt, 65535);
  if (p == nullptr) {
    error = "filter: libpcap cannot open a handle for link type " + std::to_string(dlt);
    return false;
  }
  bool ok = pcap_compile(p, &prog, expr.c_str(), 1, PCAP_NETMASK_UNKNOWN) == 0;
  if (!ok) error = "filter '" + expr + "': " + pcap_geterr(p);
  pcap_close(p);
  return ok;
}

std::optional<LinkType> link_type_from_dlt(int dlt) {
  switch (dlt) {
    case DLT_EN10MB: return LinkType::kEthernet;
    case DLT_LINUX_SLL: return LinkType::kLinuxSll;
#ifdef DLT_LINUX_SLL2
    case DLT_LINUX_SLL2: return LinkType::kLinuxSll2;
#endif
    case DLT_NULL: return LinkType::kNull;
    case DLT_LOOP: return LinkType::kLoop;
    case DLT_RAW:
    case 101:  // LINKTYPE_RAW as stored in files; libpcap maps it, be lenient
    case DLT_IPV4:
    case DLT_IPV6: return LinkType::kRaw;
    default: return std::nullopt;
  }
}

std::optional<CaptureFileInfo> probe_capture_file(const std::string& path, std::string& error, bool count) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    error = "cannot open capture file '" + path + "': " + std::strerror(errno);
    return std::nullopt;
  }
  struct stat st {};
  const bool sized = fstat(fileno(f), &st) == 0;
  std::fclose(f);
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  pcap_t* p = pcap_open_offline(path.c_str(), errbuf);
  std::string repaired;
  if (p == nullptr) {
    repaired = repair_swapped_version(path);
    if (!repaired.empty()) p = pcap_open_offline(repaired.c_str(), errbuf);
  }
  if (p == nullptr) {
    if (!repaired.empty()) std::remove(repaired.c_str());
    error = "'" + path + "' is not a capture file libpcap can read (" + errbuf +
            "); expected classic pcap or pcapng";
    return std::nullopt;
  }
  CaptureFileInfo info;
  info.file_size = sized ? static_cast<uint64_t>(st.st_size) : 0;
  info.format = sniff_format(path);
  if (!repaired.empty()) {
    info.repaired_path = repaired;
    info.warning = "'" + path + "': pcap header has its version field in the wrong byte order "
                   "(a known writer bug); reading a repaired copy";
  }
  info.dlt = pcap_datalink(p);
  const char* name = pcap_datalink_val_to_name(info.dlt);
  info.dlt_name = name != nullptr ? name : std::to_string(info.dlt);
  info.snaplen = static_cast<uint32_t>(pcap_snapshot(p));
  auto link = link_type_from_dlt(info.dlt);
  if (!link) {
    pcap_close(p);
    if (!repaired.empty()) std::remove(repaired.c_str());
    error = "'" + path + "': link type " + info.dlt_name + " (" + std::to_string(info.dlt) +
            ") is not supported; supported: EN10MB (Ethernet), LINUX_SLL, LINUX_SLL2, NULL, "
            "LOOP, RAW, IPV4, IPV6";
    return std::nullopt;
  }
  info.link = *link;
  const bool classic = repaired.empty() && info.format.rfind("pcap (", 0) == 0;
  if (classic && !count) {  // the mapped reader counts as it reads (FileSource::read_end)
    info.counted = false;
    pcap_close(p);
    return info;
  }
  if (classic && fast_count_pcap(path, info.snaplen, info)) {
    pcap_close(p);
    return info;
  }
  pcap_pkthdr* hdr = nullptr;
  const u_char* data = nullptr;
  int rc;
  while ((rc = pcap_next_ex(p, &hdr, &data)) == 1) {
    ++info.packets;
    info.bytes += hdr->caplen;
    if (hdr->caplen > info.max_caplen) info.max_caplen = hdr->caplen;
    info.truncated_by_snaplen += hdr->caplen < hdr->len;
  }
  if (rc == PCAP_ERROR) {
    // A record that cannot be read (garbage, or the cut-off end an
    // interrupted tcpdump leaves): net_pcap stops at the same place. Not
    // fatal: the run reads what precedes it, then reports the damage.
    info.damaged = true;
    info.read_error = pcap_geterr(p);
  }
  pcap_close(p);
  return info;
}

}  // namespace spanfeed
