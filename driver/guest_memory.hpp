// The driver's "guest RAM": one memfd (or hugetlb memfd with --hugepages) mapped MAP_SHARED here
// and handed to the back-end whole in SET_MEM_TABLE (one region; userspace_addr = where it is
// mapped in this process). Ring areas and packet / I/O buffers are carved out of it by a bump
// allocator, so every buffer the device sees lies in memory it has mapped.
//
//   auto mem = GuestMemory::create({.size = 8 << 20});
//   auto ring = mem->alloc(4096, 4096);            // Area{host, gpa, len}
//   std::span<std::byte> s = mem->translate(ring->gpa, 64);   // vring::GuestMemory concept
//   proto::MemoryRegion r = mem->region();          // what SET_MEM_TABLE carries, with mem->fd()
//
// Allocations live as long as the GuestMemory (there is no free: drivers allocate their rings and
// buffer pools once, at start). Everything in it is shared with the back-end: treat what the
// device writes there as device-controlled.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "base/expected.hpp"
#include "proto/messages.hpp"
#include "proto/sys/mapping.hpp"
#include "proto/sys/memfd.hpp"

namespace vireo::driver {

struct GuestMemoryOptions {
  std::size_t size = 0;        // rounded up to the page (or huge page) size
  bool hugepages = false;      // MFD_HUGETLB: needs free huge pages (scripts/prepare-host.sh)
  std::uint64_t base_gpa = 0;  // guest-physical address of the first byte
};

// A piece of guest memory: host pointer and the guest address the device uses for it.
struct Area {
  std::byte* host = nullptr;
  std::uint64_t gpa = 0;
  std::size_t len = 0;
  std::span<std::byte> bytes() const { return {host, len}; }
};

class GuestMemory {
 public:
  GuestMemory() = default;
  // Creates and maps the memory; the error names the failed call (e.g. not enough huge pages).
  [[nodiscard]] static Expected<GuestMemory, std::string> create(const GuestMemoryOptions& opt);

  // `len` bytes aligned to `align` (a power of two), zeroed. Fails when the memory is exhausted.
  [[nodiscard]] Expected<Area, std::string> alloc(std::size_t len, std::size_t align);

  // vring::GuestMemory concept: host bytes of [gpa, gpa + len), shorter at the end, empty if
  // outside.
  std::span<std::byte> translate(std::uint64_t gpa, std::uint64_t len) const noexcept;
  // Guest address of a host pointer into this memory; false if it lies outside.
  bool gpa_of(const void* host, std::size_t len, std::uint64_t& gpa) const noexcept;

  proto::MemoryRegion region() const;  // {base_gpa, size, userspace_addr = host address, 0}
  int fd() const { return memfd_.fd(); }
  std::size_t size() const { return mapping_.size(); }
  std::size_t used() const { return next_; }
  std::uint64_t base_gpa() const { return base_gpa_; }
  std::byte* data() const { return mapping_.data(); }
  bool hugepages() const { return hugepages_; }

 private:
  proto::MemFd memfd_;
  proto::Mapping mapping_;
  std::uint64_t base_gpa_ = 0;
  std::size_t next_ = 0;  // bump pointer (offset of the first free byte)
  bool hugepages_ = false;
};

// The huge page size the kernel uses for MFD_HUGETLB (0 if unknown).
std::size_t default_huge_page_size();

}  // namespace vireo::driver
