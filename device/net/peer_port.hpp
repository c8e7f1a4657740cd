// Peer ports: one process serves two vhost-user front-ends (two NetBackends) and forwards
// between them, a two-port switch. A's transmitted frames are copied once, straight from A's TX
// buffers into B's RX buffers (under B's pair RX lock), and vice versa; a frame for which the
// other guest has no receive buffer is dropped (counted), as a switch does.
//
//   NetBackend a(opt, nullptr), b(opt, nullptr);
//   connect_peers(a, b);              // each gets a PeerPort pointing at the other
//   std::thread t([&]{ run_daemon(b, b_opts, &stop); });  run_daemon(a, a_opts);
//
// Pair i of one side forwards to pair i % pairs of the other. Thread safety comes from the lock
// order in net_backend.hpp (TX lock, then any RX lock): both devices may run on their own
// workers. Each backend must outlive both.
#pragma once

#include <atomic>

#include "device/net/port.hpp"

namespace vireo::device::net {

class PeerPort final : public Port {
 public:
  explicit PeerPort(NetBackend& other) : other_(&other) {}
  const char* kind() const override { return "peer"; }
  std::size_t transmit(std::uint16_t pair, std::span<const PacketView> pkts) override;
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  NetBackend* other_;
  std::atomic<std::uint64_t> dropped_{0};
};

// Gives each device a PeerPort to the other.
Status connect_peers(NetBackend& a, NetBackend& b);

}  // namespace vireo::device::net
