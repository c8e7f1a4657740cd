// Worker: epoll loop, busy-poll loop and the quiesce handshake.
#include "device/worker.hpp"

#include <sys/epoll.h>

#include <cerrno>
#include <cstring>

#include "base/log.hpp"
#include "device/virt_queue.hpp"

namespace vireo::device {
namespace {

// epoll_event.data.u64 = item index << 2 | kind.
constexpr std::uint64_t kWake = 0, kKick = 1, kCompletion = 2;
constexpr std::uint64_t tag(std::size_t i, std::uint64_t kind) { return (std::uint64_t{i} << 2) | kind; }

bool add_fd(int ep, int fd, std::uint64_t data, std::uint32_t extra = 0) {
  epoll_event ev{};
  ev.events = EPOLLIN | extra;
  ev.data.u64 = data;
  return ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0;
}

}  // namespace

Worker::Worker(Backend& backend, bool busy_poll, unsigned id)
    : backend_(backend), busy_poll_(busy_poll), id_(id) {
  auto wake = proto::EventFd::create(/*nonblocking=*/true);
  if (!wake) {
    VIREO_LOG_ERROR("worker %u: cannot create its wake eventfd: %s", id_, wake.error().message().c_str());
    return;
  }
  wake_ = std::move(*wake);
  thread_ = std::thread([this] { run(); });
}

Worker::Worker(Backend& backend, bool busy_poll, unsigned id, InlineTag)
    : backend_(backend), busy_poll_(busy_poll), id_(id), inline_(true) {}

Worker::~Worker() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lk(mu_);
    stop_ = true;
    attention_.store(true, std::memory_order_release);  // pairs with the acquire in run()
  }
  (void)wake_.signal();
  cv_.notify_all();
  thread_.join();
}

void Worker::pause() {
  if (!thread_.joinable()) return;
  std::unique_lock lk(mu_);
  pause_req_ = true;
  attention_.store(true, std::memory_order_release);  // pairs with the acquire in run()
  (void)wake_.signal();
  cv_.wait(lk, [this] { return paused_; });
}

void Worker::set_items(std::vector<WorkItem> items) {
  // Back-to-back quiesces: pause() may return while the thread, still parked, has not yet taken
  // the previous list (inline: several messages are handled before the next poll_once()). Its
  // process_now requests (a queue started or enabled, a kick that arrived while it was disabled)
  // must survive, or that queue waits for a kick that never comes.
  auto merge = [&](bool pending) {
    if (pending)
      for (WorkItem& it : items)
        for (const WorkItem& old : next_items_)
          if (old.queue == it.queue) it.process_now = it.process_now || old.process_now;
    next_items_ = std::move(items);
  };
  if (inline_) {
    merge(inline_dirty_);
    inline_dirty_ = true;
    return;
  }
  std::lock_guard lk(mu_);
  merge(items_pending_);
  items_pending_ = true;
}

void Worker::resume() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lk(mu_);
    pause_req_ = false;
  }
  cv_.notify_all();
}

Worker::Park Worker::park(std::vector<WorkItem>& items) {
  std::unique_lock lk(mu_);
  if (stop_) return Park::exit;
  if (!pause_req_) {
    attention_.store(false, std::memory_order_relaxed);
    return Park::idle;
  }
  paused_ = true;
  cv_.notify_all();
  cv_.wait(lk, [this] { return !pause_req_ || stop_; });
  paused_ = false;
  attention_.store(false, std::memory_order_relaxed);
  if (stop_) return Park::exit;
  items = std::move(next_items_);
  next_items_.clear();
  items_pending_ = false;
  return Park::resumed;
}

void Worker::rebuild(std::vector<WorkItem>& items) {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  any_polled_ = false;
  passes_since_events_ = 0;
  if (!epoll_) {
    VIREO_LOG_ERROR("worker %u: epoll_create1 failed; queues fall back to polling", id_);
    any_polled_ = all_polled_ = true;
    return;
  }
  (void)add_fd(epoll_.get(), wake_.fd(), tag(0, kWake));
  bool every_item_polled = true;
  for (std::size_t i = 0; i < items.size(); ++i) {
    VirtQueue& q = *items[i].queue;
    // Kicks are edge-triggered: every write to an eventfd is a new edge, so the counter is never
    // read (a read per kick was a syscall per request at queue depth 1). The message table
    // admits only eventfds as kick fds; the counter cannot saturate in practice (2^64 - 2 kicks).
    if (!busy_poll_ && items[i].kick_fd >= 0 &&
        !add_fd(epoll_.get(), items[i].kick_fd, tag(i, kKick), EPOLLET)) {
      VIREO_LOG_WARN("queue %u: its kick fd cannot be watched (epoll_ctl: %s); the queue is polled",
                     q.index(), std::strerror(errno));
      items[i].kick_fd = -1;  // poll_pass serves it; without this it was served by nothing
    }
    const bool polled = busy_poll_ || items[i].kick_fd < 0;
    any_polled_ = any_polled_ || polled;
    every_item_polled = every_item_polled && polled;
    if (polled)  // the driver need not kick (§2.7.10, §2.8.10)
      q.visit([](auto& ring) { ring.disable_notification(); });
    // An event-counter completion fd is edge-triggered for the reason kicks are.
    const std::uint32_t trigger = backend_.completion_fd_is_event_counter(q) ? std::uint32_t{EPOLLET} : 0u;
    if (int cfd = backend_.completion_fd(q); cfd >= 0 && !add_fd(epoll_.get(), cfd, tag(i, kCompletion), trigger))
      any_polled_ = true;
  }
  all_polled_ = any_polled_ && every_item_polled;
}

