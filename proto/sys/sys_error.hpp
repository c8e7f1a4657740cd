// SysError: an errno plus the name of the call that failed, returned as a value by every proto/sys
// wrapper (no exceptions on socket or mapping paths).
//
//   auto fd = EventFd::create(/*nonblocking=*/true);
//   if (!fd) VIREO_LOG_ERROR("cannot create kick eventfd: %s", fd.error().message().c_str());
#pragma once

#include <cerrno>
#include <string>

namespace vireo::proto {

struct SysError {
  int err = 0;
  const char* op = "";  // static string naming the failed call ("recvmsg", "mmap", ...)

  // "op: strerror(err)", e.g. "connect: Connection refused".
  std::string message() const;
};

// The current errno, tagged with the call that set it. Call right after the failing syscall.
inline SysError last_sys_error(const char* op) { return SysError{errno, op}; }

}  // namespace vireo::proto
