// Device side of a packed virtqueue (VIRTIO 1.x §2.8): consume available descriptors, write used
// descriptors back into the same ring, decide notifications. Twin of SplitDeviceRing (same verbs,
// same contract); header-only, no syscalls, no allocation after configure().
//
//   PackedDeviceRing<RegionTable> ring;
//   ring.configure(&mem, {.size = 256, .features = f, .desc = ring_area,
//                         .avail = driver_event_area, .used = device_event_area}, base);
//   Chain chain;
//   while (*ring.pop(chain)) ring.push(chain, process(chain));   // (check the Result in real code)
//   ring.flush();                            // the batch's first used flags (release)
//   if (ring.needs_notification()) call();
//
// Positions are {index, wrap_counter} cursors (§2.8.1: both wrap counters start at 1). A buffer
// is available when its head's AVAIL bit equals the avail wrap counter and its USED bit does not.
// The buffer id is in the LAST descriptor of a list (§2.8.6); Head::ndescs is the number of ring
// slots the buffer occupied, and the used position advances by it (§2.8.6, §2.8.8).
//
// Contract: as SplitDeviceRing (single thread per ring; sticky broken state on guest violations).
// push() writes each used descriptor into the ring at once, all but the batch's first complete
// with flags; flush() publishes the batch by storing the first one's flags. configure() and
// reset() drop unflushed pushes as before, but their later slots already hold used descriptors:
// flush() before state() and reset() (Session::stop_ring does), or a driver may later read them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "vring/barriers.hpp"
#include "vring/chain.hpp"
#include "vring/dirty_log.hpp"
#include "vring/errc.hpp"
#include "vring/features.hpp"
#include "vring/index.hpp"
#include "vring/inflight_log.hpp"
#include "vring/layout.hpp"
#include "vring/memory.hpp"

namespace vireo::vring {

template <GuestMemory M>
class PackedDeviceRing {
 public:
  using Memory = M;
  struct Config {
    std::uint16_t size = 0;
    std::uint64_t features = 0;
    void* desc = nullptr;   // descriptor ring (guest-controlled; we write used descriptors)
    void* avail = nullptr;  // driver event suppression (guest-controlled, read by us)
    void* used = nullptr;   // device event suppression (written by us)
    std::uint32_t max_chain_len = 0;  // 0 = queue size
  };

  // Validates and adopts the ring; both cursors come from `base` (SET_VRING_BASE for packed
  // rings carries last_avail_idx + wrap and last_used_idx + wrap). Clears any broken state.
  Status configure(const M* mem, const Config& cfg, RingState base) {
    clear_state();
    // §2.8: up to 2^15 entries, no power-of-two rule.
    if (!valid_packed_size(cfg.size)) [[unlikely]]
      return fail(Errc::bad_queue_size);
    // A position outside the ring cannot be resumed from.
    if (base.avail.idx >= cfg.size || base.used.idx >= cfg.size) [[unlikely]]
      return fail(Errc::base_out_of_range);
    if (mem == nullptr || cfg.desc == nullptr || cfg.avail == nullptr || cfg.used == nullptr)
        [[unlikely]]
      return fail(Errc::not_ready);
    if (!areas_aligned(cfg.desc, cfg.avail, cfg.used)) [[unlikely]]
      return fail(Errc::misaligned_ring);
    if (shadow_capacity_ < cfg.size) {
      shadow_ = std::make_unique<std::uint16_t[]>(cfg.size);
      shadow_capacity_ = cfg.size;
    }
    mem_ = mem;
    tcache_.invalidate();
    size_ = cfg.size;
    event_idx_ = has_feature(cfg.features, kFEventIdx);
    indirect_ = has_feature(cfg.features, kFIndirectDesc);
    in_order_ = has_feature(cfg.features, kFInOrder);
    max_chain_len_ = cfg.max_chain_len != 0 ? cfg.max_chain_len : cfg.size;
    view_ = PackedRingView::at(cfg.desc, cfg.avail, cfg.used, cfg.size);
    avail_ = base.avail;
    used_ = base.used;
    signalled_used_ = used_;
    configured_ = true;
    want_kicks();
    return {};
  }

  // New memory table: same cursors and pending used elements, new host pointers.
  void rebind(const M* mem, void* desc, void* avail, void* used) {
    if (!configured_) return;
    if (mem == nullptr || desc == nullptr || avail == nullptr || used == nullptr) [[unlikely]] {
      (void)break_ring(Errc::not_ready);
      return;
    }
    if (!areas_aligned(desc, avail, used)) [[unlikely]] {
      (void)break_ring(Errc::misaligned_ring);
      return;
    }
    mem_ = mem;
    tcache_.invalidate();  // the cached region belongs to the old table
    view_ = PackedRingView::at(desc, avail, used, size_);
  }

