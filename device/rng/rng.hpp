// virtio-rng (virtio device id 4, §5.4) as a vhost-user back-end: one queue; every buffer the
// driver makes available is device-writable and gets filled with bytes from getrandom(2).
//
// This device is the example of how to write a device on Vireo: see docs/WRITING_A_DEVICE.md.
#pragma once

#include <atomic>
#include <cstdint>

#include "device/backend.hpp"

namespace vireo::device::rng {

class RngBackend final : public Backend {
 public:
  DeviceInfo info() const override;
  void process(VirtQueue& q) override;

  // Any thread (relaxed: a statistic, not a synchronization point).
  std::uint64_t bytes_served() const { return bytes_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> bytes_{0};  // written by the worker thread only
};

// vireo rng --socket-path PATH [--server|--client]
int rng_main(int argc, char** argv, int first);

}  // namespace vireo::device::rng
