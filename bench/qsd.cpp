#include "bench/qsd.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "proto/connection.hpp"
#include "proto/sys/unix_socket.hpp"

namespace vireo::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string log_tail(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  return text.size() > 400 ? text.substr(text.size() - 400) : text;
}

}  // namespace

Measured<std::unique_ptr<ChildBackend>> ChildBackend::start(std::vector<std::string> argv, std::string socket,
                                                            std::string log_path, milliseconds ready_timeout) {
  ::unlink(socket.c_str());  // a stale socket file would look ready
  auto child = ChildProcess::spawn({.argv = std::move(argv), .stderr_path = log_path});
  if (!child) return Unexpected(Problem::fail("cannot start the back-end: " + child.error()));
  std::unique_ptr<ChildBackend> backend(new ChildBackend(std::move(*child), std::move(socket)));
  auto deadline = Clock::now() + ready_timeout;
  for (;;) {
    if (auto conn = proto::UnixStream::connect(backend->socket_)) return backend;
    if (auto exited = backend->child_.wait_exit(milliseconds(0)))
      return Unexpected(Problem::fail("the back-end exited (status " + std::to_string(*exited) +
                                      ") before serving; its log: " + log_tail(log_path)));
    if (Clock::now() >= deadline)
      return Unexpected(Problem::fail("the back-end did not listen on " + backend->socket_ + " within " +
                                      std::to_string(ready_timeout.count()) + " ms; its log: " + log_tail(log_path)));
    std::this_thread::sleep_for(milliseconds(20));
  }
}

ChildBackend::~ChildBackend() { stop(); }

int ChildBackend::stop() {
  if (child_.running()) status_ = child_.stop(milliseconds(5000));
  if (!socket_.empty()) ::unlink(socket_.c_str());
  return status_;
}

std::vector<std::string> qsd_argv(const BlkTarget& t) {
  return {"qemu-storage-daemon",
          "--blockdev",
          "driver=file,node-name=file0,filename=" + t.image + ",cache.direct=off,aio=io_uring",
          "--export",
          "type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=" + t.socket +
              ",writable=on,num-queues=" + std::to_string(t.num_queues)};
}

Measured<std::unique_ptr<ChildBackend>> start_qsd(const BlkTarget& target) {
  if (find_program("qemu-storage-daemon").empty())
    return Unexpected(Problem::skip("qemu-storage-daemon not found (Debian: apt-get install qemu-system-x86)"));
  if (target.image.find(',') != std::string::npos || target.socket.find(',') != std::string::npos)
    return Unexpected(Problem::fail("qemu-storage-daemon options cannot carry a path with a ','"));
  return ChildBackend::start(qsd_argv(target), target.socket, target.socket + ".log", milliseconds(15'000));
}

Expected<TmpfsImage, std::string> TmpfsImage::create(std::uint64_t bytes, const std::string& dir) {
  static std::atomic<unsigned> counter{0};
  std::string path = dir + "/vireo-bench-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".img";
  proto::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return Unexpected("cannot create " + path + ": " + std::strerror(errno));
  TmpfsImage image(path);  // owns the file from here
  if (int err = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(bytes)); err != 0)
    return Unexpected("cannot allocate " + std::to_string(bytes) + " bytes for " + path + ": " + std::strerror(err));
  return image;
}

TmpfsImage::~TmpfsImage() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

Expected<std::uint64_t, std::string> probe_vhost_user(const std::string& socket) {
  auto stream = proto::UnixStream::connect(socket);
  if (!stream) return Unexpected("connect " + socket + ": " + stream.error().message());
  proto::Connection conn(std::move(*stream));
  auto reply = conn.request(proto::FrontendReq::get_features, {}, {}, /*need_reply=*/false);
  if (!reply) return Unexpected("VHOST_USER_GET_FEATURES: " + reply.error().message());
  return reply->payload_as<proto::U64>().u64;
}

}  // namespace vireo::bench
