// Types and bookkeeping shared by the two driver-side rings (split_driver.hpp, packed_driver.hpp).
//
//   DriverConfig cfg{.size = 256, .features = negotiated, .desc = d, .avail = a, .used = u};
//   DriverBuffer hdr{hdr_gpa, 16}, data{data_gpa, 4096};
//   ring.add(std::span(&hdr, 1), std::span(&data, 1), /*token=*/cookie);
//
// The driver owns its ring memory: it passes host pointers for the ring areas (and the optional
// indirect-table pool) plus the guest addresses the device will see. Nothing here dereferences a
// buffer address. Everything the device writes back (used ids, used idx, used flags, suppression
// fields) is device-controlled: it is read once into a local and validated before any array is
// indexed with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "vring/errc.hpp"
#include "vring/features.hpp"

namespace vireo::vring {

// Negotiated shape of one driver ring. configure() zero-initialises the three areas.
struct DriverConfig {
  std::uint16_t size = 0;
  std::uint64_t features = 0;  // negotiated: EVENT_IDX, INDIRECT_DESC, RING_PACKED are consulted
  void* desc = nullptr;        // split: descriptor table; packed: descriptor ring
  void* avail = nullptr;       // split: available ring;   packed: driver event suppression
  void* used = nullptr;        // split: used ring;        packed: device event suppression
  // Optional indirect pool: `size` tables of `indirect_max` descriptors each, table k at
  // indirect_host + k * indirect_max * 16 (guest address indirect_gpa + same offset). Table k
  // belongs to buffer id / head k, so a table is reused only after its buffer was reaped.
  std::byte* indirect_host = nullptr;
  std::uint64_t indirect_gpa = 0;
  std::uint16_t indirect_max = 0;
};

// One guest-physically contiguous element of a buffer.
struct DriverBuffer {
  std::uint64_t gpa;
  std::uint32_t len;
};

// A reaped buffer: the caller's token from add() and the device-reported written length.
struct DriverUsed {
  std::uint64_t token;
  std::uint32_t len;
};

// One element of add_burst(): a one-element buffer and the token get_used() hands back for it.
struct DriverAdd {
  DriverBuffer buf;
  std::uint64_t token;
};

namespace detail {

inline bool is_aligned(const void* p, std::size_t a) {
  return reinterpret_cast<std::uintptr_t>(p) % a == 0;
}

// Calls fn(buffer, writable, last) for every element, readable first (§2.7.4.2, §2.8.17: writable
// elements follow readable ones).
template <class Fn>
inline void for_each_element(std::span<const DriverBuffer> readable,
                             std::span<const DriverBuffer> writable, Fn&& fn) {
  const std::size_t n = readable.size() + writable.size();
  std::size_t k = 0;
  for (const DriverBuffer& b : readable) fn(b, false, ++k == n);
  for (const DriverBuffer& b : writable) fn(b, true, ++k == n);
}

// Out-of-band state of one buffer (split: per head index; packed: per buffer id). The device never
// sees it, so nothing here can be corrupted through shared memory.
struct BufferState {
  static constexpr std::uint64_t kFree = ~std::uint64_t{0};
  std::uint64_t token = 0;
  // The batch it was added in (DriverCore::batch_ at add() time): outstanding and visible to the
  // device iff seq < the batches published so far. kFree (never below that) when not
  // outstanding, so one compare decides reapable(). A whole burst shares one value.
  std::uint64_t seq = kFree;
  std::uint16_t ndescs = 0;  // ring descriptors it occupies (while outstanding)
  std::uint16_t tail = 0;    // split: last descriptor of the chain (to splice it back)
  // Free-list link, kept next to the state the same loops touch (split: next free descriptor,
  // private shadow of desc.next; packed: next free buffer id). Not part of track().
  std::uint16_t next = 0;
};

// VIRTIO_F_IN_ORDER reaping (§2.7.9, §2.8.23), the same for both layouts. A used element names
// either the oldest outstanding buffer (a batch of one, the common case) or the LAST buffer of a
// batch, which completes every outstanding buffer up to it in the order they were added; only the
// last gets the element's length (0 for the others). A batch cut short by the reap's limit stays
// here for the next reap, which finishes it without reading the ring.
struct InOrderBatch {
  static constexpr std::uint32_t kNone = ~std::uint32_t{0};
  std::uint32_t last = kNone;  // the batch's last buffer (packed: its id; split: its head)
  std::uint32_t len = 0;       // that buffer's used length
  bool pending() const { return last != kNone; }
};

// The in-order reap loop. While more(): read(id, len) reads the used element at the used position
// (false: none is used yet); oldest() is the oldest outstanding buffer; outstanding(id) says
// whether a device-named id is an outstanding published buffer; take(len) reaps the oldest one
// (false: it was never published). False on a violation: the ring must break.
template <class More, class Read, class Oldest, class Outstanding, class Take>
[[gnu::always_inline]] inline bool reap_batches(InOrderBatch& b, More more, Read read, Oldest oldest,
                                                Outstanding outstanding, Take take) {
  while (more()) {
    if (!b.pending()) {
      std::uint32_t id = 0, len = 0;
      if (!read(id, len)) return true;
      if (id == oldest()) [[likely]] {
        if (!take(len)) [[unlikely]]
          return false;
        continue;
      }
      // A later buffer ends a batch: it must be outstanding, so the walk below reaches it.
      if (!outstanding(id)) [[unlikely]]
        return false;
      b = InOrderBatch{id, len};
    }
    // The batch, while more(): no ring reads.
    while (more()) {
      const bool last = oldest() == b.last;
      if (!take(last ? b.len : 0u)) [[unlikely]]
        return false;
      if (last) {
        b.last = InOrderBatch::kNone;
        break;
      }
    }
  }
  return true;
}

// The part of DriverCore add_burst keeps in locals: written back once per burst, so stores
// into the rings cannot force reloads of it (they may alias members).
struct BurstCursor {
  BufferState* state;
  std::uint64_t seq;  // the current batch: every buffer of the burst is stamped with it
};

// Bookkeeping common to both layouts: configuration, the sticky broken state, per-buffer state and
// the counters that tell which buffers the device may legitimately return.
class DriverCore {
 public:
  // Validates the shared part of the configuration and sizes the state array (the only allocation).
  Status configure(const DriverConfig& c) {
    if (c.indirect_max != 0) {
      if (c.indirect_host == nullptr) return fail(Errc::not_ready);
      if (!is_aligned(c.indirect_host, 16) || c.indirect_gpa % 16 != 0)
        return fail(Errc::misaligned_ring);
    }
    size_ = c.size;
    features_ = c.features;
    pool_host_ = c.indirect_host;
    pool_gpa_ = c.indirect_gpa;
    indirect_max_ = c.indirect_max;
    state_.assign(size_, BufferState{});
    for (std::uint32_t i = 0; i < size_; ++i) state_[i].next = static_cast<std::uint16_t>((i + 1) % size_);
    added_ = published_ = reaped_ = batch_ = 0;
    broken_ = false;
    error_ = Errc::ok;
    return {};
  }

