// vireo bench ring: the per-core cost of the rings themselves. A driver half posts buffers that
// carry a `len`-byte payload; a device half pops them, copies each payload once (as a forwarding
// net back-end would), and returns them; the driver reaps and reposts. --threads 1 alternates the
// halves on one thread; --threads 2 runs them on two pinned threads that sleep on a futex when
// idle and wake each other only when the ring's notification suppression says so.
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "base/json_line.hpp"
#include "base/options.hpp"
#include "bench/bench.hpp"
#include "bench/ring_pair.hpp"
#include "vring/chain.hpp"

namespace vireo::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Params {
  bool packed = false;
  bool event_idx = true;
  std::uint32_t len = 64;
  std::uint32_t batch = 32;
  double seconds = 2;
  int threads = 1;
  std::uint16_t size = 256;
};

struct Counts {
  std::uint64_t packets = 0;
  std::uint64_t kicks = 0;  // driver -> device notifications decided by kick_prepare()
  std::uint64_t calls = 0;  // device -> driver notifications decided by needs_notification()
  double seconds = 0;
};

// A notification channel between the two threads: a counter the notifier bumps and the sleeper
// waits on (a futex through std::atomic::wait), standing in for a kick or call eventfd.
struct Doorbell {
  std::atomic<std::uint32_t> rings{0};
  void ring() {
    rings.fetch_add(1, std::memory_order_release);
    rings.notify_one();
  }
};

void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % static_cast<int>(std::thread::hardware_concurrency()), &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

template <class Layout>
class RingBench {
 public:
  explicit RingBench(const Params& p)
      : p_(p),
        pair_(p.size, p.event_idx ? vring::feature_bit(vring::kFEventIdx) : 0, p.len),
        chains_(p.batch),
        used_(p.batch),
        scratch_(p.len) {
    for (std::uint32_t i = 0; i < p.size; ++i) std::memset(pair_.buffer_host(i), int(i), p.len);
  }

  Counts run() {
    for (std::uint16_t i = 0; i < p_.size; ++i) post(i);
    if (pair_.driver.kick_prepare()) ++counts_.kicks;
    auto start = Clock::now();
    if (p_.threads == 1) run_alternating();
    else run_two_threads();
    counts_.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return counts_;
  }

 private:
  void post(std::uint32_t i) {
    typename Layout::Driver::Buffer b{pair_.buffer_gpa(i), p_.len};
    (void)pair_.driver.add({&b, 1}, {}, i);
  }

  // Device half: pop a burst, copy each payload once, push, publish. Returns packets served.
  std::size_t device_burst() {
    auto n = pair_.device.pop_burst(chains_);
    if (!n || *n == 0) return 0;
    for (std::size_t i = 0; i < *n; ++i) {
      vring::ChainReader r(chains_[i]);
      r.read(scratch_.data(), scratch_.size());
      pair_.device.push(chains_[i], 0);
    }
    pair_.device.flush();
    if (pair_.device.needs_notification()) {
      ++counts_.calls;
      call_.ring();
    }
    return *n;
  }

  // Driver half: reap used buffers and repost them. Returns buffers reaped.
  std::size_t driver_burst() {
    auto n = pair_.driver.get_used_burst(used_);
    if (!n || *n == 0) return 0;
    for (std::size_t i = 0; i < *n; ++i) post(static_cast<std::uint32_t>(used_[i].token));
    if (pair_.driver.kick_prepare()) {
      ++counts_.kicks;
      kick_.ring();
    }
    return *n;
  }

  void run_alternating() {
    auto deadline = Clock::now() + std::chrono::duration<double>(p_.seconds);
    for (std::uint64_t iter = 0;; ++iter) {
      counts_.packets += device_burst();
      driver_burst();
      if ((iter & 1023) == 0 && Clock::now() >= deadline) break;
    }
  }

  // Driver on CPU 0, device on CPU 1, this thread keeps time. Each half sleeps on its doorbell
  // when idle, so a notification decision that loses a wake-up shows up as a stall.
  void run_two_threads() {
    std::atomic<bool> stop{false};
    std::uint64_t device_packets = 0;
    std::thread device([&] {
      pin_to_cpu(1);
      while (!stop.load(std::memory_order_relaxed)) {
        std::size_t n = device_burst();
        device_packets += n;
        if (n == 0) idle(stop, kick_, [&] { return pair_.device.enable_notification(); },
                         [&] { pair_.device.disable_notification(); });
      }
    });
    std::thread driver([&] {
      pin_to_cpu(0);
      while (!stop.load(std::memory_order_relaxed)) {
        if (driver_burst() == 0) idle(stop, call_, [&] { return pair_.driver.enable_cb(); },
                                      [&] { pair_.driver.disable_cb(); });
      }
    });
    std::this_thread::sleep_for(std::chrono::duration<double>(p_.seconds));
    stop.store(true);
    kick_.ring();
    call_.ring();
    device.join();
    driver.join();
    counts_.packets = device_packets;
  }

