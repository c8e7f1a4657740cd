// DriverQueue: layout chosen from VIRTIO_F_RING_PACKED, one dispatch per burst.
#include <gtest/gtest.h>

#include <variant>

#include "driver_harness.hpp"
#include "vring/driver_queue.hpp"

namespace vireo::vring::test {
namespace {

template <class L>
class DriverQueueTest : public ::testing::Test {};
TYPED_TEST_SUITE(DriverQueueTest, DriverLayouts, LayoutName);

TYPED_TEST(DriverQueueTest, ConfigurePicksLayoutAndBurstRuns) {
  DriverHarness<TypeParam> h(8);  // provides the memory and the device fake
  DriverQueue q;
  ASSERT_TRUE(configure_driver_queue(q, h.config()));
  EXPECT_EQ(std::holds_alternative<PackedDriverRing>(q), TypeParam::kPacked);

  const bool kick = process_burst(q, [](auto& ring) {
    for (std::uint64_t t = 0; t < 3; ++t) {
      DriverBuffer w{buf_gpa(t, 0), buf_len(t, 0)};
      EXPECT_TRUE(ring.add({}, std::span(&w, 1), t));
    }
    return ring.kick_prepare();
  });
  EXPECT_TRUE(kick);
  for (int k = 0; k < 3; ++k) {
    FakeChain c = h.pop();
    h.dev().push(c.id, 2);
  }
  const std::size_t reaped = process_burst(q, [](auto& ring) {
    DriverUsed out[8];
    return ring.get_used_burst(out).value_or(0);
  });
  EXPECT_EQ(reaped, 3u);
  const DriverQueue& cq = q;
  EXPECT_EQ(process_burst(cq, [](const auto& ring) { return ring.num_free(); }), 8);
}

}  // namespace
}  // namespace vireo::vring::test
