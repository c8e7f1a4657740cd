// Inflight regions (vhost-user.rst "Inflight I/O tracking"): shared memory the back-end hands
// out in GET_INFLIGHT_FD and gets back in SET_INFLIGHT_FD after a reconnect, one region per queue,
// each 64-byte aligned (INFLIGHT_ALIGNMENT in libvhost-user and DPDK).
//
//   auto r = InflightRegion::create(InflightLayout::split, /*num_queues=*/2, /*queue_size=*/256);
//   conn.send_reply(hdr, as_bytes(r->desc()), {{r->fd()}});
//   QueueRegionSplit* q0 = (*r)->queue(0).split();
//
// The structs below are the rst's, byte for byte (DPDK rte_vhost_inflight_info_split/_packed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/expected.hpp"
#include "proto/messages.hpp"
#include "proto/sys/mapping.hpp"
#include "proto/sys/unique_fd.hpp"

namespace vireo::device {

enum class InflightLayout : std::uint8_t { split, packed };

struct DescStateSplit {
  std::uint8_t inflight;    // 1 while the head is in flight
  std::uint8_t padding[5];
  std::uint16_t next;       // link in the last batch list
  std::uint64_t counter;    // pop order, for resubmission
};
static_assert(sizeof(DescStateSplit) == 16);

struct QueueRegionSplit {
  std::uint64_t features;
  std::uint16_t version;        // 1
  std::uint16_t desc_num;       // queue size
  std::uint16_t last_batch_head;
  std::uint16_t used_idx;
  // DescStateSplit desc[desc_num] follows
};
static_assert(sizeof(QueueRegionSplit) == 16);

struct DescStatePacked {
  std::uint8_t inflight;
  std::uint8_t padding;
  std::uint16_t next;     // free list link
  std::uint16_t last;     // last entry of the buffer's list
  std::uint16_t num;      // descriptors of the buffer
  std::uint64_t counter;
  std::uint16_t id;       // buffer id
  std::uint16_t flags;
  std::uint32_t len;
  std::uint64_t addr;
};
static_assert(sizeof(DescStatePacked) == 32);

struct QueueRegionPacked {
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
  // DescStatePacked desc[desc_num] follows (at offset 32: the struct is 8-byte aligned)
};
static_assert(sizeof(QueueRegionPacked) == 32);

inline constexpr std::uint64_t kInflightAlignment = 64;
inline constexpr std::uint16_t kInflightVersion = 1;

// Bytes of one queue's region: DPDK get_pervq_shm_size_split/_packed.
std::uint64_t inflight_queue_bytes(InflightLayout layout, std::uint16_t queue_size);

// One queue's region inside the shared mapping (guest-visible only to the front-end, but it
// survives back-end restarts, so its contents are checked before use).
class InflightQueue {
 public:
  InflightQueue(InflightLayout layout, std::byte* base, std::uint16_t queue_size)
      : layout_(layout), base_(base), size_(queue_size) {}
  InflightLayout layout() const { return layout_; }
  std::uint16_t queue_size() const { return size_; }
  QueueRegionSplit* split() const { return reinterpret_cast<QueueRegionSplit*>(base_); }
  DescStateSplit* split_desc() const { return reinterpret_cast<DescStateSplit*>(base_ + 16); }
  QueueRegionPacked* packed() const { return reinterpret_cast<QueueRegionPacked*>(base_); }
  DescStatePacked* packed_desc() const { return reinterpret_cast<DescStatePacked*>(base_ + 32); }
  // Heads (split) / ids (packed) marked in flight, in the order they were popped (counter).
  std::vector<std::uint16_t> pending() const;

 private:
  InflightLayout layout_;
  std::byte* base_;
  std::uint16_t size_;
};

class InflightRegion {
 public:
  // GET_INFLIGHT_FD: a new zeroed memfd, every queue header initialised (version 1, desc_num;
  // packed: wrap counters 1 and the free list 0 -> 1 -> ..., as DPDK does).
  static Expected<std::unique_ptr<InflightRegion>, std::string> create(
      InflightLayout layout, std::uint16_t num_queues, std::uint16_t queue_size);
  // SET_INFLIGHT_FD: the region a previous back-end created, mapped back.
  static Expected<std::unique_ptr<InflightRegion>, std::string> adopt(
      InflightLayout layout, proto::UniqueFd fd, const proto::InflightDesc& desc);

  proto::InflightDesc desc() const;
  int fd() const { return fd_.get(); }
  std::size_t num_queues() const { return queues_.size(); }
  InflightQueue* queue(std::size_t i) { return i < queues_.size() ? &queues_[i] : nullptr; }

 private:
  InflightRegion(InflightLayout layout, proto::UniqueFd fd, proto::Mapping map,
                 std::uint16_t num_queues, std::uint16_t queue_size, std::uint64_t offset);
  InflightLayout layout_;
  proto::UniqueFd fd_;
  proto::Mapping map_;
  std::uint16_t queue_size_;
  std::uint64_t offset_;
  std::vector<InflightQueue> queues_;
};

}  // namespace vireo::device
