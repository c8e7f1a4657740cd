// Process-wide counts of kernel objects owned through proto/sys types, for leak tests:
//
//   auto before = live_fd_count();
//   { auto m = MemFd::create("t", 4096); }
//   EXPECT_EQ(live_fd_count(), before);
//
// Counts only objects created or adopted through UniqueFd / Mapping, never raw fds.
#pragma once

#include <atomic>
#include <cstdint>

namespace vireo::proto {
namespace detail {
inline std::atomic<std::int64_t> g_live_fds{0};
inline std::atomic<std::int64_t> g_live_mappings{0};
}  // namespace detail

// Number of valid UniqueFd owners alive right now.
inline std::int64_t live_fd_count() { return detail::g_live_fds.load(std::memory_order_relaxed); }
// Number of Mapping objects whose munmap is still pending.
inline std::int64_t live_mapping_count() {
  return detail::g_live_mappings.load(std::memory_order_relaxed);
}

}  // namespace vireo::proto