  // Back to the unconfigured state; keeps the shadow allocation and the dirty-log attachment.
  void reset() { clear_state(); }

  Result<bool> pop(Chain& out) {
    Result<std::size_t> n = pop_burst(std::span<Chain>(&out, 1));
    if (!n) [[unlikely]]
      return fail(n.error());
    return *n == 1;
  }

  // Pops up to out.size() buffers, in ring order (§2.8.12: the device MUST start processing driver
  // descriptors in the order in which they appear in the ring). On success, either
  // has_available() is true or the ring is re-armed (with kicks on and EVENT_IDX, off_wrap
  // published and the ring re-checked after a full fence), as SplitDeviceRing::pop_burst().
  Result<std::size_t> pop_burst(std::span<Chain> out) {
    if (broken_) [[unlikely]]
      return fail(Errc::broken);
    if (!configured_) [[unlikely]]
      return fail(Errc::not_ready);
    std::size_t n = 0;
    if (n_resubmit_ != 0) [[unlikely]] {
      if (const Errc e = pop_resubmitted(out, n); e != Errc::ok) return break_ring(e);
    }
    for (;;) {
      if (const Errc e = pop_run(out, n); e != Errc::ok) [[unlikely]]
        return break_ring(e);
      if (!event_idx_ || !notify_enabled_) break;
      publish_event_off_wrap();
      if (n == out.size() && next_available()) break;  // out is full: the caller pops again
      // §2.8.10 "re-check after enable": the ring looked empty, so the driver must kick for the
      // next buffer. full fence: the off_wrap store above before re-reading the next head's flags;
      // pairs with the driver's full fence between exposing flags and reading device_event.
      full_fence();
      if (!next_available()) break;
      if (n == out.size()) break;  // a buffer came meanwhile: has_available() says so
    }
    return n;
  }

  // The lone lane (vring/packed_lane.hpp; the contract is in device_queue.hpp): serve_lone() pops,
  // serves and pushes one-descriptor buffers in one pass, serve(data, len, id) returning the used
  // length or kNotServed; pop_lone() leaves the buffers in flight (serve's value: kNotServed or
  // not).
  template <class Serve>
  [[gnu::always_inline]] std::size_t serve_lone(std::size_t max, bool writable, Serve&& serve) {
    return lone_loop<true>(max, writable, serve);
  }
  template <class Serve>
  [[gnu::always_inline]] std::size_t pop_lone(std::size_t max, bool writable, Serve&& serve) {
    return lone_loop<false>(max, writable, serve);
  }
  // push(head, 0) for heads[k], k < n, in order: buffers the device wrote nothing into (so there
  // is nothing to dirty-log but the used ring, which flush() logs). With VIRTIO_F_IN_ORDER the n
  // buffers are one batch (§2.8.23 "In-order use of descriptors"): ONE used descriptor with the
  // last buffer's id, at the batch's first slot, and the used position skips all the batch's
  // slots. Not with an inflight log, which needs every id.
  void push_unwritten(const Head* heads, std::size_t n) {
    if (in_order_ && n > 1 && inflight_log_ == nullptr && n <= size_ - n_shadow_ && !broken_ &&
        configured_) {
      std::uint32_t slots = 0;
      for (std::size_t k = 0; k < n; ++k) slots += heads[k].ndescs;
      const Head batch{heads[n - 1].id, static_cast<std::uint16_t>(std::min<std::uint32_t>(slots, size_))};
      push_loop<false>(1, [batch](std::size_t) { return batch; }, [](std::size_t) { return 0u; }, n);
      return;
    }
    push_run(n, [heads](std::size_t k) { return heads[k]; }, [](std::size_t) { return 0u; },
             [this, heads](std::size_t k) { push(heads[k], 0); });
  }

  [[gnu::always_inline]] void push(const Chain& chain, std::uint32_t written) {
    if (broken_ || !configured_) [[unlikely]]
      return;
    if (log_ != nullptr) [[unlikely]]
      log_written(*log_, chain, written);
    add_used(chain.head(), written);
  }
  // Same without dirty logging: only for rings with no DirtyLog attached.
  [[gnu::always_inline]] void push(Head head, std::uint32_t written) {
    if (broken_ || !configured_) [[unlikely]]
      return;
    add_used(head, written);
  }

  // push(chains[k], written[k]) for k < n, in order.
  void push_burst(const Chain* chains, std::size_t n, const std::uint32_t* written) {
    push_run(n, [chains](std::size_t k) { return chains[k].head(); },
             [written](std::size_t k) { return written[k]; },
             [this, chains, written](std::size_t k) { push(chains[k], written[k]); });
  }
  // push(chains[k], written) for k < n, in order.
  void push_burst(const Chain* chains, std::size_t n, std::uint32_t written) {
    push_run(n, [chains](std::size_t k) { return chains[k].head(); },
             [written](std::size_t) { return written; },
             [this, chains, written](std::size_t k) { push(chains[k], written); });
  }

