// Dirty-page log for vhost-user live migration (VHOST_F_LOG_ALL, SET_LOG_BASE).
//
// The front-end shares a bitmap with one bit per 4096-byte guest-physical page:
// page = gpa / 4096, bit (page % 8) of byte (page / 8) (vhost-user.rst "Migration"). The device
// sets the bits of every page it writes: buffer bytes and used-ring updates.
//
//   DirtyLog log(bitmap_host, bitmap_bytes);   // mapping owned by the caller (SET_LOG_BASE)
//   ring.set_dirty_log(&log, used_ring_gpa);
//   log.mark(gpa, len);                        // after writing [gpa, gpa + len)
//
// The bitmap is shared with the front-end, which clears bits concurrently, so every update is an
// atomic OR on one byte. Pages past the end of the bitmap are ignored (the front-end sized the
// log for the memory it migrates).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "vring/barriers.hpp"

namespace vireo::vring {

inline constexpr std::uint64_t kDirtyLogPageSize = 4096;  // VHOST_LOG_PAGE

class DirtyLog {
 public:
  DirtyLog() = default;
  // `bitmap` is shared memory (front-end controlled contents) of `bytes` bytes; not owned.
  DirtyLog(std::byte* bitmap, std::size_t bytes) : bitmap_(bitmap), bytes_(bytes) {}

  // Marks every page touched by [gpa, gpa + len). Call after the write it logs.
  void mark(std::uint64_t gpa, std::uint64_t len) const noexcept {
    if (len == 0 || bitmap_ == nullptr) return;
    std::uint64_t last_byte = gpa + (len - 1);
    if (last_byte < gpa) last_byte = UINT64_MAX;  // range wraps: clamp, pages past the log are ignored
    const std::uint64_t first_page = gpa / kDirtyLogPageSize;
    const std::uint64_t last_page = last_byte / kDirtyLogPageSize;
    if (first_page / 8 >= bytes_) return;
    const std::uint64_t last_index = std::min<std::uint64_t>(last_page / 8, bytes_ - 1);
    for (std::uint64_t i = first_page / 8; i <= last_index; ++i) {
      std::uint8_t mask = 0xff;
      if (i == first_page / 8) mask &= static_cast<std::uint8_t>(0xffu << (first_page % 8));
      if (i == last_page / 8) mask &= static_cast<std::uint8_t>(0xffu >> (7 - last_page % 8));
      std::atomic_ref<std::uint8_t> cell(*reinterpret_cast<std::uint8_t*>(bitmap_ + i));
      // release: the guest-memory write being logged is visible before its dirty bit; pairs with
      // the front-end's atomic exchange of the bitmap word before it copies the page.
      cell.fetch_or(mask, std::memory_order_release);
    }
  }

  bool test(std::uint64_t gpa) const noexcept {  // for tests and diagnostics
    const std::uint64_t page = gpa / kDirtyLogPageSize;
    if (bitmap_ == nullptr || page / 8 >= bytes_) return false;
    std::atomic_ref<std::uint8_t> cell(*reinterpret_cast<std::uint8_t*>(bitmap_ + page / 8));
    return (cell.load(std::memory_order_relaxed) >> (page % 8)) & 1u;
  }

  std::size_t size_bytes() const { return bytes_; }

 private:
  std::byte* bitmap_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace vireo::vring
