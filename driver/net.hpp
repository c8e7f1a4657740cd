// virtio-net driver (VIRTIO 1.x §5.1) over the vhost-user Frontend: N queue pairs (receiveq
// 2i, transmitq 2i+1), the 12-byte virtio_net_hdr_v1, MAC from config space, mergeable RX
// buffers. Zero copy: TX packets are built in place in shared memory, RX packets are spans into
// the RX buffers the device wrote, returned by the caller. No per-packet allocation.
//
//   auto net = NetDriver::open({.socket_path = "/tmp/vhost-net.sock", .layout = Layout::packed});
//   std::array<TxPacket, 32> tx;
//   std::size_t n = (*net)->alloc_tx(0, tx);           // free TX buffers of queue pair 0
//   for (auto& p : std::span(tx).first(n)) { build(p.data); p.len = 64; }
//   (void)(*net)->send(0, std::span(tx).first(n));     // one kick decision per burst
//   std::array<RxPacket, 32> rx;
//   auto got = (*net)->recv(0, rx);                    // spans into RX buffers
//   ... (*net)->release(0, std::span(rx).first(*got)); // buffers go back to the device
//   if (idle) (void)(*net)->poll_link();               // back-end died? reconnect and resume
//
// One thread per NetDriver (the rings are single-threaded, like Linux virtqueues).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "driver/frontend.hpp"
#include "driver/guest_memory.hpp"
#include "proto/virtio_net.hpp"

namespace vireo::driver {

// The wire definitions (feature bits, struct virtio_net_hdr, config layout) are
// proto/virtio_net.hpp's, shared with the device.

struct NetOptions {
  std::string socket_path;
  bool server = false;
  Layout layout = Layout::split;
  bool event_idx = true;
  std::uint16_t queue_pairs = 1;
  std::uint16_t queue_size = 256;
  std::uint32_t buf_size = 2048;  // per TX buffer (and RX buffer unless rx_buf_size), header included
  std::uint32_t rx_buf_size = 0;  // per RX buffer; 0 = buf_size. Smaller than a frame needs MRG_RXBUF
  bool mrg_rxbuf = true;          // negotiate VIRTIO_NET_F_MRG_RXBUF if offered
  bool in_order = true;           // negotiate VIRTIO_F_IN_ORDER if offered (FrontendOptions)
  bool hugepages = false;
  int connect_timeout_ms = 10'000;
  // INFLIGHT_SHMFD tracking (FrontendOptions::inflight). Off by default, as in QEMU's vhost-user-net
  // and DPDK's virtio-user: after a back-end restart virtio-net tolerates a lost or repeated frame,
  // and the back-end would otherwise write the inflight log for every packet (docs/PERFORMANCE.md).
  bool inflight = false;
};

// A TX buffer: the caller writes the frame into data (after the virtio_net_hdr, which the driver
// fills) and sets len.
struct TxPacket {
  std::span<std::byte> data;
  std::uint32_t len = 0;
  std::uint16_t slot = 0;
};

// A received frame: up to kMaxRxSegs spans (more than one only with mergeable buffers).
inline constexpr std::size_t kMaxRxSegs = 8;
// Laid out so what a one-segment frame (the common case) uses, len, nsegs, slots[0] and segs[0],
// lies in its first 40 bytes.
struct RxPacket {
  std::uint32_t len = 0;  // frame bytes over all segments
  std::uint8_t nsegs = 0;
  std::array<std::uint16_t, kMaxRxSegs> slots{};
  std::array<std::span<const std::byte>, kMaxRxSegs> segs{};
};

struct NetStats {
  std::uint64_t tx_packets = 0, rx_packets = 0, rx_dropped = 0, kicks = 0;
};

class NetDriver {
 public:
  [[nodiscard]] static Result<std::unique_ptr<NetDriver>> open(const NetOptions& options);
  ~NetDriver();

  const std::array<std::uint8_t, 6>& mac() const { return mac_; }
  bool mac_from_device() const { return mac_from_device_; }
  std::uint16_t queue_pairs() const { return options_.queue_pairs; }
  std::uint64_t features() const { return fe_->features(); }
  const NetStats& stats() const { return stats_; }
  Frontend& frontend() { return *fe_; }
  std::uint32_t max_frame() const { return options_.buf_size - sizeof(proto::net::NetHdr); }

  // Up to out.size() free TX buffers of queue pair qp: completed ones first, then never-sent or
  // freed ones.
  std::size_t alloc_tx(std::uint16_t qp, std::span<TxPacket> out);
  // Hands every packet to the device; kicks once if the ring asks. Packets must come from
  // alloc_tx(qp). Returns how many were queued.
  [[nodiscard]] Result<std::size_t> send(std::uint16_t qp, std::span<const TxPacket> pkts);
  // Returns unused TX buffers (allocated but not sent).
  void free_tx(std::uint16_t qp, std::span<const TxPacket> pkts);
  // Up to out.size() received frames. Every one must come back through release().
  [[nodiscard]] Result<std::size_t> recv(std::uint16_t qp, std::span<RxPacket> out);
  [[nodiscard]] Result<void> release(std::uint16_t qp, std::span<const RxPacket> pkts);

  // Sleeps until the device signals RX of queue pair qp (or timeout); re-checks first.
  [[nodiscard]] Result<void> wait_rx(std::uint16_t qp, int timeout_ms);
  // Checks the back-end socket; after a disconnect reconnects and resumes (blocking up to the
  // connect timeout). Returns true if it reconnected.
  [[nodiscard]] Result<bool> poll_link();

 private:
  struct Pair;
  explicit NetDriver(const NetOptions& options);
  Result<void> setup_buffers();
  Result<void> read_mac();
  Result<bool> take_rx(Pair& p, vring::DriverUsed u, RxPacket& pkt);

  NetOptions options_;
  GuestMemory mem_;
  std::unique_ptr<Frontend> fe_;
  std::vector<Pair> pairs_;
  std::array<std::uint8_t, 6> mac_{};
  bool mac_from_device_ = false;
  bool mrg_ = false;
  std::uint32_t rx_buf_ = 0;  // RX buffer size in use
  NetStats stats_;
};

}  // namespace vireo::driver
