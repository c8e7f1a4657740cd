// Driver side of a split virtqueue (VIRTIO 1.x §2.7): the front-end half that adds buffers to the
// available ring and reaps them from the used ring.
//
//   SplitDriverRing ring;
//   ring.configure({.size = 256, .features = f, .desc = d, .avail = a, .used = u});
//   ring.add(readable, writable, token);          // writes descriptors + avail entry
//   if (ring.kick_prepare()) transport.kick(q);   // publishes avail->idx, decides on the kick
//   DriverUsed u;
//   while (*ring.get_used(u)) complete(u.token, u.len);
//
// Serialization: all members must be called from one thread at a time (Linux virtqueue contract);
// the kick itself (an eventfd write) happens outside, after kick_prepare().
// The descriptor free list is threaded through a private shadow of desc.next (Linux desc_extra), so
// a device scribbling over the shared table cannot corrupt it. Used ids and used->idx are
// device-controlled and validated; a violation breaks the ring until the next configure().
// With VIRTIO_F_IN_ORDER (§2.7.9) descriptors are used in table order: the free list keeps its
// initial links (k -> k + 1), reaped chains are not spliced back, and one used element may
// complete a batch of buffers (reap_in_order).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "vring/barriers.hpp"
#include "vring/driver_common.hpp"
#include "vring/index.hpp"
#include "vring/layout.hpp"

namespace vireo::vring {

class SplitDriverRing {
 public:
  using Config = DriverConfig;
  using Buffer = DriverBuffer;
  using Used = DriverUsed;

  // Validates the ring (§2.7: power-of-two size ≤ 32768; alignment 16/2/4), zeroes the three
  // areas, and resets all driver state. Allocates; call on the control path only.
  Status configure(const Config& c) {
    if (!valid_split_size(c.size)) return fail(Errc::bad_queue_size);
    if (c.desc == nullptr || c.avail == nullptr || c.used == nullptr) return fail(Errc::not_ready);
    if (!detail::is_aligned(c.desc, kSplitDescAlign) ||
        !detail::is_aligned(c.avail, kSplitAvailAlign) ||
        !detail::is_aligned(c.used, kSplitUsedAlign))
      return fail(Errc::misaligned_ring);
    if (Status s = core_.configure(c); !s) return s;
    std::memset(c.desc, 0, split_desc_bytes(c.size));
    std::memset(c.avail, 0, split_avail_bytes(c.size));
    std::memset(c.used, 0, split_used_bytes(c.size));  // §2.7.10: driver initialises used flags to 0
    view_ = SplitRingView::at(c.desc, c.avail, c.used, c.size);
    mask_ = static_cast<std::uint16_t>(c.size - 1);
    free_head_ = 0;
    num_free_ = c.size;
    avail_idx_shadow_ = kicked_idx_ = last_used_ = 0;
    in_order_ = has_feature(c.features, kFInOrder);
    batch_ = detail::InOrderBatch{};
    avail_flags_shadow_ = 0;
    cb_enabled_ = true;
    return {};
  }

  // Writes one buffer (readable elements, then writable ones) into free descriptors and its head
  // into the next avail slot (§2.7.13.1-2). Not visible to the device until kick_prepare().
  // Returns the head index. Errc::no_space / chain_too_long / empty_buffer leave the ring usable.
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
    const std::uint16_t head = free_head_;
    const std::uint16_t tail = indirect ? write_indirect(head, readable, writable)
                                        : write_direct(head, readable, writable);
    num_free_ = static_cast<std::uint16_t>(num_free_ - *ndescs);
    core_.track(head, token, *ndescs, tail);
    view_.avail_ring[avail_idx_shadow_ & mask_] = head;  // plain: published by kick_prepare
    ++avail_idx_shadow_;
    return head;
  }

