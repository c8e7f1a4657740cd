// The burst verbs (add_burst, reap_burst) the net driver's hot path uses: they must write exactly
// what the same number of add() calls writes, publish nothing before kick_prepare(), and reap
// with the same validation as get_used() (a bad used id breaks the ring, earlier buffers are
// still handed back).
#include <gtest/gtest.h>

#include <vector>

#include "driver_harness.hpp"

namespace vireo::vring::test {
namespace {

template <class L>
class DriverBurstTest : public ::testing::Test {};
TYPED_TEST_SUITE(DriverBurstTest, DriverLayouts, LayoutName);

// add_burst of n one-element buffers with the harness's addresses (element 0 of each token).
template <class L>
Result<std::size_t> add_burst(DriverHarness<L>& h, std::uint64_t first_token, std::size_t n,
                              bool writable) {
  return h.ring.add_burst(n, writable, [first_token](std::size_t k) {
    const std::uint64_t t = first_token + k;
    return DriverAdd{{buf_gpa(t, 0), buf_len(t, 0)}, t};
  });
}

struct Reaped {
  std::vector<DriverUsed> used;
  Result<std::size_t> n = std::size_t{0};
};
template <class L>
Reaped reap_burst(DriverHarness<L>& h, std::size_t max) {
  Reaped r;
  r.n = h.ring.reap_burst(max, [&r](std::uint64_t token, std::uint32_t len) {
    r.used.push_back(DriverUsed{token, len});
  });
  return r;
}

TYPED_TEST(DriverBurstTest, AddBurstLandsLikeAdd) {
  for (bool writable : {false, true}) {
    DriverHarness<TypeParam> one(8), burst(8);
    for (std::uint64_t t = 0; t < 5; ++t) ASSERT_TRUE(one.add(t, writable ? 0 : 1, writable ? 1 : 0));
    Result<std::size_t> n = add_burst(burst, 0, 5, writable);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 5u);
    EXPECT_EQ(burst.ring.num_free(), one.ring.num_free());
    EXPECT_EQ(burst.ring.kick_prepare(), one.ring.kick_prepare());
    for (std::uint64_t t = 0; t < 5; ++t) {
      FakeChain a = one.pop(), b = burst.pop();
      EXPECT_EQ(b.id, a.id) << t;
      EXPECT_EQ(b.ndescs, 1);
      ASSERT_EQ(b.descs.size(), 1u);
      EXPECT_EQ(b.descs[0].addr, buf_gpa(t, 0));
      EXPECT_EQ(b.descs[0].len, buf_len(t, 0));
      EXPECT_EQ(b.descs[0].flags, a.descs[0].flags) << t;  // WRITE iff writable, no NEXT
      EXPECT_EQ(b.descs[0].writable(), writable);
      burst.dev().push(b.id, 3);
    }
    EXPECT_FALSE(burst.dev().has_avail());
    Reaped r = reap_burst(burst, 8);
    ASSERT_TRUE(r.n);
    ASSERT_EQ(*r.n, 5u);
    for (std::uint64_t t = 0; t < 5; ++t) EXPECT_EQ(r.used[t].token, t);
    EXPECT_EQ(burst.ring.num_free(), 8);
  }
}

TYPED_TEST(DriverBurstTest, AddBurstIsInvisibleUntilKickPrepare) {
  DriverHarness<TypeParam> h(8);
  ASSERT_TRUE(h.add(9, 1, 0));  // a batch already open: add_burst continues it
  ASSERT_EQ(*add_burst(h, 0, 3, false), 3u);
  EXPECT_FALSE(h.dev().has_avail());
  EXPECT_TRUE(h.ring.kick_prepare());
  EXPECT_EQ(h.pop().descs[0].addr, buf_gpa(9, 0));
  for (std::uint64_t t = 0; t < 3; ++t) EXPECT_EQ(h.pop().descs[0].addr, buf_gpa(t, 0));
  EXPECT_FALSE(h.dev().has_avail());
  // A second batch opened by add_burst itself.
  ASSERT_EQ(*add_burst(h, 3, 2, true), 2u);
  EXPECT_FALSE(h.dev().has_avail());
  h.ring.kick_prepare();
  EXPECT_EQ(h.pop().descs[0].addr, buf_gpa(3, 0));
  EXPECT_EQ(h.pop().descs[0].addr, buf_gpa(4, 0));
}

TYPED_TEST(DriverBurstTest, AddBurstStopsWhenRingIsFull) {
  DriverHarness<TypeParam> h(8);
  for (std::uint64_t t = 0; t < 3; ++t) ASSERT_TRUE(h.add(t, 1, 0));
  Result<std::size_t> n = add_burst(h, 10, 10, false);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 5u);  // what was free; the rest is add()'s Errc::no_space
  EXPECT_EQ(h.ring.num_free(), 0);
  EXPECT_EQ(*add_burst(h, 20, 1, false), 0u);
  Result<std::uint16_t> more = h.add(30, 1, 0);
  ASSERT_FALSE(more);
  EXPECT_EQ(more.error(), Errc::no_space);
  EXPECT_FALSE(h.ring.broken());
  h.ring.kick_prepare();
  for (int k = 0; k < 8; ++k) h.dev().push(h.pop().id, 0);
  EXPECT_EQ(*reap_burst(h, 8).n, 8u);
  EXPECT_EQ(*add_burst(h, 40, 8, true), 8u);  // everything reusable
}

