// What the virtio-net device (VIRTIO 1.x §5.1) adds to the wire format of proto/virtio_net.hpp:
// the vhost-user protocol features it asks for, MAC parsing, and the packet view it hands to its
// ports.
//
//   PacketView p{segs, nsegs, /*skip=*/12, /*len=*/60};   // a TX packet, header stripped
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

#include "proto/virtio_net.hpp"
#include "vring/chain.hpp"
#include "vring/features.hpp"

namespace vireo::device::net {

// The virtio-net wire definitions (kFMrgRxbuf, NetHdr, NetConfig, ...) are this device's vocabulary.
using namespace vireo::proto::net;

// vhost-user protocol feature bits this device asks for (vhost-user.rst "Protocol features").
inline constexpr unsigned kProtocolFMq = 0;
inline constexpr unsigned kProtocolFConfig = 9;

inline constexpr std::uint32_t kEthHeaderLen = 14;
inline constexpr std::uint32_t kVlanLen = 4;

using MacAddr = std::array<std::uint8_t, 6>;
// "52:54:00:12:34:56" -> bytes; nullopt if malformed.
std::optional<MacAddr> parse_mac(std::string_view text);

// One packet as a sequence of host segments: `len` bytes starting `skip` bytes into segs[0]
// (the virtio-net header, or nothing). Points into guest memory (TX chains) or into a port's own
// buffer; valid only for the duration of the call it is passed to.
struct PacketView {
  const vring::Segment* segs = nullptr;
  std::uint32_t nsegs = 0;
  std::uint32_t skip = 0;
  std::uint32_t len = 0;
};

// memmove for one frame, inline for the common short lengths (16..64 bytes: every byte is loaded
// before any is stored, so overlapping buffers are fine); anything else calls memmove.
inline void move_frame(std::byte* dst, const std::byte* src, std::size_t n) noexcept {
  // Unaligned 16-byte vectors that may alias anything (guest buffers, port memory).
  typedef char V16 __attribute__((vector_size(16), aligned(1), may_alias));
  if (n >= 32 && n <= 64) {
    const V16 a = *reinterpret_cast<const V16*>(src);
    const V16 b = *reinterpret_cast<const V16*>(src + 16);
    const V16 c = *reinterpret_cast<const V16*>(src + n - 32);
    const V16 d = *reinterpret_cast<const V16*>(src + n - 16);
    *reinterpret_cast<V16*>(dst) = a;
    *reinterpret_cast<V16*>(dst + 16) = b;
    *reinterpret_cast<V16*>(dst + n - 32) = c;
    *reinterpret_cast<V16*>(dst + n - 16) = d;
  } else if (n >= 16 && n < 32) {
    const V16 a = *reinterpret_cast<const V16*>(src);
    const V16 b = *reinterpret_cast<const V16*>(src + n - 16);
    *reinterpret_cast<V16*>(dst) = a;
    *reinterpret_cast<V16*>(dst + n - 16) = b;
  } else {
    std::memmove(dst, src, n);
  }
}

// The general copy_out (any offset, any number of segments).
std::size_t copy_out_segments(const PacketView& p, std::size_t offset, std::byte* out, std::size_t max);

// Copies up to `max` payload bytes starting at `offset` into `out`; returns the bytes copied.
// A whole one-segment packet (the common case) is copied inline.
inline std::size_t copy_out(const PacketView& p, std::size_t offset, std::byte* out, std::size_t max) {
  if (offset == 0 && p.nsegs == 1 && p.len <= max && std::uint64_t{p.skip} + p.len <= p.segs[0].len) [[likely]] {
    move_frame(out, p.segs[0].data + p.skip, p.len);
    return p.len;
  }
  return copy_out_segments(p, offset, out, max);
}

}  // namespace vireo::device::net
