// NetBackend driven directly: the real driver rings on one side, process() in place of kicks.
// Every behaviour runs on split and packed rings, with EVENT_IDX off and on.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>

#include "device/net/net_backend.hpp"
#include "device/net/packet.hpp"
#include "device/net/ports.hpp"
#include "tests/net/net_harness.hpp"

namespace vireo::test {
namespace {

using namespace device::net;

std::unique_ptr<Port> port(const char* spec) {
  auto p = make_port(spec);
  EXPECT_TRUE(p) << (p ? "" : p.error());
  return p ? std::move(*p) : nullptr;
}

// Takes every frame; on each transmit() call it lets the test look at the guest.
class WatchingPort final : public Port {
 public:
  const char* kind() const override { return "watching"; }
  std::size_t transmit(std::uint16_t, std::span<const PacketView> pkts) override {
    if (on_transmit) on_transmit();
    return pkts.size();
  }
  std::function<void()> on_transmit;
};

template <class Cfg>
class NetBackendTest : public ::testing::Test {};
TYPED_TEST_SUITE(NetBackendTest, NetConfigs, NetCfgName);

// A drain of several TX bursts completes each burst (flush) before it pops the next: a driver
// that keeps the ring busy gets its descriptors back while the drain goes on. DPDK's virtio-user
// (packed) ran out of TX descriptors and dropped every packet it had when the completions waited
// for the end of a drain that a fast driver kept going.
TYPED_TEST(NetBackendTest, EachTxBurstIsCompletedBeforeTheNextIsPopped) {
  auto owned = std::make_unique<WatchingPort>();
  WatchingPort& watch = *owned;
  NetGuest g(options_for<TypeParam>(), std::move(owned));
  for (std::uint32_t i = 0; i < 2 * NetBackend::kBurst; ++i) g.send(0, make_frame(64, static_cast<std::uint8_t>(i)));
  std::vector<std::size_t> reapable;  // TX completions the guest can reap at each transmit()
  watch.on_transmit = [&] { reapable.push_back(g.reap_tx(0)); };
  g.kick_tx(0);
  ASSERT_EQ(reapable.size(), 2u);
  EXPECT_EQ(reapable[0], 0u);
  EXPECT_EQ(reapable[1], NetBackend::kBurst) << "the first burst's completions waited for the end of the drain";
  EXPECT_EQ(g.reap_tx(0), NetBackend::kBurst);
}

TYPED_TEST(NetBackendTest, LoopbackRoundTripVerifiesPayloadAndHeader) {
  NetGuest g(options_for<TypeParam>(), port("loopback"));
  g.post_rx(0, 8, 2048);
  const std::vector<std::uint32_t> sizes = {60, 14, 333, 1514};
  for (std::size_t i = 0; i < sizes.size(); ++i)
    g.send(0, make_frame(sizes[i], static_cast<std::uint8_t>(i)), {}, i % 2 == 0 ? 1 : 3);
  g.kick_tx(0);
  EXPECT_EQ(g.reap_tx(0), sizes.size());
  const std::vector<NetGuest::Rx> got = g.receive(0);
  ASSERT_EQ(got.size(), sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(got[i].frame, make_frame(sizes[i], static_cast<std::uint8_t>(i))) << "packet " << i;
    EXPECT_EQ(got[i].buffers, 1);
    EXPECT_EQ(got[i].hdr.flags, 0);        // no offloads: nothing to report (§5.1.6.4)
    EXPECT_EQ(got[i].hdr.gso_type, kHdrGsoNone);
    EXPECT_EQ(got[i].hdr.num_buffers, 1);
  }
  EXPECT_EQ(g.dev.counters(0).tx_packets.load(), sizes.size());
  EXPECT_EQ(g.dev.counters(0).rx_packets.load(), sizes.size());
  EXPECT_GE(g.calls(g.rx(0)), 1u);
  EXPECT_GE(g.calls(g.tx(0)), 1u);
  EXPECT_TRUE(g.guest.guards_intact());
}

TYPED_TEST(NetBackendTest, LoopbackManyBurstsWrapTheRings) {
  NetGuest g(options_for<TypeParam>(), port("loopback"));
  std::uint32_t sent = 0, received = 0;
  for (int round = 0; round < 40; ++round) {
    g.post_rx(0, 24, 1600);
    for (int k = 0; k < 24; ++k) g.send(0, make_frame(60 + (sent + k) % 1400, static_cast<std::uint8_t>(sent + k)));
    (round % 2 == 0) ? g.kick_tx(0) : g.kick_rx(0);
    EXPECT_EQ(g.reap_tx(0), 24u);
    for (const NetGuest::Rx& r : g.receive(0)) {
      ASSERT_EQ(r.frame, make_frame(60 + received % 1400, static_cast<std::uint8_t>(received)))
          << "packet " << received;
      ++received;
    }
    sent += 24;
  }
  EXPECT_EQ(received, sent);
}

TYPED_TEST(NetBackendTest, MergeableRxSpansBuffersWithNumBuffers) {
  NetGuest g(options_for<TypeParam>(), port("loopback"));
  g.post_rx(0, 10, 512);
  const auto frame = make_frame(1514, 9);
  g.send(0, frame);
  g.kick_tx(0);
  const std::vector<NetGuest::Rx> got = g.receive(0);
  ASSERT_EQ(got.size(), 1u);
  // §5.1.6.4: 12 + 1514 bytes in 512-byte buffers -> 3 buffers, the last one partly filled.
  EXPECT_EQ(got[0].hdr.num_buffers, 3);
  EXPECT_EQ(got[0].lens, (std::vector<std::uint32_t>{512, 512, 502}));
  EXPECT_EQ(got[0].frame, frame);
  // The 7 remaining buffers still take the next packets.
  g.send(0, make_frame(100, 1));
  g.kick_tx(0);
  const std::vector<NetGuest::Rx> next = g.receive(0);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].frame, make_frame(100, 1));
}

