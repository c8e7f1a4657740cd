// MemoryTable: mapping, translation, rejection of bad regions, mapping lifetime.
#include <gtest/gtest.h>
#include <unistd.h>

#include "device/memory_table.hpp"
#include "proto/sys/live_counts.hpp"
#include "proto/sys/memfd.hpp"

namespace vireo::device {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

proto::MemoryRegion region(std::uint64_t gpa, std::uint64_t size, std::uint64_t uva, std::uint64_t off = 0) {
  return proto::MemoryRegion{gpa, size, uva, off};
}

TEST(MemoryTable, TranslatesGpaAndUvaWithMmapOffset) {
  auto fd = proto::MemFd::create("t", 2 * kMiB);
  ASSERT_TRUE(fd);
  auto r = MemoryTable::map_region(region(0x100000, kMiB, 0x7000000, kMiB), fd->fd());
  ASSERT_TRUE(r) << r.error();
  auto t = MemoryTable::create({*r});
  ASSERT_TRUE(t);
  std::span<std::byte> s = (*t)->regions().translate(0x100010, 16);
  ASSERT_EQ(s.size(), 16u);
  EXPECT_EQ(s.data(), r->map->data() + 0x10);
  EXPECT_EQ((*t)->translate_uva(0x7000010, 16), r->map->data() + 0x10);
  EXPECT_EQ((*t)->translate_uva(0x7000000 + kMiB - 8, 16), nullptr);  // crosses the region end
}

TEST(MemoryTable, RejectsZeroSizeWrapAndShortFd) {
  auto fd = proto::MemFd::create("t", kMiB);
  ASSERT_TRUE(fd);
  auto zero = MemoryTable::map_region(region(0, 0, 0x1000), fd->fd());
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.error().find("size 0"), std::string::npos);
  auto wrap = MemoryTable::map_region(region(UINT64_MAX - 10, 4096, 0x1000), fd->fd());
  ASSERT_FALSE(wrap);
  EXPECT_NE(wrap.error().find("wraps"), std::string::npos);
  auto shrt = MemoryTable::map_region(region(0, 2 * kMiB, 0x1000), fd->fd());
  ASSERT_FALSE(shrt);
  EXPECT_NE(shrt.error().find("holds only"), std::string::npos);
}

TEST(MemoryTable, RejectsAnFdThatCannotBeMapped) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  auto r = MemoryTable::map_region(region(0, 4096, 0x1000), p[0]);
  ::close(p[0]);
  ::close(p[1]);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("cannot map"), std::string::npos) << r.error();
}

TEST(MemoryTable, RejectsOverlapInGpaAndInUva) {
  auto fd = proto::MemFd::create("t", 2 * kMiB);
  ASSERT_TRUE(fd);
  auto a = MemoryTable::map_region(region(0, kMiB, 0x10000000), fd->fd());
  auto b = MemoryTable::map_region(region(kMiB / 2, kMiB, 0x20000000), fd->fd());
  auto c = MemoryTable::map_region(region(4 * kMiB, kMiB, 0x10000000 + 4096), fd->fd());
  ASSERT_TRUE(a && b && c);
  auto gpa = MemoryTable::create({*a, *b});
  ASSERT_FALSE(gpa);
  EXPECT_NE(gpa.error().find("guest-physical"), std::string::npos);
  auto uva = MemoryTable::create({*a, *c});
  ASSERT_FALSE(uva);
  EXPECT_NE(uva.error().find("front-end virtual"), std::string::npos);
}

TEST(MemoryTable, AddRemoveBuildNewTablesAndUnmapWhenUnused) {
  const auto before = proto::live_mapping_count();
  {
    auto fd = proto::MemFd::create("t", 2 * kMiB);
    ASSERT_TRUE(fd);
    auto a = MemoryTable::map_region(region(0, kMiB, 0x10000000), fd->fd());
    auto b = MemoryTable::map_region(region(kMiB, kMiB, 0x20000000, kMiB), fd->fd());
    ASSERT_TRUE(a && b);
    auto t1 = MemoryTable::create({std::move(*a)});
    ASSERT_TRUE(t1);
    auto t2 = (*t1)->with_added(std::move(*b));
    ASSERT_TRUE(t2);
    EXPECT_EQ((*t1)->size(), 1u);  // the old table is unchanged
    EXPECT_EQ((*t2)->size(), 2u);
    EXPECT_EQ(proto::live_mapping_count(), before + 2);
    auto t3 = (*t2)->without(region(0, kMiB, 0x10000000));
    ASSERT_TRUE(t3);
    EXPECT_EQ((*t3)->size(), 1u);
    EXPECT_TRUE((*t3)->regions().translate(0, 1).empty());
    EXPECT_FALSE((*t3)->regions().translate(kMiB, 1).empty());
    auto missing = (*t3)->without(region(0, kMiB, 0x10000000));
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().find("not in the memory table"), std::string::npos);
    t1 = MemoryTable::Ptr();
    t2 = MemoryTable::Ptr();
    EXPECT_EQ(proto::live_mapping_count(), before + 1);  // region a lived only in t1/t2
  }
  EXPECT_EQ(proto::live_mapping_count(), before);
}

}  // namespace
}  // namespace vireo::device
