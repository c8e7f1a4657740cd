// VIRTIO_F_IN_ORDER on the device rings, both layouts: push_unwritten() of n > 1 buffers returns
// them as ONE used element carrying the LAST buffer's id, written at the batch's first used
// position. Split (§2.7.9 "In-order use of descriptors"): used->idx moves by n. Packed (§2.8.23):
// the used position skips every descriptor slot of the batch, and the skipped slots keep the
// driver's descriptors. Without the feature, with an inflight log attached, or for one buffer,
// every buffer gets its own element as before.
//
// The fakes in tests/support do not reap in-order batches (each used element frees one buffer),
// so after a batch these tests read ring memory directly (expect_used_at / expect_used_end /
// expect_skipped) and never call read_used() again. Positions are counted from the ring's start
// in the layout's own unit: split, used-ring entries (one per buffer, §2.7.8); packed, descriptor
// slots (one per descriptor, §2.8.6), where position p is slot p % size on lap p / size.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "tests/vring/device/malicious_fixture.hpp"
#include "vring/dirty_log.hpp"
#include "vring/inflight_log.hpp"

namespace vireo::test {
namespace {

using namespace vring;

constexpr std::uint64_t kInOrder = feature_bit(kFInOrder);
constexpr std::uint64_t kEventIdx = feature_bit(kFEventIdx);

// The malicious suites' fixture gives a ring of 8 and a page-aligned data area of its own (so a
// dirty-log test can tell buffer pages from ring pages).
template <class Layout>
class InOrder : public MaliciousTest<Layout> {
 protected:
  std::uint64_t buf(std::size_t k) const { return this->data + 64 * (k % 64); }

  // Adds one buffer per entry of `descs`, made of that many 64-byte descriptors (device-readable,
  // as a transmit queue's, or device-writable), and publishes them; their ids.
  std::vector<std::uint16_t> publish_chains(const std::vector<std::size_t>& descs,
                                            bool writable = false) {
    std::vector<std::uint16_t> ids;
    for (std::size_t n : descs) {
      ChainBuilder b = this->h.drv.chain();
      for (std::size_t d = 0; d < n; ++d) {
        if (writable) b.writable(buf(next_buf_++), 64);
        else b.readable(buf(next_buf_++), 64);
      }
      auto id = b.build();
      EXPECT_TRUE(id) << id.error();
      ids.push_back(id ? *id : 0);
    }
    this->h.drv.publish();
    return ids;
  }
  std::vector<std::uint16_t> publish_lone(std::size_t n) {
    return publish_chains(std::vector<std::size_t>(n, 1));
  }
  std::uint16_t publish_writable() { return publish_chains({1}, true)[0]; }

  // pop_burst() of exactly n buffers into `popped`; their heads, for push_unwritten().
  std::vector<Head> pop_heads(std::size_t n) {
    popped = std::vector<Chain>(n);
    Result<std::size_t> got = this->h.ring.pop_burst(popped);
    EXPECT_TRUE(got && *got == n) << (got ? std::to_string(*got) : to_string(got.error()));
    std::vector<Head> heads;
    for (const Chain& c : popped) heads.push_back(c.head());
    return heads;
  }

  // Moves both ring positions over n one-descriptor buffers the ordinary way (push() each, one
  // flush, reaped by the fake), so that the next buffers start at ring slot / entry n.
  void advance(std::size_t n) {
    const std::vector<std::uint16_t> ids = publish_lone(n);
    for (std::size_t k = 0; k < ids.size(); ++k) {
      ASSERT_TRUE(*this->h.ring.pop(this->h.chain));
      this->h.ring.push(this->h.chain, 0);
    }
    this->h.ring.flush();
    expect_reaped(ids);
  }

  // The fake driver reaps exactly these ids, in this order, with len 0 (only without batches).
  void expect_reaped(const std::vector<std::uint16_t>& ids) {
    for (std::uint16_t id : ids) EXPECT_EQ(this->h.drv.read_used(), (UsedBuf{id, 0}));
    EXPECT_FALSE(this->h.drv.read_used());
  }

