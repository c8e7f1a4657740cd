// Two-thread stress: a driver thread and a device thread exchange millions of buffers through each
// ring layout, EVENT_IDX on and off. Each buffer carries a sequence number and a checksum in its
// readable part; the device verifies them and answers in the writable part; the driver verifies
// the answer. Nothing may be lost, duplicated or corrupted, and since each side sleeps whenever it
// is idle, a notification decision that loses a wake-up stalls the run and fails the watchdog.
//
// VIREO_STRESS_BUFFERS overrides the buffer count (the sanitizer builds use fewer).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "bench/ring_pair.hpp"
#include "vring/chain.hpp"

namespace vireo::bench {
namespace {

constexpr std::uint32_t kBufferLen = 256;
constexpr std::uint32_t kWritableLen = 32;
constexpr std::uint32_t kMaxPayload = kBufferLen - kWritableLen - 16;

struct Header {  // at the start of the readable part
  std::uint64_t seq;
  std::uint32_t payload_len;
  std::uint32_t checksum;
};
struct Answer {  // what the device writes back
  std::uint64_t seq;
  std::uint32_t checksum;
  std::uint32_t magic;
};
constexpr std::uint32_t kMagic = 0x56495245;  // "VIRE"

std::uint32_t checksum(const std::byte* p, std::size_t n, std::uint64_t seed) {
  std::uint32_t h = 2166136261u ^ static_cast<std::uint32_t>(seed);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ std::to_integer<std::uint32_t>(p[i])) * 16777619u;
  return h;
}

std::uint64_t buffer_count() {
  if (const char* v = std::getenv("VIREO_STRESS_BUFFERS")) return std::strtoull(v, nullptr, 0);
  return 10'000'000;
}

struct Doorbell {
  std::atomic<std::uint32_t> rings{0};
  void ring() {
    rings.fetch_add(1, std::memory_order_release);
    rings.notify_one();
  }
  // Sleeps until rung after `seen` was read, or until stop.
  void wait(std::uint32_t seen, const std::atomic<bool>& stop) {
    while (!stop.load(std::memory_order_relaxed) && rings.load(std::memory_order_acquire) == seen)
      rings.wait(seen, std::memory_order_acquire);
  }
};

template <class Layout>
class Stress {
 public:
  // pop_only: the device sleeps as soon as pop_burst() finds nothing, without calling
  // enable_notification(): pop_burst() itself must re-check after publishing its event index.
  // in_order: VIRTIO_F_IN_ORDER; the device returns each burst as ONE batch (push_unwritten: one
  // used element, length 0), and the driver must get every buffer back in the order it added it.
  Stress(bool event_idx, std::uint64_t total, bool pop_only = false, bool in_order = false)
      : pop_only_(pop_only), in_order_(in_order),
        pair_(256, (event_idx ? vring::feature_bit(vring::kFEventIdx) : 0) |
                       (in_order ? vring::feature_bit(vring::kFInOrder) : 0), kBufferLen),
        total_(total), slot_seq_(256) {}

  void run() {
    std::thread device([&] { device_loop(); });
    std::thread driver([&] { driver_loop(); });
    watchdog();
    device.join();
    driver.join();
  }

  std::uint64_t device_seen = 0, driver_reaped = 0;
  std::uint64_t errors = 0;
  bool stalled = false;

 private:
  // --- driver thread: fill a free slot, add it as readable header+payload and writable answer ---
  void driver_loop() {
    std::uint64_t next_seq = 0;
    std::vector<std::uint16_t> free_slots;
    for (std::uint16_t i = 0; i < pair_.size(); ++i) free_slots.push_back(i);
    std::vector<typename Layout::Driver::Used> used(64);
    while (!stop_.load(std::memory_order_relaxed) && driver_reaped < total_) {
      bool added = false;
      // Up to three descriptors per buffer: the ring runs out of descriptors before slots do.
      while (!free_slots.empty() && next_seq < total_) {
        vring::Errc e = post(free_slots.back(), next_seq);
        if (e != vring::Errc::ok) {
          if (e != vring::Errc::no_space) ++errors;
          break;
        }
        free_slots.pop_back();
        ++next_seq;
        added = true;
      }
      if (added && pair_.driver.kick_prepare()) kick_.ring();
      auto n = pair_.driver.get_used_burst(used);
      if (!n) {
        ++errors;
        break;
      }
      for (std::size_t i = 0; i < *n; ++i) {
        auto slot = static_cast<std::uint16_t>(used[i].token);
        check_answer(slot, used[i].len);
        if (in_order_ && slot_seq_[slot] != driver_reaped + i) ++errors;  // out of order
        free_slots.push_back(slot);
      }
      driver_reaped += *n;
      progress_.fetch_add(*n, std::memory_order_relaxed);
      if (*n == 0 && !added) idle_driver();
    }
    done_.store(true);
    kick_.ring();
  }

  vring::Errc post(std::uint16_t slot, std::uint64_t seq) {
    std::byte* p = pair_.buffer_host(slot);
    auto payload_len = static_cast<std::uint32_t>((seq * 2654435761u) % kMaxPayload);
    for (std::uint32_t i = 0; i < payload_len; ++i) p[16 + i] = std::byte(seq + i * 7);
    Header h{seq, payload_len, checksum(p + 16, payload_len, seq)};
    std::memcpy(p, &h, sizeof h);
    std::memset(p + kBufferLen - kWritableLen, 0, kWritableLen);
    slot_seq_[slot] = seq;
    // Readable part in two segments (header, payload) to exercise chains; writable answer last.
    typename Layout::Driver::Buffer rd[2] = {{pair_.buffer_gpa(slot), 16},
                                             {pair_.buffer_gpa(slot) + 16, payload_len}};
    typename Layout::Driver::Buffer wr[1] = {{pair_.buffer_gpa(slot) + kBufferLen - kWritableLen, kWritableLen}};
    std::size_t nrd = payload_len ? 2 : 1;
    auto added = pair_.driver.add({rd, nrd}, {wr, 1}, slot);
    return added ? vring::Errc::ok : added.error();
  }

