// EventFd: an owned eventfd used for vring kick/call/err notifications.
//
//   auto kick = EventFd::create(/*nonblocking=*/true);
//   if (!kick) return Unexpected(kick.error());
//   (void)kick->signal();                  // front-end: "buffers added"
//   auto n = kick->drain();                // back-end: how many signals since last drain (0 if none)
//
// An fd received in SET_VRING_KICK is wrapped with EventFd::adopt(std::move(fd)).
// signal()/drain() are safe to call from any thread (one syscall each).
#pragma once

#include <cstdint>
#include <string>

#include "base/expected.hpp"
#include "proto/sys/sys_error.hpp"
#include "proto/sys/unique_fd.hpp"

namespace vireo::proto {

class EventFd {
 public:
  EventFd() = default;
  // EFD_CLOEXEC always; EFD_NONBLOCK / EFD_SEMAPHORE on request.
  [[nodiscard]] static Expected<EventFd, SysError> create(bool nonblocking, bool semaphore = false);
  // Wraps an fd received from the peer (check it with is_eventfd() first).
  static EventFd adopt(UniqueFd fd) { return EventFd(std::move(fd)); }

  // Adds n (default 1) to the counter. EINTR retried.
  [[nodiscard]] Expected<void, SysError> signal(std::uint64_t n = 1) const;
  // Reads and resets the counter (semaphore mode: decrements by one). Returns 0 when a
  // non-blocking eventfd had nothing pending. EINTR retried.
  [[nodiscard]] Expected<std::uint64_t, SysError> drain() const;

  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }
  // Hands the fd over (e.g. to send it with SET_VRING_CALL); this object becomes empty.
  UniqueFd take() && { return std::move(fd_); }

 private:
  explicit EventFd(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// What fd is, as /proc/self/fd names it ("anon_inode:[eventfd]", "pipe:[1234]", a path);
// empty when /proc cannot tell.
std::string describe_fd(int fd);
// False only when fd is known to be something other than an eventfd. A pipe or socket in an
// eventfd's place can block the writer once its buffer fills, and a regular file cannot be polled.
bool is_eventfd(int fd);

}  // namespace vireo::proto
