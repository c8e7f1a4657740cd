// The backing store of a virtio-blk device: a regular file or a block device, opened twice --
// once with O_DIRECT (when the file system allows it) for aligned requests, once buffered for the
// rest -- plus the geometry the device reports (capacity, logical block size) and the O_DIRECT
// alignment rules (statx STATX_DIOALIGN, or the logical block size).
//
//   Expected<BlkImage, std::string> img = BlkImage::open("/var/lib/disk.img", /*read_only=*/false);
//   if (!img) { VIREO_LOG_ERROR("%s", img.error().c_str()); return 1; }
//   img->capacity_sectors();
#pragma once

#include <cstdint>
#include <string>

#include "base/expected.hpp"
#include "proto/sys/unique_fd.hpp"

namespace vireo::device::blk {

class BlkImage {
 public:
  BlkImage() = default;
  // Opens `path` (read-write unless read_only). try_direct=false skips O_DIRECT entirely.
  static Expected<BlkImage, std::string> open(const std::string& path, bool read_only,
                                              bool try_direct = true);

  int buffered_fd() const { return buffered_.get(); }
  int direct_fd() const { return direct_.get(); }  // -1 when O_DIRECT is unavailable
  bool has_direct() const { return direct_.valid(); }
  bool read_only() const { return read_only_; }
  bool block_device() const { return block_device_; }
  const std::string& path() const { return path_; }

  std::uint64_t size_bytes() const { return size_bytes_; }
  std::uint64_t capacity_sectors() const { return size_bytes_ >> 9; }  // §5.2.4: 512-byte units
  std::uint32_t logical_block_size() const { return logical_block_size_; }
  // O_DIRECT rules: every iovec base aligned to dio_mem_align, every length and the file offset
  // to dio_offset_align.
  std::uint32_t dio_mem_align() const { return dio_mem_align_; }
  std::uint32_t dio_offset_align() const { return dio_offset_align_; }

 private:
  std::string path_;
  proto::UniqueFd buffered_;
  proto::UniqueFd direct_;
  bool read_only_ = false;
  bool block_device_ = false;
  std::uint64_t size_bytes_ = 0;
  std::uint32_t logical_block_size_ = 512;
  std::uint32_t dio_mem_align_ = 512;
  std::uint32_t dio_offset_align_ = 512;
};

}  // namespace vireo::device::blk