TYPED_TEST(NetBackendTest, WithoutMergeableOversizedPacketIsDroppedBufferKept) {
  GuestOptions o = options_for<TypeParam>();
  o.mergeable = false;
  NetGuest g(o, port("loopback"));
  EXPECT_EQ(g.hdr_len(), 12u);  // VERSION_1: num_buffers is always there
  g.post_rx(0, 2, 512);
  g.send(0, make_frame(1514, 1));  // §5.1.6.3.1: one buffer per packet, and it does not fit
  g.send(0, make_frame(100, 2));
  g.kick_tx(0);
  EXPECT_EQ(g.reap_tx(0), 2u);
  const std::vector<NetGuest::Rx> got = g.receive(0);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].frame, make_frame(100, 2));
  EXPECT_EQ(got[0].hdr.num_buffers, 1);  // §5.1.6.4.1: 1 without MRG_RXBUF
  EXPECT_EQ(g.dev.counters(0).rx_dropped.load(), 1u);
}

TYPED_TEST(NetBackendTest, NoRxBuffersLoopbackPacketsWaitInTheirTxBuffers) {
  NetGuest g(options_for<TypeParam>(), port("loopback"));
  for (int i = 0; i < 3; ++i) g.send(0, make_frame(80, static_cast<std::uint8_t>(i)));
  g.kick_tx(0);
  EXPECT_EQ(g.reap_tx(0), 0u) << "TX buffers must stay with the device until RX space appears";
  EXPECT_TRUE(g.receive(0).empty());
  g.post_rx(0, 2, 2048);
  g.kick_rx(0);  // new receive buffers release the waiting packets
  EXPECT_EQ(g.reap_tx(0), 2u);
  std::vector<NetGuest::Rx> got = g.receive(0);
  ASSERT_EQ(got.size(), 2u);
  g.post_rx(0, 1, 2048);
  g.kick_rx(0);
  EXPECT_EQ(g.reap_tx(0), 1u);
  for (NetGuest::Rx& r : g.receive(0)) got.push_back(std::move(r));
  ASSERT_EQ(got.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i].frame, make_frame(80, static_cast<std::uint8_t>(i)));
  EXPECT_EQ(g.dev.counters(0).rx_dropped.load(), 0u);
}

