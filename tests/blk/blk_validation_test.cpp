// §5.2.6 validation on both ring layouts: every malformed or refused request class is answered
// with the status the spec names (IOERR / UNSUPP), or pushed with length 0 when it has no status
// byte, and never touches the image; the queue keeps working afterwards.
#include <gtest/gtest.h>

#include <cstdint>

#include "tests/blk/blk_harness.hpp"

namespace vireo::test {
namespace {

using namespace device::blk;

template <class L>
class BlkValidationTest : public ::testing::Test {
 protected:
  explicit BlkValidationTest(BlkOptions opt = {}) : h_(opt), before(h_.image.contents()) {}

  // Kicks, waits for `s`, checks its status, its used length (the whole writable part: data
  // buffers + status byte) and the image.
  void expect_answer(const Submitted& s, std::uint8_t status, std::uint32_t writable_data = 0) {
    h_.kick();
    ASSERT_TRUE(h_.wait(1));
    EXPECT_EQ(h_.status(s), status);
    EXPECT_EQ(h_.used_len(s), writable_data + 1);
    expect_image_unchanged();
  }
  void expect_image_unchanged() {
    EXPECT_TRUE(h_.image.contents() == before) << "the image changed";
    EXPECT_EQ(h_.backend->outstanding(0), 0u);
  }
  // The queue still serves a valid request after the bad one.
  void expect_queue_alive() {
    Buf b = h_.data(512, std::byte{0});
    Submitted r = h_.read(3, {b});
    h_.kick();
    ASSERT_TRUE(h_.wait(1));
    EXPECT_EQ(h_.status(r), kSOk);
    EXPECT_FALSE(std::visit([](auto& ring) { return ring.broken(); }, h_.queues[0].q->ring()));
  }
  std::uint64_t cap() const { return h_.backend->config().capacity; }

