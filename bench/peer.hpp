// The peers' side of the throughput benchmarks: what one measurement takes and returns, and the
// hooks through which Vireo's own measurements plug in.
//
// bench/ builds the DPDK peer (dpdk-testpmd: vhost PMD + virtio-user PMD on one forwarding core),
// the qemu-storage-daemon peer (vhost-user-blk export), the A/B alternation, and the report. The
// Vireo side lives in device/ and driver/, which bench_peer does not link; whoever links them sets
// the hooks below before running a command, e.g. in cli/main.cpp:
//
//   vireo::bench::hooks().vireo_loop = &run_vireo_loopback;      // Measured<LoopResult>(LoopParams)
//   vireo::bench::hooks().blk_driver = &run_vireo_blk_driver;    // any vhost-user-blk socket
//   vireo::bench::hooks().vireo_blk_backend = &start_vireo_blk;  // serves an image on a socket
//
// A command whose hook is empty says so and exits with kExitNotLinked.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/expected.hpp"

namespace vireo::bench {

// Exit status of a command whose Vireo side is not linked into this build.
inline constexpr int kExitNotLinked = 3;

// Why a measurement has no figure: `skipped` when the machine lacks something (testpmd,
// hugepages, qemu-storage-daemon): reported, not a failure; `failed` when it broke.
struct Problem {
  enum class Kind : std::uint8_t { skipped, failed };
  Kind kind = Kind::failed;
  std::string reason;  // words a user can act on

  static Problem skip(std::string why) { return {Kind::skipped, std::move(why)}; }
  static Problem fail(std::string why) { return {Kind::failed, std::move(why)}; }
  bool skipped() const { return kind == Kind::skipped; }
};

template <class T>
using Measured = Expected<T, Problem>;

// ---- net: one-core loopback, a driver (virtio front-end) and a device (vhost back-end) ----

struct LoopParams {
  bool packed = false;     // VIRTIO_F_RING_PACKED
  bool event_idx = true;   // VIRTIO_F_EVENT_IDX requested (DPDK's virtio-user never offers it)
  bool in_order = true;    // VIRTIO_F_IN_ORDER requested (Vireo's driver; virtio-user's in_order=)
  std::uint32_t len = 64;  // frame length in bytes
  double seconds = 2;      // measured interval, after the warm-up
  std::uint16_t queue_size = 256;
  // Vireo: true, both ends poll with notifications suppressed (what DPDK does); false, the device
  // serves a queue only when kicked and the driver re-enables calls whenever it finds its RX ring
  // empty (NAPI-style), so kicks and calls show what notification suppression costs.
  bool busy_poll = true;
};

struct LoopResult {
  std::string impl;        // "vireo" or "dpdk"
  bool packed = false;     // as negotiated
  bool event_idx = false;  // as negotiated
  std::uint32_t len = 0;
  double seconds = 0;                 // measured interval
  double pps_driver_to_device = 0;    // packets the driver sent that the device received
  double pps_device_to_driver = 0;    // packets the device sent that the driver received
  // Notification cost (Vireo only; DPDK's PMDs do not report it): eventfd writes per packet moved
  // (both directions), kicks by the driver and calls by the device. Negative: not measured.
  bool busy_poll = true;
  double kicks_per_packet = -1;
  double calls_per_packet = -1;
  std::uint64_t packets = 0;  // moved in the measured interval, both directions (0: not counted)
  bool in_order = false;   // as negotiated (Vireo; DPDK: as requested, which its vhost PMD offers)
};

using LoopMeasure = std::function<Measured<LoopResult>(const LoopParams&)>;

// ---- blk: a vhost-user-blk back-end serving an image, driven by a driver-side workload ----

struct BlkParams {
  std::string rw = "randread";  // randread | randwrite
  std::uint32_t iodepth = 1;
  std::uint32_t block_size = 4096;
  double seconds = 2;
};

struct BlkResult {
  std::string impl;  // the back-end measured: "vireo" or "qsd"
  std::string rw;
  std::uint32_t iodepth = 0;
  std::uint32_t block_size = 0;
  double seconds = 0;
  double iops = 0;
};

// Where a back-end serves: an image file (on tmpfs) exported on a vhost-user socket.
struct BlkTarget {
  std::string image;
  std::string socket;
  std::uint32_t num_queues = 1;
};

// A running back-end: serving from construction until destruction (which stops it cleanly).
class BlkBackend {
 public:
  virtual ~BlkBackend() = default;
  BlkBackend() = default;
  BlkBackend(const BlkBackend&) = delete;
  BlkBackend& operator=(const BlkBackend&) = delete;
};

using BlkBackendStart = std::function<Measured<std::unique_ptr<BlkBackend>>(const BlkTarget&)>;
// Runs the driver-side workload against any vhost-user-blk socket; fills everything but impl.
using BlkDrive = std::function<Measured<BlkResult>(const std::string& socket, const BlkParams&)>;

struct Hooks {
  LoopMeasure vireo_loop;             // Vireo's device + driver in one loop (vireo bench loopback)
  BlkBackendStart vireo_blk_backend;  // Vireo's blk back-end
  BlkDrive blk_driver;                // Vireo's blk driver (vireo bench blk)
};

// The process-wide hooks; empty until the build that links device/ and driver/ sets them.
Hooks& hooks();

}  // namespace vireo::bench
