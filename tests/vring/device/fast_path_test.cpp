// The single-descriptor fast path of the device walkers and the per-ring translation cache, both
// layouts: a lone descriptor reports exactly the errors the general walk does, and a cached
// region never outlives the memory table it came from (rebind).
#include <gtest/gtest.h>

#include <vector>

#include "tests/vring/device/malicious_fixture.hpp"

namespace vireo::test {
namespace {

using namespace vring;

template <class Layout>
using FastPath = MaliciousTest<Layout>;
TYPED_TEST_SUITE(FastPath, RingLayouts, LayoutNames);

TYPED_TEST(FastPath, LoneDescriptorUnmappedIsNotMapped) {
  ASSERT_TRUE(this->h.configure());
  ChainBuilder b = this->h.drv.chain().readable(this->h.guest.end() + 0x10000, 16);
  this->publish(b);
  this->expect_violation(Errc::address_not_mapped);
}

// gpa + len wraps past 2^64: rejected before any translation.
TYPED_TEST(FastPath, LoneDescriptorAddressWrapIsNotMapped) {
  ASSERT_TRUE(this->h.configure());
  ChainBuilder b = this->h.drv.chain().writable(~std::uint64_t{0} - 4, 64);
  this->publish(b);
  this->expect_violation(Errc::address_not_mapped);
}

// A buffer ending exactly at 2^64 (gpa + len wraps to 0) in a region that reaches the top of the
// address space, after that region was cached: the burst loop must not accept it (the slow path
// reports address_not_mapped for any wrapping buffer).
TYPED_TEST(FastPath, LoneDescriptorEndingAtTheTopOfTheCachedRegionIsNotMapped) {
  auto& r = this->h;
  constexpr std::uint64_t kTop = ~std::uint64_t{0} - 4095;  // [kTop, 2^64)
  BufferMemory top(kTop, 4096);
  r.guest.add_region(kTop, top.host(kTop), 4096);
  ASSERT_TRUE(r.configure());
  ASSERT_TRUE(r.drv.chain().readable(kTop, 16).build());
  r.drv.publish();
  ASSERT_TRUE(*r.ring.pop(r.chain));  // caches the top region
  EXPECT_EQ(r.chain.readable()[0].data, top.host(kTop));
  r.ring.push(r.chain, 0);
  r.ring.flush();
  ASSERT_TRUE(r.drv.read_used());
  ChainBuilder b = r.drv.chain().readable(~std::uint64_t{0} - 15, 16);
  this->publish(b);
  this->expect_violation(Errc::address_not_mapped);
}

// A miss after a hit in another region: the cache must not answer for an address outside it.
TYPED_TEST(FastPath, LoneDescriptorPastTheCachedRegionIsNotMapped) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  ASSERT_TRUE(r.drv.chain().readable(this->data, 16).build());
  r.drv.publish();
  ASSERT_TRUE(*r.ring.pop(r.chain));  // caches the guest window
  r.ring.push(r.chain, 0);
  r.ring.flush();
  ASSERT_TRUE(r.drv.read_used());
  ChainBuilder b = r.drv.chain().writable(r.guest.end() - 8, 64);
  this->publish(b);
  this->expect_violation(Errc::address_not_mapped);
}

TYPED_TEST(FastPath, LoneZeroLengthDescriptorIsAnEmptyChain) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  auto id = r.drv.chain().writable(this->data, 0).build();
  ASSERT_TRUE(id) << id.error();
  r.drv.publish();
  ASSERT_TRUE(*r.ring.pop(r.chain));
  EXPECT_EQ(r.chain.head().id, *id);
  EXPECT_EQ(r.chain.writable().size(), 0u);
  EXPECT_EQ(r.chain.readable().size(), 0u);
}

// A lone buffer over two regions takes the general append: two segments.
TYPED_TEST(FastPath, LoneDescriptorAcrossRegionsIsTwoSegments) {
  auto& r = this->h;
  BufferMemory second(r.guest.end(), 4096);
  r.guest.add_region(r.guest.end(), second.host(second.base()), second.size());
  ASSERT_TRUE(r.configure());
  ASSERT_TRUE(r.drv.chain().readable(r.guest.end() - 8, 24).build());
  r.drv.publish();
  ASSERT_TRUE(*r.ring.pop(r.chain));
  ASSERT_EQ(r.chain.readable().size(), 2u);
  EXPECT_EQ(r.chain.readable()[0].len, 8u);
  EXPECT_EQ(r.chain.readable()[1].data, second.host(second.base()));
  EXPECT_EQ(r.chain.readable_bytes(), 24u);
}

// After SET_MEM_TABLE the same guest address may live at another host address: rebind() must
// drop the cached region, or the device would read and write the old mapping.
TYPED_TEST(FastPath, RebindDropsTheCachedRegion) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  const std::uint64_t buf = this->data;
  ASSERT_TRUE(r.drv.chain().writable(buf, 16).build());
  r.drv.publish();
  ASSERT_TRUE(*r.ring.pop(r.chain));
  EXPECT_EQ(r.chain.writable()[0].data, r.guest.host(buf));
  r.ring.push(r.chain, 0);
  r.ring.flush();
  ASSERT_TRUE(r.drv.read_used());

  // The same regions, the guest window now backed by `moved` (ring areas keep their pointers).
  BufferMemory moved(TestGuest::kBase, r.guest.end() - TestGuest::kBase);
  std::vector<Region> regions(r.guest.mem().regions().begin(), r.guest.mem().regions().end());
  for (Region& reg : regions)
    if (reg.gpa == TestGuest::kBase) reg.host = moved.host(TestGuest::kBase);
  const RegionTable table(regions);
  const RingAreas& a = r.drv.areas();
  r.ring.rebind(&table, a.desc, a.avail, a.used);
  ASSERT_FALSE(r.ring.broken());

  ASSERT_TRUE(r.drv.chain().writable(buf, 16).build());
  r.drv.publish();
  ASSERT_TRUE(*r.ring.pop(r.chain));
  EXPECT_EQ(r.chain.writable()[0].data, moved.host(buf)) << "stale translation after rebind";
}

