// Driver side of a packed virtqueue (VIRTIO 1.x §2.8): one descriptor ring written by both sides,
// plus the driver and device event suppression structures.
//
//   PackedDriverRing ring;
//   ring.configure({.size = 256, .features = f | feature_bit(kFRingPacked),
//                   .desc = ring_mem, .avail = driver_event, .used = device_event});
//   ring.add(readable, writable, token);          // writes the chain, head flags withheld
//   if (ring.kick_prepare()) transport.kick(q);   // head flags released, suppression checked
//   DriverUsed u;
//   while (*ring.get_used(u)) complete(u.token, u.len);
//
// Serialization: one thread at a time, as for SplitDriverRing.
// Buffer ids come from a private free list; per id the driver remembers the token and how many
// ring slots the buffer occupies, since the device writes a single used descriptor per buffer and
// both sides then skip that many slots (§2.8.6). Wrap counters start at 1 (§2.8.1).
// With VIRTIO_F_IN_ORDER (§2.8.23) buffers come back in the order they were added, so the free
// list keeps its initial links (id k -> k + 1) and ids are handed out in sequence; one used
// descriptor may complete a batch: every buffer from the oldest outstanding one up to the one whose
// id it carries (reap_in_order).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "vring/barriers.hpp"
#include "vring/driver_common.hpp"
#include "vring/index.hpp"
#include "vring/layout.hpp"

namespace vireo::vring {

class PackedDriverRing {
 public:
  using Config = DriverConfig;
  using Buffer = DriverBuffer;
  using Used = DriverUsed;

  // Validates the ring (§2.8.10.1: size ≤ 32768, ring aligned 16, event areas aligned 4), zeroes
  // it (§2.8.13: "The descriptor ring is zero-initialized") and resets all driver state.
  // Allocates; call on the control path only.
  Status configure(const Config& c) {
    if (!valid_packed_size(c.size)) return fail(Errc::bad_queue_size);
    if (c.desc == nullptr || c.avail == nullptr || c.used == nullptr) return fail(Errc::not_ready);
    if (!detail::is_aligned(c.desc, kPackedDescAlign) ||
        !detail::is_aligned(c.avail, kPackedEventAlign) ||
        !detail::is_aligned(c.used, kPackedEventAlign))
      return fail(Errc::misaligned_ring);
    if (Status s = core_.configure(c); !s) return s;
    std::memset(c.desc, 0, packed_desc_bytes(c.size));
    std::memset(c.avail, 0, sizeof(EventSuppress));
    std::memset(c.used, 0, sizeof(EventSuppress));
    view_ = PackedRingView::at(c.desc, c.avail, c.used, c.size);
    free_id_ = 0;
    num_free_ = c.size;
    in_order_ = has_feature(c.features, kFInOrder);
    oldest_id_ = 0;
    batch_ = detail::InOrderBatch{};
    next_avail_ = last_used_ = kicked_ = PackedCursor{};
    pending_ = false;
    event_flags_shadow_ = kRingEventFlagsEnable;
    cb_enabled_ = true;
    return {};
  }

  // Writes one buffer at the next ring positions (§2.8.21.1) with a fresh buffer id in every
  // descriptor (required in the last, §2.8.6). The first head of a batch keeps its flags back
  // until kick_prepare(); later heads are written now but stay invisible behind it (the device
  // polls in ring order, §2.8.2). Returns the buffer id.
  Result<std::uint16_t> add(std::span<const Buffer> readable, std::span<const Buffer> writable,
                            std::uint64_t token, bool indirect = false) {
    if (!indirect && readable.size() + writable.size() == 1) [[likely]]
      return add_one(readable.empty() ? writable[0] : readable[0], readable.empty(), token);
    return add_list(readable, writable, token, indirect);
  }

