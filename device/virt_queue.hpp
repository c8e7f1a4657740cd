// A device-side virtqueue as a Backend sees it: the ring (split or packed, chosen once per
// connection), its call/err eventfds, statistics, the memory table the ring reads through, and
// inflight tracking. Owned by the Session, used on exactly one worker thread.
//
//   q.visit([&](auto& ring) {                 // one dispatch per burst, no virtual calls below
//     std::size_t n = ring.pop_burst(chains).value_or(0);
//     for (std::size_t i = 0; i < n; ++i) ring.push(chains[i], serve(chains[i]));
//     ring.flush();
//   });
//   q.notify();                               // calls the driver if its suppression says so
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <variant>
#include <vector>

#include "vring/chain.hpp"
#include "vring/device_queue.hpp"
#include "vring/memory.hpp"

namespace vireo::device {

class MemoryTable;      // device/memory_table.hpp: RegionTable + the mappings it points into
class InflightQueue;    // device/inflight.hpp: vhost-user inflight region of one queue

using Ring = vring::DeviceQueue<vring::RegionTable>;

// Counters for --stats and the notification-cost benchmark. Written by the worker thread only;
// read from other threads with relaxed loads.
struct QueueStats {
  std::atomic<std::uint64_t> chains{0};  // buffers completed (pushed)
  std::atomic<std::uint64_t> bytes{0};   // payload bytes moved
  std::atomic<std::uint64_t> kicks{0};   // kick eventfd wake-ups
  std::atomic<std::uint64_t> calls{0};   // call eventfd signals sent
  void add(std::atomic<std::uint64_t>& c, std::uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

class VirtQueue {
 public:
  std::uint16_t index() const { return index_; }
  // Started but disabled (SET_VRING_ENABLE 0): the device must not produce side effects.
  bool enabled() const { return enabled_; }
  bool event_idx() const { return event_idx_; }

  template <class F>
  decltype(auto) visit(F&& f) {
    return std::visit(std::forward<F>(f), ring_);
  }

  // Signals the call eventfd if the ring's notification suppression asks for it (§2.7.10, §2.8.10).
  void notify();
  // Signals the call eventfd unconditionally (after reconnect, "in case of I/O hang").
  void force_notify();
  // Reports a broken ring on the err eventfd (SET_VRING_ERR) and logs the reason once.
  void report_broken(vring::Errc why);

  QueueStats& stats() { return stats_; }
  const std::shared_ptr<const MemoryTable>& memory() const { return memory_; }
  // Non-null when the front-end shared an inflight region (INFLIGHT_SHMFD).
  InflightQueue* inflight() { return inflight_; }
  // A Chain sized for this queue, for devices that serve one chain at a time.
  vring::Chain& scratch_chain() { return scratch_; }

  // ---- framework side (Session / Worker) ----
  VirtQueue(std::uint16_t index, Ring ring, bool event_idx, int call_fd, int err_fd,
            std::shared_ptr<const MemoryTable> memory, InflightQueue* inflight,
            std::uint32_t max_segments);
  void set_enabled(bool on) { enabled_ = on; }
  void set_call_fd(int fd) { call_fd_ = fd; }
  void set_err_fd(int fd) { err_fd_ = fd; }
  void set_inflight(InflightQueue* inflight) { inflight_ = inflight; }
  void set_memory(std::shared_ptr<const MemoryTable> memory) { memory_ = std::move(memory); }
  Ring& ring() { return ring_; }

 private:
  std::uint16_t index_;
  Ring ring_;
  bool event_idx_;
  bool enabled_ = false;
  bool reported_broken_ = false;
  int call_fd_;  // not owned: the Session's vring state owns the EventFd
  int err_fd_;   // not owned; -1 if none
  std::shared_ptr<const MemoryTable> memory_;
  InflightQueue* inflight_;
  vring::Chain scratch_;
  QueueStats stats_;
};

}  // namespace vireo::device
