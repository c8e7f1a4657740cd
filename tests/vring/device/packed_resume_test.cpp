// Resuming a packed ring after the device crashed: the position read back from the descriptor
// flags (packed_position_from_ring) must be where the crashed device stood, a fresh device
// configured there must serve everything still outstanding, and packed_base_plausible() must
// accept the true position and reject the stale one a front-end sends after a crash.
#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <random>
#include <vector>

#include "bench/ring_pair.hpp"
#include "vring/packed_resume.hpp"

namespace vireo::test {
namespace {

using bench::Packed;
using bench::RingPair;
using vring::Chain;
using vring::PackedCursor;
using vring::PackedRingView;
using vring::RingState;

constexpr std::uint32_t kBufferLen = 64;

class PackedResume : public ::testing::TestWithParam<std::uint16_t> {
 protected:
  PackedResume() : pair_(GetParam(), 0, kBufferLen) {
    for (std::uint16_t i = 0; i < GetParam(); ++i) chains_.emplace_back(4);
  }

  PackedRingView view() {
    return PackedRingView::at(pair_.desc_area(), pair_.avail_area(), pair_.used_area(), pair_.size());
  }
  std::string dump() {
    std::string out;
    for (std::uint16_t i = 0; i < pair_.size() && i < 16; ++i) {
      const std::uint16_t f = view().desc[i].flags;
      out += std::to_string((f >> 7) & 1) + std::to_string((f >> 15) & 1) + " ";
    }
    return out;
  }
  // Makes up to n single-descriptor buffers available.
  void add(std::uint32_t n) {
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint16_t slot = next_slot_++ % pair_.size();
      if (outstanding_ == pair_.size()) break;
      vring::DriverBuffer w{pair_.buffer_gpa(slot), kBufferLen};
      ASSERT_TRUE(pair_.driver.add({}, {&w, 1}, token_));
      ++token_;
      ++outstanding_;
    }
    pair_.driver.kick_prepare();
  }
  // The device pops up to n buffers and uses the first `use` of them.
  void serve(std::uint32_t n, std::uint32_t use) {
    auto got = pair_.device.pop_burst(std::span<Chain>(chains_).first(n));
    ASSERT_TRUE(got);
    for (std::size_t i = 0; i < *got && i < use; ++i) pair_.device.push(chains_[i], 1);
    pair_.device.flush();
  }
  std::uint64_t reap() {
    std::vector<vring::DriverUsed> used(pair_.size());
    auto n = pair_.driver.get_used_burst(used);
    EXPECT_TRUE(n);
    outstanding_ -= static_cast<std::uint32_t>(*n);
    return *n;
  }

  RingPair<Packed> pair_;
  std::vector<Chain> chains_;  // one per slot, allocated once
  std::uint64_t token_ = 0;
  std::uint32_t next_slot_ = 0;
  std::uint32_t outstanding_ = 0;
};

TEST_P(PackedResume, FreshRingIsAtTheStart) {
  EXPECT_EQ(vring::packed_position_from_ring(view()), (RingState{{0, true}, {0, true}}));
  EXPECT_TRUE(vring::packed_base_plausible(view(), RingState{}));
}

// Many laps of random traffic; after each step the device "crashes" and its successor resumes
// from the flags. Buffers the crashed device popped but never used are served again.
TEST_P(PackedResume, CrashedDevicePositionIsRecovered) {
  std::mt19937 rng(GetParam());
  const std::uint32_t size = pair_.size();
  for (int step = 0; step < 2000; ++step) {
    add(1 + rng() % size);
    const std::uint32_t pop = rng() % (size + 1);
    serve(pop, static_cast<std::uint32_t>(rng() % (pop + 1)));
    reap();
    const RingState real = pair_.device.state();
    // The device has pushed and flushed everything it used: its used cursor is where a successor
    // must start (popped-but-unused buffers are still marked available).
    const RingState found = vring::packed_position_from_ring(view());
    ASSERT_EQ(found.avail, real.used) << "step " << step;
    ASSERT_TRUE(vring::packed_base_plausible(view(), found)) << "step " << step << " at " << found.avail.idx << "/" << found.avail.wrap << " flags " << dump();
    // The successor resumes there.
    ASSERT_TRUE(pair_.device.configure(&pair_.memory(), {pair_.size(), vring::feature_bit(vring::kFRingPacked) |
                                       vring::feature_bit(vring::kFVersion1), pair_.desc_area(),
                                       pair_.avail_area(), pair_.used_area(), 0}, found));
  }
  // Drain: everything outstanding completes exactly once.
  serve(size, size);
  reap();
  EXPECT_EQ(outstanding_, 0u);
}

// After a crash QEMU sends the position of the last clean stop (here: the initial one). Once the
// ring has moved, that position must be recognised as stale.
TEST_P(PackedResume, StaleInitialBaseIsRejected) {
  const std::uint32_t size = pair_.size();
  bool rejected_once = false;
  for (std::uint32_t step = 0; step < 3 * size + 5; ++step) {
    add(1);
    serve(1, 1);
    reap();
    const RingState real = pair_.device.state();
    const bool stale_is_real = real.avail == PackedCursor{0, true};
    if (!stale_is_real) {
      EXPECT_FALSE(vring::packed_base_plausible(view(), RingState{})) << "step " << step;
      rejected_once = true;
    }
    EXPECT_TRUE(vring::packed_base_plausible(view(), real)) << "step " << step;
  }
  EXPECT_TRUE(rejected_once);
}

INSTANTIATE_TEST_SUITE_P(Sizes, PackedResume, ::testing::Values(1, 2, 3, 8, 256));

// A correct position must be accepted even when buffers span several slots (their inner slots
// keep the driver's flags after use), so a front-end that kept the right state is trusted.
TEST(PackedResumeChains, MultiDescriptorBuffersKeepACorrectBase) {
  RingPair<Packed> pair(16, 0, kBufferLen);
  PackedRingView v = PackedRingView::at(pair.desc_area(), pair.avail_area(), pair.used_area(), 16);
  std::vector<Chain> chains(4);
  std::vector<vring::DriverUsed> used(16);
  for (int round = 0; round < 40; ++round) {
    for (std::uint16_t b = 0; b < 2; ++b) {
      vring::DriverBuffer r{pair.buffer_gpa(b), 16}, w{pair.buffer_gpa(b) + 16, 16};
      ASSERT_TRUE(pair.driver.add({&r, 1}, {&w, 1}, b));
    }
    pair.driver.kick_prepare();
    auto n = pair.device.pop_burst(chains);
    ASSERT_TRUE(n);
    for (std::size_t i = 0; i < *n; ++i) pair.device.push(chains[i], 16);
    pair.device.flush();
    ASSERT_TRUE(pair.driver.get_used_burst(used));
    EXPECT_TRUE(vring::packed_base_plausible(v, pair.device.state())) << "round " << round;
  }
}

}  // namespace
}  // namespace vireo::test
