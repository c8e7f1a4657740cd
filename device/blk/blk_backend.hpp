// virtio-blk (virtio device id 2, §5.2) as a vhost-user back-end, on io_uring: one ring per
// request queue (MQ), requests IN, OUT, FLUSH, GET_ID, DISCARD and WRITE_ZEROES against a regular
// file or a block device, completions asynchronous and out of order.
//
//   BlkOptions opt;  opt.image = "/var/lib/disk.img";  opt.num_queues = 4;
//   auto dev = BlkBackend::create(opt);
//   if (!dev) { VIREO_LOG_ERROR("%s", dev.error().c_str()); return 1; }
//   return device::run_daemon(**dev, daemon_options);
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/expected.hpp"
#include "device/backend.hpp"
#include "device/blk/blk_image.hpp"
#include "device/blk/blk_queue.hpp"
#include "proto/virtio_blk.hpp"

namespace vireo::device::blk {

struct BlkOptions {
  std::string image;                  // --image: regular file or block device
  bool read_only = false;             // --readonly: offer VIRTIO_BLK_F_RO, refuse writes
  std::uint16_t num_queues = 1;       // --queues: request queues (VIRTIO_BLK_F_MQ when > 1)
  std::uint16_t max_queue_size = 1024;  // --queue-size: largest ring the front-end may set
  std::string serial = "vireo-blk";   // --serial: GET_ID answer (at most 20 bytes)
  std::uint32_t seg_max = 254;        // data segments per request offered to the driver
  bool try_direct = true;             // O_DIRECT when the file system allows it
  std::uint32_t max_iov_per_op = 0;   // iovecs per readv/writev; 0 = IOV_MAX (tests lower it)
  std::uint32_t max_discard_sectors = 1u << 22;   // 2 GiB per segment
  std::uint32_t max_discard_seg = 16;
  std::uint32_t max_write_zeroes_sectors = 1u << 22;
  std::uint32_t max_write_zeroes_seg = 16;
};

class BlkBackend final : public Backend {
 public:
  static Expected<std::unique_ptr<BlkBackend>, std::string> create(const BlkOptions& options);

  DeviceInfo info() const override;
  void read_config(std::uint32_t offset, std::span<std::byte> out) const override;
  Status set_features(std::uint64_t features) override;

  void queue_started(VirtQueue& q) override;
  void queue_stopping(VirtQueue& q) override;
  void process(VirtQueue& q) override;
  int completion_fd(VirtQueue& q) override;
  bool completion_fd_is_event_counter(VirtQueue& q) override;
  void complete(VirtQueue& q) override;

  const Config& config() const { return config_; }
  const BlkImage& image() const { return image_; }
  // Requests of queue `index` whose I/O has not completed yet.
  std::uint32_t outstanding(std::uint16_t index) const;

 private:
  BlkBackend() = default;
  BlkQueue* queue(const VirtQueue& q) const;

  BlkOptions options_;
  BlkImage image_;
  BlkShared shared_;
  Config config_{};
  std::uint64_t device_features_ = 0;
  std::vector<std::unique_ptr<BlkQueue>> queues_;
};

// vireo blk --socket-path PATH --image FILE [--readonly] [--queues N] [--queue-size N]
//           [--serial ID] [--workers N] [--busy-poll]   (device/blk/blk_cli.cpp)
int blk_main(int argc, char** argv, int first);

}  // namespace vireo::device::blk
