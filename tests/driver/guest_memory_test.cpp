// GuestMemory: allocation alignment and exhaustion, translation, region description.
#include "driver/guest_memory.hpp"

#include <gtest/gtest.h>

#include "proto/sys/live_counts.hpp"
#include "vring/memory.hpp"

namespace vireo::driver {
namespace {

static_assert(vring::GuestMemory<GuestMemory>);

TEST(GuestMemory, AllocationsAreAlignedZeroedAndTranslate) {
  auto mem = GuestMemory::create({.size = 1 << 20, .base_gpa = 0x100000});
  ASSERT_TRUE(mem) << mem.error();
  auto a = mem->alloc(10, 1);
  auto b = mem->alloc(100, 4096);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(b->gpa % 4096, 0u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b->host) % 4096, 0u);
  EXPECT_GE(b->gpa, a->gpa + 10);
  for (std::byte x : b->bytes()) EXPECT_EQ(x, std::byte{0});
  auto s = mem->translate(b->gpa, 100);
  EXPECT_EQ(s.data(), b->host);
  EXPECT_EQ(s.size(), 100u);
  std::uint64_t gpa = 0;
  ASSERT_TRUE(mem->gpa_of(b->host + 5, 10, gpa));
  EXPECT_EQ(gpa, b->gpa + 5);
}

TEST(GuestMemory, OutsideAddressesDoNotTranslate) {
  auto mem = GuestMemory::create({.size = 4096, .base_gpa = 0x1000});
  ASSERT_TRUE(mem);
  EXPECT_TRUE(mem->translate(0xfff, 1).empty());
  EXPECT_TRUE(mem->translate(0x2000, 1).empty());
  EXPECT_EQ(mem->translate(0x1ff0, 64).size(), 16u);  // shorter at the end of the region
  std::uint64_t gpa = 0;
  int local = 0;
  EXPECT_FALSE(mem->gpa_of(&local, sizeof local, gpa));
  EXPECT_FALSE(mem->gpa_of(mem->data() + 4000, 200, gpa));  // runs past the end
}

TEST(GuestMemory, ExhaustionAndBadAlignmentAreErrors) {
  auto mem = GuestMemory::create({.size = 8192});
  ASSERT_TRUE(mem);
  EXPECT_TRUE(mem->alloc(8000, 8));
  auto full = mem->alloc(4096, 8);
  ASSERT_FALSE(full);
  EXPECT_NE(full.error().find("exhausted"), std::string::npos);
  EXPECT_FALSE(mem->alloc(8, 3));
  EXPECT_FALSE(mem->alloc(0, 8));
}

TEST(GuestMemory, RegionDescribesTheWholeMappingAndFdsAreReleased) {
  const auto fds = proto::live_fd_count();
  const auto maps = proto::live_mapping_count();
  {
    auto mem = GuestMemory::create({.size = 3 << 20, .base_gpa = 0x40000000});
    ASSERT_TRUE(mem);
    const proto::MemoryRegion r = mem->region();
    EXPECT_EQ(r.guest_phys_addr, 0x40000000u);
    EXPECT_EQ(r.memory_size, 3u << 20);
    EXPECT_EQ(r.userspace_addr, reinterpret_cast<std::uint64_t>(mem->data()));
    EXPECT_EQ(r.mmap_offset, 0u);
    EXPECT_GE(mem->fd(), 0);
  }
  EXPECT_EQ(proto::live_fd_count(), fds);
  EXPECT_EQ(proto::live_mapping_count(), maps);
}

TEST(GuestMemory, HugepagesFailWithAReasonWhenNoneAreFree) {
  auto mem = GuestMemory::create({.size = 2 << 20, .hugepages = true});
  if (mem) {
    EXPECT_TRUE(mem->hugepages());
    EXPECT_EQ(mem->size() % default_huge_page_size(), 0u);
  } else {
    EXPECT_NE(mem.error().find("huge"), std::string::npos) << mem.error();
  }
}

}  // namespace
}  // namespace vireo::driver