  // add() of one direct element (the common single-buffer case): one descriptor from the free
  // list and the avail slot. plan() would give a one-element buffer exactly these two errors.
  [[gnu::always_inline]] Result<std::uint16_t> add_one(const Buffer& b, bool writable,
                                                       std::uint64_t token) {
    if (const Errc e = core_.usable(); e != Errc::ok) [[unlikely]]
      return fail(e);
    if (num_free_ == 0) [[unlikely]]
      return fail(Errc::no_space);
    const std::uint16_t head = free_head_;
    const std::uint16_t next = core_.next(head);
    // §2.7.13.1: a lone descriptor, WRITE iff device-writable, no NEXT.
    view_.desc[head] = SplitDesc{b.gpa, b.len, writable ? kDescFWrite : std::uint16_t{0}, next};
    free_head_ = next;
    --num_free_;
    core_.track(head, token, 1, head);
    view_.avail_ring[avail_idx_shadow_ & mask_] = head;  // plain: published by kick_prepare
    ++avail_idx_shadow_;
    return head;
  }

  // n one-element buffers, all device-readable or all device-writable: at(k) returns element k
  // and its token (DriverAdd). Same descriptors, avail entries and bookkeeping as n add_one()
  // calls, with the ring's counters kept in locals for the loop. Ok(count added): fewer than n
  // only when the free descriptors ran out (what add() reports as Errc::no_space). at() must not
  // call into this ring.
  template <class At>
  [[gnu::always_inline]] Result<std::size_t> add_burst(std::size_t n, bool writable, At&& at) {
    if (const Errc e = core_.usable(); e != Errc::ok) [[unlikely]]
      return fail(e);
    const std::size_t count = std::min<std::size_t>(n, num_free_);
    // §2.7.13.1: lone descriptors, WRITE iff device-writable, no NEXT.
    const std::uint16_t flags = writable ? kDescFWrite : std::uint16_t{0};
    SplitDesc* const desc = view_.desc;
    std::uint16_t* const avail_ring = view_.avail_ring;
    const std::uint16_t mask = mask_;
    detail::BurstCursor c = core_.begin_adds();
    std::uint16_t head = free_head_;
    std::uint16_t idx = avail_idx_shadow_;
    for (std::size_t k = 0; k < count; ++k) {
      const DriverAdd a = at(k);
      detail::BufferState& s = c.state[head];
      const std::uint16_t nx = s.next;
      desc[head] = SplitDesc{a.buf.gpa, a.buf.len, flags, nx};
      s.token = a.token;
      s.seq = c.seq;
      s.ndescs = 1;
      s.tail = head;
      avail_ring[idx & mask] = head;  // plain: published by kick_prepare
      ++idx;
      head = nx;
    }
    core_.end_adds(count);
    free_head_ = head;
    avail_idx_shadow_ = idx;
    num_free_ = static_cast<std::uint16_t>(num_free_ - count);
    return count;
  }

  // Publishes avail->idx for everything added since the last call (one release store per batch),
  // then decides whether the device must be kicked (§2.7.10): VIRTQ_USED_F_NO_NOTIFY, or with
  // EVENT_IDX whether avail_event lies in [old idx, new idx).
  bool kick_prepare() {
    if (core_.usable() != Errc::ok || !core_.has_unpublished()) return false;
    const std::uint16_t old_idx = kicked_idx_;
    // §2.7.13.3 release: descriptors and avail ring entries before idx; pairs with the device's
    // load_acquire of avail->idx before it reads the ring.
    store_release(*view_.avail_idx, avail_idx_shadow_);
    core_.publish();
    kicked_idx_ = avail_idx_shadow_;
    // §2.7.13.4 full fence: idx store before the avail_event/flags load; pairs with the device's
    // full fence between writing avail_event (or clearing NO_NOTIFY) and re-reading avail->idx.
    full_fence();
    if (core_.event_idx()) return need_event(load_relaxed(*view_.avail_event), kicked_idx_, old_idx);
    return (load_relaxed(*view_.used_flags) & kUsedFNoNotify) == 0;
  }

