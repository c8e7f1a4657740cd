// Inflight regions: sizing, creation (GET_INFLIGHT_FD) and adoption (SET_INFLIGHT_FD).
#include "device/inflight.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "proto/sys/memfd.hpp"

namespace vireo::device {
namespace {

using Fail = Unexpected<std::string>;

constexpr std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace

std::uint64_t inflight_queue_bytes(InflightLayout layout, std::uint16_t queue_size) {
  // DPDK vhost_user.c: header fields counted one by one, then INFLIGHT_ALIGNMENT.
  if (layout == InflightLayout::split)
    return align_up(sizeof(DescStateSplit) * queue_size + sizeof(std::uint64_t) + 2 * 4,
                    kInflightAlignment);
  return align_up(sizeof(DescStatePacked) * queue_size + sizeof(std::uint64_t) + 2 * 6 + 9,
                  kInflightAlignment);
}

InflightRegion::InflightRegion(InflightLayout layout, proto::UniqueFd fd, proto::Mapping map,
                               std::uint16_t num_queues, std::uint16_t queue_size,
                               std::uint64_t offset)
    : fd_(std::move(fd)), map_(std::move(map)), queue_size_(queue_size),
      offset_(offset) {
  const std::uint64_t per_queue = inflight_queue_bytes(layout, queue_size);
  for (std::uint16_t q = 0; q < num_queues; ++q)
    queues_.emplace_back(layout, map_.data() + per_queue * q, queue_size);
}

Expected<std::unique_ptr<InflightRegion>, std::string> InflightRegion::create(
    InflightLayout layout, std::uint16_t num_queues, std::uint16_t queue_size) {
  if (num_queues == 0 || queue_size == 0)
    return Fail("GET_INFLIGHT_FD asks for " + std::to_string(num_queues) + " queues of size " +
                std::to_string(queue_size) + "; both must be non-zero");
  const std::uint64_t bytes = inflight_queue_bytes(layout, queue_size) * num_queues;
  auto mem = proto::MemFd::create("vireo-inflight", bytes);
  if (!mem) return Fail("cannot create the inflight region: " + mem.error().message());
  auto map = proto::Mapping::map(mem->fd(), bytes, 0, /*writable=*/true);
  if (!map) return Fail("cannot map the inflight region: " + map.error().message());
  std::unique_ptr<InflightRegion> r(
      new InflightRegion(layout, std::move(*mem).take(), std::move(*map), num_queues, queue_size, 0));
  for (InflightQueue& q : r->queues_) q.log().format();
  return r;
}

Expected<std::unique_ptr<InflightRegion>, std::string> InflightRegion::adopt(
    InflightLayout layout, proto::UniqueFd fd, const proto::InflightDesc& d) {
  if (d.num_queues == 0 || d.queue_size == 0)
    return Fail("SET_INFLIGHT_FD describes " + std::to_string(d.num_queues) + " queues of size " +
                std::to_string(d.queue_size));
  const std::uint64_t need = inflight_queue_bytes(layout, d.queue_size) * d.num_queues;
  if (d.mmap_size < need)
    return Fail("SET_INFLIGHT_FD region is " + std::to_string(d.mmap_size) + " bytes, " +
                std::to_string(need) + " needed for " + std::to_string(d.num_queues) +
                " queues of size " + std::to_string(d.queue_size));
  // The rings read and write the queue regions as aligned structs (u64 counters); QEMU and DPDK
  // lay them out kInflightAlignment-aligned from the start of the mapping, so an offset that
  // breaks that alignment is refused rather than accessed misaligned.
  if (d.mmap_offset % kInflightAlignment != 0)
    return Fail("SET_INFLIGHT_FD mmap_offset " + std::to_string(d.mmap_offset) + " is not " +
                std::to_string(kInflightAlignment) + "-byte aligned");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 ||
      (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) < d.mmap_offset + d.mmap_size))
    return Fail("SET_INFLIGHT_FD fd is smaller than mmap_offset + mmap_size");
  auto map = proto::Mapping::map(fd.get(), d.mmap_size, d.mmap_offset, /*writable=*/true);
  if (!map) return Fail("cannot map the SET_INFLIGHT_FD region: " + map.error().message());
  return std::unique_ptr<InflightRegion>(new InflightRegion(
      layout, std::move(fd), std::move(*map), d.num_queues, d.queue_size, d.mmap_offset));
}

proto::InflightDesc InflightRegion::desc() const {
  proto::InflightDesc d{};
  d.mmap_size = map_.size();
  d.mmap_offset = offset_;
  d.num_queues = static_cast<std::uint16_t>(queues_.size());
  d.queue_size = queue_size_;
  return d;
}

}  // namespace vireo::device
