// Dirty-page logging (vhost-user live migration): the bitmap itself, and which pages a ring marks.
#include <gtest/gtest.h>

#include <array>
#include <set>
#include <vector>

#include "tests/support/ring_fakes.hpp"
#include "vring/dirty_log.hpp"

namespace vireo::test {
namespace {

using namespace vring;

constexpr std::uint64_t kPage = kDirtyLogPageSize;

std::uint8_t byte_at(const std::vector<std::byte>& v, std::size_t i) {
  return static_cast<std::uint8_t>(v[i]);
}

TEST(DirtyLog, OneBitPerPage) {
  std::vector<std::byte> bits(4);
  DirtyLog log(bits.data(), bits.size());
  log.mark(0, 1);
  log.mark(9 * kPage + 5, 1);
  EXPECT_EQ(byte_at(bits, 0), 0x01);
  EXPECT_EQ(byte_at(bits, 1), 0x02);  // page 9 = byte 1, bit 1
  EXPECT_TRUE(log.test(9 * kPage));
  EXPECT_FALSE(log.test(8 * kPage));
}

TEST(DirtyLog, RangeAcrossPageAndByteBoundaries) {
  std::vector<std::byte> bits(4);
  DirtyLog log(bits.data(), bits.size());
  log.mark(7 * kPage + 4000, 200);  // pages 7 and 8
  EXPECT_EQ(byte_at(bits, 0), 0x80);
  EXPECT_EQ(byte_at(bits, 1), 0x01);
  log.mark(0, 20 * kPage);  // pages 0..19
  EXPECT_EQ(byte_at(bits, 0), 0xff);
  EXPECT_EQ(byte_at(bits, 1), 0xff);
  EXPECT_EQ(byte_at(bits, 2), 0x0f);
  EXPECT_EQ(byte_at(bits, 3), 0x00);
}

TEST(DirtyLog, ZeroLengthMarksNothing) {
  std::vector<std::byte> bits(2);
  DirtyLog log(bits.data(), bits.size());
  log.mark(kPage, 0);
  EXPECT_EQ(byte_at(bits, 0), 0);
}

TEST(DirtyLog, PagesPastTheBitmapAreIgnored) {
  std::vector<std::byte> storage(8, std::byte{0});
  DirtyLog log(storage.data(), 4);  // 32 pages; bytes 4..7 are a guard
  log.mark(30 * kPage, 10 * kPage);
  EXPECT_EQ(byte_at(storage, 3), 0xc0);
  for (std::size_t i = 4; i < 8; ++i) EXPECT_EQ(byte_at(storage, i), 0) << i;
  log.mark(UINT64_MAX - 10, 100);  // wraps the address space: ignored, no crash
  log.mark(64 * kPage, 1);
  for (std::size_t i = 4; i < 8; ++i) EXPECT_EQ(byte_at(storage, i), 0) << i;
  EXPECT_FALSE(DirtyLog().test(0));
  DirtyLog().mark(0, 1);  // detached log: no-op
}

TEST(DirtyLog, OrKeepsBitsSetByOthers) {
  std::vector<std::byte> bits(1, std::byte{0x40});
  DirtyLog log(bits.data(), bits.size());
  log.mark(0, 1);
  EXPECT_EQ(byte_at(bits, 0), 0x41);
}

template <class Layout>
class DirtyLogRingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bitmap.assign(h.guest.end() / kPage / 8 + 1, std::byte{0});
    log = DirtyLog(bitmap.data(), bitmap.size());
    ring_gpa = Layout::kPacked ? h.drv.areas().desc_gpa : h.drv.areas().used_gpa;
    out = h.guest.alloc(64, kPage);
    in = h.guest.alloc(4 * kPage, kPage) + 2048;  // mid-page start, spans 4 pages
  }
  std::set<std::uint64_t> marked_pages() const {
    std::set<std::uint64_t> pages;
    for (std::uint64_t p = 0; p < bitmap.size() * 8; ++p)
      if (log.test(p * kPage)) pages.insert(p);
    return pages;
  }
  void pop_one() {
    auto id = h.drv.chain().readable(out, 64).writable(in, 3 * kPage).build();
    ASSERT_TRUE(id) << id.error();
    h.drv.publish();
    Result<bool> got = h.ring.pop(h.chain);
    ASSERT_TRUE(got && *got);
  }

  RingHarness<Layout> h{8};
  std::vector<std::byte> bitmap;
  DirtyLog log;
  std::uint64_t ring_gpa = 0;
  std::uint64_t out = 0;
  std::uint64_t in = 0;
};
TYPED_TEST_SUITE(DirtyLogRingTest, RingLayouts, LayoutNames);

TYPED_TEST(DirtyLogRingTest, MarksExactlyWrittenPagesAndTheUsedRing) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  r.ring.set_dirty_log(&this->log, this->ring_gpa);
  this->pop_one();
  const std::uint32_t written = kPage + 100;  // [in, in + 4196): two pages
  r.ring.push(r.chain, written);
  const std::uint64_t first = this->in / kPage;
  EXPECT_EQ(this->marked_pages(), (std::set<std::uint64_t>{first, first + 1}))
      << "buffer pages are logged at push, the readable part never";
  r.ring.flush();
  EXPECT_EQ(this->marked_pages(),
            (std::set<std::uint64_t>{first, first + 1, this->ring_gpa / kPage}))
      << "flush logs the used-ring write";
  EXPECT_TRUE(r.drv.read_used());
}

TYPED_TEST(DirtyLogRingTest, NothingWrittenLogsOnlyTheRing) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  r.ring.set_dirty_log(&this->log, this->ring_gpa);
  this->pop_one();
  r.ring.push(r.chain, 0);
  r.ring.flush();
  EXPECT_EQ(this->marked_pages(), (std::set<std::uint64_t>{this->ring_gpa / kPage}));
}

TYPED_TEST(DirtyLogRingTest, DetachedLogMarksNothing) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  r.ring.set_dirty_log(&this->log, this->ring_gpa);
  r.ring.set_dirty_log(nullptr, 0);
  this->pop_one();
  r.ring.push(r.chain, 3 * kPage);
  r.ring.flush();
  EXPECT_TRUE(this->marked_pages().empty());
}

TYPED_TEST(DirtyLogRingTest, WrittenBeyondTheWritablePartIsClamped) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  r.ring.set_dirty_log(&this->log, this->ring_gpa);
  this->pop_one();
  r.ring.push(r.chain, 10 * kPage);  // device bug: claims more than the buffer holds
  r.ring.flush();
  const std::uint64_t first = this->in / kPage;
  // [in, in + 3 pages) from a mid-page start touches four pages; nothing beyond.
  EXPECT_EQ(this->marked_pages(), (std::set<std::uint64_t>{first, first + 1, first + 2, first + 3,
                                                           this->ring_gpa / kPage}));
}

}  // namespace
}  // namespace vireo::test
