// The testpmd output parsers, on transcripts captured from real runs of
// `vireo bench loopback --peer dpdk --transcript FILE` (testpmd's stdout, then its stderr).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "bench/testpmd.hpp"

namespace vireo::bench {
namespace {

std::string load(const std::string& name) {
  std::ifstream in(std::string(VIREO_BENCH_TEST_DATA) + "/" + name);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The output of each command in a transcript: the text between one prompt and the next.
std::vector<std::string> outputs_of(const std::string& transcript, const std::string& command) {
  std::vector<std::string> out;
  for (std::size_t at = transcript.find("testpmd> " + command); at != std::string::npos;
       at = transcript.find("testpmd> " + command, at + 1)) {
    std::size_t end = transcript.find("testpmd> ", at + 9);
    out.push_back(transcript.substr(at, end == std::string::npos ? std::string::npos : end - at));
  }
  return out;
}

TEST(TestpmdParser, PortStatsOfASplitRun) {
  std::string t = load("testpmd_split_64.txt");
  ASSERT_FALSE(t.empty()) << "captured transcript missing";
  auto shows = outputs_of(t, "show port stats all");
  ASSERT_EQ(shows.size(), 2u);
  auto before = parse_port_stats(shows[0]);
  auto after = parse_port_stats(shows[1]);
  ASSERT_EQ(before.size(), 2u);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(before[0].port, 0);
  EXPECT_EQ(before[1].port, 1);
  EXPECT_EQ(before[0].rx_packets, 1422080u);
  EXPECT_EQ(after[0].rx_packets, 4577184u);
  EXPECT_EQ(after[1].rx_packets, 4577184u);
  EXPECT_EQ(after[0].rx_missed, 0u);
  EXPECT_GT(after[0].tx_packets, after[0].rx_packets - 1000);
  EXPECT_EQ(before[0].rx_pps, 0u);
  EXPECT_EQ(after[0].rx_pps, 3104222u);
  EXPECT_EQ(after[1].rx_pps, 3103909u);
}

TEST(TestpmdParser, PortStatsOfAPacked1518Run) {
  auto shows = outputs_of(load("testpmd_packed_1518.txt"), "show port stats all");
  ASSERT_EQ(shows.size(), 2u);
  auto after = parse_port_stats(shows[1]);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].rx_packets, 2904768u);
  EXPECT_EQ(after[1].rx_packets, 2904832u);
  EXPECT_EQ(after[1].rx_pps, 2209595u);
}

TEST(TestpmdParser, ForwardStatisticsAreNotPortStats) {
  // `stop` prints "Forward statistics for port N" blocks with RX-packets too; they are not read.
  auto stops = outputs_of(load("testpmd_split_64.txt"), "stop");
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_NE(stops[0].find("Forward statistics"), std::string::npos);
  EXPECT_TRUE(parse_port_stats(stops[0]).empty());
}

TEST(TestpmdParser, AttachedPort) {
  auto attach = outputs_of(load("testpmd_split_64.txt"), "port attach");
  ASSERT_EQ(attach.size(), 1u);
  EXPECT_EQ(parse_attached_port(attach[0]), std::optional<std::uint16_t>(1));
  EXPECT_FALSE(parse_attached_port("Failed to attach port net_virtio_user0\n").has_value());
  EXPECT_FALSE(parse_attached_port("Port 70000 is attached.").has_value());
}

TEST(TestpmdParser, NegotiatedFeaturesTellTheLayout) {
  auto split = parse_negotiated_features(load("testpmd_split_64.txt"));
  auto packed = parse_negotiated_features(load("testpmd_packed_1518.txt"));
  ASSERT_TRUE(split && packed);
  EXPECT_EQ(*split, 0x950008000u);
  EXPECT_EQ(*packed, 0xd50008000u);
  EXPECT_EQ(*packed & (1ull << 34), 1ull << 34);  // VIRTIO_F_RING_PACKED
  EXPECT_EQ(*split & (1ull << 29), 0u);           // virtio-user never negotiates EVENT_IDX
  EXPECT_FALSE(parse_negotiated_features("negotiated Virtio features: 0x").has_value());
  EXPECT_FALSE(parse_negotiated_features("nothing here").has_value());
}

TEST(TestpmdParser, TruncatedOrGarbledBlocksAreDropped) {
  EXPECT_TRUE(parse_port_stats("").empty());
  EXPECT_TRUE(parse_port_stats("NIC statistics for port 0\n  RX-packets: x\n").empty());
  EXPECT_TRUE(parse_port_stats("NIC statistics for port 0\n  RX-packets: 5\n").empty());  // no TX line
  auto one = parse_port_stats("NIC statistics for port 3 ##\n RX-packets: 5 RX-missed: 1\n TX-packets: 7\n");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].port, 3);
  EXPECT_EQ(one[0].rx_packets, 5u);
  EXPECT_EQ(one[0].rx_missed, 1u);
  EXPECT_EQ(one[0].tx_packets, 7u);
}

}  // namespace
}  // namespace vireo::bench
