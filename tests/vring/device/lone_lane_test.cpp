// The device rings' lone lane (serve_lone), both layouts: one-descriptor buffers popped, served
// and pushed in one pass; everything else (a chain, the other direction, a violation, a buffer
// the callback refuses) left in the ring for pop_burst(), which still reports every violation.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "tests/vring/device/malicious_fixture.hpp"

namespace vireo::test {
namespace {

using namespace vring;

template <class Layout>
class LoneLane : public MaliciousTest<Layout> {
 protected:
  // The lane serves only inside the ring's cached region: one pop through the general path
  // caches the data area.
  void warm() {
    auto& r = this->h;
    ASSERT_TRUE(r.drv.chain().writable(this->data, 16).build());
    r.drv.publish();
    ASSERT_TRUE(*r.ring.pop(r.chain));
    r.ring.push(r.chain, 0);
    r.ring.flush();
    ASSERT_TRUE(r.drv.read_used());
  }
  // Writes `fill` over each served buffer and reports its length as used; counts calls.
  std::size_t serve_all(std::size_t max, bool writable, std::byte fill = std::byte{0x5a}) {
    return this->h.ring.serve_lone(max, writable, [&](std::byte* p, std::uint32_t len, std::uint16_t) {
      ++calls;
      if (!writable) return std::uint32_t{0};
      std::memset(p, int(fill), len);
      return len;
    });
  }
  std::uint64_t buf(std::size_t k) const { return this->data + 256 + 64 * k; }
  std::uint16_t add_writable(std::size_t k) {
    auto id = this->h.drv.chain().writable(buf(k), 64).build();
    EXPECT_TRUE(id) << id.error();
    return id ? *id : 0;
  }
  // Adds n one-descriptor buffers of 64 bytes at buf(0..n) and publishes them; their ids.
  std::vector<std::uint16_t> publish_lone(std::size_t n, bool writable) {
    std::vector<std::uint16_t> ids;
    for (std::size_t k = 0; k < n; ++k) {
      ChainBuilder b = this->h.drv.chain();
      auto id = (writable ? b.writable(buf(k), 64) : b.readable(buf(k), 64)).build();
      EXPECT_TRUE(id) << id.error();
      ids.push_back(id ? *id : 0);
    }
    this->h.drv.publish();
    return ids;
  }
  // pop_lone() of up to `max` buffers: their heads, for push_unwritten().
  std::vector<Head> pop_all(std::size_t max, bool writable) {
    std::vector<Head> heads;
    this->h.ring.pop_lone(max, writable, [&](std::byte*, std::uint32_t, std::uint16_t id) {
      heads.push_back(Head{id, 1});
      return 0u;
    });
    return heads;
  }
  // The driver reaps exactly these ids, in this order.
  void expect_used(const std::vector<std::uint16_t>& ids) {
    for (std::uint16_t id : ids) {
      auto u = this->h.drv.read_used();
      ASSERT_TRUE(u);
      EXPECT_EQ(u->id, id);
    }
    EXPECT_FALSE(this->h.drv.read_used());
  }
  // Where the ring asks the driver to kick next (avail_event / device event off_wrap).
  PackedCursor kick_position() {
    if constexpr (Layout::kPacked) return decode_off_wrap(this->h.drv.device_event().off_wrap);
    else return PackedCursor{this->h.drv.avail_event(), true};
  }
  std::size_t calls = 0;
};
TYPED_TEST_SUITE(LoneLane, RingLayouts, LayoutNames);

TYPED_TEST(LoneLane, ServesPushesAndPublishesInRingOrder) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  this->warm();
  const std::vector<std::uint16_t> ids = this->publish_lone(3, true);
  EXPECT_EQ(this->serve_all(8, true), 3u);
  EXPECT_FALSE(r.drv.read_used()) << "nothing visible before flush()";
  r.ring.flush();
  for (std::uint16_t id : ids) {
    auto u = r.drv.read_used();
    ASSERT_TRUE(u);
    EXPECT_EQ(*u, (UsedBuf{id, 64}));
  }
  EXPECT_TRUE(r.guest.all_equal(this->buf(0), 3 * 64, std::byte{0x5a}));
  EXPECT_EQ(r.ring.inflight(), 0);
}

// Many laps of a ring of 8: the wrap counters (packed) and the free-running indexes (split)
// stay right, with lane batches that straddle the ring's end.
TYPED_TEST(LoneLane, WrapsTheRingManyTimes) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  this->warm();
  for (int lap = 0; lap < 20; ++lap) {
    SCOPED_TRACE(lap);
    const std::vector<std::uint16_t> ids = this->publish_lone(5, true);
    ASSERT_EQ(this->serve_all(8, true), 5u);
    r.ring.flush();
    this->expect_used(ids);
  }
  EXPECT_FALSE(r.ring.broken());
}