  void check_answer(std::uint16_t slot, std::uint32_t len) {
    Answer a;
    std::memcpy(&a, pair_.buffer_host(slot) + kBufferLen - kWritableLen, sizeof a);
    const std::byte* p = pair_.buffer_host(slot);
    Header h;
    std::memcpy(&h, p, sizeof h);
    // A batch's used element has length 0 (push_unwritten); the answer is there all the same.
    if (len != (in_order_ ? 0u : sizeof a) || a.magic != kMagic || a.seq != slot_seq_[slot] || a.checksum != h.checksum) ++errors;
  }

  void idle_driver() {
    std::uint32_t seen = call_.rings.load(std::memory_order_acquire);
    if (!pair_.driver.enable_cb()) call_.wait(seen, stop_);
    pair_.driver.disable_cb();
  }

  // --- device thread: verify sequence and checksum, answer, push ---
  void device_loop() {
    std::vector<vring::Chain> chains(32);
    std::vector<vring::Head> heads(32);
    std::uint64_t expect = 0;
    std::vector<std::byte> data(kBufferLen);
    while (!stop_.load(std::memory_order_relaxed) && !done_.load(std::memory_order_relaxed)) {
      const std::uint32_t seen_before_pop = kick_.rings.load(std::memory_order_acquire);
      auto n = pair_.device.pop_burst(chains);
      if (!n) {
        ++errors;
        break;
      }
      for (std::size_t i = 0; i < *n; ++i) {
        vring::ChainReader r(chains[i]);
        std::size_t got = r.read(data.data(), data.size());
        Header h;
        std::memcpy(&h, data.data(), sizeof h);
        if (got != 16 + h.payload_len || h.seq != expect++ ||
            h.checksum != checksum(data.data() + 16, h.payload_len, h.seq))
          ++errors;
        Answer a{h.seq, h.checksum, kMagic};
        vring::ChainWriter w(chains[i]);
        w.write(&a, sizeof a);
        heads[i] = chains[i].head();
        if (!in_order_) pair_.device.push(chains[i], static_cast<std::uint32_t>(w.written()));
      }
      if (in_order_) pair_.device.push_unwritten(heads.data(), *n);
      device_seen += *n;
      if (*n != 0) {
        pair_.device.flush();
        if (pair_.device.needs_notification()) call_.ring();
        continue;
      }
      if (pop_only_) {
        kick_.wait(seen_before_pop, stop_);
        continue;
      }
      std::uint32_t seen = kick_.rings.load(std::memory_order_acquire);
      if (!pair_.device.enable_notification()) kick_.wait(seen, stop_);
      pair_.device.disable_notification();
    }
  }

  // Fails the run if nothing moves for 20 s (a lost wake-up leaves both sides asleep).
  void watchdog() {
    std::uint64_t last = 0;
    auto last_change = std::chrono::steady_clock::now();
    while (!done_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::uint64_t now = progress_.load(std::memory_order_relaxed);
      if (now != last) {
        last = now;
        last_change = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - last_change > std::chrono::seconds(20)) {
        stalled = true;
        break;
      }
    }
    stop_.store(true);
    kick_.ring();
    call_.ring();
  }

  bool pop_only_;
  bool in_order_;
  RingPair<Layout> pair_;
  std::uint64_t total_;
  std::vector<std::uint64_t> slot_seq_;
  Doorbell kick_, call_;
  std::atomic<bool> stop_{false}, done_{false};
  std::atomic<std::uint64_t> progress_{0};
};

template <class Layout>
void run_stress(bool event_idx, bool pop_only = false, bool in_order = false) {
  std::uint64_t total = pop_only || in_order ? buffer_count() / 4 : buffer_count();
  Stress<Layout> s(event_idx, total, pop_only, in_order);
  s.run();
  EXPECT_FALSE(s.stalled) << "no progress for 20 s: a wake-up was lost (" << s.driver_reaped << " of "
                          << total << " buffers done)";
  EXPECT_EQ(s.errors, 0u) << "lost, duplicated or corrupted buffers";
  EXPECT_EQ(s.device_seen, total);
  EXPECT_EQ(s.driver_reaped, total);
}

TEST(RingStress, SplitEventIdx) { run_stress<Split>(true); }
TEST(RingStress, SplitNoEventIdx) { run_stress<Split>(false); }
TEST(RingStress, PackedEventIdx) { run_stress<Packed>(true); }
TEST(RingStress, PackedNoEventIdx) { run_stress<Packed>(false); }
// A device that only pops (as the framework's devices do) and sleeps when pop_burst() comes back
// empty: with EVENT_IDX, pop_burst() must publish its event index and re-check, or a buffer made
// available in between is never kicked (LostKickAfterDrain).
TEST(RingStress, SplitEventIdxPopOnly) { run_stress<Split>(true, true); }
TEST(RingStress, PackedEventIdxPopOnly) { run_stress<Packed>(true, true); }
// VIRTIO_F_IN_ORDER with batched used elements over chains of 2-3 descriptors: split descriptors in
// table order, packed ids in sequence, both wrapping many times.
TEST(RingStress, SplitInOrderBatches) { run_stress<Split>(true, false, true); }
TEST(RingStress, PackedInOrderBatches) { run_stress<Packed>(true, false, true); }

}  // namespace
}  // namespace vireo::bench
