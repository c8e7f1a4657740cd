// Virtio feature bits (VIRTIO 1.x §6 "Reserved Feature Bits") and the vhost-specific bits that share
// the same 64-bit word. Device-specific bits live with their device (device/net, device/blk).
//
//   if (has_feature(negotiated, kFEventIdx)) ...
#pragma once

#include <cstdint>

namespace vireo::vring {

// Bit numbers, named as in the spec with the VIRTIO_ prefix dropped.
inline constexpr unsigned kFNotifyOnEmpty = 24;    // legacy; transitional devices only
inline constexpr unsigned kFLogAll = 26;           // VHOST_F_LOG_ALL: dirty logging (not a VIRTIO bit)
inline constexpr unsigned kFAnyLayout = 27;        // legacy
inline constexpr unsigned kFIndirectDesc = 28;     // VIRTIO_F_INDIRECT_DESC (§2.7.5.3 / §2.8.7)
inline constexpr unsigned kFEventIdx = 29;         // VIRTIO_F_EVENT_IDX (§2.7.7, §2.7.10; §2.8.10)
inline constexpr unsigned kFProtocolFeatures = 30; // VHOST_USER_F_PROTOCOL_FEATURES (vhost-user)
inline constexpr unsigned kFVersion1 = 32;         // VIRTIO_F_VERSION_1
inline constexpr unsigned kFAccessPlatform = 33;   // VIRTIO_F_ACCESS_PLATFORM (ex IOMMU_PLATFORM)
inline constexpr unsigned kFRingPacked = 34;       // VIRTIO_F_RING_PACKED
inline constexpr unsigned kFInOrder = 35;          // VIRTIO_F_IN_ORDER
inline constexpr unsigned kFOrderPlatform = 36;    // VIRTIO_F_ORDER_PLATFORM
inline constexpr unsigned kFSrIov = 37;            // VIRTIO_F_SR_IOV
inline constexpr unsigned kFNotificationData = 38; // VIRTIO_F_NOTIFICATION_DATA
inline constexpr unsigned kFNotifConfigData = 39;  // VIRTIO_F_NOTIF_CONFIG_DATA
inline constexpr unsigned kFRingReset = 40;        // VIRTIO_F_RING_RESET

constexpr std::uint64_t feature_bit(unsigned bit) { return std::uint64_t{1} << bit; }
constexpr bool has_feature(std::uint64_t features, unsigned bit) {
  return (features & feature_bit(bit)) != 0;
}

}  // namespace vireo::vring
