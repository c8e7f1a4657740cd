// Frontend: a vhost-user front-end (the role QEMU plays) over proto::Connection, driving any
// vhost-user back-end from user space, like DPDK's virtio-user but for every device type.
//
//   auto mem = GuestMemory::create({.size = 16 << 20});
//   FrontendOptions o{.socket_path = "/tmp/net.sock", .features = feature_bit(proto::net::kFMac),
//                     .layout = Layout::packed, .event_idx = true, .num_queues = 2};
//   auto fe = Frontend::open(o, *mem);                 // connect, negotiate, start every queue
//   Queue& q = fe->queue(1);
//   vring::process_burst(q.ring, [&](auto& ring) {     // one layout dispatch per burst
//     ring.add(out, {}, token);
//     if (ring.kick_prepare()) fe->kick(1);            // eventfd write only when the ring says so
//   });
//   if (!fe->check_connection()) fe->reconnect();      // back-end died: replay and resume
//
// Negotiation order (QEMU's): GET_FEATURES, GET/SET_PROTOCOL_FEATURES (REPLY_ACK, MQ, CONFIG,
// INFLIGHT_SHMFD), GET_QUEUE_NUM, SET_OWNER, SET_FEATURES, GET_INFLIGHT_FD (first connection
// only) + SET_INFLIGHT_FD, SET_MEM_TABLE, then per queue SET_VRING_NUM / BASE / ADDR / CALL /
// KICK and SET_VRING_ENABLE (with VHOST_USER_F_PROTOCOL_FEATURES).
// Threading: one thread at a time per Frontend (rings, kicks and control messages alike).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/expected.hpp"
#include "driver/guest_memory.hpp"
#include "proto/connection.hpp"
#include "proto/sys/event_fd.hpp"
#include "proto/sys/unix_socket.hpp"
#include "vring/driver_queue.hpp"

namespace vireo::driver {

struct Error {
  enum class Kind : std::uint8_t {
    disconnected,  // the back-end went away (EOF, EPIPE, timeout): reconnect() may recover
    rejected,      // the back-end answered a request with a failure (REPLY_ACK status)
    unsupported,   // the back-end does not offer what the caller asked for
    protocol,      // the back-end broke the protocol (bad reply, config size, ...)
    resource,      // a local resource failed (memory, eventfd, socket)
    device,        // the device broke a ring (used id not outstanding, ...): logged with why
  };
  Kind kind = Kind::protocol;
  std::string reason;
};
template <class T>
using Result = Expected<T, Error>;
inline Unexpected<Error> error(Error::Kind kind, std::string reason) {
  return Unexpected(Error{kind, std::move(reason)});
}

enum class Layout : std::uint8_t { split, packed };

struct FrontendOptions {
  std::string socket_path;
  bool server = false;             // listen on socket_path for a back-end started with --client
  std::uint64_t features = 0;      // device features the driver can use (VERSION_1 is implied)
  std::uint64_t required = 0;      // of those, the ones without which open() fails
  Layout layout = Layout::split;   // packed fails if the back-end does not offer RING_PACKED
  bool event_idx = true;           // fails if asked for and not offered
  // VIRTIO_F_IN_ORDER (§2.7.9 / §2.8.23), when the back-end offers it: descriptors are used in
  // ring order, and the device may return a batch with one used element.
  bool in_order = true;
  std::uint16_t num_queues = 1;
  std::uint16_t queue_size = 256;
  int connect_timeout_ms = 10'000; // wait this long for the back-end (open and reconnect)
  // Inflight I/O tracking (rst "Inflight I/O tracking"), when the back-end offers INFLIGHT_SHMFD:
  // the back-end records what it took from the rings in a region this front-end keeps across
  // reconnects, so a restarted back-end resubmits exactly what was in flight.
  bool inflight = true;
};

// One virtqueue: its ring (split or packed), ring areas in guest memory, kick and call eventfds.
struct Queue {
  vring::DriverQueue ring;
  proto::EventFd kick;  // we signal it: "buffers available"
  proto::EventFd call;  // the back-end signals it: "buffers used"
  Area desc, driver_area, device_area;  // split: desc/avail/used; packed: ring/driver/device event
};

class Frontend {
 public:
  // Connects (client) or accepts (server), negotiates, shares `mem` and starts every queue.
  // `mem` must outlive the Frontend; ring areas are allocated from it here.
  [[nodiscard]] static Result<std::unique_ptr<Frontend>> open(const FrontendOptions& options,
                                                               GuestMemory& mem);
  ~Frontend();
  Frontend(const Frontend&) = delete;
  Frontend& operator=(const Frontend&) = delete;

