// The options every back-end command takes, declared once (vhost-user.rst "Back-end program
// conventions": --socket-path, --fd, --print-capabilities), so `vireo rng`, `vireo net` and
// `vireo blk` accept the same spelling.
//
//   OptionParser p("vireo rng --socket-path PATH [options]", "virtio-rng back-end");
//   BackendCli cli(p);                       // adds --socket-path, --fd, --client, ...
//   if (auto rc = p.parse(argc, argv, first)) return *rc;
//   if (auto rc = cli.finish(dev)) return *rc;   // --print-capabilities, option conflicts
//   return run_daemon(dev, cli.options());
#pragma once

#include <optional>
#include <string>

#include "base/options.hpp"
#include "device/backend.hpp"
#include "device/daemon.hpp"

namespace vireo::device {

class BackendCli {
 public:
  explicit BackendCli(OptionParser& parser);
  // After parse(): prints capabilities (exit 0) or reports conflicting options (exit 2);
  // nullopt to go on and serve.
  std::optional<int> finish(const Backend& backend);
  const DaemonOptions& options() const { return options_; }

 private:
  Option& socket_path_;
  Option& fd_;
  Option& server_;
  Option& client_;
  Option& busy_poll_;
  Option& stats_;
  Option& workers_;
  Option& print_capabilities_;
  DaemonOptions options_;
};

// {"type": "<name>"} per QEMU docs/interop/vhost-user.json.
std::string capabilities_json(const Backend& backend);

}  // namespace vireo::device
