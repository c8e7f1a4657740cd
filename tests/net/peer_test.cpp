// peer ports: two devices forwarding to each other, first step by step, then with each guest and
// its device on its own thread, both directions at once (suite `threads`: TSan runs it).
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "device/net/peer_port.hpp"
#include "tests/net/net_harness.hpp"

namespace vireo::test {
namespace {

using namespace device::net;

// A frame of 100 + seq % 200 bytes whose bytes 14..17 carry `seq`.
std::vector<std::uint8_t> numbered(std::uint32_t seq) {
  std::vector<std::uint8_t> f = make_frame(100 + seq % 200, static_cast<std::uint8_t>(seq));
  std::memcpy(f.data() + 14, &seq, 4);
  return f;
}

std::uint64_t peer_dropped(NetGuest& g) {
  return static_cast<PeerPort*>(g.dev.port())->dropped();
}

template <class Cfg>
class PeerTest : public ::testing::Test {};
TYPED_TEST_SUITE(PeerTest, NetConfigs, NetCfgName);

TYPED_TEST(PeerTest, ForwardsBothWaysAndDropsWithoutReceiveBuffers) {
  GuestOptions o = options_for<TypeParam>();
  NetGuest a(o, nullptr), b(o, nullptr);
  ASSERT_TRUE(connect_peers(a.dev, b.dev));
  b.post_rx(0, 4, 2048);
  for (std::uint32_t i = 0; i < 6; ++i) a.send(0, numbered(i));
  a.kick_tx(0);
  EXPECT_EQ(a.reap_tx(0), 6u);  // a switch never holds the sender's buffers
  const std::vector<NetGuest::Rx> got = b.receive(0);
  ASSERT_EQ(got.size(), 4u);
  for (std::uint32_t i = 0; i < 4; ++i) EXPECT_EQ(got[i].frame, numbered(i));
  EXPECT_EQ(peer_dropped(a), 2u) << "B had four receive buffers for six frames";
  EXPECT_TRUE(a.receive(0).empty()) << "nothing loops back to the sender";
  a.post_rx(0, 1, 2048);
  b.send(0, numbered(99));
  b.kick_tx(0);
  const std::vector<NetGuest::Rx> back = a.receive(0);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].frame, numbered(99));
}

// One side of the concurrent test: sends `n` numbered frames to the peer while keeping receive
// buffers posted and checking every frame the peer sends (intact, in order).
struct Side {
  NetGuest* g;
  std::atomic<bool> done{false};
  std::uint32_t received = 0;
  std::uint32_t next_expected = 0;
  bool in_order = true;
  bool intact = true;

  // Counts a frame from the peer and checks it is intact and in order.
  void check(const NetGuest::Rx& r) {
    std::uint32_t seq = 0;
    std::memcpy(&seq, r.frame.data() + 14, 4);
    intact = intact && r.frame == numbered(seq);
    in_order = in_order && seq >= next_expected;
    next_expected = seq + 1;
    ++received;
  }

  void run(std::uint32_t n, const Side& other) {
    std::uint32_t sent = 0;
    int posted = 128;  // posted before the threads start
    while (sent < n || !other.done.load(std::memory_order_acquire)) {
      if (posted < 128) {
        g->post_rx(0, 16, 512);
        posted += 16;
        g->kick_rx(0);
      }
      for (int k = 0; k < 16 && sent < n; ++k) g->send(0, numbered(sent++));
      g->kick_tx(0);
      g->reap_tx(0);
      for (const NetGuest::Rx& r : g->receive(0)) {
        posted -= r.buffers;
        check(r);
      }
      if (sent == n) done.store(true, std::memory_order_release);
    }
    // The other side has sent everything, so its last frames are in our RX ring (or were
    // dropped): take them before counting.
    for (;;) {
      const auto rx = g->receive(0);
      if (rx.empty()) break;
      for (const NetGuest::Rx& r : rx) check(r);
    }
  }
};

TYPED_TEST(PeerTest, TwoThreadsForwardConcurrentlyWithoutLossOfIntegrity) {
  GuestOptions o = options_for<TypeParam>();
  o.qsize = 256;
  NetGuest a(o, nullptr), b(o, nullptr);
  ASSERT_TRUE(connect_peers(a.dev, b.dev));
  constexpr std::uint32_t kFrames = 3000;
  Side sa{&a}, sb{&b};
  a.post_rx(0, 128, 512);
  b.post_rx(0, 128, 512);
  std::thread tb([&] { sb.run(kFrames, sa); });
  sa.run(kFrames, sb);
  tb.join();
  EXPECT_TRUE(sa.intact && sb.intact) << "a frame arrived corrupted";
  EXPECT_TRUE(sa.in_order && sb.in_order) << "frames were reordered";
  // Every frame was either delivered or counted as dropped (no receive buffer at that moment).
  EXPECT_EQ(sb.received + peer_dropped(a), kFrames);
  EXPECT_EQ(sa.received + peer_dropped(b), kFrames);
  EXPECT_GT(sb.received, 0u);
  EXPECT_GT(sa.received, 0u);
}

}  // namespace
}  // namespace vireo::test