// Packets the port did not take move to the front of the held burst; packets popped after them
// (the lone lane writes each one's segment into its burst slot) must not change what the moved
// ones carry.
TYPED_TEST(NetBackendTest, HeldPacketKeepsItsFrameWhenLaterPacketsArePopped) {
  NetGuest g(options_for<TypeParam>(), port("loopback"));
  // A first round trip through the general path: the lane serves only inside the rings' cached
  // regions.
  g.post_rx(0, 1, 2048);
  g.send(0, make_frame(80, 0xee));
  g.kick_tx(0);
  ASSERT_EQ(g.reap_tx(0), 1u);
  ASSERT_EQ(g.receive(0).size(), 1u);
  g.post_rx(0, 2, 2048);
  for (int i = 0; i < 3; ++i) g.send(0, make_frame(80, static_cast<std::uint8_t>(i)));
  g.kick_tx(0);  // two delivered, the third held at the front
  for (int i = 3; i < 6; ++i) g.send(0, make_frame(80, static_cast<std::uint8_t>(i)));
  g.kick_tx(0);  // no receive buffers: popped behind it, all held
  EXPECT_EQ(g.reap_tx(0), 2u);
  g.post_rx(0, 8, 2048);
  g.kick_rx(0);
  EXPECT_EQ(g.reap_tx(0), 4u);
  std::vector<NetGuest::Rx> got = g.receive(0);
  ASSERT_EQ(got.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(got[i].frame, make_frame(80, static_cast<std::uint8_t>(i))) << i;
}

TYPED_TEST(NetBackendTest, MalformedTxIsCompletedUnsentAndTheQueueGoesOn) {
  NetGuest g(options_for<TypeParam>(), port("loopback"));
  g.post_rx(0, 8, 2048);
  const std::uint64_t buf = g.alloc(256);
  // Header shorter than 12 bytes (§5.1.6).
  g.add_raw(g.tx(0), {{buf, 8}}, {});
  // A device-writable descriptor in a TX buffer (§5.1.6.2).
  g.add_raw(g.tx(0), {{buf, 12 + 60}}, {{buf + 128, 64}});
  NetHdr gso{};
  gso.gso_type = 1;  // VIRTIO_NET_HDR_GSO_TCPV4 without HOST_TSO4 (§5.1.6.2.1)
  g.send(0, make_frame(60, 1), gso);
  NetHdr csum{};
  csum.flags = kHdrFNeedsCsum;  // without VIRTIO_NET_F_CSUM (§5.1.6.2.1)
  g.send(0, make_frame(60, 2), csum);
  g.send(0, make_frame(10, 3));  // shorter than an Ethernet header
  g.send(0, make_frame(64, 4));  // and a good one after all that
  g.kick_tx(0);
  EXPECT_EQ(g.reap_tx(0), 6u);
  const std::vector<NetGuest::Rx> got = g.receive(0);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].frame, make_frame(64, 4));
  EXPECT_EQ(g.dev.counters(0).tx_errors.load(), 5u);
  g.vq(g.tx(0)).visit([](auto& ring) { EXPECT_FALSE(ring.broken()); });
}

// Buffers are used in the order they were popped (what VIRTIO_F_IN_ORDER promises, §2.7.9 /
// §2.8.23): a malformed buffer popped behind a packet held for the port waits for it.
TYPED_TEST(NetBackendTest, MalformedTxBehindAHeldPacketIsCompletedInItsTurn) {
  for (const bool in_order : {false, true}) {
    GuestOptions o = options_for<TypeParam>();
    o.in_order = in_order;
    NetGuest g(o, port("loopback"));
    g.send(0, make_frame(80, 1));  // 0: held, no receive buffer yet
    const std::uint64_t buf = g.alloc(256);
    g.add_raw(g.tx(0), {{buf, 8}}, {});  // 1: header shorter than 12 bytes (§5.1.6)
    g.send(0, make_frame(80, 2));  // 2
    g.kick_tx(0);
    EXPECT_EQ(g.reap_tx_tokens(0), std::vector<std::uint64_t>{})
        << "in_order " << in_order << ": a buffer was used before the one popped ahead of it";
    g.post_rx(0, 4, 2048);
    g.kick_rx(0);
    EXPECT_EQ(g.reap_tx_tokens(0), (std::vector<std::uint64_t>{0, 1, 2})) << "in_order " << in_order;
    const std::vector<NetGuest::Rx> got = g.receive(0);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].frame, make_frame(80, 1));
    EXPECT_EQ(got[1].frame, make_frame(80, 2));
    EXPECT_EQ(g.dev.counters(0).tx_errors.load(), 1u);
  }
}

