// The options every back-end command takes, declared once (vhost-user.rst "Backend program
// conventions": --socket-path, --fd, --print-capabilities), so `vireo rng`, `vireo net` and
// `vireo blk` accept the same spelling.
//
//   if (auto rc = print_capabilities_if_asked(argc, argv, first, 4)) return *rc;  // before parsing
//   OptionParser p("vireo rng --socket-path PATH [options]", "virtio-rng back-end");
//   BackendCli cli(p);                       // adds --socket-path, --fd, --client, ...
//   if (auto rc = p.parse(argc, argv, first)) return *rc;
//   if (auto rc = cli.finish()) return *rc;  // option conflicts
//   return run_daemon(dev, cli.options());
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "base/options.hpp"
#include "device/daemon.hpp"

namespace vireo::device {

class BackendCli {
 public:
  explicit BackendCli(OptionParser& parser);
  // After parse(): reports conflicting or malformed options (exit 2); nullopt to go on and serve.
  std::optional<int> finish();
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

// The vhost-user.json VHostUserBackendType of a virtio device id ("net", "block", "rng", ...), or
// nullptr when the schema has none for it.
const char* backend_type(std::uint32_t device_id);

// The --print-capabilities JSON (vhost-user.json @VHostUserBackendCapabilities):
// {"type": "block", "features": ["read-only", "blk-file"]}; "features" only when non-empty.
std::string capabilities_json(const char* type, std::initializer_list<std::string_view> features = {});

// rst "Backend program conventions": with --print-capabilities anywhere in argv[first..), prints
// the capabilities and returns 0, ignoring every other option (so it works before the options
// a device requires are checked). Returns 1 (with a message) if the device id has no
// VHostUserBackendType; nullopt when --print-capabilities was not given.
std::optional<int> print_capabilities_if_asked(int argc, char** argv, int first,
                                               std::uint32_t device_id,
                                               std::initializer_list<std::string_view> features = {});

}  // namespace vireo::device
