// run_daemon over real Unix sockets: server mode (path and --fd), client mode, reconnects, stale
// sockets, and the `vireo rng` process (SIGTERM exit code, --stats).
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "rig.hpp"

extern char** environ;

namespace vireo::test {
namespace {

std::string temp_socket(const char* tag) {
  return "/tmp/vireo-test-" + std::to_string(::getpid()) + "-" + tag + ".sock";
}

// Connects, retrying while the daemon is not listening yet.
proto::UnixStream connect_retry(const std::string& path) {
  for (int i = 0; i < 200; ++i) {
    auto s = proto::UnixStream::connect(path);
    if (s) return std::move(*s);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return {};
}

// One negotiated front-end serving `n` rng buffers; true when all were used.
bool serve_rng(proto::UnixStream stream, unsigned n = 3) {
  FrontendFake fe(std::move(stream));
  if (!fe.negotiate(kBaseFeatures, kProtoAll) || !fe.set_mem_table() || !fe.setup_queue(0, 8)) return false;
  for (unsigned i = 0; i < n; ++i) {
    fe.add_writable(0, 64);
    fe.kick(0, true);
    if (!fe.wait_used(0)) return false;
  }
  return true;
}

TEST(Daemon, ServerAcceptsTheNextFrontEndAfterADisconnect) {
  const std::string path = temp_socket("server");
  device::rng::RngBackend dev;
  device::DaemonOptions opt;
  opt.socket_path = path;
  DaemonThread d(dev, opt);
  for (int conn = 0; conn < 3; ++conn) {
    auto s = connect_retry(path);
    ASSERT_TRUE(s.valid());
    EXPECT_TRUE(serve_rng(std::move(s))) << "connection " << conn;
  }
  EXPECT_EQ(d.join(), 0);
  struct stat st {};
  EXPECT_NE(::stat(path.c_str(), &st), 0) << "socket file removed on exit";
}

TEST(Daemon, ServerUnlinksAStaleSocket) {
  const std::string path = temp_socket("stale");
  {  // a socket file nobody listens on, as a crashed daemon leaves behind
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::close(fd);
  }
  device::rng::RngBackend dev;
  device::DaemonOptions opt;
  opt.socket_path = path;
  DaemonThread d(dev, opt);
  auto s = connect_retry(path);
  ASSERT_TRUE(s.valid());
  EXPECT_TRUE(serve_rng(std::move(s)));
  EXPECT_EQ(d.join(), 0);
}

TEST(Daemon, ServesOnAnInheritedListeningFd) {
  const std::string path = temp_socket("fd");
  auto l = proto::UnixListener::bind(path);
  ASSERT_TRUE(l);
  auto dup = proto::UniqueFd(::dup(l->fd()));
  device::rng::RngBackend dev;
  device::DaemonOptions opt;
  opt.listen_fd = dup.release();  // the daemon owns it now
  DaemonThread d(dev, opt);
  for (int conn = 0; conn < 2; ++conn) {
    auto s = connect_retry(path);
    ASSERT_TRUE(s.valid());
    EXPECT_TRUE(serve_rng(std::move(s)));
  }
  EXPECT_EQ(d.join(), 0);
}

TEST(Daemon, ClientConnectsRetriesAndReconnects) {
  const std::string path = temp_socket("client");
  device::rng::RngBackend dev;
  device::DaemonOptions opt;
  opt.socket_path = path;
  opt.client = true;
  DaemonThread d(dev, opt);  // starts before anyone listens: it must retry
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  auto l = proto::UnixListener::bind(path);
  ASSERT_TRUE(l);
  for (int conn = 0; conn < 2; ++conn) {
    auto s = l->accept();
    ASSERT_TRUE(s);
    EXPECT_TRUE(serve_rng(std::move(*s))) << "connection " << conn;
  }
  EXPECT_EQ(d.join(), 0);
}

TEST(Daemon, DisconnectResetsDeviceAndClosesEveryFdAndMapping) {
  device::rng::RngBackend dev;
  const auto maps_before = proto::live_mapping_count();
  const int fds_before = count_open_fds();
  {
    BackendThread be(dev);
    EXPECT_TRUE(serve_rng(be.take_frontend()));
    ASSERT_TRUE(be.wait_finished());
  }
  EXPECT_EQ(proto::live_mapping_count(), maps_before);
  EXPECT_EQ(count_open_fds(), fds_before);
}

// ---- the vireo binary ----

const char* vireo_bin() { return std::getenv("VIREO_BIN"); }

struct Child {
  pid_t pid = -1;
  int out = -1;  // read end of its stdout
};

Child spawn_rng(const std::vector<std::string>& extra, const char* command = "rng") {
  std::vector<std::string> args{vireo_bin(), command};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int p[2];
  if (::pipe(p) != 0) return {};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_addclose(&fa, p[0]);
  Child c;
  if (posix_spawn(&c.pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) c.pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  ::close(p[1]);
  c.out = p[0];
  return c;
}

int stop_child(Child& c) {
  ::kill(c.pid, SIGTERM);
  int status = 0;
  ::waitpid(c.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string read_all(int fd) {
  std::string s;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) s.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return s;
}

TEST(VireoRng, SigtermExitsZeroAndStatsArePrinted) {
  if (vireo_bin() == nullptr) GTEST_SKIP() << "VIREO_BIN not set (run through meson test)";
  const std::string path = temp_socket("bin");
  Child c = spawn_rng({"--socket-path", path, "--stats", "0.1"});
  ASSERT_GT(c.pid, 0);
  auto s = connect_retry(path);
  ASSERT_TRUE(s.valid());
  {
    FrontendFake fe(std::move(s));
    ASSERT_TRUE(fe.negotiate(kBaseFeatures, kProtoAll) && fe.set_mem_table() && fe.setup_queue(0, 8));
    for (int i = 0; i < 5; ++i) {
      fe.add_writable(0, 100);
      fe.kick(0, true);
      ASSERT_TRUE(fe.wait_used(0));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a few --stats lines
  }
  EXPECT_EQ(stop_child(c), 0);
  const std::string out = read_all(c.out);
  EXPECT_NE(out.find("rng queue 0: buffers 5 bytes 500 kicks"), std::string::npos) << out;
}

TEST(VireoRng, PrintCapabilitiesAndOptionErrors) {
  if (vireo_bin() == nullptr) GTEST_SKIP() << "VIREO_BIN not set (run through meson test)";
  Child c = spawn_rng({"--print-capabilities"});
  int status = 0;
  ::waitpid(c.pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(read_all(c.out).find("\"type\": \"rng\""), std::string::npos);
  Child bad = spawn_rng({});  // neither --socket-path nor --fd
  ::waitpid(bad.pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  (void)read_all(bad.out);
}

int exit_code(Child c) {
  int status = 0;
  ::waitpid(c.pid, &status, 0);
  (void)read_all(c.out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// rst "Backend program conventions": options that cannot be honoured fail early with exit != 0.
TEST(VireoRng, OptionsThatCannotBeHonouredFailAtStartup) {
  if (vireo_bin() == nullptr) GTEST_SKIP() << "VIREO_BIN not set (run through meson test)";
  EXPECT_EQ(exit_code(spawn_rng({"--socket-path", temp_socket("x"), "--fd", "3"})), 2)
      << "--socket-path and --fd are incompatible";
  EXPECT_EQ(exit_code(spawn_rng({"--fd", "987"})), 2) << "--fd names no open file";
  EXPECT_EQ(exit_code(spawn_rng({"--fd", "1"})), 2) << "--fd names a pipe, not a listening socket";
  EXPECT_EQ(exit_code(spawn_rng({"--socket-path", temp_socket("x"), "--stats", "soon"})), 2);
  EXPECT_EQ(exit_code(spawn_rng({"--socket-path", "/nonexistent-dir/s.sock"})), 1)
      << "a socket path that cannot be bound";
}

// --print-capabilities ignores every other option and prints vhost-user.json's type names.
TEST(VireoRng, PrintCapabilitiesPerDeviceType) {
  if (vireo_bin() == nullptr) GTEST_SKIP() << "VIREO_BIN not set (run through meson test)";
  Child blk = spawn_rng({"--print-capabilities", "--queues", "0"}, "blk");  // no --image: ignored
  const std::string out = read_all(blk.out);
  int status = 0;
  ::waitpid(blk.pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(out.find("\"type\": \"block\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"read-only\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"blk-file\""), std::string::npos) << out;
  Child net = spawn_rng({"--print-capabilities"}, "net");
  EXPECT_NE(read_all(net.out).find("\"type\": \"net\""), std::string::npos);
  ::waitpid(net.pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// SIGUSR1 prints the per-queue line once (no --stats interval); SIGTERM then exits 0.
TEST(VireoRng, Sigusr1PrintsStatsOnceAndSigtermExitsZero) {
  if (vireo_bin() == nullptr) GTEST_SKIP() << "VIREO_BIN not set (run through meson test)";
  const std::string path = temp_socket("usr1");
  Child c = spawn_rng({"--socket-path", path});
  ASSERT_GT(c.pid, 0);
  auto s = connect_retry(path);
  ASSERT_TRUE(s.valid());
  FrontendFake fe(std::move(s));
  ASSERT_TRUE(fe.negotiate(kBaseFeatures, kProtoAll) && fe.set_mem_table() && fe.setup_queue(0, 8));
  for (int i = 0; i < 3; ++i) {
    fe.add_writable(0, 64);
    fe.kick(0, true);
    ASSERT_TRUE(fe.wait_used(0));
  }
  ::kill(c.pid, SIGUSR1);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // > one control-loop poll period
  EXPECT_EQ(stop_child(c), 0) << "SIGTERM with a front-end connected exits 0";
  const std::string out = read_all(c.out);
  EXPECT_NE(out.find("rng queue 0: buffers 3 bytes 192 kicks"), std::string::npos) << out;
  EXPECT_EQ(out.find("rng queue 0:"), out.rfind("rng queue 0:")) << "printed once: " << out;
  struct stat st {};
  EXPECT_NE(::stat(path.c_str(), &st), 0) << "socket file removed on SIGTERM";
}

}  // namespace
}  // namespace vireo::test
