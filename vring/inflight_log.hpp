// Inflight I/O tracking (vhost-user.rst "Inflight I/O tracking"): the device ring records every
// pop and every published used element in a shared region that outlives the back-end process,
// so a restarted back-end can resubmit what was in flight. Layouts are the rst's (DPDK
// rte_vhost_inflight_info_split / _packed); the region memory is owned by the caller.
//
//   InflightLog log(InflightLog::Layout::split, region_bytes, queue_size);
//   ring.configure(...);
//   ring.set_inflight_log(&log);   // recovers: rolls back the last batch, queues resubmissions
//   ring.pop(chain);               // resubmitted heads first, in pop (counter) order
//
// The region is shared with the front-end, so every index read back from it is range-checked.
// Devices need no code for this: the rings call the hooks.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "vring/barriers.hpp"
#include "vring/index.hpp"
#include "vring/layout.hpp"

namespace vireo::vring {


struct InflightDescSplit {
  std::uint8_t inflight;
  std::uint8_t padding[5];
  std::uint16_t next;
  std::uint64_t counter;
};
static_assert(sizeof(InflightDescSplit) == 16);

struct InflightQueueSplit {  // header of one queue's split region; desc[] follows
  std::uint64_t features;
  std::uint16_t version;
  std::uint16_t desc_num;
  std::uint16_t last_batch_head;
  std::uint16_t used_idx;
};
static_assert(sizeof(InflightQueueSplit) == 16);

struct InflightDescPacked {
  std::uint8_t inflight;
  std::uint8_t padding;
  std::uint16_t next;
  std::uint16_t last;
  std::uint16_t num;
  std::uint64_t counter;
  std::uint16_t id;
  std::uint16_t flags;
  std::uint32_t len;
  std::uint64_t addr;
};
static_assert(sizeof(InflightDescPacked) == 32);

struct InflightQueuePacked {  // header of one queue's packed region; desc[] follows at 32
  std::uint64_t features;
  std::uint16_t version;
  std::uint16_t desc_num;
  std::uint16_t free_head;
  std::uint16_t old_free_head;
  std::uint16_t used_idx;
  std::uint16_t old_used_idx;
  std::uint8_t used_wrap_counter;
  std::uint8_t old_used_wrap_counter;
  std::uint8_t padding[7];
};
static_assert(sizeof(InflightQueuePacked) == 32);

class InflightLog {
 public:
  enum class Layout : std::uint8_t { split, packed };

  InflightLog() = default;
  // `region` holds one queue's header + queue_size descriptor states.
  InflightLog(Layout layout, std::byte* region, std::uint16_t queue_size)
      : layout_(layout), region_(region), size_(queue_size),
        entry_by_id_(layout == Layout::packed ? queue_size : 0, queue_size) {
    for (std::uint16_t i = 0; i < size_; ++i)
      counter_ = std::max(counter_, layout_ == Layout::split ? split_desc(i).counter : packed_desc(i).counter);
  }

  // A new region (GET_INFLIGHT_FD): version 1, desc_num; packed: both used wrap counters 1
  // (§2.8.1) and every entry on the free list 0 -> 1 -> ... -> desc_num (the end), as DPDK does.
  // The memory must be zeroed.
  void format() {
    if (layout_ == Layout::split) {
      split_hdr().version = 1;
      split_hdr().desc_num = size_;
      return;
    }
    InflightQueuePacked& h = packed_hdr();
    h.version = 1;
    h.desc_num = size_;
    h.used_wrap_counter = h.old_used_wrap_counter = 1;
    for (std::uint16_t i = 0; i < size_; ++i) packed_desc(i).next = static_cast<std::uint16_t>(i + 1);
  }

  // Tests: `probe(ctx)` runs at every point a crash may stop the log (each step below), so a test
  // can snapshot the memory there and recover from it.
  using Probe = void (*)(void* ctx);
  void set_crash_probe(Probe probe, void* ctx) {
    probe_ = probe;
    probe_ctx_ = ctx;
  }

  Layout layout() const { return layout_; }
  std::uint16_t queue_size() const { return size_; }

