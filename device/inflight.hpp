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
#include "vring/inflight_log.hpp"

namespace vireo::device {

enum class InflightLayout : std::uint8_t { split, packed };

// The rst structs, byte for byte (defined in vring/, which records into them).
using DescStateSplit = vring::InflightDescSplit;
using QueueRegionSplit = vring::InflightQueueSplit;
using DescStatePacked = vring::InflightDescPacked;
using QueueRegionPacked = vring::InflightQueuePacked;

inline constexpr std::uint64_t kInflightAlignment = 64;
inline constexpr std::uint16_t kInflightVersion = 1;

// Bytes of one queue's region: DPDK get_pervq_shm_size_split/_packed.
std::uint64_t inflight_queue_bytes(InflightLayout layout, std::uint16_t queue_size);

// One queue's region inside the shared mapping (visible only to the front-end, but it survives
// back-end restarts, so its contents are checked before use), and the log the ring records into.
class InflightQueue {
 public:
  InflightQueue(InflightLayout layout, std::byte* base, std::uint16_t queue_size)
      : log_(layout == InflightLayout::split ? vring::InflightLog::Layout::split
                                             : vring::InflightLog::Layout::packed,
             base, queue_size),
        layout_(layout) {}
  InflightLayout layout() const { return layout_; }
  std::uint16_t queue_size() const { return log_.queue_size(); }
  QueueRegionSplit* split() const { return &log_.split_hdr(); }
  DescStateSplit* split_desc() const { return &log_.split_desc(0); }
  QueueRegionPacked* packed() const { return &log_.packed_hdr(); }
  DescStatePacked* packed_desc() const { return &log_.packed_desc(0); }
  // Heads (split) / ids (packed) marked in flight, in the order they were popped (counter).
  std::vector<std::uint16_t> pending() const { return log_.pending(); }
  // What ring.set_inflight_log() takes (the session attaches it when a ring starts).
  vring::InflightLog& log() { return log_; }

 private:
  vring::InflightLog log_;
  InflightLayout layout_;
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
  proto::UniqueFd fd_;
  proto::Mapping map_;
  std::uint16_t queue_size_;
  std::uint64_t offset_;
  std::vector<InflightQueue> queues_;
};

}  // namespace vireo::device