  // Publishes every pushed buffer. push() already wrote each used descriptor (id, len, and the
  // flags of all but the batch's first) at the write cursor; this stores the first one's flags
  // with ONE release store, so the driver, which polls only its next used slot (§2.8.2), never
  // sees a partial batch (§2.8.9).
  void flush() {
    if (n_shadow_ == 0 || broken_ || !configured_) return;
    const PackedCursor start = used_;
    used_ = PackedCursor{wr_idx_, wr_bits_ != 0};
    if (inflight_log_ != nullptr) [[unlikely]] {  // rst: return the batch's entries, then publish
      inflight_log_->packed_batch(n_shadow_, [s = shadow_.get()](std::uint32_t i) { return s[i]; });
      inflight_log_->packed_batch_end(used_);
    }
    // release: pairs with the driver's acquire load of the first used descriptor's flags; every
    // used descriptor of this batch (written by push()) is written before it.
    store_release(view_.desc[start.idx].flags, first_flags_);
    if (inflight_log_ != nullptr) [[unlikely]] {  // rst: clear the batch, move the rollback point
      inflight_log_->packed_published(n_shadow_, [s = shadow_.get()](std::uint32_t i) { return s[i]; });
      inflight_log_->packed_commit();
    }
    if (log_ != nullptr) [[unlikely]]
      log_slots(start, used_);
    n_shadow_ = 0;
  }

  // After flush(): should the driver get a used buffer notification? §2.8.10 driver event
  // suppression: ENABLE, DISABLE, or DESC (EVENT_IDX) with off_wrap.
  bool needs_notification() {
    if (broken_ || !configured_) [[unlikely]]
      return false;
    const PackedCursor old_pos = signalled_used_;
    const bool valid = signalled_valid_;
    if (valid && old_pos == used_) return false;  // nothing new since the last decision
    signalled_used_ = used_;
    signalled_valid_ = true;
    // full fence: our used flags stores must be visible before we read the driver's suppression;
    // pairs with the driver's full fence between writing driver_event and re-checking used flags.
    full_fence();
    // acquire: pairs with the driver's release store of driver_event->flags after off_wrap.
    const std::uint16_t flags = load_acquire(view_.driver_event->flags) & kEventFlagsMask;
    if (flags == kRingEventFlagsDisable) return false;
    // ENABLE, reserved 0x3, or DESC without EVENT_IDX (§2.8.10: DESC "only valid if EVENT_IDX"):
    // notify.
    if (flags != kRingEventFlagsDesc || !event_idx_) return true;
    if (!valid) return true;
    // relaxed: ordered by the acquire of driver_event->flags above.
    const std::uint16_t off_wrap = load_relaxed(view_.driver_event->off_wrap);
    return need_event_packed(off_wrap, old_pos, used_, size_);
  }

  void disable_notification() {
    if (broken_ || !configured_) [[unlikely]]
      return;
    notify_enabled_ = false;
    set_device_event_flags(kRingEventFlagsDisable);
  }

  // True if pop_burst() would return a chain (or a violation): a head is waiting to be resubmitted
  // or the descriptor at the avail cursor is available. A cheap look, no fence, no event
  // structure written: for a caller that would otherwise prepare work (copy a burst of frame
  // views) for buffers that are not there.
  bool has_available() const {
    if (broken_ || !configured_) [[unlikely]]
      return false;
    // acquire: pairs with the driver's release store of the head descriptor's flags, as in
    // pop_burst().
    return resubmit_pos_ < n_resubmit_ || next_available();
  }

  // Re-enables kicks (ENABLE, or DESC at the next avail position with EVENT_IDX), then re-checks:
  // true = a buffer is already available (keep draining).
  bool enable_notification() {
    if (broken_ || !configured_) [[unlikely]]
      return false;
    notify_enabled_ = true;
    if (event_idx_) {
      publish_event_off_wrap();
      set_device_event_flags(kRingEventFlagsDesc);
    } else {
      set_device_event_flags(kRingEventFlagsEnable);
    }
    // full fence: the event suppression stores must be visible before re-reading the next head's
    // flags; pairs with the driver's full fence between exposing flags and reading device_event
    // (§2.8.21.2).
    full_fence();
    return next_available();
  }

  // Logs used-descriptor writes at ring_log_gpa (the descriptor ring's guest address) and buffer
  // writes made through push(chain, ...). nullptr detaches. The device event area has no log
  // address in vhost-user and is not logged.
  void set_dirty_log(const DirtyLog* log, std::uint64_t ring_log_gpa) {
    log_ = log;
    ring_log_gpa_ = ring_log_gpa;
  }