TYPED_TEST(NetBackendTest, GuestViolationOnRxBreaksOnlyTheRxQueue) {
  NetGuest g(options_for<TypeParam>(), port("loopback"));
  g.post_rx(0, 1, 2048);
  // INDIRECT without VIRTIO_F_INDIRECT_DESC (§2.7.5.3.1 / §2.8.7) in the posted buffer.
  if constexpr (TypeParam::kPacked)
    static_cast<vring::PackedDesc*>(g.q(g.rx(0)).desc)[0].flags |= vring::kDescFIndirect;
  else
    static_cast<vring::SplitDesc*>(g.q(g.rx(0)).desc)[0].flags |= vring::kDescFIndirect;
  g.send(0, make_frame(60, 1));
  g.kick_tx(0);
  EXPECT_EQ(g.reap_tx(0), 1u) << "a frame for a broken RX queue is dropped, not held forever";
  g.vq(g.rx(0)).visit([](auto& ring) {
    EXPECT_TRUE(ring.broken());
    EXPECT_EQ(ring.error(), vring::Errc::indirect_not_negotiated);
  });
  g.vq(g.tx(0)).visit([](auto& ring) { EXPECT_FALSE(ring.broken()); });
  EXPECT_EQ(g.dev.counters(0).rx_dropped.load(), 1u);
}

TYPED_TEST(NetBackendTest, MultiqueuePairsAreIndependent) {
  GuestOptions o = options_for<TypeParam>();
  o.pairs = 2;
  NetGuest g(o, port("loopback"));
  const device::DeviceInfo info = g.dev.info();
  EXPECT_EQ(info.num_queues, 5);  // rx0 tx0 rx1 tx1 ctrl (§5.1.2)
  g.post_rx(1, 4, 2048);
  g.send(0, make_frame(70, 0));
  g.send(1, make_frame(71, 1));
  g.kick_tx(0);
  g.kick_tx(1);
  EXPECT_EQ(g.reap_tx(0), 0u) << "pair 0 has no receive buffers: its packet waits";
  EXPECT_EQ(g.reap_tx(1), 1u);
  EXPECT_TRUE(g.receive(0).empty());
  std::vector<NetGuest::Rx> got = g.receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].frame, make_frame(71, 1));
  g.post_rx(0, 1, 2048);
  g.kick_rx(0);
  got = g.receive(0);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].frame, make_frame(70, 0));
  EXPECT_EQ(g.dev.counters(0).rx_packets.load(), 1u);
  EXPECT_EQ(g.dev.counters(1).rx_packets.load(), 1u);
}

// §5.1.6.5.5: VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET on the control queue (2 * pairs).
TYPED_TEST(NetBackendTest, ControlQueueSetsQueuePairs) {
  GuestOptions o = options_for<TypeParam>();
  o.pairs = 2;
  NetGuest g(o, port("sink"));
  const std::uint16_t ctrl = 4;
  auto command = [&](std::uint16_t pairs) {
    const std::uint64_t cmd = g.alloc(4), ack = g.alloc(1);
    const std::uint8_t bytes[4] = {kCtrlMq, kCtrlMqVqPairsSet, static_cast<std::uint8_t>(pairs),
                                   static_cast<std::uint8_t>(pairs >> 8)};
    g.guest.write(cmd, bytes, 4);
    g.guest.fill(ack, 1, std::byte{0x77});
    g.add_raw(ctrl, {{cmd, 2}, {cmd + 2, 2}}, {{ack, 1}});
    g.dev.process(g.vq(ctrl));
    std::uint8_t a = 0x77;
    g.guest.read(ack, &a, 1);
    return a;
  };
  EXPECT_EQ(command(2), kCtrlOk);
  EXPECT_EQ(g.dev.active_pairs(), 2);
  EXPECT_EQ(command(3), kCtrlErr);  // more than max_virtqueue_pairs
  EXPECT_EQ(command(0), kCtrlErr);
  EXPECT_EQ(g.dev.active_pairs(), 2);
  EXPECT_GE(g.calls(ctrl), 1u);
}

