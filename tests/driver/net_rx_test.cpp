// NetDriver's RX fast path (driver/net_rx.hpp): a used RX buffer becomes a frame only when what
// the device wrote is sane. Each test names the device misbehaviour it feeds in; a rejected
// buffer must leave the caller's RxPacket untouched (the general path then drops it).
#include "driver/net_rx.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace vireo::driver::detail {
namespace {

constexpr std::uint32_t kBuf = 256;
constexpr std::uint32_t kHdr = sizeof(proto::net::NetHdr);

struct Bufs {
  std::vector<std::byte> mem = std::vector<std::byte>(4 * kBuf);
  void set_num_buffers(std::uint16_t slot, std::uint16_t n) {
    std::memcpy(mem.data() + slot * kBuf + offsetof(proto::net::NetHdr, num_buffers), &n, 2);
  }
  RxArea area(bool mrg) const { return RxArea{mem.data(), kBuf, mrg}; }
};

RxPacket untouched() {
  RxPacket p;
  p.nsegs = 5;
  p.len = 12345;
  return p;
}
void expect_untouched(const RxPacket& p) {
  EXPECT_EQ(p.nsegs, 5);
  EXPECT_EQ(p.len, 12345u);
  EXPECT_EQ(p.segs[0].data(), nullptr);
}

TEST(NetRxWhole, OneBufferFrameBecomesASpanAfterTheHeader) {
  Bufs b;
  b.set_num_buffers(2, 1);
  for (bool mrg : {false, true}) {
    RxPacket p = untouched();
    ASSERT_TRUE(b.area(mrg).take_whole(2, kHdr + 60, p));
    EXPECT_EQ(p.nsegs, 1);
    EXPECT_EQ(p.slots[0], 2);
    EXPECT_EQ(p.len, 60u);
    EXPECT_EQ(p.segs[0].data(), b.mem.data() + 2 * kBuf + kHdr);
    EXPECT_EQ(p.segs[0].size(), 60u);
  }
}

TEST(NetRxWhole, HeaderOnlyFrameIsEmpty) {
  Bufs b;
  b.set_num_buffers(0, 1);
  RxPacket p = untouched();
  ASSERT_TRUE(b.area(true).take_whole(0, kHdr, p));
  EXPECT_EQ(p.len, 0u);
  EXPECT_EQ(p.nsegs, 1);
}

TEST(NetRxWhole, UsedLenLargerThanTheBuffer) {
  Bufs b;
  b.set_num_buffers(1, 1);
  for (std::uint32_t len : {kBuf + 1, 0xffffffffu}) {
    RxPacket p = untouched();
    EXPECT_FALSE(b.area(true).take_whole(1, len, p)) << len;
    expect_untouched(p);
  }
  RxPacket p = untouched();
  EXPECT_TRUE(b.area(true).take_whole(1, kBuf, p));  // exactly the buffer is fine
  EXPECT_EQ(p.len, kBuf - kHdr);
}

TEST(NetRxWhole, UsedLenShorterThanTheHeader) {
  Bufs b;
  b.set_num_buffers(1, 1);
  for (std::uint32_t len : {0u, 1u, kHdr - 1}) {
    RxPacket p = untouched();
    EXPECT_FALSE(b.area(false).take_whole(1, len, p)) << len;
    expect_untouched(p);
  }
}

TEST(NetRxWhole, NumBuffersOtherThanOneWithMergeableBuffers) {
  Bufs b;
  for (std::uint16_t n : {0, 2, 8, 0xffff}) {
    b.set_num_buffers(3, n);
    RxPacket p = untouched();
    EXPECT_FALSE(b.area(true).take_whole(3, kHdr + 10, p)) << n;
    expect_untouched(p);
    // §5.1.6.4: without MRG_RXBUF num_buffers is not consulted (the frame is one buffer).
    EXPECT_TRUE(b.area(false).take_whole(3, kHdr + 10, p)) << n;
  }
}

}  // namespace
}  // namespace vireo::driver::detail
