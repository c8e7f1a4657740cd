// Device side of a split virtqueue (VIRTIO 1.x §2.7): consume the available ring, produce the
// used ring, decide notifications. Header-only, no syscalls, no allocation after configure().
//
//   SplitDeviceRing<RegionTable> ring;
//   if (!ring.configure(&mem, {.size = 256, .features = f, .desc = d, .avail = a, .used = u}, base))
//     ...;                                           // bad size / alignment
//   Chain chain;                                     // reused for every pop
//   for (;;) {                                       // race-free drain loop (§2.7.10)
//     ring.disable_notification();
//     while (true) {
//       Result<bool> got = ring.pop(chain);
//       if (!got) return got.error();                // guest violation: ring is now broken
//       if (!*got) break;
//       ring.push(chain, process(chain));            // bytes written into the writable part
//     }
//     ring.flush();                                  // one release store of used->idx
//     if (ring.needs_notification()) call();
//     if (!ring.enable_notification()) break;        // re-checks avail->idx after a full fence
//   }
//
// Contract: one thread drives a ring (no internal locking); configure/rebind/reset must not race
// with the data-path calls. Every guest violation puts the ring in a sticky broken state: the
// failing call returns the specific Errc, every later pop returns Errc::broken, push/flush/notify
// become no-ops, until configure() or reset(). Nothing here asserts or aborts on guest data.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
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
class SplitDeviceRing {
 public:
  using Memory = M;
  struct Config {
    std::uint16_t size = 0;
    std::uint64_t features = 0;
    void* desc = nullptr;   // descriptor table (host pointer, guest-controlled contents)
    void* avail = nullptr;  // available ring (guest-controlled)
    void* used = nullptr;   // used ring (written by us, read by the driver)
    std::uint32_t max_chain_len = 0;  // 0 = queue size
  };

  // Validates and adopts the ring. next_avail comes from base.avail.idx (SET_VRING_BASE); the used
  // index is read back from used->idx, as libvhost-user does, so a reconnect resumes where the
  // previous back-end stopped publishing. Clears any broken state. Allocates the shadow used array.
  Status configure(const M* mem, const Config& cfg, RingState base) {
    clear_state();
    // §2.7: "Queue Size ... always a power of 2", maximum 32768.
    if (!valid_split_size(cfg.size)) [[unlikely]]
      return fail(Errc::bad_queue_size);
    if (mem == nullptr || cfg.desc == nullptr || cfg.avail == nullptr || cfg.used == nullptr)
        [[unlikely]]
      return fail(Errc::not_ready);
    if (!areas_aligned(cfg.desc, cfg.avail, cfg.used)) [[unlikely]]
      return fail(Errc::misaligned_ring);
    if (shadow_capacity_ < cfg.size) {
      shadow_ = std::make_unique<UsedElem[]>(cfg.size);
      shadow_capacity_ = cfg.size;
    }
    mem_ = mem;
    tcache_.invalidate();
    size_ = cfg.size;
    mask_ = static_cast<std::uint16_t>(cfg.size - 1);
    event_idx_ = has_feature(cfg.features, kFEventIdx);
    indirect_ = has_feature(cfg.features, kFIndirectDesc);
    in_order_ = has_feature(cfg.features, kFInOrder);
    max_chain_len_ = cfg.max_chain_len != 0 ? cfg.max_chain_len : cfg.size;
    view_ = SplitRingView::at(cfg.desc, cfg.avail, cfg.used, cfg.size);
    next_avail_ = base.avail.idx;
    // relaxed: used->idx is only ever written by the device side (us or our predecessor).
    used_idx_ = load_relaxed(*view_.used_idx);
    signalled_used_ = used_idx_;
    configured_ = true;
    want_kicks();
    return {};
  }

