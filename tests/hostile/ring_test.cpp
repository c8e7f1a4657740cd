// Hostile guest: broken descriptors and ring fields, on both layouts. Each case breaks only
// queue 0 (logged with the violated rule), the connection keeps answering, and the queue serves
// again once the front-end resets it (GET_VRING_BASE + a fresh ring).
#include <thread>

#include "hostile_rig.hpp"
#include "proto/messages.hpp"

namespace vireo::test::hostile {
namespace {

using proto::FrontendReq;
using vring::kDescFIndirect;
using vring::kDescFNext;
using vring::kDescFWrite;

template <bool Packed>
struct Layout {
  static constexpr bool kPacked = Packed;
  static constexpr std::uint64_t kFeatures = Packed ? hostile::kPacked : kSplit;
};
using Layouts = ::testing::Types<Layout<false>, Layout<true>>;
struct Names {
  template <class T>
  static std::string GetName(int) { return T::kPacked ? "Packed" : "Split"; }
};

template <class L>
class HostileRing : public HostileTest {
 protected:
  void SetUp() override {
    HostileTest::SetUp();
    start(L::kFeatures);
  }
  static constexpr bool packed() { return L::kPacked; }
  static constexpr std::uint64_t ram_end() { return FrontendFake::kGpaBase + kRam; }