  // add() of several elements or an indirect table. Out of line: the one-element path above
  // stays small enough to inline into the caller's burst loop.
  [[gnu::noinline]] Result<std::uint16_t> add_list(std::span<const Buffer> readable,
                                                   std::span<const Buffer> writable,
                                                   std::uint64_t token, bool indirect) {
    Result<std::uint16_t> ndescs =
        core_.plan(readable.size() + writable.size(), indirect, num_free_);
    if (!ndescs) return fail(ndescs.error());
    const std::uint16_t id = free_id_;
    free_id_ = core_.next(id);
    const std::uint16_t head = next_avail_.idx;
    const std::uint16_t head_flags =
        indirect ? write_indirect(id, readable, writable) : write_direct(id, readable, writable);
    if (!pending_) {
      pending_ = true;
      pending_head_ = head;
      pending_flags_ = head_flags;
    } else {
      // relaxed: ordered before the device can look at it by the batch's release in kick_prepare.
      store_relaxed(view_.desc[head].flags, head_flags);
    }
    num_free_ = static_cast<std::uint16_t>(num_free_ - *ndescs);
    core_.track(id, token, *ndescs, 0);
    return id;
  }

  // add() of one direct element (the common single-buffer case): one slot, flags written last
  // (or withheld as the batch head). plan() would give a one-element buffer exactly these errors.
  [[gnu::always_inline]] Result<std::uint16_t> add_one(const Buffer& b, bool writable,
                                                       std::uint64_t token) {
    if (const Errc e = core_.usable(); e != Errc::ok) [[unlikely]]
      return fail(e);
    if (num_free_ == 0) [[unlikely]]
      return fail(Errc::no_space);
    const std::uint16_t id = free_id_;
    free_id_ = core_.next(id);
    const std::uint16_t head = next_avail_.idx;
    PackedDesc& d = view_.desc[head];
    d.addr = b.gpa;
    d.len = b.len;
    d.id = id;  // §2.8.6: the id goes in the last (here the only) descriptor
    const auto flags = static_cast<std::uint16_t>((writable ? kDescFWrite : 0) |
                                                  avail_bits(next_avail_.wrap));
    next_avail_.advance(1, core_.size());
    if (!pending_) [[unlikely]] {  // the batch head: flags withheld until kick_prepare
      pending_ = true;
      pending_head_ = head;
      pending_flags_ = flags;
    } else {
      // relaxed: ordered before the device can look at it by the batch's release in kick_prepare.
      store_relaxed(d.flags, flags);
    }
    --num_free_;
    core_.track(id, token, 1, 0);
    return id;
  }

  // n one-element buffers, all device-readable or all device-writable: at(k) returns element k
  // and its token (DriverAdd). Same slots, ids, withheld batch head and bookkeeping as n
  // add_one() calls, with the ring's counters kept in locals for the loop. Ok(count added):
  // fewer than n only when the free slots ran out (what add() reports as Errc::no_space). at()
  // must not call into this ring.
  template <class At>
  [[gnu::always_inline]] Result<std::size_t> add_burst(std::size_t n, bool writable, At&& at) {
    if (const Errc e = core_.usable(); e != Errc::ok) [[unlikely]]
      return fail(e);
    const std::size_t count = std::min<std::size_t>(n, num_free_);
    if (count == 0) return std::size_t{0};
    const std::uint16_t wbit = writable ? kDescFWrite : std::uint16_t{0};
    PackedDesc* const desc = view_.desc;
    const std::uint16_t size = core_.size();
    detail::BurstCursor c = core_.begin_adds();
    std::uint16_t free_id = free_id_;
    std::uint16_t idx = next_avail_.idx;
    bool wrap = next_avail_.wrap;
    // §2.8.1: AVAIL = the Driver Ring Wrap Counter, USED = its inverse; flipped with it.
    auto flags = static_cast<std::uint16_t>(wbit | avail_bits(wrap));
    // One slot: addr, len, id (§2.8.6: in the last, here the only, descriptor) and, unless it is
    // the batch head (`head`: its flags are withheld until kick_prepare), the flags: len, id and
    // flags in one store, since the batch's release in kick_prepare publishes them
    // (store_desc_word). Returns the flags.
    auto put = [&](std::size_t k, bool head) {
      const DriverAdd a = at(k);
      const std::uint16_t id = free_id;
      detail::BufferState& s = c.state[id];
      free_id = s.next;
      PackedDesc& d = desc[idx];
      d.addr = a.buf.gpa;
      if (head) {
        d.len = a.buf.len;
        d.id = id;
      } else {
        store_desc_word(d, desc_word(a.buf.len, id, flags));
      }
      s.token = a.token;
      s.seq = c.seq;
      s.ndescs = 1;
      const std::uint16_t f = flags;
      if (++idx == size) [[unlikely]] {
        idx = 0;
        wrap = !wrap;
        flags ^= kDescFAvail | kDescFUsed;
      }
      return f;
    };
    std::size_t k = 0;
    if (!pending_) {  // the batch head
      const std::uint16_t head = idx;
      pending_flags_ = put(0, true);
      pending_head_ = head;
      pending_ = true;
      k = 1;
    }
    for (; k < count; ++k) put(k, false);
    core_.end_adds(count);
    free_id_ = free_id;
    next_avail_ = PackedCursor{idx, wrap};
    num_free_ = static_cast<std::uint16_t>(num_free_ - count);
    return count;
  }