  // A new memory table: same positions and pending used elements, new host pointers. Bad pointers
  // break the ring (Errc::not_ready / Errc::misaligned_ring).
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
    view_ = SplitRingView::at(desc, avail, used, size_);
  }

  // Back to the unconfigured state (positions, memory and broken state forgotten). The shadow
  // allocation and the dirty-log attachment (device-wide, SET_LOG_BASE) are kept.
  void reset() { clear_state(); }

  // Pops one chain. true = `out` holds a validated chain; false = ring empty.
  Result<bool> pop(Chain& out) {
    Result<std::size_t> n = pop_burst(std::span<Chain>(&out, 1));
    if (!n) [[unlikely]]
      return fail(n.error());
    return *n == 1;
  }

  // Pops up to out.size() chains, reading avail->idx once. On a violation the chains popped before
  // it are lost with the ring (it is broken) and the violation is returned. On success, either
  // has_available() is true or the ring is re-armed (with kicks on and EVENT_IDX, avail_event
  // published and the ring re-checked after a full fence), so a caller that then finds
  // has_available() false may wait for the next kick without popping again.
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
      Result<std::size_t> got = pop_pending(out, n);
      if (!got) [[unlikely]]
        return got;
      n = *got;
      if (!event_idx_ || !notify_enabled_) break;
      publish_avail_event();
      // acquire: pairs with the driver's release store of avail->idx.
      if (n == out.size() && load_acquire(*view_.avail_idx) != next_avail_) break;  // pop again
      // §2.7.10 "re-check after enable": the ring looked empty, so the driver must kick for the
      // next buffer. full fence: the avail_event store above before re-reading avail->idx; pairs
      // with the driver's full fence between publishing avail->idx and reading avail_event.
      // Without it both sides could miss each other and the queue would stall.
      full_fence();
      // acquire: pairs with the driver's release store of avail->idx.
      if (load_acquire(*view_.avail_idx) == next_avail_) break;
      if (n == out.size()) break;  // a buffer came meanwhile: has_available() says so
    }
    return n;
  }

  // Pops, into out[n...], the heads avail->idx shows beyond next_avail_; returns the new count.
  Result<std::size_t> pop_pending(std::span<Chain> out, std::size_t n) {
    // acquire: pairs with the driver's release store of avail->idx after writing ring entries and
    // descriptors (§2.7.13.3 "Updating idx").
    const std::uint16_t avail_idx = load_acquire(*view_.avail_idx);
    const std::uint16_t pending = ring_distance(avail_idx, next_avail_);
    // §2.7.6: the driver never exposes more than Queue Size heads beyond what the device consumed.
    if (pending > size_) [[unlikely]]
      return break_ring(Errc::avail_index_jump);
    if (pending == 0) return n;  // busy-poll finds the ring empty most of the time
    const std::size_t end = n + std::min<std::size_t>(out.size() - n, pending);
    if (const Errc e = pop_run(out.data(), n, end); e != Errc::ok) [[unlikely]]
      return break_ring(e);
    return end;
  }

  // The lone lane (vring/split_lane.hpp; the contract is in device_queue.hpp): serve_lone() pops,
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
  // buffers are one batch (§2.7.9 "In-order use of descriptors"): ONE used element, the last
  // buffer's head, at the batch's first position, and used->idx moves by n. Not with an inflight
  // log, which needs every head in the shadow array.
  void push_unwritten(const Head* heads, std::size_t n) {
    if (in_order_ && n > 1 && inflight_log_ == nullptr && n <= size_ - n_shadow_ && !broken_ &&
        configured_) {
      shadow_[n_shadow_] = UsedElem{heads[n - 1].id, 0};
      // The n - 1 elements after it are skipped: flush() copies whatever they hold, and the driver
      // does not read them.
      n_shadow_ += static_cast<std::uint32_t>(n);
      inflight_ = static_cast<std::uint16_t>(inflight_ > n ? inflight_ - n : 0);
      return;
    }
    push_run(n, [heads](std::size_t k) { return heads[k]; }, [](std::size_t) { return 0u; },
             [this, heads](std::size_t k) { push(heads[k], 0); });
  }

  // Completes a chain: queues {head, written} in the shadow used array and, with a dirty log
  // attached, logs the pages of the first `written` writable bytes. Visible after flush().
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

  // Publishes every pushed element: at most two memcpy into the used ring, then ONE release store.
  void flush() {
    if (n_shadow_ == 0 || broken_ || !configured_) return;
    const std::uint16_t start = used_idx_ & mask_;
    if (inflight_log_ != nullptr) [[unlikely]]  // rst: link the batch before updating used
      inflight_log_->split_batch(shadow_.get(), n_shadow_);
    const std::uint32_t first = std::min<std::uint32_t>(n_shadow_, size_ - start);
    std::memcpy(view_.used_ring + start, shadow_.get(), first * sizeof(UsedElem));
    if (first < n_shadow_)
      std::memcpy(view_.used_ring, shadow_.get() + first, (n_shadow_ - first) * sizeof(UsedElem));
    const auto new_idx = static_cast<std::uint16_t>(used_idx_ + n_shadow_);
    // release: pairs with the driver's acquire load of used->idx before it reads the used elements
    // (§2.7.8.2: the device updates idx after writing the ring entries).
    store_release(*view_.used_idx, new_idx);
    if (inflight_log_ != nullptr) [[unlikely]]  // rst: clear the batch after used->idx moved
      inflight_log_->split_published(shadow_.get(), n_shadow_, new_idx);
    if (log_ != nullptr) [[unlikely]] {
      log_ring(kUsedRingOffset + start * sizeof(UsedElem), first * sizeof(UsedElem));
      if (first < n_shadow_) log_ring(kUsedRingOffset, (n_shadow_ - first) * sizeof(UsedElem));
      log_ring(kUsedIdxOffset, sizeof(std::uint16_t));
    }
    used_idx_ = new_idx;
    n_shadow_ = 0;
  }

  // After flush(): should the driver get a used buffer notification? Consumes the "new used"
  // window, so call it once per flush. §2.7.7.2.
  bool needs_notification() {
    if (broken_ || !configured_) [[unlikely]]
      return false;
    const std::uint16_t old_idx = signalled_used_;
    const bool valid = signalled_valid_;
    if (valid && old_idx == used_idx_) return false;  // nothing new since the last decision
    signalled_used_ = used_idx_;
    signalled_valid_ = true;
    // full fence: our used->idx store must be visible before we read used_event / avail->flags;
    // pairs with the driver's full fence between writing used_event/flags and re-reading used->idx.
    full_fence();
    if (event_idx_) {
      if (!valid) return true;
      // relaxed: ordered by the full fence above; the driver writes used_event before its fence.
      const std::uint16_t used_event = load_relaxed(*view_.used_event);
      // §2.7.7.2: notify iff the used index moved past used_event in this window.
      return need_event(used_event, used_idx_, old_idx);
    }
    // relaxed: ordered by the full fence above. §2.7.7.2: NO_INTERRUPT set -> SHOULD NOT notify.
    return (load_relaxed(*view_.avail_flags) & kAvailFNoInterrupt) == 0;
  }

  // Asks the driver not to kick. §2.7.10.2: without EVENT_IDX set used->flags NO_NOTIFY; with
  // EVENT_IDX the flags must stay 0, and leaving avail_event behind already suppresses kicks.
  void disable_notification() {
    if (broken_ || !configured_) [[unlikely]]
      return;
    notify_enabled_ = false;
    if (!event_idx_) set_used_flags(kUsedFNoNotify);
  }

  // True if pop_burst() would return a chain (or a violation): a head is waiting to be resubmitted
  // or avail->idx moved past next_avail. A cheap look, no fence, no event index published: for a
  // caller that would otherwise prepare work (copy a burst of frame views) for buffers that are
  // not there.
  bool has_available() const {
    if (broken_ || !configured_) [[unlikely]]
      return false;
    // acquire: pairs with the driver's release store of avail->idx, as in pop_pending().
    return resubmit_pos_ < n_resubmit_ || load_acquire(*view_.avail_idx) != next_avail_;
  }

  // Re-enables kicks, then re-checks: true = buffers are already available (keep draining).
  bool enable_notification() {
    if (broken_ || !configured_) [[unlikely]]
      return false;
    notify_enabled_ = true;
    if (event_idx_) publish_avail_event();  // §2.7.10.2: kick me once avail->idx passes next_avail
    else set_used_flags(0);
    // full fence: the avail_event / used->flags store must be visible before re-reading avail->idx;
    // pairs with the driver's full fence between its avail->idx store and reading avail_event.
    full_fence();
    // acquire: pairs with the driver's release store of avail->idx.
    return load_acquire(*view_.avail_idx) != next_avail_;
  }

  // Logs used-ring writes at ring_log_gpa (the used ring's guest address, SET_VRING_ADDR
  // log_guest_addr) and buffer writes made through push(chain, ...). nullptr detaches.
  void set_dirty_log(const DirtyLog* log, std::uint64_t ring_log_gpa) {
    log_ = log;
    ring_log_gpa_ = ring_log_gpa;
  }

  // Records pops and used elements in a vhost-user inflight region (nullptr detaches). Call after
  // configure(): it recovers the region (rst "When reconnecting": roll back the last batch) and
  // queues the heads still in flight, which the next pops return first, in counter order; the
  // avail position restarts at used->idx + their number, as libvhost-user vu_check_queue_inflights.
  // Allocates (control path only).
  void set_inflight_log(InflightLog* log) {
    // Pushes made without a log are published first: an in-order batch left only its last head in
    // the shadow array, and the log must not see the others' stale entries.
    flush();
    inflight_log_ = nullptr;
    n_resubmit_ = resubmit_pos_ = 0;
    if (log == nullptr || !configured_ || log->layout() != InflightLog::Layout::split ||
        log->queue_size() != size_)
      return;
    inflight_log_ = log;
    const std::vector<std::uint16_t> pending = log->split_recover(used_idx_);
    if (pending.empty()) return;
    if (resubmit_capacity_ < size_) {
      resubmit_ = std::make_unique<std::uint16_t[]>(size_);
      resubmit_capacity_ = size_;
    }
    n_resubmit_ = static_cast<std::uint16_t>(std::min<std::size_t>(pending.size(), size_));
    std::copy_n(pending.begin(), n_resubmit_, resubmit_.get());
    next_avail_ = static_cast<std::uint16_t>(used_idx_ + n_resubmit_);
  }

  bool broken() const { return broken_; }
  Errc error() const { return error_; }
  // GET_VRING_BASE: avail.idx = next_avail (the used index lives in the ring itself).
  RingState state() const { return RingState{PackedCursor{next_avail_, true}, PackedCursor{used_idx_, true}}; }
  std::uint16_t size() const { return size_; }
  std::uint16_t inflight() const { return inflight_; }

 private:
  // push_burst()'s loop: head_of(k) / written_of(k) are buffer k's head and used length. With a
  // dirty log, or more than the shadow array holds, push_one(k) each.
  template <class HeadOf, class WrittenOf, class PushOne>
  void push_run(std::size_t n, HeadOf head_of, WrittenOf written_of, PushOne push_one) {
    if (broken_ || !configured_) [[unlikely]]
      return;
    if (log_ != nullptr || n > size_ - n_shadow_) [[unlikely]] {
      for (std::size_t k = 0; k < n; ++k) push_one(k);
      return;
    }
    UsedElem* const dst = shadow_.get() + n_shadow_;
    for (std::size_t k = 0; k < n; ++k) dst[k] = UsedElem{head_of(k).id, written_of(k)};
    n_shadow_ += static_cast<std::uint32_t>(n);
    inflight_ = static_cast<std::uint16_t>(inflight_ > n ? inflight_ - n : 0);
  }

  // serve_lone() (kPush) and pop_lone(): vring/split_lane.hpp.
  template <bool kPush, class Serve>
  std::size_t lone_loop(std::size_t max, bool writable, Serve&& serve);

  static constexpr std::uint64_t kUsedIdxOffset = 2;    // used->idx within the used ring
  static constexpr std::uint64_t kUsedRingOffset = 4;   // used->ring[0]

  static bool aligned(const void* p, std::size_t a) {
    return (reinterpret_cast<std::uintptr_t>(p) & (a - 1)) == 0;
  }
  // §2.7 alignment table: descriptor table 16, available ring 2, used ring 4.
  static bool areas_aligned(const void* desc, const void* avail, const void* used) {
    return aligned(desc, kSplitDescAlign) && aligned(avail, kSplitAvailAlign) &&
           aligned(used, kSplitUsedAlign);
  }

  void clear_state() {
    mem_ = nullptr;
    tcache_.invalidate();
    view_ = SplitRingView{};
    size_ = 0;
    mask_ = 0;
    event_idx_ = indirect_ = in_order_ = false;
    max_chain_len_ = 0;
    next_avail_ = used_idx_ = signalled_used_ = 0;
    used_flags_ = 0;
    signalled_valid_ = false;
    notify_enabled_ = true;
    inflight_ = 0;
    n_shadow_ = 0;
    broken_ = false;
    error_ = Errc::ok;
    configured_ = false;
    inflight_log_ = nullptr;
    n_resubmit_ = resubmit_pos_ = 0;
  }

  CachedMemory<M> cached_mem() noexcept { return CachedMemory<M>{mem_, &tcache_}; }

  vireo::Unexpected<Errc> break_ring(Errc e) {
    broken_ = true;
    error_ = e;
    return fail(e);
  }

  // The burst loop: out[i, end) from the avail ring, next_avail_ and inflight_ advanced over
  // every head popped (the failing one excluded; an error breaks the ring anyway), each pop
  // recorded in the inflight log if one is attached. Ring pointers, cursor and the cached region
  // stay in registers; a lone descriptor (no NEXT, no INDIRECT) whose buffer lies inside the
  // cached region becomes its chain directly, which is exactly what walk() + append_single()
  // produce for it. Anything else goes through walk_one() (the general walk, same errors), which
  // may refill the cache.
  Errc pop_run(Chain* out, std::size_t i, const std::size_t end) noexcept {
    // Everything the loop needs lives in locals: stores into the chains may alias the ring's
    // members, which would force a reload of each per head.
    const SplitDesc* const desc = view_.desc;
    const std::uint16_t* const avail_ring = view_.avail_ring;
    const std::uint16_t mask = mask_;  // Queue Size - 1
    std::uint16_t next = next_avail_;
    std::uint64_t c_gpa = tcache_.gpa();
    std::uint64_t c_size = tcache_.size();
    std::byte* c_host = tcache_.host();
    Errc e = Errc::ok;
    Chain* c = out + i;
    for (Chain* const stop = out + end; c != stop; ++c) {
      // relaxed: the ring entry is ordered by the avail->idx acquire in pop_pending().
      const std::uint16_t head = load_relaxed(avail_ring[next & mask]);
      // §2.7.6: ring[] holds descriptor-table indexes, so a head must be < Queue Size.
      if (head > mask) [[unlikely]] {
        e = Errc::head_out_of_range;
        break;
      }
      const SplitDesc d = read_once<SplitDesc>(&desc[head]);
      const std::uint64_t off = d.addr - c_gpa;
      // Lone, non-empty, no address wrap, wholly inside the cached region (c_size 0 = empty).
      if ((d.flags & (kDescFNext | kDescFIndirect)) == 0 && d.addr + d.len > d.addr &&
          off < c_size && d.len <= c_size - off) [[likely]] {
        c->set_single(Head{head, 1}, c_host + off, d.len, d.addr, (d.flags & kDescFWrite) != 0);
      } else {
        e = walk_one(head, d, *c);
        if (e != Errc::ok) [[unlikely]]
          break;
        c_gpa = tcache_.gpa();
        c_size = tcache_.size();
        c_host = tcache_.host();
      }
      ++next;
    }
    // Recorded after the walk (a separate loop keeps the walk's registers free), still before
    // any of these heads reaches the caller; a head that failed its walk is not recorded.
    if (inflight_log_ != nullptr) [[unlikely]]
      for (const Chain* p = out + i; p != c; ++p) inflight_log_->split_pop(p->head().id);
    inflight_ = static_cast<std::uint16_t>(inflight_ + (next - next_avail_));
    next_avail_ = next;
    return e;
  }

  // pop_run()'s slow path for one head whose descriptor `d` was already read once.
  [[gnu::noinline]] Errc walk_one(std::uint16_t head, SplitDesc d, Chain& out) noexcept {
    out.reset(Head{head, 1});
    if ((d.flags & (kDescFNext | kDescFIndirect)) == 0)
      return out.append_single(cached_mem(), d.addr, d.len, (d.flags & kDescFWrite) != 0);
    return walk_chain(head, d, out);
  }

  // Walks and validates the chain at `head` into `out`. Every descriptor is copied once
  // (read_once) before any field is checked or used.
  // A lone descriptor (no NEXT, no INDIRECT: the common one-buffer chain) takes a short path;
  // every rule of the general walk holds trivially for it (one visit <= Queue Size, one buffer
  // <= max_chain_len >= 1, no readable-after-writable), and append_single() reports exactly what
  // append() would.
  Errc walk(std::uint16_t head, Chain& out) noexcept {
    out.reset(Head{head, 1});
    const SplitDesc d = read_once<SplitDesc>(&view_.desc[head]);
    if ((d.flags & (kDescFNext | kDescFIndirect)) == 0) [[likely]]
      return out.append_single(cached_mem(), d.addr, d.len, (d.flags & kDescFWrite) != 0);
    return walk_chain(head, d, out);
  }

  // The general walk; `first` is the head descriptor, already read once by walk().
  Errc walk_chain(std::uint16_t head, SplitDesc first, Chain& out) noexcept {
    const CachedMemory<M> mem = cached_mem();
    const std::byte* table = reinterpret_cast<const std::byte*>(view_.desc);
    std::uint32_t table_len = size_;  // entries in the table being walked
    std::uint32_t ttl = size_;        // visits left before a revisit is certain: a loop
    std::uint32_t idx = head;
    BufferRules rules{max_chain_len_};  // over the whole chain, indirect table included
    bool in_indirect = false;
    // Each visit copies its descriptor once (read_once) before any field is checked or used.
    for (SplitDesc d = first;; d = read_once<SplitDesc>(table + std::size_t{idx} * sizeof(SplitDesc))) {
      // §2.7.5.2: "loops in the descriptor chain are forbidden" - a table of N entries cannot
      // hold an acyclic chain of more than N descriptors.
      if (ttl-- == 0) [[unlikely]]
        return Errc::descriptor_loop;
      if ((d.flags & kDescFIndirect) != 0) [[unlikely]] {
        const void* t = nullptr;
        if (const Errc e = check_indirect(mem, d, in_indirect, indirect_, t); e != Errc::ok) return e;
        table = static_cast<const std::byte*>(t);
        table_len = d.len / sizeof(SplitDesc);
        ttl = table_len;
        idx = 0;  // §2.7.5.3: the table's first descriptor starts the rest of the chain
        in_indirect = true;
        continue;
      }
      if (const Errc e = rules.append(out, mem, d.addr, d.len, (d.flags & kDescFWrite) != 0);
          e != Errc::ok) [[unlikely]]
        return e;
      if ((d.flags & kDescFNext) == 0) return Errc::ok;
      // §2.7.5: next indexes the current table (descriptor table or indirect table).
      if (d.next >= table_len) [[unlikely]]
        return Errc::next_out_of_range;
      idx = d.next;
    }
  }

  // §2.7.5.3.1 / §2.7.5.3.2 rules for a descriptor carrying VIRTQ_DESC_F_INDIRECT.
  static Errc check_indirect(const CachedMemory<M>& mem, const SplitDesc& d, bool in_indirect,
                             bool indirect_negotiated, const void*& table) noexcept {
    if (in_indirect) [[unlikely]]  // "MUST NOT set INDIRECT within an indirect descriptor"
      return Errc::indirect_in_indirect;
    if (!indirect_negotiated) [[unlikely]]  // INDIRECT only with VIRTIO_F_INDIRECT_DESC
      return Errc::indirect_not_negotiated;
    if ((d.flags & kDescFNext) != 0) [[unlikely]]  // "MUST NOT set both INDIRECT and NEXT"
      return Errc::next_with_indirect;
    if (d.len == 0 || d.len % sizeof(SplitDesc) != 0) [[unlikely]]
      return Errc::indirect_len_bad;
    if (d.len / sizeof(SplitDesc) > limits::kMaxIndirectEntries) [[unlikely]]  // next cannot index more
      return Errc::indirect_too_large;
    table = translate_contiguous(mem, d.addr, d.len);
    if (table == nullptr) [[unlikely]]
      return Errc::address_not_mapped;
    return Errc::ok;
  }

  // Walks the heads left in flight by a previous back-end (set_inflight_log) into out[0..).
  Errc pop_resubmitted(std::span<Chain> out, std::size_t& n) noexcept {
    while (resubmit_pos_ < n_resubmit_ && n < out.size()) {
      const std::uint16_t head = resubmit_[resubmit_pos_++];
      if (head >= size_) return Errc::head_out_of_range;  // the region is front-end memory
      if (const Errc e = walk(head, out[n]); e != Errc::ok) return e;
      ++n;
      ++inflight_;
    }
    if (resubmit_pos_ == n_resubmit_) n_resubmit_ = resubmit_pos_ = 0;
    return Errc::ok;
  }

  [[gnu::always_inline]] void add_used(Head head, std::uint32_t written) {
    if (n_shadow_ == size_) [[unlikely]]
      flush_full();  // more pushes than pops (caller bug): keep the array bounded
    shadow_[n_shadow_++] = UsedElem{head.id, written};
    if (inflight_ != 0) --inflight_;
  }
  [[gnu::noinline, gnu::cold]] void flush_full() { flush(); }

  // A (re)started device wants kicks (§2.7.10): a previous device may have left NO_NOTIFY set or
  // avail_event at an old index (it crashed while polling), and the driver would never kick again.
  void want_kicks() {
    notify_enabled_ = true;
    used_flags_ = static_cast<std::uint16_t>(~kUsedFNoNotify);  // differs from 0: forces the store
    set_used_flags(0);
    if (event_idx_) publish_avail_event();
  }
  void publish_avail_event() {
    // relaxed: read by the driver after its own full fence; enable_notification() follows this
    // store with a full fence before re-checking avail->idx.
    store_relaxed(*view_.avail_event, next_avail_);
    if (log_ != nullptr) [[unlikely]]
      log_ring(kUsedRingOffset + std::uint64_t{size_} * sizeof(UsedElem), sizeof(std::uint16_t));
  }

  void set_used_flags(std::uint16_t flags) {
    if (used_flags_ == flags) return;  // keep the cache line clean when nothing changes
    used_flags_ = flags;
    // relaxed: advisory (§2.7.10); read by the driver after its full fence.
    store_relaxed(*view_.used_flags, flags);
    if (log_ != nullptr) [[unlikely]]
      log_ring(0, sizeof(std::uint16_t));
  }

  void log_ring(std::uint64_t offset, std::uint64_t len) const { log_->mark(ring_log_gpa_ + offset, len); }

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
  SplitRingView view_{};  // pointers into guest-controlled memory
  std::uint16_t size_ = 0;
  std::uint16_t mask_ = 0;
  bool event_idx_ = false;
  bool indirect_ = false;
  bool in_order_ = false;  // VIRTIO_F_IN_ORDER negotiated: push_unwritten() batches
  bool configured_ = false;
  bool broken_ = false;
  Errc error_ = Errc::ok;
  std::uint32_t max_chain_len_ = 0;
  std::uint16_t next_avail_ = 0;      // next avail ring entry to consume (free-running)
  std::uint16_t used_idx_ = 0;        // our copy of used->idx (free-running)
  std::uint16_t used_flags_ = 0;      // our copy of used->flags
  std::uint16_t signalled_used_ = 0;  // used_idx_ at the last needs_notification()
  bool signalled_valid_ = false;
  bool notify_enabled_ = true;
  std::uint16_t inflight_ = 0;
  std::unique_ptr<UsedElem[]> shadow_;
  std::uint32_t shadow_capacity_ = 0;
  std::uint32_t n_shadow_ = 0;
  const DirtyLog* log_ = nullptr;
  std::uint64_t ring_log_gpa_ = 0;
  InflightLog* inflight_log_ = nullptr;
  std::unique_ptr<std::uint16_t[]> resubmit_;  // heads to pop again after a reconnect
  std::uint32_t resubmit_capacity_ = 0;
  std::uint16_t n_resubmit_ = 0;
  std::uint16_t resubmit_pos_ = 0;
};

}  // namespace vireo::vring

#include "vring/split_lane.hpp"  // SplitDeviceRing::lone_loop
