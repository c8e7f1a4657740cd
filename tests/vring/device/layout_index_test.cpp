// Ring layouts against the spec tables (§2.7, §2.8) and the index arithmetic (need_event,
// off_wrap, packed cursors) against brute-force definitions.
#include <gtest/gtest.h>

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "vring/index.hpp"
#include "vring/layout.hpp"

namespace vireo::vring {
namespace {

TEST(SplitLayout, SizesAndAlignmentMatchSpecTable) {
  // §2.7: descriptor table 16*N (align 16), available ring 6+2*N (align 2), used ring 6+8*N
  // (align 4); the trailing 2 bytes are used_event / avail_event.
  EXPECT_EQ(split_desc_bytes(256), 4096u);
  EXPECT_EQ(split_avail_bytes(256), 6u + 512u);
  EXPECT_EQ(split_used_bytes(256), 6u + 2048u);
  EXPECT_EQ(kSplitDescAlign, 16u);
  EXPECT_EQ(kSplitAvailAlign, 2u);
  EXPECT_EQ(kSplitUsedAlign, 4u);
  EXPECT_EQ(sizeof(SplitDesc), 16u);
  EXPECT_EQ(offsetof(SplitDesc, len), 8u);
  EXPECT_EQ(offsetof(SplitDesc, flags), 12u);
  EXPECT_EQ(offsetof(SplitDesc, next), 14u);
  EXPECT_EQ(sizeof(UsedElem), 8u);
  EXPECT_EQ(offsetof(UsedElem, len), 4u);
}

TEST(SplitLayout, ViewOffsets) {
  constexpr std::uint16_t n = 8;
  alignas(16) std::byte desc[16 * n];
  alignas(4) std::byte avail[6 + 2 * n];
  alignas(4) std::byte used[6 + 8 * n];
  SplitRingView v = SplitRingView::at(desc, avail, used, n);
  auto off = [](const void* p, const void* base) {
    return static_cast<const std::byte*>(p) - static_cast<const std::byte*>(base);
  };
  EXPECT_EQ(off(v.avail_flags, avail), 0);
  EXPECT_EQ(off(v.avail_idx, avail), 2);
  EXPECT_EQ(off(v.avail_ring, avail), 4);
  EXPECT_EQ(off(v.used_event, avail), 4 + 2 * n);
  EXPECT_EQ(off(v.used_flags, used), 0);
  EXPECT_EQ(off(v.used_idx, used), 2);
  EXPECT_EQ(off(v.used_ring, used), 4);
  EXPECT_EQ(off(v.avail_event, used), 4 + 8 * n);
}

TEST(PackedLayout, SizesAndOffsets) {
  // §2.8.13 struct pvirtq_desc, §2.8.14 struct pvirtq_event_suppress, §2.8.10.1 alignment.
  EXPECT_EQ(sizeof(PackedDesc), 16u);
  EXPECT_EQ(offsetof(PackedDesc, len), 8u);
  EXPECT_EQ(offsetof(PackedDesc, id), 12u);
  EXPECT_EQ(offsetof(PackedDesc, flags), 14u);
  EXPECT_EQ(sizeof(EventSuppress), 4u);
  EXPECT_EQ(offsetof(EventSuppress, flags), 2u);
  EXPECT_EQ(kPackedDescAlign, 16u);
  EXPECT_EQ(kPackedEventAlign, 4u);
  EXPECT_EQ(packed_desc_bytes(3), 48u);
  EXPECT_EQ(kDescFAvail, 1u << 7);
  EXPECT_EQ(kDescFUsed, 1u << 15);
}

TEST(QueueSize, SplitPowerOfTwoPackedAny) {
  EXPECT_FALSE(valid_split_size(0));
  EXPECT_TRUE(valid_split_size(1));
  EXPECT_FALSE(valid_split_size(3));
  EXPECT_TRUE(valid_split_size(32768));
  EXPECT_FALSE(valid_split_size(65536));
  EXPECT_TRUE(valid_packed_size(3));
  EXPECT_TRUE(valid_packed_size(32768));
  EXPECT_FALSE(valid_packed_size(32769));
  EXPECT_FALSE(valid_packed_size(0));
}

// Brute force: did the index step through `event` while moving from old to new (one step at a
// time, modulo 2^16)?
std::unique_ptr<std::bitset<65536>> visited(std::uint16_t old_idx, std::uint16_t new_idx) {
  auto seen = std::make_unique<std::bitset<65536>>();
  for (std::uint16_t i = old_idx; i != new_idx; ++i) seen->set(i);
  return seen;
}

TEST(NeedEvent, MatchesBruteForceOverEveryEvent) {
  const std::uint16_t olds[] = {0, 1, 100, 32767, 32768, 65000, 65535};
  const std::uint16_t deltas[] = {0, 1, 2, 7, 256, 4095, 32768, 65535};
  for (std::uint16_t old_idx : olds) {
    for (std::uint16_t delta : deltas) {
      const auto new_idx = static_cast<std::uint16_t>(old_idx + delta);
      auto seen = visited(old_idx, new_idx);
      for (std::uint32_t e = 0; e < 65536; ++e) {
        ASSERT_EQ(need_event(static_cast<std::uint16_t>(e), new_idx, old_idx), seen->test(e))
            << "event " << e << " old " << old_idx << " new " << new_idx;
      }
    }
  }
}

TEST(NeedEvent, MatchesBruteForceOverEveryOldIndex) {
  for (std::uint32_t o = 0; o < 65536; ++o) {
    const auto old_idx = static_cast<std::uint16_t>(o);
    for (std::uint16_t delta : {1, 5}) {
      const auto new_idx = static_cast<std::uint16_t>(old_idx + delta);
      for (int rel : {-1, 0, delta - 1, static_cast<int>(delta)}) {
        const auto event = static_cast<std::uint16_t>(old_idx + rel);
        const bool expect = rel >= 0 && rel < delta;
        ASSERT_EQ(need_event(event, new_idx, old_idx), expect) << o << " " << rel;
      }
    }
  }
}

TEST(OffWrap, EncodeDecodeRoundTrip) {
  for (std::uint32_t idx = 0; idx < 32768; ++idx) {
    for (bool wrap : {false, true}) {
      const PackedCursor c{static_cast<std::uint16_t>(idx), wrap};
      const std::uint16_t ow = encode_off_wrap(c);
      ASSERT_EQ(ow & 0x7fffu, idx);                       // desc_event_off: bits 0..14
      ASSERT_EQ((ow >> 15) != 0, wrap);                   // desc_event_wrap: bit 15
      ASSERT_EQ(decode_off_wrap(ow), c);
    }
  }
  for (std::uint32_t v = 0; v < 65536; ++v)
    ASSERT_EQ(encode_off_wrap(decode_off_wrap(static_cast<std::uint16_t>(v))), v);
}

TEST(PackedCursor, AdvanceFlipsWrapAtEnd) {
  PackedCursor c;  // §2.8.1: wrap counters start at 1
  EXPECT_TRUE(c.wrap);
  c.advance(3, 4);
  EXPECT_EQ(c, (PackedCursor{3, true}));
  c.advance(1, 4);
  EXPECT_EQ(c, (PackedCursor{0, false}));
  c.advance(4, 4);
  EXPECT_EQ(c, (PackedCursor{0, true}));
  PackedCursor one;
  one.advance(1, 1);
  EXPECT_EQ(one, (PackedCursor{0, false}));
}

// Position of the n-th slot written since a cursor at {0, wrap=1}.
PackedCursor position(std::uint64_t n, std::uint16_t size) {
  return PackedCursor{static_cast<std::uint16_t>(n % size), (n / size) % 2 == 0};
}

TEST(NeedEventPacked, MatchesBruteForce) {
  for (std::uint16_t size : {1, 2, 3, 8, 256, 32768}) {
    std::vector<std::uint64_t> olds = {0, 1, size - 1u, size, 2u * size + 1, 5u * size - 1};
    for (std::uint64_t old_abs : olds) {
      for (std::uint32_t delta : {0u, 1u, 2u, size / 2u, size - 1u, static_cast<std::uint32_t>(size)}) {
        if (delta > size) continue;
        const PackedCursor old_pos = position(old_abs, size);
        const PackedCursor new_pos = position(old_abs + delta, size);
        std::vector<bool> seen(2u * size);  // [wrap * size + idx]: slot written in this window
        for (std::uint64_t k = old_abs; k < old_abs + delta; ++k) {
          const PackedCursor p = position(k, size);
          seen[(p.wrap ? size : 0u) + p.idx] = true;
        }
        for (std::uint32_t idx = 0; idx < size; ++idx) {
          for (bool wrap : {false, true}) {
            const PackedCursor event{static_cast<std::uint16_t>(idx), wrap};
            const bool expect = seen[(wrap ? size : 0u) + idx];
            ASSERT_EQ(need_event_packed(encode_off_wrap(event), old_pos, new_pos, size), expect)
                << "size " << size << " old " << old_abs << " delta " << delta << " event "
                << idx << "/" << wrap;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace vireo::vring
