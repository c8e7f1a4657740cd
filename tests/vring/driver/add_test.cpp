// Adding buffers: what lands in ring memory (direct and indirect), publication by kick_prepare,
// free-list exhaustion and recovery, out-of-order completion, and configure() validation.
#include <gtest/gtest.h>

#include <vector>

#include "driver_harness.hpp"

namespace vireo::vring::test {
namespace {

template <class L>
class DriverAddTest : public ::testing::Test {};
TYPED_TEST_SUITE(DriverAddTest, DriverLayouts, LayoutName);

constexpr std::uint64_t kIndirect = feature_bit(kFIndirectDesc);

// Every element of `c` matches what add(token, nr, nw) passed, readable first (§2.7.4.2/§2.8.17).
void expect_elements(const FakeChain& c, std::uint64_t token, std::size_t nr, std::size_t nw) {
  ASSERT_EQ(c.descs.size(), nr + nw);
  for (std::size_t k = 0; k < nr + nw; ++k) {
    EXPECT_EQ(c.descs[k].addr, buf_gpa(token, k)) << k;
    EXPECT_EQ(c.descs[k].len, buf_len(token, k)) << k;
    EXPECT_EQ(c.descs[k].writable(), k >= nr) << k;
  }
}

TYPED_TEST(DriverAddTest, AddIsInvisibleUntilKickPrepare) {
  DriverHarness<TypeParam> h(8);
  ASSERT_TRUE(h.status);
  ASSERT_TRUE(h.add(1, 1, 0));
  EXPECT_FALSE(h.dev().has_avail());  // add() writes, only kick_prepare() publishes
  EXPECT_TRUE(h.ring.kick_prepare());
  EXPECT_TRUE(h.dev().has_avail());
  EXPECT_FALSE(h.ring.kick_prepare());  // nothing new: no kick
}

TYPED_TEST(DriverAddTest, DirectChainLandsInRing) {
  DriverHarness<TypeParam> h(8);
  Result<std::uint16_t> id = h.add(7, 2, 1);
  ASSERT_TRUE(id);
  EXPECT_EQ(h.ring.num_free(), 5);
  h.ring.kick_prepare();
  FakeChain c = h.pop();
  EXPECT_EQ(c.id, *id);
  EXPECT_EQ(c.ndescs, 3);
  EXPECT_FALSE(c.indirect);
  expect_elements(c, 7, 2, 1);
  EXPECT_EQ(c.descs[0].flags & kDescFNext, kDescFNext);
  EXPECT_EQ(c.descs[1].flags & kDescFNext, kDescFNext);
  EXPECT_EQ(c.descs[2].flags & kDescFNext, 0);
  if constexpr (TypeParam::kPacked) {
    for (const FakeDesc& d : c.descs)  // §2.8.1 first lap: AVAIL = 1, USED = 0
      EXPECT_EQ(d.flags & (kDescFAvail | kDescFUsed), kDescFAvail);
    EXPECT_EQ(c.ring_ids.back(), *id);  // §2.8.6: id in the last descriptor
  }
}

TYPED_TEST(DriverAddTest, IndirectChainLandsInTable) {
  DriverHarness<TypeParam> h(4, kIndirect, 8);
  ASSERT_TRUE(h.status);
  Result<std::uint16_t> id = h.add(3, 2, 2, /*indirect=*/true);
  ASSERT_TRUE(id);
  EXPECT_EQ(h.ring.num_free(), 3);  // one ring descriptor only
  h.ring.kick_prepare();
  FakeChain c = h.pop();
  EXPECT_EQ(c.id, *id);
  EXPECT_EQ(c.ndescs, 1);
  ASSERT_TRUE(c.indirect);
  EXPECT_EQ(c.table_addr, h.pool_gpa() + std::uint64_t{*id} * 8 * 16);
  EXPECT_EQ(c.table_len, 4u * 16);
  EXPECT_EQ(c.table_desc_flags & (kDescFIndirect | kDescFNext | kDescFWrite), kDescFIndirect);
  expect_elements(c, 3, 2, 2);
  for (std::size_t k = 0; k < 4; ++k) {
    std::uint16_t extra = c.descs[k].flags & static_cast<std::uint16_t>(~kDescFWrite);
    if constexpr (TypeParam::kPacked) EXPECT_EQ(extra, 0) << k;  // §2.8.19: only WRITE
    else EXPECT_EQ(extra, k < 3 ? kDescFNext : 0) << k;          // linked via next
  }
}

TYPED_TEST(DriverAddTest, MixedDirectAndIndirect) {
  DriverHarness<TypeParam> h(8, kIndirect, 4);
  ASSERT_TRUE(h.add(1, 1, 1));
  ASSERT_TRUE(h.add(2, 3, 1, true));
  ASSERT_TRUE(h.add(3, 0, 2));
  h.ring.kick_prepare();
  FakeChain a = h.pop(), b = h.pop(), c = h.pop();
  expect_elements(a, 1, 1, 1);
  expect_elements(b, 2, 3, 1);
  expect_elements(c, 3, 0, 2);
  EXPECT_TRUE(b.indirect);
  EXPECT_EQ(h.ring.num_free(), 8 - 2 - 1 - 2);
}

TYPED_TEST(DriverAddTest, RejectsEmptyBuffer) {
  DriverHarness<TypeParam> h(4);
  Result<std::uint16_t> r = h.add(1, 0, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::empty_buffer);
  EXPECT_FALSE(h.ring.broken());
  EXPECT_TRUE(h.add(2, 1, 0));
}

TYPED_TEST(DriverAddTest, RejectsIndirectWithoutFeatureOrPool) {
  DriverHarness<TypeParam> no_feature(4, 0, 4);
  Result<std::uint16_t> r = no_feature.add(1, 1, 0, true);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::indirect_not_negotiated);
  DriverHarness<TypeParam> no_pool(4, kIndirect, 0);
  r = no_pool.add(1, 1, 0, true);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::indirect_not_negotiated);
}