  // ---- split (rst "When receiving available buffers" / "When supplying used buffers") ----
  void split_pop(std::uint16_t head) {
    if (head >= size_) return;
    InflightDescSplit& d = split_desc(head);
    d.counter = ++counter_;
    // compiler fence: the counter is set before the entry counts as in flight.
    step();
    d.inflight = 1;
    step();  // (crash point: popped and recorded)
  }
  // Before the used ring is updated: link the batch.
  void split_batch(std::uint16_t head) {
    if (head >= size_) return;
    split_desc(head).next = split_hdr().last_batch_head;
    split_hdr().last_batch_head = head;
    // compiler fence: the batch list is linked before the ring's release store of used->idx.
    step();
  }
  // split_batch() for a whole flush: the heads are the used elements' ids, in order; one
  // compiler fence after the last link (until used->idx moves, recovery ignores the list).
  void split_batch(const UsedElem* batch, std::uint32_t n) {
    InflightQueueSplit& h = split_hdr();
    std::uint16_t last = h.last_batch_head;
    for (std::uint32_t i = 0; i < n; ++i) {
      const auto head = static_cast<std::uint16_t>(batch[i].id);
      if (head >= size_) continue;
      split_desc(head).next = last;
      last = head;
    }
    h.last_batch_head = last;
    // compiler fence: the batch list is linked before the ring's release store of used->idx.
    step();
  }
  // split_published() + split_commit() for a whole flush.
  void split_published(const UsedElem* batch, std::uint32_t n, std::uint16_t used_idx) {
    // compiler fence: pairs with the ring's release store of used->idx; inflight = 0 after it.
    step();
    for (std::uint32_t i = 0; i < n; ++i) {
      const auto head = static_cast<std::uint16_t>(batch[i].id);
      if (head < size_) split_desc(head).inflight = 0;
    }
    split_commit(used_idx);
  }
  // After used->idx was published: clear one head of the batch.
  void split_published(std::uint16_t head) {
    // compiler fence: pairs with the ring's release store of used->idx; inflight = 0 after it.
    step();
    if (head < size_) split_desc(head).inflight = 0;
  }
  // After the whole batch was cleared: record the new used index (until then, recovery sees
  // used_idx lag used->idx and clears the batch itself).
  void split_commit(std::uint16_t used_idx) {
    // compiler fence: every clear of the batch comes before used_idx moves.
    step();
    split_hdr().used_idx = used_idx;
  }
  // rst "When reconnecting": if used_idx lags the ring's used->idx, the last batch was published
  // but not cleared: clear it. Returns the heads still in flight, in counter order.
  std::vector<std::uint16_t> split_recover(std::uint16_t ring_used_idx) {
    InflightQueueSplit& h = split_hdr();
    std::uint16_t batch = static_cast<std::uint16_t>(ring_used_idx - h.used_idx);
    std::uint16_t head = h.last_batch_head;
    for (std::uint16_t i = 0; i < batch && i < size_ && head < size_; ++i) {
      split_desc(head).inflight = 0;
      head = split_desc(head).next;
    }
    h.used_idx = ring_used_idx;
    return pending();
  }