  // What the driver finds at used position p, read from ring memory. Split: used->idx has passed
  // p and ring[p % size] is the element. Packed: slot p % size is a used descriptor for p's lap
  // (§2.8.1: AVAIL == USED == the used wrap counter, 1 on even laps; §2.8.3: WRITE iff len != 0;
  // no NEXT) with that id and len.
  void expect_used_at(std::uint32_t p, UsedBuf want) {
    SCOPED_TRACE(testing::Message() << "used position " << p);
    const std::uint16_t size = this->h.drv.size();
    if constexpr (Layout::kPacked) {
      const PackedDesc d = this->h.drv.view().desc[p % size];
      const std::uint16_t wrap_bits = lap_wrap(p) ? (kDescFAvail | kDescFUsed) : 0;
      EXPECT_EQ(d.flags, wrap_bits | (want.len != 0 ? kDescFWrite : 0));
      EXPECT_EQ((UsedBuf{d.id, d.len}), want);
    } else {
      EXPECT_GT(this->h.drv.used_idx(), p) << "used->idx has not passed it";
      const UsedElem e = this->h.drv.view().used_ring[p % size];
      EXPECT_EQ((UsedBuf{e.id, e.len}), want);
    }
  }
  // The used position stops at p. Split: used->idx == p. Packed: slot p % size is not a used
  // descriptor for p's lap, so a driver polling its next used slot (§2.8.2) finds nothing more.
  void expect_used_end(std::uint32_t p) {
    SCOPED_TRACE(testing::Message() << "used end " << p);
    if constexpr (Layout::kPacked) {
      const std::uint16_t f = this->h.drv.view().desc[p % this->h.drv.size()].flags;
      const bool avail = (f & kDescFAvail) != 0, used = (f & kDescFUsed) != 0;
      EXPECT_FALSE(avail == lap_wrap(p) && used == lap_wrap(p)) << "flags " << f;
    } else {
      EXPECT_EQ(this->h.drv.used_idx(), p);
    }
  }

  // Packed: copies of ring slots p.. p + n - 1, as the driver wrote them. Split: nothing (the
  // device may write anything into a batch's other used-ring entries: the driver skips them).
  std::vector<PackedDesc> ring_slots(std::uint32_t p, std::uint32_t n) {
    std::vector<PackedDesc> out;
    if constexpr (Layout::kPacked)
      for (std::uint32_t k = 0; k < n; ++k)
        out.push_back(this->h.drv.view().desc[(p + k) % this->h.drv.size()]);
    return out;
  }
  // Packed: the slots a batch skipped still hold exactly the driver's descriptors (§2.8.23: one
  // used descriptor for the batch, then the device "skips forward" over the rest).
  void expect_skipped(std::uint32_t p, const std::vector<PackedDesc>& before) {
    const std::vector<PackedDesc> now = ring_slots(p, static_cast<std::uint32_t>(before.size()));
    for (std::size_t k = 0; k < before.size(); ++k)
      EXPECT_EQ(std::memcmp(&now[k], &before[k], sizeof(PackedDesc)), 0)
          << "slot " << (p + k) % this->h.drv.size() << " was written";
  }

  // EVENT_IDX: the driver asks for a used buffer notification once the used position passes p
  // (split: used_event = p, §2.7.7.2; packed: driver event DESC with off_wrap = p, §2.8.10).
  void ask_notification_at(std::uint32_t p) {
    if constexpr (Layout::kPacked)
      this->h.drv.set_driver_event(
          kRingEventFlagsDesc,
          encode_off_wrap(PackedCursor{static_cast<std::uint16_t>(p % this->h.drv.size()), lap_wrap(p)}));
    else
      this->h.drv.set_used_event(static_cast<std::uint16_t>(p));
  }

  // §2.8.1: the wrap counters start at 1 and flip at each lap.
  bool lap_wrap(std::uint32_t p) const { return (p / this->h.drv.size()) % 2 == 0; }

  std::vector<Chain> popped;
  std::size_t next_buf_ = 0;
};
TYPED_TEST_SUITE(InOrder, RingLayouts, LayoutNames);

TYPED_TEST(InOrder, OneUsedElementPerBatch) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure(kInOrder));
  const std::vector<std::uint16_t> ids = this->publish_lone(3);
  const std::uint16_t last = this->publish_writable();
  const std::vector<PackedDesc> rest = this->ring_slots(1, 2);
  const std::vector<Head> heads = this->pop_heads(4);
  ASSERT_EQ(r.ring.inflight(), 4);
  r.ring.push_unwritten(heads.data(), 3);
  EXPECT_EQ(r.ring.inflight(), 1) << "the batch's three buffers are no longer in flight";
  EXPECT_FALSE(r.drv.read_used()) << "nothing visible before flush()";
  r.ring.flush();
  this->expect_used_at(0, {ids[2], 0});  // the last buffer's id, at the first position
  this->expect_used_end(3);
  this->expect_skipped(1, rest);
  // The next element goes after the whole batch.
  r.ring.push(this->popped[3], 7);
  r.ring.flush();
  this->expect_used_at(3, {last, 7});
  this->expect_used_end(4);
  EXPECT_EQ(r.ring.inflight(), 0);
  EXPECT_FALSE(r.ring.broken());
  EXPECT_TRUE(r.guest.guards_intact());
}

