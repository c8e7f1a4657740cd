// BackendCli: the shared back-end command-line options.
#include "device/cli_options.hpp"

#include <cstdio>

namespace vireo::device {

BackendCli::BackendCli(OptionParser& p)
    : socket_path_(p.add("socket-path", "", "vhost-user Unix socket to listen on (or connect to with --client)")),
      fd_(p.add("fd", "", "an already listening socket fd to accept front-ends on (socket activation)")),
      server_(p.flag("server", "listen on --socket-path (the default)")),
      client_(p.flag("client", "connect to --socket-path, retrying until the front-end listens")),
      busy_poll_(p.flag("busy-poll", "workers spin on the rings with driver kicks suppressed")),
      stats_(p.add("stats", "0", "print per-queue counters (chains, bytes, kicks, calls) every SECONDS")),
      workers_(p.add_u64("workers", 1, "data-plane threads; queue i runs on worker i % N")),
      print_capabilities_(p.flag("print-capabilities", "print the back-end capabilities as JSON and exit")) {}

std::string capabilities_json(const Backend& backend) {
  return std::string("{\n  \"type\": \"") + backend.info().name + "\"\n}\n";
}

std::optional<int> BackendCli::finish(const Backend& backend) {
  if (print_capabilities_.set) {
    std::fputs(capabilities_json(backend).c_str(), stdout);
    return 0;
  }
  if (server_.set && client_.set) {
    std::fputs("--server and --client are mutually exclusive\n", stderr);
    return 2;
  }
  options_.socket_path = socket_path_.value;
  options_.client = client_.set;
  options_.busy_poll = busy_poll_.set;
  options_.workers = static_cast<unsigned>(std::max<std::uint64_t>(1, workers_.as_u64()));
  options_.stats_interval = stats_.as_double();
  if (fd_.set) {
    std::uint64_t fd = 0;
    if (!parse_u64(fd_.value, fd) || fd > 1'000'000) {
      std::fprintf(stderr, "--fd: '%s' is not a file descriptor number\n", fd_.value.c_str());
      return 2;
    }
    options_.listen_fd = static_cast<int>(fd);
  }
  if (options_.listen_fd < 0 && options_.socket_path.empty()) {
    std::fputs("give --socket-path PATH or --fd N (see --help)\n", stderr);
    return 2;
  }
  if (options_.client && options_.listen_fd >= 0) {
    std::fputs("--client needs --socket-path, not --fd\n", stderr);
    return 2;
  }
  if (options_.stats_interval < 0) {
    std::fputs("--stats: SECONDS must be >= 0\n", stderr);
    return 2;
  }
  return std::nullopt;
}

}  // namespace vireo::device
