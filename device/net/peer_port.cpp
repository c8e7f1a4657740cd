#include "device/net/peer_port.hpp"

#include "device/net/net_backend.hpp"

namespace vireo::device::net {

std::size_t PeerPort::transmit(std::uint16_t pair, std::span<const PacketView> pkts) {
  const auto to = static_cast<std::uint16_t>(pair % other_->pairs());
  const std::size_t delivered = other_->deliver(to, pkts);
  dropped_.fetch_add(pkts.size() - delivered, std::memory_order_relaxed);
  return pkts.size();
}

Status connect_peers(NetBackend& a, NetBackend& b) {
  if (Status s = a.set_port(std::make_unique<PeerPort>(b)); !s) return s;
  return b.set_port(std::make_unique<PeerPort>(a));
}

}  // namespace vireo::device::net
