// Parsing and validating one virtio-blk request (§5.2.6) from a popped descriptor chain, without
// touching the image: the result says which operation to run on which file range, or which status
// to answer at once. Nothing here allocates; the caller provides the iovec and segment arrays.
//
//   BlkRequest r = parse_request(chain, limits, iov, segs);
//   if (r.op == BlkOp::complete) answer(r.status);          // malformed / refused / trivial
//   else submit(r);                                         // iov[0..r.iov_count) at r.offset
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "proto/virtio_blk.hpp"
#include "vring/chain.hpp"

namespace vireo::device::blk {

// The virtio-blk wire definitions (kTIn, ReqHeader, Config, ...) are this device's vocabulary.
using namespace vireo::proto::blk;

// What the device offers and enforces; derived from the image and the command line.
struct BlkLimits {
  std::uint64_t capacity = 0;          // sectors
  std::uint32_t blk_size = 512;        // logical block size: IN/OUT offsets and lengths align to it
  bool read_only = false;
  std::uint32_t max_discard_sectors = 0;
  std::uint32_t max_discard_seg = 0;   // 0: DISCARD not offered
  std::uint32_t discard_sector_alignment = 1;
  std::uint32_t max_write_zeroes_sectors = 0;
  std::uint32_t max_write_zeroes_seg = 0;  // 0: WRITE_ZEROES not offered
  bool write_zeroes_may_unmap = false;
};

enum class BlkOp : std::uint8_t {
  no_status,     // no device-writable byte: push with length 0, nothing else
  complete,      // answer `status` now, no I/O
  read,          // readv iov at offset
  write,         // writev iov at offset
  flush,         // fdatasync
  get_id,        // copy the serial into the writable data
  discard,       // segs[0..seg_count): punch holes
  write_zeroes,  // segs[0..seg_count): zero ranges
};

struct BlkRequest {
  BlkOp op = BlkOp::complete;
  std::uint8_t status = kSIoErr;    // for BlkOp::complete
  std::byte* status_byte = nullptr; // host address of the status byte (last writable byte)
  std::uint64_t offset = 0;         // byte offset in the image (read / write)
  std::uint32_t data_len = 0;       // data bytes (read / write / get_id)
  std::uint32_t iov_count = 0;      // read / write: filled entries of the iov array
  std::uint32_t seg_count = 0;      // discard / write_zeroes: validated copies in segs
  const char* reason = nullptr;     // why a request was refused, for debug logs
};

// Validates `chain` against `limits`. iov must hold chain.capacity() entries; segs at least
// max(max_discard_seg, max_write_zeroes_seg). Segments are COPIED out of guest memory before they
// are checked, so the guest cannot change them afterwards.
BlkRequest parse_request(const vring::Chain& chain, const BlkLimits& limits,
                         std::span<iovec> iov, std::span<DiscardWriteZeroesSeg> segs);

// True if [sector, sector + bytes/512) lies inside the capacity, without overflowing.
bool sector_range_ok(std::uint64_t sector, std::uint64_t bytes, std::uint64_t capacity);

}  // namespace vireo::device::blk