TYPED_TEST(InOrder, WithoutInOrderEveryBufferIsReturned) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  const std::vector<std::uint16_t> ids = this->publish_chains({1, 2, 1, 3});
  const std::vector<Head> heads = this->pop_heads(4);
  r.ring.push_unwritten(heads.data(), heads.size());
  r.ring.flush();
  // Each buffer's element at its own position: split one entry per buffer, packed the slot of
  // each buffer's first descriptor (§2.8.6: the used position moves over its ndescs).
  const std::vector<std::uint32_t> at =
      TypeParam::kPacked ? std::vector<std::uint32_t>{0, 1, 3, 4} : std::vector<std::uint32_t>{0, 1, 2, 3};
  for (std::size_t k = 0; k < ids.size(); ++k) this->expect_used_at(at[k], {ids[k], 0});
  this->expect_used_end(TypeParam::kPacked ? 7 : 4);
  this->expect_reaped(ids);
  EXPECT_EQ(r.ring.inflight(), 0);
}

// One buffer is one element, with or without the feature: the same as push(head, 0).
TYPED_TEST(InOrder, SingleBufferIsAnOrdinaryElement) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure(kInOrder));
  const std::vector<std::uint16_t> ids = this->publish_chains({2, 1});
  const std::vector<Head> heads = this->pop_heads(2);
  r.ring.push_unwritten(&heads[0], 1);
  r.ring.push_unwritten(&heads[1], 1);
  r.ring.flush();
  this->expect_used_at(0, {ids[0], 0});
  this->expect_used_at(TypeParam::kPacked ? 2 : 1, {ids[1], 0});
  this->expect_used_end(TypeParam::kPacked ? 3 : 2);
  this->expect_reaped(ids);
}

// Multi-descriptor buffers: split still counts used-ring entries per buffer (§2.7.9: "increments
// the used idx by the size of the batch"), packed skips every descriptor slot the batch occupied
// (§2.8.23), so the next used descriptor lands after the batch's last descriptor.
TYPED_TEST(InOrder, BatchSkipsAllItsSlots) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure(kInOrder));
  const std::vector<std::uint16_t> ids = this->publish_chains({2, 3, 2});
  const std::uint16_t last = this->publish_writable();
  const std::vector<PackedDesc> rest = this->ring_slots(1, 6);
  const std::vector<Head> heads = this->pop_heads(4);
  if constexpr (TypeParam::kPacked) {
    ASSERT_EQ(heads[0].ndescs, 2);
    ASSERT_EQ(heads[1].ndescs, 3);
    ASSERT_EQ(heads[2].ndescs, 2);
  }
  r.ring.push_unwritten(heads.data(), 3);
  r.ring.push(this->popped[3], 5);
  r.ring.flush();
  const std::uint32_t after = TypeParam::kPacked ? 7 : 3;  // 2 + 3 + 2 slots / 3 buffers
  this->expect_used_at(0, {ids[2], 0});
  this->expect_skipped(1, rest);
  this->expect_used_at(after, {last, 5});
  this->expect_used_end(after + 1);
  EXPECT_EQ(r.ring.inflight(), 0);
}

// The transmit lane's way (pop_lone() + push_unwritten()), with the batch running over the ring's
// end: the element at the last slot of one lap, the next push on the next lap, with the flipped
// used wrap counter (§2.8.1) / at used entry 10 % 8 (split).
TYPED_TEST(InOrder, BatchAcrossTheWrap) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure(kInOrder));
  this->advance(6);
  const std::vector<std::uint16_t> ids = this->publish_lone(4);  // slots 6, 7, 0, 1
  const std::vector<PackedDesc> rest = this->ring_slots(7, 3);
  std::vector<Head> heads;
  const std::size_t n = r.ring.pop_lone(8, false, [&](std::byte*, std::uint32_t, std::uint16_t id) {
    heads.push_back(Head{id, 1});
    return 0u;
  });
  ASSERT_EQ(n, 4u);
  r.ring.push_unwritten(heads.data(), heads.size());
  r.ring.flush();
  this->expect_used_at(6, {ids[3], 0});
  this->expect_skipped(7, rest);
  this->expect_used_end(10);
  const std::uint16_t next = this->publish_writable();  // slot 2, next lap
  this->pop_heads(1);
  r.ring.push(this->popped[0], 9);
  r.ring.flush();
  this->expect_used_at(10, {next, 9});
  this->expect_used_end(11);
  if constexpr (TypeParam::kPacked) {
    EXPECT_EQ(r.ring.state().used, (PackedCursor{3, false}));
  }
  EXPECT_EQ(r.ring.inflight(), 0);
}

