#include "device/blk/blk_backend.hpp"

#include <limits.h>

#include <algorithm>
#include <cstring>

#include "base/log.hpp"
#include "device/virt_queue.hpp"
#include "proto/messages.hpp"
#include "vring/features.hpp"

namespace vireo::device::blk {

namespace {

constexpr std::uint64_t bit(unsigned b) { return std::uint64_t{1} << b; }

// §5.2.4 config space from the image and the options (sector units, little-endian host).
Config make_config(const BlkOptions& o, const BlkImage& img, const BlkLimits& lim) {
  Config c{};
  c.capacity = img.capacity_sectors();
  c.seg_max = o.seg_max;
  c.blk_size = img.logical_block_size();
  c.num_queues = o.num_queues;
  c.max_discard_sectors = lim.max_discard_sectors;
  c.max_discard_seg = lim.max_discard_seg;
  c.discard_sector_alignment = lim.discard_sector_alignment;
  c.max_write_zeroes_sectors = lim.max_write_zeroes_sectors;
  c.max_write_zeroes_seg = lim.max_write_zeroes_seg;
  c.write_zeroes_may_unmap = lim.write_zeroes_may_unmap ? 1 : 0;
  return c;
}

BlkLimits make_limits(const BlkOptions& o, const BlkImage& img) {
  BlkLimits l;
  l.capacity = img.capacity_sectors();
  l.blk_size = img.logical_block_size();
  l.read_only = o.read_only;
  l.max_discard_sectors = o.max_discard_sectors;
  l.max_discard_seg = o.read_only ? 0 : o.max_discard_seg;
  l.discard_sector_alignment = std::max<std::uint32_t>(1, img.logical_block_size() / kSectorSize);
  l.max_write_zeroes_sectors = o.max_write_zeroes_sectors;
  l.max_write_zeroes_seg = o.read_only ? 0 : o.max_write_zeroes_seg;
  // A punched hole of a regular file reads back as zeroes: write zeroes may unmap there.
  l.write_zeroes_may_unmap = !img.block_device();
  return l;
}

}  // namespace

Expected<std::unique_ptr<BlkBackend>, std::string> BlkBackend::create(const BlkOptions& o) {
  if (o.num_queues == 0) return Unexpected<std::string>("--queues must be at least 1");
  if (o.max_queue_size == 0 || o.max_queue_size > 32768)
    return Unexpected<std::string>("--queue-size must be between 1 and 32768");
  if (o.serial.size() > kIdBytes)
    return Unexpected<std::string>("--serial is longer than 20 bytes (VIRTIO_BLK_ID_BYTES)");
  if (o.seg_max == 0 || o.seg_max > 1024)
    return Unexpected<std::string>("seg_max must be between 1 and 1024");
  auto img = BlkImage::open(o.image, o.read_only, o.try_direct);
  if (!img) return Unexpected<std::string>(img.error());

  std::unique_ptr<BlkBackend> dev(new BlkBackend());
  dev->options_ = o;
  dev->image_ = std::move(*img);
  BlkShared& sh = dev->shared_;
  sh.image = &dev->image_;
  sh.limits = make_limits(o, dev->image_);
  std::memcpy(sh.serial, o.serial.data(), o.serial.size());
  // Header + status, and room for buffers split at memory-region edges.
  sh.chain_segments = 2 * (o.seg_max + 2);
  sh.max_iov_per_op = o.max_iov_per_op != 0 ? std::min<std::uint32_t>(o.max_iov_per_op, IOV_MAX)
                                             : IOV_MAX;
  sh.max_queue_size = o.max_queue_size;
  dev->config_ = make_config(o, dev->image_, sh.limits);
  dev->device_features_ = bit(kFSegMax) | bit(kFBlkSize) | bit(kFFlush);
  if (o.num_queues > 1) dev->device_features_ |= bit(kFMq);
  if (o.read_only) dev->device_features_ |= bit(kFRo);
  if (sh.limits.max_discard_seg != 0) dev->device_features_ |= bit(kFDiscard);
  if (sh.limits.max_write_zeroes_seg != 0) dev->device_features_ |= bit(kFWriteZeroes);
  for (std::uint16_t i = 0; i < o.num_queues; ++i) {
    auto q = BlkQueue::create(dev->shared_, i);
    if (!q) return Unexpected<std::string>(q.error());
    dev->queues_.push_back(std::move(*q));
  }
  return dev;
}

DeviceInfo BlkBackend::info() const {
  DeviceInfo d;
  d.device_id = kDeviceId;
  d.name = "blk";
  d.num_queues = options_.num_queues;
  d.max_queue_size = options_.max_queue_size;
  d.device_features = device_features_;
  d.protocol_features = bit(proto::kProtoFConfig);
  d.config_size = kConfigSize;
  d.in_order = false;  // io_uring completes requests out of order
  return d;
}

void BlkBackend::read_config(std::uint32_t offset, std::span<std::byte> out) const {
  // The Session checked [offset, offset + out.size()) against config_size.
  std::memcpy(out.data(), reinterpret_cast<const std::byte*>(&config_) + offset, out.size());
}

Status BlkBackend::set_features(std::uint64_t features) {
  // §5.2.5: without VIRTIO_BLK_F_MQ the driver uses queue 0 only; nothing else to adapt.
  if ((features & ~(device_features_ | ~std::uint64_t{0} << 24)) != 0)
    return error("front-end accepted device features the blk device did not offer");
  return {};
}

BlkQueue* BlkBackend::queue(const VirtQueue& q) const {
  return q.index() < queues_.size() ? queues_[q.index()].get() : nullptr;
}

std::uint32_t BlkBackend::outstanding(std::uint16_t index) const {
  return index < queues_.size() ? queues_[index]->outstanding() : 0;
}

void BlkBackend::queue_started(VirtQueue&) {}

void BlkBackend::queue_stopping(VirtQueue& q) {
  BlkQueue* bq = queue(q);
  if (bq == nullptr) return;
  q.visit([&](auto& ring) { bq->drain(ring, q); });
}

void BlkBackend::process(VirtQueue& q) {
  BlkQueue* bq = queue(q);
  if (bq == nullptr || !q.enabled()) return;  // started but disabled: no side effects
  q.visit([&](auto& ring) { bq->process(ring, q); });
}

int BlkBackend::completion_fd(VirtQueue& q) {
  BlkQueue* bq = queue(q);
  return bq == nullptr ? -1 : bq->completion_fd();
}

// io_uring writes its registered eventfd once per CQE batch it posts: a counter, never read.
bool BlkBackend::completion_fd_is_event_counter(VirtQueue&) { return true; }

void BlkBackend::complete(VirtQueue& q) {
  BlkQueue* bq = queue(q);
  if (bq == nullptr) return;
  q.visit([&](auto& ring) { bq->complete(ring, q); });
}

}  // namespace vireo::device::blk
