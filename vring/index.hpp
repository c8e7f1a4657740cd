// Index arithmetic shared by both ring layouts, as small value types.
//
//   need_event(used_event, new_used, old_used)   // §2.7.10 EVENT_IDX test
//   PackedCursor c{0, true}; c.advance(3, size);  // packed index + wrap counter
//   encode_off_wrap(c)                            // §2.8.10 desc_event_off | desc_event_wrap << 15
#pragma once

#include <cstdint>

namespace vireo::vring {

// Split-ring indexes are free-running 16-bit counters (§2.7.6: "idx ... wraps naturally");
// a slot is idx & (size - 1). Distances are computed in uint16_t arithmetic.
constexpr std::uint16_t ring_distance(std::uint16_t newer, std::uint16_t older) {
  return static_cast<std::uint16_t>(newer - older);
}

// §2.7.10 (and the Linux/DPDK vring_need_event): after moving an index from `old_idx` to `new_idx`,
// the other side asked to be notified when the index passes `event`. True when `event` lies in
// the half-open window [old_idx, new_idx) modulo 2^16.
constexpr bool need_event(std::uint16_t event, std::uint16_t new_idx, std::uint16_t old_idx) {
  return static_cast<std::uint16_t>(new_idx - event - 1) <
         static_cast<std::uint16_t>(new_idx - old_idx);
}

// A position in a packed ring: slot index plus the wrap counter that flips each time the index
// wraps past the end (§2.8.1). Both the driver and the device keep one per direction.
struct PackedCursor {
  std::uint16_t idx = 0;
  bool wrap = true;  // §2.8.1: "the Driver Ring Wrap Counter ... initialized to 1"

  constexpr void advance(std::uint16_t n, std::uint16_t size) {
    std::uint32_t next = std::uint32_t{idx} + n;
    if (next >= size) {
      next -= size;
      wrap = !wrap;
    }
    idx = static_cast<std::uint16_t>(next);
  }
  friend constexpr bool operator==(PackedCursor, PackedCursor) = default;
};

// §2.8.10: desc_event_off in bits 0..14, desc_event_wrap in bit 15.
inline constexpr std::uint16_t kOffWrapWrapBit = 1u << 15;
constexpr std::uint16_t encode_off_wrap(PackedCursor c) {
  return static_cast<std::uint16_t>((c.idx & 0x7fffu) | (c.wrap ? kOffWrapWrapBit : 0u));
}
constexpr PackedCursor decode_off_wrap(std::uint16_t off_wrap) {
  return PackedCursor{static_cast<std::uint16_t>(off_wrap & 0x7fffu),
                      (off_wrap & kOffWrapWrapBit) != 0};
}

// Packed EVENT_IDX (§2.8.10 with RING_EVENT_FLAGS_DESC): the other side asked for a notification
// when the ring position `event` is passed. `old_pos` and `new_pos` are the positions before and
// after this batch (new_pos.idx - old_pos.idx may wrap). The event offset is turned into the same
// linear space by moving it back one ring length when its wrap counter differs from `new_pos`'s,
// then the split-ring window test applies (as DPDK vhost_vring_call_packed does).
constexpr bool need_event_packed(std::uint16_t event_off_wrap, PackedCursor old_pos,
                                 PackedCursor new_pos, std::uint16_t size) {
  PackedCursor event = decode_off_wrap(event_off_wrap);
  std::uint16_t new_lin = new_pos.idx;
  std::uint16_t old_lin = old_pos.idx;
  if (old_pos.wrap != new_pos.wrap) old_lin = static_cast<std::uint16_t>(old_lin - size);
  std::uint16_t event_lin = event.idx;
  if (event.wrap != new_pos.wrap) event_lin = static_cast<std::uint16_t>(event_lin - size);
  return need_event(event_lin, new_lin, old_lin);
}

// The state of one ring as vhost-user GET_VRING_BASE returns it and SET_VRING_BASE restores it.
// Split: next_avail only (used_idx is re-read from the ring). Packed: both positions.
struct RingState {
  PackedCursor avail;  // split: avail.idx = next avail index (free-running), wrap unused
  PackedCursor used;   // packed only: next used slot and the device's used wrap counter
  friend constexpr bool operator==(RingState, RingState) = default;
};

}  // namespace vireo::vring