  // Reaps one used buffer (§2.7.14). Ok(false) when none is pending.
  Result<bool> get_used(Used& out) {
    Result<std::size_t> n = get_used_burst(std::span<Used>(&out, 1));
    if (!n) return fail(n.error());
    return *n == 1;
  }

  // Reaps up to out.size() used buffers with one acquire load of used->idx. Ok(0) when none.
  Result<std::size_t> get_used_burst(std::span<Used> out) {
    Used* dst = out.data();
    return reap_burst(out.size(), [&dst](std::uint64_t token, std::uint32_t len) {
      *dst++ = Used{token, len};
    });
  }

  // Reaps up to max used buffers with one acquire load of used->idx, calling fn(token, len) for
  // each, in used-ring order. Ok(count); Ok(0) when none. A bad element breaks the ring;
  // buffers reaped before it are still handed back (Ok(k)), and the next call reports
  // Errc::broken (error() says why). fn must not call into this ring.
  template <class Fn>
  [[gnu::always_inline]] Result<std::size_t> reap_burst(std::size_t max, Fn&& fn) {
    if (Errc e = core_.usable(); e != Errc::ok) [[unlikely]]
      return fail(e);
    if (in_order_) return reap_in_order(max, fn);
    const Result<std::size_t> ready = used_ready(max);
    if (!ready || *ready == 0) return ready;
    const std::size_t n = *ready;
    const UsedElem* const used_ring = view_.used_ring;
    const std::uint16_t mask = mask_;  // size - 1: id <= mask is id < size
    const std::uint64_t published = core_.published();
    detail::BufferState* const state = core_.states();
    const std::uint16_t first = last_used_;
    const auto end = static_cast<std::uint16_t>(first + n);
    std::uint16_t last = first;
    std::uint16_t head = free_head_;
    std::uint16_t num_free = num_free_;
    for (; last != end; ++last) {
      // Device-controlled: each field read once, the id validated before it indexes anything.
      const std::uint32_t id = load_relaxed(used_ring[last & mask].id);
      const std::uint32_t len = load_relaxed(used_ring[last & mask].len);
      if (id > mask || state[id].seq >= published) [[unlikely]]  // see DriverCore::reapable
        break;
      detail::BufferState& s = state[id];
      const std::uint64_t token = s.token;
      num_free = static_cast<std::uint16_t>(num_free + s.ndescs);
      state[s.tail].next = head;  // the chain goes back to the free list
      s.seq = detail::BufferState::kFree;
      head = static_cast<std::uint16_t>(id);
      fn(token, len);
    }
    const auto k = static_cast<std::uint16_t>(last - first);
    last_used_ = last;
    free_head_ = head;
    num_free_ = num_free;
    return core_.end_reap(k, k != n, [this] { rearm_used_event(); });
  }

