// MemoryTable: mapping and checking front-end memory regions.
#include "device/memory_table.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace vireo::device {
namespace {

using Fail = Unexpected<std::string>;

bool overlaps(std::uint64_t a, std::uint64_t alen, std::uint64_t b, std::uint64_t blen) {
  return a < b + blen && b < a + alen;
}

}  // namespace

std::string describe(const proto::MemoryRegion& r) {
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "region [gpa 0x%" PRIx64 ", size 0x%" PRIx64 ", uva 0x%" PRIx64 ", offset 0x%" PRIx64 "]",
                r.guest_phys_addr, r.memory_size, r.userspace_addr, r.mmap_offset);
  return buf;
}

Expected<MappedRegion, std::string> MemoryTable::map_region(const proto::MemoryRegion& r, int fd) {
  if (r.memory_size == 0) return Fail(describe(r) + " has size 0");
  if (r.guest_phys_addr + r.memory_size < r.guest_phys_addr ||
      r.userspace_addr + r.memory_size < r.userspace_addr ||
      r.mmap_offset + r.memory_size < r.mmap_offset)
    return Fail(describe(r) + " wraps the 64-bit address space");
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Fail(describe(r) + ": the fd cannot be inspected (fstat failed)");
  // A mapping past the end of a regular file / memfd would SIGBUS on first access.
  if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) < r.mmap_offset + r.memory_size)
    return Fail(describe(r) + ": the fd holds only " + std::to_string(st.st_size) +
                " bytes, less than mmap_offset + memory_size");
  auto m = proto::Mapping::map(fd, r.memory_size, r.mmap_offset, /*writable=*/true);
  if (!m) return Fail(describe(r) + ": cannot map the fd (" + m.error().message() + ")");
  return MappedRegion{r, std::make_shared<const proto::Mapping>(std::move(*m))};
}

MemoryTable::MemoryTable(std::vector<MappedRegion> regions) : regions_(std::move(regions)) {
  std::vector<vring::Region> v;
  v.reserve(regions_.size());
  for (const MappedRegion& r : regions_)
    v.push_back(vring::Region{r.desc.guest_phys_addr, r.desc.memory_size, r.desc.userspace_addr,
                              r.map->data()});
  table_ = vring::RegionTable(std::move(v));
}

MemoryTable::Ptr MemoryTable::empty() { return Ptr(new MemoryTable({})); }

Expected<MemoryTable::Ptr, std::string> MemoryTable::create(std::vector<MappedRegion> regions) {
  if (regions.size() > kMaxMemSlots)
    return Fail(std::to_string(regions.size()) + " memory regions, more than the " +
                std::to_string(kMaxMemSlots) + " slots this back-end offers");
  for (std::size_t i = 0; i < regions.size(); ++i) {
    const proto::MemoryRegion& a = regions[i].desc;
    if (a.memory_size == 0 || !regions[i].map) return Fail(describe(a) + " is empty");
    for (std::size_t j = 0; j < i; ++j) {
      const proto::MemoryRegion& b = regions[j].desc;
      if (overlaps(a.guest_phys_addr, a.memory_size, b.guest_phys_addr, b.memory_size))
        return Fail(describe(a) + " overlaps " + describe(b) + " in guest-physical space");
      if (overlaps(a.userspace_addr, a.memory_size, b.userspace_addr, b.memory_size))
        return Fail(describe(a) + " overlaps " + describe(b) + " in front-end virtual space");
    }
  }
  return Ptr(new MemoryTable(std::move(regions)));
}

Expected<MemoryTable::Ptr, std::string> MemoryTable::with_added(MappedRegion region) const {
  std::vector<MappedRegion> v = regions_;
  v.push_back(std::move(region));
  return create(std::move(v));
}

Expected<MemoryTable::Ptr, std::string> MemoryTable::without(const proto::MemoryRegion& r) const {
  std::vector<MappedRegion> v = regions_;
  // rst REM_MEM_REG: the region is identified by guest address, user address and size.
  auto it = std::find_if(v.begin(), v.end(), [&](const MappedRegion& m) {
    return m.desc.guest_phys_addr == r.guest_phys_addr && m.desc.userspace_addr == r.userspace_addr &&
           m.desc.memory_size == r.memory_size;
  });
  if (it == v.end()) return Fail(describe(r) + " is not in the memory table");
  v.erase(it);
  return create(std::move(v));
}

void* MemoryTable::translate_uva(std::uint64_t uva, std::uint64_t len) const {
  if (len == 0) return nullptr;
  std::span<std::byte> s = table_.translate_uva(uva, len);
  return s.size() == len ? s.data() : nullptr;
}

}  // namespace vireo::device
