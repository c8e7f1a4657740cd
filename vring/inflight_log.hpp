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
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

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
        slot_by_id_(layout == Layout::packed ? queue_size : 0, queue_size) {
    for (std::uint16_t i = 0; i < size_; ++i)
      counter_ = std::max(counter_, layout_ == Layout::split ? split_desc(i).counter : packed_desc(i).counter);
  }

  Layout layout() const { return layout_; }
  std::uint16_t queue_size() const { return size_; }

  // ---- split (rst "When receiving available buffers" / "When supplying used buffers") ----
  void split_pop(std::uint16_t head) {
    if (head >= size_) return;
    InflightDescSplit& d = split_desc(head);
    d.counter = ++counter_;
    d.inflight = 1;
  }
  // Before the used ring is updated: link the batch.
  void split_batch(std::uint16_t head) {
    if (head >= size_) return;
    split_desc(head).next = split_hdr().last_batch_head;
    split_hdr().last_batch_head = head;
  }
  // After used->idx was published: clear the batch, record the new used index.
  void split_published(std::uint16_t head, std::uint16_t used_idx) {
    if (head < size_) split_desc(head).inflight = 0;
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

  // ---- packed (simplified: one entry per buffer, at its head slot) ----
  void packed_pop(std::uint16_t head_slot, std::uint16_t ndescs, std::uint16_t id) {
    if (head_slot >= size_) return;
    InflightDescPacked& d = packed_desc(head_slot);
    d.counter = ++counter_;
    d.num = ndescs;
    d.last = static_cast<std::uint16_t>((head_slot + ndescs - 1u) % size_);
    d.id = id;
    d.inflight = 1;
    if (id < slot_by_id_.size()) slot_by_id_[id] = head_slot;
  }
  // After the used descriptors of a batch were published: clear buffer `id`, record the used
  // position.
  void packed_published(std::uint16_t id, std::uint16_t used_idx, bool used_wrap) {
    if (id < slot_by_id_.size() && slot_by_id_[id] < size_) packed_desc(slot_by_id_[id]).inflight = 0;
    InflightQueuePacked& h = packed_hdr();
    h.used_idx = h.old_used_idx = used_idx;
    h.used_wrap_counter = h.old_used_wrap_counter = used_wrap ? 1 : 0;
  }

  // Split: heads; packed: buffer ids; in pop (counter) order.
  std::vector<std::uint16_t> pending() const {
    std::vector<std::pair<std::uint64_t, std::uint16_t>> v;
    for (std::uint16_t i = 0; i < size_; ++i) {
      if (layout_ == Layout::split && split_desc(i).inflight == 1) v.emplace_back(split_desc(i).counter, i);
      if (layout_ == Layout::packed && packed_desc(i).inflight == 1)
        v.emplace_back(packed_desc(i).counter, packed_desc(i).id);
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
  Layout layout_ = Layout::split;
  std::byte* region_ = nullptr;
  std::uint16_t size_ = 0;
  std::uint64_t counter_ = 0;
  std::vector<std::uint16_t> slot_by_id_;  // packed: head slot of each in-flight buffer id
};

}  // namespace vireo::vring