// The burst loop keeps the cursor and the cached region in registers: a bad head after good
// ones in the SAME pop_burst must still break the ring with the general walk's Errc.
TYPED_TEST(FastPath, BurstUnmappedAfterGoodHeadsIsNotMapped) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  ASSERT_TRUE(r.drv.chain().readable(this->data, 16).build());
  ASSERT_TRUE(r.drv.chain().writable(this->data + 64, 16).build());
  ASSERT_TRUE(r.drv.chain().readable(r.guest.end() + 0x10000, 16).build());
  r.drv.publish();
  std::vector<Chain> chains(4);
  Result<std::size_t> got = r.ring.pop_burst(chains);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error(), Errc::address_not_mapped) << to_string(got.error());
  EXPECT_TRUE(r.ring.broken());
  r.ring.flush();
  EXPECT_FALSE(r.drv.read_used()) << "a broken ring publishes nothing";
}

// One burst: lone in the cached region, a two-descriptor chain (general walk), a lone buffer in
// a second region (cache miss, refill), a lone buffer back in the first region.
TYPED_TEST(FastPath, BurstMixesFastAndGeneralHeads) {
  auto& r = this->h;
  BufferMemory second(r.guest.end(), 4096);
  const std::uint64_t far = r.guest.end();
  r.guest.add_region(far, second.host(second.base()), second.size());
  ASSERT_TRUE(r.configure());
  ASSERT_TRUE(r.drv.chain().readable(this->data, 16).build());
  ASSERT_TRUE(r.drv.chain().readable(this->data + 64, 8).writable(this->data + 128, 32).build());
  ASSERT_TRUE(r.drv.chain().writable(far + 16, 48).build());
  ASSERT_TRUE(r.drv.chain().writable(this->data + 256, 24).build());
  r.drv.publish();
  std::vector<Chain> chains(8);
  Result<std::size_t> got = r.ring.pop_burst(chains);
  ASSERT_TRUE(got) << to_string(got.error());
  ASSERT_EQ(*got, 4u);
  EXPECT_EQ(chains[0].readable().size(), 1u);
  EXPECT_EQ(chains[0].readable()[0].data, r.guest.host(this->data));
  EXPECT_EQ(chains[0].writable_bytes(), 0u);
  EXPECT_EQ(chains[1].readable_bytes(), 8u);
  EXPECT_EQ(chains[1].writable_bytes(), 32u);
  ASSERT_EQ(chains[2].writable().size(), 1u);
  EXPECT_EQ(chains[2].writable()[0].data, second.host(far + 16));
  EXPECT_EQ(chains[2].readable_bytes(), 0u);
  ASSERT_EQ(chains[3].writable().size(), 1u);
  EXPECT_EQ(chains[3].writable()[0].data, r.guest.host(this->data + 256));
  EXPECT_EQ(chains[3].writable()[0].gpa, this->data + 256);
  EXPECT_EQ(r.ring.inflight(), 4u);
}

// push_burst(chains, n, len) completes exactly like n push() calls, in order.
TYPED_TEST(FastPath, PushBurstCompletesLikePushInOrder) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  std::vector<std::uint16_t> ids;
  for (int k = 0; k < 3; ++k) {
    auto id = r.drv.chain().readable(this->data + 64 * k, 16).build();
    ASSERT_TRUE(id) << id.error();
    ids.push_back(*id);
  }
  r.drv.publish();
  std::vector<Chain> chains(3);
  Result<std::size_t> got = r.ring.pop_burst(chains);
  ASSERT_TRUE(got);
  ASSERT_EQ(*got, 3u);
  r.ring.push_burst(chains.data(), 3, std::uint32_t{0});
  EXPECT_EQ(r.ring.inflight(), 0u);
  EXPECT_FALSE(r.drv.read_used()) << "a pushed batch is invisible until flush()";
  r.ring.flush();
  for (const std::uint16_t id : ids) {
    const std::optional<UsedBuf> u = r.drv.read_used();
    ASSERT_TRUE(u);
    EXPECT_EQ(u->id, id);
    EXPECT_EQ(u->len, 0u);
  }
  EXPECT_FALSE(r.drv.read_used());
}

TEST(TranslateCache, TranslatesLikeTheTable) {
  BufferMemory a(0x1000, 4096), b(0x3000, 4096);
  const RegionTable t({Region{0x1000, 4096, 0, a.host(0x1000)}, Region{0x3000, 4096, 0, b.host(0x3000)}});
  TranslateCache<RegionTable> c;
  for (const std::uint64_t gpa : {0x1000ull, 0x1ff0ull, 0x3010ull, 0x2000ull, 0x0ull, 0x4000ull, 0x1008ull}) {
    const std::span<std::byte> want = t.translate(gpa, 64);
    const std::span<std::byte> got = c.translate(t, gpa, 64);
    EXPECT_EQ(got.data(), want.data()) << std::hex << gpa;
    EXPECT_EQ(got.size(), want.size()) << std::hex << gpa;
  }
}

}  // namespace
}  // namespace vireo::test
