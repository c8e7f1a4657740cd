// Shared fixture for the malicious-guest suites: every buffer a chain names lies in a canary-filled
// data area, and after a violation the ring must be sticky-broken, must not have published any
// used element, and must not have written a byte anywhere (data area, guard bands).
#pragma once

#include <gtest/gtest.h>

#include "tests/support/ring_fakes.hpp"

namespace vireo::test {

template <class Layout>
class MaliciousTest : public ::testing::Test {
 protected:
  static constexpr std::size_t kDataBytes = 4096;

  void SetUp() override {
    data = h.guest.alloc(kDataBytes, 4096);
    h.guest.fill(data, kDataBytes, TestGuest::kCanary);
  }

  void publish(ChainBuilder& b) {
    auto id = b.build();
    ASSERT_TRUE(id) << id.error();
    h.drv.publish();
  }

  // Pops; the guest broke rule `e`. Checks the sticky broken state and that nothing was touched.
  void expect_violation(vring::Errc e) {
    vring::Result<bool> got = h.ring.pop(h.chain);
    ASSERT_FALSE(got) << "expected " << vring::to_string(e);
    EXPECT_EQ(got.error(), e) << vring::to_string(got.error());
    EXPECT_TRUE(h.ring.broken());
    EXPECT_EQ(h.ring.error(), e);
    vring::Result<bool> again = h.ring.pop(h.chain);
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error(), vring::Errc::broken);
    h.ring.flush();
    EXPECT_FALSE(h.ring.needs_notification());
    EXPECT_FALSE(h.drv.read_used()) << "a broken ring publishes nothing";
    EXPECT_TRUE(h.guest.guards_intact()) << "write outside guest memory";
    EXPECT_TRUE(h.guest.all_equal(data, kDataBytes, TestGuest::kCanary)) << "buffer written";
  }

  RingHarness<Layout> h{8};
  std::uint64_t data = 0;
};

}  // namespace vireo::test
