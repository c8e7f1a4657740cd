// The block peer: qemu-storage-daemon exporting a file on tmpfs as a vhost-user-blk socket.
//
//   auto image = TmpfsImage::create(128 << 20);          // /dev/shm/vireo-bench-<pid>-<n>.img
//   auto qsd = start_qsd({.image = image->path(), .socket = dir + "/blk.sock"});
//   ... drive the socket ...
//   qsd->reset();                                          // SIGTERM, wait, remove the socket
//
// ChildBackend is the generic part (any back-end program that serves on a socket), usable for a
// Vireo back-end run as a separate process too.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/child_process.hpp"
#include "bench/peer.hpp"

namespace vireo::bench {

// A back-end program serving on a Unix socket, from start() (which returns once the socket
// accepts connections) until destruction (SIGTERM to its group, SIGKILL after a grace period;
// the socket file is removed).
class ChildBackend final : public BlkBackend {
 public:
  static Measured<std::unique_ptr<ChildBackend>> start(std::vector<std::string> argv, std::string socket,
                                                       std::string log_path,
                                                       std::chrono::milliseconds ready_timeout);
  ~ChildBackend() override;
  // Stops the program; returns its wait status (0 for a clean exit after SIGTERM).
  int stop();
  pid_t pid() const { return child_.pid(); }

 private:
  ChildBackend(ChildProcess child, std::string socket) : child_(std::move(child)), socket_(std::move(socket)) {}
  ChildProcess child_;
  std::string socket_;
  int status_ = -1;
};

// The qemu-storage-daemon command line for target (a vhost-user-blk export, writable, one
// queue unless target says otherwise, page cache on: cache.direct=off, since tmpfs has no
// O_DIRECT). aio=io_uring, the engine `vireo blk` uses: qsd's default (aio=threads) hands every
// request to a thread pool and measured 3.5x fewer IOPS at QD 32 here, so it made an unfair peer.
std::vector<std::string> qsd_argv(const BlkTarget& target);
// Starts qemu-storage-daemon on target; Problem::skip if it is not installed. Its stderr goes to
// target.socket + ".log" (in the error text on failure).
Measured<std::unique_ptr<ChildBackend>> start_qsd(const BlkTarget& target);

// An image file on tmpfs, allocated up front (posix_fallocate), removed on destruction.
class TmpfsImage {
 public:
  static Expected<TmpfsImage, std::string> create(std::uint64_t bytes, const std::string& dir = "/dev/shm");
  TmpfsImage(TmpfsImage&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  TmpfsImage& operator=(TmpfsImage&&) = delete;
  TmpfsImage(const TmpfsImage&) = delete;
  ~TmpfsImage();
  const std::string& path() const { return path_; }

 private:
  explicit TmpfsImage(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Connects to a vhost-user socket and asks VHOST_USER_GET_FEATURES: proves a back-end serves
// there, whatever its kind. Returns the features.
Expected<std::uint64_t, std::string> probe_vhost_user(const std::string& socket);

}  // namespace vireo::bench
