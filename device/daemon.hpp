// Running a Backend as a vhost-user back-end process: the socket (server or client mode, or a
// listening fd handed over as systemd socket activation does), the control loop that owns the
// Session, and the data-plane worker(s).
//
//   rng::RngBackend dev;
//   DaemonOptions opt;  opt.socket_path = "/tmp/rng.sock";
//   return run_daemon(dev, opt);     // serves one front-end at a time until SIGTERM / SIGINT
//
// The daemon serves one front-end at a time; after a disconnect it resets the device and accepts
// (server) or reconnects (client) to the next one.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "device/backend.hpp"
#include "proto/sys/unix_socket.hpp"

namespace vireo::device {

struct DaemonOptions {
  std::string socket_path;       // --socket-path
  int listen_fd = -1;            // --fd: an already listening socket (takes precedence)
  bool client = false;           // --client: connect to socket_path instead of listening on it
  bool busy_poll = false;        // --busy-poll: workers spin with driver kicks suppressed
  unsigned workers = 1;          // data-plane threads; queue i runs on worker i % workers
  double stats_interval = 0;     // --stats SECONDS: per-queue counters printed at that interval
  std::uint64_t max_connections = 0;  // stop after serving this many front-ends (0: no limit)
};

// Serves front-ends until SIGTERM/SIGINT (or `stop` becomes true, for in-process tests); returns
// a process exit code: 0 on a clean stop, non-zero with a logged reason if the socket cannot be
// set up.
int run_daemon(Backend& backend, const DaemonOptions& options,
               const std::atomic<bool>* stop = nullptr);

// Serves one already connected front-end (e.g. one end of a socketpair in a test) until it
// disconnects, breaks the protocol, or `stop` becomes true. run_daemon calls it per connection.
void serve_connection(Backend& backend, const DaemonOptions& options, proto::UnixStream stream,
                      const std::atomic<bool>* stop = nullptr);

}  // namespace vireo::device