  // Records pops and used buffers in a vhost-user inflight region (rst packed layout; nullptr
  // detaches). Call after configure(): it recovers the region (rst "When reconnecting": commit or
  // roll back the last batch) and, unless the region is new, resumes from it: used = the region's
  // used position, avail = used advanced over every descriptor still in flight, and the next pops
  // return the in-flight buffers first, in counter order, read from the region (their ring slots
  // may have been overwritten by used descriptors). A region that does not add up is not used.
  // Allocates (control path only).
  void set_inflight_log(InflightLog* log) {
    flush();  // pushes made without a log kept no ids (push_loop); publish them first
    inflight_log_ = nullptr;
    n_resubmit_ = resubmit_pos_ = 0;
    if (log == nullptr || !configured_ || log->layout() != InflightLog::Layout::packed ||
        log->queue_size() != size_)
      return;
    const InflightLog::PackedRecovery r = log->packed_recover(view_.desc, RingState{avail_, used_});
    inflight_rejected_ = !r.ok;
    if (!r.ok) return;
    inflight_log_ = log;
    if (r.fresh) return;
    avail_ = r.state.avail;
    used_ = signalled_used_ = r.state.used;
    signalled_valid_ = false;
    inflight_ = 0;
    if (resubmit_capacity_ < size_) {
      resubmit_ = std::make_unique<std::uint16_t[]>(size_);
      resubmit_capacity_ = size_;
    }
    n_resubmit_ = static_cast<std::uint16_t>(std::min<std::size_t>(r.heads.size(), size_));
    std::copy_n(r.heads.begin(), n_resubmit_, resubmit_.get());
    want_kicks();  // off_wrap at the recovered avail position
  }
  // The last set_inflight_log() found the region inconsistent and ignored it.
  bool inflight_rejected() const { return inflight_rejected_; }

  bool broken() const { return broken_; }
  Errc error() const { return error_; }
  RingState state() const { return RingState{avail_, used_}; }  // GET_VRING_BASE: both cursors
  std::uint16_t size() const { return size_; }
  std::uint16_t inflight() const { return inflight_; }

 private:
  // push_burst()'s loop: head_of(k) / written_of(k) are buffer k's head and used length. With a
  // dirty log, or more than the batch may hold, push_one(k) each. Whether the batch's ids are
  // kept for an inflight log is decided once per burst.
  template <class HeadOf, class WrittenOf, class PushOne>
  void push_run(std::size_t n, HeadOf head_of, WrittenOf written_of, PushOne push_one) {
    if (broken_ || !configured_ || n == 0) [[unlikely]]
      return;
    if (log_ != nullptr || n > size_ - n_shadow_) [[unlikely]] {
      for (std::size_t k = 0; k < n; ++k) push_one(k);
      return;
    }
    if (inflight_log_ != nullptr) [[unlikely]]
      push_loop<true>(n, head_of, written_of, n);
    else
      push_loop<false>(n, head_of, written_of, n);
  }

  // serve_lone() (kPush) and pop_lone(): vring/packed_lane.hpp.
  template <bool kPush, class Serve>
  std::size_t lone_loop(std::size_t max, bool writable, Serve&& serve);
  template <bool kPush, bool kInPlace, class Serve>
  std::size_t lone_run(std::size_t n, bool first, bool writable, Serve&& serve);

  // Write cursor and wrap bits stay in locals: the descriptor stores go to guest memory, which
  // may alias any member.
  // `buffers`: how many buffers the n used descriptors complete (n, or an in-order batch's size).
  template <bool kKeepIds, class HeadOf, class WrittenOf>
  [[gnu::always_inline]] void push_loop(std::size_t n, HeadOf head_of, WrittenOf written_of,
                                        std::size_t buffers) {
    PackedDesc* const desc = view_.desc;
    const std::uint32_t size = size_;
    std::uint16_t* const ids = shadow_.get() + n_shadow_;
    std::uint32_t idx = wr_idx_;
    std::uint32_t bits = wr_bits_;
    std::size_t k = 0;
    if (n_shadow_ == 0) {  // the batch's first: its flags wait for flush()
      idx = used_.idx;
      bits = used_.wrap ? kUsedBits : 0;
      const Head h = head_of(0);
      first_flags_ = write_used(desc[idx], h, written_of(0), bits);
      if constexpr (kKeepIds) ids[0] = h.id;
      advance_used(idx, bits, h.ndescs, size);
      k = 1;
    }
    // The later descriptors go out as one word each (store_desc_word: flush() publishes them);
    // their AVAIL|USED bits in place in that word, flipped at the wrap.
    std::uint64_t flags_word = desc_word(0, 0, static_cast<std::uint16_t>(bits));
    for (; k < n; ++k) {
      const Head h = head_of(k);
      const std::uint32_t len = written_of(k);
      store_desc_word(desc[idx], used_word(len, h.id, flags_word));
      if constexpr (kKeepIds) ids[k] = h.id;
      advance_used(idx, flags_word, h.ndescs, size, desc_word(0, 0, kUsedBits));
    }
    wr_idx_ = static_cast<std::uint16_t>(idx);
    wr_bits_ = static_cast<std::uint16_t>(flags_word >> 48);
    n_shadow_ += static_cast<std::uint32_t>(buffers);
    inflight_ = static_cast<std::uint16_t>(inflight_ > buffers ? inflight_ - buffers : 0);
  }

