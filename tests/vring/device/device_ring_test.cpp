// Device ring behaviour on both layouts: pop/push/flush, bursts, indirect tables, buffers that
// cross regions, state round trips, reset, and the DeviceQueue variant.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <vector>

#include "tests/support/ring_fakes.hpp"
#include "vring/device_queue.hpp"

namespace vireo::test {
namespace {

using namespace vring;

template <class Layout>
class DeviceRingTest : public ::testing::Test {
 protected:
  RingHarness<Layout> harness{8};
};
TYPED_TEST_SUITE(DeviceRingTest, RingLayouts, LayoutNames);

TYPED_TEST(DeviceRingTest, PopPushFlushRoundTrip) {
  auto& h = this->harness;
  ASSERT_TRUE(h.configure());
  const std::uint64_t out = h.buffer(16, std::byte{0x11});
  const std::uint64_t in = h.buffer(64);
  auto id = h.drv.chain().readable(out, 16).writable(in, 64).build();
  ASSERT_TRUE(id) << id.error();
  h.drv.publish();

  Result<bool> got = h.ring.pop(h.chain);
  ASSERT_TRUE(got);
  ASSERT_TRUE(*got);
  EXPECT_EQ(h.chain.head().id, *id);
  EXPECT_EQ(h.chain.head().ndescs, TypeParam::kPacked ? 2 : 1);
  ASSERT_EQ(h.chain.readable().size(), 1u);
  ASSERT_EQ(h.chain.writable().size(), 1u);
  EXPECT_EQ(h.chain.readable()[0].data, h.guest.host(out));
  EXPECT_EQ(h.chain.writable()[0].gpa, in);
  EXPECT_EQ(h.chain.readable_bytes(), 16u);
  EXPECT_EQ(h.chain.writable_bytes(), 64u);
  EXPECT_EQ(h.ring.inflight(), 1);

  ChainWriter w(h.chain);
  const char msg[] = "hello, driver";
  w.write(msg, sizeof msg);
  h.ring.push(h.chain, static_cast<std::uint32_t>(w.written()));
  EXPECT_EQ(h.ring.inflight(), 0);
  EXPECT_FALSE(h.drv.read_used()) << "pushed elements are invisible until flush()";
  h.ring.flush();
  std::optional<UsedBuf> u = h.drv.read_used();
  ASSERT_TRUE(u);
  EXPECT_EQ(*u, (UsedBuf{*id, sizeof msg}));
  EXPECT_EQ(std::memcmp(h.guest.host(in), msg, sizeof msg), 0);
  EXPECT_FALSE(h.drv.read_used());
  Result<bool> again = h.ring.pop(h.chain);
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  EXPECT_TRUE(h.guest.guards_intact());
}

TYPED_TEST(DeviceRingTest, EmptyRingPopsFalse) {
  ASSERT_TRUE(this->harness.configure());
  Result<bool> got = this->harness.ring.pop(this->harness.chain);
  ASSERT_TRUE(got);
  EXPECT_FALSE(*got);
  EXPECT_FALSE(this->harness.ring.broken());
}

TYPED_TEST(DeviceRingTest, UnconfiguredRingIsNotReady) {
  Result<bool> got = this->harness.ring.pop(this->harness.chain);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), Errc::not_ready);
  EXPECT_FALSE(this->harness.ring.broken());
}

TYPED_TEST(DeviceRingTest, ConfigureValidatesSizeAndAlignment) {
  using Ring = typename RingHarness<TypeParam>::Ring;
  auto& h = this->harness;
  auto cfg = h.drv.template config<Ring>(TypeParam::kFeatures);
  cfg.size = 0;
  EXPECT_EQ(h.ring.configure(&h.guest.mem(), cfg, {}).error(), Errc::bad_queue_size);
  cfg.size = 3;  // §2.7: split sizes are powers of two; §2.8: packed sizes need not be
  EXPECT_EQ(static_cast<bool>(h.ring.configure(&h.guest.mem(), cfg, {})), TypeParam::kPacked);
  cfg = h.drv.template config<Ring>(TypeParam::kFeatures);
  cfg.desc = static_cast<std::byte*>(cfg.desc) + 8;  // both layouts: descriptors align 16
  EXPECT_EQ(h.ring.configure(&h.guest.mem(), cfg, {}).error(), Errc::misaligned_ring);
  cfg = h.drv.template config<Ring>(TypeParam::kFeatures);
  cfg.used = static_cast<std::byte*>(cfg.used) + 2;  // used ring / device event: align 4
  EXPECT_EQ(h.ring.configure(&h.guest.mem(), cfg, {}).error(), Errc::misaligned_ring);
  cfg = h.drv.template config<Ring>(TypeParam::kFeatures);
  cfg.avail = nullptr;
  EXPECT_EQ(h.ring.configure(&h.guest.mem(), cfg, {}).error(), Errc::not_ready);
  EXPECT_TRUE(h.ring.configure(&h.guest.mem(), h.drv.template config<Ring>(TypeParam::kFeatures), {}));
}

