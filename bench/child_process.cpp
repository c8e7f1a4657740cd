#include "bench/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace vireo::bench {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::string errno_text(const char* op) { return std::string(op) + ": " + std::strerror(errno); }

// Child side between fork and exec: only async-signal-safe calls.
[[noreturn]] void exec_child(const std::string& path, std::vector<char*>& argv, pid_t parent, int in_fd,
                             int out_fd, int err_fd) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // A peer writing to a socket whose other end closed gets EPIPE instead of dying mid-shutdown
  // (testpmd's virtio-user port talks to its own vhost port, which may close first).
  signal(SIGPIPE, SIG_IGN);
  if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) _exit(127);
  execv(path.c_str(), argv.data());
  _exit(127);
}

proto::UniqueFd open_output(const std::string& path) {
  if (path.empty()) return proto::UniqueFd(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  return proto::UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
}

Expected<std::pair<proto::UniqueFd, proto::UniqueFd>, std::string> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Unexpected(errno_text("pipe2"));
  return std::pair{proto::UniqueFd(fds[0]), proto::UniqueFd(fds[1])};
}

}  // namespace

std::string find_program(const std::string& name) {
  auto executable = [](const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos) return executable(name) ? name : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  for (std::size_t start = 0; start <= dirs.size();) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (end > start && executable(candidate)) return candidate;
    start = end + 1;
  }
  return "";
}

ChildProcess::ChildProcess(ChildProcess&& o) noexcept
    : pid_(o.pid_), status_(o.status_), stdin_(std::move(o.stdin_)), stdout_(std::move(o.stdout_)),
      pending_(std::move(o.pending_)) {
  o.pid_ = -1;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    stop(milliseconds(2000));
    pid_ = o.pid_;
    status_ = o.status_;
    stdin_ = std::move(o.stdin_);
    stdout_ = std::move(o.stdout_);
    pending_ = std::move(o.pending_);
    o.pid_ = -1;
  }
  return *this;
}

Expected<ChildProcess, std::string> ChildProcess::spawn(const Options& options) {
  if (options.argv.empty()) return Unexpected(std::string("no program to run"));
  std::string path = find_program(options.argv[0]);
  if (path.empty()) return Unexpected(options.argv[0] + ": not found in PATH");
  proto::UniqueFd in_child, out_child, err_child;
  ChildProcess child;
  if (options.pipe_stdin) {
    auto p = make_pipe();
    if (!p) return Unexpected(p.error());
    in_child = std::move(p->first);
    child.stdin_ = std::move(p->second);
  } else {
    in_child.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  }
  if (options.pipe_stdout) {
    auto p = make_pipe();
    if (!p) return Unexpected(p.error());
    child.stdout_ = std::move(p->first);
    out_child = std::move(p->second);
  } else {
    out_child = open_output(options.stdout_path);
  }
  err_child = open_output(options.stderr_path);
  if (!in_child || !out_child || !err_child) return Unexpected(errno_text("open child stdio"));
  std::vector<std::string> args = options.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return Unexpected(errno_text("fork"));
  if (pid == 0) exec_child(path, argv, parent, in_child.get(), out_child.get(), err_child.get());
  ::setpgid(pid, pid);  // also here, so a stop() right after spawn reaches the group
  child.pid_ = pid;
  return child;
}

Expected<void, std::string> ChildProcess::write(std::string_view text) {
  if (!stdin_) return Unexpected(std::string("the child's stdin is closed"));
  while (!text.empty()) {
    ssize_t n = ::write(stdin_.get(), text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unexpected(errno_text("write to child"));
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Expected<std::string, std::string> ChildProcess::read_until(std::string_view marker, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto tail = [this] { return pending_.substr(pending_.size() > 400 ? pending_.size() - 400 : 0); };
  for (;;) {
    if (auto at = pending_.find(marker); at != std::string::npos) {
      std::string before = pending_.substr(0, at);
      pending_.erase(0, at + marker.size());
      return before;
    }
    if (!stdout_) return Unexpected("the child's stdout is closed; output so far: " + tail());
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Unexpected("timed out waiting for '" + std::string(marker) + "'; output so far: " + tail());
    pollfd p{stdout_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Unexpected(errno_text("poll child stdout"));
    if (r == 0) continue;
    char buf[8192];
    ssize_t n = ::read(stdout_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      stdout_.reset();
      return Unexpected("the child closed its output (exited?); output so far: " + tail());
    }
    pending_.append(buf, static_cast<std::size_t>(n));
  }
}

std::optional<int> ChildProcess::reap(milliseconds timeout) {
  if (pid_ <= 0) return status_;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    // WNOWAIT: the exited leader stays a zombie, so its pid (= the group id) cannot be reused
    // while we kill whatever it left behind in its group.
    siginfo_t info{};
    int r = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || info.si_pid == pid_) {
      if (r == 0) ::kill(-pid_, SIGKILL);
      int status = -1;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      pid_ = -1;
      status_ = status;
      return status_;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(milliseconds(10));
  }
}

std::optional<int> ChildProcess::wait_exit(milliseconds timeout) {
  stdin_.reset();
  return reap(timeout);
}

int ChildProcess::stop(milliseconds grace) {
  stdin_.reset();
  stdout_.reset();
  if (pid_ <= 0) return status_;
  ::kill(-pid_, SIGTERM);
  if (auto s = reap(grace)) return *s;
  ::kill(-pid_, SIGKILL);
  return reap(milliseconds(60'000)).value_or(-1);
}

}  // namespace vireo::bench
