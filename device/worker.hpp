// Worker: one data-plane thread serving a set of started queues.
//
//   Worker w(backend, /*busy_poll=*/false, 0);
//   w.pause();                        // control thread: returns once the worker is parked
//   w.set_items({{&vq, kick_fd, /*process_now=*/true}});
//   w.resume();                       // the worker rebuilds its epoll set and runs again
//
// The thread epolls the kick eventfds (edge-triggered: count the kick in QueueStats, call
// backend.process(q); the counter is never read), the device completion fds
// (Backend::completion_fd / complete) and its own wake eventfd. In busy-poll mode (or for a queue
// whose SET_VRING_KICK had no fd) it disables driver notifications and calls process() on every
// pass instead of sleeping. While every queue is polled, the fds are a backstop read once every
// kBackstopPasses passes: an epoll_wait() per pass would cost a syscall per burst.
//
// Inline mode (`Worker(backend, busy_poll, id, Worker::kInline)`): no thread. The owner calls
// poll_once() from its own thread, which is also the thread that handles the Session's messages,
// so pause()/resume() have nothing to wait for. `vireo bench loopback` runs a device and a driver
// on one core this way.
//
// Poll after kick (set_poll_after_kick(true), kick-driven queues only): a kick turns the worker
// "hot": it disables driver notifications on its queues and runs process() on every pass, as
// vhost's busyloop and QEMU's adaptive polling do, and re-enables them (re-checking the rings)
// only after kHotIdlePasses passes in a row moved no buffer. Under load the driver then almost
// never kicks; idle, the worker sleeps in epoll as before.
//
// Quiesce handshake: pause() sets a request under the mutex and wakes the thread; the thread
// parks (under the same mutex, so everything it wrote happens-before pause() returns) and waits
// for resume(). The control thread may only touch a queue's ring, memory, fds or the item list
// while the worker serving it is parked.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "device/backend.hpp"
#include "proto/sys/event_fd.hpp"

namespace vireo::device {

class VirtQueue;

struct WorkItem {
  VirtQueue* queue = nullptr;  // a started queue (owned by the Session)
  int kick_fd = -1;            // borrowed; -1: no kick fd, the queue is polled
  bool process_now = false;    // call process() once on resume (queue started / enabled)
};

class Worker {
 public:
  struct InlineTag {};
  static constexpr InlineTag kInline{};
  Worker(Backend& backend, bool busy_poll, unsigned id);
  Worker(Backend& backend, bool busy_poll, unsigned id, InlineTag);
  ~Worker();  // stops and joins the thread
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // False when the thread or its wake eventfd could not be created (logged).
  bool ok() const { return inline_ || thread_.joinable(); }

  void pause();
  void set_items(std::vector<WorkItem> items);  // only while paused
  void resume();

  // Inline workers only, before the first poll_once() (a threaded worker's thread starts in its
  // constructor and would race with this write).
  void set_poll_after_kick(bool on) { poll_after_kick_ = on; }
  static constexpr std::uint32_t kHotIdlePasses = 256;
  // With every queue polled, the epoll set is read once every kBackstopPasses passes.
  static constexpr std::uint32_t kBackstopPasses = 256;

  // Inline mode only: one pass of the loop run() repeats (new items, kicks, completions and, for
  // polled queues, process()), without blocking. Must run on the thread that calls set_items().
  void poll_once();

 private:
  void run();
  enum class Park { exit, idle, resumed };
  // Parks while a pause is requested; `resumed` means items were replaced.
  Park park(std::vector<WorkItem>& items);
  void rebuild(std::vector<WorkItem>& items);  // a kick fd epoll refuses: that item is polled
  void serve_event(const std::vector<WorkItem>& items, std::uint64_t data);
  void poll_pass(const std::vector<WorkItem>& items);
  bool events_due();  // false: skip this pass's epoll_wait (every queue is polled)
  void adopt(std::vector<WorkItem> items);
  void heat(const std::vector<WorkItem>& items);
  void hot_pass(const std::vector<WorkItem>& items);

  Backend& backend_;
  const bool busy_poll_;
  const unsigned id_;
  proto::EventFd wake_;
  proto::UniqueFd epoll_;  // worker thread only (rebuilt while parked)
  bool any_polled_ = false;  // worker thread only
  bool all_polled_ = false;  // worker thread only: every item is polled (busy-poll or no kick fd)
  std::uint32_t passes_since_events_ = 0;  // worker thread only

  std::mutex mu_;
  std::condition_variable cv_;
  bool pause_req_ = false;  // guarded by mu_
  bool paused_ = false;     // guarded by mu_
  bool stop_ = false;       // guarded by mu_
  std::vector<WorkItem> next_items_;  // guarded by mu_
  bool items_pending_ = false;        // guarded by mu_: next_items_ not yet taken by the thread
  // Set with pause_req_; lets the thread notice a request without taking the mutex per pass.
  std::atomic<bool> attention_{false};
  std::thread thread_;
  // Poll after kick (worker thread only).
  bool poll_after_kick_ = false;
  bool hot_ = false;
  std::uint32_t idle_passes_ = 0;
  // Inline mode: the items the owner's thread serves; replaced by set_items().
  const bool inline_ = false;
  bool inline_dirty_ = false;
  std::vector<WorkItem> inline_items_;
};

}  // namespace vireo::device
