// Shared pieces of the hostile suite: a back-end daemon (run_daemon, server mode, in a thread)
// that every case attacks with a misbehaving front-end, a log capture, fd / mapping counts, and
// raw writers that put deliberately broken descriptors into a ring's guest memory.
//
// Every case (HostileTest) follows one pattern, checked in TearDown():
//   1. before: count /proc/self/fd entries and /proc/self/maps lines (daemon not yet started);
//   2. the case connects a FrontendFake (guest RAM with canary pages around the shared region)
//      and misbehaves; it asserts the back-end's log line and what broke (queue or connection);
//   3. the canaries next to the shared region are intact (the back-end wrote nothing outside);
//   4. a clean front-end connects to the SAME daemon and moves data (the daemon kept serving);
//   5. the daemon stops; fds and mappings are back to the counts of step 1.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/log.hpp"
#include "device/backend.hpp"
#include "device/rng/rng.hpp"
#include "frontend_fake.hpp"
#include "vring/features.hpp"
#include "vring/layout.hpp"

namespace vireo::test::hostile {

inline constexpr std::uint64_t kSplit = vring::feature_bit(vring::kFVersion1) |
                                        vring::feature_bit(vring::kFProtocolFeatures) |
                                        vring::feature_bit(vring::kFIndirectDesc);
inline constexpr std::uint64_t kPacked = kSplit | vring::feature_bit(vring::kFRingPacked);
inline constexpr std::uint16_t kQueueSize = 8;
inline constexpr std::size_t kRam = std::size_t{2} << 20;
inline constexpr std::size_t kGuard = 4096;
inline constexpr std::uint32_t kConfigSize = 8;

// The attacked device: virtio-rng's data path plus an 8-byte config space (so GET_CONFIG can be
// attacked too).
class HostileDevice final : public device::Backend {
 public:
  device::DeviceInfo info() const override;
  void read_config(std::uint32_t offset, std::span<std::byte> out) const override;
  void process(device::VirtQueue& q) override { rng_.process(q); }

 private:
  device::rng::RngBackend rng_;
};

// Every log line printed while the object lives (base/log.hpp sink).
class LogLines {
 public:
  LogLines();
  ~LogLines();
  LogLines(const LogLines&) = delete;
  LogLines& operator=(const LogLines&) = delete;
  // Waits until a line containing `text` was logged.
  bool wait_for(std::string_view text, int timeout_ms = 3000) const;
  std::string all() const;

 private:
  static void sink(void* ctx, log::Level level, const char* line);
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

struct Resources {
  int fds = 0;
  int maps = 0;         // /proc/self/maps lines
  int shared_maps = 0;  // of those, MAP_SHARED ones (guest regions, logs, inflight regions)
  int guest_maps = 0;   // of those, mappings of a test guest's memfd
};
// ASan and TSan map their allocator's (and shadow) memory lazily and keep it: the total count only
// grows there, so only the shared mappings (all the back-end maps for a front-end) are compared.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kCompareAllMaps = false;
#else
inline constexpr bool kCompareAllMaps = true;
#endif
Resources snapshot();

// run_daemon(HostileDevice) on a fresh socket path, in a thread.
class Daemon {
 public:
  explicit Daemon(device::Backend& dev);
  ~Daemon();
  // A front-end connected to the daemon (it is served once the previous one is gone).
  std::unique_ptr<FrontendFake> connect();
  void stop();

 private:
  std::string path_;
  std::unique_ptr<DaemonThread> thread_;
};

class HostileTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Connects the hostile front-end (features: kSplit or kPacked).
  FrontendFake& connect(std::uint64_t features = kSplit);
  // Negotiates, shares RAM and starts queue 0 (kQueueSize) on the hostile connection.
  void start(std::uint64_t features = kSplit);
  // The hostile connection still answers (GET_FEATURES round trip).
  bool connection_alive();
  // After a queue violation: GET_VRING_BASE stops queue 0, a fresh ring is set up and moves data
  // on the same connection.
  void expect_queue_recovers();
  // The back-end closed the hostile connection.
  void expect_connection_closed();
  // A clean front-end moves `buffers` buffers through queue 0 of the daemon.
  static void expect_clean_connection_moves_data(Daemon& d, std::uint64_t features, int buffers = 4);

  FrontendFake& fe() { return *fe_; }
  std::uint64_t features() const { return features_; }

  HostileDevice dev_;
  LogLines log_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<FrontendFake> fe_;
  std::uint64_t features_ = kSplit;
  bool closed_by_case_ = false;
  Resources before_;
};

// ---- raw ring writers (queue 0 of a FrontendFake, bypassing its driver ring) ----

// Split: writes descriptor `i` of the table.
void split_desc(FrontendFake& fe, std::uint16_t i, std::uint64_t addr, std::uint32_t len,
                std::uint16_t flags, std::uint16_t next = 0);
// Split: appends heads to the avail ring and publishes avail->idx (release), then kicks.
void split_publish(FrontendFake& fe, std::initializer_list<std::uint16_t> heads);
// Split: sets avail->idx to `idx` (release), then kicks.
void split_set_avail_idx(FrontendFake& fe, std::uint16_t idx);
// Packed: writes descriptor slot `i` (not the head of a list) as available in wrap 1 (AVAIL set,
// USED clear) plus `flags`.
void packed_desc(FrontendFake& fe, std::uint16_t i, std::uint64_t addr, std::uint32_t len,
                 std::uint16_t flags, std::uint16_t id);
// Packed: writes the head slot of a list last, its flags (`flags` | AVAIL unless raw_flags) with
// a release store, which makes the list available; then kicks.
void packed_head(FrontendFake& fe, std::uint16_t i, std::uint64_t addr, std::uint32_t len,
                 std::uint16_t flags, std::uint16_t id, bool raw_flags = false);
// Writes descriptors (SplitDesc or PackedDesc, 16 bytes each) into guest RAM at gpa.
template <class Desc>
void write_table(FrontendFake& fe, std::uint64_t gpa, std::span<const Desc> descs) {
  std::memcpy(fe.host(gpa), descs.data(), descs.size_bytes());
}

}  // namespace vireo::test::hostile