  std::uint64_t features() const { return features_; }           // negotiated virtio features
  std::uint64_t protocol_features() const { return protocol_; }  // negotiated protocol features
  std::uint16_t max_queues() const { return max_queues_; }       // GET_QUEUE_NUM (1 without MQ)
  bool packed() const { return options_.layout == Layout::packed; }
  std::uint16_t num_queues() const { return static_cast<std::uint16_t>(queues_.size()); }
  Queue& queue(std::uint16_t i) { return queues_[i]; }
  GuestMemory& memory() { return mem_; }

  // GET_CONFIG (needs the CONFIG protocol feature): `size` bytes of config space at `offset`.
  [[nodiscard]] Result<std::vector<std::byte>> get_config(std::uint32_t offset, std::uint32_t size);

  // Driver -> device notification for queue i (an eventfd write). Call only when the ring's
  // kick_prepare() returned true.
  void kick(std::uint16_t i);
  // Waits up to timeout_ms for the back-end to signal the call eventfd of any queue in `queues`
  // (drains them). Returns false on timeout. Also returns (true) when the socket closes, so a
  // sleeping driver notices a dead back-end.
  [[nodiscard]] Result<bool> wait_call(std::span<const std::uint16_t> queues, int timeout_ms);

  // Non-blocking: false if the back-end hung up (or broke the protocol on the socket).
  bool check_connection();
  // After a disconnect: computes where each ring resumes, reconnects (waiting up to
  // connect_timeout_ms), replays the negotiation, restores every ring with SET_VRING_BASE and
  // kicks every queue once. Ring memory and outstanding buffers are kept.
  [[nodiscard]] Result<void> reconnect();
  std::uint64_t reconnects() const { return reconnects_; }
  // The inflight region (GET_INFLIGHT_FD), kept across reconnects; -1 when not negotiated.
  int inflight_fd() const { return inflight_fd_.get(); }
  const proto::InflightDesc& inflight_desc() const { return inflight_desc_; }

 private:
  Frontend(const FrontendOptions& options, GuestMemory& mem) : options_(options), mem_(mem) {}

  // frontend.cpp: socket and negotiation.
  Result<void> connect_socket();
  Result<void> negotiate(bool again);
  Result<std::uint64_t> get_u64(proto::FrontendReq req);
  Result<void> set_u64(proto::FrontendReq req, std::uint64_t value);
  Result<void> send(proto::FrontendReq req, std::span<const std::byte> payload,
                    std::span<const int> fds = {});
  Result<void> set_mem_table();
  Result<void> setup_inflight(bool again);
  // frontend_queues.cpp: rings.
  Result<void> create_queues();
  Result<void> start_queue(std::uint16_t i, const vring::RingState& base);
  Result<vring::RingState> resume_state(std::uint16_t i);

  FrontendOptions options_;
  GuestMemory& mem_;
  std::optional<proto::UnixListener> listener_;  // server mode
  proto::Connection conn_;
  std::uint64_t features_ = 0;
  std::uint64_t protocol_ = 0;
  std::uint16_t max_queues_ = 1;
  std::vector<Queue> queues_;
  std::uint64_t reconnects_ = 0;
  proto::UniqueFd inflight_fd_;           // the region's memfd, from the first GET_INFLIGHT_FD
  proto::InflightDesc inflight_desc_{};   // its size, offset, queue count and size
};

// Protocol features the front-end uses when offered (INFLIGHT_SHMFD unless options.inflight is
// false).
inline constexpr std::uint64_t kFrontendProtocolFeatures =
    proto::proto_bit(proto::kProtoFMq) | proto::proto_bit(proto::kProtoFReplyAck) |
    proto::proto_bit(proto::kProtoFConfig) | proto::proto_bit(proto::kProtoFInflightShmfd);

// The virtio feature word the front-end asks for (before intersecting with the offer), and the
// check of an offer against the options: pure, unit-tested without a peer.
std::uint64_t wanted_features(const FrontendOptions& options);
Result<std::uint64_t> choose_features(const FrontendOptions& options, std::uint64_t offered);

}  // namespace vireo::driver
