// ChildProcess: a peer program (dpdk-testpmd, qemu-storage-daemon) run as a child that cannot
// outlive us: it leads its own process group (stopping it stops everything it started) and gets
// SIGKILL through PR_SET_PDEATHSIG if this process dies first. The destructor stops it on every
// path.
//
//   auto child = ChildProcess::spawn({.argv = {"dpdk-testpmd", ...}, .pipe_stdin = true,
//                                     .pipe_stdout = true, .stderr_path = "/tmp/x/stderr"});
//   if (!child) return fail(child.error());
//   (void)child->write("show port stats all\n");
//   auto text = child->read_until("testpmd> ", 10s);   // output before the marker
//   child->stop(2s);                                    // SIGTERM to the group, then SIGKILL
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/expected.hpp"
#include "proto/sys/unique_fd.hpp"

namespace vireo::bench {

class ChildProcess {
 public:
  struct Options {
    std::vector<std::string> argv;  // argv[0] is looked up in PATH
    bool pipe_stdin = false;        // else /dev/null
    bool pipe_stdout = false;       // else stdout_path (or /dev/null)
    std::string stdout_path;
    std::string stderr_path;        // empty: /dev/null
  };

  ChildProcess() = default;
  ChildProcess(ChildProcess&& o) noexcept;
  ChildProcess& operator=(ChildProcess&& o) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { stop(std::chrono::milliseconds(2000)); }

  static Expected<ChildProcess, std::string> spawn(const Options& options);

  // Writes all of text to the child's stdin.
  Expected<void, std::string> write(std::string_view text);
  // Reads stdout until marker; returns what came before it and consumes the marker. Fails on
  // timeout or EOF (the error names which, with the tail of the output).
  Expected<std::string, std::string> read_until(std::string_view marker, std::chrono::milliseconds timeout);
  // Closes stdin and waits up to timeout for the child to exit on its own; returns its wait
  // status, or nullopt if it is still running.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // Stops the whole process group: SIGTERM, then SIGKILL after grace. Returns the wait status
  // (-1 if there was no child). Idempotent.
  int stop(std::chrono::milliseconds grace);

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

 private:
  std::optional<int> reap(std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  int status_ = -1;
  proto::UniqueFd stdin_;
  proto::UniqueFd stdout_;
  std::string pending_;  // stdout read but not yet returned
};

// The first executable named `name` in PATH (or name itself if it contains '/'), or "".
std::string find_program(const std::string& name);

}  // namespace vireo::bench