TYPED_TEST(DeviceRingTest, BurstPopsWhatIsAvailableAndCompletesOutOfOrder) {
  auto& h = this->harness;
  ASSERT_TRUE(h.configure());
  std::vector<std::uint16_t> ids;
  for (int i = 0; i < 5; ++i) {
    auto id = h.drv.chain().writable(h.buffer(32), 32).build();
    ASSERT_TRUE(id) << id.error();
    ids.push_back(*id);
  }
  h.drv.publish();
  std::vector<Chain> chains(8);
  Result<std::size_t> n = h.ring.pop_burst(chains);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 5u);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(chains[i].head().id, ids[i]);
  EXPECT_EQ(h.ring.inflight(), 5);
  for (std::size_t i = 5; i-- > 0;) h.ring.push(chains[i], static_cast<std::uint32_t>(i));
  h.ring.flush();  // one publication for the whole burst
  for (std::size_t i = 5; i-- > 0;) {
    std::optional<UsedBuf> u = h.drv.read_used();
    ASSERT_TRUE(u);
    EXPECT_EQ(*u, (UsedBuf{ids[i], static_cast<std::uint32_t>(i)}));
  }
  EXPECT_FALSE(h.drv.read_used());
}

TYPED_TEST(DeviceRingTest, BurstIsLimitedByTheSpan) {
  auto& h = this->harness;
  ASSERT_TRUE(h.configure());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(h.drv.chain().readable(h.buffer(8), 8).build());
  h.drv.publish();
  std::vector<Chain> chains(3);
  EXPECT_EQ(*h.ring.pop_burst(chains), 3u);
  EXPECT_EQ(*h.ring.pop_burst(chains), 2u);
  EXPECT_EQ(*h.ring.pop_burst(chains), 0u);
  EXPECT_EQ(*h.ring.pop_burst(std::span<Chain>()), 0u);
}

TYPED_TEST(DeviceRingTest, IndirectTable) {
  auto& h = this->harness;
  ASSERT_TRUE(h.configure(feature_bit(kFIndirectDesc)));
  const std::uint64_t a = h.buffer(10), b = h.buffer(20), c = h.buffer(30);
  auto id = h.drv.chain().indirect().readable(a, 10).readable(b, 20).writable(c, 30).build();
  ASSERT_TRUE(id) << id.error();
  h.drv.publish();
  ASSERT_TRUE(*h.ring.pop(h.chain));
  EXPECT_EQ(h.chain.head().id, *id);
  EXPECT_EQ(h.chain.head().ndescs, 1) << "an indirect buffer occupies one ring slot";
  ASSERT_EQ(h.chain.readable().size(), 2u);
  EXPECT_EQ(h.chain.readable()[1].gpa, b);
  EXPECT_EQ(h.chain.readable_bytes(), 30u);
  ASSERT_EQ(h.chain.writable().size(), 1u);
  EXPECT_EQ(h.chain.writable()[0].gpa, c);
  h.ring.push(h.chain, 30);
  h.ring.flush();
  EXPECT_EQ(*h.drv.read_used(), (UsedBuf{*id, 30}));
}

