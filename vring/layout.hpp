// On-wire layouts of the virtio 1.x split (§2.7) and packed (§2.8) virtqueues.
//
// All ring fields are little-endian (§2.7 "Virtqueues ... little-endian"). Vireo targets
// little-endian hosts (x86-64, arm64), so the structs below use native integers and a static_assert
// guards the assumption. Every struct that points into shared memory is guest-controlled: read each
// field once into a local before validating it (no double fetch).
//
//   SplitRingView v = SplitRingView::at(desc_host, avail_host, used_host, 256);
//   v.avail_ring[slot] ... *v.used_event ...
#pragma once

#include "base/limits.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vireo::vring {

static_assert(std::endian::native == std::endian::little,
              "virtio 1.x rings are little-endian; Vireo supports little-endian hosts only");

// Descriptor flags shared by both layouts (§2.7.5, §2.8.4).
inline constexpr std::uint16_t kDescFNext = 1;      // VIRTQ_DESC_F_NEXT
inline constexpr std::uint16_t kDescFWrite = 2;     // VIRTQ_DESC_F_WRITE: device-writable
inline constexpr std::uint16_t kDescFIndirect = 4;  // VIRTQ_DESC_F_INDIRECT
// Packed-only descriptor flags (§2.8.1).
inline constexpr std::uint16_t kDescFAvail = 1u << 7;  // VIRTQ_DESC_F_AVAIL
inline constexpr std::uint16_t kDescFUsed = 1u << 15;  // VIRTQ_DESC_F_USED

// Maximum queue size for both layouts (§2.7 "Queue Size ... maximum 32768", §2.8).
inline constexpr std::uint32_t kMaxQueueSize = limits::kMaxQueueSize;

// ---------------------------------------------------------------------------------------------
// Split virtqueue (§2.7)
// ---------------------------------------------------------------------------------------------

// §2.7.5 The Virtqueue Descriptor Table. Table alignment 16.
struct SplitDesc {
  std::uint64_t addr;   // guest-physical address
  std::uint32_t len;
  std::uint16_t flags;  // kDescFNext | kDescFWrite | kDescFIndirect
  std::uint16_t next;
};
static_assert(sizeof(SplitDesc) == 16);
static_assert(offsetof(SplitDesc, addr) == 0 && offsetof(SplitDesc, len) == 8 &&
              offsetof(SplitDesc, flags) == 12 && offsetof(SplitDesc, next) == 14);

// §2.7.6 The Virtqueue Available Ring: flags, idx, ring[N], used_event (EVENT_IDX only). Align 2.
inline constexpr std::uint16_t kAvailFNoInterrupt = 1;  // VIRTQ_AVAIL_F_NO_INTERRUPT

// §2.7.8 The Virtqueue Used Ring: flags, idx, ring[N] of UsedElem, avail_event. Align 4.
inline constexpr std::uint16_t kUsedFNoNotify = 1;  // VIRTQ_USED_F_NO_NOTIFY
struct UsedElem {
  std::uint32_t id;   // index of the head of the used descriptor chain
  std::uint32_t len;  // bytes written into the device-writable part
};
static_assert(sizeof(UsedElem) == 8);

inline constexpr std::size_t kSplitDescAlign = 16;
inline constexpr std::size_t kSplitAvailAlign = 2;
inline constexpr std::size_t kSplitUsedAlign = 4;

constexpr std::size_t split_desc_bytes(std::uint32_t n) { return 16u * n; }
constexpr std::size_t split_avail_bytes(std::uint32_t n) { return 6u + 2u * n; }  // incl. used_event
constexpr std::size_t split_used_bytes(std::uint32_t n) { return 6u + 8u * n; }   // incl. avail_event

// Typed pointers into the three split-ring areas. Built once per SET_VRING_ADDR / memory-table
// change; every pointer is into guest-controlled memory.
struct SplitRingView {
  SplitDesc* desc = nullptr;
  std::uint16_t* avail_flags = nullptr;
  std::uint16_t* avail_idx = nullptr;
  std::uint16_t* avail_ring = nullptr;
  std::uint16_t* used_event = nullptr;  // after avail ring[N]
  std::uint16_t* used_flags = nullptr;
  std::uint16_t* used_idx = nullptr;
  UsedElem* used_ring = nullptr;
  std::uint16_t* avail_event = nullptr;  // after used ring[N]
  std::uint16_t size = 0;

