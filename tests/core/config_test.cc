// Unit tests for YAML config loading and validation: good files load, every
// broken one fails with a message that names the key.
#include "spanfeed/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "decode/decode_config.h"
#include "spanfeed/tcp_reassembly.h"

namespace spanfeed {
namespace {

using ::testing::HasSubstr;

std::string write_tmp(const std::string& body) {
  char name[] = "/tmp/spanfeed-cfg-XXXXXX";
  int fd = mkstemp(name);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(name) << body;
  return name;
}

std::string load_error(const std::string& body) {
  auto path = write_tmp(body);
  Config cfg;
  try {
    load_config_file(path, cfg, decode_config_keys(cfg, path));
    validate_config(cfg);
    validate_flow_config(cfg);
  } catch (const ConfigError& e) {
    std::remove(path.c_str());
    return e.what();
  }
  std::remove(path.c_str());
  return "";
}

TEST(Config, FullFileLoads) {
  auto path = write_tmp(R"(
capture:
  pcap: /data/trace.pcap
  mode: offline
  duration_s: 2.5
lcores:
  rx: 1
  workers: 6
  cpus: [0]
rings:
  size: 1024
  burst: 64
mempool:
  size: 65535
  cache: 128
  data_room: 4096
eal_memory_mb: 1024
flow:
  hash_vlan: false
job: payload-sum
summary_json: /tmp/out.json
log_level: error
)");
  Config cfg;
  load_config_file(path, cfg, decode_config_keys(cfg, path));
  validate_config(cfg);
  std::remove(path.c_str());
  EXPECT_EQ(cfg.pcap_file, "/data/trace.pcap");
  EXPECT_EQ(cfg.mode, RunMode::kOffline);
  EXPECT_DOUBLE_EQ(cfg.duration_s, 2.5);
  EXPECT_EQ(cfg.workers, 6u);
  EXPECT_EQ(cfg.cpus, (std::vector<int>{0}));
  EXPECT_EQ(cfg.ring_size, 1024u);
  EXPECT_EQ(cfg.burst_size, 64u);
  EXPECT_EQ(cfg.mempool_size, 65535u);
  EXPECT_EQ(cfg.mempool_cache, 128u);
  EXPECT_EQ(cfg.mbuf_data_room, 4096u);
  EXPECT_EQ(cfg.eal_memory_mb, 1024u);
  EXPECT_FALSE(cfg.hash_vlan);
  EXPECT_EQ(cfg.summary_json, "/tmp/out.json");
  EXPECT_EQ(cfg.log_level, "error");
  EXPECT_TRUE(cfg.capture_policy().is_lossless());
}

TEST(Config, EmptyFileMeansDefaults) {
  auto path = write_tmp("");
  Config cfg;
  load_config_file(path, cfg, decode_config_keys(cfg, path));
  std::remove(path.c_str());
  EXPECT_EQ(cfg.workers, 2u);
  EXPECT_EQ(cfg.ring_size, 4096u);
}

TEST(Config, ModeFollowsSource) {
  Config cfg;
  cfg.pcap_file = "x.pcap";
  EXPECT_TRUE(cfg.capture_policy().is_lossless());
  cfg.pcap_infinite = true;
  EXPECT_FALSE(cfg.capture_policy().is_lossless());
  cfg.pcap_infinite = false;
  cfg.mode = RunMode::kLive;
  EXPECT_FALSE(cfg.capture_policy().is_lossless());
  Config live;
  live.iface = "eth0";
  EXPECT_FALSE(live.capture_policy().is_lossless());
}

TEST(Config, UnknownKeyNamed) {
  auto e = load_error("capture:\n  pcap: a.pcap\nlcores:\n  wrokers: 3\n");
  EXPECT_THAT(e, HasSubstr("'lcores.wrokers': unknown key"));
  EXPECT_THAT(e, HasSubstr(":4:"));  // the line it is on
  EXPECT_THAT(e, HasSubstr("workers"));  // what was meant is listed
}

TEST(Config, BadValuesNamed) {
  EXPECT_THAT(load_error("capture: {pcap: a.pcap}\nrings: {size: 1000}\n"),
              HasSubstr("power of two"));
  EXPECT_THAT(load_error("capture: {pcap: a.pcap}\nlcores: {workers: 0}\n"),
              HasSubstr("'lcores.workers': must be between 1 and 256"));
  EXPECT_THAT(load_error("capture: {pcap: a.pcap}\nlcores: {workers: many}\n"),
              HasSubstr("'lcores.workers': cannot read 'many'"));
  EXPECT_THAT(load_error("capture: {pcap: a.pcap, mode: fast}\n"),
              HasSubstr("'capture.mode': mode must be auto, offline or live"));
  EXPECT_THAT(load_error("capture: {pcap: a.pcap}\njob: count\n"), HasSubstr("unknown job 'count'"));
  EXPECT_THAT(load_error("capture: {pcap: a.pcap}\nmempool: {cache: 9000}\n"),
              HasSubstr("'mempool.cache'"));
  EXPECT_THAT(load_error("capture: {pcap: a.pcap}\nlcores: {cpus: 3}\n"),
              HasSubstr("'lcores.cpus': expected a list"));
  EXPECT_THAT(load_error("capture: {pcap: a.pcap}\nlog_level: loud\n"), HasSubstr("log_level"));
  EXPECT_THAT(load_error("capture: {pcap: a.pcap}\nrings: {size: 64, burst: 128}\n"),
              HasSubstr("must not exceed rings.size"));
}

TEST(Config, CpusMustExist) {
  EXPECT_THAT(load_error("capture: {pcap: a.pcap}\nlcores: {cpus: [0, 4095]}\n"),
              HasSubstr("lcores.cpus: CPU 4095 does not exist or is not allowed"));
}

TEST(Config, SourceRules) {
  EXPECT_THAT(load_error("lcores: {workers: 2}\n"), HasSubstr("no capture source"));
  EXPECT_THAT(load_error("capture: {pcap: a.pcap, iface: eth0}\n"), HasSubstr("not both"));
  EXPECT_EQ(load_error("capture: {eal: '--vdev net_ring0'}\n"), "");
}

TEST(Config, SyntaxErrorHasLine) {
  auto e = load_error("capture:\n  pcap: [unclosed\n");
  EXPECT_THAT(e, HasSubstr("YAML syntax error"));
}

TEST(Config, KeyGivenTwiceNamesBothLines) {
  EXPECT_THAT(load_error("capture: {pcap: a.pcap}\nworkers: 1\njob: flows\njob: records\n"),
              HasSubstr(":4: 'job': key given twice (lines 3 and 4)"));
  EXPECT_THAT(load_error("capture:\n  pcap: a.pcap\nlcores:\n  workers: 1\n  workers: 2\n"),
              HasSubstr(":5: 'lcores.workers': key given twice (lines 4 and 5)"));
  // inside a list item, and as a flow mapping
  EXPECT_THAT(load_error("capture: {pcap: a.pcap}\noutputs: [{a: 1, a: 2}]\n"),
              HasSubstr("'outputs[0].a': key given twice"));
  // the same key in two different mappings is fine
  EXPECT_EQ(load_error("capture: {pcap: a.pcap}\nlcores: {workers: 1}\nflow: {capacity: 1024}\n"
                       "reassembly: {memory_mb: 8}\n"), "");
}

// decode.ports and decode.<protocol>: the registry's keys (decode_config_keys), with file, line and key.
TEST(Config, DecodeRegistryKeys) {
  EXPECT_THAT(load_error("capture: {pcap: a.pcap}\ndecode:\n  ports:\n    gopher: [70]\n"),
              HasSubstr(":4: 'decode.ports.gopher': unknown protocol (known: http, "));
  EXPECT_THAT(load_error("capture: {pcap: a.pcap}\ndecode:\n  ports:\n    http: [70000]\n"),
              HasSubstr(":4: 'decode.ports.http': ports are 1-65535"));
  EXPECT_THAT(load_error("capture: {pcap: a.pcap}\ndecode:\n  redis:\n    key_max: 9999\n"),
              HasSubstr("'decode.redis.key_max': must be in [1, 512]"));
  EXPECT_THAT(load_error("capture: {pcap: a.pcap}\ndecode:\n  portz: {}\n"),
              HasSubstr("'decode.portz': unknown key (known here: "));
  EXPECT_EQ(load_error("capture: {pcap: a.pcap}\ndecode:\n  ports:\n    redis: [6380]\n  redis:\n    key_max: 64\n"), "");
}

TEST(Config, MempoolTooSmallNamed) {
  EXPECT_THAT(load_error("capture: {pcap: a.pcap}\nmempool: {size: 100}\n"),
              HasSubstr("mempool.size (--mempool-size) 100 is too small"));
  Config cfg;
  cfg.pcap_file = "a.pcap";
  cfg.mempool_size = static_cast<uint32_t>(minimum_mempool_size(cfg));
  EXPECT_NO_THROW(validate_config(cfg));
  cfg.mempool_size -= 1;
  EXPECT_THROW(validate_config(cfg), ConfigError);
}

TEST(Config, MissingFile) {
  Config cfg;
  try {
    load_config_file("/nonexistent/spanfeed.yaml", cfg);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/spanfeed.yaml: cannot open"));
  }
}

TEST(Config, RelativePathsNameFilesBesideTheConfig) {
  // write_tmp puts the file in /tmp: relative paths resolve there.
  auto path = write_tmp(
      "capture:\n  pcap: traces/a.pcap\n"
      "rules:\n  file: rules.yaml\n"
      "outputs: ['jsonl:out.jsonl', 'jsonl:-', 'jsonl:/var/log/x.jsonl', 'kafka:b:9092/t']\n"
      "summary_json: s.json\n");
  Config cfg;
  load_config_file(path, cfg, decode_config_keys(cfg, path));
  std::remove(path.c_str());
  EXPECT_EQ(cfg.pcap_file, "/tmp/traces/a.pcap");
  EXPECT_EQ(cfg.rules_file, "/tmp/rules.yaml");
  EXPECT_EQ(cfg.summary_json, "/tmp/s.json");
  EXPECT_THAT(cfg.outputs, ::testing::ElementsAre("jsonl:/tmp/out.jsonl", "jsonl:-",
                                                  "jsonl:/var/log/x.jsonl", "kafka:b:9092/t"));
}

TEST(Config, RecordsIsTheDefaultJob) {
  Config cfg;
  EXPECT_EQ(cfg.job, JobKind::kRecords);
}

}  // namespace
}  // namespace spanfeed

