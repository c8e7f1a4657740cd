// virtio-rng (virtio device id 4, §5.4) as a vhost-user back-end: one queue; every buffer the
// driver makes available is device-writable and gets filled with bytes from getrandom(2).
//
// This device is the example of how to write a device on Vireo: see docs/WRITING_A_DEVICE.md.
#pragma once

#include "device/backend.hpp"

namespace vireo::device::rng {

class RngBackend final : public Backend {
 public:
  DeviceInfo info() const override;
  void process(VirtQueue& q) override;

  std::uint64_t bytes_served() const { return bytes_; }

 private:
  std::uint64_t bytes_ = 0;  // worker thread only
};

// vireo rng --socket-path PATH [--server|--client]
int rng_main(int argc, char** argv, int first);

}  // namespace vireo::device::rng
