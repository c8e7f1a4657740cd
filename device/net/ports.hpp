// The built-in ports (see port.hpp for the contract). make_port() builds them from their
// command-line spelling; tests may construct them directly.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "device/net/port.hpp"

namespace vireo::device::net {

// The guest's transmitted frames come back on its own receive queue (same pair). Lossless: a
// frame waits in its TX buffer until the guest posts a receive buffer for it.
class LoopbackPort final : public Port {
 public:
  const char* kind() const override { return "loopback"; }
  std::size_t transmit(std::uint16_t pair, std::span<const PacketView> pkts) override;
};

// Counts and drops what the guest transmits; sends nothing.
class SinkPort : public Port {
 public:
  const char* kind() const override { return "sink"; }
  std::size_t transmit(std::uint16_t pair, std::span<const PacketView> pkts) override;
  std::uint64_t packets() const { return packets_.load(std::memory_order_relaxed); }
  std::uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> packets_{0};  // fetch_add: pairs may transmit concurrently
  std::atomic<std::uint64_t> bytes_{0};
};

// A sink that also fills every receive buffer the guest posts with a `len`-byte IPv4/UDP frame
// (to the device MAC, from kPortMac, 10.0.0.1:9 -> 10.0.0.2:9), as fast as buffers arrive.
class SourcePort final : public SinkPort {
 public:
  explicit SourcePort(std::uint32_t len) : len_(len) {}
  const char* kind() const override { return "source"; }
  Status attach(NetBackend& dev) override;
  std::size_t pending(std::uint16_t pair, std::span<PacketView> out) override;

 private:
  std::uint32_t len_;
  std::vector<std::uint8_t> frame_;
  vring::Segment seg_{};
};

// Answers ARP requests for its IPv4 address and ICMP echo requests to it (from kPortMac), so a
// guest can ping it. Replies wait in a per-pair queue of kSlots frames (dropped when full).
class ResponderPort final : public Port {
 public:
  static constexpr std::uint32_t kSlots = 64;
  explicit ResponderPort(std::array<std::uint8_t, 4> ip);
  ~ResponderPort() override;
  const char* kind() const override { return "responder"; }
  Status attach(NetBackend& dev) override;
  std::size_t transmit(std::uint16_t pair, std::span<const PacketView> pkts) override;
  std::size_t pending(std::uint16_t pair, std::span<PacketView> out) override;
  void consume(std::uint16_t pair, std::size_t n) override;
  void reset() override;
  std::uint64_t replies() const { return replies_.load(std::memory_order_relaxed); }
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct Queue;
  // Builds the reply to `p` into `out` (slot_bytes_ long); returns its length, 0 for no reply.
  std::uint32_t answer(const PacketView& p, std::uint8_t* out) const;
  std::uint32_t answer_arp(const std::uint8_t* req, std::uint32_t len, std::uint8_t* out) const;
  std::uint32_t answer_icmp(const std::uint8_t* req, std::uint32_t len, std::uint8_t* out) const;

  std::array<std::uint8_t, 4> ip_;
  std::uint32_t slot_bytes_ = 0;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::atomic<std::uint64_t> replies_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

}  // namespace vireo::device::net
