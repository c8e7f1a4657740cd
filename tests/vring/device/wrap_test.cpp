// Long runs with a driver fake: packed wrap counters over >= 3 x 65536 buffers on rings of size
// 1, 2, 256 and 32768, and split 16-bit index wrap, with random bursts, multi-descriptor lists and
// out-of-order completion. Every used element must name the right buffer, and the device cursors
// must match the driver's whenever the ring is idle.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "tests/support/ring_fakes.hpp"

namespace vireo::test {
namespace {

using namespace vring;

constexpr std::uint64_t kOps = 3 * 65536 + 7;

template <class Layout>
void run_long(std::uint16_t size, std::uint64_t ops, std::uint64_t features) {
  const std::size_t guest_bytes = std::size_t{1} << 21;
  RingHarness<Layout> h(size, guest_bytes);
  ASSERT_TRUE(h.configure(features));
  const std::uint64_t buf = h.buffer(64);
  std::mt19937 rng(size * 7919u + 1);
  std::vector<Chain> chains(8);
  std::vector<std::uint16_t> expected;  // ids in the order the driver made them available
  std::vector<std::uint16_t> order;
  std::uint64_t done = 0;
  std::uint64_t slots_total = 0;
  std::uint64_t reconnects = 0;
  while (done < ops) {
    expected.clear();
    const int burst = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < burst && h.drv.free_slots() > 0; ++i) {
      const std::uint32_t max_descs = std::min<std::uint32_t>(3, h.drv.free_slots());
      const std::uint32_t descs = 1 + rng() % max_descs;
      ChainBuilder b = h.drv.chain();
      for (std::uint32_t d = 0; d + 1 < descs; ++d) b.readable(buf, 16);
      b.writable(buf + 32, 32);
      auto id = b.build();
      ASSERT_TRUE(id) << id.error();
      expected.push_back(*id);
      slots_total += Layout::kPacked ? descs : 0;
    }
    h.drv.publish();
    Result<std::size_t> n = h.ring.pop_burst(chains);
    ASSERT_TRUE(n) << to_string(n.error());
    ASSERT_EQ(*n, expected.size());
    order.resize(*n);
    for (std::size_t i = 0; i < *n; ++i) {
      ASSERT_EQ(chains[i].head().id, expected[i]);
      order[i] = static_cast<std::uint16_t>(i);
    }
    std::shuffle(order.begin(), order.end(), rng);  // complete out of order
    for (std::uint16_t i : order) h.ring.push(chains[i], chains[i].head().id);
    h.ring.flush();
    (void)h.ring.needs_notification();
    for (std::uint16_t i : order) {
      std::optional<UsedBuf> u = h.drv.read_used();
      ASSERT_TRUE(u);
      ASSERT_EQ(u->id, chains[i].head().id);
      ASSERT_EQ(u->len, u->id);  // pushed with written = id
    }
    ASSERT_FALSE(h.drv.read_used());
    ASSERT_EQ(h.ring.inflight(), 0);
    done += *n;
    if constexpr (Layout::kPacked) {
      // Idle ring: device cursors equal the driver's (index and wrap_counter).
      ASSERT_EQ(h.ring.state().avail, h.drv.avail_cursor());
      ASSERT_EQ(h.ring.state().used, h.drv.used_cursor());
      ASSERT_EQ(h.ring.state().avail.wrap, (slots_total / size) % 2 == 0);
    } else {
      ASSERT_EQ(h.ring.state().avail.idx, h.drv.avail_idx());
      ASSERT_EQ(h.ring.state().used.idx, h.drv.used_idx());
    }
    if (rng() % 4096 == 0) {  // reconnect: GET_VRING_BASE then SET_VRING_BASE on a new ring
      const RingState saved = h.ring.state();
      ASSERT_TRUE(h.ring.configure(&h.guest.mem(),
                                   h.drv.template config<typename RingHarness<Layout>::Ring>(
                                       features | Layout::kFeatures),
                                   saved));
      ASSERT_EQ(h.ring.state(), saved);
      ++reconnects;
    }
  }
  if constexpr (Layout::kPacked) {
    EXPECT_GE(slots_total / size, 3u) << "the ring wrapped at least three times";
  }
  EXPECT_TRUE(h.guest.guards_intact());
  ::testing::Test::RecordProperty("reconnects", static_cast<int>(reconnects));
}

class PackedWrap : public ::testing::TestWithParam<std::uint16_t> {};

TEST_P(PackedWrap, ThreeTimes65536Buffers) {
  run_long<PackedLayout>(GetParam(), kOps, feature_bit(kFEventIdx));
}
INSTANTIATE_TEST_SUITE_P(Sizes, PackedWrap, ::testing::Values(1, 2, 256, 32768));

class SplitWrap : public ::testing::TestWithParam<std::uint16_t> {};

TEST_P(SplitWrap, IndexesWrapThreeTimes) {
  run_long<SplitLayout>(GetParam(), kOps, feature_bit(kFEventIdx));
}
INSTANTIATE_TEST_SUITE_P(Sizes, SplitWrap, ::testing::Values(1, 4, 256, 32768));

}  // namespace
}  // namespace vireo::test
