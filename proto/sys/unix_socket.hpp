// Unix-domain stream sockets with SCM_RIGHTS fd passing: the transport under every vhost-user
// connection (front-end socket and back-end channel).
//
//   auto listener = UnixListener::bind("/run/vireo/blk0.sock");   // or UnixListener::adopt(fd) for --fd
//   auto conn = listener->accept();                               // UnixStream
//   std::array<std::byte, 12> hdr;
//   std::vector<UniqueFd> fds;                                    // received fds are owned at once
//   auto n = conn->recv_msg(hdr, fds);                            // 0 = peer closed
//
// Every fd created here is O_CLOEXEC (SOCK_CLOEXEC, MSG_CMSG_CLOEXEC). A stream object is used
// by one thread at a time; concurrent senders must serialize (as libvhost-user does for the
// back-end channel).
#pragma once

#include "base/limits.hpp"

#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/expected.hpp"
#include "proto/sys/sys_error.hpp"
#include "proto/sys/unique_fd.hpp"

namespace vireo::proto {

// Most fds accepted in one message (rust-vmm MAX_ATTACHED_FD_ENTRIES). Baseline senders never
// send more than kMaxSendFds (VHOST_MEMORY_BASELINE_NREGIONS; back-end channel BACKEND_SEND_FD).
inline constexpr std::size_t kMaxFds = limits::kMaxMessageFds;
inline constexpr std::size_t kMaxSendFds = limits::kMaxSendFds;

class UnixStream {
 public:
  UnixStream() = default;
  [[nodiscard]] static Expected<UnixStream, SysError> connect(const std::string& path);
  static UnixStream adopt(UniqueFd fd) { return UnixStream(std::move(fd)); }
  // A connected pair (SOCK_STREAM | SOCK_CLOEXEC), e.g. for the back-end channel or tests.
  [[nodiscard]] static Expected<std::pair<UnixStream, UnixStream>, SysError> socketpair();

  // One sendmsg (MSG_NOSIGNAL) carrying fds (≤ kMaxSendFds, else E2BIG) with the first byte.
  // Returns bytes sent, which may be fewer than bytes.size(). EINTR retried; EAGAIN returned.
  [[nodiscard]] Expected<std::size_t, SysError> send_msg(std::span<const std::byte> bytes,
                                                         std::span<const int> fds) const;
  // One recvmsg into buf; fds that arrive are appended to fds as owners. Returns 0 when the peer
  // closed. EINTR retried; EAGAIN returned as an error. MSG_CTRUNC (more than kMaxFds, or a
  // truncated control message) closes everything that arrived and returns EMSGSIZE.
  [[nodiscard]] Expected<std::size_t, SysError> recv_msg(std::span<std::byte> buf,
                                                         std::vector<UniqueFd>& fds) const;

  [[nodiscard]] Expected<void, SysError> set_nonblocking(bool on) const;
  // poll() for readability (events = POLLIN) or writability; false on timeout. timeout_ms < 0
  // waits forever. EINTR retried.
  [[nodiscard]] Expected<bool, SysError> wait_readable(int timeout_ms) const;
  [[nodiscard]] Expected<bool, SysError> wait_writable(int timeout_ms) const;
  // shutdown(SHUT_RDWR): the peer sees EOF; the fd stays owned.
  void shutdown() const;

  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }
  UniqueFd take() && { return std::move(fd_); }

 private:
  explicit UnixStream(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

class UnixListener {
 public:
  UnixListener() = default;
  // Binds and listens on path. A stale socket file (nobody accepting: ECONNREFUSED) is unlinked
  // first; a live one gives EADDRINUSE; a non-socket file at path gives EEXIST. The socket file
  // is unlinked again when the listener is destroyed.
  [[nodiscard]] static Expected<UnixListener, SysError> bind(const std::string& path,
                                                             int backlog = 1);
  // Socket activation (--fd=N): a socket that is already bound and listening.
  static UnixListener adopt(UniqueFd fd) { return UnixListener(std::move(fd), {}); }
  UnixListener(UnixListener&& other) noexcept;
  UnixListener& operator=(UnixListener&& other) noexcept;
  ~UnixListener();

  // Blocks (unless the fd is non-blocking: EAGAIN). EINTR and ECONNABORTED retried.
  [[nodiscard]] Expected<UnixStream, SysError> accept() const;

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  UnixListener(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::string path_;  // empty when adopted
};

}  // namespace vireo::proto