// The same laps through pop_lone() + push_unwritten(): the TX side's way through the lane.
TYPED_TEST(LoneLane, PopLoneWrapsTheRingManyTimes) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure(feature_bit(kFEventIdx)));
  this->warm();
  for (int lap = 0; lap < 20; ++lap) {
    SCOPED_TRACE(lap);
    const std::vector<std::uint16_t> ids = this->publish_lone(5, false);
    const std::vector<Head> heads = this->pop_all(8, false);
    ASSERT_EQ(heads.size(), 5u);
    EXPECT_FALSE(r.ring.has_available());
    EXPECT_EQ(this->kick_position(), r.ring.state().avail);
    r.ring.push_unwritten(heads.data(), heads.size());
    r.ring.flush();
    this->expect_used(ids);
  }
  EXPECT_FALSE(r.ring.broken());
}

// Buffers still in flight ahead of the lane (popped, not yet pushed): the lane's used elements go
// at the used position, behind them, not in the slots it reads (packed), over many laps.
TYPED_TEST(LoneLane, ServesBehindBuffersStillInFlight) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  this->warm();
  for (int lap = 0; lap < 20; ++lap) {
    SCOPED_TRACE(lap);
    const std::vector<std::uint16_t> ids = this->publish_lone(5, true);
    const std::vector<Head> held = this->pop_all(2, true);
    ASSERT_EQ(held.size(), 2u);
    ASSERT_EQ(this->serve_all(8, true), 3u);
    r.ring.push_unwritten(held.data(), held.size());
    r.ring.flush();
    this->expect_used({ids[2], ids[3], ids[4], ids[0], ids[1]});
  }
  EXPECT_EQ(r.ring.inflight(), 0);
  EXPECT_FALSE(r.ring.broken());
}

TYPED_TEST(LoneLane, StopsAtAChainWhichPopBurstTakes) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  this->warm();
  const std::uint16_t a = this->add_writable(0);
  auto chain = r.drv.chain().writable(this->buf(1), 32).writable(this->buf(2), 32).build();
  ASSERT_TRUE(chain);
  const std::uint16_t c = this->add_writable(3);
  r.drv.publish();
  EXPECT_EQ(this->serve_all(8, true), 1u);
  ASSERT_TRUE(*r.ring.pop(r.chain));
  EXPECT_EQ(r.chain.head().id, *chain);
  EXPECT_EQ(r.chain.writable().size(), 2u);
  r.ring.push(r.chain, 64);
  EXPECT_EQ(this->serve_all(8, true), 1u);
  r.ring.flush();
  EXPECT_EQ(r.drv.read_used(), (UsedBuf{a, 64}));
  EXPECT_EQ(r.drv.read_used(), (UsedBuf{*chain, 64}));
  EXPECT_EQ(r.drv.read_used(), (UsedBuf{c, 64}));
}

// A device-readable buffer in the receive lane (and the reverse) is left for pop_burst().
TYPED_TEST(LoneLane, OtherDirectionStops) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  this->warm();
  ASSERT_TRUE(r.drv.chain().readable(this->buf(0), 64).build());
  r.drv.publish();
  EXPECT_EQ(this->serve_all(8, true), 0u);
  EXPECT_EQ(this->calls, 0u);
  EXPECT_EQ(this->serve_all(8, false), 1u);
  r.ring.flush();
  auto u = r.drv.read_used();
  ASSERT_TRUE(u);
  EXPECT_EQ(u->len, 0u);
}

TYPED_TEST(LoneLane, RefusedBufferStaysAvailable) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  this->warm();
  this->add_writable(0);
  const std::uint16_t second = this->add_writable(1);
  r.drv.publish();
  std::size_t seen = 0;
  const std::size_t n = r.ring.serve_lone(8, true, [&](std::byte*, std::uint32_t len, std::uint16_t) {
    return ++seen == 1 ? len : kNotServed;
  });
  EXPECT_EQ(n, 1u);
  EXPECT_TRUE(r.ring.has_available());
  ASSERT_TRUE(*r.ring.pop(r.chain));
  EXPECT_EQ(r.chain.head().id, second);
}