  static SplitRingView at(void* desc_area, void* avail_area, void* used_area, std::uint16_t n) {
    SplitRingView v;
    auto* a = static_cast<std::uint16_t*>(avail_area);
    auto* u = static_cast<std::uint16_t*>(used_area);
    v.desc = static_cast<SplitDesc*>(desc_area);
    v.avail_flags = a;
    v.avail_idx = a + 1;
    v.avail_ring = a + 2;
    v.used_event = a + 2 + n;
    v.used_flags = u;
    v.used_idx = u + 1;
    v.used_ring = reinterpret_cast<UsedElem*>(u + 2);
    v.avail_event = reinterpret_cast<std::uint16_t*>(reinterpret_cast<std::byte*>(u) + 4 + 8u * n);
    v.size = n;
    return v;
  }
};

// ---------------------------------------------------------------------------------------------
// Packed virtqueue (§2.8)
// ---------------------------------------------------------------------------------------------

// §2.8.13 struct pvirtq_desc. Ring alignment 16.
struct PackedDesc {
  std::uint64_t addr;
  std::uint32_t len;
  std::uint16_t id;     // buffer id; meaningful in the last descriptor of a chain (§2.8.6)
  std::uint16_t flags;  // kDescFNext/Write/Indirect | kDescFAvail | kDescFUsed
};
static_assert(sizeof(PackedDesc) == 16);
static_assert(offsetof(PackedDesc, addr) == 0 && offsetof(PackedDesc, len) == 8 &&
              offsetof(PackedDesc, id) == 12 && offsetof(PackedDesc, flags) == 14);

// len, id and flags of a descriptor as one little-endian 8-byte word (offsets 8, 12, 14), and
// its store: ONE store for a descriptor that the release store of ANOTHER descriptor's flags
// publishes (a batch's later descriptors, §2.8.21.1 and §2.8.9: the other side polls only the
// batch's first, and reads these after acquiring its flags, so no order among the three fields
// is needed). Flags move within the word as desc_word(0, 0, f).
constexpr std::uint64_t desc_word(std::uint32_t len, std::uint16_t id, std::uint16_t flags) {
  return len | std::uint64_t{id} << 32 | std::uint64_t{flags} << 48;
}
inline void store_desc_word(PackedDesc& d, std::uint64_t word) {
  std::memcpy(reinterpret_cast<std::byte*>(&d) + offsetof(PackedDesc, len), &word, sizeof word);
}

// §2.8.10 struct pvirtq_event_suppress: one written by the driver (read by the device), one
// written by the device (read by the driver). Alignment 4.
struct EventSuppress {
  std::uint16_t off_wrap;  // desc_event_off:15 | desc_event_wrap:1
  std::uint16_t flags;     // desc_event_flags:2 (kRingEventFlags*)
};
static_assert(sizeof(EventSuppress) == 4);
inline constexpr std::uint16_t kRingEventFlagsEnable = 0x0;   // RING_EVENT_FLAGS_ENABLE
inline constexpr std::uint16_t kRingEventFlagsDisable = 0x1;  // RING_EVENT_FLAGS_DISABLE
inline constexpr std::uint16_t kRingEventFlagsDesc = 0x2;     // RING_EVENT_FLAGS_DESC (EVENT_IDX)

inline constexpr std::size_t kPackedDescAlign = 16;
inline constexpr std::size_t kPackedEventAlign = 4;
constexpr std::size_t packed_desc_bytes(std::uint32_t n) { return 16u * n; }

// In vhost-user SET_VRING_ADDR the three addresses are reused for packed rings:
// desc = descriptor ring, avail = driver event suppression, used = device event suppression.
struct PackedRingView {
  PackedDesc* desc = nullptr;
  EventSuppress* driver_event = nullptr;  // written by the driver: when the device should call
  EventSuppress* device_event = nullptr;  // written by the device: when the driver should kick
  std::uint16_t size = 0;

  static PackedRingView at(void* desc_area, void* driver_area, void* device_area, std::uint16_t n) {
    return PackedRingView{static_cast<PackedDesc*>(desc_area),
                          static_cast<EventSuppress*>(driver_area),
                          static_cast<EventSuppress*>(device_area), n};
  }
};

// Queue sizes: split must be a power of two (§2.7); packed need not be (§2.8). Both 1..32768.
constexpr bool valid_split_size(std::uint32_t n) {
  return n >= 1 && n <= kMaxQueueSize && std::has_single_bit(n);
}
constexpr bool valid_packed_size(std::uint32_t n) { return n >= 1 && n <= kMaxQueueSize; }

}  // namespace vireo::vring
