// `vireo net`: serve a virtio-net device over vhost-user.
//
//   vireo net --socket-path /tmp/net.sock --port responder=10.0.0.1      # the guest pings 10.0.0.1
//   vireo net --socket-path /tmp/a.sock --port peer:/tmp/b.sock           # switch two front-ends
#include <atomic>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <thread>

#include "base/log.hpp"
#include "base/options.hpp"
#include "device/daemon.hpp"
#include "device/net/net_backend.hpp"
#include "device/net/peer_port.hpp"
#include "vring/layout.hpp"

namespace vireo::device::net {

namespace {

struct NetCli {
  NetOptions net;
  DaemonOptions daemon;
  std::string port = "loopback";
};

// Parses and checks the options; returns an exit code when the command must stop here.
std::optional<int> parse(int argc, char** argv, int first, NetCli& cli) {
  OptionParser o("vireo net --socket-path PATH [options]",
                 "Serve a virtio-net device (virtio §5.1) over vhost-user. Queue pair i is "
                 "receiveq 2i / transmitq 2i+1; with --queues > 1 the device offers MQ and a "
                 "control queue.");
  auto& path = o.add("socket-path", "", "vhost-user UNIX socket to listen on (or connect to)");
  auto& server = o.flag("server", "listen on --socket-path (the default)");
  auto& client = o.flag("client", "connect to --socket-path instead of listening");
  auto& queues = o.add_u64("queues", 1, "queue pairs (max_virtqueue_pairs)");
  auto& qsize = o.add_u64("queue-size", 1024, "largest queue size the front-end may choose");
  auto& port = o.add("port", "loopback",
                     "loopback | sink | source[:LEN] | responder=IP | tap:IFNAME | peer:PATH");
  auto& mac = o.add("mac", "52:54:00:12:34:56", "device MAC address (config space)");
  auto& mtu = o.add_u64("mtu", 1500, "device MTU (config space, VIRTIO_NET_F_MTU)");
  auto& busy = o.flag("busy-poll", "workers spin with guest kicks suppressed");
  auto& workers = o.add_u64("workers", 1, "data-plane threads (queue i runs on worker i % N)");
  auto& stats = o.add("stats", "0", "print per-queue counters every SECONDS (0: never)");
  if (auto rc = o.parse(argc, argv, first)) return rc;
  auto fail = [](const std::string& why) {
    std::fprintf(stderr, "vireo net: %s\n", why.c_str());
    return std::optional<int>(2);
  };
  if (path.value.empty()) return fail("--socket-path is required");
  if (server.set && client.set) return fail("--server and --client exclude each other");
  if (queues.as_u64() == 0 || queues.as_u64() > kMqPairsMax)
    return fail("--queues must be between 1 and 32768 queue pairs");
  if (qsize.as_u64() == 0 || qsize.as_u64() > vring::kMaxQueueSize)
    return fail("--queue-size must be between 1 and 32768");
  if (mtu.as_u64() < 68 || mtu.as_u64() > 65535 - kEthHeaderLen - kVlanLen)
    return fail("--mtu must be between 68 and 65517");
  if (workers.as_u64() == 0 || workers.as_u64() > 64) return fail("--workers must be 1..64");
  const std::optional<MacAddr> m = parse_mac(mac.value);
  if (!m) return fail("--mac '" + mac.value + "' is not of the form 52:54:00:12:34:56");
  cli.net.pairs = static_cast<std::uint16_t>(queues.as_u64());
  cli.net.max_queue_size = static_cast<std::uint16_t>(qsize.as_u64());
  cli.net.mac = *m;
  cli.net.mtu = static_cast<std::uint16_t>(mtu.as_u64());
  cli.daemon.socket_path = path.value;
  cli.daemon.client = client.set;
  cli.daemon.busy_poll = busy.set;
  cli.daemon.workers = static_cast<unsigned>(workers.as_u64());
  cli.daemon.stats_interval = stats.as_double();
  cli.port = port.value;
  return std::nullopt;
}

// peer:PATH: a second device on PATH, served on its own thread; the two forward to each other.
int run_peers(const NetCli& cli) {
  NetBackend a(cli.net, nullptr), b(cli.net, nullptr);
  if (Status s = connect_peers(a, b); !s) {
    VIREO_LOG_ERROR("peer port: %s", s.error().c_str());
    return 1;
  }
  DaemonOptions second = cli.daemon;
  second.socket_path = cli.port.substr(5);
  std::atomic<bool> stop{false};
  int second_rc = 0;
  std::thread t([&] { second_rc = run_daemon(b, second, &stop); });
  const int rc = run_daemon(a, cli.daemon);
  stop.store(true);
  t.join();
  return rc != 0 ? rc : second_rc;
}

}  // namespace

int net_main(int argc, char** argv, int first) {
  NetCli cli;
  if (auto rc = parse(argc, argv, first, cli)) return *rc;
  if (cli.port.starts_with("peer:")) {
    if (cli.port.size() == 5 || cli.port.substr(5) == cli.daemon.socket_path) {
      std::fprintf(stderr, "vireo net: peer:PATH needs a second socket path, different from "
                           "--socket-path\n");
      return 2;
    }
    return run_peers(cli);
  }
  auto port = make_port(cli.port);
  if (!port) {
    std::fprintf(stderr, "vireo net: --port: %s\n", port.error().c_str());
    return 2;
  }
  NetBackend dev(cli.net, nullptr);
  if (Status s = dev.set_port(std::move(*port)); !s) {
    VIREO_LOG_ERROR("port %s: %s", cli.port.c_str(), s.error().c_str());
    return 1;
  }
  return run_daemon(dev, cli.daemon);
}

}  // namespace vireo::device::net
