// Test helpers for interop suites: a peer program (dpdk-testpmd, qemu-storage-daemon) run as a
// child process that is killed on every path (destructor, and PR_SET_PDEATHSIG if the test
// itself dies), and a temporary directory removed afterwards.
//
//   auto tool = find_program("dpdk-testpmd");
//   if (!tool) return skip("dpdk-testpmd not found");
//   TempDir dir;
//   PeerProcess p;
//   p.start({*tool, "--vdev", ...}, dir.path() + "/testpmd.log");
//   ASSERT_TRUE(p.wait_for_socket(dir.path() + "/net.sock", 10'000));
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace vireo::testing {

// Absolute path of `name` on PATH, or nullopt.
inline std::optional<std::string> find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

// Takes a leading "--vireo PATH" off the command line (before GoogleTest sees it): the vireo
// binary a test runs as its back-end. Returns PATH, or an empty string when absent.
inline std::string take_vireo_arg(int& argc, char**& argv) {
  if (argc < 3 || std::string(argv[1]) != "--vireo") return {};
  std::string path = argv[2];
  argv[2] = argv[0];
  argv += 2;
  argc -= 2;
  return path;
}

// meson: exit code 77 means "skipped".
inline int skip(const std::string& reason) {
  std::printf("SKIPPED: %s\n", reason.c_str());
  std::fflush(stdout);
  return 77;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/vireo-drv-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class PeerProcess {
 public:
  PeerProcess() = default;
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;
  ~PeerProcess() { stop(SIGKILL); }

  // Starts argv[0] with stdout/stderr appended to log_path and stdin a pipe held open by us (so
  // interactive programs do not see EOF). The child dies with the test (PR_SET_PDEATHSIG).
  bool start(const std::vector<std::string>& argv, const std::string& log_path) {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return false;
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(pipefd[0], 0);
      if (log >= 0) {
        ::dup2(log, 1);
        ::dup2(log, 2);
      }
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(pipefd[0]);
    stdin_ = pipefd[1];
    pid_ = pid;
    log_ = log_path;
    return true;
  }

  // Polls until something accepts connections on `path` (the peer is up) or the child exits.
  bool wait_for_socket(const std::string& path, int timeout_ms) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < end) {
      if (!running()) return false;
      struct stat st;
      if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  void stop(int sig) {
    if (stdin_ >= 0) ::close(stdin_);
    stdin_ = -1;
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  std::string log_tail() const {
    std::FILE* f = std::fopen(log_.c_str(), "re");
    if (f == nullptr) return "";
    std::string all;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) all.append(buf, n);
    std::fclose(f);
    return all.size() > 3000 ? all.substr(all.size() - 3000) : all;
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  std::string log_;
};

}  // namespace vireo::testing