  // Makes the batch available by storing its first head's flags last (§2.8.21.1 "defers updating
  // the descriptor flags for the first descriptor"), then reads the device event suppression
  // structure (§2.8.21.2): ENABLE kicks, DISABLE does not, DESC (EVENT_IDX) kicks when the batch
  // passed desc_event_off/desc_event_wrap.
  bool kick_prepare() {
    if (core_.usable() != Errc::ok || !pending_) return false;
    // §2.8.21.1 release: every descriptor of the batch before the first head's flags; pairs with
    // the device's load_acquire of a head's flags before it reads the chain.
    store_release(view_.desc[pending_head_].flags, pending_flags_);
    pending_ = false;
    core_.publish();
    const PackedCursor old_pos = kicked_;
    kicked_ = next_avail_;
    // §2.8.21.2 full fence: head flags before the device event load; pairs with the device's full
    // fence between writing its event suppression and re-checking the next available descriptor.
    full_fence();
    const EventSuppress ev = load_relaxed(*view_.device_event);  // one 32-bit snapshot
    const std::uint16_t mode = ev.flags & 0x3u;
    if (mode == kRingEventFlagsDisable) return false;
    if (mode == kRingEventFlagsDesc && core_.event_idx())
      return need_event_packed(ev.off_wrap, old_pos, kicked_, core_.size());
    return true;  // ENABLE, or a reserved/unnegotiated mode: a spurious kick is harmless
  }

  // Reaps one used buffer (§2.8.22). Ok(false) when the descriptor at the used position is not
  // used in the current wrap (§2.8.1), including stale or wrong wrap bits.
  Result<bool> get_used(Used& out) {
    Result<std::size_t> n = get_used_burst(std::span<Used>(&out, 1));
    if (!n) return fail(n.error());
    return *n == 1;
  }

  // Reaps up to out.size() used buffers. Ok(0) when none.
  Result<std::size_t> get_used_burst(std::span<Used> out) {
    Used* dst = out.data();
    return reap_burst(out.size(), [&dst](std::uint64_t token, std::uint32_t len) {
      *dst++ = Used{token, len};
    });
  }

