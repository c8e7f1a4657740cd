// virtio-net wire format (VIRTIO 1.x §5.1): feature bits, the per-packet header, the config space
// and the control-queue commands. The one definition both sides use: the device (device/net) and
// the driver (driver/net).
//
//   NetHdr h{};                    // §5.1.6: precedes every packet on both queues
//   h.num_buffers = 1;             // RX only; the device fills it (§5.1.6.4.1)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace vireo::proto::net {

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

}  // namespace vireo::proto::net