TYPED_TEST(DeviceRingTest, RegionCrossingBufferBecomesSeveralSegments) {
  auto& h = this->harness;
  // A second host buffer mapped right after the guest window: contiguous GPAs, separate hosts.
  BufferMemory second(h.guest.end(), 8192);
  h.guest.add_region(h.guest.end(), second.host(second.base()), second.size());
  ASSERT_TRUE(h.configure());
  const std::uint64_t start = h.guest.end() - 100;
  auto id = h.drv.chain().writable(start, 300).build();
  ASSERT_TRUE(id) << id.error();
  h.drv.publish();
  ASSERT_TRUE(*h.ring.pop(h.chain));
  ASSERT_EQ(h.chain.writable().size(), 2u);
  EXPECT_EQ(h.chain.writable()[0].len, 100u);
  EXPECT_EQ(h.chain.writable()[0].gpa, start);
  EXPECT_EQ(h.chain.writable()[1].len, 200u);
  EXPECT_EQ(h.chain.writable()[1].gpa, h.guest.end());
  EXPECT_EQ(h.chain.writable()[1].data, second.host(second.base()));
  std::array<std::uint8_t, 300> pattern{};
  for (std::size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<std::uint8_t>(i);
  ChainWriter w(h.chain);
  EXPECT_EQ(w.write(pattern.data(), pattern.size()), 300u);
  h.ring.push(h.chain, 300);
  h.ring.flush();
  EXPECT_EQ(*h.drv.read_used(), (UsedBuf{*id, 300}));
  std::array<std::uint8_t, 300> back{};
  ASSERT_TRUE(h.guest.read(start, back.data(), back.size()));
  EXPECT_EQ(back, pattern);
}

TYPED_TEST(DeviceRingTest, StateRoundTripsThroughConfigure) {
  auto& h = this->harness;
  ASSERT_TRUE(h.configure());
  // Move both positions (and for packed, through a wrap) before saving the state.
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(h.drv.chain().readable(h.buffer(8), 8).build());
    h.drv.publish();
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(*h.ring.pop(h.chain));
      h.ring.push(h.chain, 0);
    }
    h.ring.flush();
    while (h.drv.read_used()) {
    }
  }
  ASSERT_TRUE(h.drv.chain().readable(h.buffer(8), 8).build());
  h.drv.publish();
  const RingState saved = h.ring.state();  // GET_VRING_BASE
  if constexpr (TypeParam::kPacked) {
    EXPECT_EQ(saved.used, h.drv.used_cursor());
    EXPECT_EQ(saved.avail.idx, 1) << "9 slots consumed in a ring of 8";
    EXPECT_FALSE(saved.avail.wrap);
  } else {
    EXPECT_EQ(saved.avail.idx, 9);
    EXPECT_EQ(saved.used.idx, 9);
  }
  typename RingHarness<TypeParam>::Ring fresh;  // a reconnected back-end: SET_VRING_BASE
  ASSERT_TRUE(fresh.configure(&h.guest.mem(),
                              h.drv.template config<decltype(fresh)>(TypeParam::kFeatures), saved));
  EXPECT_EQ(fresh.state(), saved);
  ASSERT_TRUE(*fresh.pop(h.chain));
  fresh.push(h.chain, 0);
  fresh.flush();
  EXPECT_TRUE(h.drv.read_used());
}

TYPED_TEST(DeviceRingTest, ResetForgetsEverything) {
  auto& h = this->harness;
  ASSERT_TRUE(h.configure());
  ASSERT_TRUE(h.drv.chain().readable(h.buffer(8), 8).build());
  h.drv.publish();
  ASSERT_TRUE(*h.ring.pop(h.chain));
  h.ring.reset();
  EXPECT_EQ(h.ring.size(), 0);
  EXPECT_EQ(h.ring.inflight(), 0);
  EXPECT_EQ(h.ring.pop(h.chain).error(), Errc::not_ready);
  h.ring.push(h.chain, 1);  // ignored while unconfigured
  h.ring.flush();
  EXPECT_FALSE(h.drv.read_used());
  ASSERT_TRUE(h.configure());
  EXPECT_EQ(h.ring.size(), 8);
}