  // reap_burst() with VIRTIO_F_IN_ORDER (§2.7.9): the used element at a batch's first position
  // carries the head of its LAST buffer and used->idx moved by the batch's size; every buffer from
  // the oldest outstanding one up to that head is used. Only the last gets the element's len (0
  // for the others). A batch cut short by `max` is finished by the next call.
  template <class Fn>
  [[gnu::always_inline]] Result<std::size_t> reap_in_order(std::size_t max, Fn&& fn) {
    const Result<std::size_t> ready = used_ready(max);
    if (!ready || *ready == 0) return ready;
    const std::size_t n = *ready;
    const UsedElem* const used_ring = view_.used_ring;
    const std::uint16_t mask = mask_;  // size - 1: id <= mask is id < size
    const std::uint64_t published = core_.published();
    detail::BufferState* const state = core_.states();
    const std::uint16_t first = last_used_;
    const auto end = static_cast<std::uint16_t>(first + n);
    // The oldest outstanding buffer's head: the first descriptor after the free ones.
    const auto from = static_cast<std::uint16_t>((free_head_ + num_free_) & mask);
    std::uint16_t head = from;
    std::uint16_t last = first;
    detail::InOrderBatch batch = batch_;
    const bool bad = !detail::reap_batches(
        batch, [&] { return last != end; },
        [&](std::uint32_t& id, std::uint32_t& len) {
          // Device-controlled: read once (elements up to used->idx are written).
          id = load_relaxed(used_ring[last & mask].id);
          len = load_relaxed(used_ring[last & mask].len);
          return true;
        },
        [&] { return head; },
        [&](std::uint32_t id) { return id <= mask && state[id].seq < published; },
        [&](std::uint32_t len) __attribute__((always_inline)) {
          detail::BufferState& s = state[head];
          if (s.seq >= published) [[unlikely]]  // the device returned more than it was given
            return false;
          const std::uint64_t token = s.token;
          s.seq = detail::BufferState::kFree;
          head = static_cast<std::uint16_t>((head + s.ndescs) & mask);  // its descriptors are free again
          ++last;
          fn(token, len);
          return true;
        });
    const auto k = static_cast<std::uint16_t>(last - first);
    last_used_ = last;
    // The freed descriptors run from `from` to `head` (all of them if that is the whole table).
    const auto freed = static_cast<std::uint16_t>((head - from) & mask);
    num_free_ = static_cast<std::uint16_t>(num_free_ + (freed == 0 && k != 0 ? core_.size() : freed));
    batch_ = bad ? detail::InOrderBatch{} : batch;
    return core_.end_reap(k, bad, [this] { rearm_used_event(); });
  }

  // Asks the device not to send used buffer notifications (§2.7.7). Advisory. With EVENT_IDX the
  // flag is ignored by the device, so only get_used stops moving used_event forward.
  void disable_cb() {
    cb_enabled_ = false;
    if (core_.event_idx() || (avail_flags_shadow_ & kAvailFNoInterrupt) != 0) return;
    avail_flags_shadow_ |= kAvailFNoInterrupt;
    store_relaxed(*view_.avail_flags, avail_flags_shadow_);  // advisory; no ordering needed
  }

  // Re-enables used buffer notifications (used_event = last_used with EVENT_IDX, else clears
  // VIRTQ_AVAIL_F_NO_INTERRUPT), then re-checks. True: used buffers are already pending and the
  // caller must poll again, since the device may have used them before it saw the enable.
  bool enable_cb() {
    if (core_.usable() != Errc::ok) return false;
    cb_enabled_ = true;
    if (core_.event_idx()) {
      store_relaxed(*view_.used_event, last_used_);
    } else if ((avail_flags_shadow_ & kAvailFNoInterrupt) != 0) {
      avail_flags_shadow_ = static_cast<std::uint16_t>(avail_flags_shadow_ & ~kAvailFNoInterrupt);
      store_relaxed(*view_.avail_flags, avail_flags_shadow_);
    }
    // §2.7.14 note full fence: the enable above before re-reading used->idx; pairs with the
    // device's full fence between its used->idx store and its used_event/flags load.
    full_fence();
    return load_relaxed(*view_.used_idx) != last_used_;  // get_used re-reads it with acquire
  }

  // Where a restarted back-end must resume (vhost-user reconnect, SET_VRING_BASE): at used->idx as
  // the old back-end left it, assuming it used buffers in avail order (rst "Reconnection"; QEMU
  // virtio_queue_restore_last_avail_idx does the same). Buffers made available after that are
  // processed again by the new back-end; used entries the driver has not reaped stay valid.
  Result<RingState> resume_state() const {
    if (Errc e = core_.usable(); e != Errc::ok) return fail(e);
    // acquire: pairs with the old device's release store of used->idx after its used elements.
    const std::uint16_t used_idx = load_acquire(*view_.used_idx);
    if (ring_distance(used_idx, last_used_) > core_.in_flight()) return fail(Errc::used_id_bad);
    return RingState{PackedCursor{used_idx, false}, PackedCursor{used_idx, false}};
  }

