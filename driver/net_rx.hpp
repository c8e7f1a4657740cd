// The RX fast path of NetDriver::recv(): one used RX buffer that holds a whole frame goes straight
// into the caller's RxPacket. Everything in the used element and the buffer is device-written, so
// it is checked here before it becomes a span; anything else is left to NetDriver's general
// (mergeable / dropping) path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "driver/net.hpp"
#include "vring/barriers.hpp"

namespace vireo::driver::detail {

// Where RX buffers live: buffer `slot` (the token the ring hands back) at host + slot * buf_size.
// Small and trivially copyable, so recv's reap loop keeps it in registers.
struct RxArea {
  const std::byte* host;
  std::uint32_t buf_size;
  bool mrg;  // VIRTIO_NET_F_MRG_RXBUF negotiated

  // True: the buffer holds a whole frame (used len from the header to the buffer size,
  // num_buffers 1 or no MRG_RXBUF) and pkt is that frame. False: pkt is untouched.
  bool take_whole(std::uint64_t token, std::uint32_t len, RxPacket& pkt) const {
    constexpr std::size_t kHdr = sizeof(proto::net::NetHdr);
    const auto slot = static_cast<std::uint16_t>(token);
    const std::byte* buf = host + std::size_t{slot} * buf_size;
    if (len < kHdr || len > buf_size) [[unlikely]]  // device-controlled length
      return false;
    // §5.1.6.4: num_buffers is 1 unless VIRTIO_NET_F_MRG_RXBUF was negotiated (read once).
    if (mrg && vring::read_once<std::uint16_t>(buf + offsetof(proto::net::NetHdr, num_buffers)) != 1)
      return false;
    pkt.segs[0] = std::span<const std::byte>(buf + kHdr, len - kHdr);
    pkt.slots[0] = slot;
    pkt.nsegs = 1;
    pkt.len = static_cast<std::uint32_t>(len - kHdr);
    return true;
  }
};

}  // namespace vireo::driver::detail