TYPED_TEST(NetBackendTest, DisabledQueuesHaveNoSideEffects) {
  NetGuest g(options_for<TypeParam>(), port("loopback"));
  g.post_rx(0, 4, 2048);
  g.vq(g.rx(0)).set_enabled(false);
  g.send(0, make_frame(90, 5));
  g.kick_tx(0);
  EXPECT_EQ(g.reap_tx(0), 0u) << "a disabled RX ring gets no packets: the frame waits";
  EXPECT_TRUE(g.receive(0).empty());
  g.vq(g.rx(0)).set_enabled(true);
  g.kick_rx(0);
  EXPECT_EQ(g.reap_tx(0), 1u);
  EXPECT_EQ(g.receive(0).size(), 1u);
  // vhost-user "Ring states": a disabled TX ring is processed, its packets discarded.
  g.vq(g.tx(0)).set_enabled(false);
  g.send(0, make_frame(90, 6));
  g.kick_tx(0);
  EXPECT_EQ(g.reap_tx(0), 1u);
  EXPECT_TRUE(g.receive(0).empty());
}

TYPED_TEST(NetBackendTest, StoppingReturnsHeldBuffersSoNothingStaysInFlight) {
  NetGuest g(options_for<TypeParam>(), port("loopback"));
  g.post_rx(0, 4, 2048);
  g.send(0, make_frame(60, 1));
  g.kick_tx(0);  // pops a burst of RX buffers, uses one
  g.send(0, make_frame(60, 2));
  g.send(0, make_frame(60, 3));
  g.vq(g.rx(0)).set_enabled(false);
  g.kick_tx(0);  // these two wait (RX disabled)
  g.dev.queue_stopping(g.vq(g.rx(0)));
  g.dev.queue_stopping(g.vq(g.tx(0)));
  EXPECT_EQ(g.reap_tx(0), 3u);
  std::size_t used = 0, empty = 0;
  process_burst(g.q(g.rx(0)).drv, [&](auto& ring) {
    vring::DriverUsed u;
    while (ring.get_used(u).value_or(false)) {
      ++used;
      empty += u.len == 0;
    }
  });
  EXPECT_EQ(used, 4u);
  EXPECT_EQ(empty, 3u);
  g.dev.queue_started(g.vq(g.rx(0)));  // the harness stops them again on exit
  g.dev.queue_started(g.vq(g.tx(0)));
}

// A hostile driver may post a receive buffer over its own transmit buffer. With a loopback port
// the device then copies guest memory onto overlapping guest memory: that must be a defined copy
// (memmove), not memcpy with overlapping ranges (undefined; AddressSanitizer reports
// memcpy-param-overlap in the ASan build). Found by fuzz_net. Both copy paths: one TX segment
// (the single-memcpy fast path) and a frame split over three segments.
TYPED_TEST(NetBackendTest, RxBufferOverlappingTheTxFrameGetsAMemmoveNotAnOverlappingMemcpy) {
  for (const std::uint32_t pieces : {1u, 3u}) {
    NetGuest g(options_for<TypeParam>(), port("loopback"));
    const std::uint32_t hl = g.hdr_len(), len = 1000;
    const std::vector<std::uint8_t> frame = make_frame(len, 9);
    const std::uint64_t at = g.alloc(4096);
    NetHdr hdr{};
    g.guest.write(at, &hdr, hl);
    g.guest.write(at + hl, frame.data(), len);
    std::vector<vring::DriverBuffer> tx = {{at, hl}};
    for (std::uint32_t off = 0; off < len; off += len / pieces + 1)
      tx.push_back({at + hl + off, std::min(len - off, len / pieces + 1)});
    if (pieces == 1) tx = {{at, hl + len}};
    g.add_raw(g.rx(0), {}, {{at + 8, 2048}});  // header lands 8 bytes after the TX header
    g.add_raw(g.tx(0), tx, {});
    g.kick_tx(0);
    std::vector<vring::DriverUsed> used;
    process_burst(g.q(g.rx(0)).drv, [&](auto& ring) {
      vring::DriverUsed u;
      while (ring.get_used(u).value_or(false)) used.push_back(u);
    });
    ASSERT_EQ(used.size(), 1u) << pieces << " TX piece(s)";
    EXPECT_EQ(used[0].len, hl + len);
    // One piece: the header store overwrote the frame's first 8 source bytes, the rest arrives
    // intact. Three pieces: each piece overwrites the start of the next one's source before it
    // is copied, so only the length is known.
    if (pieces == 1) {
      std::vector<std::uint8_t> got(len);
      g.guest.read(at + 8 + hl, got.data(), len);
      EXPECT_TRUE(std::equal(got.begin() + 8, got.end(), frame.begin() + 8));
    }
    EXPECT_EQ(g.reap_tx(0), 1u);
  }
}

