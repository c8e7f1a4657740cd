// Where a device should resume a packed ring, read from the descriptor flags themselves.
//
// A packed ring has no index in shared memory (§2.8): the device's position lives only in the
// device. When a back-end crashes, the front-end cannot ask it for the position (GET_VRING_BASE
// fails), and QEMU then sends the next back-end the position it last knew: for a packed ring the
// one from the previous clean stop, or the initial one (rst "Ring states"; QEMU's packed
// last_avail_idx restore is a no-op). Resuming there stalls the ring for good.
//
//   if (!packed_base_plausible(view, base)) base = packed_position_from_ring(view);
//
// The descriptor flags tell the true position (§2.8.1, §2.8.6): the driver writes AVAIL = its wrap
// counter and USED = the inverse when it makes a descriptor available; the device writes
// AVAIL = USED = its wrap counter when it uses one. Walking back from the driver's next slot over
// the descriptors still available finds the device's next slot. That is exact when every buffer
// occupies one ring slot (direct single-descriptor or indirect buffers: what Linux's virtio-net
// uses once VIRTIO_F_INDIRECT_DESC is negotiated). The inner slots of a multi-descriptor buffer
// keep their driver flags after it is used, so such buffers need inflight tracking instead
// (INFLIGHT_SHMFD); packed_base_plausible() accepts a correct position with them, so a front-end
// that kept the right state is never second-guessed.
#pragma once

#include <cstdint>

#include "vring/barriers.hpp"
#include "vring/index.hpp"
#include "vring/layout.hpp"

namespace vireo::vring {

namespace packed_resume_detail {

struct SlotFlags {
  bool avail;  // VIRTQ_DESC_F_AVAIL
  bool used;   // VIRTQ_DESC_F_USED
  bool available() const { return avail != used; }  // §2.8.1: made available, not used yet
};

inline SlotFlags flags_at(const PackedRingView& v, std::uint16_t i) {
  // acquire: pairs with the driver's release store of the descriptor flags (§2.8.21.3.1).
  const std::uint16_t f = load_acquire(v.desc[i].flags);
  return {(f & kDescFAvail) != 0, (f & kDescFUsed) != 0};
}

inline std::uint16_t prev(std::uint16_t i, std::uint16_t size) {
  return static_cast<std::uint16_t>(i == 0 ? size - 1 : i - 1);
}

}  // namespace packed_resume_detail

// True when `base.avail` can be where the device stopped: the slot there is either available in
// the expected lap or still holds the previous lap, and the slot before it belongs to the lap
// that precedes the position. False means the position is stale (from before a crash).
inline bool packed_base_plausible(const PackedRingView& v, RingState base) {
  using namespace packed_resume_detail;
  if (v.size == 0 || base.avail.idx >= v.size) return false;
  const SlotFlags at = flags_at(v, base.avail.idx);
  const bool here_ok = at.available() ? at.avail == base.avail.wrap : at.avail != base.avail.wrap;
  // The slot before was written in the lap that precedes the position (this lap, or the previous
  // one when the position is 0) - or, when the driver has filled the whole ring, it is available
  // in the lap after that.
  const bool lap_before = base.avail.idx == 0 ? !base.avail.wrap : base.avail.wrap;
  const SlotFlags before = flags_at(v, prev(base.avail.idx, v.size));
  const bool ring_full = at.available() && before.available() && before.avail != lap_before;
  return here_ok && (before.avail == lap_before || ring_full);
}

// The device's next slot and wrap counter as the descriptor flags show them (see the file
// comment for when this is exact). The used cursor equals the avail cursor: whatever the crashed
// device had popped but not used is still marked available and is served again.
inline RingState packed_position_from_ring(const PackedRingView& v) {
  using namespace packed_resume_detail;
  // The driver's lap value: slots [0, d) were written in the current lap (AVAIL = flags[0].avail),
  // slots [d, size) in the previous one. d = 0 when every slot shows the same lap.
  const bool lap0 = flags_at(v, 0).avail;
  std::uint16_t d = 0;
  for (std::uint16_t i = 1; i < v.size; ++i) {
    if (flags_at(v, i).avail != lap0) {
      d = i;
      break;
    }
  }
  // Walk back from the driver's next slot over the slots still available: the first one that is
  // not is the last the device used, and the device resumes right after it.
  std::uint16_t b = d;
  for (std::uint16_t n = 0; n < v.size && flags_at(v, prev(b, v.size)).available(); ++n)
    b = prev(b, v.size);
  // §2.8.1: the device expects AVAIL != USED with AVAIL = its wrap counter, so the expected wrap
  // at b is the inverse of the USED bit there (available: AVAIL; already used: the next lap).
  const PackedCursor c{b, !flags_at(v, b).used};
  return RingState{c, c};
}

}  // namespace vireo::vring
