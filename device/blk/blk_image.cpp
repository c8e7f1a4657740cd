#include "device/blk/blk_image.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "base/log.hpp"

namespace vireo::device::blk {

namespace {

std::string why(const std::string& path, const char* what) {
  return "cannot use image " + path + ": " + what + ": " + std::strerror(errno);
}

bool power_of_two(std::uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

Expected<BlkImage, std::string> BlkImage::open(const std::string& path, bool read_only,
                                               bool try_direct) {
  BlkImage img;
  img.path_ = path;
  img.read_only_ = read_only;
  const int mode = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  img.buffered_.reset(::open(path.c_str(), mode));
  if (!img.buffered_) return Unexpected<std::string>(why(path, "open"));

  struct stat st {};
  if (::fstat(img.buffered_.get(), &st) != 0) return Unexpected<std::string>(why(path, "fstat"));
  if (S_ISBLK(st.st_mode)) {
    img.block_device_ = true;
    if (::ioctl(img.buffered_.get(), BLKGETSIZE64, &img.size_bytes_) != 0)
      return Unexpected<std::string>(why(path, "BLKGETSIZE64"));
    int lbs = 0;
    if (::ioctl(img.buffered_.get(), BLKSSZGET, &lbs) == 0 && lbs > 0)
      img.logical_block_size_ = static_cast<std::uint32_t>(lbs);
  } else if (S_ISREG(st.st_mode)) {
    img.size_bytes_ = static_cast<std::uint64_t>(st.st_size);
  } else {
    errno = EINVAL;
    return Unexpected<std::string>(
        "cannot use image " + path + ": it is neither a regular file nor a block device");
  }
  if (img.size_bytes_ % 512 != 0)
    VIREO_LOG_WARN("image %s: size %llu is not a multiple of 512; the last %llu bytes are unused",
                   path.c_str(), static_cast<unsigned long long>(img.size_bytes_),
                   static_cast<unsigned long long>(img.size_bytes_ % 512));

  img.dio_offset_align_ = img.logical_block_size_;
  img.dio_mem_align_ = img.logical_block_size_;
  struct statx sx {};
  if (::statx(img.buffered_.get(), "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
      (sx.stx_mask & STATX_DIOALIGN) != 0 && sx.stx_dio_offset_align != 0) {
    img.dio_offset_align_ = sx.stx_dio_offset_align;
    img.dio_mem_align_ = sx.stx_dio_mem_align;
  }
  if (!power_of_two(img.dio_offset_align_) || !power_of_two(img.dio_mem_align_)) try_direct = false;

  if (try_direct) {
    img.direct_.reset(::open(path.c_str(), mode | O_DIRECT));
    if (!img.direct_)
      VIREO_LOG_INFO("image %s: O_DIRECT unavailable (%s); using buffered I/O", path.c_str(),
                     std::strerror(errno));
  }
  return img;
}

}  // namespace vireo::device::blk
