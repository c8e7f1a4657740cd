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
#include "device/cli_options.hpp"
#include "device/daemon.hpp"
#include "device/net/dpdk_port.hpp"
#include "device/net/net_backend.hpp"
#include "device/net/peer_port.hpp"
#include "vring/layout.hpp"

namespace vireo::device::net {

namespace {

struct NetCli {
  NetOptions net;
  std::string port = "loopback";
};

struct NetOptionsCli {
  Option& queues;
  Option& qsize;
  Option& port;
  Option& mac;
  Option& mtu;
};

// Checks the device options; returns an exit code when the command must stop here.
std::optional<int> check(const NetOptionsCli& o, NetCli& cli) {
  auto fail = [](const std::string& why) {
    std::fprintf(stderr, "vireo net: %s\n", why.c_str());
    return std::optional<int>(2);
  };
  if (o.queues.as_u64() == 0 || o.queues.as_u64() > kMqPairsMax)
    return fail("--queues must be between 1 and 32768 queue pairs");
  if (o.qsize.as_u64() == 0 || o.qsize.as_u64() > vring::kMaxQueueSize)
    return fail("--queue-size must be between 1 and 32768");
  if (o.mtu.as_u64() < 68 || o.mtu.as_u64() > 65535 - kEthHeaderLen - kVlanLen)
    return fail("--mtu must be between 68 and 65517");
  const std::optional<MacAddr> m = parse_mac(o.mac.value);
  if (!m) return fail("--mac '" + o.mac.value + "' is not of the form 52:54:00:12:34:56");
  cli.net.pairs = static_cast<std::uint16_t>(o.queues.as_u64());
  cli.net.max_queue_size = static_cast<std::uint16_t>(o.qsize.as_u64());
  cli.net.mac = *m;
  cli.net.mtu = static_cast<std::uint16_t>(o.mtu.as_u64());
  cli.port = o.port.value;
  return std::nullopt;
}

// peer:PATH: a second device on PATH, served on its own thread; the two forward to each other.
int run_peers(const NetCli& cli, const DaemonOptions& daemon) {
  NetBackend a(cli.net, nullptr), b(cli.net, nullptr);
  if (Status s = connect_peers(a, b); !s) {
    VIREO_LOG_ERROR("peer port: %s", s.error().c_str());
    return 1;
  }
  DaemonOptions second = daemon;
  second.socket_path = cli.port.substr(5);
  second.listen_fd = -1;
  std::atomic<bool> stop{false};
  int second_rc = 0;
  std::thread t([&] { second_rc = run_daemon(b, second, &stop); });
  const int rc = run_daemon(a, daemon);
  stop.store(true);
  t.join();
  return rc != 0 ? rc : second_rc;
}

}  // namespace

int net_main(int argc, char** argv, int first) {
  if (auto rc = print_capabilities_if_asked(argc, argv, first, 1 /* §5.1.1 network card */)) return *rc;
  OptionParser o("vireo net --socket-path PATH [options]",
                 "Serve a virtio-net device (virtio §5.1) over vhost-user. Queue pair i is "
                 "receiveq 2i / transmitq 2i+1; with --queues > 1 the device offers MQ and a "
                 "control queue.");
  BackendCli backend_cli(o);  // --socket-path, --fd, --client, --busy-poll, --stats, --workers, ...
  const NetOptionsCli opts{
      o.add_u64("queues", 1, "queue pairs (max_virtqueue_pairs)"),
      o.add_u64("queue-size", 1024, "largest queue size the front-end may choose"),
      o.add("port", "loopback", "loopback | sink | source[:LEN] | responder=IP | tap:IFNAME | peer:PATH | "
                               "dpdk:DEVARGS (a DPDK ethdev, e.g. dpdk:net_ring0 or dpdk:0000:03:00.0; "
                               "implies --busy-poll)"),
      o.add("mac", "52:54:00:12:34:56", "device MAC address (config space)"),
      o.add_u64("mtu", 1500, "device MTU (config space, VIRTIO_NET_F_MTU)")};
  if (auto rc = o.parse(argc, argv, first)) return *rc;
  if (auto rc = backend_cli.finish()) return *rc;
  NetCli cli;
  if (auto rc = check(opts, cli)) return *rc;
  NetBackend dev(cli.net, nullptr);
  const DaemonOptions& daemon = backend_cli.options();
  if (cli.port.starts_with("peer:")) {
    if (cli.port.size() == 5 || cli.port.substr(5) == daemon.socket_path) {
      std::fprintf(stderr, "vireo net: peer:PATH needs a second socket path, different from "
                           "--socket-path\n");
      return 2;
    }
    return run_peers(cli, daemon);
  }
  DaemonOptions serving = daemon;
  const bool dpdk = cli.port.starts_with("dpdk:");
  if (dpdk && !serving.busy_poll) {
    VIREO_LOG_INFO("--port dpdk: an ethdev has no fd to wait on, so the workers busy-poll");
    serving.busy_poll = true;
  }
  auto port = dpdk ? make_dpdk_port(std::string_view(cli.port).substr(5)) : make_port(cli.port);
  if (!port) {
    std::fprintf(stderr, "vireo net: --port: %s\n", port.error().c_str());
    return 2;
  }
  if (Status s = dev.set_port(std::move(*port)); !s) {
    VIREO_LOG_ERROR("port %s: %s", cli.port.c_str(), s.error().c_str());
    return 1;
  }
  return run_daemon(dev, serving);
}

}  // namespace vireo::device::net
