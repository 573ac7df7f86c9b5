// Capture-file probe: format, link type and packet count of a pcap/pcapng
// file, read with libpcap before the EAL starts. Control core only; allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "spanfeed/packet.h"

struct bpf_program;

namespace spanfeed {

// A capture file mapped read-only (MAP_PRIVATE), unmapped with its last
// owner. The probe counts a classic pcap file's records in it and hands it
// on: the engine's reader (src/dpdk/file_source.cc) reads the same mapping,
// so no page of the file is mapped twice.
class MappedFile {
 public:
  MappedFile(const std::byte* data, size_t size) : data_(data), size_(size) {}
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const std::byte* data_;
  size_t size_;
};

struct CaptureFileInfo {
  std::string format;      // "pcap", "pcap-nsec", "pcap-swapped", "pcapng"...
  LinkType link = LinkType::kEthernet;
  int dlt = 0;             // libpcap DLT_* value as read
  std::string dlt_name;    // e.g. "EN10MB"
  uint64_t packets = 0;    // records in the file
  uint64_t bytes = 0;      // sum of captured lengths
  uint32_t max_caplen = 0; // largest captured length of one record
  uint32_t snaplen = 0;
  uint64_t truncated_by_snaplen = 0;  // records captured shorter than their wire length
  // A record libpcap could not read (bad length, cut-off end): `packets`
  // counts the records before it, the rest of the file is never read.
  bool damaged = false;
  std::string read_error;
  // Set when the file's header had to be repaired to be readable (a classic
  // pcap whose version field was written in the wrong byte order): the path
  // of the repaired temporary copy to read instead. The caller removes it.
  std::string repaired_path;
  std::string warning;  // what was repaired, for the operator
  // The mapping the records were counted in (classic pcap files that read
  // clean); null when libpcap counted them.
  std::shared_ptr<const MappedFile> mapping;
};

// Reads the whole file once. On failure returns nullopt and sets `error` to a
// message naming the file and what was found.
std::optional<CaptureFileInfo> probe_capture_file(const std::string& path, std::string& error);

// Compiles a tcpdump filter expression for link type `dlt` (libpcap). On
// failure returns false with `error` naming the expression and the problem.
// The caller frees `prog` with pcap_freecode.
bool compile_capture_filter(const std::string& expr, int dlt, bpf_program& prog, std::string& error);

// Maps a libpcap DLT value to our link type; nullopt when unsupported.
std::optional<LinkType> link_type_from_dlt(int dlt);

}  // namespace spanfeed
