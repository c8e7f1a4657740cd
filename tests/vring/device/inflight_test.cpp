// Inflight tracking (vhost-user.rst "Inflight I/O tracking") recorded by the device rings, on
// both layouts: pops mark entries in flight in counter order, published used elements clear
// them; a split ring re-attached to the region after a "crash" resubmits what was in flight.
#include <gtest/gtest.h>

#include <vector>

#include "tests/support/ring_fakes.hpp"
#include "vring/device_queue.hpp"
#include "vring/inflight_log.hpp"

namespace vireo::test {
namespace {

using namespace vring;

template <class Layout>
class InflightTest : public ::testing::Test {
 protected:
  static constexpr InflightLog::Layout kLayout =
      Layout::kPacked ? InflightLog::Layout::packed : InflightLog::Layout::split;
  InflightTest() : region(32 + 32 * 8), log(kLayout, region.data(), 8) { log.format(); }
  std::uint16_t add_chain() {
    auto id = harness.drv.chain().writable(harness.buffer(64), 64).build();
    EXPECT_TRUE(id) << id.error();
    return id.value_or(0);
  }
  RingHarness<Layout> harness{8};
  RingHarness<Layout>& h = harness;
  std::vector<std::byte> region;  // one queue region (header + 8 entries), front-end memory
  InflightLog log;
};
TYPED_TEST_SUITE(InflightTest, RingLayouts, LayoutNames);

TYPED_TEST(InflightTest, PopsAreInFlightInOrderUntilPublished) {
  auto& hh = this->harness;
  ASSERT_TRUE(hh.configure());
  hh.ring.set_inflight_log(&this->log);
  const std::uint16_t a = this->add_chain(), b = this->add_chain(), c = this->add_chain();
  hh.drv.publish();
  std::vector<Chain> chains;
  for (int i = 0; i < 3; ++i) {
    chains.emplace_back(8);
    ASSERT_TRUE(hh.ring.pop(chains.back()).value_or(false));
  }
  EXPECT_EQ(this->log.pending(), (std::vector<std::uint16_t>{a, b, c}));
  hh.ring.push(chains[1], 64);  // out of order
  EXPECT_EQ(this->log.pending().size(), 3u) << "cleared only once published";
  hh.ring.flush();
  EXPECT_EQ(this->log.pending(), (std::vector<std::uint16_t>{a, c}));
  if (TypeParam::kPacked) {
    EXPECT_EQ(this->log.packed_hdr().used_idx, 1u);  // b (one slot) was written at used slot 0
    EXPECT_EQ(this->log.packed_hdr().used_wrap_counter, 1u);
  } else {
    EXPECT_EQ(this->log.split_hdr().used_idx, 1u);
    EXPECT_EQ(this->log.split_hdr().last_batch_head, b);
    EXPECT_GT(this->log.split_desc(c).counter, this->log.split_desc(a).counter);
  }
}

TYPED_TEST(InflightTest, DetachedRingRecordsNothing) {
  auto& hh = this->harness;
  ASSERT_TRUE(hh.configure());
  this->add_chain();
  hh.drv.publish();
  ASSERT_TRUE(hh.ring.pop(hh.chain).value_or(false));
  EXPECT_TRUE(this->log.pending().empty());
}

using SplitInflight = InflightTest<SplitLayout>;

TEST_F(SplitInflight, RestartedRingResubmitsInFlightHeadsFirst) {
  ASSERT_TRUE(h.configure());
  h.ring.set_inflight_log(&log);
  const std::uint16_t a = add_chain(), b = add_chain(), c = add_chain();
  h.drv.publish();
  std::vector<Chain> chains;
  for (int i = 0; i < 3; ++i) {
    chains.emplace_back(8);
    ASSERT_TRUE(h.ring.pop(chains.back()).value_or(false));
  }
  h.ring.push(chains[0], 64);
  h.ring.flush();
  // The back-end "crashes": a new ring, configured from SET_VRING_BASE = 3 (all popped), reads
  // used->idx = 1 and the region says b and c are in flight.
  SplitDeviceRing<RegionTable> restarted;
  ASSERT_TRUE(restarted.configure(&h.guest.mem(), h.drv.template config<SplitDeviceRing<RegionTable>>(0),
                                  RingState{{3, true}, {0, true}}));
  InflightLog again(InflightLog::Layout::split, region.data(), 8);
  restarted.set_inflight_log(&again);
  Chain chain(8);
  ASSERT_TRUE(restarted.pop(chain).value_or(false));
  EXPECT_EQ(chain.head().id, b);
  ASSERT_TRUE(restarted.pop(chain).value_or(false));
  EXPECT_EQ(chain.head().id, c);
  EXPECT_FALSE(restarted.pop(chain).value_or(true)) << "nothing else is available";
  EXPECT_EQ(restarted.state().avail.idx, 3u);  // used->idx 1 + 2 resubmitted
  (void)a;
}

TEST_F(SplitInflight, LastBatchPublishedButNotClearedIsRolledBack) {
  ASSERT_TRUE(h.configure());
  h.ring.set_inflight_log(&log);
  const std::uint16_t a = add_chain(), b = add_chain();
  h.drv.publish();
  Chain ca(8), cb(8);
  ASSERT_TRUE(h.ring.pop(ca).value_or(false));
  ASSERT_TRUE(h.ring.pop(cb).value_or(false));
  h.ring.push(ca, 64);
  h.ring.flush();
  // Simulate a crash between publishing used->idx and clearing the batch.
  log.split_desc(a).inflight = 1;
  log.split_hdr().used_idx = 0;
  InflightLog again(InflightLog::Layout::split, region.data(), 8);
  EXPECT_EQ(again.split_recover(1), (std::vector<std::uint16_t>{b}));
}

}  // namespace
}  // namespace vireo::test
