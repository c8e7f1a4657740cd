// Malicious guest, both layouts: one test per violation, named after it. Each checks the ring
// breaks with that Errc, stays broken, and touches nothing (see MaliciousTest).
#include <gtest/gtest.h>
#include <sys/mman.h>

#include "tests/vring/device/malicious_fixture.hpp"

namespace vireo::test {
namespace {

using namespace vring;

constexpr std::uint64_t kIndirect = feature_bit(kFIndirectDesc);

template <class Layout>
using Malicious = MaliciousTest<Layout>;
TYPED_TEST_SUITE(Malicious, RingLayouts, LayoutNames);

// §2.7.5.2 / §2.8.17: no chain longer than the Queue Size (an indirect table makes one without
// a loop).
TYPED_TEST(Malicious, ChainLongerThanRing) {
  ASSERT_TRUE(this->h.configure(kIndirect));
  ChainBuilder b = this->h.drv.chain().indirect();
  for (int i = 0; i < 9; ++i) b.readable(this->data + 16 * i, 16);
  this->publish(b);
  this->expect_violation(Errc::chain_too_long);
}

TYPED_TEST(Malicious, ChainLongerThanMaxChainLen) {
  ASSERT_TRUE(this->h.configure(0, /*max_chain_len=*/2));
  ChainBuilder b = this->h.drv.chain().readable(this->data, 8).readable(this->data + 8, 8);
  b.writable(this->data + 16, 8);
  this->publish(b);
  this->expect_violation(Errc::chain_too_long);
}

// §2.7.5.3.1: the table length is a multiple of 16.
TYPED_TEST(Malicious, IndirectLenNotMultipleOf16) {
  ASSERT_TRUE(this->h.configure(kIndirect));
  ChainBuilder b = this->h.drv.chain().indirect().readable(this->data, 16).readable(this->data, 16);
  b.indirect_len(24);
  this->publish(b);
  this->expect_violation(Errc::indirect_len_bad);
}

TYPED_TEST(Malicious, IndirectLenZero) {
  ASSERT_TRUE(this->h.configure(kIndirect));
  ChainBuilder b = this->h.drv.chain().indirect();  // an empty table
  this->publish(b);
  this->expect_violation(Errc::indirect_len_bad);
}

// §2.7.5.3.1 / §2.8.19: no INDIRECT inside an indirect table.
TYPED_TEST(Malicious, IndirectInIndirect) {
  ASSERT_TRUE(this->h.configure(kIndirect));
  ChainBuilder b = this->h.drv.chain().indirect().readable(this->data, 16);
  b.readable(this->data + 16, 16).flags(kDescFIndirect);
  this->publish(b);
  this->expect_violation(Errc::indirect_in_indirect);
}

// §2.7.5.3.1 / §2.8.19: INDIRECT and NEXT never together.
TYPED_TEST(Malicious, NextWithIndirect) {
  ASSERT_TRUE(this->h.configure(kIndirect));
  ChainBuilder b = this->h.drv.chain().indirect().readable(this->data, 16);
  b.indirect_flags(kDescFNext);
  this->publish(b);
  this->expect_violation(Errc::next_with_indirect);
}

// §2.7.5.3.1 / §2.8.19: INDIRECT only with VIRTIO_F_INDIRECT_DESC.
TYPED_TEST(Malicious, IndirectNotNegotiated) {
  ASSERT_TRUE(this->h.configure(0));
  ChainBuilder b = this->h.drv.chain().indirect().readable(this->data, 16);
  this->publish(b);
  this->expect_violation(Errc::indirect_not_negotiated);
}

// §2.7.4.2 / §2.8.17: device-writable elements come after all device-readable ones.
TYPED_TEST(Malicious, ReadableAfterWritable) {
  ASSERT_TRUE(this->h.configure());
  ChainBuilder b = this->h.drv.chain().writable(this->data, 16).readable(this->data + 16, 16);
  this->publish(b);
  this->expect_violation(Errc::readable_after_writable);
}

TYPED_TEST(Malicious, ReadableAfterZeroLengthWritable) {
  ASSERT_TRUE(this->h.configure());
  ChainBuilder b = this->h.drv.chain().writable(this->data, 0).readable(this->data + 16, 16);
  this->publish(b);
  this->expect_violation(Errc::readable_after_writable);
}

TYPED_TEST(Malicious, ReadableAfterWritableInIndirect) {
  ASSERT_TRUE(this->h.configure(kIndirect));
  ChainBuilder b = this->h.drv.chain().indirect().writable(this->data, 16);
  b.readable(this->data + 16, 16);
  this->publish(b);
  this->expect_violation(Errc::readable_after_writable);
}

TYPED_TEST(Malicious, AddressNotMapped) {
  ASSERT_TRUE(this->h.configure());
  ChainBuilder b = this->h.drv.chain().readable(this->data, 16).writable(this->h.guest.end() + 0x10000, 16);
  this->publish(b);
  this->expect_violation(Errc::address_not_mapped);
}

TYPED_TEST(Malicious, AddressInTheGuardBandIsNotMapped) {
  ASSERT_TRUE(this->h.configure());
  // Host memory exists there (the guard band), but it is not guest memory.
  ChainBuilder b = this->h.drv.chain().writable(TestGuest::kBase - 64, 32);
  this->publish(b);
  this->expect_violation(Errc::address_not_mapped);
}

TYPED_TEST(Malicious, BufferRunningPastTheEndIsNotMapped) {
  ASSERT_TRUE(this->h.configure());
  ChainBuilder b = this->h.drv.chain().writable(this->h.guest.end() - 8, 64);
  this->publish(b);
  this->expect_violation(Errc::address_not_mapped);
}

TYPED_TEST(Malicious, IndirectTableNotMapped) {
  ASSERT_TRUE(this->h.configure(kIndirect));
  ChainBuilder b = this->h.drv.chain().indirect().readable(this->data, 16);
  b.indirect_at(this->h.guest.end() + 0x1000);
  this->publish(b);
  this->expect_violation(Errc::address_not_mapped);
}

// A table must translate contiguously (translate_contiguous): contiguous guest addresses over two
// host mappings are not accepted.
TYPED_TEST(Malicious, IndirectTableCrossingRegionsIsNotMapped) {
  BufferMemory second(this->h.guest.end(), 4096);
  this->h.guest.add_region(this->h.guest.end(), second.host(second.base()), second.size());
  ASSERT_TRUE(this->h.configure(kIndirect));
  ChainBuilder b = this->h.drv.chain().indirect().readable(this->data, 16).readable(this->data, 16);
  b.indirect_at(this->h.guest.end() - 16);  // entry 0 in region 1, entry 1 in region 2
  this->publish(b);
  this->expect_violation(Errc::address_not_mapped);
}

// §2.7.4 / §2.8.17: a chain never describes more than 2^32 bytes in total.
TYPED_TEST(Malicious, LengthOverflow) {
  // A 5 GiB reservation that is never touched: translation only records spans.
  constexpr std::size_t kHuge = std::size_t{5} << 30;
  constexpr std::uint64_t kHugeGpa = std::uint64_t{1} << 40;
  void* p = mmap(nullptr, kHuge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  this->h.guest.add_region(kHugeGpa, static_cast<std::byte*>(p), kHuge);
  ASSERT_TRUE(this->h.configure());
  ChainBuilder b = this->h.drv.chain().readable(kHugeGpa, 0xfffffff0u).readable(kHugeGpa, 0x20);
  this->publish(b);
  this->expect_violation(Errc::length_overflow);
  munmap(p, kHuge);
}

TYPED_TEST(Malicious, BrokenIsSticky) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure(0));
  ChainBuilder bad = r.drv.chain().indirect().readable(this->data, 16);
  this->publish(bad);
  this->expect_violation(Errc::indirect_not_negotiated);
  // Valid work afterwards changes nothing: every verb is a no-op until configure/reset.
  ChainBuilder good = r.drv.chain().readable(this->data, 16);
  this->publish(good);
  EXPECT_EQ(r.ring.pop(r.chain).error(), Errc::broken);
  std::vector<Chain> chains(2);
  EXPECT_EQ(r.ring.pop_burst(chains).error(), Errc::broken);
  r.ring.push(Head{0, 1}, 4);
  r.ring.flush();
  EXPECT_FALSE(r.drv.read_used());
  EXPECT_FALSE(r.ring.enable_notification());
  EXPECT_FALSE(r.ring.needs_notification());
  EXPECT_EQ(r.ring.error(), Errc::indirect_not_negotiated);
  r.ring.reset();
  EXPECT_FALSE(r.ring.broken());
  EXPECT_EQ(r.ring.error(), Errc::ok);
  EXPECT_EQ(r.ring.pop(r.chain).error(), Errc::not_ready);
}

}  // namespace
}  // namespace vireo::test