  // AVAIL | USED: a used descriptor has both equal to the device wrap counter (§2.8.1).
  static constexpr std::uint16_t kUsedBits = kDescFAvail | kDescFUsed;
  static constexpr std::uint16_t kEventFlagsMask = 0x3;  // desc_event_flags:2

  static bool aligned(const void* p, std::size_t a) {
    return (reinterpret_cast<std::uintptr_t>(p) & (a - 1)) == 0;
  }
  // §2.8.10.1: descriptor ring 16, event suppression structures 4.
  static bool areas_aligned(const void* desc, const void* driver_ev, const void* device_ev) {
    return aligned(desc, kPackedDescAlign) && aligned(driver_ev, kPackedEventAlign) &&
           aligned(device_ev, kPackedEventAlign);
  }
  // The descriptor at the avail cursor is available.
  bool next_available() const {
    // acquire: pairs with the driver's release store of the head descriptor's flags, made after
    // the rest of its list (§2.8.21.1).
    return is_available(load_acquire(view_.desc[avail_.idx].flags), avail_.wrap);
  }
  // §2.8.1: available iff AVAIL == wrap counter and USED != wrap counter.
  static bool is_available(std::uint16_t flags, bool wrap) {
    return ((flags & kDescFAvail) != 0) == wrap && ((flags & kDescFUsed) != 0) != wrap;
  }

  void clear_state() {
    mem_ = nullptr;
    tcache_.invalidate();
    view_ = PackedRingView{};
    size_ = 0;
    event_idx_ = indirect_ = in_order_ = false;
    max_chain_len_ = 0;
    avail_ = used_ = signalled_used_ = PackedCursor{};
    signalled_valid_ = false;
    notify_enabled_ = true;
    device_event_flags_ = 0;
    inflight_ = 0;
    n_shadow_ = 0;
    broken_ = false;
    error_ = Errc::ok;
    configured_ = false;
    inflight_log_ = nullptr;
    inflight_rejected_ = false;
    n_resubmit_ = resubmit_pos_ = 0;
  }

  CachedMemory<M> cached_mem() noexcept { return CachedMemory<M>{mem_, &tcache_}; }

  vireo::Unexpected<Errc> break_ring(Errc e) {
    broken_ = true;
    error_ = e;
    return fail(e);
  }

  // The burst loop: pops into out[n...] while the next head is available; n and inflight_ count
  // the buffers popped (the failing one excluded; an error breaks the ring anyway). Whether an
  // inflight log is attached is decided once per burst: the untracked loop (the common case)
  // carries no recording code, so the cursor, count, ring pointer and cached region all stay in
  // registers. A lone descriptor (no NEXT, no INDIRECT) with an id < Queue Size whose buffer
  // lies inside the cached region becomes its chain directly (recorded in the inflight log as
  // walk_list() records it), which is exactly what walk() produces for it. Anything else goes
  // through walk() (same errors), which may refill the cache.
  Errc pop_run(std::span<Chain> out, std::size_t& n) noexcept {
    return inflight_log_ != nullptr ? pop_loop<true>(out, n) : pop_loop<false>(out, n);
  }

