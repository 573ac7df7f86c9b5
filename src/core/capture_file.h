// Capture-file probe: format, link type and packet count of a pcap/pcapng
// file, read with libpcap before the EAL starts. Control core only; allocates.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "spanfeed/packet.h"

struct bpf_program;

namespace spanfeed {

struct CaptureFileInfo {
  std::string format;      // "pcap", "pcap-nsec", "pcap-swapped", "pcapng"...
  LinkType link = LinkType::kEthernet;
  int dlt = 0;             // libpcap DLT_* value as read
  std::string dlt_name;    // e.g. "EN10MB"
  uint64_t file_size = 0;  // bytes
  // False when the records were not counted (probe_capture_file's `count`):
  // packets, bytes, max_caplen and truncated_by_snaplen are then 0 and the
  // reader counts as it reads; `damaged` is only known after the run.
  bool counted = true;
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
};

// Reads the header, then (`count`, or for files only libpcap reads: pcapng,
// a repaired header) the whole file once to count its records. On failure
// returns nullopt and sets `error` to a message naming the file and what
// was found.
std::optional<CaptureFileInfo> probe_capture_file(const std::string& path, std::string& error, bool count = true);

// The records that can make a flow: the count when the file was counted,
// else an upper bound from its size alone (a 16-byte record header and at
// least an IPv4 header each), for sizing tables without reading the file.
uint64_t max_flow_records(const CaptureFileInfo& info);

// Compiles a tcpdump filter expression for link type `dlt` (libpcap). On
// failure returns false with `error` naming the expression and the problem.
// The caller frees `prog` with pcap_freecode.
bool compile_capture_filter(const std::string& expr, int dlt, bpf_program& prog, std::string& error);

// Maps a libpcap DLT value to our link type; nullopt when unsupported.
std::optional<LinkType> link_type_from_dlt(int dlt);

}  // namespace spanfeed
