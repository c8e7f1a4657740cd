// run_daemon: sockets (server, client, --fd), one front-end at a time, signals and --stats.
#include "device/daemon.hpp"

#include <poll.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "base/log.hpp"
#include "device/backend_channel.hpp"
#include "device/session.hpp"
#include "proto/connection.hpp"

namespace vireo::device {
namespace {

constexpr int kPollMs = 100;  // how often blocking waits re-check stop flags and --stats

// The handlers only store to lock-free atomics (async-signal-safe); the control loop polls with a
// kPollMs timeout and without SA_RESTART, so it sees a flag within one poll period and does the
// work (closing, printing) itself.
std::atomic<bool> g_signalled{false};
std::atomic<bool> g_stats_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free, "signal handler needs a lock-free flag");

extern "C" void on_signal(int) { g_signalled.store(true, std::memory_order_relaxed); }
extern "C" void on_stats_signal(int) { g_stats_requested.store(true, std::memory_order_relaxed); }

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: poll() returns EINTR and the loops see the flag
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sa.sa_handler = on_stats_signal;  // SIGUSR1: print the --stats lines once
  sigaction(SIGUSR1, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a vanished front-end must not kill us through a call eventfd pipe
}

bool should_stop(const std::atomic<bool>* stop) {
  // acquire: pairs with the test's release store of *stop.
  return g_signalled.load(std::memory_order_relaxed) ||
         (stop != nullptr && stop->load(std::memory_order_acquire));
}

bool take_stats_request() { return g_stats_requested.exchange(false, std::memory_order_relaxed); }

bool wait_readable(int fd, const Backend& backend, const std::atomic<bool>* stop) {
  pollfd p{fd, POLLIN, 0};
  while (!should_stop(stop)) {
    int r = ::poll(&p, 1, kPollMs);
    if (take_stats_request()) {
      std::printf("%s: no front-end connected\n", backend.info().name);
      std::fflush(stdout);
    }
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
  return false;
}

void serve(Backend& backend, const DaemonOptions& opt, proto::UnixStream stream,
           const std::atomic<bool>* stop, BackendChannel& channel) {
  using Clock = std::chrono::steady_clock;
  proto::Connection conn(std::move(stream));
  Session session(backend, conn, channel, SessionOptions{opt.busy_poll, opt.workers});
  const auto interval = std::chrono::duration<double>(opt.stats_interval);
  auto next_stats = Clock::now() + std::chrono::duration_cast<Clock::duration>(interval);
  pollfd p{conn.fd(), POLLIN, 0};
  while (!should_stop(stop)) {
    const int r = ::poll(&p, 1, kPollMs);
    const bool due = opt.stats_interval > 0 && Clock::now() >= next_stats;
    if (take_stats_request() || due) session.print_stats(stdout);
    if (due) next_stats += std::chrono::duration_cast<Clock::duration>(interval);
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    auto msg = conn.recv();
    if (!msg) {
      if (msg.error().kind == proto::ProtoError::Kind::closed)
        VIREO_LOG_INFO("front-end disconnected");
      else
        VIREO_LOG_WARN("front-end connection failed (%s); closing it", msg.error().message().c_str());
      return;
    }
    if (!session.handle(*msg)) return;
  }
}

int serve_as_client(Backend& backend, const DaemonOptions& opt, const std::atomic<bool>* stop,
                    BackendChannel& channel) {
  std::uint64_t served = 0;
  bool logged = false;
  while (!should_stop(stop)) {
    auto stream = proto::UnixStream::connect(opt.socket_path);
    if (!stream) {
      if (!logged)
        VIREO_LOG_INFO("waiting for a front-end to listen on %s (%s)", opt.socket_path.c_str(),
                       stream.error().message().c_str());
      logged = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
      continue;
    }
    logged = false;
    VIREO_LOG_INFO("connected to the front-end at %s", opt.socket_path.c_str());
    serve(backend, opt, std::move(*stream), stop, channel);
    if (opt.max_connections != 0 && ++served >= opt.max_connections) break;
  }
  return 0;
}

int serve_as_server(Backend& backend, const DaemonOptions& opt, const std::atomic<bool>* stop,
                    BackendChannel& channel) {
  proto::UnixListener listener;
  if (opt.listen_fd >= 0) {
    listener = proto::UnixListener::adopt(proto::UniqueFd(opt.listen_fd));
  } else {
    auto l = proto::UnixListener::bind(opt.socket_path);
    if (!l) {
      VIREO_LOG_ERROR("cannot listen on %s: %s", opt.socket_path.c_str(), l.error().message().c_str());
      return 1;
    }
    listener = std::move(*l);
    VIREO_LOG_INFO("listening on %s", opt.socket_path.c_str());
  }
  std::uint64_t served = 0;
  while (wait_readable(listener.fd(), backend, stop)) {
    auto stream = listener.accept();
    if (!stream) {
      VIREO_LOG_ERROR("accept failed: %s", stream.error().message().c_str());
      return 1;
    }
    VIREO_LOG_INFO("front-end connected");
    serve(backend, opt, std::move(*stream), stop, channel);
    if (opt.max_connections != 0 && ++served >= opt.max_connections) break;
  }
  return 0;
}

}  // namespace

void serve_connection(Backend& backend, const DaemonOptions& options, proto::UnixStream stream,
                      const std::atomic<bool>* stop) {
  BackendChannel channel;
  backend.set_channel(&channel);
  serve(backend, options, std::move(stream), stop, channel);
  backend.set_channel(nullptr);
}

int run_daemon(Backend& backend, const DaemonOptions& options, const std::atomic<bool>* stop) {
  if (stop == nullptr) install_signal_handlers();
  if (options.listen_fd < 0 && options.socket_path.empty()) {
    VIREO_LOG_ERROR("no socket: give a socket path or a listening fd");
    return 1;
  }
  BackendChannel channel;
  backend.set_channel(&channel);
  const int rc = options.client ? serve_as_client(backend, options, stop, channel)
                                : serve_as_server(backend, options, stop, channel);
  backend.set_channel(nullptr);
  if (rc == 0) VIREO_LOG_INFO("back-end stopped");
  return rc;
}

}  // namespace vireo::device
