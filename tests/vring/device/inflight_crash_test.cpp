// A back-end crash at every point of pop / push / flush with an inflight region attached
// (vhost-user.rst "Inflight I/O tracking"), on both layouts: a restarted ring recovers the region
// from what the crashed one left in guest memory and the region, and every buffer the driver
// posted completes exactly once (no lost completion, no duplicate) across the two back-ends.
//
// Each case runs the same scenario once per crash point k: InflightLog calls a probe at every
// step a SIGKILL may fall between; at step k the probe copies guest memory and the region (the
// "crash image"). The scenario then finishes, the image is written back, and a new ring with a
// new log (a new back-end process) resumes from it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <vector>

#include "tests/support/ring_fakes.hpp"
#include "vring/device_queue.hpp"
#include "vring/inflight_log.hpp"

namespace vireo::test {
namespace {

using namespace vring;

constexpr std::uint16_t kSize = 8;

template <class Layout>
class InflightCrashTest : public ::testing::Test {
 protected:
  static constexpr InflightLog::Layout kLayout =
      Layout::kPacked ? InflightLog::Layout::packed : InflightLog::Layout::split;
  static constexpr std::uint64_t kFeatures = feature_bit(kFIndirectDesc);

  struct Run {
    RingHarness<Layout> h{kSize};
    std::vector<std::byte> region = std::vector<std::byte>(32 + 32 * kSize);
    InflightLog log{kLayout, region.data(), kSize};
    std::vector<std::uint16_t> posted;  // ids of the scenario's buffers
    // crash image
    int countdown = -1;
    int steps = 0;
    bool taken = false;
    std::vector<std::byte> guest_image, region_image;

    std::byte* guest_host() { return h.guest.host(h.guest.base()); }
    std::size_t guest_bytes() const { return h.guest.end() - h.guest.base(); }
    void snapshot() {
      guest_image.assign(guest_host(), guest_host() + guest_bytes());
      region_image = region;
      taken = true;
    }
    static void probe(void* self) {
      auto* r = static_cast<Run*>(self);
      ++r->steps;
      if (r->countdown-- == 0) r->snapshot();
    }
  };

  // Moves both sides `n` buffers along the ring (no crash points), so the scenario wraps.
  static void warm_up(Run& r, int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(r.h.drv.chain().writable(r.h.buffer(16), 16).build());
      r.h.drv.publish();
      ASSERT_TRUE(r.h.ring.pop(r.h.chain).value_or(false));
      r.h.ring.push(r.h.chain, 16);
      r.h.ring.flush();
      ASSERT_TRUE(r.h.drv.read_used());
    }
  }

  // Posts four buffers (1, 2, indirect, 3 descriptors: 7 ring slots), then the device pops them
  // all, completes the second, flushes, completes the others in a batch of three.
  static void scenario(Run& r) {
    auto add = [&](auto builder) {
      auto id = builder.build();
      ASSERT_TRUE(id) << id.error();
      r.posted.push_back(*id);
    };
    add(r.h.drv.chain().writable(r.h.buffer(32), 32));
    add(r.h.drv.chain().readable(r.h.buffer(16), 16).writable(r.h.buffer(32), 32));
    add(r.h.drv.chain().indirect().readable(r.h.buffer(16), 16).writable(r.h.buffer(32), 32));
    add(r.h.drv.chain().readable(r.h.buffer(16), 16).readable(r.h.buffer(8), 8).writable(r.h.buffer(32), 32));
    r.h.drv.publish();
    r.log.set_crash_probe(&Run::probe, &r);
    std::vector<Chain> chains;
    for (int i = 0; i < 4; ++i) chains.emplace_back(16);
    for (Chain& c : chains) ASSERT_TRUE(r.h.ring.pop(c).value_or(false));
    r.h.ring.push(chains[1], 32);
    r.h.ring.flush();
    r.h.ring.push(chains[3], 32);
    r.h.ring.push(chains[0], 32);
    r.h.ring.push(chains[2], 32);
    r.h.ring.flush();
    r.log.set_crash_probe(nullptr, nullptr);
  }

  void start(Run& r) {
    r.log.format();
    ASSERT_TRUE(r.h.configure(kFeatures));
    r.h.ring.set_inflight_log(&r.log);
    warm_up(r, 5);
    ASSERT_EQ(r.h.drv.free_slots(), kSize);
  }