TYPED_TEST(NetBackendTest, SourceFillsEveryPostedBuffer) {
  NetGuest g(options_for<TypeParam>(), port("source:128"));
  g.post_rx(0, 20, 1600);
  g.kick_rx(0);
  const std::vector<NetGuest::Rx> got = g.receive(0);
  ASSERT_EQ(got.size(), 20u);
  for (const NetGuest::Rx& r : got) {
    ASSERT_EQ(r.frame.size(), 128u);
    EXPECT_EQ(std::memcmp(r.frame.data(), g.dev.mac().data(), 6), 0);
    EXPECT_EQ(inet_checksum(r.frame.data() + 14, 20), 0) << "IPv4 header checksum";
  }
  g.post_rx(0, 5, 1600);
  g.kick_rx(0);
  EXPECT_EQ(g.receive(0).size(), 5u);
}

TYPED_TEST(NetBackendTest, SinkCountsAndCompletes) {
  auto sink = std::make_unique<SinkPort>();
  SinkPort* s = sink.get();
  NetGuest g(options_for<TypeParam>(), std::move(sink));
  for (int i = 0; i < 40; ++i) g.send(0, make_frame(100, 0));
  g.kick_tx(0);
  EXPECT_EQ(g.reap_tx(0), 40u);
  EXPECT_EQ(s->packets(), 40u);
  EXPECT_EQ(s->bytes(), 4000u);
}

// move_frame() copies 16..64-byte frames with vector loads before any store: it must move like
// memmove at every length and every overlap (a loopback TX buffer may overlap the RX buffer).
TEST(NetFrames, MoveFrameMovesLikeMemmoveAtEveryLengthAndOverlap) {
  std::array<std::byte, 320> want{}, got{};
  for (std::size_t n = 0; n <= 130; ++n) {
    for (int shift = -40; shift <= 40; ++shift) {
      for (std::size_t k = 0; k < want.size(); ++k) want[k] = got[k] = static_cast<std::byte>(k * 7 + 3);
      const std::size_t src = 100, dst = static_cast<std::size_t>(100 + shift);
      std::memmove(want.data() + dst, want.data() + src, n);
      move_frame(got.data() + dst, got.data() + src, n);
      ASSERT_EQ(want, got) << "len " << n << " shift " << shift;
    }
  }
}

// The inline copy_out() of a one-segment packet returns what the general copy does.
TEST(NetFrames, CopyOutOneSegmentMatchesTheGeneralCopy) {
  std::array<std::byte, 200> src{};
  for (std::size_t k = 0; k < src.size(); ++k) src[k] = static_cast<std::byte>(k);
  const vring::Segment seg{src.data(), 150, 0};
  for (const std::uint32_t skip : {0u, 12u})
    for (const std::uint32_t len : {0u, 14u, 60u, 64u, 138u})
      for (const std::size_t max : {std::size_t{0}, std::size_t{32}, std::size_t{64}, std::size_t{2048}}) {
        if (skip + len > seg.len) continue;
        const PacketView p{&seg, 1, skip, len};
        std::array<std::byte, 2048> a{}, b{};
        const std::size_t na = copy_out(p, 0, a.data(), max);
        const std::size_t nb = copy_out_segments(p, 0, b.data(), max);
        EXPECT_EQ(na, nb) << skip << " " << len << " " << max;
        EXPECT_EQ(a, b) << skip << " " << len << " " << max;
      }
}

