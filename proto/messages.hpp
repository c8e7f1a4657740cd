// The vhost-user wire vocabulary (QEMU docs/interop/vhost-user.rst, "Message Specification",
// "Front-end message types", "Back-end message types", "Protocol features").
//
//   VringState st{.index = 0, .num = 256};
//   auto r = conn.request(FrontendReq::set_vring_num, as_bytes(st), {}, /*need_reply=*/true);
//   std::uint32_t wire = encode_vring_base(VringBase{.avail_idx = 7, .avail_wrap = true}, /*packed=*/true);
//
// All integers are host byte order (rst: "All numbers are in the machine native byte order").
// Payload structs are plain bytes copied off the socket: everything in them is peer-controlled
// and must be validated (message_table.hpp) before use.
#pragma once

#include "base/limits.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

namespace vireo::proto {

// rst "Front-end message types": ids 1..43, names verbatim minus the VHOST_USER_ prefix.
enum class FrontendReq : std::uint32_t {
  get_features = 1,
  set_features = 2,
  set_owner = 3,
  reset_owner = 4,
  set_mem_table = 5,
  set_log_base = 6,
  set_log_fd = 7,
  set_vring_num = 8,
  set_vring_addr = 9,
  set_vring_base = 10,
  get_vring_base = 11,
  set_vring_kick = 12,
  set_vring_call = 13,
  set_vring_err = 14,
  get_protocol_features = 15,
  set_protocol_features = 16,
  get_queue_num = 17,
  set_vring_enable = 18,
  send_rarp = 19,
  net_set_mtu = 20,
  set_backend_req_fd = 21,  // previous name SET_SLAVE_REQ_FD
  iotlb_msg = 22,
  set_vring_endian = 23,
  get_config = 24,
  set_config = 25,
  create_crypto_session = 26,
  close_crypto_session = 27,
  postcopy_advise = 28,
  postcopy_listen = 29,
  postcopy_end = 30,
  get_inflight_fd = 31,
  set_inflight_fd = 32,
  gpu_set_socket = 33,
  reset_device = 34,
  vring_kick = 35,
  get_max_mem_slots = 36,
  add_mem_reg = 37,
  rem_mem_reg = 38,
  set_status = 39,
  get_status = 40,
  get_shared_object = 41,
  set_device_state_fd = 42,
  check_device_state = 43,
};
inline constexpr std::uint32_t kFrontendReqMax = 43;

// rst "Back-end message types" (sent on the SET_BACKEND_REQ_FD channel): ids 1..8.
enum class BackendReq : std::uint32_t {
  backend_iotlb_msg = 1,
  backend_config_change_msg = 2,
  backend_vring_host_notifier_msg = 3,
  backend_vring_call = 4,
  backend_vring_err = 5,
  backend_shared_object_add = 6,
  backend_shared_object_remove = 7,
  backend_shared_object_lookup = 8,
};
inline constexpr std::uint32_t kBackendReqMax = 8;

// "SET_VRING_NUM" / "BACKEND_VRING_CALL"; "UNKNOWN" for ids outside the rst.
std::string_view to_string(FrontendReq req);
std::string_view to_string(BackendReq req);

// ---- Protocol feature bit numbers (rst "Protocol features", VHOST_USER_PROTOCOL_F_*) ----
inline constexpr unsigned kProtoFMq = 0;
inline constexpr unsigned kProtoFLogShmfd = 1;
inline constexpr unsigned kProtoFRarp = 2;
inline constexpr unsigned kProtoFReplyAck = 3;
inline constexpr unsigned kProtoFMtu = 4;
inline constexpr unsigned kProtoFBackendReq = 5;
inline constexpr unsigned kProtoFCrossEndian = 6;
inline constexpr unsigned kProtoFCryptoSession = 7;
inline constexpr unsigned kProtoFPagefault = 8;
inline constexpr unsigned kProtoFConfig = 9;
inline constexpr unsigned kProtoFBackendSendFd = 10;
inline constexpr unsigned kProtoFHostNotifier = 11;
inline constexpr unsigned kProtoFInflightShmfd = 12;
inline constexpr unsigned kProtoFResetDevice = 13;
inline constexpr unsigned kProtoFInbandNotifications = 14;
inline constexpr unsigned kProtoFConfigureMemSlots = 15;
inline constexpr unsigned kProtoFStatus = 16;
inline constexpr unsigned kProtoFXenMmap = 17;
inline constexpr unsigned kProtoFSharedObject = 18;
inline constexpr unsigned kProtoFDeviceState = 19;

constexpr std::uint64_t proto_bit(unsigned bit) { return std::uint64_t{1} << bit; }
constexpr bool has_proto(std::uint64_t features, unsigned bit) { return (features >> bit) & 1u; }

// Virtio feature bits that belong to vhost-user rather than a device (rst "Communication",
// "Migration").
inline constexpr unsigned kVhostUserFProtocolFeatures = 30;
inline constexpr unsigned kVhostFLogAll = 26;
inline constexpr std::uint64_t kVhostLogPage = 0x1000;

// ---- Header (rst "Header") ----
struct MsgHeader {
  std::uint32_t request;
  std::uint32_t flags;
  std::uint32_t size;
};
static_assert(sizeof(MsgHeader) == 12);
inline constexpr std::size_t kHeaderSize = sizeof(MsgHeader);

inline constexpr std::uint32_t kVersionMask = 0x3;   // bits 0-1
inline constexpr std::uint32_t kVersion = 0x1;       // "currently 0x01"
inline constexpr std::uint32_t kFlagReply = 1u << 2;
inline constexpr std::uint32_t kFlagNeedReply = 1u << 3;

// ---- Payloads (rst "Payload"; sizes as QEMU puts them on the wire) ----
struct U64 {
  std::uint64_t u64;
};
static_assert(sizeof(U64) == 8);

// "A vring state description".
struct VringState {
  std::uint32_t index;
  std::uint32_t num;
};
static_assert(sizeof(VringState) == 8);

// "A vring address description" (struct vhost_vring_addr). Addresses are front-end virtual
// addresses, or IOVAs with VIRTIO_F_IOMMU_PLATFORM. The rst table's "size" column has no field.
struct VringAddr {
  std::uint32_t index;
  std::uint32_t flags;
  std::uint64_t desc_user_addr;
  std::uint64_t used_user_addr;
  std::uint64_t avail_user_addr;
  std::uint64_t log_guest_addr;
};
static_assert(sizeof(VringAddr) == 40);
inline constexpr std::uint32_t kVringFLog = 1u << 0;  // VHOST_VRING_F_LOG

// "Memory region description".
struct MemoryRegion {
  std::uint64_t guest_phys_addr;
  std::uint64_t memory_size;
  std::uint64_t userspace_addr;
  std::uint64_t mmap_offset;
};
static_assert(sizeof(MemoryRegion) == 32);
// With VHOST_USER_PROTOCOL_F_XEN_MMAP each region carries u32 xen_mmap_flags, u32 domid more.
inline constexpr std::size_t kMemoryRegionXenSize = sizeof(MemoryRegion) + 8;

// "Multiple Memory regions description" (VhostUserMemory). On the wire only nregions entries
// are sent: size == 8 + 32 * nregions.
inline constexpr std::uint32_t kMemoryBaselineNregions = limits::kMaxRegionsPerTable;  // VHOST_MEMORY_BASELINE_NREGIONS
struct MemoryTable {
  std::uint32_t nregions;
  std::uint32_t padding;
  MemoryRegion regions[kMemoryBaselineNregions];
};
static_assert(sizeof(MemoryTable) == 8 + 8 * 32);
inline constexpr std::size_t kMemoryTableHeaderSize = 8;

// "Single memory region description" (ADD_MEM_REG / REM_MEM_REG).
struct SingleMemRegion {
  std::uint64_t padding;
  MemoryRegion region;
};
static_assert(sizeof(SingleMemRegion) == 40);

// "Log description" (SET_LOG_BASE with LOG_SHMFD).
struct LogDesc {
  std::uint64_t mmap_size;
  std::uint64_t mmap_offset;
};
static_assert(sizeof(LogDesc) == 16);

// "An IOTLB message" (struct vhost_iotlb_msg: not packed, 6 bytes tail padding -> 32).
struct IotlbMsg {
  std::uint64_t iova;
  std::uint64_t size;
  std::uint64_t uaddr;
  std::uint8_t perm;  // 0 none, 1 RO, 2 WO, 3 RW
  std::uint8_t type;  // 1 miss, 2 update, 3 invalidate, 4 access fail
  std::uint8_t padding[6];
};
static_assert(sizeof(IotlbMsg) == 32);
inline constexpr std::uint8_t kIotlbMiss = 1, kIotlbUpdate = 2, kIotlbInvalidate = 3,
                              kIotlbAccessFail = 4;

// "Virtio device config space": this header, then `size` bytes (VhostUserConfig).
struct ConfigHeader {
  std::uint32_t offset;
  std::uint32_t size;
  std::uint32_t flags;  // kConfigFlagWritable (0) or kConfigFlagLiveMigration (1)
};
static_assert(sizeof(ConfigHeader) == 12);
inline constexpr std::uint32_t kMaxConfigSize = limits::kMaxConfigSize;  // VHOST_USER_MAX_CONFIG_SIZE
inline constexpr std::uint32_t kConfigFlagWritable = 0;
inline constexpr std::uint32_t kConfigFlagLiveMigration = 1;

// "Vring area description" (BACKEND_VRING_HOST_NOTIFIER_MSG): u64 = vring index | flags.
struct VringArea {
  std::uint64_t u64;
  std::uint64_t size;
  std::uint64_t offset;
};
static_assert(sizeof(VringArea) == 24);

// "Inflight description" (VhostUserInflight). NOT packed in QEMU/libvhost-user/DPDK: 20 bytes
// of fields + 4 bytes tail padding, and QEMU sends size 24.
struct InflightDesc {
  std::uint64_t mmap_size;
  std::uint64_t mmap_offset;
  std::uint16_t num_queues;
  std::uint16_t queue_size;
  std::uint16_t padding[2];
};
static_assert(sizeof(InflightDesc) == 24);

// "VhostUserShared": a UUID (first three components big endian).
struct SharedObject {
  std::uint8_t uuid[16];
};
static_assert(sizeof(SharedObject) == 16);

// "Device state transfer parameters" (SET_DEVICE_STATE_FD).
struct DeviceStateTransfer {
  std::uint32_t direction;  // 0 save (back-end -> front-end), 1 load
  std::uint32_t phase;      // 0 stopped
};
static_assert(sizeof(DeviceStateTransfer) == 8);

// ---- SET_VRING_KICK / CALL / ERR u64 (and SET_DEVICE_STATE_FD reply) ----
// "Bits (0-7) of the payload contain the vring index. Bit 8 is the invalid FD flag."
inline constexpr std::uint64_t kVringIdxMask = 0xff;
inline constexpr std::uint64_t kVringNofdMask = std::uint64_t{1} << 8;

constexpr std::uint64_t encode_vring_file(std::uint8_t index, bool nofd) {
  return std::uint64_t{index} | (nofd ? kVringNofdMask : 0);
}
constexpr std::uint8_t vring_file_index(std::uint64_t v) {
  return static_cast<std::uint8_t>(v & kVringIdxMask);
}
constexpr bool vring_file_nofd(std::uint64_t v) { return (v & kVringNofdMask) != 0; }

// ---- SET/GET_VRING_BASE "num" (rst "A vring descriptor index for split virtqueues",
// "Vring descriptor indices for packed virtqueues") ----
struct VringBase {
  std::uint16_t avail_idx = 0;  // split: full 16-bit next avail; packed: 15 bits
  bool avail_wrap = false;      // packed only
  std::uint16_t used_idx = 0;   // packed only (split reads used->idx from memory)
  bool used_wrap = false;       // packed only
  friend constexpr bool operator==(const VringBase&, const VringBase&) = default;
};

// Split: bits 0-15 next avail index, 16-31 reserved zero.
constexpr std::uint32_t encode_split_base(std::uint16_t next_avail) { return next_avail; }
constexpr std::uint16_t decode_split_base(std::uint32_t num) {
  return static_cast<std::uint16_t>(num & 0xffff);
}
constexpr bool split_base_reserved_clear(std::uint32_t num) { return (num >> 16) == 0; }

// Packed: bits 0-14 last_avail_idx, 15 avail wrap, 16-30 last_used_idx, 31 used wrap.
constexpr std::uint32_t encode_packed_base(const VringBase& b) {
  return (std::uint32_t{b.avail_idx} & 0x7fff) | (b.avail_wrap ? 1u << 15 : 0u) |
         ((std::uint32_t{b.used_idx} & 0x7fff) << 16) | (b.used_wrap ? 1u << 31 : 0u);
}
constexpr VringBase decode_packed_base(std::uint32_t num) {
  return VringBase{static_cast<std::uint16_t>(num & 0x7fff), ((num >> 15) & 1u) != 0,
                   static_cast<std::uint16_t>((num >> 16) & 0x7fff), ((num >> 31) & 1u) != 0};
}

constexpr std::uint32_t encode_vring_base(const VringBase& b, bool packed) {
  return packed ? encode_packed_base(b) : encode_split_base(b.avail_idx);
}
constexpr VringBase decode_vring_base(std::uint32_t num, bool packed) {
  return packed ? decode_packed_base(num) : VringBase{decode_split_base(num), false, 0, false};
}

// View of a payload struct as bytes, for Connection::send.
template <class T>
  requires std::is_trivially_copyable_v<T>
std::span<const std::byte> as_bytes(const T& v) {
  return {reinterpret_cast<const std::byte*>(&v), sizeof(T)};
}

}  // namespace vireo::proto