  template <bool kTracked>
  [[gnu::always_inline]] Errc pop_loop(std::span<Chain> out, std::size_t& n_io) noexcept {
    PackedDesc* const desc = view_.desc;
    PackedDesc* const ring_end = desc + size_;
    const std::uint16_t size = size_;
    const PackedDesc* dp = desc + avail_.idx;  // the avail cursor, as a pointer
    // The AVAIL/USED pattern of an available head at this wrap (§2.8.1: AVAIL == wrap counter,
    // USED != wrap counter); both bits flip when the cursor wraps.
    std::uint16_t avail_bits = avail_.wrap ? kDescFAvail : kDescFUsed;
    std::uint64_t c_gpa = 0;
    std::uint64_t c_size = 0;  // 0: nothing takes the fast path
    std::byte* c_host = nullptr;
    // The cached region, unless it reaches the top of the address space: then a buffer inside
    // it cannot wrap, so the fast path needs no wrap check of its own.
    auto load_cache = [&] {
      c_gpa = tcache_.gpa();
      c_size = tcache_.size();
      c_host = tcache_.host();
      if (c_gpa + c_size <= c_gpa) c_size = 0;
    };
    load_cache();
    Errc e = Errc::ok;
    Chain* c = out.data() + n_io;
    Chain* const end = out.data() + out.size();
    Chain* const first = c;
    for (; c != end; ++c) {
      // acquire: pairs with the driver's release store of the head descriptor's flags, made
      // after the rest of the list was written (§2.8.6, §2.8.21.1 "Updating flags").
      const std::uint16_t head_flags = load_acquire(dp->flags);
      if ((head_flags & (kDescFAvail | kDescFUsed)) != avail_bits) break;
      if ((head_flags & (kDescFNext | kDescFIndirect)) == 0) [[likely]] {
        PackedDesc d = read_once<PackedDesc>(dp);
        d.flags = head_flags;  // the value availability was decided on (not fetched twice)
        const std::uint64_t off = d.addr - c_gpa;
        // Lone, non-empty (len - 1 wraps for 0), inside the cached region (so no address wrap,
        // see load_cache), §2.8.6 id < Queue Size. (Chain::capacity() >= 1: chain.hpp.)
        if (off < c_size && std::uint64_t{d.len} - 1 < c_size - off && d.id < size) [[likely]] {
          c->set_single(Head{d.id, 1}, c_host + off, d.len, d.addr, (head_flags & kDescFWrite) != 0);
          if constexpr (kTracked) {
            // As walk_list() records a one-descriptor list; a corrupt free list (front-end
            // memory) ends the tracking, not the ring.
            if (inflight_log_ != nullptr && !inflight_log_->packed_pop_desc(d, true, true))
                [[unlikely]]
              inflight_log_ = nullptr;
          }
          if (++dp == ring_end) [[unlikely]] {
            dp = desc;
            avail_bits ^= kDescFAvail | kDescFUsed;
          }
          continue;
        }
      }
      avail_ = PackedCursor{static_cast<std::uint16_t>(dp - desc), avail_bits == kDescFAvail};
      e = walk(head_flags, *c);
      if (e != Errc::ok) [[unlikely]]
        break;
      dp = desc + avail_.idx;
      avail_bits = avail_.wrap ? kDescFAvail : kDescFUsed;
      load_cache();
    }
    avail_ = PackedCursor{static_cast<std::uint16_t>(dp - desc), avail_bits == kDescFAvail};
    const auto popped = static_cast<std::size_t>(c - first);
    n_io += popped;
    inflight_ = static_cast<std::uint16_t>(inflight_ + popped);
    return e;
  }

  // Walks the list starting at the avail cursor into `out`; advances the cursor on success.
  // `head_flags` is the (acquired) flags value availability was decided on: the head's flags are
  // not fetched twice. With an inflight log, every descriptor is recorded as it is accepted.
  [[gnu::noinline]] Errc walk(std::uint16_t head_flags, Chain& out) noexcept {
    // A lone descriptor (no NEXT, no INDIRECT) is the common one-buffer list; with an inflight
    // log every descriptor must be recorded, so those take the general walk.
    if ((head_flags & (kDescFNext | kDescFIndirect)) == 0 && inflight_log_ == nullptr) [[likely]]
      return walk_single(head_flags, out);
    PackedCursor pos = avail_;
    auto fetch = [&](std::uint32_t k, PackedDesc& d) {
      d = read_once<PackedDesc>(&view_.desc[pos.idx]);
      if (k == 0) d.flags = head_flags;
      pos.advance(1, size_);
      return true;
    };
    Errc e = Errc::ok;
    if (inflight_log_ != nullptr) [[unlikely]]
      e = walk_list(fetch, [this](const PackedDesc& d, bool head, bool last) {
        // A corrupt free list (front-end memory) ends the tracking, not the ring.
        if (inflight_log_ != nullptr && !inflight_log_->packed_pop_desc(d, head, last))
          inflight_log_ = nullptr;
      }, out);
    else
      e = walk_list(fetch, [](const PackedDesc&, bool, bool) {}, out);
    if (e == Errc::ok) avail_ = pos;
    return e;
  }

  // A lone descriptor (no NEXT, no INDIRECT). The general walk's rules hold trivially for it (one
  // slot <= Queue Size, one buffer <= max_chain_len >= 1, nothing readable after writable);
  // append_single() and the id check give exactly its errors.
  Errc walk_single(std::uint16_t head_flags, Chain& out) noexcept {
    out.reset(Head{0, 0});
    PackedDesc d = read_once<PackedDesc>(&view_.desc[avail_.idx]);
    d.flags = head_flags;
    const bool writable = (d.flags & kDescFWrite) != 0;
    if (const Errc e = out.append_single(cached_mem(), d.addr, d.len, writable); e != Errc::ok)
        [[unlikely]]
      return e;
    // §2.8.6: the buffer id names driver state of at most Queue Size buffers.
    if (d.id >= size_) [[unlikely]]
      return Errc::packed_id_out_of_range;
    out.set_id(d.id);
    out.set_ndescs(1);
    avail_.advance(1, size_);
    return Errc::ok;
  }

