// Test helpers: count open fds of this process, make throwaway fds.
#pragma once

#include <dirent.h>
#include <sys/eventfd.h>

#include <vector>

#include "proto/sys/unique_fd.hpp"

namespace vireo::proto::testing {

// Entries in /proc/self/fd (the directory fd itself is counted every time, so it cancels out).
inline int open_fd_count() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n;
}

inline std::vector<UniqueFd> make_fds(std::size_t n) {
  std::vector<UniqueFd> fds;
  for (std::size_t i = 0; i < n; ++i) fds.emplace_back(::eventfd(0, EFD_CLOEXEC));
  return fds;
}

inline std::vector<int> raw(const std::vector<UniqueFd>& fds) {
  std::vector<int> out;
  for (const auto& f : fds) out.push_back(f.get());
  return out;
}

}  // namespace vireo::proto::testing
