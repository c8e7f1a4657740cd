// A raw vhost-user front-end for back-end tests: a proto::Connection, guest RAM in a memfd, and
// driver rings (vring/split_driver.hpp, packed_driver.hpp) in that RAM. It sends whatever a test
// asks, including malformed messages, and drives buffers through the back-end under test.
//
//   rng::RngBackend dev;
//   BackendThread be(dev);                           // serve_connection() on a socketpair, in a thread
//   FrontendFake fe(be.take_frontend());
//   ASSERT_TRUE(fe.negotiate(fe.get_features(), kProtoAll));
//   ASSERT_TRUE(fe.set_mem_table());
//   ASSERT_TRUE(fe.setup_queue(0, 8));               // NUM, BASE, ADDR, CALL, KICK, ENABLE
//   fe.add_writable(0, 64); fe.kick(0);
//   std::optional<vring::DriverUsed> u = fe.wait_used(0);
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "device/backend.hpp"
#include "device/daemon.hpp"
#include "proto/connection.hpp"
#include "proto/sys/event_fd.hpp"
#include "proto/sys/mapping.hpp"
#include "proto/sys/memfd.hpp"
#include "vring/driver_queue.hpp"

namespace vireo::test {

inline constexpr std::uint64_t kProtoAll =
    proto::proto_bit(proto::kProtoFMq) | proto::proto_bit(proto::kProtoFLogShmfd) |
    proto::proto_bit(proto::kProtoFReplyAck) | proto::proto_bit(proto::kProtoFResetDevice) |
    proto::proto_bit(proto::kProtoFInflightShmfd) | proto::proto_bit(proto::kProtoFConfigureMemSlots) |
    proto::proto_bit(proto::kProtoFStatus);

// Runs device::serve_connection on one end of a socketpair in a thread.
class BackendThread {
 public:
  explicit BackendThread(device::Backend& backend, device::DaemonOptions options = {});
  ~BackendThread();
  proto::UnixStream take_frontend() { return std::move(frontend_); }
  // True once serve_connection returned (the back-end closed the connection).
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  bool wait_finished(int timeout_ms = 5000) const;

 private:
  proto::UnixStream frontend_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

// Runs device::run_daemon in a thread (server or client mode on a real socket path).
class DaemonThread {
 public:
  DaemonThread(device::Backend& backend, device::DaemonOptions options);
  ~DaemonThread();
  int join();  // stops and returns run_daemon's exit code

 private:
  std::atomic<bool> stop_{false};
  int rc_ = -1;
  std::thread thread_;
};

class FrontendFake {
 public:
  static constexpr std::uint64_t kGpaBase = 0x100000;  // guest-physical base of the RAM

  // guard_bytes > 0: the memfd holds guard_bytes of canary pattern before and after the RAM,
  // outside the shared region (mmap_offset = guard_bytes), so canaries_intact() can tell whether
  // the back-end wrote next to the region it was given.
  explicit FrontendFake(proto::UnixStream stream, std::size_t ram_bytes = std::size_t{4} << 20,
                        std::size_t guard_bytes = 0);

  proto::Connection& conn() { return conn_; }
  // request() with the protocol features negotiated so far (acks awaited when REPLY_ACK is).
  Expected<proto::Message, proto::ProtoError> request(proto::FrontendReq req,
                                                      std::span<const std::byte> payload = {},
                                                      std::span<const int> fds = {},
                                                      bool need_reply = true);
  // Sends raw bytes as one message (header fields chosen by the test).
  bool send_raw(std::uint32_t request, std::uint32_t flags, std::span<const std::byte> payload,
                std::span<const int> fds = {});
  std::optional<std::uint64_t> get_u64(proto::FrontendReq req);
  // GET_FEATURES / GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES(proto & offered), SET_OWNER,
  // SET_FEATURES(features): true when all succeeded.
  bool negotiate(std::uint64_t features, std::uint64_t protocol_features);
  std::uint64_t features() const { return features_; }
  // SET_MEM_TABLE with one region covering the whole RAM.
  bool set_mem_table();
  proto::MemoryRegion ram_region() const;
  int ram_fd() const { return ram_.fd(); }

  // Guest RAM.
  std::uint64_t alloc(std::size_t len, std::size_t align = 64);
  std::byte* host(std::uint64_t gpa) const { return map_.data() + guard_ + (gpa - kGpaBase); }
  std::size_t ram_bytes() const { return ram_bytes_; }
  static constexpr std::byte kCanary{0xa5};
  bool canaries_intact() const;
  std::uint64_t uva(std::uint64_t gpa) const { return reinterpret_cast<std::uint64_t>(host(gpa)); }

  struct Queue {
    std::uint16_t size = 0;
    vring::DriverQueue ring;
    proto::EventFd kick, call;
    std::uint64_t desc_gpa = 0, avail_gpa = 0, used_gpa = 0;
    std::uint64_t next_token = 1;
  };
  // Allocates the ring in guest RAM and configures the driver side only.
  Queue& make_queue(std::uint16_t index, std::uint16_t size);
  // SET_VRING_NUM, SET_VRING_BASE(base), SET_VRING_ADDR, SET_VRING_CALL, SET_VRING_KICK and (with
  // protocol features) SET_VRING_ENABLE 1.
  // Default base: 0 (split) / both wrap counters 1 (packed, §2.8.1).
  bool setup_queue(std::uint16_t index, std::uint16_t size, bool enable = true,
                   std::optional<std::uint32_t> base = std::nullopt);
  bool send_vring_addr(std::uint16_t index);
  bool send_vring_fd(proto::FrontendReq req, std::uint16_t index, int fd);
  bool enable(std::uint16_t index, bool on);
  std::optional<std::uint32_t> get_vring_base(std::uint16_t index);
  Queue& queue(std::uint16_t index) { return *queues_.at(index); }

  // Adds a device-writable buffer of len bytes (not yet published); returns its guest address.
  std::uint64_t add_writable(std::uint16_t index, std::uint32_t len);
  // Publishes added buffers; signals the kick eventfd when the ring's suppression asks for it
  // (always, with force). Returns whether a kick was sent.
  bool kick(std::uint16_t index, bool force = false);
  // Polls the used ring until a buffer is used or the timeout passes.
  std::optional<vring::DriverUsed> wait_used(std::uint16_t index, int timeout_ms = 3000);
  // Waits until the back-end closed the connection (recv sees EOF).
  bool wait_closed(int timeout_ms = 3000);

 private:
  proto::Connection conn_;
  proto::MemFd ram_;
  proto::Mapping map_;
  std::size_t ram_bytes_ = 0;
  std::size_t guard_ = 0;
  std::uint64_t next_ = kGpaBase;
  std::uint64_t features_ = 0;
  std::vector<std::unique_ptr<Queue>> queues_;
};

// Open fds of this process (/proc/self/fd entries), for leak checks.
int count_open_fds();

}  // namespace vireo::test