  // One buffer's descriptor list into `out`: fetch(k, d) copies descriptor k (false: the list
  // cannot be read), record(d, head, last) sees each descriptor once it is accepted.
  template <class Fetch, class Record>
  Errc walk_list(Fetch&& fetch, Record&& record, Chain& out) noexcept;

  // Walks the buffers left in flight by a previous back-end (set_inflight_log) into out[n..),
  // from the region's copy of their descriptors.
  Errc pop_resubmitted(std::span<Chain> out, std::size_t& n) noexcept {
    if (inflight_log_ == nullptr) [[unlikely]] {  // detached: the copies are gone with it
      n_resubmit_ = resubmit_pos_ = 0;
      return Errc::ok;
    }
    while (resubmit_pos_ < n_resubmit_ && n < out.size()) {
      const std::uint16_t head = resubmit_[resubmit_pos_++];
      const std::uint16_t num = inflight_log_->packed_desc(head).num;  // region: read once
      auto fetch = [&](std::uint32_t k, PackedDesc& d) {
        return k < num && inflight_log_->packed_list_desc(head, static_cast<std::uint16_t>(k), d);
      };
      if (const Errc e = walk_list(fetch, [](const PackedDesc&, bool, bool) {}, out[n]); e != Errc::ok)
        return e;
      if (out[n].head().ndescs != num) return Errc::chain_too_long;  // the list ended early
      ++n;
      ++inflight_;
    }
    if (resubmit_pos_ == n_resubmit_) n_resubmit_ = resubmit_pos_ = 0;
    return Errc::ok;
  }

  // §2.8.7 / §2.8.19: an INDIRECT descriptor is alone in its list (not linked by NEXT), needs the
  // feature, and points to len / 16 sequential pvirtq_desc whose only valid flag is WRITE.
  Errc walk_indirect(const CachedMemory<M>& mem, const PackedDesc& d, std::uint32_t slot,
                     Chain& out, BufferRules& rules) noexcept;

  [[gnu::always_inline]] void add_used(Head head, std::uint32_t written) {
    if (n_shadow_ == size_) [[unlikely]]
      flush_full();  // more pushes than pops (caller bug): keep the batch within the ring
    const bool first = n_shadow_ == 0;
    std::uint32_t idx = first ? used_.idx : wr_idx_;
    std::uint32_t bits = first ? (used_.wrap ? kUsedBits : 0u) : wr_bits_;
    PackedDesc& d = view_.desc[idx];
    if (first) first_flags_ = write_used(d, head, written, bits);  // its flags wait for flush()
    else write_used_whole(d, head.id, written, used_flags(written, bits));
    if (inflight_log_ != nullptr) [[unlikely]]
      shadow_[n_shadow_] = head.id;
    ++n_shadow_;
    advance_used(idx, bits, head.ndescs, size_);
    wr_idx_ = static_cast<std::uint16_t>(idx);
    wr_bits_ = static_cast<std::uint16_t>(bits);
    if (inflight_ != 0) --inflight_;
  }

  // §2.8.1: a used descriptor has AVAIL and USED both equal to the device wrap counter (`bits`);
  // §2.8.3: WRITE iff data was written (without it the driver ignores len).
  static std::uint16_t used_flags(std::uint32_t len, std::uint32_t bits) {
    return static_cast<std::uint16_t>(bits | (len != 0 ? kDescFWrite : 0));
  }
  // Writes the id and len of the batch's first used descriptor (§2.8.6: one per buffer, its id)
  // and returns its flags, which flush() stores last.
  static std::uint16_t write_used(PackedDesc& d, Head head, std::uint32_t len, std::uint32_t bits) {
    d.id = head.id;
    d.len = len;
    return used_flags(len, bits);
  }
  // A used descriptor as one word: len, id and the flags used_flags() gives, with the AVAIL|USED
  // bits taken from `flags_word` (a desc_word holding only them).
  static std::uint64_t used_word(std::uint32_t len, std::uint16_t id, std::uint64_t flags_word) {
    return desc_word(len, id, len != 0 ? kDescFWrite : 0) | flags_word;
  }
  // A later used descriptor of the batch, in one store (store_desc_word: flush() publishes it).
  static void write_used_whole(PackedDesc& d, std::uint16_t id, std::uint32_t len,
                               std::uint16_t flags) {
    store_desc_word(d, desc_word(len, id, flags));
  }
  // Moves a used write cursor over one buffer's ring slots (§2.8.6, §2.8.8) and flips its wrap
  // bits (`wrap`: where they sit in `bits`, kUsedBits or a desc_word) at the ring's end; a buffer
  // occupies 1..size slots: clamped so a caller bug cannot stall the cursor.
  template <class Bits>
  static void advance_used(std::uint32_t& idx, Bits& bits, std::uint32_t ndescs, std::uint32_t size,
                           Bits wrap = kUsedBits) {
    if (ndescs - 1u >= size) [[unlikely]]  // 0 or more than the ring: 1 / size
      ndescs = ndescs == 0 ? 1u : size;
    idx += ndescs;
    if (idx >= size) {
      idx -= size;
      bits ^= wrap;
    }
  }

