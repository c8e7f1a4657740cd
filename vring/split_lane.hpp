// The lone lane of SplitDeviceRing (vring/split_device.hpp): the common one-descriptor buffer
// popped, served and (serve_lone) pushed in one pass, with no Chain in between. It takes only what
// pop_run()'s fast path takes and leaves everything else (a chain, an indirect table, a buffer
// outside the cached region, a bad head) in the ring for pop_burst(), which reports any violation
// exactly as before. Included at the end of split_device.hpp; not a header of its own.
//
// The contract (both layouts) is written once, at DeviceRing in vring/device_queue.hpp.
#pragma once

#include "vring/split_device.hpp"

namespace vireo::vring {

template <GuestMemory M>
template <bool kPush, class Serve>
[[gnu::always_inline]] inline std::size_t SplitDeviceRing<M>::lone_loop(std::size_t max, bool writable,
                                                                       Serve&& serve) {
  if (broken_ || !configured_ || log_ != nullptr || inflight_log_ != nullptr || n_resubmit_ != 0)
      [[unlikely]]
    return 0;
  // acquire: pairs with the driver's release store of avail->idx after writing ring entries and
  // descriptors (§2.7.13.3 "Updating idx"), as in pop_pending().
  const std::uint16_t avail_idx = load_acquire(*view_.avail_idx);
  const std::uint16_t pending = ring_distance(avail_idx, next_avail_);
  if (pending > size_) [[unlikely]]  // §2.7.6 broken: pop_burst() reports avail_index_jump
    return 0;
  // The shadow array holds at most Queue Size elements (add_used()).
  const std::size_t n = std::min<std::size_t>({max, pending, kPush ? size_ - n_shadow_ : size_});
  // Locals, as in pop_run(): serve() writes guest memory, which may alias the ring's members.
  const SplitDesc* const desc = view_.desc;
  const std::uint16_t* const avail_ring = view_.avail_ring;
  const std::uint16_t mask = mask_;
  const std::uint16_t want = writable ? kDescFWrite : std::uint16_t{0};
  const std::uint64_t c_gpa = tcache_.gpa();
  const std::uint64_t c_size = tcache_.size();
  std::byte* const c_host = tcache_.host();
  UsedElem* const used = shadow_.get() + n_shadow_;  // kPush only
  std::uint16_t next = next_avail_;
  std::size_t k = 0;
  for (; k < n; ++k) {
    // relaxed: the ring entry is ordered by the avail->idx acquire above.
    const std::uint16_t head = load_relaxed(avail_ring[next & mask]);
    if (head > mask) [[unlikely]]  // §2.7.6: head_out_of_range, reported by pop_burst()
      break;
    const SplitDesc d = read_once<SplitDesc>(&desc[head]);
    const std::uint64_t off = d.addr - c_gpa;
    // Lone, the asked direction, non-empty, no address wrap, inside the cached region: what
    // pop_run() turns into a one-segment chain without walking.
    if ((d.flags & (kDescFNext | kDescFIndirect | kDescFWrite)) != want || d.addr + d.len <= d.addr ||
        off >= c_size || d.len > c_size - off) [[unlikely]]
      break;
    const std::uint32_t len = serve(c_host + off, d.len, head);
    if (len == kNotServed) break;
    if constexpr (kPush) used[k] = UsedElem{head, len};
    ++next;
  }
  next_avail_ = next;
  if constexpr (kPush) n_shadow_ += static_cast<std::uint32_t>(k);
  else inflight_ = static_cast<std::uint16_t>(inflight_ + k);
  // Found the ring empty: re-armed as pop_burst() leaves it (§2.7.10 "re-check after enable";
  // the caller re-checks with has_available()). full fence: the avail_event store before any
  // later read of avail->idx; pairs with the driver's full fence between publishing avail->idx
  // and reading avail_event.
  if (k == pending && event_idx_ && notify_enabled_) {
    publish_avail_event();
    full_fence();
  }
  return k;
}

}  // namespace vireo::vring