// A batch of chains that is not the first element of its flush (another push before it), running
// over the ring's end, and a push after it: all published by one flush().
TYPED_TEST(InOrder, MixedPushesAroundABatchAcrossTheWrap) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure(kInOrder));
  this->advance(5);
  const std::uint16_t first = this->publish_writable();              // slot 5
  const std::vector<std::uint16_t> ids = this->publish_chains({2, 1, 2});  // 6-7, 0, 1-2
  const std::uint16_t last = this->publish_writable();               // slot 3, next lap
  const std::vector<PackedDesc> rest = this->ring_slots(7, 4);
  const std::vector<Head> heads = this->pop_heads(5);
  r.ring.push(this->popped[0], 3);
  r.ring.push_unwritten(&heads[1], 3);
  r.ring.push(this->popped[4], 9);
  EXPECT_FALSE(r.drv.read_used()) << "nothing visible before flush()";
  r.ring.flush();
  this->expect_used_at(5, {first, 3});
  this->expect_used_at(6, {ids[2], 0});
  this->expect_skipped(7, rest);
  const std::uint32_t after = TypeParam::kPacked ? 11 : 9;  // 6 + 5 slots / 6 + 3 entries
  this->expect_used_at(after, {last, 9});
  this->expect_used_end(after + 1);
  EXPECT_EQ(r.ring.inflight(), 0);
}

// Several batches and an ordinary push before one flush(): one element per batch, each at its
// batch's first position.
TYPED_TEST(InOrder, SeveralBatchesBeforeOneFlush) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure(kInOrder));
  const std::vector<std::uint16_t> a = this->publish_lone(2);
  const std::uint16_t mid = this->publish_writable();
  const std::vector<std::uint16_t> b = this->publish_lone(2);
  const std::vector<PackedDesc> skipped_a = this->ring_slots(1, 1);
  const std::vector<PackedDesc> skipped_b = this->ring_slots(4, 1);
  const std::vector<Head> heads = this->pop_heads(5);
  r.ring.push_unwritten(&heads[0], 2);
  r.ring.push(this->popped[2], 9);
  r.ring.push_unwritten(&heads[3], 2);
  EXPECT_EQ(r.ring.inflight(), 0);
  EXPECT_FALSE(r.drv.read_used()) << "nothing visible before flush()";
  r.ring.flush();
  this->expect_used_at(0, {a[1], 0});
  this->expect_skipped(1, skipped_a);
  this->expect_used_at(2, {mid, 9});
  this->expect_used_at(3, {b[1], 0});
  this->expect_skipped(4, skipped_b);
  this->expect_used_end(5);
}

// The whole ring in one batch: the used position comes back to the same slot / entry, one lap on.
TYPED_TEST(InOrder, WholeRingInOneBatch) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure(kInOrder));
  const std::vector<std::uint16_t> ids = this->publish_lone(8);
  const std::vector<PackedDesc> rest = this->ring_slots(1, 7);
  const std::vector<Head> heads = this->pop_heads(8);
  r.ring.push_unwritten(heads.data(), heads.size());
  r.ring.flush();
  this->expect_used_at(0, {ids[7], 0});
  this->expect_skipped(1, rest);
  this->expect_used_end(8);
  EXPECT_EQ(r.ring.state().used, TypeParam::kPacked ? (PackedCursor{0, false}) : (PackedCursor{8, true}));
  EXPECT_EQ(r.ring.inflight(), 0);
}

