// VIRTIO_F_IN_ORDER on the driver rings: what a device may NOT do with a batch (an id that is not an
// outstanding published buffer breaks the ring with Errc::used_id_bad), the rules that stay without
// the feature, and packed resume_state() over batches. Helpers: in_order_harness.hpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "in_order_harness.hpp"

namespace vireo::vring::test {
namespace {

template <class L>
class DriverInOrderViolationTest : public ::testing::Test {};
TYPED_TEST_SUITE(DriverInOrderViolationTest, DriverLayouts, LayoutName);

TYPED_TEST(DriverInOrderViolationTest, BatchEndsAtAFreeBuffer) {
  for (bool already_reaped : {true, false}) {
    SCOPED_TRACE(already_reaped ? "already reaped" : "never added");
    DriverHarness<TypeParam> h(8, kInOrder);
    InOrderDevice<TypeParam> dev(h);
    add_lone(h, 0, 2);
    const std::vector<FakeChain> first = dev.take_all();
    ASSERT_EQ(first.size(), 2u);
    dev.use_batch(2, 5);
    ASSERT_EQ(count(reap(h, 8)), 2u);
    add_lone(h, 2, 3);  // split heads 2-4, packed ids 2-4
    ASSERT_EQ(dev.take_all().size(), 3u);
    const std::uint32_t id = already_reaped ? first[1].id : 6u;
    dev.write_batch(id, 7, 3);  // 3 buffers of one descriptor each
    expect_used_id_bad(h);
  }
}

TYPED_TEST(DriverInOrderViolationTest, BatchEndsAtAnUnpublishedBuffer) {
  for (std::size_t which : {0u, 1u}) {
    DriverHarness<TypeParam> h(8, kInOrder);
    InOrderDevice<TypeParam> dev(h);
    add_lone(h, 0, 2);
    ASSERT_EQ(dev.take_all().size(), 2u);
    std::uint16_t hidden[2];
    for (std::size_t k = 0; k < 2; ++k) {
      Result<std::uint16_t> id = h.add(10 + k, 0, 1);  // written to the ring, not published
      ASSERT_TRUE(id);
      hidden[k] = *id;
    }
    // used->idx / the used position moves by the published buffers only, so just the id is bad.
    dev.write_batch(hidden[which], 7, 2);
    expect_used_id_bad(h);
  }
}

// The device returns the oldest outstanding buffer (a batch of one) when all it was given is
// back already: the next buffer in sequence is written, but not published.
TYPED_TEST(DriverInOrderViolationTest, BatchOfOneAtAnUnpublishedBuffer) {
  DriverHarness<TypeParam> h(8, kInOrder);
  InOrderDevice<TypeParam> dev(h);
  add_lone(h, 0, 2);
  ASSERT_EQ(dev.take_all().size(), 2u);
  dev.use_batch(2, 1);
  ASSERT_EQ(count(reap(h, 8)), 2u);
  Result<std::uint16_t> hidden = h.add(10, 0, 1);
  ASSERT_TRUE(hidden);
  dev.write_batch(*hidden, 7, 1);
  expect_used_id_bad(h);
}

TYPED_TEST(DriverInOrderViolationTest, BatchIdOutOfRange) {
  std::vector<std::uint32_t> bad = {8u, 0xffffu};
  if constexpr (!TypeParam::kPacked) bad.push_back(0x10000u + 1);  // le32: truncated, a real head
  for (std::uint32_t id : bad) {
    SCOPED_TRACE(id);
    DriverHarness<TypeParam> h(8, kInOrder);
    InOrderDevice<TypeParam> dev(h);
    add_lone(h, 0, 3);
    ASSERT_EQ(dev.take_all().size(), 3u);
    dev.write_batch(id, 7, 2);
    expect_used_id_bad(h);
  }
}

// A batch's rest is reaped only up to a later bad element: the good buffers are handed back,
// then the ring breaks.
TYPED_TEST(DriverInOrderViolationTest, BadElementAfterABatchKeepsTheBatch) {
  DriverHarness<TypeParam> h(8, kInOrder);
  InOrderDevice<TypeParam> dev(h);
  add_lone(h, 0, 4);
  const std::vector<FakeChain> c = dev.take_all();
  ASSERT_EQ(c.size(), 4u);
  dev.use_batch(2, 3);
  dev.write_batch(c[0].id, 4, 1);  // completed a second time
  Reaped r = reap(h, 8);
  ASSERT_TRUE(r.n);
  EXPECT_EQ(r.used, batch_of(0, 2, 3));
  EXPECT_TRUE(h.ring.broken());
  EXPECT_EQ(h.ring.error(), Errc::used_id_bad);
}

// Split only: with in-order descriptors an id can name a descriptor inside an outstanding chain;
// it is no buffer's head (§2.7.8: id is the head of the used chain), and a walk over whole chains
// never stops there.
TEST(SplitDriverInOrder, BatchEndsInsideAChain) {
  for (std::uint32_t inner : {1u, 2u}) {
    DriverHarness<SplitLayout> h(8, kInOrder);
    InOrderDevice<SplitLayout> dev(h);
    add_lone(h, 0, 8);  // one lap first: descriptors 1 and 2 were heads once
    ASSERT_EQ(dev.take_all().size(), 8u);
    dev.use_batch(8, 1);
    ASSERT_EQ(count(reap(h, 8)), 8u);
    EXPECT_EQ(h.add(20, 1, 2).value_or(99), 0);  // descriptors 0-2
    EXPECT_EQ(h.add(21, 0, 1).value_or(99), 3);
    h.ring.kick_prepare();
    ASSERT_EQ(dev.take_all().size(), 2u);
    dev.write_batch(inner, 7, 2);
    expect_used_id_bad(h);
  }
}

// Split only: used->idx moves by the buffers of the batches (§2.7.9), never by more than the
// device holds; the driver rejects the index before it hands back anything (as without IN_ORDER).
TEST(SplitDriverInOrder, UsedIdxMovesPastTheBuffersOutstanding) {
  DriverHarness<SplitLayout> h(8, kInOrder);
  InOrderDevice<SplitLayout> dev(h);
  add_lone(h, 0, 3);
  ASSERT_EQ(dev.take_all().size(), 3u);
  dev.use_batch(3, 1);
  h.dev().set_used_idx(static_cast<std::uint16_t>(h.dev().used_idx() + 1));  // a 4th buffer
  expect_used_id_bad(h);
}

// ------------------------------------------------------------------------------------------------
// Without IN_ORDER the old semantics stay.
// ------------------------------------------------------------------------------------------------

TYPED_TEST(DriverInOrderViolationTest, WithoutInOrderAUsedElementIsOneBuffer) {
  DriverHarness<TypeParam> h(8);
  add_lone(h, 0, 3);
  FakeChain c[3] = {h.pop(), h.pop(), h.pop()};
  h.dev().push(c[2].id, 30);  // what an IN_ORDER device writes for the batch of all three
  Reaped r = reap(h, 8);
  ASSERT_TRUE(r.n);
  EXPECT_EQ(r.used, (Returned{{2, 30}}));
  EXPECT_EQ(h.ring.num_free(), 6);
  h.dev().push(c[0].id, 10);
  h.dev().push(c[1].id, 20);
  r = reap(h, 8);
  ASSERT_TRUE(r.n);
  EXPECT_EQ(r.used, (Returned{{0, 10}, {1, 20}}));
  EXPECT_EQ(h.ring.num_free(), 8);
  EXPECT_FALSE(h.ring.broken());
}

// ------------------------------------------------------------------------------------------------
// Packed resume_state()
// ------------------------------------------------------------------------------------------------

// resume_state(), which must succeed.
RingState resume(DriverHarness<PackedLayout>& h) {
  Result<RingState> r = h.ring.resume_state();
  EXPECT_TRUE(r) << to_string(r.error());
  return r ? *r : RingState{PackedCursor{0xffff, false}, PackedCursor{0xffff, false}};
}

// resume_state() walks the used descriptors the driver has not reaped: a batch's descriptor
// stands for all of the batch's slots (§2.8.23), including the rest of a batch cut by `max`.
TEST(PackedDriverInOrder, ResumeStateSkipsABatch) {
  DriverHarness<PackedLayout> h(8, kInOrder);
  InOrderDevice<PackedLayout> dev(h);
  // Slots: buffer 0 at 0, 1 at 1-2, 2 at 3-5, 3 at 6, 4 at 7 and 0 (lap 2).
  ASSERT_TRUE(h.add(0, 0, 1));
  ASSERT_TRUE(h.add(1, 1, 1));
  ASSERT_TRUE(h.add(2, 1, 2));
  ASSERT_TRUE(h.add(3, 1, 0));
  h.ring.kick_prepare();
  ASSERT_EQ(dev.take_all().size(), 4u);
  const RingState start{PackedCursor{0, true}, PackedCursor{0, true}};
  EXPECT_EQ(resume(h), start);

  dev.use_batch(3, 5);  // one used descriptor at slot 0, for slots 0-5
  const RingState after_batch{PackedCursor{6, true}, PackedCursor{6, true}};
  EXPECT_EQ(resume(h), after_batch);
  dev.use_batch(1, 6);  // slot 6
  const RingState after_all{PackedCursor{7, true}, PackedCursor{7, true}};
  EXPECT_EQ(resume(h), after_all);

  DriverUsed u{};
  ASSERT_TRUE(next_used(h, u));  // cuts the batch after buffer 0
  EXPECT_EQ(u.token, 0u);
  EXPECT_EQ(resume(h), after_all);
  ASSERT_TRUE(next_used(h, u));  // buffer 1: the batch's rest is buffer 2 (slots 3-5)
  EXPECT_EQ(resume(h), after_all);
  Reaped r = reap(h, 8);
  ASSERT_TRUE(r.n);
  EXPECT_EQ(r.used, (Returned{{2, 5}, {3, 6}}));
  EXPECT_EQ(resume(h), after_all);

  // A batch across the ring end: buffer 4 at slots 7, 0 and buffer 5 at 1-2 (wrap counter 0).
  ASSERT_TRUE(h.add(4, 1, 1));
  ASSERT_TRUE(h.add(5, 0, 2));
  h.ring.kick_prepare();
  ASSERT_EQ(dev.take_all().size(), 2u);
  dev.use_batch(2, 8);
  const RingState wrapped{PackedCursor{3, false}, PackedCursor{3, false}};
  EXPECT_EQ(resume(h), wrapped);
  ASSERT_TRUE(next_used(h, u));
  EXPECT_EQ(u.token, 4u);
  EXPECT_EQ(resume(h), wrapped);
  ASSERT_TRUE(next_used(h, u));
  EXPECT_EQ(u.token, 5u);
  EXPECT_EQ(u.len, 8u);
  EXPECT_EQ(resume(h), wrapped);
  EXPECT_EQ(h.ring.num_free(), 8);
}

}  // namespace
}  // namespace vireo::vring::test

