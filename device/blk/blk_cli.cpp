// `vireo blk`: serves one image as a vhost-user-blk back-end (run_daemon, device/daemon.hpp).
#include <cstdio>

#include "base/log.hpp"
#include "base/options.hpp"
#include "device/blk/blk_backend.hpp"
#include "device/cli_options.hpp"
#include "device/daemon.hpp"

namespace vireo::device::blk {

int blk_main(int argc, char** argv, int first) {
  // vhost-user.rst "vhost-user-blk": --blk-file and --read-only are the conventional spellings.
  if (auto rc = print_capabilities_if_asked(argc, argv, first, kDeviceId, {"read-only", "blk-file"}))
    return *rc;
  OptionParser o("vireo blk --socket-path PATH --image FILE [options]",
                 "virtio-blk vhost-user back-end on io_uring, serving a file or block device.");
  BackendCli cli(o);  // --socket-path, --fd, --client, --busy-poll, --stats, --workers, ...
  auto& image = o.add("image", "", "regular file or block device to serve (required)");
  auto& blk_file = o.add("blk-file", "", "same as --image (vhost-user.rst spelling)");
  auto& readonly = o.flag("readonly", "offer VIRTIO_BLK_F_RO and refuse every write");
  auto& read_only = o.flag("read-only", "same as --readonly (vhost-user.rst spelling)");
  auto& queues = o.add_u64("queues", 1, "request queues (VIRTIO_BLK_F_MQ when > 1)");
  auto& queue_size = o.add_u64("queue-size", 1024, "largest virtqueue size the front-end may set");
  auto& serial = o.add("serial", "vireo-blk", "device ID returned by GET_ID (at most 20 bytes)");
  if (auto rc = o.parse(argc, argv, first)) return *rc;
  if (auto rc = cli.finish()) return *rc;
  if (image.set && blk_file.set) {
    std::fprintf(stderr, "vireo blk: give --image or --blk-file, not both\n");
    return 2;
  }
  if (blk_file.set) image.value = blk_file.value;
  if (image.value.empty()) {
    std::fprintf(stderr, "vireo blk: --image FILE (or --blk-file FILE) is required (see --help)\n");
    return 2;
  }
  if (queues.as_u64() == 0 || queues.as_u64() > 256 || queue_size.as_u64() == 0 ||
      queue_size.as_u64() > 32768) {
    std::fprintf(stderr, "vireo blk: --queues must be 1..256, --queue-size 1..32768\n");
    return 2;
  }

  BlkOptions opt;
  opt.image = image.value;
  opt.read_only = readonly.set || read_only.set;
  opt.num_queues = static_cast<std::uint16_t>(queues.as_u64());
  opt.max_queue_size = static_cast<std::uint16_t>(queue_size.as_u64());
  opt.serial = serial.value;
  auto dev = BlkBackend::create(opt);
  if (!dev) {
    VIREO_LOG_ERROR("%s", dev.error().c_str());
    return 1;
  }
  VIREO_LOG_INFO("blk: %s, %llu sectors, block size %u, %s I/O, %u queue(s)%s",
                 opt.image.c_str(),
                 static_cast<unsigned long long>((*dev)->config().capacity),
                 (*dev)->config().blk_size,
                 (*dev)->image().has_direct() ? "O_DIRECT" : "buffered", opt.num_queues,
                 opt.read_only ? ", read-only" : "");

  return run_daemon(**dev, cli.options());
}

}  // namespace vireo::device::blk