TYPED_TEST(DriverBurstTest, AddBurstOnBrokenOrUnconfiguredRingFails) {
  typename TypeParam::Ring unconfigured;
  Result<std::size_t> n = unconfigured.add_burst(1, false, [](std::size_t) {
    ADD_FAILURE() << "at() called on an unconfigured ring";
    return DriverAdd{{0, 0}, 0};
  });
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), Errc::not_ready);

  DriverHarness<TypeParam> h(8);
  ASSERT_TRUE(h.add(1, 1, 0));
  h.ring.kick_prepare();
  h.dev().push(static_cast<std::uint16_t>(h.pop().id + 4), 0);  // never added
  EXPECT_FALSE(reap_burst(h, 4).n);
  const std::uint16_t free_before = h.ring.num_free();
  n = add_burst(h, 2, 3, false);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), Errc::broken);
  EXPECT_EQ(h.ring.num_free(), free_before);
}

TYPED_TEST(DriverBurstTest, ReapBurstHandsBackLenInUsedOrderUpToMax) {
  DriverHarness<TypeParam> h(8);
  ASSERT_EQ(*add_burst(h, 0, 6, true), 6u);
  h.ring.kick_prepare();
  std::vector<FakeChain> c;
  for (int k = 0; k < 6; ++k) c.push_back(h.pop());
  for (int k : {4, 1, 5, 0, 3, 2}) h.dev().push(c[k].id, 100u + k);  // out of order
  Reaped a = reap_burst(h, 4);
  ASSERT_TRUE(a.n);
  ASSERT_EQ(*a.n, 4u);
  const std::uint64_t want[] = {4, 1, 5, 0, 3, 2};
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(a.used[k].token, want[k]);
    EXPECT_EQ(a.used[k].len, 100u + want[k]);
  }
  Reaped b = reap_burst(h, 4);
  ASSERT_EQ(*b.n, 2u);
  EXPECT_EQ(b.used[0].token, 3u);
  EXPECT_EQ(b.used[1].token, 2u);
  EXPECT_EQ(*reap_burst(h, 4).n, 0u);
  EXPECT_EQ(*reap_burst(h, 0).n, 0u);
}

