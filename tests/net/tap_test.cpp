// tap:IFNAME against a real Linux TAP device in a private network namespace: the guest ARPs for
// and pings the host's address on the tap, and the kernel's answers come back through the
// device's receive queue (readv straight into guest buffers). Exits 77 (meson: skipped) with a
// reason when no network namespace or /dev/net/tun is available.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>

#include "device/net/packet.hpp"
#include "device/net/tap_port.hpp"
#include "tests/net/net_harness.hpp"

namespace vireo::test {
namespace {

using namespace device::net;

constexpr const char* kTap = "vtap0";
constexpr std::uint8_t kGuestMac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr std::uint8_t kGuestIp[4] = {10, 9, 0, 2};
constexpr std::uint8_t kHostIp[4] = {10, 9, 0, 1};

void write_file(const char* path, const char* text) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  [[maybe_unused]] ssize_t n = ::write(fd, text, std::strlen(text));
  ::close(fd);
}

// 10.9.0.1/24 on the tap (SIOCSIFADDR / SIOCSIFNETMASK).
bool set_host_address() {
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, kTap, IFNAMSIZ - 1);
  auto* a = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
  a->sin_family = AF_INET;
  std::memcpy(&a->sin_addr, kHostIp, 4);
  bool ok = ::ioctl(s, SIOCSIFADDR, &ifr) == 0;
  const std::uint8_t mask[4] = {255, 255, 255, 0};
  std::memcpy(&a->sin_addr, mask, 4);
  ok = ok && ::ioctl(s, SIOCSIFNETMASK, &ifr) == 0;
  ::close(s);
  return ok;
}

std::vector<std::uint8_t> arp_request() {
  std::vector<std::uint8_t> f(42, 0);
  std::memset(f.data(), 0xFF, 6);
  std::memcpy(f.data() + 6, kGuestMac, 6);
  store_be16(f.data() + 12, kEtherTypeArp);
  std::uint8_t* a = f.data() + 14;
  store_be16(a, 1);
  store_be16(a + 2, kEtherTypeIpv4);
  a[4] = 6;
  a[5] = 4;
  store_be16(a + 6, 1);
  std::memcpy(a + 8, kGuestMac, 6);
  std::memcpy(a + 14, kGuestIp, 4);
  std::memcpy(a + 24, kHostIp, 4);
  return f;
}

std::vector<std::uint8_t> echo_request(const std::uint8_t* host_mac, std::uint16_t seq) {
  std::vector<std::uint8_t> f(14 + 20 + 8 + 32, 0);
  std::memcpy(f.data(), host_mac, 6);
  std::memcpy(f.data() + 6, kGuestMac, 6);
  store_be16(f.data() + 12, kEtherTypeIpv4);
  std::uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  store_be16(ip + 2, 20 + 8 + 32);
  ip[8] = 64;
  ip[9] = kIpProtoIcmp;
  std::memcpy(ip + 12, kGuestIp, 4);
  std::memcpy(ip + 16, kHostIp, 4);
  store_be16(ip + 10, inet_checksum(ip, 20));
  std::uint8_t* icmp = ip + 20;
  icmp[0] = 8;
  store_be16(icmp + 4, 0x7777);
  store_be16(icmp + 6, seq);
  for (int i = 0; i < 32; ++i) icmp[8 + i] = static_cast<std::uint8_t>(i);
  store_be16(icmp + 2, inet_checksum(icmp, 40));
  return f;
}

class TapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // No IPv6 chatter (router solicitations, MLD) on the fresh interface.
    write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
    write_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
  }

  // Polls the tap fd and feeds the device until a received frame satisfies `want` (2 s).
  std::optional<std::vector<std::uint8_t>> wait_for(
      NetGuest& g, const std::function<bool(const std::vector<std::uint8_t>&)>& want) {
    const int fd = g.dev.completion_fd(g.vq(g.rx(0)));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) g.dev.complete(g.vq(g.rx(0)));
      for (NetGuest::Rx& r : g.receive(0))
        if (want(r.frame)) return std::move(r.frame);
    }
    return std::nullopt;
  }
};