TYPED_TEST(DriverAddTest, RejectsOverlongChains) {
  DriverHarness<TypeParam> h(4, kIndirect, 2);
  Result<std::uint16_t> r = h.add(1, 3, 2);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::chain_too_long);  // longer than the queue (§2.8.17)
  r = h.add(1, 2, 1, true);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::chain_too_long);  // longer than a pool table
  EXPECT_EQ(h.ring.num_free(), 4);
  EXPECT_FALSE(h.ring.broken());
}

TYPED_TEST(DriverAddTest, ExhaustionThenRecovery) {
  DriverHarness<TypeParam> h(4);
  ASSERT_TRUE(h.add(1, 1, 1));
  ASSERT_TRUE(h.add(2, 1, 0));
  Result<std::uint16_t> r = h.add(3, 1, 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::no_space);  // 1 free, 2 needed
  ASSERT_TRUE(h.add(4, 0, 1));
  EXPECT_EQ(h.ring.num_free(), 0);
  r = h.add(5, 1, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::no_space);
  EXPECT_FALSE(h.ring.broken());

  h.ring.kick_prepare();
  FakeChain a = h.pop();
  h.pop();
  h.pop();
  h.dev().push(a.id, 0);  // first (2-descriptor) buffer back
  DriverUsed u{};
  ASSERT_TRUE(*h.ring.get_used(u));
  EXPECT_EQ(u.token, 1u);
  EXPECT_EQ(h.ring.num_free(), 2);
  ASSERT_TRUE(h.add(3, 1, 1));  // the rejected buffer fits now
  h.ring.kick_prepare();
  expect_elements(h.pop(), 3, 1, 1);
}