TYPED_TEST(DeviceRingTest, RebindKeepsPositionsAndPendingElements) {
  auto& h = this->harness;
  ASSERT_TRUE(h.configure());
  ASSERT_TRUE(h.drv.chain().readable(h.buffer(8), 8).build());
  ASSERT_TRUE(h.drv.chain().readable(h.buffer(8), 8).build());
  h.drv.publish();
  ASSERT_TRUE(*h.ring.pop(h.chain));
  h.ring.push(h.chain, 0);
  const RingAreas& a = h.drv.areas();
  h.ring.rebind(&h.guest.mem(), a.desc, a.avail, a.used);  // e.g. after SET_MEM_TABLE
  EXPECT_FALSE(h.ring.broken());
  h.ring.flush();
  EXPECT_TRUE(h.drv.read_used());
  ASSERT_TRUE(*h.ring.pop(h.chain));
  h.ring.rebind(&h.guest.mem(), static_cast<std::byte*>(a.desc) + 4, a.avail, a.used);
  EXPECT_TRUE(h.ring.broken());
  EXPECT_EQ(h.ring.error(), Errc::misaligned_ring);
}

TYPED_TEST(DeviceRingTest, PushWithoutFlushKeepsShadowBounded) {
  auto& h = this->harness;
  ASSERT_TRUE(h.configure());
  ASSERT_TRUE(h.drv.chain().readable(h.buffer(8), 8).build());
  h.drv.publish();
  ASSERT_TRUE(*h.ring.pop(h.chain));
  h.ring.push(h.chain.head(), 0);
  h.ring.flush();
  h.ring.flush();  // nothing pending: no second publication
  EXPECT_TRUE(h.drv.read_used());
  EXPECT_FALSE(h.drv.read_used());
  EXPECT_EQ(h.ring.inflight(), 0);
}

TYPED_TEST(DeviceRingTest, DeviceQueueDispatchesOncePerBurst) {
  auto& h = this->harness;
  const std::uint64_t features = TypeParam::kFeatures;
  DeviceQueue<RegionTable> q = make_device_queue<RegionTable>(features);
  EXPECT_EQ(std::holds_alternative<PackedDeviceRing<RegionTable>>(q), TypeParam::kPacked);
  const RingAreas& a = h.drv.areas();
  ASSERT_TRUE(configure_queue(q, &h.guest.mem(), features, h.drv.size(), a.desc, a.avail, a.used,
                              RingState{}));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(h.drv.chain().writable(h.buffer(8), 8).build());
  h.drv.publish();
  std::vector<Chain> chains(4);
  const std::size_t done = with_ring(q, [&](auto& ring) -> std::size_t {
    Result<std::size_t> n = ring.pop_burst(chains);
    if (!n) return 0;
    for (std::size_t i = 0; i < *n; ++i) ring.push(chains[i], 8);
    ring.flush();
    return *n;
  });
  EXPECT_EQ(done, 3u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(h.drv.read_used());
  // Re-configuring with the other layout switches the alternative.
  const std::uint64_t other = features ^ feature_bit(kFRingPacked);
  (void)configure_queue(q, &h.guest.mem(), other, h.drv.size(), a.desc, a.avail, a.used,
                        RingState{});
  EXPECT_EQ(std::holds_alternative<PackedDeviceRing<RegionTable>>(q), !TypeParam::kPacked);
}

TEST(DeviceRingMemory, WorksOverBufferMemoryToo) {
  // The rings are templates over GuestMemory: BufferMemory is a second model.
  BufferMemory mem(0x10000, 1 << 16);
  SplitDeviceRing<BufferMemory> ring;
  std::byte* desc = mem.host(0x10000);
  std::byte* avail = mem.host(0x11000);
  std::byte* used = mem.host(0x12000);
  ASSERT_TRUE(ring.configure(&mem, {4, 0, desc, avail, used, 0}, RingState{}));
  SplitRingView v = SplitRingView::at(desc, avail, used, 4);
  v.desc[2] = SplitDesc{0x13000, 64, kDescFWrite, 0};
  v.avail_ring[0] = 2;
  store_release(*v.avail_idx, std::uint16_t{1});
  Chain chain(4);
  ASSERT_TRUE(*ring.pop(chain));
  EXPECT_EQ(chain.head().id, 2);
  EXPECT_EQ(chain.writable()[0].data, mem.host(0x13000));
  ring.push(chain, 64);
  ring.flush();
  EXPECT_EQ(load_acquire(*v.used_idx), 1);
  EXPECT_EQ(v.used_ring[0].id, 2u);
  EXPECT_EQ(v.used_ring[0].len, 64u);
}

}  // namespace
}  // namespace vireo::test