  [[gnu::noinline, gnu::cold]] void flush_full() { flush(); }

  // A (re)started device wants kicks (§2.8.10): a previous device, or the front-end while it ran
  // the ring itself, may have left the device event area disabled or at an old off_wrap, and the
  // driver would never kick again.
  void want_kicks() {
    notify_enabled_ = true;
    if (event_idx_) publish_event_off_wrap();
    device_event_flags_ = static_cast<std::uint16_t>(~0u);  // forces the store below
    set_device_event_flags(event_idx_ ? kRingEventFlagsDesc : kRingEventFlagsEnable);
  }
  void publish_event_off_wrap() {
    // relaxed: the driver reads off_wrap after acquiring device_event->flags (set_device_event_flags
    // releases it when switching to DESC); a later move forward needs no extra ordering.
    store_relaxed(view_.device_event->off_wrap, encode_off_wrap(avail_));
  }

  void set_device_event_flags(std::uint16_t flags) {
    if (device_event_flags_ == flags) return;  // keep the cache line clean when nothing changes
    device_event_flags_ = flags;
    // release: pairs with the driver's acquire load of device_event->flags before it reads
    // off_wrap (written just before for DESC).
    store_release(view_.device_event->flags, flags);
  }

  // Logs the ring slots written by a flush: [from, to) in ring order.
  void log_slots(PackedCursor from, PackedCursor to) const {
    const std::uint64_t desc = sizeof(PackedDesc);
    if (to.idx > from.idx) {
      log_->mark(ring_log_gpa_ + from.idx * desc, (to.idx - from.idx) * desc);
    } else {  // wrapped (or a whole ring): tail then head
      log_->mark(ring_log_gpa_ + from.idx * desc, (size_ - from.idx) * desc);
      if (to.idx != 0) log_->mark(ring_log_gpa_, to.idx * desc);
    }
  }

  static void log_written(const DirtyLog& log, const Chain& chain, std::uint32_t written) {
    std::uint32_t left = written;
    for (const Segment& s : chain.writable()) {
      if (left == 0) break;
      const std::uint32_t k = std::min(left, s.len);
      log.mark(s.gpa, k);
      left -= k;
    }
  }

  const M* mem_ = nullptr;
  TranslateCache<M> tcache_;  // last-hit region of mem_; invalidated with every change of mem_
  PackedRingView view_{};  // pointers into guest-controlled memory
  std::uint16_t size_ = 0;
  bool event_idx_ = false;
  bool indirect_ = false;
  bool in_order_ = false;  // VIRTIO_F_IN_ORDER negotiated: push_unwritten() batches
  bool configured_ = false;
  bool broken_ = false;
  Errc error_ = Errc::ok;
  std::uint32_t max_chain_len_ = 0;
  PackedCursor avail_{};           // next descriptor to consume + avail wrap_counter
  PackedCursor used_{};            // next used slot + device (used) wrap_counter
  PackedCursor signalled_used_{};  // used_ at the last needs_notification()
  bool signalled_valid_ = false;
  bool notify_enabled_ = true;
  std::uint16_t device_event_flags_ = 0;  // our copy of device_event->flags
  std::uint16_t inflight_ = 0;
  std::unique_ptr<std::uint16_t[]> shadow_;  // pushed, unpublished ids (kept with an inflight log)
  std::uint32_t shadow_capacity_ = 0;
  std::uint32_t n_shadow_ = 0;                // pushed since the last flush()
  std::uint16_t wr_idx_ = 0;                  // used write cursor (valid while n_shadow_ != 0)
  std::uint16_t wr_bits_ = 0;                 // its AVAIL|USED pattern (kUsedBits or 0)
  std::uint16_t first_flags_ = 0;             // flags of the batch's first used descriptor
  const DirtyLog* log_ = nullptr;
  std::uint64_t ring_log_gpa_ = 0;
  InflightLog* inflight_log_ = nullptr;
  bool inflight_rejected_ = false;
  std::unique_ptr<std::uint16_t[]> resubmit_;  // head entries to pop again after a reconnect
  std::uint32_t resubmit_capacity_ = 0;
  std::uint16_t n_resubmit_ = 0;
  std::uint16_t resubmit_pos_ = 0;
};

}  // namespace vireo::vring

#include "vring/packed_lane.hpp"  // PackedDeviceRing::lone_loop
#include "vring/packed_walk.hpp"  // PackedDeviceRing::walk_list / walk_indirect
