// UniqueFd: the sole owner of one file descriptor; move-only, closes on destruction.
//
//   UniqueFd fd(::eventfd(0, EFD_CLOEXEC));   // owned from the moment it exists
//   if (!fd) return Unexpected(last_sys_error("eventfd"));
//   int raw = fd.get();                       // borrowed, still owned by fd
//   int mine = fd.release();                  // ownership leaves: caller must close(mine)
//
// Not thread-safe: one owner, one thread at a time (like any value type).
#pragma once

#include <unistd.h>

#include "base/expected.hpp"
#include "proto/sys/live_counts.hpp"
#include "proto/sys/sys_error.hpp"

namespace vireo::proto {

class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  // Takes ownership of fd (a negative value means "empty").
  explicit UniqueFd(int fd) noexcept : fd_(fd) { count(+1); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      close_now();
      fd_ = other.fd_;
      other.fd_ = -1;
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { close_now(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }

  // Gives up ownership without closing; the caller now owns the returned fd.
  [[nodiscard]] int release() noexcept {
    count(-1);
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes the current fd (if any) and takes ownership of fd.
  void reset(int fd = -1) noexcept {
    close_now();
    fd_ = fd;
    count(+1);
  }
  // A second owner of the same open file description (F_DUPFD_CLOEXEC).
  [[nodiscard]] Expected<UniqueFd, SysError> duplicate() const;

 private:
  void count(int delta) const noexcept {
    if (fd_ >= 0) detail::g_live_fds.fetch_add(delta, std::memory_order_relaxed);
  }
  void close_now() noexcept {
    if (fd_ < 0) return;
    count(-1);
    ::close(fd_);  // Linux: the fd is released even on EINTR, so never retry close.
    fd_ = -1;
  }

  int fd_ = -1;
};

}  // namespace vireo::proto