namespace spanfeed {
namespace {

TEST(Config, DecapAndFragmentKeys) {
  auto path = write_tmp(
      "capture:\n  filter_on: inner\n"
      "decap:\n  enabled: true\n  max_depth: 5\n  vxlan_ports: [4789, 8472]\n  vxlan_gpe_ports: [4790]\n"
      "  geneve_ports: [6081, 6082]\n  flow_key: false\n  records: true\n"
      "ip_fragments:\n  reassemble: false\n  max_datagrams: 64\n  timeout_s: 0.5\n");
  Config cfg;
  load_config_file(path, cfg, decode_config_keys(cfg, path));
  std::remove(path.c_str());
  EXPECT_TRUE(cfg.filter_inner);
  EXPECT_EQ(cfg.decap.max_depth, 5);
  EXPECT_EQ(cfg.decap.vxlan_ports[0], 4789);
  EXPECT_EQ(cfg.decap.vxlan_ports[1], 8472);
  EXPECT_EQ(cfg.decap.vxlan_ports[2], 0);
  EXPECT_EQ(cfg.decap.geneve_ports[1], 6082);
  EXPECT_FALSE(cfg.decap.tunnel_in_flow_key);
  EXPECT_TRUE(cfg.tunnel_in_records);
  EXPECT_FALSE(cfg.defrag);
  EXPECT_EQ(cfg.defrag_max_datagrams, 64u);
  EXPECT_DOUBLE_EQ(cfg.defrag_timeout_s, 0.5);
  Config d;  // the defaults
  EXPECT_TRUE(d.decap.enabled);
  EXPECT_EQ(d.decap.max_depth, 3);
  EXPECT_TRUE(d.decap.tunnel_in_flow_key);
  EXPECT_FALSE(d.tunnel_in_records);
  EXPECT_FALSE(d.filter_inner);
  EXPECT_TRUE(d.defrag);
}

TEST(Config, BadDecapAndFragmentValuesNamed) {
  EXPECT_THAT(load_error("decap:\n  max_depth: 9\n"), HasSubstr("'decap.max_depth': must be between 1 and 8"));
  EXPECT_THAT(load_error("decap:\n  max_depth: 0\n"), HasSubstr("decap.max_depth"));
  EXPECT_THAT(load_error("decap:\n  vxlan_ports: [70000]\n"), HasSubstr("'decap.vxlan_ports': must be between 1 and 65535"));
  EXPECT_THAT(load_error("decap:\n  vxlan_ports: []\n"), HasSubstr("list of 1 to 8 UDP ports"));
  EXPECT_THAT(load_error("decap:\n  vxlan_ports: 4789\n"), HasSubstr("list of 1 to 8 UDP ports"));
  EXPECT_THAT(load_error("decap:\n  geneve_ports: [4789]\n"),
              HasSubstr("UDP port 4789 is listed for both vxlan_ports and geneve_ports"));
  EXPECT_THAT(load_error("decap:\n  tunnels: yes\n"), HasSubstr("'decap.tunnels': unknown key"));
  EXPECT_THAT(load_error("capture:\n  filter_on: both\n"), HasSubstr("must be outer"));
  EXPECT_THAT(load_error("ip_fragments:\n  timeout_s: 0\n"), HasSubstr("'ip_fragments.timeout_s'"));
  EXPECT_THAT(load_error("ip_fragments:\n  max_datagrams: 0\n"), HasSubstr("'ip_fragments.max_datagrams'"));
}

}  // namespace
}  // namespace spanfeed
