// virtio-net (VIRTIO 1.x §5.1) wire definitions: feature bits, the per-packet header, the config
// space, control-queue commands, and the packet view the device hands to its ports.
//
//   NetHdr h{};                    // §5.1.6: precedes every packet on both queues
//   h.num_buffers = 1;             // RX only; the device fills it (§5.1.6.4.1)
//   PacketView p{segs, nsegs, /*skip=*/12, /*len=*/60};   // a TX packet, header stripped
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

#include "vring/chain.hpp"
#include "vring/features.hpp"

namespace vireo::device::net {

// §5.1.3 feature bits (VIRTIO_NET_F_ prefix dropped).
inline constexpr unsigned kFCsum = 0;
inline constexpr unsigned kFGuestCsum = 1;
inline constexpr unsigned kFMtu = 3;
inline constexpr unsigned kFMac = 5;
inline constexpr unsigned kFHostTso4 = 11;
inline constexpr unsigned kFMrgRxbuf = 15;
inline constexpr unsigned kFStatus = 16;
inline constexpr unsigned kFCtrlVq = 17;
inline constexpr unsigned kFMq = 22;

// vhost-user protocol feature bits this device asks for (vhost-user.rst "Protocol features").
inline constexpr unsigned kProtocolFMq = 0;
inline constexpr unsigned kProtocolFConfig = 9;

// §5.1.6 struct virtio_net_hdr (the v1 layout: 12 bytes, num_buffers always present with
// VIRTIO_F_VERSION_1 or MRG_RXBUF; 10 bytes for a legacy driver without MRG_RXBUF).
struct NetHdr {
  std::uint8_t flags;
  std::uint8_t gso_type;
  std::uint16_t hdr_len;
  std::uint16_t gso_size;
  std::uint16_t csum_start;
  std::uint16_t csum_offset;
  std::uint16_t num_buffers;
};
static_assert(sizeof(NetHdr) == 12);
inline constexpr std::uint32_t kNetHdrLen = 12;
inline constexpr std::uint32_t kLegacyNetHdrLen = 10;
inline constexpr std::uint8_t kHdrFNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
inline constexpr std::uint8_t kHdrGsoNone = 0;     // VIRTIO_NET_HDR_GSO_NONE

// §5.1.4 struct virtio_net_config, up to supported_hash_types (RSS fields stay 0).
struct NetConfig {
  std::array<std::uint8_t, 6> mac;
  std::uint16_t status;
  std::uint16_t max_virtqueue_pairs;
  std::uint16_t mtu;
  std::uint32_t speed;
  std::uint8_t duplex;
  std::uint8_t rss_max_key_size;
  std::uint16_t rss_max_indirection_table_length;
  std::uint32_t supported_hash_types;
};
static_assert(sizeof(NetConfig) == 24);
static_assert(offsetof(NetConfig, status) == 6 && offsetof(NetConfig, mtu) == 10);
inline constexpr std::uint16_t kStatusLinkUp = 1;       // VIRTIO_NET_S_LINK_UP
inline constexpr std::uint32_t kSpeedUnknown = 0xFFFFFFFFu;
inline constexpr std::uint8_t kDuplexUnknown = 0xFF;

// §5.1.6.5 control virtqueue.
inline constexpr std::uint8_t kCtrlOk = 0;    // VIRTIO_NET_OK
inline constexpr std::uint8_t kCtrlErr = 1;   // VIRTIO_NET_ERR
inline constexpr std::uint8_t kCtrlMq = 4;    // VIRTIO_NET_CTRL_MQ
inline constexpr std::uint8_t kCtrlMqVqPairsSet = 0;  // VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET
inline constexpr std::uint16_t kMqPairsMin = 1;       // VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN
inline constexpr std::uint16_t kMqPairsMax = 0x8000;  // VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX

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