  BlkHarness<L> h_;
  std::vector<std::byte> before;
};
TYPED_TEST_SUITE(BlkValidationTest, RingLayouts, LayoutNames);

TYPED_TEST(BlkValidationTest, HeaderShorterThan16BytesIsIoErr) {
  auto& h = this->h_;
  this->expect_answer(h.request(kTOut, 0, {}, {}, true, /*header_len=*/8), kSIoErr);
  this->expect_queue_alive();
}

TYPED_TEST(BlkValidationTest, NoWritableByteIsPushedWithLengthZero) {
  auto& h = this->h_;
  Submitted w = h.request(kTOut, 0, {h.pattern(512, 1)}, {}, /*with_status=*/false);
  Submitted r = h.request(kTIn, 0, {}, {}, /*with_status=*/false);
  h.kick();
  ASSERT_TRUE(h.wait(2));
  EXPECT_EQ(h.used_len(w), 0u);
  EXPECT_EQ(h.used_len(r), 0u);
  EXPECT_EQ(h.status(w), 0xEE) << "a byte outside the chain was written";
  this->expect_image_unchanged();
  this->expect_queue_alive();
}

TYPED_TEST(BlkValidationTest, ReadPastCapacityIsIoErr) {
  auto& h = this->h_;
  Buf b = h.data(1024, std::byte{0x5A});
  this->expect_answer(h.read(this->cap() - 1, {b}), kSIoErr, 1024);  // second sector is past the end
  EXPECT_TRUE(h.guest.all_equal(b.gpa, b.len, std::byte{0x5A})) << "buffer written";
  this->expect_answer(h.read(this->cap(), {h.data(512, std::byte{0})}), kSIoErr, 512);
}

TYPED_TEST(BlkValidationTest, WritePastCapacityIsIoErrAndWritesNothing) {
  auto& h = this->h_;
  this->expect_answer(h.write(this->cap() - 4, {h.pattern(4096, 2)}), kSIoErr);
  this->expect_answer(h.write(this->cap(), {h.pattern(512, 3)}), kSIoErr);
}

TYPED_TEST(BlkValidationTest, OverflowingSectorRangeIsIoErr) {
  auto& h = this->h_;
  this->expect_answer(h.write(UINT64_MAX - 2, {h.pattern(4096, 4)}), kSIoErr);
  this->expect_answer(h.read(UINT64_MAX >> 9, {h.data(512, std::byte{0})}), kSIoErr, 512);
  this->expect_queue_alive();
}

TYPED_TEST(BlkValidationTest, UnknownTypeIsUnsupp) {
  auto& h = this->h_;
  this->expect_answer(h.request(99, 0, {h.pattern(512, 5)}, {}), kSUnsupp);
  this->expect_answer(h.request(10, 0, {}, {h.data(16, std::byte{0})}), kSUnsupp, 16);  // GET_LIFETIME
  this->expect_queue_alive();
}

TYPED_TEST(BlkValidationTest, DataNotMultipleOfTheSectorSizeIsIoErr) {
  auto& h = this->h_;
  this->expect_answer(h.write(0, {h.pattern(100, 6)}), kSIoErr);
  this->expect_answer(h.read(0, {h.data(700, std::byte{0})}), kSIoErr, 700);
}

TYPED_TEST(BlkValidationTest, DiscardWithUnmapFlagIsUnsupp) {
  auto& h = this->h_;
  this->expect_answer(h.segments(kTDiscard, {{0, 8, kWriteZeroesFlagUnmap}}), kSUnsupp);
}

TYPED_TEST(BlkValidationTest, UnknownSegmentFlagsAreUnsupp) {
  auto& h = this->h_;
  this->expect_answer(h.segments(kTWriteZeroes, {{0, 8, 1u << 1}}), kSUnsupp);
  this->expect_answer(h.segments(kTDiscard, {{0, 8, 1u << 31}}), kSUnsupp);
}

TYPED_TEST(BlkValidationTest, SegmentsPastCapacityOrOverflowingAreIoErr) {
  auto& h = this->h_;
  const auto cap = this->cap();
  this->expect_answer(h.segments(kTDiscard, {{cap - 4, 8, 0}}), kSIoErr);
  this->expect_answer(h.segments(kTWriteZeroes, {{UINT64_MAX - 1, 8, 0}}), kSIoErr);
  // A valid first segment does not run when a later one is bad: nothing is touched.
  this->expect_answer(h.segments(kTWriteZeroes, {{0, 8, 0}, {cap, 1, 0}}), kSIoErr);
}

TYPED_TEST(BlkValidationTest, MalformedSegmentListsAreUnsupp) {
  auto& h = this->h_;
  Buf odd = h.pattern(20, 7);  // not a multiple of 16 bytes
  this->expect_answer(h.request(kTDiscard, 0, {odd}, {}), kSUnsupp);
  this->expect_answer(h.request(kTWriteZeroes, 0, {}, {}), kSUnsupp);  // no segment at all
  std::vector<DiscardWriteZeroesSeg> many(17, DiscardWriteZeroesSeg{0, 1, 0});  // max_seg is 16
  this->expect_answer(h.segments(kTDiscard, many), kSUnsupp);
  this->expect_queue_alive();
}

TYPED_TEST(BlkValidationTest, SegmentsOverTheSectorLimitAreIoErr) {
  BlkOptions opt;
  opt.max_discard_sectors = 64;
  opt.max_write_zeroes_sectors = 32;
  BlkHarness<TypeParam> small(opt);
  const auto image = small.image.contents();
  Submitted d = small.segments(kTDiscard, {{0, 65, 0}});
  Submitted z = small.segments(kTWriteZeroes, {{0, 33, 0}});
  small.kick();
  ASSERT_TRUE(small.wait(2));
  EXPECT_EQ(small.status(d), kSIoErr);
  EXPECT_EQ(small.status(z), kSIoErr);
  EXPECT_TRUE(small.image.contents() == image);
}

template <class L>
class BlkReadOnlyTest : public BlkValidationTest<L> {
 protected:
  static BlkOptions read_only() {
    BlkOptions o;
    o.read_only = true;
    return o;
  }
  BlkReadOnlyTest() : BlkValidationTest<L>(read_only()) {}
};
TYPED_TEST_SUITE(BlkReadOnlyTest, RingLayouts, LayoutNames);

TYPED_TEST(BlkReadOnlyTest, WritesDiscardsAndWriteZeroesAreRefused) {
  auto& h = this->h_;
  const std::uint64_t f = h.backend->info().device_features;
  EXPECT_TRUE(f & (std::uint64_t{1} << kFRo));
  EXPECT_FALSE(f & (std::uint64_t{1} << kFDiscard));
  EXPECT_FALSE(f & (std::uint64_t{1} << kFWriteZeroes));
  // §5.2.6.2: IOERR, and no data written.
  this->expect_answer(h.write(0, {h.pattern(4096, 8)}), kSIoErr);
  this->expect_answer(h.segments(kTDiscard, {{0, 8, 0}}), kSIoErr);
  this->expect_answer(h.segments(kTWriteZeroes, {{0, 8, 0}}), kSIoErr);
  this->expect_queue_alive();  // reads still work
}

}  // namespace
}  // namespace vireo::test
