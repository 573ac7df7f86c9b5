// Unit tests for the capture-file probe: formats, link types, clear errors.
#include "core/capture_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace spanfeed {
namespace {

using ::testing::HasSubstr;

std::string data(const std::string& rel) { return std::string(SPANFEED_TEST_DATA) + "/" + rel; }

TEST(CaptureFile, ClassicEthernet) {
  std::string err;
  auto info = probe_capture_file(data("pcaps/mysql/171-mysql.pcap"), err);
  ASSERT_TRUE(info) << err;
  EXPECT_EQ(info->link, LinkType::kEthernet);
  EXPECT_EQ(info->packets, 1040u);
  EXPECT_EQ(info->dlt_name, "EN10MB");
  EXPECT_TRUE(info->repaired_path.empty());
}

TEST(CaptureFile, NanosecondPcap) {
  std::string err;
  auto info = probe_capture_file(data("pcaps/kafka/01-fetch-v12-unknown.pcap"), err);
  ASSERT_TRUE(info) << err;
  EXPECT_EQ(info->packets, 2u);
  EXPECT_THAT(info->format, HasSubstr("ns"));
}

TEST(CaptureFile, SwappedVersionHeaderIsRepaired) {
  std::string err;
  auto info = probe_capture_file(data("pcaps/memcached/memcached-userdata.pcap"), err);
  ASSERT_TRUE(info) << err;
  EXPECT_EQ(info->packets, 20421u);
  ASSERT_FALSE(info->repaired_path.empty());
  EXPECT_THAT(info->warning, HasSubstr("wrong byte order"));
  std::string err2;
  auto again = probe_capture_file(info->repaired_path, err2);
  ASSERT_TRUE(again) << err2;
  EXPECT_TRUE(again->repaired_path.empty()) << "the copy needs no repair";
  EXPECT_EQ(again->packets, 20421u);
  std::remove(info->repaired_path.c_str());
}

TEST(CaptureFile, NotACapture) {
  char name[] = "/tmp/spanfeed-notpcap-XXXXXX";
  int fd = mkstemp(name);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(name) << "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
  std::string err;
  EXPECT_FALSE(probe_capture_file(name, err));
  EXPECT_THAT(err, HasSubstr(name));
  EXPECT_THAT(err, HasSubstr("not a capture file"));
  std::remove(name);
}

TEST(CaptureFile, MissingFile) {
  std::string err;
  EXPECT_FALSE(probe_capture_file("/nonexistent/x.pcap", err));
  EXPECT_THAT(err, HasSubstr("cannot open capture file '/nonexistent/x.pcap'"));
}

TEST(CaptureFile, DltMapping) {
  EXPECT_EQ(link_type_from_dlt(1), LinkType::kEthernet);
  EXPECT_EQ(link_type_from_dlt(113), LinkType::kLinuxSll);
  EXPECT_EQ(link_type_from_dlt(276), LinkType::kLinuxSll2);
  EXPECT_EQ(link_type_from_dlt(0), LinkType::kNull);
  EXPECT_EQ(link_type_from_dlt(108), LinkType::kLoop);
  EXPECT_EQ(link_type_from_dlt(12), LinkType::kRaw);
  EXPECT_EQ(link_type_from_dlt(228), LinkType::kRaw);
  EXPECT_EQ(link_type_from_dlt(229), LinkType::kRaw);
  EXPECT_FALSE(link_type_from_dlt(105));  // 802.11
  EXPECT_FALSE(link_type_from_dlt(147));  // USER0
}

}  // namespace
}  // namespace spanfeed
