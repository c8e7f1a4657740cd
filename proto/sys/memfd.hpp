// MemFd: anonymous shareable memory (memfd_create + ftruncate), e.g. driver guest RAM, the
// inflight region of GET_INFLIGHT_FD, or test memory.
//
//   auto mem = MemFd::create("vireo-guest-ram", 64 << 20);
//   if (!mem) return Unexpected(mem.error());
//   auto map = Mapping::map(mem->fd(), mem->size(), 0, /*writable=*/true);
#pragma once

#include <cstddef>

#include "base/expected.hpp"
#include "proto/sys/sys_error.hpp"
#include "proto/sys/unique_fd.hpp"

namespace vireo::proto {

class MemFd {
 public:
  MemFd() = default;
  // MFD_CLOEXEC (| MFD_HUGETLB). With hugetlb, size must be a multiple of the default huge page
  // size and that many huge pages must be free; otherwise an error naming the cause is returned
  // (op = "hugetlb: ..."), instead of a SIGBUS on first touch.
  [[nodiscard]] static Expected<MemFd, SysError> create(const char* name, std::size_t size,
                                                        bool hugetlb = false);

  int fd() const { return fd_.get(); }
  std::size_t size() const { return size_; }
  UniqueFd take() && { return std::move(fd_); }

 private:
  MemFd(UniqueFd fd, std::size_t size) : fd_(std::move(fd)), size_(size) {}
  UniqueFd fd_;
  std::size_t size_ = 0;
};

}  // namespace vireo::proto