TEST(NetBackend, ConfigSpaceAndFeatures) {
  NetOptions o;
  o.pairs = 3;
  o.mtu = 9000;
  o.mac = *parse_mac("02:00:00:aa:bb:cc");
  NetBackend dev(o, std::make_unique<SinkPort>());
  const device::DeviceInfo info = dev.info();
  EXPECT_EQ(info.device_id, 1u);
  EXPECT_EQ(info.num_queues, 7);
  for (unsigned b : {kFMac, kFStatus, kFMtu, kFMrgRxbuf, kFMq, kFCtrlVq})
    EXPECT_TRUE(vring::has_feature(info.device_features, b)) << "bit " << b;
  EXPECT_FALSE(vring::has_feature(info.device_features, kFCsum));  // no offloads
  EXPECT_EQ(info.config_size, sizeof(NetConfig));
  NetConfig c{};
  dev.read_config(0, {reinterpret_cast<std::byte*>(&c), sizeof c});
  EXPECT_EQ(c.mac, (MacAddr{0x02, 0, 0, 0xaa, 0xbb, 0xcc}));
  EXPECT_EQ(c.status, kStatusLinkUp);
  EXPECT_EQ(c.max_virtqueue_pairs, 3);
  EXPECT_EQ(c.mtu, 9000);
  std::uint16_t mtu = 0;  // a partial read at an offset
  dev.read_config(offsetof(NetConfig, mtu), {reinterpret_cast<std::byte*>(&mtu), 2});
  EXPECT_EQ(mtu, 9000);
  // MQ without CTRL_VQ: the vhost-user front-end keeps the control queue; every pair is active.
  EXPECT_TRUE(dev.set_features(vring::feature_bit(kFMq)));
  EXPECT_EQ(dev.active_pairs(), 3);
  dev.reset();
  EXPECT_TRUE(dev.set_features(vring::feature_bit(kFMq) | vring::feature_bit(kFCtrlVq)));
  EXPECT_EQ(dev.active_pairs(), 1);  // with a control queue the driver selects pairs (§5.1.6.5.5)
  EXPECT_EQ(dev.hdr_len(), 10u);  // legacy driver without MRG_RXBUF: 10-byte header
  EXPECT_TRUE(dev.set_features(vring::feature_bit(vring::kFVersion1)));
  EXPECT_EQ(dev.hdr_len(), 12u);
  NetBackend one(NetOptions{}, std::make_unique<SinkPort>());
  EXPECT_EQ(one.info().num_queues, 2);  // a single pair needs no control queue
  EXPECT_FALSE(vring::has_feature(one.info().device_features, kFMq));
}

TEST(NetBackend, PortSpecs) {
  for (const char* ok : {"loopback", "sink", "source", "source:1000", "responder=10.0.0.1", "tap:vireo0"})
    EXPECT_TRUE(make_port(ok)) << ok;
  for (const char* bad : {"", "loop", "source:x", "responder=10.0.0", "tap:", "peer:/tmp/x",
                          "tap:abcdefghijklmnopq"})
    EXPECT_FALSE(make_port(bad)) << bad;
  EXPECT_FALSE(parse_mac("52:54:00:12:34"));
  EXPECT_FALSE(parse_mac("52:54:00:12:34:5g"));
  EXPECT_TRUE(parse_mac("52:54:00:12:34:5F"));
  NetBackend dev(NetOptions{}, nullptr);
  EXPECT_FALSE(dev.set_port(std::make_unique<SourcePort>(20)));  // shorter than IPv4/UDP
  EXPECT_FALSE(dev.set_port(std::make_unique<SourcePort>(1600)));  // beyond MTU 1500
}

}  // namespace
}  // namespace vireo::test