  std::uint16_t num_free() const { return num_free_; }
  std::uint16_t size() const { return core_.size(); }
  bool broken() const { return core_.broken(); }
  Errc error() const { return core_.error(); }

 private:
  // Chains free descriptors starting at `head`; returns the last one. §2.7.13.1: NEXT on all but
  // the last, WRITE on device-writable elements, d.next = the next free descriptor.
  std::uint16_t write_direct(std::uint16_t head, std::span<const Buffer> readable,
                             std::span<const Buffer> writable) {
    std::uint16_t i = head;
    std::uint16_t last = head;
    detail::for_each_element(readable, writable, [&](const Buffer& b, bool w, bool is_last) {
      const auto flags = static_cast<std::uint16_t>((w ? kDescFWrite : 0) | (is_last ? 0 : kDescFNext));
      view_.desc[i] = SplitDesc{b.gpa, b.len, flags, core_.next(i)};
      last = i;
      i = core_.next(i);
    });
    free_head_ = i;
    return last;
  }

  // §2.7.5.3: one ring descriptor (INDIRECT, len = 16 * n) pointing at the head's table, whose
  // entries are linked through next like a direct chain.
  std::uint16_t write_indirect(std::uint16_t head, std::span<const Buffer> readable,
                               std::span<const Buffer> writable) {
    SplitDesc* table = core_.table<SplitDesc>(head);
    std::uint16_t k = 0;
    detail::for_each_element(readable, writable, [&](const Buffer& b, bool w, bool is_last) {
      const auto flags = static_cast<std::uint16_t>((w ? kDescFWrite : 0) | (is_last ? 0 : kDescFNext));
      table[k] = SplitDesc{b.gpa, b.len, flags, static_cast<std::uint16_t>(is_last ? 0 : k + 1)};
      ++k;
    });
    view_.desc[head] = SplitDesc{core_.table_gpa(head), 16u * k, kDescFIndirect, core_.next(head)};
    free_head_ = core_.next(head);
    return head;
  }

  // How many used elements a reap may take now: min(max, used->idx - last_used).
  [[gnu::always_inline]] Result<std::size_t> used_ready(std::size_t max) {
    // acquire: pairs with the device's release store of used->idx after writing the used elements.
    const std::uint16_t used_idx = load_acquire(*view_.used_idx);
    const std::uint16_t pending = ring_distance(used_idx, last_used_);
    if (pending > core_.in_flight()) [[unlikely]]  // §2.7.8: idx moves by buffers actually used
      return fail(core_.violate(Errc::used_id_bad));
    return std::min<std::size_t>(pending, max);
  }

  // With EVENT_IDX and callbacks on, ask for a notification at the next used entry (§2.7.7).
  void rearm_used_event() {
    if (!core_.event_idx() || !cb_enabled_) return;
    store_relaxed(*view_.used_event, last_used_);
    // full fence: used_event before the next used->idx load; pairs with the device's full fence
    // between its used->idx store and its used_event load.
    full_fence();
  }

  detail::DriverCore core_;
  SplitRingView view_;
  std::uint16_t mask_ = 0;
  std::uint16_t free_head_ = 0;
  std::uint16_t num_free_ = 0;
  std::uint16_t avail_idx_shadow_ = 0;  // next avail index to fill (driver's copy, §2.7.13.3)
  std::uint16_t kicked_idx_ = 0;        // avail->idx as last published
  std::uint16_t last_used_ = 0;         // next used index to reap
  bool in_order_ = false;               // VIRTIO_F_IN_ORDER negotiated (§2.7.9)
  detail::InOrderBatch batch_;          // in-order batch being reaped (last: its last head)
  std::uint16_t avail_flags_shadow_ = 0;
  bool cb_enabled_ = true;
};

}  // namespace vireo::vring