void Worker::serve_event(const std::vector<WorkItem>& items, std::uint64_t data) {
  const std::uint64_t kind = data & 3;
  const std::size_t i = static_cast<std::size_t>(data >> 2);
  if (kind == kWake) {
    (void)wake_.drain();
    return;
  }
  if (i >= items.size()) return;
  VirtQueue& q = *items[i].queue;
  if (kind == kKick) {
    q.stats().add(q.stats().kicks, 1);
    backend_.process(q);
    if (poll_after_kick_ && !busy_poll_ && !hot_) heat(items);
  } else {
    backend_.complete(q);
  }
}

// Buffers completed on all of `items` so far (the worker's own counters).
static std::uint64_t progress(const std::vector<WorkItem>& items) {
  std::uint64_t n = 0;
  for (const WorkItem& it : items) n += it.queue->stats().chains.load(std::memory_order_relaxed);
  return n;
}

void Worker::heat(const std::vector<WorkItem>& items) {
  hot_ = true;
  idle_passes_ = 0;
  for (const WorkItem& it : items)  // polled now: the driver need not kick (§2.7.10, §2.8.10)
    if (it.kick_fd >= 0) it.queue->visit([](auto& ring) { ring.disable_notification(); });
}

void Worker::hot_pass(const std::vector<WorkItem>& items) {
  const std::uint64_t before = progress(items);
  for (const WorkItem& it : items)
    if (it.kick_fd >= 0) backend_.process(*it.queue);
  if (progress(items) != before) {
    idle_passes_ = 0;
    return;
  }
  if (++idle_passes_ < kHotIdlePasses) return;
  bool pending = false;  // enable_notification() re-checks the ring after its full fence
  for (const WorkItem& it : items)
    if (it.kick_fd >= 0) pending = it.queue->visit([](auto& ring) { return ring.enable_notification(); }) || pending;
  idle_passes_ = 0;
  hot_ = pending;
}

// process() alone: it picks up ready completions too (Backend::complete), and calling complete()
// every pass would cost its fd read (a syscall) every pass. A readable completion fd is served by
// the epoll backstop below.
void Worker::poll_pass(const std::vector<WorkItem>& items) {
  for (const WorkItem& it : items) {
    if (!busy_poll_ && it.kick_fd >= 0) continue;
    backend_.process(*it.queue);
  }
}

// While every queue is polled (busy-poll, poll-after-kick, or no queue with a kick fd), the fds
// are only a backstop: no queue waits for its kick and process() reaps completions. One
// epoll_wait() costs about a microsecond on these machines, a third of a 64-packet loopback pass,
// so it runs once every kBackstopPasses passes then, and on every pass otherwise.
bool Worker::events_due() {
  if (!all_polled_ && !hot_) return true;
  if (++passes_since_events_ < kBackstopPasses) return false;
  passes_since_events_ = 0;
  return true;
}

void Worker::adopt(std::vector<WorkItem> items) {
  inline_items_ = std::move(items);
  hot_ = false;
  rebuild(inline_items_);
  for (const WorkItem& it : inline_items_)
    if (it.process_now) backend_.process(*it.queue);
}

void Worker::poll_once() {
  if (inline_dirty_) {
    inline_dirty_ = false;
    adopt(std::move(next_items_));
  }
  epoll_event events[64];
  const int n = epoll_ && events_due() ? ::epoll_wait(epoll_.get(), events, 64, 0) : 0;
  for (int k = 0; k < n; ++k) serve_event(inline_items_, events[k].data.u64);
  if (hot_) hot_pass(inline_items_);
  if (any_polled_ || !epoll_) poll_pass(inline_items_);
}

void Worker::run() {
  std::vector<WorkItem> items;
  rebuild(items);
  epoll_event events[64];
  for (;;) {
    // acquire: pairs with the release store in pause() / ~Worker().
    if (attention_.load(std::memory_order_acquire)) {
      const Park p = park(items);
      if (p == Park::exit) return;
      if (p == Park::resumed) {
        hot_ = false;
        rebuild(items);
        for (const WorkItem& it : items)
          if (it.process_now) backend_.process(*it.queue);
      }
    }
    const int timeout = any_polled_ || hot_ ? 0 : -1;
    int n = epoll_ && (timeout < 0 || events_due()) ? ::epoll_wait(epoll_.get(), events, 64, timeout) : 0;
    for (int k = 0; k < n; ++k) serve_event(items, events[k].data.u64);
    if (hot_) hot_pass(items);
    if (any_polled_) poll_pass(items);
  }
}

}  // namespace vireo::device
