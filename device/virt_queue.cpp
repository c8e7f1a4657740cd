#include "device/virt_queue.hpp"

#include <unistd.h>

#include <cstdint>

#include "base/log.hpp"

namespace vireo::device {

namespace {

// Adds 1 to an eventfd counter. EAGAIN means the counter is saturated: the peer is woken anyway.
void signal_eventfd(int fd) {
  if (fd < 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof one);
}

}  // namespace

VirtQueue::VirtQueue(std::uint16_t index, Ring ring, bool event_idx, int call_fd, int err_fd,
                     std::shared_ptr<const MemoryTable> memory, InflightQueue* inflight,
                     std::uint32_t max_segments)
    : index_(index), ring_(std::move(ring)), event_idx_(event_idx), call_fd_(call_fd),
      err_fd_(err_fd), memory_(std::move(memory)), inflight_(inflight), scratch_(max_segments) {}

void VirtQueue::notify() {
  const bool call = std::visit([](auto& r) { return r.needs_notification(); }, ring_);
  if (call) force_notify();
}

void VirtQueue::force_notify() {
  signal_eventfd(call_fd_);
  stats_.add(stats_.calls, 1);
}

void VirtQueue::report_broken(vring::Errc why) {
  if (reported_broken_) return;
  reported_broken_ = true;
  VIREO_LOG_ERROR("queue %u: %s; the queue is stopped until the front-end resets it", index_,
                  vring::to_string(why));
  signal_eventfd(err_fd_);
}

}  // namespace vireo::device
