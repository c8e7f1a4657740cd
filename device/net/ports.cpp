// loopback, sink, source, and make_port().
#include "device/net/ports.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <string>

#include "device/net/net_backend.hpp"
#include "device/net/packet.hpp"
#include "device/net/tap_port.hpp"

namespace vireo::device::net {

std::size_t LoopbackPort::transmit(std::uint16_t pair, std::span<const PacketView> pkts) {
  // One copy, TX buffer -> RX buffer, under the pair's RX lock; what does not fit waits.
  return dev_->deliver(pair, pkts);
}

std::size_t SinkPort::transmit(std::uint16_t, std::span<const PacketView> pkts) {
  std::uint64_t bytes = 0;
  for (const PacketView& p : pkts) bytes += p.len;
  packets_.fetch_add(pkts.size(), std::memory_order_relaxed);
  bytes_.fetch_add(bytes, std::memory_order_relaxed);
  return pkts.size();
}

Status SourcePort::attach(NetBackend& dev) {
  dev_ = &dev;
  if (len_ < kUdpFrameOverhead || len_ > dev.max_frame())
    return error("source frame length " + std::to_string(len_) + " is outside [" +
                 std::to_string(kUdpFrameOverhead) + ", " + std::to_string(dev.max_frame()) +
                 "] (an IPv4/UDP frame within MTU " + std::to_string(dev.mtu()) + ")");
  frame_.assign(len_, 0);
  const std::uint8_t src_ip[4] = {10, 0, 0, 1};
  const std::uint8_t dst_ip[4] = {10, 0, 0, 2};
  build_udp_frame(frame_.data(), len_, dev.mac(), kPortMac, src_ip, dst_ip);
  seg_ = vring::Segment{reinterpret_cast<std::byte*>(frame_.data()), len_, 0};
  return {};
}

std::size_t SourcePort::pending(std::uint16_t, std::span<PacketView> out) {
  // The same immutable frame, as many times as asked: the guest's buffers are the only limit.
  for (PacketView& v : out) v = PacketView{&seg_, 1, 0, len_};
  return out.size();
}

namespace {

Expected<std::uint32_t, std::string> parse_len(std::string_view s) {
  std::uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size())
    return Unexpected<std::string>("'" + std::string(s) + "' is not a frame length in bytes");
  return v;
}

}  // namespace

Expected<std::unique_ptr<Port>, std::string> make_port(std::string_view spec) {
  using R = Expected<std::unique_ptr<Port>, std::string>;
  if (spec == "loopback") return R(std::make_unique<LoopbackPort>());
  if (spec == "sink") return R(std::make_unique<SinkPort>());
  if (spec == "source") return R(std::make_unique<SourcePort>(64));
  if (spec.starts_with("source:")) {
    auto len = parse_len(spec.substr(7));
    if (!len) return Unexpected<std::string>(len.error());
    return R(std::make_unique<SourcePort>(*len));
  }
  if (spec.starts_with("responder=")) {
    const std::string ip(spec.substr(10));
    std::array<std::uint8_t, 4> addr{};
    if (::inet_pton(AF_INET, ip.c_str(), addr.data()) != 1)
      return Unexpected<std::string>("responder address '" + ip + "' is not an IPv4 address");
    return R(std::make_unique<ResponderPort>(addr));
  }
  if (spec.starts_with("tap:")) {
    const std::string name(spec.substr(4));
    if (name.empty() || name.size() >= 16)
      return Unexpected<std::string>("tap interface name '" + name + "' must be 1-15 characters");
    return R(std::make_unique<TapPort>(name));
  }
  if (spec.starts_with("peer:"))
    return Unexpected<std::string>("a peer port joins two devices; build it with connect_peers()");
  return Unexpected<std::string>("unknown port '" + std::string(spec) +
                                 "' (loopback, sink, source[:LEN], responder=IP, tap:IF, peer:PATH)");
}

}  // namespace vireo::device::net
