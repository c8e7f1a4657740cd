// Mapping: an owned MAP_SHARED mapping of (part of) an fd; munmap on destruction.
//
//   // A SET_MEM_TABLE region: mmap_offset need not be page aligned.
//   auto m = Mapping::map(fd.get(), region.memory_size, region.mmap_offset, /*writable=*/true);
//   if (!m) return Unexpected(m.error());
//   std::byte* gpa_base = m->data();     // == file offset mmap_offset, whatever its alignment
//
// The kernel maps from offset rounded down to the page size; data() points at the requested
// offset and size() is the requested length. The pointee is shared with other processes:
// treat its contents as guest-controlled.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/expected.hpp"
#include "proto/sys/sys_error.hpp"

namespace vireo::proto {

class Mapping {
 public:
  Mapping() = default;
  // length 0, or offset + length overflowing, gives EINVAL.
  [[nodiscard]] static Expected<Mapping, SysError> map(int fd, std::size_t length,
                                                       std::uint64_t offset, bool writable);
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::span<std::byte> span() const { return {data_, size_}; }
  bool valid() const { return base_ != nullptr; }

 private:
  void unmap() noexcept;
  void* base_ = nullptr;        // page-aligned start passed to munmap
  std::size_t map_len_ = 0;     // length passed to munmap
  std::byte* data_ = nullptr;   // base_ + (offset - aligned offset)
  std::size_t size_ = 0;        // requested length
};

}  // namespace vireo::proto
