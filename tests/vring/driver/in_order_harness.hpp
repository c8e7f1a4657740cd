// Shared by the driver-side VIRTIO_F_IN_ORDER suites (in_order_test.cpp, in_order_violation_test.cpp):
// reap helpers and InOrderDevice, a device that returns batches with one used element.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "driver_harness.hpp"

namespace vireo::vring::test {

constexpr std::uint64_t kInOrder = feature_bit(kFInOrder);

// What a device leaves in used-ring entries it skips (split) or writes over a used element the
// driver already consumed: an id no driver may accept, so reading one breaks the ring.
constexpr std::uint32_t kJunkId = 0xdead;
constexpr std::uint32_t kJunkLen = 0xbad;

// (token, len) pairs, so a mismatch prints the whole sequence.
using Returned = std::vector<std::pair<std::uint64_t, std::uint32_t>>;

struct Reaped {
  Returned used;
  Result<std::size_t> n = std::size_t{0};
};
template <class L>
Reaped reap(DriverHarness<L>& h, std::size_t max) {
  Reaped r;
  r.n = h.ring.reap_burst(max, [&r](std::uint64_t token, std::uint32_t len) {
    r.used.emplace_back(token, len);
  });
  return r;
}

// get_used() that must not fail: whether a buffer came back.
template <class L>
bool next_used(DriverHarness<L>& h, DriverUsed& u) {
  Result<bool> r = h.ring.get_used(u);
  EXPECT_TRUE(r) << to_string(r.error());
  return r && *r;
}
// How many buffers a reap returned; a failure (and an impossible count) if it failed.
inline std::size_t count(const Reaped& r) {
  EXPECT_TRUE(r.n) << to_string(r.n.error());
  return r.n ? *r.n : ~std::size_t{0};
}

// The buffers a batch hands back: tokens first..first+n-1 in add order, len 0 but for the last.
inline Returned batch_of(std::uint64_t first, std::size_t n, std::uint32_t len) {
  Returned r;
  for (std::size_t k = 0; k < n; ++k) r.emplace_back(first + k, k + 1 == n ? len : 0u);
  return r;
}

// Adds `n` lone device-writable buffers with tokens first.. and publishes them.
template <class L>
void add_lone(DriverHarness<L>& h, std::uint64_t first, std::size_t n) {
  for (std::size_t k = 0; k < n; ++k) ASSERT_TRUE(h.add(first + k, 0, 1)) << k;
  h.ring.kick_prepare();
}

template <class L>
void expect_used_id_bad(DriverHarness<L>& h) {
  const std::uint16_t free_before = h.ring.num_free();
  Reaped r = reap(h, 64);
  ASSERT_FALSE(r.n);
  EXPECT_EQ(r.n.error(), Errc::used_id_bad);
  EXPECT_TRUE(r.used.empty());  // nothing before the bad element
  EXPECT_TRUE(h.ring.broken());
  EXPECT_EQ(h.ring.error(), Errc::used_id_bad);
  EXPECT_EQ(h.ring.num_free(), free_before);
  DriverUsed u{};
  Result<bool> again = h.ring.get_used(u);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), Errc::broken);
}

// The device half of IN_ORDER on top of the fakes: takes buffers with pop() and returns them in
// batches written where the spec puts them. Split (§2.7.9): the element at the batch's first
// used-ring position, junk in the batch's other positions (a real device leaves whatever an
// earlier lap wrote there), used->idx moved by the batch's buffer count. Packed (§2.8.23): one
// used descriptor at the batch's first slot; the batch's other slots keep the driver's available
// descriptors. The packed fake's own used position does not follow write_used_raw(), so a test
// using this class returns every buffer through it (no dev().push()).
template <class L>
class InOrderDevice {
 public:
  explicit InOrderDevice(DriverHarness<L>& h) : h_(h) {}

  // Takes every buffer the driver made available; returns the newly taken ones in ring order.
  std::vector<FakeChain> take_all() {
    std::vector<FakeChain> got;
    while (std::optional<FakeChain> c = h_.dev().pop()) got.push_back(*c);
    EXPECT_TRUE(h_.dev().error().empty()) << h_.dev().error();
    held_.insert(held_.end(), got.begin(), got.end());
    return got;
  }
  const std::deque<FakeChain>& held() const { return held_; }

  // Uses the oldest n buffers it holds as one batch with the last one's id and `len`.
  void use_batch(std::size_t n, std::uint32_t len) {
    ASSERT_GE(n, 1u);
    ASSERT_LE(n, held_.size());
    std::uint16_t slots = 0;
    for (std::size_t k = 0; k < n; ++k) slots = static_cast<std::uint16_t>(slots + held_[k].ndescs);
    write_batch(held_[n - 1].id, len, L::kPacked ? slots : static_cast<std::uint16_t>(n));
    held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(n));
  }

  // One used element naming any `id` at the device's used position, for a batch that covers
  // `advance` used-ring entries (split) or ring slots (packed). Malicious tests name bad ids.
  void write_batch(std::uint32_t id, std::uint32_t len, std::uint16_t advance) {
    if constexpr (L::kPacked) {
      h_.dev().write_used_raw(used_.idx, static_cast<std::uint16_t>(id), len,
                              PackedDeviceFake::used_flags(used_.wrap, len != 0));
      used_.advance(advance, h_.ring.size());
    } else {
      h_.dev().write_used(id, len);
      for (std::uint16_t k = 1; k < advance; ++k) h_.dev().write_used(kJunkId, kJunkLen);
      h_.dev().publish();  // release of used->idx after the element
    }
  }

  // Overwrites the used element at used-ring position `pos` (split) or slot `pos` (packed, in the
  // current lap) with junk: only a driver that reads it again notices.
  void scribble(std::uint16_t pos) {
    if constexpr (L::kPacked) {
      h_.dev().write_used_raw(pos, static_cast<std::uint16_t>(kJunkId), kJunkLen,
                              PackedDeviceFake::used_flags(used_.wrap, true));
    } else {
      const DriverConfig& c = h_.config();
      SplitRingView v = SplitRingView::at(c.desc, c.avail, c.used, c.size);
      v.used_ring[pos % c.size] = UsedElem{kJunkId, kJunkLen};
    }
  }

 private:
  DriverHarness<L>& h_;
  std::deque<FakeChain> held_;
  PackedCursor used_{};  // packed: the device's used position and wrap counter (§2.8.1)
};

}  // namespace vireo::vring::test