  // Why an operation may not run: not configured, or broken earlier.
  Errc usable() const {
    if (broken_) [[unlikely]]
      return Errc::broken;
    if (size_ == 0) [[unlikely]]
      return Errc::not_ready;
    return Errc::ok;
  }

  // How many ring descriptors a buffer of `nsegs` elements needs, or why it cannot be added.
  Result<std::uint16_t> plan(std::size_t nsegs, bool indirect, std::uint16_t num_free) const {
    if (Errc e = usable(); e != Errc::ok) return fail(e);
    if (nsegs == 0) return fail(Errc::empty_buffer);
    std::size_t need = nsegs;
    if (indirect) {
      // §2.7.5.3.1 / §2.8.19: INDIRECT only when VIRTIO_F_INDIRECT_DESC was negotiated.
      if (!has_feature(features_, kFIndirectDesc) || indirect_max_ == 0)
        return fail(Errc::indirect_not_negotiated);
      if (nsegs > indirect_max_) return fail(Errc::chain_too_long);
      need = 1;
    } else if (nsegs > size_) {
      // §2.7.13.1 / §2.8.17: a descriptor list never exceeds the queue size.
      return fail(Errc::chain_too_long);
    }
    if (need > num_free) return fail(Errc::no_space);
    return static_cast<std::uint16_t>(need);
  }

