// VIRTIO_F_IN_ORDER on the driver rings (split §2.7.9, packed §2.8.23): descriptors (split) and
// buffer ids (packed) are handed out in sequence, and the device may return a whole batch of
// buffers with ONE used element carrying the LAST buffer's id, written at the batch's first used
// position, the rest of the batch skipped. The driver returns every buffer of the batch in add
// order, only the last with the element's len. A batch cut short by `max` is finished by the next
// call without re-reading the ring; an id that is not an outstanding published buffer breaks the
// ring (Errc::used_id_bad).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "in_order_harness.hpp"

namespace vireo::vring::test {
namespace {

template <class L>
class DriverInOrderTest : public ::testing::Test {};
TYPED_TEST_SUITE(DriverInOrderTest, DriverLayouts, LayoutName);

// ------------------------------------------------------------------------------------------------
// Batches
// ------------------------------------------------------------------------------------------------

TYPED_TEST(DriverInOrderTest, ReapsABatchFromOneUsedElement) {
  DriverHarness<TypeParam> h(8, kInOrder);
  ASSERT_TRUE(h.status);
  InOrderDevice<TypeParam> dev(h);
  add_lone(h, 100, 5);
  ASSERT_EQ(dev.take_all().size(), 5u);
  EXPECT_FALSE(h.ring.enable_cb());
  dev.use_batch(5, 77);
  EXPECT_TRUE(h.ring.enable_cb());
  DriverUsed out[8];
  Result<std::size_t> n = h.ring.get_used_burst(out);
  ASSERT_TRUE(n) << to_string(n.error());
  ASSERT_EQ(*n, 5u);
  Returned got;
  for (std::size_t k = 0; k < *n; ++k) got.emplace_back(out[k].token, out[k].len);
  EXPECT_EQ(got, batch_of(100, 5, 77));
  EXPECT_EQ(h.ring.num_free(), 8);
  EXPECT_FALSE(h.ring.enable_cb());
  DriverUsed u{};
  EXPECT_FALSE(next_used(h, u));
  // The used position moved over the whole batch: the next element is read where the device
  // writes it (split: used-ring entry 5, packed: slot 5), not after the one element it read.
  add_lone(h, 200, 1);
  ASSERT_EQ(dev.take_all().size(), 1u);
  dev.use_batch(1, 9);
  ASSERT_TRUE(next_used(h, u));
  EXPECT_EQ(u.token, 200u);
  EXPECT_EQ(u.len, 9u);
  EXPECT_EQ(h.ring.num_free(), 8);
  EXPECT_FALSE(h.ring.broken());
}

TYPED_TEST(DriverInOrderTest, ReapsSeveralBatchesOfChainsInOneCall) {
  DriverHarness<TypeParam> h(16, kInOrder);
  InOrderDevice<TypeParam> dev(h);
  // Descriptors per buffer: 1, 2, 3, 1, 2, 1, 3 (13 of 16).
  const std::size_t nr[] = {1, 1, 2, 0, 1, 1, 1};
  const std::size_t nw[] = {0, 1, 1, 1, 1, 0, 2};
  for (std::uint64_t t = 0; t < 7; ++t) ASSERT_TRUE(h.add(t, nr[t], nw[t]));
  EXPECT_EQ(h.ring.num_free(), 3);
  h.ring.kick_prepare();
  ASSERT_EQ(dev.take_all().size(), 7u);
  dev.use_batch(3, 30);  // buffers 0-2
  dev.use_batch(1, 31);  // buffer 3
  dev.use_batch(3, 32);  // buffers 4-6
  Reaped r = reap(h, 16);
  ASSERT_TRUE(r.n);
  Returned want = batch_of(0, 3, 30);
  want.emplace_back(3, 31);
  for (auto& e : batch_of(4, 3, 32)) want.push_back(e);
  EXPECT_EQ(r.used, want);
  EXPECT_EQ(*r.n, 7u);
  EXPECT_EQ(h.ring.num_free(), 16);
  EXPECT_EQ(count(reap(h, 16)), 0u);
}

// A device that writes every element (each with its own buffer's id) returns batches of one:
// the used ring looks exactly as without IN_ORDER.
TYPED_TEST(DriverInOrderTest, EveryElementWrittenIsABatchOfOne) {
  DriverHarness<TypeParam> h(8, kInOrder);
  InOrderDevice<TypeParam> dev(h);
  const std::size_t ndescs[] = {1, 2, 1, 3, 1};
  for (std::uint64_t t = 0; t < 5; ++t) ASSERT_TRUE(h.add(t, ndescs[t] - 1, 1));
  EXPECT_EQ(h.ring.num_free(), 0);
  h.ring.kick_prepare();
  ASSERT_EQ(dev.take_all().size(), 5u);
  dev.use_batch(1, 10);
  dev.use_batch(1, 11);
  DriverUsed u{};
  for (std::uint64_t t = 0; t < 2; ++t) {
    ASSERT_TRUE(next_used(h, u)) << t;
    EXPECT_EQ(u.token, t);
    EXPECT_EQ(u.len, 10 + t);
  }
  EXPECT_FALSE(next_used(h, u));
  EXPECT_EQ(h.ring.num_free(), 3);  // buffers 0 and 1: 1 + 2 descriptors
  for (std::uint32_t t = 2; t < 5; ++t) dev.use_batch(1, 10 + t);
  Reaped r = reap(h, 8);
  ASSERT_TRUE(r.n);
  EXPECT_EQ(r.used, (Returned{{2, 12}, {3, 13}, {4, 14}}));
  EXPECT_EQ(h.ring.num_free(), 8);
  EXPECT_FALSE(h.ring.broken());
}

// The rest of a cut batch comes from the driver's memory of the element (last id and len): the
// element it read and the skipped entries are junk by then, and reading either breaks the ring.
TYPED_TEST(DriverInOrderTest, BatchCutByMaxIsFinishedByTheNextCall) {
  DriverHarness<TypeParam> h(8, kInOrder);
  InOrderDevice<TypeParam> dev(h);
  add_lone(h, 0, 6);
  ASSERT_EQ(dev.take_all().size(), 6u);
  dev.use_batch(6, 99);

  DriverUsed two[2];
  Result<std::size_t> n = h.ring.get_used_burst(two);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 2u);
  EXPECT_EQ(two[0].token, 0u);
  EXPECT_EQ(two[0].len, 0u);
  EXPECT_EQ(two[1].token, 1u);
  EXPECT_EQ(two[1].len, 0u);
  EXPECT_EQ(h.ring.num_free(), 4);  // 2 never used + the 2 reaped
  dev.scribble(0);  // the batch's element, already read
  EXPECT_TRUE(h.ring.enable_cb());  // 4 buffers of the batch are still used and pending