// pop_lone(): the buffers stay in flight, with their ids, until push_unwritten() completes them.
TYPED_TEST(LoneLane, PopLoneKeepsBuffersInFlightUntilPushUnwritten) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  this->warm();
  const std::vector<std::uint16_t> ids = this->publish_lone(3, false);
  std::vector<Head> heads;
  std::vector<std::byte*> seen;
  const std::size_t n = r.ring.pop_lone(8, false, [&](std::byte* p, std::uint32_t len, std::uint16_t id) {
    EXPECT_EQ(len, 64u);
    seen.push_back(p);
    heads.push_back(Head{id, 1});
    return 0u;
  });
  ASSERT_EQ(n, 3u);
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(heads[k].id, ids[k]);
    EXPECT_EQ(seen[k], r.guest.host(this->buf(k)));
  }
  EXPECT_EQ(r.ring.inflight(), 3);
  r.ring.flush();
  EXPECT_FALSE(r.drv.read_used()) << "popped, not used";
  r.ring.push_unwritten(heads.data(), heads.size());
  r.ring.flush();
  for (std::uint16_t id : ids) EXPECT_EQ(r.drv.read_used(), (UsedBuf{id, 0}));
  EXPECT_EQ(r.ring.inflight(), 0);
}

// Violations are not the lane's to report: it stops, writes nothing, and pop_burst() breaks the
// ring with the usual Errc.
TYPED_TEST(LoneLane, UnmappedBufferIsLeftForPopBurst) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  this->warm();
  ChainBuilder b = r.drv.chain().writable(r.guest.end() + 0x1000, 64);
  this->publish(b);
  EXPECT_EQ(this->serve_all(8, true), 0u);
  EXPECT_EQ(this->calls, 0u);
  this->expect_violation(Errc::address_not_mapped);
}

TYPED_TEST(LoneLane, BufferAcrossTheCachedRegionEdgeIsLeftForPopBurst) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  this->warm();
  ChainBuilder b = r.drv.chain().writable(r.guest.end() - 8, 64);
  this->publish(b);
  EXPECT_EQ(this->serve_all(8, true), 0u);
  EXPECT_EQ(this->calls, 0u);
  this->expect_violation(Errc::address_not_mapped);
}

// Found the ring empty with kicks enabled (EVENT_IDX): the kick position is the next buffer, as
// pop_burst() leaves it, so the driver kicks for it.
TYPED_TEST(LoneLane, EmptyRingIsRearmed) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure(feature_bit(kFEventIdx)));
  this->warm();
  this->publish_lone(3, true);
  EXPECT_EQ(this->serve_all(8, true), 3u);
  EXPECT_EQ(this->kick_position(), r.ring.state().avail);
  EXPECT_EQ(this->kick_position().idx, 4);  // warm() took slot 0
}

// Took exactly what was there and what it was asked for: the ring looks empty, so it must be
// re-armed too (pop_burst() re-arms when its output fills up), or a device in event mode that
// then finds has_available() false sleeps while the driver, reading a stale kick position, never
// kicks. (The TX lane lost the driver's kick this way in the two-process ping-pong test.)
TYPED_TEST(LoneLane, FullBurstThatEmptiesTheRingIsRearmed) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure(feature_bit(kFEventIdx)));
  this->warm();
  this->publish_lone(3, true);
  EXPECT_EQ(this->serve_all(3, true), 3u);
  EXPECT_FALSE(r.ring.has_available());
  EXPECT_EQ(this->kick_position().idx, 4);
  this->publish_lone(2, false);
  EXPECT_EQ(this->pop_all(2, false).size(), 2u);
  EXPECT_FALSE(r.ring.has_available());
  EXPECT_EQ(this->kick_position().idx, 6);
}

// Dirty logging and inflight tracking record every buffer the general path pops and pushes; the
// lane stands aside while either is attached.
TYPED_TEST(LoneLane, StandsAsideWithADirtyLog) {
  auto& r = this->h;
  ASSERT_TRUE(r.configure());
  this->warm();
  std::vector<std::byte> bitmap(4096);
  DirtyLog log(bitmap.data(), bitmap.size());
  r.ring.set_dirty_log(&log, this->data);
  this->add_writable(0);
  r.drv.publish();
  EXPECT_EQ(this->serve_all(8, true), 0u);
  ASSERT_TRUE(*r.ring.pop(r.chain));
}

}  // namespace
}  // namespace vireo::test
