// Notification decisions: kick_prepare against NO_NOTIFY / device event suppression and EVENT_IDX
// windows (incl. 16-bit index and packed wrap-counter wrap), disable_cb/enable_cb and the race-free
// re-check.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "driver_harness.hpp"

namespace vireo::vring::test {
namespace {

template <class L>
class DriverNotifyTest : public ::testing::Test {};
TYPED_TEST_SUITE(DriverNotifyTest, DriverLayouts, LayoutName);

constexpr std::uint64_t kEventIdx = feature_bit(kFEventIdx);

// One single-descriptor buffer through the whole ring; returns kick_prepare's decision.
template <class L>
bool cycle_one(DriverHarness<L>& h, std::uint64_t token) {
  EXPECT_TRUE(h.add(token, 0, 1));
  const bool kick = h.ring.kick_prepare();
  FakeChain c = h.pop();
  h.dev().push(c.id, 1);
  DriverUsed u{};
  EXPECT_TRUE(*h.ring.get_used(u));
  EXPECT_EQ(u.token, token);
  return kick;
}

TYPED_TEST(DriverNotifyTest, KickUnlessDeviceSuppresses) {
  DriverHarness<TypeParam> h(4);
  EXPECT_TRUE(cycle_one(h, 0));
  h.dev().suppress_kicks(true);  // split: VIRTQ_USED_F_NO_NOTIFY, packed: DISABLE
  EXPECT_FALSE(cycle_one(h, 1));
  h.dev().suppress_kicks(false);
  EXPECT_TRUE(cycle_one(h, 2));
}

TYPED_TEST(DriverNotifyTest, NoKickWithoutNewBuffers) {
  DriverHarness<TypeParam> h(4);
  EXPECT_FALSE(h.ring.kick_prepare());
  ASSERT_TRUE(h.add(1, 1, 0));
  ASSERT_TRUE(h.add(2, 1, 0));
  EXPECT_TRUE(h.ring.kick_prepare());  // one decision per batch
  EXPECT_FALSE(h.ring.kick_prepare());
}

TYPED_TEST(DriverNotifyTest, EventIdxWindowWithinBatch) {
  DriverHarness<TypeParam> h(8, kEventIdx);
  h.dev().kick_event_at(2);
  ASSERT_TRUE(h.add(0, 1, 0));
  EXPECT_FALSE(h.ring.kick_prepare());  // [0, 1)
  ASSERT_TRUE(h.add(1, 1, 0));
  EXPECT_FALSE(h.ring.kick_prepare());  // [1, 2)
  ASSERT_TRUE(h.add(2, 1, 0));
  ASSERT_TRUE(h.add(3, 1, 0));
  EXPECT_TRUE(h.ring.kick_prepare());  // [2, 4) contains 2
  ASSERT_TRUE(h.add(4, 1, 0));
  EXPECT_FALSE(h.ring.kick_prepare());  // already passed
}

// Kicks exactly when buffer `event` is published, for events that sit at a lap boundary, across
// the packed wrap counter and across the 16-bit split index wrap (65535 -> 0). An event names a
// position modulo 2^16 (split) or modulo two laps (packed), so it is set shortly before it is due,
// as a device does.
TYPED_TEST(DriverNotifyTest, EventIdxKicksExactlyAtEvent) {
  for (std::uint64_t event : {0ull, 3ull, 4ull, 5ull, 1000ull, 65535ull}) {
    DriverHarness<TypeParam> h(4, kEventIdx);
    const std::uint64_t start = event - std::min<std::uint64_t>(event, 3);
    for (std::uint64_t k = 0; k < start; ++k) cycle_one(h, k);
    h.dev().kick_event_at(event);
    std::vector<std::uint64_t> kicks;
    for (std::uint64_t k = start; k <= event + 3; ++k)
      if (cycle_one(h, k)) kicks.push_back(k);
    EXPECT_EQ(kicks, std::vector<std::uint64_t>{event}) << "event " << event;
  }
}

TYPED_TEST(DriverNotifyTest, EventIdxBatchAcrossWrap) {
  DriverHarness<TypeParam> h(4, kEventIdx);
  const std::uint64_t m = 65534;  // split idx 65534; packed slot 2 in an odd lap (wrap 0)
  for (std::uint64_t k = 0; k < m; ++k) cycle_one(h, k);
  h.dev().kick_event_at(m + 1);
  ASSERT_TRUE(h.add(m, 1, 0));
  EXPECT_FALSE(h.ring.kick_prepare());
  ASSERT_TRUE(h.add(m + 1, 1, 0));
  ASSERT_TRUE(h.add(m + 2, 1, 0));  // split idx 65535 -> 1; packed slot 3 -> 1, wrap flips
  EXPECT_TRUE(h.ring.kick_prepare());
}

TYPED_TEST(DriverNotifyTest, DisableEnableCbWithoutEventIdx) {
  DriverHarness<TypeParam> h(4);
  EXPECT_TRUE(h.dev().wants_call(false));
  h.ring.disable_cb();
  EXPECT_FALSE(h.dev().wants_call(false));
  if constexpr (TypeParam::kPacked)
    EXPECT_EQ(h.dev().driver_event().flags, kRingEventFlagsDisable);
  else
    EXPECT_EQ(h.dev().avail_flags(), kAvailFNoInterrupt);
  EXPECT_FALSE(h.ring.enable_cb());
  EXPECT_TRUE(h.dev().wants_call(false));
}

TYPED_TEST(DriverNotifyTest, EnableCbWithEventIdxPointsAtNextUsed) {
  DriverHarness<TypeParam> h(4, kEventIdx);
  for (std::uint64_t k = 0; k < 6; ++k) cycle_one(h, k);  // packed: into the second lap
  h.ring.disable_cb();
  EXPECT_FALSE(h.ring.enable_cb());
  EXPECT_TRUE(h.dev().wants_call(true));
  if constexpr (TypeParam::kPacked) {
    const EventSuppress ev = h.dev().driver_event();
    EXPECT_EQ(ev.flags, kRingEventFlagsDesc);
    EXPECT_EQ(ev.off_wrap, encode_off_wrap(PackedCursor{2, false}));
  } else {
    EXPECT_EQ(h.dev().used_event(), 6);
  }
}

TYPED_TEST(DriverNotifyTest, UsedEventFollowsGetUsedOnlyWhileEnabled) {
  DriverHarness<TypeParam> h(4, kEventIdx);
  EXPECT_FALSE(h.ring.enable_cb());
  cycle_one(h, 0);
  EXPECT_TRUE(h.dev().wants_call(true));  // re-armed for the next used buffer
  h.ring.disable_cb();
  cycle_one(h, 1);
  cycle_one(h, 2);
  EXPECT_FALSE(h.dev().wants_call(true));  // not moved while disabled
  EXPECT_FALSE(h.ring.enable_cb());
  EXPECT_TRUE(h.dev().wants_call(true));
}

TYPED_TEST(DriverNotifyTest, EnableCbRecheckSeesPendingUsed) {
  for (std::uint64_t features : {std::uint64_t{0}, kEventIdx}) {
    DriverHarness<TypeParam> h(4, features);
    ASSERT_TRUE(h.add(1, 0, 1));
    h.ring.kick_prepare();
    h.ring.disable_cb();
    FakeChain c = h.pop();
    h.dev().push(c.id, 8);  // used before the driver re-enabled
    EXPECT_TRUE(h.ring.enable_cb()) << "must tell the caller to poll again";
    DriverUsed u{};
    ASSERT_TRUE(*h.ring.get_used(u));
    EXPECT_EQ(u.len, 8u);
    EXPECT_FALSE(h.ring.enable_cb());
  }
}

// Packed only: DESC events name a ring position *and* a wrap counter (§2.8.10).
TEST(PackedDriverNotify, DescEventNeedsMatchingWrapCounter) {
  DriverHarness<PackedLayout> h(4, kEventIdx);
  // Slot 1 in the second lap (wrap 0): buffer 5, not buffer 1.
  h.dev().set_device_event(kRingEventFlagsDesc, encode_off_wrap(PackedCursor{1, false}));
  std::vector<std::uint64_t> kicks;
  for (std::uint64_t k = 0; k < 8; ++k)
    if (cycle_one(h, k)) kicks.push_back(k);
  EXPECT_EQ(kicks, std::vector<std::uint64_t>{5});
}

TEST(PackedDriverNotify, ReservedOrUnnegotiatedModesKick) {
  DriverHarness<PackedLayout> h(4);  // no EVENT_IDX: DESC must not silence the driver
  h.dev().set_device_event(kRingEventFlagsDesc, encode_off_wrap(PackedCursor{3, true}));
  EXPECT_TRUE(cycle_one(h, 0));
  h.dev().set_device_event(0x3, 0);
  EXPECT_TRUE(cycle_one(h, 1));
}

// Split only: with EVENT_IDX the NO_NOTIFY flag is ignored (§2.7.10 "MUST ignore the lower bit").
TEST(SplitDriverNotify, EventIdxIgnoresNoNotify) {
  DriverHarness<SplitLayout> h(4, kEventIdx);
  h.dev().set_no_notify(true);
  h.dev().set_avail_event(0);
  EXPECT_TRUE(cycle_one(h, 0));
}

}  // namespace
}  // namespace vireo::vring::test
