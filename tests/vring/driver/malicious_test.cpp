// A malicious or broken device: each test is named after the violation. The driver must detect it
// (Errc::used_id_bad), become sticky-broken, and never touch memory out of bounds.
#include <gtest/gtest.h>

#include <cstring>

#include "driver_harness.hpp"

namespace vireo::vring::test {
namespace {

template <class L>
class DriverMaliciousTest : public ::testing::Test {};
TYPED_TEST_SUITE(DriverMaliciousTest, DriverLayouts, LayoutName);

template <class L>
void expect_used_id_bad(DriverHarness<L>& h) {
  DriverUsed u{};
  Result<bool> r = h.ring.get_used(u);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Errc::used_id_bad);
  EXPECT_TRUE(h.ring.broken());
  EXPECT_EQ(h.ring.error(), Errc::used_id_bad);
}

// Adds and publishes one single-descriptor buffer, which the device takes.
template <class L>
FakeChain one_outstanding(DriverHarness<L>& h, std::uint64_t token = 1) {
  EXPECT_TRUE(h.add(token, 0, 1));
  h.ring.kick_prepare();
  return h.pop();
}

TYPED_TEST(DriverMaliciousTest, UsedIdOutOfRange) {
  for (std::uint32_t bad : {8u, 0xffffu}) {
    DriverHarness<TypeParam> h(8);
    one_outstanding(h);
    h.dev().push(static_cast<std::uint16_t>(bad), 4);
    expect_used_id_bad(h);
  }
}

TYPED_TEST(DriverMaliciousTest, UsedIdOutOfRangeHighBits) {  // split ids are le32 on the wire
  DriverHarness<TypeParam> h(8);
  FakeChain c = one_outstanding(h);
  if constexpr (TypeParam::kPacked) {
    h.dev().push(static_cast<std::uint16_t>(c.id + 8), 4);
  } else {
    h.dev().push(0x10000u + c.id, 4);  // truncating to 16 bits would name a real head
  }
  expect_used_id_bad(h);
}

TYPED_TEST(DriverMaliciousTest, UsedIdNotOutstanding) {
  DriverHarness<TypeParam> h(8);
  FakeChain c = one_outstanding(h);
  h.dev().push(static_cast<std::uint16_t>(c.id + 3), 4);  // in range, never added
  expect_used_id_bad(h);
}

TYPED_TEST(DriverMaliciousTest, UsedIdNotOutstandingTwice) {
  DriverHarness<TypeParam> h(8);
  FakeChain c = one_outstanding(h);
  one_outstanding(h, 2);
  h.dev().push(c.id, 4);
  DriverUsed u{};
  ASSERT_TRUE(*h.ring.get_used(u));
  h.dev().push(c.id, 4);  // completed a second time
  expect_used_id_bad(h);
}

TYPED_TEST(DriverMaliciousTest, UsedIdNotYetAvailable) {
  DriverHarness<TypeParam> h(8);
  one_outstanding(h);
  Result<std::uint16_t> hidden = h.add(9, 0, 1);  // written to the ring, not published
  ASSERT_TRUE(hidden);
  h.dev().push(*hidden, 4);
  expect_used_id_bad(h);
}

TYPED_TEST(DriverMaliciousTest, BrokenIsSticky) {
  DriverHarness<TypeParam> h(8, feature_bit(kFEventIdx));
  FakeChain c = one_outstanding(h);
  h.dev().push(static_cast<std::uint16_t>(c.id + 5), 4);
  expect_used_id_bad(h);
  const std::uint16_t free_before = h.ring.num_free();
  h.dev().push(c.id, 4);  // even a valid element afterwards
  DriverUsed u{};
  Result<bool> g = h.ring.get_used(u);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error(), Errc::broken);
  DriverUsed burst[4];
  Result<std::size_t> b = h.ring.get_used_burst(burst);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error(), Errc::broken);
  Result<std::uint16_t> a = h.add(3, 1, 0);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error(), Errc::broken);
  EXPECT_FALSE(h.ring.kick_prepare());
  EXPECT_FALSE(h.ring.enable_cb());
  h.ring.disable_cb();
  EXPECT_EQ(h.ring.error(), Errc::used_id_bad);
  EXPECT_EQ(h.ring.num_free(), free_before);
  // configure() is the reset.
  ASSERT_TRUE(h.ring.configure(h.config()));
  EXPECT_FALSE(h.ring.broken());
  EXPECT_EQ(h.ring.error(), Errc::ok);
  EXPECT_TRUE(h.add(4, 1, 0));
}