// A buffer the device holds while 70000 others (more than 2^16 adds) pass through the ring is
// still reapable: add() order is not compared modulo a small counter.
TYPED_TEST(DriverBurstTest, LongHeldBufferStaysReapable) {
  DriverHarness<TypeParam> h(4);
  ASSERT_TRUE(h.add(1000, 0, 1));
  h.ring.kick_prepare();
  const FakeChain held = h.pop();
  for (std::uint64_t t = 0; t < 70000; t += 3) {
    ASSERT_EQ(*add_burst(h, t, 3, true), 3u);
    h.ring.kick_prepare();
    for (int k = 0; k < 3; ++k) h.dev().push(h.pop().id, 1);
    ASSERT_EQ(*reap_burst(h, 3).n, 3u) << t;
  }
  h.dev().push(held.id, 7);
  Reaped r = reap_burst(h, 3);
  ASSERT_TRUE(r.n);
  ASSERT_EQ(*r.n, 1u);
  EXPECT_EQ(r.used[0].token, 1000u);
  EXPECT_EQ(r.used[0].len, 7u);
}

// Bursts that straddle the ring end lap after lap (packed: an odd size, so the wrap counters
// flip mid-burst at every position): the device fake checks AVAIL/USED on every descriptor.
TYPED_TEST(DriverBurstTest, BurstsAcrossManyLaps) {
  const std::uint16_t size = TypeParam::kPacked ? 7 : 8;
  DriverHarness<TypeParam> h(size);
  ASSERT_TRUE(h.status);
  std::uint64_t next = 0;
  for (int round = 0; round < 200; ++round) {
    const std::size_t n = 1 + round % 5;
    ASSERT_EQ(*add_burst(h, next, n, round % 2 == 0), n);
    h.ring.kick_prepare();
    for (std::size_t k = 0; k < n; ++k) {
      FakeChain c = h.pop();
      ASSERT_EQ(c.descs.size(), 1u) << h.dev().error();
      EXPECT_EQ(c.descs[0].addr, buf_gpa(next + k, 0));
      h.dev().push(c.id, static_cast<std::uint32_t>(next + k));
    }
    Reaped r = reap_burst(h, 8);
    ASSERT_TRUE(r.n);
    ASSERT_EQ(*r.n, n) << round;
    for (std::size_t k = 0; k < n; ++k) {
      EXPECT_EQ(r.used[k].token, next + k);
      EXPECT_EQ(r.used[k].len, static_cast<std::uint32_t>(next + k));
    }
    next += n;
    EXPECT_EQ(h.ring.num_free(), size);
  }
}

TYPED_TEST(DriverBurstTest, ReapBurstUsedIdNotYetAvailable) {
  DriverHarness<TypeParam> h(8);
  ASSERT_TRUE(h.add(1, 0, 1));
  h.ring.kick_prepare();
  (void)h.pop();
  ASSERT_EQ(*add_burst(h, 2, 2, true), 2u);  // written to the ring, not published
  // The device guesses an id of the unpublished batch (split: the next free head after 0;
  // packed: the next free buffer id after 0; both 1).
  h.dev().push(1, 4);
  Reaped r = reap_burst(h, 4);
  ASSERT_FALSE(r.n);
  EXPECT_EQ(r.n.error(), Errc::used_id_bad);
  EXPECT_TRUE(r.used.empty());
  EXPECT_TRUE(h.ring.broken());
}

TYPED_TEST(DriverBurstTest, ReapBurstViolationMidBurstKeepsEarlierBuffers) {
  DriverHarness<TypeParam> h(8);
  ASSERT_EQ(*add_burst(h, 0, 3, true), 3u);
  h.ring.kick_prepare();
  const FakeChain a = h.pop(), b = h.pop();
  h.dev().push(a.id, 1);
  h.dev().push(b.id, 2);
  h.dev().push(a.id, 3);  // completed twice
  Reaped r = reap_burst(h, 8);
  ASSERT_TRUE(r.n);
  ASSERT_EQ(*r.n, 2u);
  ASSERT_EQ(r.used.size(), 2u);  // fn never saw the bad element
  EXPECT_EQ(r.used[0].token, 0u);
  EXPECT_EQ(r.used[1].token, 1u);
  EXPECT_TRUE(h.ring.broken());
  EXPECT_EQ(h.ring.error(), Errc::used_id_bad);
  Reaped again = reap_burst(h, 8);
  ASSERT_FALSE(again.n);
  EXPECT_EQ(again.n.error(), Errc::broken);
}

}  // namespace
}  // namespace vireo::vring::test