  // ---- packed (rst "For packed virtqueue": a free list of entries, one per ring descriptor) ----
  // When receiving available buffers: once per ring descriptor of a list, in ring order. The
  // list's head entry is old_free_head; old_free_head moves only when the list is complete, so a
  // crash mid-list leaves the half-recorded entries on the free list (cleared on recovery).
  // Returns false when the region's free list is corrupt (the caller detaches the log).
  bool packed_pop_desc(const PackedDesc& d, bool head, bool last) {
    InflightQueuePacked& h = packed_hdr();
    if (h.old_free_head >= size_ || h.free_head >= size_) [[unlikely]]
      return false;
    InflightDescPacked& e = packed_desc(h.old_free_head);
    if (head) {
      e.num = 0;
      e.counter = ++counter_;
      e.inflight = 1;
      // compiler fence: the head entry is marked before the list's descriptors are recorded.
      step();
    }
    if (last) e.last = h.free_head;
    ++e.num;
    InflightDescPacked& f = packed_desc(h.free_head);
    f.addr = d.addr;
    f.len = d.len;
    f.flags = d.flags;
    f.id = d.id;
    h.free_head = f.next;
    if (last) {
      if (d.id < entry_by_id_.size()) entry_by_id_[d.id] = h.old_free_head;
      // compiler fence: the entries above are complete before old_free_head takes the list in
      // (a SIGKILL stops the process between two stores in program order, never reordered ones).
      step();
      h.old_free_head = h.free_head;
    }
    return true;
  }
  // When supplying used buffers, before the batch's first used flags are published: return the
  // entries of buffer `id` to the free list (rst steps 1-4).
  void packed_batch(std::uint16_t id) {
    if (id >= entry_by_id_.size() || entry_by_id_[id] >= size_) [[unlikely]]
      return;
    InflightQueuePacked& h = packed_hdr();
    const std::uint16_t e = entry_by_id_[id];
    const std::uint16_t last = packed_desc(e).last;
    if (last >= size_) [[unlikely]]
      return;
    packed_desc(last).next = h.free_head;
    h.free_head = e;
    // compiler fence: one buffer's entries are back on the free list before the next one's.
    step();
  }
  // packed_batch(id_at(i)) for i < n: the same stores and steps, with the region, queue size
  // and id map in registers (each step's compiler fence would reload them per buffer).
  template <class IdAt>
  void packed_batch(std::uint32_t n, IdAt&& id_at) {
    std::byte* const region = region_;
    const std::uint16_t size = size_;
    std::uint16_t* const by_id = entry_by_id_.data();
    const std::size_t ids = entry_by_id_.size();
    auto& h = *reinterpret_cast<InflightQueuePacked*>(region);
    auto* const desc = reinterpret_cast<InflightDescPacked*>(region + sizeof(InflightQueuePacked));
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint16_t id = id_at(i);
      if (id >= ids || by_id[id] >= size) [[unlikely]]
        continue;
      const std::uint16_t e = by_id[id];
      const std::uint16_t last = desc[e].last;
      if (last >= size) [[unlikely]]
        continue;
      desc[last].next = h.free_head;
      h.free_head = e;
      // compiler fence: one buffer's entries are back on the free list before the next one's.
      step();
    }
  }
  // packed_published(id_at(i)) for i < n, likewise.
  template <class IdAt>
  void packed_published(std::uint32_t n, IdAt&& id_at) {
    std::byte* const region = region_;
    const std::uint16_t size = size_;
    std::uint16_t* const by_id = entry_by_id_.data();
    const std::size_t ids = entry_by_id_.size();
    auto* const desc = reinterpret_cast<InflightDescPacked*>(region + sizeof(InflightQueuePacked));
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint16_t id = id_at(i);
      if (id >= ids || by_id[id] >= size) [[unlikely]]
        continue;
      // compiler fence: pairs with the release store of the used flags just made; inflight = 0
      // must not be stored before them.
      step();
      desc[by_id[id]].inflight = 0;
      by_id[id] = size;
    }
  }
  // Still before publishing: the used position after the batch (rst "Increase used_idx").
  void packed_batch_end(PackedCursor used) {
    InflightQueuePacked& h = packed_hdr();
    h.used_idx = used.idx;
    h.used_wrap_counter = used.wrap ? 1 : 0;
    // compiler fence: the batch is recorded before the ring's release store of the first used
    // flags, which may be the last store before a crash.
    step();
  }
  // After the used flags were published: clear buffer `id`'s head entry.
  void packed_published(std::uint16_t id) {
    if (id >= entry_by_id_.size() || entry_by_id_[id] >= size_) [[unlikely]]
      return;
    // compiler fence: pairs with the release store of the used flags just made; inflight = 0
    // must not be stored before them.
    step();
    packed_desc(entry_by_id_[id]).inflight = 0;
    entry_by_id_[id] = size_;
  }
  // After the whole batch was cleared: the rollback point moves (rst "Set old_free_head ...").
  void packed_commit() {
    InflightQueuePacked& h = packed_hdr();
    // compiler fence: the inflight clears above come before the new rollback point.
    step();
    h.old_free_head = h.free_head;
    h.old_used_idx = h.used_idx;
    h.old_used_wrap_counter = h.used_wrap_counter;
  }

  struct PackedRecovery {
    bool ok = false;            // false: the region is inconsistent; resume from the front-end
    bool fresh = false;         // nothing was ever recorded: the front-end's position stands
    RingState state{};          // where the ring resumes: used from the region, avail past
                                // every in-flight descriptor
    std::vector<std::uint16_t> heads;  // head entries still in flight, in counter order
  };
  // rst "When reconnecting" (packed): commit or roll back the last batch by the flags of the ring
  // descriptor at old_used_idx, clear the free list, and list the in-flight heads. `ring` is the
  // descriptor ring (size entries). A fresh region adopts `base` as its used position.
  PackedRecovery packed_recover(const PackedDesc* ring, RingState base) {
    PackedRecovery r;
    InflightQueuePacked& h = packed_hdr();
    if (counter_ == 0) {  // never popped: a new region for a ring that may be anywhere (migration)
      h.used_idx = h.old_used_idx = base.used.idx;
      h.used_wrap_counter = h.old_used_wrap_counter = base.used.wrap ? 1 : 0;
      h.free_head = h.old_free_head;
      r.ok = r.fresh = true;
      r.state = base;
      return r;
    }
    if (h.desc_num != size_ || h.old_used_idx >= size_ || h.used_idx >= size_ ||
        h.old_free_head > size_ || h.free_head > size_)  // size_ = the end of a full free list
      return r;
    if (h.used_idx != h.old_used_idx || h.used_wrap_counter != h.old_used_wrap_counter) {
      // acquire: pairs with the crashed back-end's release store of the batch's first flags.
      const std::uint16_t f = load_acquire(ring[h.old_used_idx].flags) & (kDescFAvail | kDescFUsed);
      const std::uint16_t avail_flags = h.old_used_wrap_counter != 0 ? kDescFAvail : kDescFUsed;
      if (f != avail_flags) {  // the batch reached the driver: commit it
        h.old_free_head = h.free_head;
        h.old_used_idx = h.used_idx;
        h.old_used_wrap_counter = h.used_wrap_counter;
      }
    }
    h.free_head = h.old_free_head;  // roll back any in-progress update
    h.used_idx = h.old_used_idx;
    h.used_wrap_counter = h.old_used_wrap_counter;
    for (std::uint16_t e = h.free_head, n = 0; e < size_ && n < size_; e = packed_desc(e).next, ++n)
      packed_desc(e).inflight = 0;
    std::vector<std::pair<std::uint64_t, std::uint16_t>> v;
    std::uint32_t slots = 0;
    for (std::uint16_t i = 0; i < size_; ++i) {
      const InflightDescPacked& e = packed_desc(i);
      if (e.inflight != 1) continue;
      if (e.num == 0 || e.num > size_ || e.last >= size_) return r;
      slots += e.num;
      v.emplace_back(e.counter, i);
    }
    if (slots > size_) return r;
    std::sort(v.begin(), v.end());
    for (const auto& e : v) r.heads.push_back(e.second);
    r.state.used = PackedCursor{h.used_idx, h.used_wrap_counter != 0};
    r.state.avail = r.state.used;
    r.state.avail.advance(static_cast<std::uint16_t>(slots), size_);
    r.ok = true;
    return r;
  }
  // Descriptor k of the list whose head entry is `head` (resubmission); false when the region's
  // links leave the table. Also remembers the buffer id's head entry for packed_batch().
  bool packed_list_desc(std::uint16_t head, std::uint16_t k, PackedDesc& out) {
    std::uint16_t e = head;
    for (std::uint16_t i = 0; i < k; ++i) {
      if (e >= size_) return false;
      e = packed_desc(e).next;
    }
    if (e >= size_) return false;
    const InflightDescPacked& d = packed_desc(e);
    out = PackedDesc{d.addr, d.len, d.id, d.flags};
    if (k + 1u == packed_desc(head).num) {
      if (e != packed_desc(head).last) return false;
      if (d.id < entry_by_id_.size()) entry_by_id_[d.id] = head;
    }
    return true;
  }

  // Split: heads; packed: buffer ids; in pop (counter) order.
  std::vector<std::uint16_t> pending() const {
    std::vector<std::pair<std::uint64_t, std::uint16_t>> v;
    for (std::uint16_t i = 0; i < size_; ++i) {
      if (layout_ == Layout::split && split_desc(i).inflight == 1) v.emplace_back(split_desc(i).counter, i);
      if (layout_ == Layout::packed && packed_desc(i).inflight == 1 && packed_desc(i).last < size_)
        v.emplace_back(packed_desc(i).counter, packed_desc(packed_desc(i).last).id);
    }
    std::sort(v.begin(), v.end());
    std::vector<std::uint16_t> out;
    out.reserve(v.size());
    for (const auto& e : v) out.push_back(e.second);
    return out;
  }

  InflightQueueSplit& split_hdr() const { return *reinterpret_cast<InflightQueueSplit*>(region_); }
  InflightDescSplit& split_desc(std::uint16_t i) const {
    return reinterpret_cast<InflightDescSplit*>(region_ + sizeof(InflightQueueSplit))[i];
  }
  InflightQueuePacked& packed_hdr() const { return *reinterpret_cast<InflightQueuePacked*>(region_); }
  InflightDescPacked& packed_desc(std::uint16_t i) const {
    return reinterpret_cast<InflightDescPacked*>(region_ + sizeof(InflightQueuePacked))[i];
  }

 private:
  // The region must show the log's steps in program order wherever a SIGKILL stops the back-end:
  // the CPU's own stores all reach memory once the process is gone, so only the compiler could
  // reorder them.
  void step() {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (probe_ != nullptr) [[unlikely]]
      probe_(probe_ctx_);
  }

  Probe probe_ = nullptr;
  void* probe_ctx_ = nullptr;
  Layout layout_ = Layout::split;
  std::byte* region_ = nullptr;
  std::uint16_t size_ = 0;
  std::uint64_t counter_ = 0;
  std::vector<std::uint16_t> entry_by_id_;  // packed: head entry of each in-flight buffer id
};

}  // namespace vireo::vring
