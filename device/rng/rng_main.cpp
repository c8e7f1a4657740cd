// vireo rng: the virtio-rng back-end as a command.
#include "device/cli_options.hpp"
#include "device/daemon.hpp"
#include "device/rng/rng.hpp"

namespace vireo::device::rng {

int rng_main(int argc, char** argv, int first) {
  if (auto rc = print_capabilities_if_asked(argc, argv, first, RngBackend().info().device_id)) return *rc;
  OptionParser p("vireo rng --socket-path PATH [--client] [options]",
                 "virtio-rng (entropy, virtio id 4) vhost-user back-end: fills every buffer with getrandom(2).");
  BackendCli cli(p);
  if (auto rc = p.parse(argc, argv, first)) return *rc;
  if (auto rc = cli.finish()) return *rc;
  RngBackend dev;
  return run_daemon(dev, cli.options());
}

}  // namespace vireo::device::rng
