#include "device/rng/rng.hpp"

#include <sys/random.h>

#include "device/virt_queue.hpp"

namespace vireo::device::rng {

DeviceInfo RngBackend::info() const {
  DeviceInfo d;
  d.device_id = 4;          // §5.4.1: entropy device
  d.name = "rng";
  d.num_queues = 1;         // §5.4.2: requestq only
  d.max_queue_size = 1024;
  return d;
}

namespace {

// Fills every writable segment from getrandom(2); returns the bytes written.
std::uint32_t fill(const vring::Chain& chain) {
  std::uint32_t written = 0;
  for (const vring::Segment& s : chain.writable()) {
    std::size_t done = 0;
    while (done < s.len) {
      ssize_t n = ::getrandom(s.data + done, s.len - done, 0);
      if (n <= 0) return written + static_cast<std::uint32_t>(done);  // EINTR or no entropy: short
      done += static_cast<std::size_t>(n);
    }
    written += s.len;
  }
  return written;
}

}  // namespace

void RngBackend::process(VirtQueue& q) {
  if (!q.enabled()) return;  // started but disabled: no side effects
  vring::Chain& chain = q.scratch_chain();
  q.visit([&](auto& ring) {
    for (;;) {
      auto popped = ring.pop(chain);
      if (!popped) return q.report_broken(popped.error());
      if (!*popped) break;
      // §5.4.6.1: the device MUST only write to device-writable buffers; readable ones are ignored.
      std::uint32_t n = fill(chain);
      ring.push(chain, n);
      bytes_.store(bytes_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
      q.stats().add(q.stats().chains, 1);
      q.stats().add(q.stats().bytes, n);
    }
    ring.flush();
  });
  q.notify();
}

}  // namespace vireo::device::rng
