// virtio-net (virtio device id 1, §5.1) as a vhost-user back-end.
//
//   NetOptions opt;  opt.pairs = 2;
//   NetBackend dev(opt, std::move(*make_port("loopback")));
//   run_daemon(dev, daemon_options);
//
// Queues: pair i is receiveq = 2i, transmitq = 2i + 1; with more than one pair the device offers
// VIRTIO_NET_F_MQ + CTRL_VQ and the control queue is 2 * pairs (§5.1.2). Offered features: MAC,
// STATUS (link always up), MTU, MRG_RXBUF, and MQ/CTRL_VQ; no checksum or segmentation offload,
// so every TX header must say NEEDS_CSUM off and GSO_NONE.
//
// Data path. process(q) on either queue of a pair serves the whole pair: the TX ring is drained in
// bursts of kBurst (one-descriptor buffers through the ring's lone lane, pop_lone, the rest through
// pop_burst; header check, one Port::transmit per burst, push, one flush, one notify) and the
// port's pending packets are copied into the RX ring (one-descriptor buffers filled through
// serve_lone, the rest by reserve/put; one flush + one notify per burst). Nothing is allocated
// after construction.
//
// Locking. Each pair has a TX lock (its TX ring and held packets) and an RX lock (its RX ring and
// receive window). Lock order: a TX lock may be held while taking any RX lock (loopback, peer);
// an RX lock is never held while taking a TX lock. So the two queues of a pair may be served by
// different workers, and a peer device on another thread may deliver into this device's RX rings.
//
// When the guest has no receive buffers: a loopback packet WAITS (its TX buffer is not completed
// until an RX buffer arrives: lossless backpressure); packets from the source/responder ports
// wait in the port; tap frames stay in the kernel (and are read and dropped only when the guest
// posts no buffers at all, so the fd stops polling readable); a peer drops them (a switch).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "device/backend.hpp"
#include "device/net/net_defs.hpp"
#include "device/net/port.hpp"
#include "device/net/rx_filler.hpp"
#include "vring/chain.hpp"

namespace vireo::device::net {

struct NetOptions {
  std::uint16_t pairs = 1;             // --queues: queue pairs (max_virtqueue_pairs)
  std::uint16_t max_queue_size = 1024; // --queue-size: largest SET_VRING_NUM accepted
  MacAddr mac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
  std::uint16_t mtu = 1500;
};

// Per-pair counters: written under the pair's TX (tx_*) or RX (rx_*) lock, read anywhere (relaxed).
struct PairCounters {
  std::atomic<std::uint64_t> tx_packets{0};  // taken by the port
  std::atomic<std::uint64_t> tx_bytes{0};
  std::atomic<std::uint64_t> tx_errors{0};   // malformed TX buffers, completed unsent
  std::atomic<std::uint64_t> rx_packets{0};  // written into receive buffers
  std::atomic<std::uint64_t> rx_bytes{0};
  std::atomic<std::uint64_t> rx_dropped{0};  // too big for the buffers, or no buffers (tap, peer)
  static void add(std::atomic<std::uint64_t>& c, std::uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

class NetBackend final : public Backend {
 public:
  static constexpr std::uint32_t kBurst = 32;         // TX chains per pop_burst / transmit
  static constexpr std::uint32_t kTxMaxSegments = 64; // host segments per TX chain

  // `port` may be null and set later with set_port() (peer ports need both devices first).
  NetBackend(const NetOptions& options, std::unique_ptr<Port> port);
  ~NetBackend() override;
  // Control path, before serving.
  Status set_port(std::unique_ptr<Port> port);

  DeviceInfo info() const override;
  void read_config(std::uint32_t offset, std::span<std::byte> out) const override;
  Status set_features(std::uint64_t features) override;
  void reset() override;
  void queue_started(VirtQueue& q) override;
  void queue_stopping(VirtQueue& q) override;
  void process(VirtQueue& q) override;
  int completion_fd(VirtQueue& q) override;
  void complete(VirtQueue& q) override;

  // ---- for ports ----
  // Copies packets, in order, into pair's receive queue (one copy each) and notifies the guest.
  // Returns how many were taken: delivered, or dropped because no buffer set can hold them (or
  // the RX queue is broken). Stops at the first packet that finds no receive buffer. Takes the
  // pair's RX lock: callable from any thread not holding an RX lock.
  std::size_t deliver(std::uint16_t pair, std::span<const PacketView> pkts);

  std::uint16_t pairs() const { return options_.pairs; }
  const MacAddr& mac() const { return options_.mac; }
  std::uint16_t mtu() const { return options_.mtu; }
  // Largest frame the guest may send or be sent: MTU + Ethernet header + one VLAN tag.
  std::uint32_t max_frame() const { return options_.mtu + kEthHeaderLen + kVlanLen; }
  std::uint32_t hdr_len() const { return hdr_len_; }
  std::uint16_t active_pairs() const { return active_pairs_.load(std::memory_order_relaxed); }
  const PairCounters& counters(std::uint16_t pair) const;
  Port* port() const { return port_.get(); }

 private:
  struct Pair;
  enum class Drop : std::uint8_t;

  std::uint16_t ctrl_index() const { return static_cast<std::uint16_t>(2 * options_.pairs); }
  bool has_ctrl() const { return options_.pairs > 1; }

  void service_tx(Pair& p);
  template <class Ring>
  void drain_tx(Pair& p, VirtQueue& q, Ring& ring);
  template <class Ring>
  void transmit_held(Pair& p, VirtQueue& q, Ring& ring);
  template <class Ring>
  std::size_t pop_lone_tx(Pair& p, Ring& ring);
  template <class Ring>
  std::size_t pop_tx(Pair& p, VirtQueue& q, Ring& ring, std::uint32_t at);
  static bool plain_tx_buffer(const std::byte* data, std::uint32_t len, std::uint32_t hdr_len);
  static bool check_tx_fast(const vring::Chain& c, std::uint32_t hdr_len, PacketView& view);
  Drop check_tx(const vring::Chain& c, PacketView& view) const;
  void service_rx(Pair& p);
  template <class Ring>
  std::size_t deliver_locked(Pair& p, VirtQueue& q, Ring& ring, std::span<const PacketView> pkts);
  template <class Ring>
  void read_fd(Pair& p, VirtQueue& q, Ring& ring, int fd);
  void drop_fd_frames(Pair& p, int fd);
  void process_ctrl(VirtQueue& q);
  std::uint8_t handle_ctrl(const vring::Chain& c);
  void warn_once(Drop why, std::uint16_t queue);

  NetOptions options_;
  std::unique_ptr<Port> port_;
  std::vector<std::unique_ptr<Pair>> pairs_;
  std::uint32_t hdr_len_ = kNetHdrLen;  // set_features (control path, rings stopped)
  bool mergeable_ = false;
  bool csum_ = false;
  std::atomic<std::uint16_t> active_pairs_{1};
  std::atomic<std::uint32_t> warned_{0};  // Drop reasons already logged this connection
};

}  // namespace vireo::device::net

namespace vireo::device::net {

// vireo net --socket-path PATH [--server|--client] [--queues N] [--queue-size N] [--port SPEC]
//           [--mac MAC] [--mtu N] [--busy-poll] [--workers N] [--stats SECONDS]
// (device/net/net_cli.cpp; needs run_daemon from device/daemon.cpp.)
int net_main(int argc, char** argv, int first);

}  // namespace vireo::device::net
