// The interface a virtio device implements to run as a vhost-user back-end.
//
// A Backend never sees a vhost-user message: the Session (device/session.hpp) owns the protocol
// and calls these hooks. Data-path hooks run on the queue's worker thread; everything else on the
// control thread, never concurrently with the data path of the same queue.
//
//   class RngBackend final : public device::Backend {
//     DeviceInfo info() const override { return {.device_id = 4, .name = "rng", .num_queues = 1}; }
//     void process(VirtQueue& q) override {
//       q.visit([&](auto& ring) {
//         vring::Chain& c = q.scratch_chain();
//         while (ring.pop(c).value_or(false)) { fill(c); ring.push(c, c.writable_bytes()); }
//         ring.flush();
//       });
//       q.notify();
//     }
//   };
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "base/expected.hpp"

namespace vireo::device {

class VirtQueue;
class BackendChannel;

// Control-path errors carry a sentence for the log ("queue 3 does not exist; closing connection").
using Status = vireo::Expected<void, std::string>;
inline vireo::Unexpected<std::string> error(std::string message) {
  return vireo::Unexpected<std::string>(std::move(message));
}

struct DeviceInfo {
  std::uint32_t device_id = 0;         // virtio device id (§5): net 1, blk 2, rng 4, ...
  const char* name = "";               // short name for logs and --print-capabilities
  std::uint16_t num_queues = 1;        // queues the device supports (GET_QUEUE_NUM, SET_VRING_*)
  std::uint16_t max_queue_size = 1024; // largest SET_VRING_NUM accepted
  // Device-specific feature bits the device offers (§5.x); the Session adds the transport bits it
  // supports (VERSION_1, INDIRECT_DESC, EVENT_IDX, RING_PACKED, PROTOCOL_FEATURES, LOG_ALL).
  std::uint64_t device_features = 0;
  // Transport bits this device does NOT want offered even though the framework supports them.
  std::uint64_t masked_features = 0;
  // Extra vhost-user protocol features the device needs (e.g. CONFIG for devices with config
  // space, INFLIGHT_SHMFD for devices that complete out of order).
  std::uint64_t protocol_features = 0;
  std::uint32_t config_size = 0;       // bytes of device config space (GET/SET_CONFIG)
  // True if the device completes buffers in the order it pops them, on every queue. The Session
  // then offers VIRTIO_F_IN_ORDER (§2.7.9 / §2.8.23), and reconnect resumes from the used index
  // without inflight tracking. A device that may complete out of order (blk: io_uring) says false.
  bool in_order = true;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // ---- identity (control thread) ----
  virtual DeviceInfo info() const = 0;

  // ---- configuration (control thread) ----
  // Copies config space bytes [offset, offset + out.size()) into out. The Session has already
  // checked the range against config_size.
  virtual void read_config(std::uint32_t offset, std::span<std::byte> out) const;
  // A driver write to config space (§4.x); default: the device has no writable fields.
  virtual Status write_config(std::uint32_t offset, std::span<const std::byte> in);
  // The negotiated features (SET_FEATURES). Return an error to refuse a combination.
  virtual Status set_features(std::uint64_t features);
  // Disconnect, RESET_OWNER or RESET_DEVICE: forget per-connection state.
  virtual void reset() {}

  // ---- data path (the queue's worker thread) ----
  // The queue became runnable (started and enabled) / is about to stop (GET_VRING_BASE,
  // disconnect, memory-table change). queue_stopping must leave no request in flight: wait for
  // outstanding I/O and push it, so the ring state it returns is complete.
  virtual void queue_started(VirtQueue& q);
  virtual void queue_stopping(VirtQueue& q);
  // Drain available buffers: pop, serve, push, flush, notify. Called on a kick, or repeatedly in
  // busy-poll mode with driver notifications suppressed.
  virtual void process(VirtQueue& q) = 0;
  // A device with asynchronous completions (io_uring) exposes a pollable fd per queue; the
  // worker watches it and calls complete() when it is readable. A polled queue gets only
  // process() on each pass (complete() when its fd is found readable, at most every
  // Worker::kBackstopPasses passes), so process() must also pick up completions that are ready.
  virtual int completion_fd(VirtQueue& q);
  // True: completion_fd(q) is an eventfd written once per completion event (io_uring's registered
  // eventfd is). The worker then watches it edge-triggered, every write being a new edge, and
  // complete() need not read it: one syscall less per completion. False (the default): it is
  // watched level-triggered and complete() must consume whatever made it readable.
  virtual bool completion_fd_is_event_counter(VirtQueue& q);
  virtual void complete(VirtQueue& q);

  // ---- back-end channel (any thread) ----
  // Asks the front-end to re-read config space (BACKEND_CONFIG_CHANGE_MSG, rst "Back-end message
  // types"): needs the CONFIG and BACKEND_REQ protocol features and a connected front-end.
  Status notify_config_change();

  // ---- framework side (run_daemon) ----
  void set_channel(BackendChannel* channel) { channel_ = channel; }

 private:
  BackendChannel* channel_ = nullptr;  // owned by run_daemon; set before any worker starts
};

}  // namespace vireo::device
