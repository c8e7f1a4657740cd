// Long runs: >= 3 x 65536 add/get_used cycles per ring size, so split indexes wrap the 16-bit space
// several times and packed wrap counters flip many times. Chains of 1..3 descriptors plus some
// indirect buffers exercise the per-buffer ndescs accounting; completion is out of order.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "driver_harness.hpp"

namespace vireo::vring::test {
namespace {

template <class L>
class DriverWrapTest : public ::testing::Test {};
TYPED_TEST_SUITE(DriverWrapTest, DriverLayouts, LayoutName);

constexpr std::uint64_t kCycles = 3 * 65536;

std::uint64_t token_of(const FakeChain& c) { return (c.descs.at(0).addr - buf_gpa(0, 0)) / 0x1000; }

struct Shape {
  std::size_t nr, nw;
  bool indirect;
};
Shape shape_for(std::uint64_t token, std::uint16_t size) {
  const std::size_t n = std::min<std::size_t>(1 + token % 3, size);
  const bool indirect = token % 5 == 4;
  return Shape{n / 2, n - n / 2, indirect};
}

// Fills the ring, lets the device take everything and complete it in reverse (or interleaved)
// order, then reaps in bursts. Returns how many buffers completed.
template <class L>
std::uint64_t one_round(DriverHarness<L>& h, std::uint64_t& token, std::uint64_t round) {
  const std::uint16_t size = h.ring.size();
  std::uint64_t first = token;
  for (;;) {
    const Shape s = shape_for(token, size);
    const std::size_t need = s.indirect ? 1 : s.nr + s.nw;
    if (need > h.ring.num_free()) break;
    if (!h.add(token, s.nr, s.nw, s.indirect)) return 0;
    ++token;
  }
  h.ring.kick_prepare();
  std::vector<FakeChain> chains;
  while (std::optional<FakeChain> c = h.dev().pop()) chains.push_back(std::move(*c));
  EXPECT_EQ(chains.size(), token - first) << h.dev().error();
  if (round % 2 == 0) std::reverse(chains.begin(), chains.end());
  else std::stable_partition(chains.begin(), chains.end(), [](const FakeChain& c) { return c.id % 2; });
  for (const FakeChain& c : chains) h.dev().push(c.id, static_cast<std::uint32_t>(token_of(c)));
  std::size_t next = 0;
  DriverUsed out[64];
  while (next < chains.size()) {
    Result<std::size_t> n = h.ring.get_used_burst(out);
    if (!n || *n == 0) return 0;
    for (std::size_t k = 0; k < *n; ++k, ++next) {
      EXPECT_EQ(out[k].token, token_of(chains[next]));
      EXPECT_EQ(out[k].len, static_cast<std::uint32_t>(out[k].token));
      if (::testing::Test::HasFailure()) return 0;
    }
  }
  EXPECT_EQ(h.ring.num_free(), size);
  return chains.size();
}

template <class L>
void run_wrap(std::uint16_t size) {
  DriverHarness<L> h(size, feature_bit(kFIndirectDesc), 4);
  ASSERT_TRUE(h.status);
  std::uint64_t token = 0, done = 0;
  for (std::uint64_t round = 0; done < kCycles; ++round) {
    const std::uint64_t n = one_round(h, token, round);
    ASSERT_NE(n, 0u) << "size " << size << " round " << round;
    done += n;
  }
  EXPECT_FALSE(h.ring.broken());
  DriverUsed u{};
  EXPECT_FALSE(*h.ring.get_used(u));
}

TYPED_TEST(DriverWrapTest, Size1) { run_wrap<TypeParam>(1); }
TYPED_TEST(DriverWrapTest, Size2) { run_wrap<TypeParam>(2); }
TYPED_TEST(DriverWrapTest, Size256) { run_wrap<TypeParam>(256); }
TYPED_TEST(DriverWrapTest, Size32768) { run_wrap<TypeParam>(32768); }

// Packed sizes need not be powers of two (§2.8): an odd size keeps laps and chains misaligned.
TEST(PackedDriverWrap, OddSize) { run_wrap<PackedLayout>(7); }

}  // namespace
}  // namespace vireo::vring::test
