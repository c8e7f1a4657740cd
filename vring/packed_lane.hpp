// The lone lane of PackedDeviceRing (vring/packed_device.hpp): the common one-descriptor buffer
// popped, served and (serve_lone) pushed in one pass, with no Chain in between. It takes only what
// pop_loop()'s fast path takes and leaves everything else (a list, an indirect descriptor, a buffer
// outside the cached region, a bad id) in the ring for pop_burst(), which reports any violation
// exactly as before. Included at the end of packed_device.hpp; not a header of its own.
//
// The contract (both layouts) is written once, at DeviceRing in vring/device_queue.hpp.
#pragma once

#include "vring/packed_device.hpp"

namespace vireo::vring {

template <GuestMemory M>
template <bool kPush, class Serve>
[[gnu::always_inline]] inline std::size_t PackedDeviceRing<M>::lone_loop(std::size_t max, bool writable,
                                                                        Serve&& serve) {
  if (broken_ || !configured_ || log_ != nullptr || inflight_log_ != nullptr || n_resubmit_ != 0)
      [[unlikely]]
    return 0;
  // The batch stays within the ring (add_used()).
  const std::size_t n = std::min<std::size_t>(max, kPush ? size_ - n_shadow_ : size_);
  // The used write cursor: the batch's first descriptor (flags withheld for flush()) at used_,
  // later ones as one word each at wr_idx_ (push_loop()).
  const bool first = kPush && n_shadow_ == 0;
  if constexpr (kPush) {
    // Nothing in flight: the used cursor is the avail cursor, wrap counter included, and each
    // buffer's used descriptor goes in the slot it was read from (§2.8.6: one slot per buffer).
    const std::uint16_t wr_idx = first ? used_.idx : wr_idx_;
    const bool wr_wrap = first ? used_.wrap : wr_bits_ != 0;
    if (wr_idx == avail_.idx && wr_wrap == avail_.wrap)
      return lone_run<kPush, true>(n, first, writable, serve);
  }
  return lone_run<kPush, false>(n, first, writable, serve);
}

template <GuestMemory M>
template <bool kPush, bool kInPlace, class Serve>
[[gnu::always_inline]] inline std::size_t PackedDeviceRing<M>::lone_run(std::size_t n, bool first,
                                                                       bool writable, Serve&& serve) {
  // Locals, as in pop_loop() and push_loop(): serve() and the used stores write guest memory,
  // which may alias the ring's members.
  PackedDesc* const desc = view_.desc;
  PackedDesc* const ring_end = desc + size_;
  const std::uint16_t size = size_;
  const std::uint16_t want = writable ? kDescFWrite : std::uint16_t{0};
  PackedDesc* dp = desc + avail_.idx;
  // §2.8.1: an available head has AVAIL == the wrap counter, USED != it; both flip at the wrap.
  std::uint16_t avail_bits = avail_.wrap ? kDescFAvail : kDescFUsed;
  std::uint64_t c_gpa = tcache_.gpa();
  std::uint64_t c_size = tcache_.size();
  std::byte* const c_host = tcache_.host();
  if (c_gpa + c_size <= c_gpa) c_size = 0;  // reaches 2^64: see pop_loop()'s load_cache
  // Not in place: the used write cursor (kPush), behind dp.
  std::uint32_t idx = first ? used_.idx : wr_idx_;
  constexpr std::uint64_t kUsedWord = desc_word(0, 0, kUsedBits);
  std::uint64_t flags_word =
      desc_word(0, 0, static_cast<std::uint16_t>(first ? (used_.wrap ? kUsedBits : 0u) : wr_bits_));
  bool empty = false;
  // One buffer at dp (which the caller moves on): false = stop there. `batch_first`: its flags
  // wait for flush().
  auto step = [&](bool batch_first) __attribute__((always_inline)) {
    // acquire: pairs with the driver's release store of the head descriptor's flags, made after
    // the rest of the list was written (§2.8.6, §2.8.21.1 "Updating flags").
    const std::uint16_t head_flags = load_acquire(dp->flags);
    if ((head_flags & (kDescFAvail | kDescFUsed)) != avail_bits) {
      empty = true;
      return false;
    }
    if ((head_flags & (kDescFNext | kDescFIndirect | kDescFWrite)) != want) [[unlikely]]
      return false;
    const PackedDesc d = read_once<PackedDesc>(dp);
    const std::uint64_t off = d.addr - c_gpa;
    // Non-empty (len - 1 wraps for 0), inside the cached region, §2.8.6 id < Queue Size.
    if (off >= c_size || std::uint64_t{d.len} - 1 >= c_size - off || d.id >= size) [[unlikely]]
      return false;
    const std::uint32_t len = serve(c_host + off, d.len, d.id);
    if (len == kNotServed) return false;
    if constexpr (kPush) {  // as push_loop(): the batch's first keeps its flags for flush()
      PackedDesc& used = kInPlace ? *dp : desc[idx];
      if (batch_first)
        first_flags_ = write_used(used, Head{d.id, 1}, len, std::uint32_t(flags_word >> 48));
      else
        store_desc_word(used, used_word(len, d.id, flags_word));
      if constexpr (!kInPlace) advance_used(idx, flags_word, 1u, size, kUsedWord);
    }
    return true;
  };
  // dp passes the ring's end: the avail wrap counter flips (and the used one with it in place).
  auto wrap = [&]() __attribute__((always_inline)) {
    dp = desc;
    avail_bits ^= kDescFAvail | kDescFUsed;
    if constexpr (kInPlace) flags_word ^= kUsedWord;
  };
  std::size_t left = n;
  bool stopped = false;  // at a buffer the lane does not take (or at the ring's empty end)
  if (left != 0 && first) {
    stopped = !step(true);
    if (!stopped) {
      --left;
      if (++dp == ring_end) [[unlikely]]
        wrap();
    }
  }
  // The rest in runs up to the ring's end: one compare per buffer.
  while (left != 0 && !stopped) {
    PackedDesc* const from = dp;
    PackedDesc* const stop = dp + std::min<std::size_t>(left, static_cast<std::size_t>(ring_end - dp));
    while (dp != stop && step(false)) ++dp;
    left -= static_cast<std::size_t>(dp - from);
    stopped = dp != stop;
    if (dp == ring_end) wrap();
  }
  const std::size_t k = n - left;
  avail_ = PackedCursor{static_cast<std::uint16_t>(dp - desc), avail_bits == kDescFAvail};
  if (!kPush) {
    inflight_ = static_cast<std::uint16_t>(inflight_ + k);
  } else if (k != 0) {
    wr_idx_ = static_cast<std::uint16_t>(kInPlace ? avail_.idx : idx);
    wr_bits_ = static_cast<std::uint16_t>(flags_word >> 48);
    n_shadow_ += static_cast<std::uint32_t>(k);
  }
  // Found the ring empty, or took all it was asked for: re-armed as pop_burst() leaves it
  // (§2.8.10), unless the next buffer is there (has_available() says so). full fence: the off_wrap
  // store before the caller's re-check of the next head's flags; pairs with the driver's full fence
  // between exposing flags and reading device_event.
  if ((empty || k == n) && event_idx_ && notify_enabled_) {
    publish_event_off_wrap();
    if (empty || !next_available()) full_fence();
  }
  return k;
}

}  // namespace vireo::vring