  // Reaps up to max used buffers in ring order, calling fn(token, len) for each. Ok(count);
  // Ok(0) when the descriptor at the used position is not used in the current wrap (§2.8.1). A bad
  // descriptor breaks the ring; buffers reaped before it are still handed back (Ok(k)), and the
  // next call reports Errc::broken. fn must not call into this ring.
  template <class Fn>
  [[gnu::always_inline]] Result<std::size_t> reap_burst(std::size_t max, Fn&& fn) {
    if (Errc e = core_.usable(); e != Errc::ok) [[unlikely]]
      return fail(e);
    if (in_order_) return reap_in_order(max, fn);
    const PackedDesc* const desc = view_.desc;
    const std::uint16_t size = core_.size();
    const std::uint64_t published = core_.published();
    detail::BufferState* const state = core_.states();
    std::uint32_t idx = last_used_.idx;
    bool wrap = last_used_.wrap;
    // §2.8.1: used iff AVAIL == USED == the used wrap counter (see is_used()).
    std::uint16_t used_bits = wrap ? kDescFAvail | kDescFUsed : 0;
    std::uint16_t free_id = free_id_;
    std::uint16_t num_free = num_free_;
    bool bad = false;
    std::size_t k = 0;
    for (; k < max; ++k) {
      const PackedDesc& d = desc[idx];
      // acquire: pairs with the device's release store of the used descriptor's flags, which it
      // writes after id and len (§2.8.9 / §2.8.22).
      if ((load_acquire(d.flags) & (kDescFAvail | kDescFUsed)) != used_bits) break;
      // Device-controlled: each field read once, the id validated before it indexes anything.
      const std::uint16_t id = load_relaxed(d.id);
      const std::uint32_t len = load_relaxed(d.len);
      if (id >= size || state[id].seq >= published) [[unlikely]] {  // see DriverCore::reapable
        bad = true;
        break;
      }
      detail::BufferState& s = state[id];
      const std::uint64_t token = s.token;
      // §2.8.6: one used descriptor per buffer; the reading position skips all its slots.
      idx += s.ndescs;
      if (idx >= size) [[unlikely]] {
        idx -= size;
        wrap = !wrap;
        used_bits ^= kDescFAvail | kDescFUsed;
      }
      num_free = static_cast<std::uint16_t>(num_free + s.ndescs);
      s.seq = detail::BufferState::kFree;
      s.next = free_id;
      free_id = id;
      fn(token, len);
    }
    last_used_ = PackedCursor{static_cast<std::uint16_t>(idx), wrap};
    free_id_ = free_id;
    num_free_ = num_free;
    return core_.end_reap(k, bad, [this] { rearm_used_event(); });
  }

  // reap_burst() with VIRTIO_F_IN_ORDER (§2.8.23): a used descriptor at the used position carries
  // the id of the LAST buffer of a batch and completes every outstanding buffer up to it, in the
  // order they were added (ids in sequence from oldest_id_); the device skips the batch's slots.
  // Only the last buffer gets the descriptor's len (0 for the others). A batch cut short by `max`
  // is finished by the next call (batch_).
  template <class Fn>
  [[gnu::always_inline]] Result<std::size_t> reap_in_order(std::size_t max, Fn&& fn) {
    const PackedDesc* const desc = view_.desc;
    const std::uint16_t size = core_.size();
    const std::uint64_t published = core_.published();
    detail::BufferState* const state = core_.states();
    std::uint32_t idx = last_used_.idx;
    // §2.8.1: used iff AVAIL == USED == the used wrap counter (see is_used()); flipped with it.
    std::uint16_t used_bits = last_used_.wrap ? kDescFAvail | kDescFUsed : 0;
    std::uint16_t oldest = oldest_id_;
    std::size_t k = 0;
    detail::InOrderBatch batch = batch_;
    const bool bad = !detail::reap_batches(
        batch, [&] { return k < max; },
        [&](std::uint32_t& id, std::uint32_t& len) {
          const PackedDesc& d = desc[idx];
          // acquire: pairs with the device's release store of the used descriptor's flags, which
          // it writes after id and len (§2.8.9 / §2.8.22).
          if ((load_acquire(d.flags) & (kDescFAvail | kDescFUsed)) != used_bits) return false;
          id = load_relaxed(d.id);  // device-controlled: read once
          len = load_relaxed(d.len);
          return true;
        },
        [&] { return oldest; },
        [&](std::uint32_t id) { return id < size && state[id].seq < published; },
        [&](std::uint32_t len) __attribute__((always_inline)) {
          detail::BufferState& s = state[oldest];
          if (s.seq >= published) [[unlikely]]  // the device returned more than it was given
            return false;
          const std::uint64_t token = s.token;
          s.seq = detail::BufferState::kFree;
          idx += s.ndescs;  // the slots it occupied are free again (counted below)
          if (idx >= size) [[unlikely]] {
            idx -= size;
            used_bits ^= kDescFAvail | kDescFUsed;
          }
          if (++oldest == size) [[unlikely]]
            oldest = 0;
          ++k;
          fn(token, len);
          return true;
        });
    const PackedCursor from = last_used_;
    last_used_ = PackedCursor{static_cast<std::uint16_t>(idx), used_bits != 0};
    oldest_id_ = oldest;
    // The used position moved over exactly the reaped buffers' slots (at most the ring).
    num_free_ = static_cast<std::uint16_t>(num_free_ + idx - from.idx +
                                           (last_used_.wrap != from.wrap ? size : 0u));
    batch_ = bad ? detail::InOrderBatch{} : batch;
    return core_.end_reap(k, bad, [this] { rearm_used_event(); });
  }