  void track(std::uint16_t id, std::uint64_t token, std::uint16_t ndescs, std::uint16_t tail) {
    BufferState& s = state_[id];
    s.token = token;
    s.seq = batch_;
    ++added_;
    s.ndescs = ndescs;
    s.tail = tail;
  }
  // The free list threaded through BufferState::next.
  std::uint16_t next(std::uint16_t i) const { return state_[i].next; }
  void set_next(std::uint16_t i, std::uint16_t n) { state_[i].next = n; }
  // Everything added so far becomes visible to the device (kick_prepare's release store).
  void publish() {
    published_ = added_;
    ++batch_;  // the batch just published is < batch_; later adds are stamped with the new one
  }
  bool has_unpublished() const { return added_ != published_; }

  // Device-controlled id: in range, outstanding, and already made available.
  bool reapable(std::uint32_t id) const {
    if (id >= size_) [[unlikely]]
      return false;
    return state_[id].seq < batch_;  // kFree when not outstanding
  }
  // Returns the buffer's state and marks it free. Only after reapable(id).
  BufferState release(std::uint16_t id) {
    BufferState s = state_[id];
    state_[id].seq = BufferState::kFree;
    ++reaped_;
    return s;
  }

  // Burst version of track(): begin_adds() hands out the state array and counter for the loop,
  // end_adds() takes the counter back. Between the two only the loop touches them.
  BurstCursor begin_adds() { return BurstCursor{state_.data(), batch_}; }
  void end_adds(std::size_t n) { added_ += n; }
  // Burst reaps test reapable() on locals: id < size && states()[id].seq < published().
  BufferState* states() { return state_.data(); }
  std::uint64_t published() const { return batch_; }  // batches published: seq below is visible
  // Out-of-band state of buffer `id` (only after reapable(id)).
  const BufferState& state(std::uint16_t id) const { return state_[id]; }
  // Buffers the device holds right now: the most a used index may move.
  std::uint64_t in_flight() const { return published_ - reaped_; }

  // The end of a burst reap that took k buffers (counted here): a bad used element breaks the
  // ring (the k reaped before it are still handed back, the next call reports Errc::broken); else
  // rearm() moves the layout's used event on, if anything was reaped.
  template <class Rearm>
  Result<std::size_t> end_reap(std::size_t k, bool bad, Rearm&& rearm) {
    reaped_ += k;
    if (bad) [[unlikely]] {
      const Errc e = violate(Errc::used_id_bad);
      if (k == 0) return fail(e);
      return k;
    }
    if (k != 0) rearm();
    return k;
  }

  // A device violation: sticky until the next configure().
  Errc violate(Errc e) {
    broken_ = true;
    error_ = e;
    return e;
  }

  template <class Desc>
  Desc* table(std::uint16_t id) const {
    return reinterpret_cast<Desc*>(pool_host_ + table_offset(id));
  }
  std::uint64_t table_gpa(std::uint16_t id) const { return pool_gpa_ + table_offset(id); }

  std::uint16_t size() const { return size_; }
  bool event_idx() const { return has_feature(features_, kFEventIdx); }
  bool broken() const { return broken_; }
  Errc error() const { return error_; }

 private:
  std::size_t table_offset(std::uint16_t id) const {
    return std::size_t{id} * indirect_max_ * 16u;
  }

  std::uint16_t size_ = 0;
  std::uint64_t features_ = 0;
  std::byte* pool_host_ = nullptr;
  std::uint64_t pool_gpa_ = 0;
  std::uint16_t indirect_max_ = 0;
  std::vector<BufferState> state_;
  std::uint64_t added_ = 0;      // buffers added since configure
  std::uint64_t published_ = 0;  // of those, made visible to the device
  std::uint64_t batch_ = 0;      // kick_prepare() publications so far = the current batch
  std::uint64_t reaped_ = 0;     // returned by get_used
  bool broken_ = false;
  Errc error_ = Errc::ok;
};

}  // namespace detail
}  // namespace vireo::vring
