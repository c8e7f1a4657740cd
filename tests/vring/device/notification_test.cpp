// Notification decisions: used buffer notifications (needs_notification) and available buffer
// notification suppression (disable/enable_notification), split (§2.7.7, §2.7.10) and packed
// (§2.8.10), with and without EVENT_IDX.
#include <gtest/gtest.h>

#include "tests/support/ring_fakes.hpp"

namespace vireo::test {
namespace {

using namespace vring;

constexpr std::uint64_t kEventIdx = feature_bit(kFEventIdx);

// Makes n buffers available, pops and completes them, publishes with one flush, drains used.
template <class H>
void complete(H& h, std::uint64_t buf, int n) {
  for (int i = 0; i < n; ++i) ASSERT_TRUE(h.drv.chain().writable(buf, 8).build());
  h.drv.publish();
  for (int i = 0; i < n; ++i) {
    Result<bool> got = h.ring.pop(h.chain);
    ASSERT_TRUE(got && *got);
    h.ring.push(h.chain.head(), 0);
  }
  h.ring.flush();
  while (h.drv.read_used()) {
  }
}

class SplitNotify : public ::testing::Test {
 protected:
  RingHarness<SplitLayout> h{8};
  std::uint64_t buf = h.buffer(8);
};

TEST_F(SplitNotify, NoInterruptFlagSuppressesWithoutEventIdx) {
  ASSERT_TRUE(h.configure());
  complete(h, buf, 1);
  EXPECT_TRUE(h.ring.needs_notification());
  EXPECT_FALSE(h.ring.needs_notification()) << "nothing used since the last decision";
  h.drv.set_avail_flags(kAvailFNoInterrupt);
  complete(h, buf, 1);
  EXPECT_FALSE(h.ring.needs_notification());
  h.drv.set_avail_flags(0);
  complete(h, buf, 1);
  EXPECT_TRUE(h.ring.needs_notification());
}

TEST_F(SplitNotify, UsedEventDecidesWithEventIdx) {
  ASSERT_TRUE(h.configure(kEventIdx));
  complete(h, buf, 1);  // used idx 0 -> 1
  EXPECT_TRUE(h.ring.needs_notification()) << "first decision has no previous window";
  h.drv.set_used_event(3);
  complete(h, buf, 1);  // [1, 2)
  EXPECT_FALSE(h.ring.needs_notification());
  complete(h, buf, 2);  // [2, 4) passes 3
  EXPECT_TRUE(h.ring.needs_notification());
  complete(h, buf, 1);  // [4, 5)
  EXPECT_FALSE(h.ring.needs_notification());
  h.drv.set_avail_flags(kAvailFNoInterrupt);  // ignored with EVENT_IDX
  h.drv.set_used_event(5);
  complete(h, buf, 1);  // [5, 6)
  EXPECT_TRUE(h.ring.needs_notification());
  h.drv.set_used_event(6);
  complete(h, buf, 4);  // [6, 10): the event is the first of a batch, not the last
  EXPECT_TRUE(h.ring.needs_notification());
}

TEST_F(SplitNotify, UsedEventAcrossIndexWrap) {
  ASSERT_TRUE(h.configure(kEventIdx));
  for (int i = 0; i < 65532 / 4; ++i) complete(h, buf, 4);  // used idx 65532
  EXPECT_TRUE(h.ring.needs_notification());
  h.drv.set_used_event(1);  // after the 16-bit wrap
  complete(h, buf, 3);      // [65532, 65535)
  EXPECT_FALSE(h.ring.needs_notification());
  complete(h, buf, 3);  // [65535, 2) passes 0 and 1
  EXPECT_TRUE(h.ring.needs_notification());
  EXPECT_EQ(h.drv.used_idx(), 2);
}

TEST_F(SplitNotify, DisableSetsNoNotifyWithoutEventIdx) {
  ASSERT_TRUE(h.configure());
  h.ring.disable_notification();
  EXPECT_EQ(h.drv.used_flags(), kUsedFNoNotify);
  EXPECT_FALSE(h.ring.enable_notification());
  EXPECT_EQ(h.drv.used_flags(), 0);
}

TEST_F(SplitNotify, EnableWritesAvailEventWithEventIdx) {
  ASSERT_TRUE(h.configure(kEventIdx));
  complete(h, buf, 3);
  EXPECT_EQ(h.drv.avail_event(), 3) << "pop keeps avail_event at next_avail while enabled";
  h.ring.disable_notification();
  EXPECT_EQ(h.drv.used_flags(), 0) << "§2.7.10.2: flags stay 0 with EVENT_IDX";
  complete(h, buf, 2);
  EXPECT_EQ(h.drv.avail_event(), 3) << "disabled: avail_event is left behind";
  EXPECT_FALSE(h.ring.enable_notification());
  EXPECT_EQ(h.drv.avail_event(), 5);
}

class PackedNotify : public ::testing::Test {
 protected:
  RingHarness<PackedLayout> h{8};
  std::uint64_t buf = h.buffer(8);
};

TEST_F(PackedNotify, DriverEventFlagsWithoutEventIdx) {
  ASSERT_TRUE(h.configure());
  complete(h, buf, 1);
  EXPECT_TRUE(h.ring.needs_notification()) << "RING_EVENT_FLAGS_ENABLE (0) is the initial state";
  EXPECT_FALSE(h.ring.needs_notification());
  h.drv.set_driver_event(kRingEventFlagsDisable, 0);
  complete(h, buf, 1);
  EXPECT_FALSE(h.ring.needs_notification());
  h.drv.set_driver_event(kRingEventFlagsEnable, 0);
  complete(h, buf, 1);
  EXPECT_TRUE(h.ring.needs_notification());
  h.drv.set_driver_event(kRingEventFlagsDesc, encode_off_wrap({0, false}));
  complete(h, buf, 1);
  EXPECT_TRUE(h.ring.needs_notification()) << "DESC without EVENT_IDX is treated as enable";
}

TEST_F(PackedNotify, DescEventWithOffWrap) {
  ASSERT_TRUE(h.configure(kEventIdx));
  complete(h, buf, 1);  // used {1, wrap 1}
  EXPECT_TRUE(h.ring.needs_notification());
  h.drv.set_driver_event(kRingEventFlagsDesc, encode_off_wrap({3, true}));
  complete(h, buf, 1);  // {1,1} -> {2,1}
  EXPECT_FALSE(h.ring.needs_notification());
  complete(h, buf, 2);  // {2,1} -> {4,1}: slot 3 of this lap
  EXPECT_TRUE(h.ring.needs_notification());
  h.drv.set_driver_event(kRingEventFlagsDesc, encode_off_wrap({1, false}));  // next lap
  complete(h, buf, 4);  // {4,1} -> {0,0}
  EXPECT_FALSE(h.ring.needs_notification());
  complete(h, buf, 2);  // {0,0} -> {2,0}: slot 1 of the next lap
  EXPECT_TRUE(h.ring.needs_notification());
  h.drv.set_driver_event(kRingEventFlagsDesc, encode_off_wrap({6, true}));  // already passed
  complete(h, buf, 1);
  EXPECT_FALSE(h.ring.needs_notification());
  h.drv.set_driver_event(kRingEventFlagsDesc, encode_off_wrap({4, false}));
  complete(h, buf, 3);  // {3,0} -> {6,0}: slot 4 in the middle of the batch
  EXPECT_TRUE(h.ring.needs_notification());
  h.drv.set_driver_event(kRingEventFlagsDisable, encode_off_wrap({6, false}));
  complete(h, buf, 1);  // would match, but DISABLE wins
  EXPECT_FALSE(h.ring.needs_notification());
}

TEST_F(PackedNotify, DisableAndEnableWriteDeviceEvent) {
  ASSERT_TRUE(h.configure());
  h.ring.disable_notification();
  EXPECT_EQ(h.drv.device_event().flags, kRingEventFlagsDisable);
  EXPECT_FALSE(h.ring.enable_notification());
  EXPECT_EQ(h.drv.device_event().flags, kRingEventFlagsEnable);
}

TEST_F(PackedNotify, EnableWithEventIdxAsksForTheNextAvailPosition) {
  ASSERT_TRUE(h.configure(kEventIdx));
  complete(h, buf, 6);
  h.ring.disable_notification();
  EXPECT_EQ(h.drv.device_event().flags, kRingEventFlagsDisable);
  complete(h, buf, 3);  // avail cursor {1, wrap 0}
  EXPECT_FALSE(h.ring.enable_notification());
  EXPECT_EQ(h.drv.device_event().flags, kRingEventFlagsDesc);
  EXPECT_EQ(decode_off_wrap(h.drv.device_event().off_wrap), (PackedCursor{1, false}));
  complete(h, buf, 2);
  EXPECT_EQ(decode_off_wrap(h.drv.device_event().off_wrap), (PackedCursor{3, false}))
      << "pop moves off_wrap along while enabled";
}

template <class Layout>
class NotifyRecheckTest : public ::testing::Test {
 protected:
  RingHarness<Layout> harness{8};
  std::uint64_t buffer_gpa = harness.buffer(8);
};
TYPED_TEST_SUITE(NotifyRecheckTest, RingLayouts, LayoutNames);

TYPED_TEST(NotifyRecheckTest, EnableReportsWorkThatArrivedWhileDisabled) {
  for (std::uint64_t features : {std::uint64_t{0}, kEventIdx}) {
    RingHarness<TypeParam> h{8};
    const std::uint64_t buf = h.buffer(8);
    ASSERT_TRUE(h.configure(features));
    h.ring.disable_notification();
    ASSERT_TRUE(h.drv.chain().writable(buf, 8).build());
    h.drv.publish();  // the driver saw notifications disabled and did not kick
    EXPECT_TRUE(h.ring.enable_notification()) << "re-check after the full fence finds it";
    ASSERT_TRUE(*h.ring.pop(h.chain));
    h.ring.push(h.chain.head(), 0);
    h.ring.flush();
    EXPECT_FALSE(h.ring.enable_notification());
    while (h.drv.read_used()) {
    }
  }
}

// has_available(): the look before work that needs a buffer (the net RX path asks it before it
// copies a burst of frame views). It must see exactly what pop_burst() would pop, and pop nothing.
TYPED_TEST(NotifyRecheckTest, HasAvailableSeesWhatPopWouldPopAndPopsNothing) {
  auto& h = this->harness;
  EXPECT_FALSE(h.ring.has_available()) << "not configured";
  ASSERT_TRUE(h.configure(kEventIdx));
  EXPECT_FALSE(h.ring.has_available());
  ASSERT_TRUE(h.drv.chain().writable(this->buffer_gpa, 8).build());
  EXPECT_FALSE(h.ring.has_available()) << "built but not yet published by the driver";
  h.drv.publish();
  EXPECT_TRUE(h.ring.has_available());
  EXPECT_TRUE(h.ring.has_available()) << "looking twice pops nothing";
  ASSERT_TRUE(*h.ring.pop(h.chain));
  EXPECT_FALSE(h.ring.has_available());
  EXPECT_FALSE(*h.ring.pop(h.chain));
}

TYPED_TEST(NotifyRecheckTest, DrainLoopLosesNoBuffer) {
  auto& h = this->harness;
  ASSERT_TRUE(h.configure(kEventIdx));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(h.drv.chain().writable(this->buffer_gpa, 8).build());
  h.drv.publish();
  int processed = 0;
  int passes = 0;
  for (;;) {
    h.ring.disable_notification();
    while (*h.ring.pop(h.chain)) {
      h.ring.push(h.chain.head(), 0);
      ++processed;
    }
    h.ring.flush();
    if (passes++ == 0) {  // a buffer arrives between the drain and the re-enable
      ASSERT_TRUE(h.drv.chain().writable(this->buffer_gpa, 8).build());
      h.drv.publish();
    }
    if (!h.ring.enable_notification()) break;
  }
  EXPECT_EQ(processed, 4);
  EXPECT_EQ(passes, 2);
}

}  // namespace
}  // namespace vireo::test
