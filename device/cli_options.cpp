// BackendCli: the shared back-end command-line options.
#include "device/cli_options.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace vireo::device {

BackendCli::BackendCli(OptionParser& p)
    : socket_path_(p.add("socket-path", "", "vhost-user Unix socket to listen on (or connect to with --client); "
                                            "incompatible with --fd")),
      fd_(p.add("fd", "", "an already listening socket fd to accept front-ends on (socket activation); "
                          "incompatible with --socket-path")),
      server_(p.flag("server", "listen on --socket-path; what a back-end does unless --client is given")),
      client_(p.flag("client", "connect to --socket-path, retrying until the front-end listens")),
      busy_poll_(p.flag("busy-poll", "workers spin on the rings with driver kicks suppressed")),
      stats_(p.add("stats", "0", "print a line per queue (packets or requests, bytes, kicks, calls) every "
                                 "SECONDS; 0: only on SIGUSR1")),
      workers_(p.add_u64("workers", 1, "data-plane threads; queue i runs on worker i % N")),
      print_capabilities_(p.flag("print-capabilities",
                                 "print the back-end capabilities as JSON (vhost-user.json) and exit")) {}

const char* backend_type(std::uint32_t device_id) {
  // virtio device ids (virtio spec §5 "Device Types") -> vhost-user.json VHostUserBackendType.
  switch (device_id) {
    case 1: return "net";
    case 2: return "block";
    case 3: return "console";
    case 4: return "rng";
    case 5: return "balloon";
    case 7: return "rpmsg";
    case 8: return "scsi";
    case 9: return "9p";
    case 11: return "rproc-serial";
    case 12: return "caif";
    case 16: return "gpu";
    case 18: return "input";
    case 19: return "vsock";
    case 20: return "crypto";
    case 26: return "fs";
    default: return nullptr;
  }
}

std::string capabilities_json(const char* type, std::initializer_list<std::string_view> features) {
  std::string out = std::string("{\n  \"type\": \"") + type + "\"";
  if (features.size() != 0) {
    out += ",\n  \"features\": [";
    const char* sep = "\n    \"";
    for (std::string_view f : features) {
      out += sep;
      out += f;
      out += "\"";
      sep = ",\n    \"";
    }
    out += "\n  ]";
  }
  return out + "\n}\n";
}

std::optional<int> print_capabilities_if_asked(int argc, char** argv, int first, std::uint32_t device_id,
                                               std::initializer_list<std::string_view> features) {
  bool asked = false;
  for (int i = first; i < argc; ++i) asked = asked || std::strcmp(argv[i], "--print-capabilities") == 0;
  if (!asked) return std::nullopt;
  const char* type = backend_type(device_id);
  if (type == nullptr) {
    std::fprintf(stderr, "--print-capabilities: virtio device id %u has no type in QEMU's "
                         "vhost-user.json schema\n", device_id);
    return 1;
  }
  std::fputs(capabilities_json(type, features).c_str(), stdout);
  return 0;
}

std::optional<int> BackendCli::finish() {
  auto fail = [](const char* why) {
    std::fprintf(stderr, "%s (see --help)\n", why);
    return std::optional<int>(2);
  };
  if (server_.set && client_.set) return fail("--server and --client are mutually exclusive");
  if (socket_path_.set && fd_.set) return fail("--socket-path and --fd are mutually exclusive");
  options_.socket_path = socket_path_.value;
  options_.client = client_.set;
  options_.busy_poll = busy_poll_.set;
  options_.workers = static_cast<unsigned>(std::max<std::uint64_t>(1, workers_.as_u64()));
  if (fd_.set) {
    std::uint64_t fd = 0;
    if (!parse_u64(fd_.value, fd) || fd > 1'000'000) {
      std::fprintf(stderr, "--fd: '%s' is not a file descriptor number\n", fd_.value.c_str());
      return 2;
    }
    // Fail now, not at the first accept: the fd must be an open socket in the listening state.
    int listening = 0;
    socklen_t len = sizeof listening;
    if (::getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
      std::fprintf(stderr, "--fd %s: %s\n", fd_.value.c_str(),
                   errno == EBADF ? "no such open file descriptor"
                   : errno == ENOTSOCK ? "not a socket"
                   : "not a listening socket (listen(2) it before handing it over)");
      return 2;
    }
    options_.listen_fd = static_cast<int>(fd);
  }
  if (options_.listen_fd < 0 && options_.socket_path.empty()) return fail("give --socket-path PATH or --fd N");
  if (options_.client && options_.listen_fd >= 0) return fail("--client needs --socket-path, not --fd");
  char* end = nullptr;
  options_.stats_interval = std::strtod(stats_.value.c_str(), &end);
  if (stats_.value.empty() || *end != '\0' || !(options_.stats_interval >= 0))
    return fail("--stats: SECONDS must be a number >= 0");
  return std::nullopt;
}

}  // namespace vireo::device