TYPED_TEST(DriverMaliciousTest, BurstHandsBackGoodBuffersBeforeViolation) {
  DriverHarness<TypeParam> h(8);
  FakeChain a = one_outstanding(h, 1);
  one_outstanding(h, 2);
  h.dev().push(a.id, 4);
  h.dev().push(7, 4);  // never added
  DriverUsed out[4];
  Result<std::size_t> n = h.ring.get_used_burst(out);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 1u);
  EXPECT_EQ(out[0].token, 1u);
  EXPECT_TRUE(h.ring.broken());
  EXPECT_EQ(h.ring.error(), Errc::used_id_bad);
}

TEST(SplitDriverMalicious, UsedIdxJump) {
  for (std::uint16_t jump : {std::uint16_t{3}, std::uint16_t{5}, std::uint16_t{0x8000},
                             std::uint16_t{0xffff}}) {
    DriverHarness<SplitLayout> h(4);
    one_outstanding(h, 1);
    one_outstanding(h, 2);
    h.dev().set_used_idx(jump);  // 2 buffers in flight: any move > 2 is impossible
    expect_used_id_bad(h);
  }
}

TEST(SplitDriverMalicious, DescTableScribbleDoesNotCorruptFreeList) {
  DriverHarness<SplitLayout> h(8);
  std::memset(h.config().desc, 0xff, split_desc_bytes(8));  // device rewrites every next/flags
  for (std::uint64_t t = 0; t < 4; ++t) ASSERT_TRUE(h.add(t, 1, 1));
  EXPECT_EQ(h.ring.num_free(), 0);
  h.ring.kick_prepare();
  for (std::uint64_t t = 0; t < 4; ++t) {
    FakeChain c = h.pop();
    EXPECT_EQ(c.descs.size(), 2u);
    EXPECT_EQ(c.descs[0].addr, buf_gpa(t, 0));
  }
}

TEST(PackedDriverMalicious, PackedUsedWrongWrap) {
  DriverHarness<PackedLayout> h(4);
  FakeChain c = one_outstanding(h, 1);
  DriverUsed u{};
  // First lap: used wrap counter is 1. None of these is a used descriptor (§2.8.1).
  const std::uint16_t not_used[] = {
      0,                                            // AVAIL = USED = 0: previous-lap used
      kDescFAvail,                                  // still available
      kDescFUsed,                                   // AVAIL != USED
      static_cast<std::uint16_t>(kDescFUsed | kDescFWrite),
  };
  for (std::uint16_t flags : not_used) {
    h.dev().write_used_raw(0, c.id, 4, flags);
    Result<bool> r = h.ring.get_used(u);
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r) << flags;
    EXPECT_FALSE(h.ring.enable_cb()) << flags;
  }
  h.dev().write_used_raw(0, 0xffff, 4, 0);  // garbage id behind wrong wrap bits: ignored
  ASSERT_FALSE(*h.ring.get_used(u));
  EXPECT_FALSE(h.ring.broken());
  h.dev().write_used_raw(0, c.id, 4, PackedDeviceFake::used_flags(true, true));
  ASSERT_TRUE(*h.ring.get_used(u));
  EXPECT_EQ(u.token, 1u);
}

TEST(PackedDriverMalicious, PackedUsedStaleFromPreviousLap) {
  DriverHarness<PackedLayout> h(2);
  for (std::uint64_t t = 0; t < 2; ++t) {  // one full lap: slots 0, 1 now hold lap-1 used descs
    FakeChain c = one_outstanding(h, t);
    h.dev().push(c.id, 4);
    DriverUsed u{};
    ASSERT_TRUE(*h.ring.get_used(u));
  }
  FakeChain c = one_outstanding(h, 7);  // lap 2 (wrap 0) at slot 0
  DriverUsed u{};
  h.dev().write_used_raw(0, c.id, 4, PackedDeviceFake::used_flags(true, true));  // lap-1 bits
  ASSERT_FALSE(*h.ring.get_used(u));
  h.dev().write_used_raw(0, c.id, 4, PackedDeviceFake::used_flags(false, true));
  ASSERT_TRUE(*h.ring.get_used(u));
  EXPECT_EQ(u.token, 7u);
  EXPECT_FALSE(h.ring.broken());
}

}  // namespace
}  // namespace vireo::vring::test