TYPED_TEST(DriverAddTest, OutOfOrderCompletion) {
  DriverHarness<TypeParam> h(16);
  std::vector<FakeChain> chains;
  for (std::uint64_t t = 0; t < 4; ++t) ASSERT_TRUE(h.add(t, 1, t % 2 + 1));  // 2,3,2,3 descs
  h.ring.kick_prepare();
  for (int k = 0; k < 4; ++k) chains.push_back(h.pop());
  const std::uint64_t order[] = {2, 0, 3, 1};
  for (std::uint64_t t : order) h.dev().push(chains[t].id, static_cast<std::uint32_t>(100 + t));
  for (std::uint64_t t : order) {
    DriverUsed u{};
    ASSERT_TRUE(*h.ring.get_used(u));
    EXPECT_EQ(u.token, t);
    EXPECT_EQ(u.len, 100 + t);
  }
  DriverUsed u{};
  EXPECT_FALSE(*h.ring.get_used(u));
  EXPECT_EQ(h.ring.num_free(), 16);
  // Everything is reusable, in the new free-list order.
  for (std::uint64_t t = 10; t < 12; ++t) ASSERT_TRUE(h.add(t, 2, 2));
  h.ring.kick_prepare();
  expect_elements(h.pop(), 10, 2, 2);
  expect_elements(h.pop(), 11, 2, 2);
}

TYPED_TEST(DriverAddTest, GetUsedBurst) {
  DriverHarness<TypeParam> h(8);
  for (std::uint64_t t = 0; t < 5; ++t) ASSERT_TRUE(h.add(t, 0, 1));
  h.ring.kick_prepare();
  for (int k = 0; k < 5; ++k) {
    FakeChain c = h.pop();
    h.dev().push(c.id, 1);
  }
  DriverUsed out[3];
  Result<std::size_t> n = h.ring.get_used_burst(out);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 3u);
  EXPECT_EQ(out[0].token, 0u);
  EXPECT_EQ(out[2].token, 2u);
  n = h.ring.get_used_burst(out);
  ASSERT_EQ(*n, 2u);
  EXPECT_EQ(out[1].token, 4u);
  EXPECT_EQ(*h.ring.get_used_burst(out), 0u);
  EXPECT_EQ(*h.ring.get_used_burst(std::span<DriverUsed>()), 0u);
}

TYPED_TEST(DriverAddTest, UnconfiguredRingIsNotReady) {
  typename TypeParam::Ring ring;
  DriverBuffer b{0x1000, 1};
  Result<std::uint16_t> r = ring.add(std::span(&b, 1), {}, 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::not_ready);
  DriverUsed u{};
  Result<bool> g = ring.get_used(u);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error(), Errc::not_ready);
  EXPECT_FALSE(ring.kick_prepare());
  EXPECT_FALSE(ring.enable_cb());
}

TYPED_TEST(DriverAddTest, ConfigureValidates) {
  alignas(64) static std::byte mem[4096];
  typename TypeParam::Ring ring;
  DriverConfig c{.size = 8, .features = TypeParam::kLayoutFeatures, .desc = mem,
                 .avail = mem + 1024, .used = mem + 2048};
  EXPECT_TRUE(ring.configure(c));
  for (std::uint32_t bad : {0u, 32769u}) {
    c.size = static_cast<std::uint16_t>(bad);
    EXPECT_EQ(ring.configure(c).error(), Errc::bad_queue_size) << bad;
  }
  c.size = 3;  // split needs a power of two (§2.7), packed does not (§2.8)
  EXPECT_EQ(static_cast<bool>(ring.configure(c)), TypeParam::kPacked);
  c.size = 8;
  c.desc = mem + 8;
  EXPECT_EQ(ring.configure(c).error(), Errc::misaligned_ring);
  c.desc = mem;
  c.used = mem + 2049;
  EXPECT_EQ(ring.configure(c).error(), Errc::misaligned_ring);
  c.used = nullptr;
  EXPECT_EQ(ring.configure(c).error(), Errc::not_ready);
  c.used = mem + 2048;
  c.indirect_max = 4;
  EXPECT_EQ(ring.configure(c).error(), Errc::not_ready);  // pool size without a pool
  c.indirect_host = mem + 3072 + 4;
  EXPECT_EQ(ring.configure(c).error(), Errc::misaligned_ring);
}

}  // namespace
}  // namespace vireo::vring::test
