// Worker: the quiesce handshake and the process_now requests it carries (device/worker.hpp).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "device/virt_queue.hpp"
#include "device/worker.hpp"
#include "proto/sys/event_fd.hpp"

namespace vireo::device {
namespace {

// Counts process() calls; never touches the queue's ring (it is not configured).
class CountingBackend final : public Backend {
 public:
  DeviceInfo info() const override { return {.device_id = 4, .name = "count", .num_queues = 1}; }
  void process(VirtQueue&) override { calls.fetch_add(1, std::memory_order_relaxed); }
  std::atomic<int> calls{0};
};

// Counts process() and complete() calls; its completion fd is an eventfd the test signals.
class CompletingBackend final : public Backend {
 public:
  DeviceInfo info() const override { return {.device_id = 4, .name = "complete", .num_queues = 1}; }
  void process(VirtQueue&) override { ++processed; }
  int completion_fd(VirtQueue&) override { return done.fd(); }
  void complete(VirtQueue&) override {
    ++completed;
    (void)done.drain();
  }
  proto::EventFd done = std::move(*proto::EventFd::create(true));
  std::uint32_t processed = 0, completed = 0;
};

// Its completion fd is an event counter (never read); counts complete() calls.
class EventCounterBackend final : public Backend {
 public:
  DeviceInfo info() const override { return {.device_id = 4, .name = "events", .num_queues = 1}; }
  void process(VirtQueue&) override {}
  int completion_fd(VirtQueue&) override { return done.fd(); }
  bool completion_fd_is_event_counter(VirtQueue&) override { return true; }
  void complete(VirtQueue&) override { completed.fetch_add(1, std::memory_order_relaxed); }
  proto::EventFd done = std::move(*proto::EventFd::create(true));
  std::atomic<int> completed{0};
};

std::unique_ptr<VirtQueue> unconfigured_queue() {
  return std::make_unique<VirtQueue>(0, vring::make_device_queue<vring::RegionTable>(0), false, -1, -1,
                                     nullptr, nullptr, 8);
}

bool wait_for(const std::atomic<int>& v, int want) {
  for (int i = 0; i < 2000 && v.load() < want; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return v.load() >= want;
}

// Hands the running worker one queue with kick fd `kick_fd`.
void serve(Worker& w, VirtQueue& q, int kick_fd) {
  w.pause();
  w.set_items({{&q, kick_fd, false}});
  w.resume();
}

// Signals `fd` three times: each signal must be served exactly once (`count` + 1), and nothing
// more while no new signal comes.
void expect_once_per_signal(const proto::EventFd& fd, const std::atomic<int>& count, const char* what) {
  for (int k = 1; k <= 3; ++k) {
    ASSERT_TRUE(fd.signal());
    ASSERT_TRUE(wait_for(count, k)) << what << " " << k << " was not served";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(count.load(), k) << what << " " << k << " was served more than once";
  }
}

// QEMU enables a ring (SET_VRING_ENABLE 1: process_now) and at once sends SET_VRING_CALL (a second
// quiesce with nothing to process). The second pause() may return before the parked thread took
// the first list; the first request must still reach the queue, or a kick that arrived while the
// ring was disabled is never served (the guest's first virtio-rng request hung this way).
TEST(Worker, BackToBackQuiesceKeepsProcessNow) {
  // The queue and its kick fd outlive the worker (declared first): its thread epolls them.
  CountingBackend backend;
  auto q = unconfigured_queue();
  auto kick = proto::EventFd::create(true);
  ASSERT_TRUE(kick);
  Worker w(backend, /*busy_poll=*/false, 0);
  ASSERT_TRUE(w.ok());
  for (int round = 1; round <= 200; ++round) {
    w.pause();
    w.set_items({{q.get(), kick->fd(), /*process_now=*/true}});
    w.resume();
    w.pause();
    w.set_items({{q.get(), kick->fd(), /*process_now=*/false}});
    w.resume();
    ASSERT_TRUE(wait_for(backend.calls, round)) << "round " << round << ": the process_now request was lost";
  }
}

// A kick runs process() and is counted. Kicks are edge-triggered and the eventfd counter is never
// read: each kick must still run process() exactly once (a level-triggered fd left unread would
// run it on every pass; a lost edge would leave the second kick unserved).
TEST(Worker, EachKickRunsProcessOnceWithoutReadingTheCounter) {
  CountingBackend backend;
  auto q = unconfigured_queue();
  auto kick = proto::EventFd::create(true);
  ASSERT_TRUE(kick);
  Worker w(backend, false, 0);
  ASSERT_TRUE(w.ok());
  serve(w, *q, kick->fd());
  expect_once_per_signal(*kick, backend.calls, "kick");
  EXPECT_EQ(q->stats().kicks.load(), 3u);
}

// An event-counter completion fd (io_uring's eventfd) is watched edge-triggered and never read:
// each completion event runs complete() exactly once (level-triggered and unread, it would run on
// every wake-up; a lost edge would leave the second event unserved).
TEST(Worker, EventCounterCompletionFdRunsCompleteOncePerEvent) {
  EventCounterBackend backend;
  auto q = unconfigured_queue();
  auto kick = proto::EventFd::create(true);  // never signalled: the worker sleeps in epoll_wait
  ASSERT_TRUE(kick);
  Worker w(backend, false, 0);
  ASSERT_TRUE(w.ok());
  serve(w, *q, kick->fd());
  expect_once_per_signal(backend.done, backend.completed, "completion event");
  auto unread = backend.done.drain();
  ASSERT_TRUE(unread);
  EXPECT_EQ(*unread, 3u) << "the worker read the event counter";
}

// Busy-poll: process() runs every pass (it reaps ready completions itself); complete() runs only
// when the completion fd is readable, found by the epoll backstop within kBackstopPasses passes.
// Reading the fd (or epolling it) on every pass cost a syscall per burst.
TEST(Worker, BusyPollReadsCompletionFdOnlyAsBackstop) {
  CompletingBackend backend;
  auto q = unconfigured_queue();
  Worker w(backend, /*busy_poll=*/true, 0, Worker::kInline);
  w.set_items({{q.get(), -1, false}});
  constexpr std::uint32_t kPasses = 2 * Worker::kBackstopPasses;
  for (std::uint32_t i = 0; i < kPasses; ++i) w.poll_once();
  EXPECT_EQ(backend.processed, kPasses);
  EXPECT_EQ(backend.completed, 0u) << "complete() ran on passes whose completion fd was not readable";
  ASSERT_TRUE(backend.done.signal());
  for (std::uint32_t i = 0; i < Worker::kBackstopPasses; ++i) w.poll_once();
  EXPECT_EQ(backend.completed, 1u) << "the epoll backstop did not serve the readable completion fd";
  EXPECT_EQ(backend.processed, kPasses + Worker::kBackstopPasses);
}

}  // namespace
}  // namespace vireo::device