  // A one-descriptor buffer at head 0 (split) / slot 0 (packed), published and kicked.
  void one_buffer(std::uint64_t addr, std::uint32_t len, std::uint16_t flags = kDescFWrite,
                  std::uint16_t id = 0) {
    if (packed()) {
      packed_head(fe(), 0, addr, len, flags, id);
    } else {
      split_desc(fe(), 0, addr, len, flags);
      split_publish(fe(), {static_cast<std::uint16_t>(id)});
    }
  }
  // An INDIRECT descriptor at head 0 pointing to `entries` (written at a fresh guest address).
  void indirect(std::span<const vring::SplitDesc> entries, std::uint32_t len_override = ~0u) {
    const std::uint64_t table = fe().alloc(entries.size_bytes() + 16, 16);
    if (packed()) {  // pvirtq_desc: addr, len, id, flags
      std::vector<vring::PackedDesc> p;
      for (const auto& e : entries) p.push_back(vring::PackedDesc{e.addr, e.len, 0, e.flags});
      write_table<vring::PackedDesc>(fe(), table, p);
    } else {
      write_table<vring::SplitDesc>(fe(), table, entries);
    }
    const std::uint32_t len = len_override != ~0u ? len_override : static_cast<std::uint32_t>(entries.size_bytes());
    one_buffer(table, len, kDescFIndirect);
  }
  // Polls the raw ring until the device used the first buffer; its used length.
  std::optional<std::uint32_t> wait_first_used() {
    auto& q = fe().queue(0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < deadline) {
      if (packed()) {
        const auto* d = reinterpret_cast<const vring::PackedDesc*>(fe().host(q.desc_gpa));
        // acquire: pairs with the device's release store of the used descriptor's flags.
        if ((vring::load_acquire(d[0].flags) & vring::kDescFUsed) != 0) return d[0].len;
      } else {
        const auto* used = reinterpret_cast<const std::uint16_t*>(fe().host(q.used_gpa));
        // acquire: pairs with the device's release store of used->idx.
        if (vring::load_acquire(used[1]) == 1) return reinterpret_cast<const vring::UsedElem*>(used + 2)[0].len;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return std::nullopt;
  }
  void expect_queue_broken(const std::string& why) {
    EXPECT_TRUE(log_.wait_for("queue 0: " + why)) << log_.all();
    this->expect_queue_recovers();
  }
};
TYPED_TEST_SUITE(HostileRing, Layouts, Names);

TYPED_TEST(HostileRing, DescriptorOutsideSharedMemory) {
  this->one_buffer(this->ram_end() + 0x1000, 64);
  this->expect_queue_broken("buffer address is outside shared memory");
}

TYPED_TEST(HostileRing, DescriptorRunningPastTheEndOfSharedMemory) {
  this->one_buffer(this->ram_end() - 32, 64);  // the 32 bytes after it are the file's canary page
  this->expect_queue_broken("buffer address is outside shared memory");
}

TYPED_TEST(HostileRing, DescriptorWithAWrappingAddress) {
  this->one_buffer(~std::uint64_t{0} - 15, 64);
  this->expect_queue_broken("buffer address is outside shared memory");
}

// Two regions of one memfd, `gap` bytes apart in guest-physical space; RAM's first half (the
// rings) stays where it was.
void share_two_regions(FrontendFake& fe, std::uint64_t gap) {
  const std::uint64_t half = kRam / 2;
  proto::MemoryRegion a = fe.ram_region(), b = fe.ram_region();
  a.memory_size = b.memory_size = half;
  b.guest_phys_addr += half + gap;
  b.userspace_addr += half;
  b.mmap_offset += half;
  proto::MemoryTable t{};
  t.nregions = 2;
  t.regions[0] = a;
  t.regions[1] = b;
  const int fds[2] = {fe.ram_fd(), fe.ram_fd()};
  auto bytes = std::span(reinterpret_cast<const std::byte*>(&t),
                         proto::kMemoryTableHeaderSize + 2 * sizeof(proto::MemoryRegion));
  ASSERT_TRUE(fe.request(FrontendReq::set_mem_table, bytes, fds));
}

TYPED_TEST(HostileRing, DescriptorStraddlingTwoRegionsWithAGapBetween) {
  share_two_regions(this->fe(), 0x100000);
  this->one_buffer(FrontendFake::kGpaBase + kRam / 2 - 32, 64);
  this->expect_queue_broken("buffer address is outside shared memory");
}

// Not a violation: a buffer may cross from one region into the next adjacent one (two segments).
TYPED_TEST(HostileRing, DescriptorAcrossTwoAdjacentRegionsIsServed) {
  share_two_regions(this->fe(), 0);
  const std::uint64_t at = FrontendFake::kGpaBase + kRam / 2 - 32;
  std::memset(this->fe().host(at), 0, 64);
  this->one_buffer(at, 64);
  EXPECT_EQ(this->wait_first_used(), 64u);
  auto any_set = [&](std::uint64_t gpa) {  // 32 random bytes are all zero with odds 2^-256
    for (int i = 0; i < 32; ++i)
      if (this->fe().host(gpa)[i] != std::byte{0}) return true;
    return false;
  };
  EXPECT_TRUE(any_set(at)) << "nothing written in the first region";
  EXPECT_TRUE(any_set(at + 32)) << "nothing written in the second region";
  EXPECT_FALSE(this->log_.wait_for("queue 0:", 50)) << this->log_.all();
}

TYPED_TEST(HostileRing, DescriptorLoop) {
  const std::uint64_t buf = this->fe().alloc(64);
  if (this->packed()) {  // no next field: a list that never ends runs around the whole ring
    for (std::uint16_t i = 1; i < kQueueSize; ++i) packed_desc(this->fe(), i, buf, 8, kDescFNext | kDescFWrite, 0);
    this->one_buffer(buf, 8, kDescFNext | kDescFWrite);
    this->expect_queue_broken("descriptor chain longer than the queue");
  } else {
    split_desc(this->fe(), 1, buf, 8, kDescFNext | kDescFWrite, 0);
    split_desc(this->fe(), 0, buf, 8, kDescFNext | kDescFWrite, 1);
    split_publish(this->fe(), {0});
    this->expect_queue_broken("descriptor chain loops");
  }
}

TYPED_TEST(HostileRing, ChainLongerThanTheRing) {
  const std::uint64_t buf = this->fe().alloc(64);
  std::vector<vring::SplitDesc> t(2 * kQueueSize);
  for (std::size_t i = 0; i < t.size(); ++i)
    t[i] = vring::SplitDesc{buf, 8, static_cast<std::uint16_t>(kDescFWrite | (i + 1 < t.size() ? kDescFNext : 0)),
                            static_cast<std::uint16_t>(i + 1)};
  this->indirect(t);
  this->expect_queue_broken("descriptor chain longer than the queue");
}

TYPED_TEST(HostileRing, IndirectLoop) {
  const std::uint64_t buf = this->fe().alloc(64);
  const vring::SplitDesc t[2] = {{buf, 8, kDescFWrite | kDescFNext, 1}, {buf, 8, kDescFWrite | kDescFNext, 0}};
  this->indirect(t);
  // Split: the table's next links loop; packed: NEXT is ignored in a table (§2.8.19), 2 entries.
  if (this->packed()) {
    EXPECT_EQ(this->wait_first_used(), 16u);
    EXPECT_FALSE(this->log_.wait_for("queue 0:", 50)) << this->log_.all();
  } else {
    this->expect_queue_broken("descriptor chain loops");
  }
}

TYPED_TEST(HostileRing, IndirectTableLengthNotAMultipleOf16) {
  const vring::SplitDesc t[2] = {{this->fe().alloc(64), 8, kDescFWrite, 0}, {}};
  this->indirect(t, 24);
  this->expect_queue_broken("indirect table length is zero or not a multiple of 16");
}

TYPED_TEST(HostileRing, IndirectTableLengthZero) {
  const vring::SplitDesc t[1] = {{this->fe().alloc(64), 8, kDescFWrite, 0}};
  this->indirect(t, 0);
  this->expect_queue_broken("indirect table length is zero or not a multiple of 16");
}

TYPED_TEST(HostileRing, IndirectTableRunningPastSharedMemory) {
  const std::uint64_t table = this->ram_end() - 32;  // 16 entries, the last 14 in the canary page
  vring::SplitDesc t[2] = {{this->fe().alloc(64), 8, kDescFWrite, 0}, {}};
  std::memcpy(this->fe().host(table), t, sizeof t);
  this->one_buffer(table, 16 * 16, kDescFIndirect);
  this->expect_queue_broken("buffer address is outside shared memory");
}

TYPED_TEST(HostileRing, IndirectTableAboveTheEntryLimit) {
  std::vector<vring::SplitDesc> t(65536 + 1);  // 1 MiB + 16 bytes, inside the 2 MiB of RAM
  t[0] = vring::SplitDesc{this->fe().alloc(64), 8, kDescFWrite, 0};
  this->indirect(t);
  this->expect_queue_broken("indirect table has more than 65536 entries");
}

TYPED_TEST(HostileRing, IndirectInIndirect) {
  const std::uint64_t inner = this->fe().alloc(32, 16);
  const vring::SplitDesc t[1] = {{inner, 16, kDescFIndirect, 0}};
  this->indirect(t);
  this->expect_queue_broken("indirect descriptor inside an indirect table");
}

TYPED_TEST(HostileRing, BufferIdOrHeadOutOfRange) {
  if (this->packed()) {
    this->one_buffer(this->fe().alloc(64), 64, kDescFWrite, kQueueSize + 3);
    this->expect_queue_broken("packed buffer id out of range");
  } else {
    split_publish(this->fe(), {kQueueSize + 3});
    this->expect_queue_broken("available head index out of range");
  }
}

TYPED_TEST(HostileRing, ReadableAfterWritable) {
  const std::uint64_t buf = this->fe().alloc(64);
  const vring::SplitDesc t[2] = {{buf, 8, kDescFWrite | kDescFNext, 1}, {buf, 8, 0, 0}};
  this->indirect(t);
  this->expect_queue_broken("device-readable descriptor after a writable one");
}

// The driver scribbles over what only the device writes (split used ring; packed device event
// area and a slot ahead marked used). The device keeps its own positions and overwrites them.
TYPED_TEST(HostileRing, DriverWritesToTheUsedRingAreIgnored) {
  FrontendFake& fe = this->fe();
  auto& q = fe.queue(0);
  const std::uint64_t buf = fe.alloc(64);
  if (this->packed()) {
    std::memset(fe.host(q.used_gpa), 0xff, 4);  // device event suppression: off_wrap, flags
    auto* d = reinterpret_cast<vring::PackedDesc*>(fe.host(q.desc_gpa));
    d[1] = vring::PackedDesc{buf, 64, 5, static_cast<std::uint16_t>(vring::kDescFAvail | vring::kDescFUsed)};
    this->one_buffer(buf, 64);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while ((vring::load_acquire(d[0].flags) & vring::kDescFUsed) == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_NE(vring::load_acquire(d[0].flags) & vring::kDescFUsed, 0) << "the buffer was not used";
    EXPECT_EQ(d[0].len, 64u);
    EXPECT_EQ(d[1].len, 64u) << "the device consumed a slot the driver marked used";
  } else {
    auto* used = reinterpret_cast<std::uint16_t*>(fe.host(q.used_gpa));  // flags, idx, ring
    std::memset(fe.host(q.used_gpa), 0xee, vring::split_used_bytes(kQueueSize));
    this->one_buffer(buf, 64);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (vring::load_acquire(used[1]) != 1 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(vring::load_acquire(used[1]), 1) << "used->idx does not follow the device's count";
    const auto* elem = reinterpret_cast<const vring::UsedElem*>(used + 2);
    EXPECT_EQ(elem[0].id, 0u);
    EXPECT_EQ(elem[0].len, 64u);
  }
  ASSERT_TRUE(this->connection_alive());
  EXPECT_FALSE(this->log_.wait_for("queue 0:", 50)) << this->log_.all();
}

TYPED_TEST(HostileRing, KickStorm) {
  FrontendFake& fe = this->fe();
  for (int i = 0; i < 20000; ++i) {
    (void)fe.queue(0).kick.signal();
    if (i % 5000 == 0) {
      ASSERT_TRUE(this->connection_alive()) << "the control path starved";
    }
  }
  for (int i = 0; i < 3 * kQueueSize; ++i) {
    fe.add_writable(0, 16);
    fe.kick(0, true);  // publishes the buffer
    for (int k = 0; k < 100; ++k) (void)fe.queue(0).kick.signal();
    ASSERT_TRUE(fe.wait_used(0)) << "buffer " << i << " not used during the storm";
  }
  ASSERT_TRUE(this->connection_alive());
}

// REM_MEM_REG of the region holding a running ring: the ring stops (never touches the unmapped
// memory) and serves again once the region is back and the queue reset.
TYPED_TEST(HostileRing, RemMemRegOfARegionInUseByARunningRing) {
  FrontendFake& fe = this->fe();
  const proto::SingleMemRegion r{0, fe.ram_region()};
  const int fd = fe.ram_fd();
  ASSERT_TRUE(fe.request(FrontendReq::rem_mem_reg, proto::as_bytes(r)));
  EXPECT_TRUE(this->log_.wait_for("after the memory table change the descriptor area")) << this->log_.all();
  fe.add_writable(0, 64);
  fe.kick(0, true);
  EXPECT_FALSE(fe.wait_used(0, 100));
  ASSERT_TRUE(fe.request(FrontendReq::add_mem_reg, proto::as_bytes(r), std::span(&fd, 1)));
  this->expect_queue_recovers();
}

// Split only: the available index runs more than a queue ahead (§2.7.6).
TEST_F(HostileTest, SplitAvailIndexJump) {
  start(kSplit);
  split_desc(fe(), 0, fe().alloc(64), 64, kDescFWrite);
  split_set_avail_idx(fe(), kQueueSize + 1);
  EXPECT_TRUE(log_.wait_for("queue 0: available index moved more than the queue size")) << log_.all();
  expect_queue_recovers();
}

// Packed only: a head whose AVAIL/USED bits do not say "available in the current wrap" is not a
// buffer: the device must neither consume it nor break; once the bits are right it is served.
TEST_F(HostileTest, PackedWrongWrapBitsAreNotConsumed) {
  start(kPacked);
  auto* d = reinterpret_cast<vring::PackedDesc*>(fe().host(fe().queue(0).desc_gpa));
  const std::uint64_t buf = fe().alloc(64);
  const std::uint16_t wrong[] = {vring::kDescFAvail | vring::kDescFUsed, vring::kDescFUsed, 0};
  for (std::uint16_t f : wrong) {
    packed_head(fe(), 0, buf, 64, static_cast<std::uint16_t>(f | kDescFWrite), 0, /*raw_flags=*/true);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    ASSERT_TRUE(connection_alive());
    EXPECT_EQ(vring::load_acquire(d[0].flags), f | kDescFWrite) << "the device consumed flags " << f;
  }
  packed_head(fe(), 0, buf, 64, kDescFWrite, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while ((vring::load_acquire(d[0].flags) & vring::kDescFUsed) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_NE(vring::load_acquire(d[0].flags) & vring::kDescFUsed, 0) << "the corrected buffer was not used";
  EXPECT_FALSE(log_.wait_for("queue 0:", 50)) << log_.all();
}

}  // namespace
}  // namespace vireo::test::hostile

namespace vireo::test::hostile {
namespace {

// Packed: SET_VRING_BASE with a used position past the ring's end cannot be resumed from.
TEST_F(HostileTest, PackedVringBaseOutsideTheRing) {
  connect(kPacked);
  ASSERT_TRUE(fe().negotiate(kPacked, kProtoAll));
  ASSERT_TRUE(fe().set_mem_table());
  const std::uint32_t base = proto::encode_vring_base(proto::VringBase{0, true, kQueueSize + 4, true}, true);
  EXPECT_FALSE(fe().setup_queue(0, kQueueSize, true, base));
  EXPECT_TRUE(log_.wait_for("queue 0 cannot start: ring position (SET_VRING_BASE) is outside the queue")) << log_.all();
  expect_connection_closed();
}

}  // namespace
}  // namespace vireo::test::hostile
