// A kick fd that epoll refuses (a regular file: EPERM) must not leave its queue served by nothing
// while the worker spins: the worker logs it and polls that queue.
#include <atomic>
#include <chrono>
#include <thread>

#include "device/virt_queue.hpp"
#include "device/worker.hpp"
#include "hostile_rig.hpp"
#include "proto/sys/memfd.hpp"

namespace vireo::test::hostile {
namespace {

class CountingBackend final : public device::Backend {
 public:
  device::DeviceInfo info() const override { return {}; }
  void process(device::VirtQueue&) override { calls.fetch_add(1, std::memory_order_relaxed); }
  std::atomic<int> calls{0};
};

TEST(HostileWorker, KickFdEpollRefusesIsPolled) {
  LogLines log;
  CountingBackend backend;
  auto file = proto::MemFd::create("vireo-test-kick", 4096);
  ASSERT_TRUE(file);
  device::VirtQueue q(0, vring::make_device_queue<vring::RegionTable>(0), false, -1, -1, nullptr,
                      nullptr, 16);
  {
    device::Worker w(backend, /*busy_poll=*/false, 0);
    w.pause();
    w.set_items({device::WorkItem{&q, file->fd(), false}});
    w.resume();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (backend.calls.load() == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_GT(backend.calls.load(), 0) << "the queue is served by nothing";
  }
  EXPECT_TRUE(log.wait_for("queue 0: its kick fd cannot be watched")) << log.all();
}

}  // namespace
}  // namespace vireo::test::hostile