  // driver_event.flags = DISABLE (§2.8.10). Advisory.
  void disable_cb() {
    cb_enabled_ = false;
    if (core_.usable() != Errc::ok || event_flags_shadow_ == kRingEventFlagsDisable) return;
    event_flags_shadow_ = kRingEventFlagsDisable;
    store_relaxed(view_.driver_event->flags, event_flags_shadow_);  // advisory; no ordering needed
  }

  // driver_event = ENABLE, or with EVENT_IDX DESC at the next used position; then re-checks.
  // True: a used buffer is already pending and the caller must poll again.
  bool enable_cb() {
    if (core_.usable() != Errc::ok) return false;
    cb_enabled_ = true;
    std::uint16_t mode = kRingEventFlagsEnable;
    if (core_.event_idx()) {
      mode = kRingEventFlagsDesc;
      store_relaxed(view_.driver_event->off_wrap, encode_off_wrap(last_used_));
    }
    if (event_flags_shadow_ != mode) {
      event_flags_shadow_ = mode;
      // release: off_wrap before DESC mode; pairs with the device reading flags, then off_wrap.
      store_release(view_.driver_event->flags, mode);
    }
    // §2.8.22 note full fence: the enable before re-reading the used position; pairs with the
    // device's full fence between marking a descriptor used and reading the driver event.
    full_fence();
    if (batch_.pending()) return true;  // the rest of an in-order batch is already used
    return is_used(load_relaxed(view_.desc[last_used_.idx].flags), last_used_.wrap);  // get_used re-reads (acquire)
  }

  // Where a restarted back-end must resume (vhost-user reconnect, SET_VRING_BASE packed encoding):
  // the old device's used position, found by walking the used descriptors the driver has not
  // reaped yet (without reaping them); the device's next available position is the same slot,
  // assuming it used buffers in ring order (QEMU restores last_avail = used_idx the same way).
  Result<RingState> resume_state() const {
    if (Errc e = core_.usable(); e != Errc::ok) return fail(e);
    PackedCursor pos = last_used_;
    std::uint64_t seen = 0;  // buffers walked: at most those outstanding
    // The rest of an in-order batch being reaped (§2.8.23): its last buffer is batch_.last.
    if (batch_.pending() && !skip_batch(pos, static_cast<std::uint16_t>(batch_.last), seen))
      return fail(Errc::used_id_bad);
    while (seen <= core_.in_flight()) {
      const PackedDesc& d = view_.desc[pos.idx];
      // acquire: pairs with the old device's release store of the used descriptor's flags.
      const std::uint16_t flags = load_acquire(d.flags);
      const bool avail = (flags & kDescFAvail) != 0;
      const bool used = (flags & kDescFUsed) != 0;
      if (!(avail == used && used == pos.wrap)) return RingState{pos, pos};  // §2.8.1: not used
      const std::uint16_t id = load_relaxed(d.id);  // device-controlled: read once
      if (!core_.reapable(id)) return fail(Errc::used_id_bad);
      if (in_order_) {
        if (!skip_batch(pos, id, seen)) return fail(Errc::used_id_bad);
      } else {
        pos.advance(core_.state(id).ndescs, core_.size());
        ++seen;
      }
    }
    return fail(Errc::used_id_bad);  // more used descriptors than buffers outstanding
  }

  std::uint16_t num_free() const { return num_free_; }
  std::uint16_t size() const { return core_.size(); }
  bool broken() const { return core_.broken(); }
  Errc error() const { return core_.error(); }

 private:
  // §2.8.1: AVAIL = driver wrap counter, USED = its inverse.
  static std::uint16_t avail_bits(bool wrap) { return wrap ? kDescFAvail : kDescFUsed; }

  // Moves `pos` over the outstanding buffers in order (ids from oldest_id_ + seen), up to and
  // including buffer `last` (an in-order batch), counting them in `seen`. False if it is not among
  // them.
  bool skip_batch(PackedCursor& pos, std::uint16_t last, std::uint64_t& seen) const {
    for (; seen <= core_.in_flight(); ++seen) {
      const auto id = static_cast<std::uint16_t>((oldest_id_ + seen) % core_.size());
      if (!core_.reapable(id)) return false;
      pos.advance(core_.state(id).ndescs, core_.size());
      if (id == last) {
        ++seen;
        return true;
      }
    }
    return false;
  }