  // Nothing to do: ask for a notification, re-check (the race-free pattern), then sleep until the
  // other half rings this doorbell.
  template <class Enable, class Disable>
  static void idle(const std::atomic<bool>& stop, Doorbell& bell, Enable enable, Disable disable) {
    std::uint32_t seen = bell.rings.load(std::memory_order_acquire);
    if (!enable()) {
      while (!stop.load(std::memory_order_relaxed) && bell.rings.load(std::memory_order_acquire) == seen)
        bell.rings.wait(seen, std::memory_order_acquire);
    }
    disable();
  }

  Params p_;
  RingPair<Layout> pair_;
  std::vector<vring::Chain> chains_;
  std::vector<typename Layout::Driver::Used> used_;
  std::vector<std::byte> scratch_;
  Doorbell kick_;
  Doorbell call_;
  Counts counts_;
};

void print_result(const Params& p, const Counts& c, bool json) {
  double pps = c.seconds > 0 ? double(c.packets) / c.seconds : 0;
  double notifies = c.packets ? double(c.kicks + c.calls) / double(c.packets) : 0;
  if (json) {
    JsonLine()
        .str("bench", "ring")
        .str("layout", p.packed ? "packed" : "split")
        .boolean("event_idx", p.event_idx)
        .integer("len", p.len)
        .integer("batch", p.batch)
        .integer("threads", p.threads)
        .integer("queue_size", p.size)
        .num("seconds", c.seconds)
        .integer("packets", static_cast<long long>(c.packets))
        .num("pps", pps)
        .integer("kicks", static_cast<long long>(c.kicks))
        .integer("calls", static_cast<long long>(c.calls))
        .num("notifies_per_packet", notifies)
        .print(stdout);
  } else {
    std::printf("%-7s event_idx=%-3s len=%-5u batch=%-3u threads=%d  %8.2f Mpps  %.4f notifies/packet\n",
                p.packed ? "packed" : "split", p.event_idx ? "on" : "off", p.len, p.batch, p.threads, pps / 1e6,
                notifies);
  }
  std::fflush(stdout);
}

}  // namespace

int ring_main(int argc, char** argv, int first) {
  OptionParser o("vireo bench ring",
                 "Ring micro-benchmark: a driver and a device ring of one layout over a plain buffer; the "
                 "device copies each payload once. Reports packets per second and notifications per packet.");
  auto& layout = o.add_choice("layout", {"split", "packed"}, "split", "ring layout: split|packed");
  auto& event_idx = o.add_choice("event-idx", {"on", "off"}, "on", "negotiate VIRTIO_F_EVENT_IDX: on|off");
  auto& len = o.add_u64("len", 64, "payload bytes per buffer");
  auto& batch = o.add_u64("batch", 32, "buffers per burst");
  auto& seconds = o.add("seconds", "2", "measurement time in seconds");
  auto& threads = o.add_u64("threads", 1, "1: both halves on one thread; 2: one pinned thread each");
  auto& size = o.add_u64("queue-size", 256, "ring size");
  auto& json = o.flag("json", "print one JSON line instead of a table row");
  if (auto rc = o.parse(argc, argv, first)) return *rc;

  Params p;
  p.packed = layout.value == "packed";
  p.event_idx = event_idx.value == "on";
  p.len = static_cast<std::uint32_t>(len.as_u64());
  p.batch = static_cast<std::uint32_t>(batch.as_u64());
  p.seconds = seconds.as_double();
  p.threads = static_cast<int>(threads.as_u64());
  p.size = static_cast<std::uint16_t>(size.as_u64());
  if ((p.threads != 1 && p.threads != 2) || p.batch == 0 || p.len == 0 || p.seconds <= 0 ||
      size.as_u64() == 0 || size.as_u64() > vring::kMaxQueueSize ||
      (!p.packed && !vring::valid_split_size(p.size))) {
    std::fprintf(stderr,
                 "vireo bench ring: invalid options (threads 1|2, "
                 "batch/len/seconds > 0, queue-size 1..32768 and a power of two for split)\n");
    return 2;
  }
  Counts c = p.packed ? RingBench<Packed>(p).run() : RingBench<Split>(p).run();
  print_result(p, c, json.set);
  return 0;
}

}  // namespace vireo::bench
