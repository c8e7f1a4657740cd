// TapPort: a Linux TAP interface (/dev/net/tun, IFF_TAP | IFF_NO_PI; IFF_MULTI_QUEUE with more
// than one pair, one fd per pair). Guest frames are written with writev straight from guest
// memory; host frames are read with readv straight into the guest's receive buffers (the fd is
// the RX queue's completion_fd, so the worker polls it). No extra copy either way.
//
//   auto port = std::make_unique<TapPort>("vireo0");   // opened in attach(); link set up
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "device/net/port.hpp"
#include "proto/sys/unique_fd.hpp"

namespace vireo::device::net {

class TapPort final : public Port {
 public:
  explicit TapPort(std::string ifname) : name_(std::move(ifname)) {}
  const char* kind() const override { return "tap"; }
  Status attach(NetBackend& dev) override;
  std::size_t transmit(std::uint16_t pair, std::span<const PacketView> pkts) override;
  int rx_fd(std::uint16_t pair) const override {
    return pair < fds_.size() ? fds_[pair].get() : -1;
  }
  const std::string& ifname() const { return name_; }
  std::uint64_t tx_dropped() const { return tx_dropped_.load(std::memory_order_relaxed); }

 private:
  std::string name_;
  std::vector<proto::UniqueFd> fds_;
  std::vector<std::vector<std::byte>> scratch_;  // per pair: linearises very long TX chains
  std::atomic<std::uint64_t> tx_dropped_{0};
  std::atomic<bool> warned_{false};
};

}  // namespace vireo::device::net