  // §2.8.1: used iff AVAIL == USED == the used wrap counter. Anything else (available, stale from
  // the previous lap, zero-initialised) is simply not used yet.
  static bool is_used(std::uint16_t flags, bool wrap) {
    const bool avail = (flags & kDescFAvail) != 0;
    const bool used = (flags & kDescFUsed) != 0;
    return avail == used && used == wrap;
  }

  // §2.8.6: consecutive ring slots, NEXT on all but the last. Returns the head's flags unwritten.
  std::uint16_t write_direct(std::uint16_t id, std::span<const Buffer> readable,
                             std::span<const Buffer> writable) {
    std::uint16_t head_flags = 0;
    bool first = true;
    detail::for_each_element(readable, writable, [&](const Buffer& b, bool w, bool last) {
      PackedDesc& d = view_.desc[next_avail_.idx];
      const auto flags = static_cast<std::uint16_t>((w ? kDescFWrite : 0) | (last ? 0 : kDescFNext) |
                                                    avail_bits(next_avail_.wrap));
      d.addr = b.gpa;
      d.len = b.len;
      d.id = id;
      if (first) {
        head_flags = flags;
        first = false;
      } else {
        store_relaxed(d.flags, flags);  // ordered by the head's release in kick_prepare
      }
      next_avail_.advance(1, core_.size());
    });
    return head_flags;
  }

  // §2.8.7: one ring slot (INDIRECT, len = 16 * n) pointing at id's table; the table entries are
  // sequential and carry only WRITE (§2.8.19).
  std::uint16_t write_indirect(std::uint16_t id, std::span<const Buffer> readable,
                               std::span<const Buffer> writable) {
    PackedDesc* table = core_.table<PackedDesc>(id);
    std::uint32_t k = 0;
    detail::for_each_element(readable, writable, [&](const Buffer& b, bool w, bool) {
      table[k++] = PackedDesc{b.gpa, b.len, 0, static_cast<std::uint16_t>(w ? kDescFWrite : 0)};
    });
    PackedDesc& d = view_.desc[next_avail_.idx];
    d.addr = core_.table_gpa(id);
    d.len = 16u * k;
    d.id = id;
    const auto flags = static_cast<std::uint16_t>(kDescFIndirect | avail_bits(next_avail_.wrap));
    next_avail_.advance(1, core_.size());
    return flags;
  }

  // With EVENT_IDX (DESC mode) and callbacks on, move off_wrap to the next used position.
  void rearm_used_event() {
    if (!cb_enabled_ || event_flags_shadow_ != kRingEventFlagsDesc) return;
    store_relaxed(view_.driver_event->off_wrap, encode_off_wrap(last_used_));
    // full fence: off_wrap before the next used-flags load; pairs with the device's full fence
    // between marking a descriptor used and reading the driver event.
    full_fence();
  }

  detail::DriverCore core_;
  PackedRingView view_;
  std::uint16_t free_id_ = 0;           // head of the id free list
  std::uint16_t oldest_id_ = 0;         // IN_ORDER: the oldest outstanding buffer's id
  std::uint16_t num_free_ = 0;          // free ring slots
  bool in_order_ = false;               // VIRTIO_F_IN_ORDER negotiated (§2.8.23)
  detail::InOrderBatch batch_;          // in-order batch being reaped (last: its last id)
  PackedCursor next_avail_{};           // next slot to write + Driver Ring Wrap Counter (§2.8.1)
  PackedCursor last_used_{};            // next slot to read + used wrap counter
  PackedCursor kicked_{};               // next_avail_ as of the last kick_prepare
  std::uint16_t pending_head_ = 0;      // first head of the unpublished batch
  std::uint16_t pending_flags_ = 0;     // its withheld flags
  bool pending_ = false;
  std::uint16_t event_flags_shadow_ = kRingEventFlagsEnable;  // driver_event.flags as written
  bool cb_enabled_ = true;
};

}  // namespace vireo::vring
