// responder=IP: the guest ARPs for and pings the port; replies checked field by field, with
// their checksums recomputed independently.
#include <gtest/gtest.h>

#include <cstring>

#include "device/net/packet.hpp"
#include "device/net/ports.hpp"
#include "tests/net/net_harness.hpp"

namespace vireo::test {
namespace {

using namespace device::net;

constexpr std::uint8_t kGuestMac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr std::uint8_t kGuestIp[4] = {10, 0, 0, 2};
constexpr std::uint8_t kPortIp[4] = {10, 0, 0, 1};

std::vector<std::uint8_t> arp_request(const std::uint8_t target[4]) {
  std::vector<std::uint8_t> f(42, 0);
  std::memset(f.data(), 0xFF, 6);  // broadcast
  std::memcpy(f.data() + 6, kGuestMac, 6);
  store_be16(f.data() + 12, kEtherTypeArp);
  std::uint8_t* a = f.data() + 14;
  store_be16(a, 1);
  store_be16(a + 2, kEtherTypeIpv4);
  a[4] = 6;
  a[5] = 4;
  store_be16(a + 6, 1);  // request
  std::memcpy(a + 8, kGuestMac, 6);
  std::memcpy(a + 14, kGuestIp, 4);
  std::memcpy(a + 24, target, 4);
  return f;
}

std::vector<std::uint8_t> echo_request(std::uint16_t id, std::uint16_t seq, std::uint32_t data_len,
                                       bool corrupt = false) {
  const std::uint32_t ip_len = 20 + 8 + data_len;
  std::vector<std::uint8_t> f(14 + ip_len, 0);
  std::memcpy(f.data(), kPortMac.data(), 6);
  std::memcpy(f.data() + 6, kGuestMac, 6);
  store_be16(f.data() + 12, kEtherTypeIpv4);
  std::uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  store_be16(ip + 2, static_cast<std::uint16_t>(ip_len));
  store_be16(ip + 4, 0x1234);
  store_be16(ip + 6, 0x4000);  // DF, not a fragment
  ip[8] = 63;
  ip[9] = kIpProtoIcmp;
  std::memcpy(ip + 12, kGuestIp, 4);
  std::memcpy(ip + 16, kPortIp, 4);
  store_be16(ip + 10, inet_checksum(ip, 20));
  std::uint8_t* icmp = ip + 20;
  icmp[0] = 8;
  store_be16(icmp + 4, id);
  store_be16(icmp + 6, seq);
  for (std::uint32_t i = 0; i < data_len; ++i) icmp[8 + i] = static_cast<std::uint8_t>(i * 3 + 1);
  store_be16(icmp + 2, inet_checksum(icmp, 8 + data_len));
  if (corrupt) icmp[8] ^= 0xFF;
  return f;
}

template <class Cfg>
class ResponderTest : public ::testing::Test {
 protected:
  NetGuest guest_{options_for<Cfg>(), std::make_unique<ResponderPort>(std::array<std::uint8_t, 4>{10, 0, 0, 1})};
};
TYPED_TEST_SUITE(ResponderTest, NetConfigs, NetCfgName);

TYPED_TEST(ResponderTest, AnswersArpRequestForItsAddress) {
  NetGuest& g = this->guest_;
  g.post_rx(0, 4, 2048);
  const std::uint8_t other[4] = {10, 0, 0, 9};
  g.send(0, arp_request(other));  // not ours: no answer
  g.send(0, arp_request(kPortIp));
  g.kick_tx(0);
  EXPECT_EQ(g.reap_tx(0), 2u);
  const std::vector<NetGuest::Rx> got = g.receive(0);
  ASSERT_EQ(got.size(), 1u);
  const std::uint8_t* f = got[0].frame.data();
  ASSERT_EQ(got[0].frame.size(), 60u);  // padded to the Ethernet minimum
  EXPECT_EQ(std::memcmp(f, kGuestMac, 6), 0);
  EXPECT_EQ(std::memcmp(f + 6, kPortMac.data(), 6), 0);
  EXPECT_EQ(load_be16(f + 12), kEtherTypeArp);
  const std::uint8_t* a = f + 14;
  EXPECT_EQ(load_be16(a), 1);
  EXPECT_EQ(load_be16(a + 2), kEtherTypeIpv4);
  EXPECT_EQ(load_be16(a + 6), 2);  // reply
  EXPECT_EQ(std::memcmp(a + 8, kPortMac.data(), 6), 0);
  EXPECT_EQ(std::memcmp(a + 14, kPortIp, 4), 0);
  EXPECT_EQ(std::memcmp(a + 18, kGuestMac, 6), 0);
  EXPECT_EQ(std::memcmp(a + 24, kGuestIp, 4), 0);
}

TYPED_TEST(ResponderTest, AnswersEchoRequestWithCorrectChecksums) {
  NetGuest& g = this->guest_;
  g.post_rx(0, 4, 2048);
  const std::vector<std::uint8_t> req = echo_request(0xBEEF, 7, 56);
  g.send(0, req, {}, 3);  // split across descriptors: the port copies it out once
  g.kick_tx(0);
  const std::vector<NetGuest::Rx> got = g.receive(0);
  ASSERT_EQ(got.size(), 1u);
  const std::vector<std::uint8_t>& r = got[0].frame;
  ASSERT_EQ(r.size(), req.size());
  EXPECT_EQ(std::memcmp(r.data(), kGuestMac, 6), 0);
  EXPECT_EQ(std::memcmp(r.data() + 6, kPortMac.data(), 6), 0);
  const std::uint8_t* ip = r.data() + 14;
  EXPECT_EQ(inet_checksum(ip, 20), 0) << "IPv4 header checksum";
  EXPECT_EQ(std::memcmp(ip + 12, kPortIp, 4), 0);
  EXPECT_EQ(std::memcmp(ip + 16, kGuestIp, 4), 0);
  EXPECT_EQ(ip[9], kIpProtoIcmp);
  const std::uint8_t* icmp = ip + 20;
  EXPECT_EQ(icmp[0], 0);  // echo reply
  EXPECT_EQ(icmp[1], 0);
  EXPECT_EQ(inet_checksum(icmp, 8 + 56), 0) << "ICMP checksum";
  EXPECT_EQ(load_be16(icmp + 4), 0xBEEF);
  EXPECT_EQ(load_be16(icmp + 6), 7);
  EXPECT_EQ(std::memcmp(icmp + 8, req.data() + 14 + 28, 56), 0) << "echo data";
  // The checksum field itself, against a hand computation of RFC 1071 over the reply.
  std::vector<std::uint8_t> copy(icmp, icmp + 64);
  store_be16(copy.data() + 2, 0);
  EXPECT_EQ(load_be16(icmp + 2), inet_checksum(copy.data(), copy.size()));
}

TYPED_TEST(ResponderTest, IgnoresCorruptAndForeignRequests) {
  NetGuest& g = this->guest_;
  g.post_rx(0, 4, 2048);
  g.send(0, echo_request(1, 1, 32, /*corrupt=*/true));
  std::vector<std::uint8_t> other = echo_request(1, 2, 32);
  other[14 + 19] = 99;  // another destination address (header checksum now wrong too)
  g.send(0, other);
  std::vector<std::uint8_t> udp(60, 0);
  store_be16(udp.data() + 12, 0x86DD);  // IPv6: not answered
  g.send(0, udp);
  g.kick_tx(0);
  EXPECT_EQ(g.reap_tx(0), 3u);
  EXPECT_TRUE(g.receive(0).empty());
}

TYPED_TEST(ResponderTest, RepliesWaitForReceiveBuffers) {
  NetGuest& g = this->guest_;
  for (std::uint16_t s = 0; s < 5; ++s) g.send(0, echo_request(9, s, 16));
  g.kick_tx(0);
  EXPECT_EQ(g.reap_tx(0), 5u);  // requests are consumed at once; replies queue in the port
  EXPECT_TRUE(g.receive(0).empty());
  g.post_rx(0, 3, 2048);
  g.kick_rx(0);
  std::vector<NetGuest::Rx> got = g.receive(0);
  EXPECT_EQ(got.size(), 3u);
  g.post_rx(0, 8, 2048);
  g.kick_rx(0);
  for (NetGuest::Rx& r : g.receive(0)) got.push_back(std::move(r));
  ASSERT_EQ(got.size(), 5u);
  for (std::uint16_t s = 0; s < 5; ++s) EXPECT_EQ(load_be16(got[s].frame.data() + 14 + 20 + 6), s);
}

}  // namespace
}  // namespace vireo::test