  Reaped r = reap(h, 3);
  ASSERT_TRUE(r.n);
  EXPECT_EQ(r.used, (Returned{{2, 0}, {3, 0}, {4, 0}}));
  EXPECT_EQ(h.ring.num_free(), 7);
  EXPECT_TRUE(h.ring.enable_cb());

  DriverUsed u{};
  ASSERT_TRUE(next_used(h, u));
  EXPECT_EQ(u.token, 5u);
  EXPECT_EQ(u.len, 99u);  // the element's len, for the last buffer only
  EXPECT_EQ(h.ring.num_free(), 8);
  EXPECT_FALSE(h.ring.enable_cb());
  EXPECT_FALSE(next_used(h, u));
  EXPECT_FALSE(h.ring.broken());

  // One buffer at a time through a second batch, then a batch of one right after it.
  add_lone(h, 10, 4);
  ASSERT_EQ(dev.take_all().size(), 4u);
  dev.use_batch(3, 55);
  dev.use_batch(1, 56);
  Returned got;
  while (next_used(h, u)) got.emplace_back(u.token, u.len);
  Returned want = batch_of(10, 3, 55);
  want.emplace_back(13, 56);
  EXPECT_EQ(got, want);
  EXPECT_EQ(h.ring.num_free(), 8);
  EXPECT_FALSE(h.ring.broken());
}

// §2.7.10 / §2.8.10 with EVENT_IDX: after reaping, the driver asks for a call at its next used
// position, which is where the device writes its next element: after the whole batch.
TYPED_TEST(DriverInOrderTest, UsedEventMovesPastTheBatch) {
  DriverHarness<TypeParam> h(8, kInOrder | feature_bit(kFEventIdx));
  InOrderDevice<TypeParam> dev(h);
  EXPECT_FALSE(h.ring.enable_cb());  // packed: RING_EVENT_FLAGS_DESC from here on
  add_lone(h, 0, 5);
  ASSERT_EQ(dev.take_all().size(), 5u);
  dev.use_batch(3, 1);
  dev.use_batch(2, 2);
  ASSERT_EQ(count(reap(h, 8)), 5u);
  if constexpr (TypeParam::kPacked) {
    EXPECT_EQ(h.dev().driver_event().off_wrap, encode_off_wrap(PackedCursor{5, true}));
  } else {
    EXPECT_EQ(h.dev().used_event(), 5);
  }
}

// ------------------------------------------------------------------------------------------------
// Across the wrap
// ------------------------------------------------------------------------------------------------

struct Shape {
  std::size_t nr, nw;
  bool indirect;
  std::uint16_t ndescs() const { return indirect ? 1 : static_cast<std::uint16_t>(nr + nw); }
};
// Chains of 1-3 descriptors, every fifth buffer an indirect one of 3 elements.
Shape shape_for(std::uint64_t token) {
  if (token % 5 == 4) return Shape{1, 2, true};
  const std::size_t n = 1 + (token * 7 / 3) % 3;
  return Shape{n / 2, n - n / 2, false};
}
std::uint64_t token_of(const FakeChain& c) { return (c.descs.at(0).addr - buf_gpa(0, 0)) / 0x1000; }
std::uint32_t len_for(std::uint64_t token) { return static_cast<std::uint32_t>(1000 + token % 50000); }

// Rounds of: add a few buffers of 1-3 descriptors (as many as fit), the device takes them all
// and completes all but a few in batches of 1-4, the driver reaps a few times with a small max
// (so batches are cut and finished later, also across adds). Batches and chains straddle the
// table/ring end at every offset; more than 2^16 buffers wrap split's 16-bit indexes.
template <class L>
void run_batches_across_wrap(std::uint16_t size) {
  SCOPED_TRACE(::testing::Message() << "size " << size);
  DriverHarness<L> h(size, kInOrder | feature_bit(kFIndirectDesc), 4);
  ASSERT_TRUE(h.status);
  InOrderDevice<L> dev(h);
  std::deque<std::pair<std::uint64_t, std::uint16_t>> outstanding;  // (token, ndescs), add order
  std::deque<std::pair<std::uint64_t, std::uint32_t>> completed;    // used, not yet reaped
  std::uint32_t descs_out = 0;
  std::uint64_t token = 0, reaped = 0, batches = 0;
  std::uint16_t next_id = 0;  // split: next head (descriptor index); packed: next buffer id
  const auto* table = static_cast<const SplitDesc*>(h.config().desc);
  // One reap of at most `max`: exactly the oldest min(max, completed) used buffers come back,
  // and num_free() counts the descriptors of the buffers still outstanding.
  auto reap_some = [&](std::size_t max) {
    Reaped r = reap(h, max);
    ASSERT_TRUE(r.n) << to_string(r.n.error());
    ASSERT_EQ(r.used.size(), *r.n);
    ASSERT_EQ(*r.n, std::min(completed.size(), max));
    for (const auto& got : r.used) {
      ASSERT_EQ(got, completed.front()) << "reaped " << reaped;
      ASSERT_EQ(got.first, outstanding.front().first);
      descs_out -= outstanding.front().second;
      completed.pop_front();
      outstanding.pop_front();
      ++reaped;
    }
    ASSERT_EQ(h.ring.num_free(), size - descs_out) << "reaped " << reaped;
    ASSERT_EQ(h.ring.enable_cb(), !completed.empty()) << "reaped " << reaped;
  };
  for (std::uint64_t round = 0; reaped < 70000; ++round) {
    ASSERT_LT(round, 1'000'000u) << "no progress";
    // Driver: up to 1-4 buffers.
    std::vector<std::uint16_t> ids;
    for (std::uint64_t a = 0; a <= round % 4; ++a) {
      const Shape s = shape_for(token);
      if (s.ndescs() > h.ring.num_free()) break;
      Result<std::uint16_t> id = h.add(token, s.nr, s.nw, s.indirect);
      ASSERT_TRUE(id) << token;
      // §2.7.9: descriptors in table order; §2.8.23: buffer ids in sequence.
      ASSERT_EQ(*id, next_id) << token;
      next_id = static_cast<std::uint16_t>((next_id + (L::kPacked ? 1 : s.ndescs())) % size);
      ids.push_back(*id);
      outstanding.emplace_back(token, s.ndescs());
      descs_out += s.ndescs();
      ++token;
    }
    h.ring.kick_prepare();
    // Device: takes them (in add order, with the ids add() returned).
    const std::vector<FakeChain> taken = dev.take_all();
    ASSERT_EQ(taken.size(), ids.size()) << round;
    for (std::size_t k = 0; k < taken.size(); ++k) {
      const FakeChain& c = taken[k];
      const std::uint64_t t = token - ids.size() + k;
      ASSERT_EQ(c.id, ids[k]);
      ASSERT_EQ(token_of(c), t);
      ASSERT_EQ(c.ndescs, shape_for(t).ndescs());
      if constexpr (!L::kPacked) {
        // The chain occupies consecutive descriptors, wrapping at the table end (with IN_ORDER
        // the driver sets next = x + 1, and 0 for the table's last descriptor).
        for (std::uint16_t j = 0; j + 1 < c.ndescs; ++j) {
          const SplitDesc& d = table[(c.id + j) % size];
          ASSERT_NE(d.flags & kDescFNext, 0);
          ASSERT_EQ(d.next, (c.id + j + 1) % size) << "head " << c.id << " desc " << j;
        }
      }
    }
    // Device: completes all but `keep` of what it holds, in batches of 1-4.
    const std::size_t keep = round % 3;
    while (dev.held().size() > keep) {
      const std::size_t n = std::min<std::size_t>(dev.held().size() - keep, 1 + batches++ % 4);
      const std::uint64_t last = token_of(dev.held()[n - 1]);
      dev.use_batch(n, len_for(last));
      for (std::size_t k = 0; k < n; ++k)
        completed.emplace_back(last + 1 - n + k, k + 1 == n ? len_for(last) : 0u);
    }
    // Driver: a few reaps of at most 1-5 buffers each.
    for (std::uint64_t call = 0; call <= round % 3; ++call) {
      reap_some(1 + (round + call) % 5);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  // Drain: the device returns the rest as one batch; everything back, every descriptor free.
  if (!dev.held().empty()) {
    const std::size_t n = dev.held().size();
    const std::uint64_t last = token_of(dev.held().back());
    dev.use_batch(n, len_for(last));
    for (std::size_t k = 0; k < n; ++k)
      completed.emplace_back(last + 1 - n + k, k + 1 == n ? len_for(last) : 0u);
  }
  while (!completed.empty()) {
    reap_some(3);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_TRUE(outstanding.empty());
  EXPECT_EQ(count(reap(h, 3)), 0u);
  EXPECT_EQ(h.ring.num_free(), size);
  EXPECT_FALSE(h.ring.broken());
}

TYPED_TEST(DriverInOrderTest, BatchesAcrossTheRingWrap) {
  // Packed sizes need not be powers of two (§2.8): odd ones keep batches misaligned with laps.
  for (std::uint16_t size : TypeParam::kPacked ? std::vector<std::uint16_t>{5, 7, 16}
                                               : std::vector<std::uint16_t>{4, 8, 16}) {
    run_batches_across_wrap<TypeParam>(size);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// ------------------------------------------------------------------------------------------------
// Violations: the batch's id must name an outstanding buffer the driver published.
// ------------------------------------------------------------------------------------------------

}  // namespace
}  // namespace vireo::vring::test