  // Crash at step k (k == steps: after the scenario), restart, and check every posted buffer
  // completed exactly once. Returns the number of steps the scenario has.
  int crash_at(int k) {
    Run r;
    start(r);
    if (HasFatalFailure()) return 0;
    r.countdown = k;
    scenario(r);
    if (!r.taken) r.snapshot();  // k >= steps: crash after the last step
    std::memcpy(r.guest_host(), r.guest_image.data(), r.guest_bytes());
    r.region = r.region_image;
    // The new back-end: a new ring from the position a front-end such as QEMU sends after a
    // crash (split: next avail = used->idx; packed: a stale one, the initial position), and a new
    // log over the region.
    typename RingHarness<Layout>::Ring ring;
    RingState base{};
    if (!Layout::kPacked)
      base.avail.idx = load_relaxed(static_cast<std::uint16_t*>(r.h.drv.areas().used)[1]);
    EXPECT_TRUE(ring.configure(&r.h.guest.mem(),
                               r.h.drv.template config<typename RingHarness<Layout>::Ring>(
                                   kFeatures | Layout::kFeatures), base));
    InflightLog log(kLayout, r.region.data(), kSize);
    ring.set_inflight_log(&log);
    std::map<std::uint32_t, int> done;
    while (auto u = r.h.drv.read_used()) ++done[u->id];  // completions the driver saw
    Chain c(16);
    int resubmitted = 0;
    while (ring.pop(c).value_or(false)) {
      EXPECT_EQ(done.count(c.head().id), 0u) << "crash at step " << k << ": buffer " << c.head().id
                                             << " completed before the crash is processed again";
      ++resubmitted;
      ring.push(c, 32);
    }
    EXPECT_FALSE(ring.broken()) << "crash at step " << k << ": " << to_string(ring.error());
    ring.flush();
    while (auto u = r.h.drv.read_used()) ++done[u->id];
    for (std::uint16_t id : r.posted)
      EXPECT_EQ(done[id], 1) << "crash at step " << k << ": buffer " << id
                             << (done[id] == 0 ? " lost" : " completed twice");
    EXPECT_EQ(done.size(), r.posted.size()) << "crash at step " << k;
    EXPECT_EQ(r.h.drv.free_slots(), kSize) << "crash at step " << k << ": descriptors still out";
    EXPECT_EQ(log.pending().size(), 0u) << "crash at step " << k << ": region still shows buffers in flight";
    (void)resubmitted;
    return r.steps;
  }
};

TYPED_TEST_SUITE(InflightCrashTest, RingLayouts, LayoutNames);

TYPED_TEST(InflightCrashTest, CrashAtEveryStepLosesAndDuplicatesNothing) {
  const int steps = this->crash_at(1 << 30);  // no crash inside: counts the steps
  ASSERT_GT(steps, 8) << "the scenario must pass through every step of pop, push and flush";
  for (int k = 0; k <= steps && !this->HasFailure(); ++k) this->crash_at(k);
}

// A configured packed ring recording into a freshly formatted inflight region.
class PackedInflightRecovery : public ::testing::Test {
 protected:
  void SetUp() override {
    log.format();
    ASSERT_TRUE(h.configure());
    h.ring.set_inflight_log(&log);
  }
  RingHarness<PackedLayout> h{kSize};
  std::vector<std::byte> region = std::vector<std::byte>(32 + 32 * kSize);
  InflightLog log{InflightLog::Layout::packed, region.data(), kSize};
};

// A region written by a misbehaving front-end (free list pointing outside the table, entries
// claiming more slots than the ring has) is not trusted: the ring resumes from SET_VRING_BASE.
TEST_F(PackedInflightRecovery, InconsistentRegionIsIgnored) {
  ASSERT_TRUE(h.drv.chain().writable(h.buffer(16), 16).build());
  h.drv.publish();
  ASSERT_TRUE(h.ring.pop(h.chain).value_or(false));
  log.packed_desc(log.packed_hdr().old_free_head == 1 ? 0 : 1).num = kSize + 1;
  PackedDeviceRing<RegionTable> again;
  ASSERT_TRUE(again.configure(&h.guest.mem(), h.drv.config<PackedDeviceRing<RegionTable>>(PackedLayout::kFeatures), {}));
  InflightLog log2(InflightLog::Layout::packed, region.data(), kSize);
  again.set_inflight_log(&log2);
  EXPECT_TRUE(again.inflight_rejected());
  EXPECT_EQ(again.state(), (RingState{}));
}

// The front-end corrupts the free list under a running ring (entry 0's successor outside the
// table, met in the middle of a 3-descriptor buffer): the tracking stops, the ring goes on.
TEST_F(PackedInflightRecovery, CorruptFreeListDetachesTheLogNotTheRing) {
  log.packed_desc(0).next = 0x7fff;
  auto id = h.drv.chain().readable(h.buffer(16), 16).readable(h.buffer(16), 16).writable(h.buffer(16), 16).build();
  ASSERT_TRUE(id);
  h.drv.publish();
  ASSERT_TRUE(h.ring.pop(h.chain).value_or(false));
  EXPECT_EQ(h.chain.head().ndescs, 3u);
  h.ring.push(h.chain, 16);
  h.ring.flush();
  EXPECT_FALSE(h.ring.broken());
  auto used = h.drv.read_used();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->id, *id);
}

}  // namespace
}  // namespace vireo::test