// An inflight log (vhost-user.rst "Inflight I/O tracking") needs every buffer's element, so the
// ring returns them one by one, and every entry is cleared once published.
TYPED_TEST(InOrder, InflightLogGetsEveryElement) {
  auto& r = this->h;
  std::vector<std::byte> region(32 + 32 * 8);  // one queue region: header + 8 entries
  InflightLog log(TypeParam::kPacked ? InflightLog::Layout::packed : InflightLog::Layout::split,
                  region.data(), 8);
  log.format();
  ASSERT_TRUE(r.configure(kInOrder));
  r.ring.set_inflight_log(&log);
  const std::vector<std::uint16_t> ids = this->publish_chains({1, 2, 1});
  const std::vector<Head> heads = this->pop_heads(3);
  EXPECT_EQ(log.pending(), ids);
  r.ring.push_unwritten(heads.data(), heads.size());
  r.ring.flush();
  const std::vector<std::uint32_t> at =
      TypeParam::kPacked ? std::vector<std::uint32_t>{0, 1, 3} : std::vector<std::uint32_t>{0, 1, 2};
  for (std::size_t k = 0; k < ids.size(); ++k) this->expect_used_at(at[k], {ids[k], 0});
  this->expect_used_end(TypeParam::kPacked ? 4 : 3);
  EXPECT_TRUE(log.pending().empty());
  if constexpr (TypeParam::kPacked) {
    EXPECT_EQ(log.packed_hdr().used_idx, 4u);
    EXPECT_EQ(log.packed_hdr().used_wrap_counter, 1u);
  } else {
    EXPECT_EQ(log.split_hdr().used_idx, 3u);
  }
  this->expect_reaped(ids);
  EXPECT_EQ(r.ring.inflight(), 0);
}

// EVENT_IDX: the notification window is the moved used position. The driver's event inside the
// batch's skipped part (split §2.7.7.2 used_event, packed §2.8.10 off_wrap) must notify; one at
// the position right after a batch must not, until the position passes it.
TYPED_TEST(InOrder, UsedEventInsideTheBatchNotifies) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure(kInOrder | kEventIdx));
  this->advance(1);
  EXPECT_TRUE(r.ring.needs_notification()) << "first decision has no previous window";
  // Two 2-descriptor buffers: used entries [1, 3) / slots [1, 5). The event names the second
  // buffer's entry (split) / the batch's last descriptor slot (packed): neither is written.
  this->ask_notification_at(TypeParam::kPacked ? 4 : 2);
  this->publish_chains({2, 2});
  std::vector<Head> heads = this->pop_heads(2);
  r.ring.push_unwritten(heads.data(), heads.size());
  r.ring.flush();
  EXPECT_TRUE(r.ring.needs_notification());
  // Entries [3, 5) / slots [5, 7): an event at 5 / 7 lies just beyond.
  this->ask_notification_at(TypeParam::kPacked ? 7 : 5);
  this->publish_lone(2);
  heads = this->pop_heads(2);
  r.ring.push_unwritten(heads.data(), heads.size());
  r.ring.flush();
  EXPECT_FALSE(r.ring.needs_notification());
  // One more buffer passes it.
  this->publish_lone(1);
  heads = this->pop_heads(1);
  r.ring.push_unwritten(heads.data(), heads.size());
  r.ring.flush();
  EXPECT_TRUE(r.ring.needs_notification());
}

// Dirty logging (vhost-user live migration): push_unwritten() writes no buffer data, so the batch
// is still one element, and flush() logs the used ring (split: used ring; packed: descriptor
// ring) and nothing else.
TYPED_TEST(InOrder, BatchesWithADirtyLogAndLogsTheUsedRing) {
  auto& r = this->h;
  std::vector<std::byte> bitmap(r.guest.end() / kDirtyLogPageSize / 8 + 1);
  DirtyLog log(bitmap.data(), bitmap.size());
  const std::uint64_t ring_gpa = TypeParam::kPacked ? r.drv.areas().desc_gpa : r.drv.areas().used_gpa;
  ASSERT_TRUE(r.configure(kInOrder));
  r.ring.set_dirty_log(&log, ring_gpa);
  const std::vector<std::uint16_t> ids = this->publish_lone(3);
  const std::vector<PackedDesc> rest = this->ring_slots(1, 2);
  const std::vector<Head> heads = this->pop_heads(3);
  r.ring.push_unwritten(heads.data(), heads.size());
  r.ring.flush();
  this->expect_used_at(0, {ids[2], 0});
  this->expect_skipped(1, rest);
  this->expect_used_end(3);
  std::set<std::uint64_t> pages;
  for (std::uint64_t p = 0; p < bitmap.size() * 8; ++p)
    if (log.test(p * kDirtyLogPageSize)) pages.insert(p);
  ASSERT_NE(this->data / kDirtyLogPageSize, ring_gpa / kDirtyLogPageSize);
  EXPECT_EQ(pages, (std::set<std::uint64_t>{ring_gpa / kDirtyLogPageSize}));
}

}  // namespace
}  // namespace vireo::test
