// Malicious guest, violations that exist in one layout only: split heads/next/avail index,
// packed buffer ids and lists. Same checks as malicious_test.cpp (see MaliciousTest).
#include <gtest/gtest.h>

#include "tests/vring/device/malicious_fixture.hpp"

namespace vireo::test {
namespace {

using namespace vring;

constexpr std::uint64_t kIndirect = feature_bit(kFIndirectDesc);

using SplitMalicious = MaliciousTest<SplitLayout>;
using PackedMalicious = MaliciousTest<PackedLayout>;

// §2.7.6: avail ring entries index the descriptor table.
TEST_F(SplitMalicious, HeadOutOfRange) {
  ASSERT_TRUE(h.configure());
  ChainBuilder b = h.drv.chain().readable(data, 16).id(8);  // avail entry 8 in a ring of 8
  publish(b);
  expect_violation(Errc::head_out_of_range);
}

TEST_F(SplitMalicious, HeadOutOfRangeMax) {
  ASSERT_TRUE(h.configure());
  ChainBuilder b = h.drv.chain().readable(data, 16).id(0xffff);
  publish(b);
  expect_violation(Errc::head_out_of_range);
}

// §2.7.5: next indexes the table it is in.
TEST_F(SplitMalicious, NextOutOfRange) {
  ASSERT_TRUE(h.configure());
  ChainBuilder b = h.drv.chain().readable(data, 16).next_raw(8);
  publish(b);
  expect_violation(Errc::next_out_of_range);
}

TEST_F(SplitMalicious, IndirectNextOutOfRange) {
  ASSERT_TRUE(h.configure(kIndirect));
  ChainBuilder b = h.drv.chain().indirect().readable(data, 16).readable(data, 16).next_raw(2);
  publish(b);
  expect_violation(Errc::next_out_of_range);
}

// §2.7.5.2: "loops in the descriptor chain are forbidden".
TEST_F(SplitMalicious, DescriptorLoop) {
  ASSERT_TRUE(h.configure());
  ChainBuilder b = h.drv.chain().readable(data, 16).readable(data + 16, 16).link(0);
  publish(b);
  expect_violation(Errc::descriptor_loop);
}

TEST_F(SplitMalicious, DescriptorSelfLoop) {
  ASSERT_TRUE(h.configure(0, /*max_chain_len=*/64));  // the TTL, not the length limit, trips
  ChainBuilder b = h.drv.chain().readable(data, 16).link(0);
  publish(b);
  expect_violation(Errc::descriptor_loop);
}

TEST_F(SplitMalicious, IndirectLoop) {
  ASSERT_TRUE(h.configure(kIndirect, /*max_chain_len=*/64));
  ChainBuilder b = h.drv.chain().indirect().readable(data, 16).readable(data + 16, 16);
  b.readable(data + 32, 16).link(1);
  publish(b);
  expect_violation(Errc::descriptor_loop);
}

// §2.7.6: avail->idx never runs more than Queue Size ahead of what the device consumed.
TEST_F(SplitMalicious, AvailIndexJump) {
  ASSERT_TRUE(h.configure());
  h.drv.set_avail_idx_raw(9);
  expect_violation(Errc::avail_index_jump);
}

TEST_F(SplitMalicious, AvailIndexMovesBackwards) {
  ASSERT_TRUE(h.configure());
  h.drv.set_avail_idx_raw(0xffff);
  expect_violation(Errc::avail_index_jump);
}

// §2.7.5.3.2: the device MUST handle direct descriptors followed by one indirect descriptor.
TEST_F(SplitMalicious, DirectThenIndirectIsLegal) {
  ASSERT_TRUE(h.configure(kIndirect));
  ChainBuilder b = h.drv.chain().readable(data, 16).indirect().readable(data + 16, 16);
  b.writable(data + 32, 16);
  publish(b);
  Result<bool> got = h.ring.pop(h.chain);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ(h.chain.readable().size(), 2u);
  EXPECT_EQ(h.chain.writable().size(), 1u);
  EXPECT_FALSE(h.ring.broken());
}

// Buffer ids name one of Queue Size driver buffers.
TEST_F(PackedMalicious, PackedIdOutOfRange) {
  ASSERT_TRUE(h.configure());
  ChainBuilder b = h.drv.chain().readable(data, 16).id(8);
  publish(b);
  expect_violation(Errc::packed_id_out_of_range);
}

TEST_F(PackedMalicious, PackedIdOutOfRangeInLastDescriptor) {
  ASSERT_TRUE(h.configure());
  ChainBuilder b = h.drv.chain().readable(data, 16).writable(data + 16, 16).id(0xffff);
  publish(b);
  expect_violation(Errc::packed_id_out_of_range);
}

// §2.8.17: a list is never longer than the Queue Size - NEXT on every slot of the ring.
TEST_F(PackedMalicious, ChainLongerThanRingWrapsOntoItself) {
  ASSERT_TRUE(h.configure(0, /*max_chain_len=*/64));
  ChainBuilder b = h.drv.chain();
  for (int i = 0; i < 8; ++i) b.readable(data + 16 * i, 16);
  b.flags(kDescFNext);  // the last one points past the end of the ring, onto the head
  publish(b);
  expect_violation(Errc::chain_too_long);
}

// §2.8.19: "MUST NOT write direct descriptors with DESC_F_INDIRECT set in a scatter-gather list
// linked by VIRTQ_DESC_F_NEXT".
TEST_F(PackedMalicious, IndirectInsideNextList) {
  ASSERT_TRUE(h.configure(kIndirect));
  ChainBuilder b = h.drv.chain().readable(data, 16).indirect().readable(data + 16, 16);
  publish(b);
  expect_violation(Errc::next_with_indirect);
}

// §2.8.7: NEXT is not used inside a packed indirect table: every entry is part of the buffer.
TEST_F(PackedMalicious, IndirectTableIgnoresNext) {
  ASSERT_TRUE(h.configure(kIndirect));
  ChainBuilder b = h.drv.chain().indirect().readable(data, 16).flags(kDescFNext);
  b.readable(data + 16, 16).writable(data + 32, 16);
  publish(b);
  Result<bool> got = h.ring.pop(h.chain);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ(h.chain.readable().size(), 2u);
  EXPECT_EQ(h.chain.writable().size(), 1u);
}

}  // namespace
}  // namespace vireo::test
