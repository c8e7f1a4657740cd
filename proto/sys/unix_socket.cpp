// UnixStream / UnixListener: SOCK_STREAM Unix sockets with SCM_RIGHTS, all fds O_CLOEXEC.
#include "proto/sys/unix_socket.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>

namespace vireo::proto {
namespace {

Expected<sockaddr_un, SysError> make_addr(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return Unexpected(SysError{ENAMETOOLONG, "socket path (empty or longer than sun_path)"});
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

Expected<UniqueFd, SysError> new_socket() {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Unexpected(last_sys_error("socket(AF_UNIX)"));
  return fd;
}

Expected<bool, SysError> poll_one(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  for (;;) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r >= 0) return r > 0;
    if (errno != EINTR) return Unexpected(last_sys_error("poll"));
  }
}

// Moves every SCM_RIGHTS fd of msg into fds (as owners), whatever else happens.
void collect_fds(msghdr& msg, std::vector<UniqueFd>& fds) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < n; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds.emplace_back(fd);
    }
  }
}

// If path holds a socket nobody listens on, unlink it (a leftover from a crashed daemon).
Expected<void, SysError> remove_stale(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return {};  // nothing there
  if (!S_ISSOCK(st.st_mode)) return Unexpected(SysError{EEXIST, "bind: path exists and is not a socket"});
  auto probe = new_socket();
  if (!probe) return Unexpected(probe.error());
  if (::connect(probe->get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0)
    return Unexpected(SysError{EADDRINUSE, "bind: another process is listening on the socket"});
  if (errno != ECONNREFUSED) return Unexpected(last_sys_error("connect(probe stale socket)"));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Unexpected(last_sys_error("unlink"));
  return {};
}

}  // namespace

// ---- UnixStream ----

Expected<UnixStream, SysError> UnixStream::connect(const std::string& path) {
  auto addr = make_addr(path);
  if (!addr) return Unexpected(addr.error());
  auto fd = new_socket();
  if (!fd) return Unexpected(fd.error());
  for (;;) {
    if (::connect(fd->get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) == 0) break;
    if (errno != EINTR) return Unexpected(last_sys_error("connect"));
  }
  return UnixStream(std::move(*fd));
}

Expected<std::pair<UnixStream, UnixStream>, SysError> UnixStream::socketpair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return Unexpected(last_sys_error("socketpair"));
  return std::pair<UnixStream, UnixStream>(UnixStream(UniqueFd(sv[0])), UnixStream(UniqueFd(sv[1])));
}

Expected<std::size_t, SysError> UnixStream::send_msg(std::span<const std::byte> bytes,
                                                     std::span<const int> fds) const {
  if (fds.size() > kMaxSendFds) return Unexpected(SysError{E2BIG, "sendmsg: more than 8 fds"});
  if (!fds.empty() && bytes.empty()) return Unexpected(SysError{EINVAL, "sendmsg: fds need a byte"});
  iovec iov{const_cast<std::byte*>(bytes.data()), bytes.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxSendFds * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  for (;;) {
    ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) return Unexpected(last_sys_error("sendmsg"));
  }
}

Expected<std::size_t, SysError> UnixStream::recv_msg(std::span<std::byte> buf,
                                                     std::vector<UniqueFd>& fds) const {
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxFds * sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Unexpected(last_sys_error("recvmsg"));
  std::size_t first_new = fds.size();
  collect_fds(msg, fds);  // own them before any check, so every path closes them
  if (msg.msg_flags & MSG_CTRUNC) {
    fds.resize(first_new);  // closes what arrived in this call
    return Unexpected(SysError{EMSGSIZE, "recvmsg: control data truncated (too many fds)"});
  }
  return static_cast<std::size_t>(n);
}

Expected<void, SysError> UnixStream::set_nonblocking(bool on) const {
  int flags = ::fcntl(fd_.get(), F_GETFL);
  if (flags < 0) return Unexpected(last_sys_error("fcntl(F_GETFL)"));
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (::fcntl(fd_.get(), F_SETFL, flags) != 0) return Unexpected(last_sys_error("fcntl(F_SETFL)"));
  return {};
}

Expected<bool, SysError> UnixStream::wait_readable(int timeout_ms) const {
  return poll_one(fd_.get(), POLLIN, timeout_ms);
}

Expected<bool, SysError> UnixStream::wait_writable(int timeout_ms) const {
  return poll_one(fd_.get(), POLLOUT, timeout_ms);
}

void UnixStream::shutdown() const { ::shutdown(fd_.get(), SHUT_RDWR); }

// ---- UnixListener ----

Expected<UnixListener, SysError> UnixListener::bind(const std::string& path, int backlog) {
  auto addr = make_addr(path);
  if (!addr) return Unexpected(addr.error());
  if (auto ok = remove_stale(path, *addr); !ok) return Unexpected(ok.error());
  auto fd = new_socket();
  if (!fd) return Unexpected(fd.error());
  if (::bind(fd->get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0)
    return Unexpected(last_sys_error("bind"));
  UnixListener listener(std::move(*fd), path);  // from here the destructor unlinks path
  if (::listen(listener.fd(), backlog) != 0) return Unexpected(last_sys_error("listen"));
  return listener;
}

UnixListener::UnixListener(UnixListener&& other) noexcept
    : fd_(std::move(other.fd_)), path_(std::exchange(other.path_, {})) {}

UnixListener& UnixListener::operator=(UnixListener&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) ::unlink(path_.c_str());
    fd_ = std::move(other.fd_);
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

UnixListener::~UnixListener() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

Expected<UnixStream, SysError> UnixListener::accept() const {
  for (;;) {
    UniqueFd fd(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (fd) return UnixStream::adopt(std::move(fd));
    if (errno != EINTR && errno != ECONNABORTED) return Unexpected(last_sys_error("accept4"));
  }
}

}  // namespace vireo::proto