TEST_F(TapTest, GuestArpsAndPingsTheHostThroughTheTap) {
  NetGuest g(GuestOptions{}, std::make_unique<TapPort>(kTap));
  ASSERT_TRUE(set_host_address()) << "cannot give the tap an address: " << std::strerror(errno);
  const int fd = g.dev.completion_fd(g.vq(g.rx(0)));
  ASSERT_GE(fd, 0) << "the tap fd is the receive queue's completion fd";
  EXPECT_EQ(g.dev.completion_fd(g.vq(g.tx(0))), -1);
  g.post_rx(0, 32, 2048);

  g.send(0, arp_request());
  g.kick_tx(0);
  EXPECT_EQ(g.reap_tx(0), 1u);
  auto reply = wait_for(g, [](const std::vector<std::uint8_t>& f) {
    return f.size() >= 42 && load_be16(f.data() + 12) == kEtherTypeArp &&
           load_be16(f.data() + 20) == 2 && std::memcmp(f.data() + 28, kHostIp, 4) == 0;
  });
  ASSERT_TRUE(reply) << "no ARP reply from the kernel through the tap";
  EXPECT_EQ(std::memcmp(reply->data(), kGuestMac, 6), 0);
  std::uint8_t host_mac[6];
  std::memcpy(host_mac, reply->data() + 22, 6);

  g.send(0, echo_request(host_mac, 1), {}, 3);  // scattered: writev from three guest buffers
  g.kick_tx(0);
  auto pong = wait_for(g, [](const std::vector<std::uint8_t>& f) {
    return f.size() >= 14 + 28 && load_be16(f.data() + 12) == kEtherTypeIpv4 && f[14 + 9] == 1 &&
           f[14 + 20] == 0;
  });
  ASSERT_TRUE(pong) << "no ICMP echo reply from the kernel";
  const std::uint8_t* ip = pong->data() + 14;
  EXPECT_EQ(inet_checksum(ip, 20), 0);
  EXPECT_EQ(std::memcmp(ip + 12, kHostIp, 4), 0);
  EXPECT_EQ(load_be16(ip + 20 + 6), 1);
  EXPECT_EQ(inet_checksum(ip + 20, 40), 0);
  EXPECT_GE(g.dev.counters(0).rx_packets.load(), 2u);
}

TEST_F(TapTest, WithoutReceiveBuffersFramesAreDroppedNotLeftPolling) {
  NetGuest g(GuestOptions{}, std::make_unique<TapPort>(kTap));
  ASSERT_TRUE(set_host_address());
  g.send(0, arp_request());  // the kernel answers; the guest has posted no receive buffer
  g.kick_tx(0);              // (the answer may already be read and dropped here)
  const int fd = g.dev.completion_fd(g.vq(g.rx(0)));
  pollfd p{fd, POLLIN, 0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (g.dev.counters(0).rx_dropped.load() == 0 && std::chrono::steady_clock::now() < deadline)
    if (::poll(&p, 1, 50) > 0) g.dev.complete(g.vq(g.rx(0)));
  EXPECT_GE(g.dev.counters(0).rx_dropped.load(), 1u) << "the kernel's ARP reply was not dropped";
  p.revents = 0;
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "the fd must not stay readable (the worker would spin)";
  EXPECT_TRUE(g.receive(0).empty());
}

}  // namespace
}  // namespace vireo::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (::unshare(CLONE_NEWNET) != 0) {
    std::printf("SKIPPED: cannot create a private network namespace (unshare: %s); the tap test "
                "needs root or CAP_SYS_ADMIN\n", std::strerror(errno));
    return 77;
  }
  const int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    std::printf("SKIPPED: /dev/net/tun is not available (%s)\n", std::strerror(errno));
    return 77;
  }
  ::close(fd);
  return RUN_ALL_TESTS();
}
