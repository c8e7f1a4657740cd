// MemoryTable: the guest memory a vhost-user front-end shared (SET_MEM_TABLE, ADD_MEM_REG), as
// RAII mappings plus the immutable vring::RegionTable the rings translate through.
//
//   auto region = MemoryTable::map_region(msg_region, fd);       // mmap(fd, size, mmap_offset)
//   auto table  = MemoryTable::create({std::move(*region)});     // checks overlap / size / wrap
//   auto bigger = (*table)->with_added(std::move(*other));       // ADD_MEM_REG: a NEW table
//   ring.rebind(&(*bigger)->regions(), ...);                     // after quiescing the worker
//
// A table never changes after create(): a change builds a new one and swaps a
// shared_ptr<const MemoryTable>. Mappings are shared between successive tables (ADD/REM_MEM_REG
// keep the others), and each is unmapped when the last table using it is dropped, i.e. when no
// queue still points into it.
#pragma once

#include "base/limits.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/expected.hpp"
#include "proto/messages.hpp"
#include "proto/sys/mapping.hpp"
#include "vring/memory.hpp"

namespace vireo::device {

// libvhost-user and rust-vmm answer GET_MAX_MEM_SLOTS with 509 (QEMU front-end caps at 512).
inline constexpr std::uint64_t kMaxMemSlots = limits::kMaxMemSlots;

// One front-end region and the mapping of its fd.
struct MappedRegion {
  proto::MemoryRegion desc{};
  std::shared_ptr<const proto::Mapping> map;
};

class MemoryTable {
 public:
  using Ptr = std::shared_ptr<const MemoryTable>;

  // mmaps [mmap_offset, mmap_offset + memory_size) of fd (rst "Memory region description").
  // Rejects zero-sized or wrapping regions, fds smaller than the range (a later access would
  // SIGBUS) and fds that cannot be mapped, with a reason naming the region.
  static Expected<MappedRegion, std::string> map_region(const proto::MemoryRegion& r, int fd);
  // A table of these regions. Rejects overlaps in guest-physical or front-end virtual space and
  // more than kMaxMemSlots regions.
  static Expected<Ptr, std::string> create(std::vector<MappedRegion> regions);
  static Ptr empty();

  // ADD_MEM_REG: this table plus one region. REM_MEM_REG: this table minus the region matching
  // guest_phys_addr, userspace_addr and memory_size (rst: mmap_offset is not compared).
  Expected<Ptr, std::string> with_added(MappedRegion region) const;
  Expected<Ptr, std::string> without(const proto::MemoryRegion& r) const;

  const vring::RegionTable& regions() const { return table_; }
  std::size_t size() const { return regions_.size(); }
  // Host pointer of a front-end virtual address range that must be contiguous (ring areas);
  // nullptr when any byte is unmapped.
  void* translate_uva(std::uint64_t uva, std::uint64_t len) const;

 private:
  explicit MemoryTable(std::vector<MappedRegion> regions);
  std::vector<MappedRegion> regions_;
  vring::RegionTable table_;
};

// "region [gpa 0x1000, size 0x2000, uva 0x7f...]" for log lines.
std::string describe(const proto::MemoryRegion& r);

}  // namespace vireo::device
