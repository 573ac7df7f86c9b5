// Offline replay of a capture file through parse -> Reassembler -> RecordBuilder (tests, tools, benches).
// Runs on the calling thread with no EAL; allocates the pipeline objects once per call.
#include "decode/pcap_replay.h"

#include <pcap/pcap.h>

#include <cstdio>
#include <functional>
#include <memory>

#include "core/capture_file.h"
#include "spanfeed/config.h"
#include "spanfeed/packet.h"

namespace spanfeed {

ReassemblerConfig offline_reassembler_config() {
  ReassemblerConfig c;
  c.table.capacity = 4096;
  c.reassembly.memory_cap_bytes = 16u << 20;
  // The ack hold as a run with the default config has it: records as spanfeed makes them.
  const ReassemblerConfig run = reassembler_config(Config{});
  c.reassembly.ack_hold_ns = run.reassembly.ack_hold_ns;
  c.reassembly.ack_hold_bytes = run.reassembly.ack_hold_bytes;
  return c;
}

DecodeConfig offline_decode_config() {
  DecodeConfig d;
  d.flow_capacity = offline_reassembler_config().table.capacity;
  d.message_pool_size = 4096;
  d.carry_buffer_count = 256;
  return d;
}

namespace {

// Reads every frame of `path` into `reasm`; `after` runs after each frame with
// the newest capture time. Returns false with `error` set when unreadable.
bool run_frames(const std::string& path, Reassembler& reasm, ReplayStats& st,
                const std::function<void(uint64_t)>& after, std::string* error) {
  // The probe repairs headers libpcap refuses (byte-swapped version field)
  // into a temporary copy; read that one instead and remove it afterwards.
  std::string probe_error;
  const auto info = probe_capture_file(path, probe_error);
  if (!info) {
    if (error != nullptr) *error = probe_error;
    return false;
  }
  const std::string read_path = info->repaired_path.empty() ? path : info->repaired_path;
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* pc = pcap_open_offline_with_tstamp_precision(read_path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (!info->repaired_path.empty()) std::remove(info->repaired_path.c_str());  // libpcap holds it open
  if (pc == nullptr) {
    if (error != nullptr) *error = path + ": " + errbuf;
    return false;
  }
  const auto link = link_type_from_dlt(pcap_datalink(pc));
  if (!link) {
    if (error != nullptr) *error = path + ": unsupported link type " + std::to_string(pcap_datalink(pc));
    pcap_close(pc);
    return false;
  }
  pcap_pkthdr* h = nullptr;
  const u_char* data = nullptr;
  int rc;
  while ((rc = pcap_next_ex(pc, &h, &data)) == 1) {
    ++st.frames;
    // nanosecond precision was requested: tv_usec holds nanoseconds
    const uint64_t ts = static_cast<uint64_t>(h->ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(h->ts.tv_usec);
    st.last_ts_ns = ts > st.last_ts_ns ? ts : st.last_ts_ns;
    std::span<const std::byte> frame(reinterpret_cast<const std::byte*>(data), h->caplen);
    ParsedPacket p{};
    if (parse_packet(frame, *link, p) != ParseOutcome::kOk) {
      ++st.not_parsed;
      continue;
    }
    ++st.parsed;
    reasm.process(frame, p, ts);
    if (after) after(st.last_ts_ns);
  }
  pcap_close(pc);
  if (rc == -1 && error != nullptr) *error = path + ": read error";
  reasm.finish(st.last_ts_ns);
  st.reassembly = reasm.counters();
  return true;
}

}  // namespace

bool replay_pcap(const std::string& path, const ReassemblerConfig& rcfg, const DecodeConfig& dcfg, RecordSink& sink,
                 ReplayStats* stats, std::string* error) {
  DecodeConfig d = dcfg;
  if (d.flow_capacity < rcfg.table.capacity) d.flow_capacity = rcfg.table.capacity;
  auto builder = std::make_unique<RecordBuilder>(d, sink);
  auto reasm = std::make_unique<Reassembler>(rcfg, *builder);
  ReplayStats st;
  RecordBuilder* b = builder.get();
  if (!run_frames(path, *reasm, st, [b](uint64_t now) { b->advance_time(now); }, error)) return false;
  builder->finish(st.last_ts_ns);
  st.decode = builder->counters();
  if (stats != nullptr) *stats = st;
  return true;
}

bool replay_pcap_streams(const std::string& path, const ReassemblerConfig& rcfg, StreamConsumer& consumer,
                         ReplayStats* stats, std::string* error) {
  auto reasm = std::make_unique<Reassembler>(rcfg, consumer);
  ReplayStats st;
  if (!run_frames(path, *reasm, st, nullptr, error)) return false;
  if (stats != nullptr) *stats = st;
  return true;
}

}  // namespace spanfeed
