#include "device/blk/blk_request.hpp"

#include <algorithm>
#include <optional>

namespace vireo::device::blk {

namespace {

BlkRequest answer(BlkRequest r, std::uint8_t status, const char* reason) {
  r.op = BlkOp::complete;
  r.status = status;
  r.reason = reason;
  return r;
}

// Points iov at `len` bytes of `segs`, starting `skip` bytes in. Returns the entries used.
std::uint32_t map_iov(std::span<const vring::Segment> segs, std::uint64_t skip, std::uint64_t len,
                      std::span<iovec> iov) {
  std::uint32_t n = 0;
  for (const vring::Segment& s : segs) {
    if (len == 0 || n == iov.size()) break;
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    const std::uint64_t take = std::min<std::uint64_t>(s.len - skip, len);
    iov[n++] = iovec{s.data + skip, static_cast<std::size_t>(take)};
    len -= take;
    skip = 0;
  }
  return n;
}

// IN / OUT: §5.2.6.1 data is a multiple of 512 bytes; the device additionally requires the logical
// block size (blk_size, §5.2.4) and the range to lie within capacity.
BlkRequest parse_rw(BlkRequest r, const vring::Chain& chain, const ReqHeader& hdr,
                    const BlkLimits& limits, std::span<iovec> iov) {
  const bool is_write = hdr.type == kTOut;
  // §5.2.6.2: a write to a VIRTIO_BLK_F_RO device gets IOERR and writes no data.
  if (is_write && limits.read_only) return answer(r, kSIoErr, "write to a read-only device");
  const std::uint64_t len = is_write ? chain.readable_bytes() - sizeof(ReqHeader)
                                     : chain.writable_bytes() - 1u;
  if (len == 0) return answer(r, kSOk, nullptr);
  if (len % limits.blk_size != 0 || (hdr.sector * kSectorSize) % limits.blk_size != 0)
    return answer(r, kSIoErr, "data length or sector not aligned to the block size");
  if (!sector_range_ok(hdr.sector, len, limits.capacity))
    return answer(r, kSIoErr, "sector range past the capacity");
  r.op = is_write ? BlkOp::write : BlkOp::read;
  r.offset = hdr.sector << kSectorShift;
  r.data_len = static_cast<std::uint32_t>(len);
  r.iov_count = is_write ? map_iov(chain.readable(), sizeof(ReqHeader), len, iov)
                         : map_iov(chain.writable(), 0, len, iov);
  return r;
}

// One DISCARD / WRITE_ZEROES segment: §5.2.6.2 unknown flags -> UNSUPP; unmap on DISCARD ->
// UNSUPP; more than max_*_sectors or outside the capacity -> IOERR.
// Returns the refusal, or nullopt when the segment is acceptable.
std::optional<BlkRequest> check_segment(const BlkRequest& r, const DiscardWriteZeroesSeg& s,
                                        bool discard, const BlkLimits& limits) {
  const std::uint32_t known = discard ? 0u : kWriteZeroesFlagUnmap;
  if ((s.flags & ~known) != 0) return answer(r, kSUnsupp, "unknown segment flags");
  const std::uint32_t max = discard ? limits.max_discard_sectors : limits.max_write_zeroes_sectors;
  if (s.num_sectors > max) return answer(r, kSIoErr, "segment larger than the advertised maximum");
  if (!sector_range_ok(s.sector, std::uint64_t{s.num_sectors} << kSectorShift, limits.capacity))
    return answer(r, kSIoErr, "segment past the capacity");
  // §5.2.6.1: discard sectors are aligned to discard_sector_alignment.
  if (discard && (s.sector % limits.discard_sector_alignment != 0 ||
                  s.num_sectors % limits.discard_sector_alignment != 0))
    return answer(r, kSIoErr, "discard segment not aligned to discard_sector_alignment");
  return std::nullopt;
}

BlkRequest parse_dwz(BlkRequest r, const vring::Chain& chain, const ReqHeader& hdr,
                     const BlkLimits& limits, std::span<DiscardWriteZeroesSeg> segs) {
  const bool discard = hdr.type == kTDiscard;
  // §5.2.6.2: a read-only device answers every kind of write with IOERR and writes nothing.
  if (limits.read_only) return answer(r, kSIoErr, "discard / write zeroes on a read-only device");
  const std::uint32_t max_seg = discard ? limits.max_discard_seg : limits.max_write_zeroes_seg;
  if (max_seg == 0) return answer(r, kSUnsupp, "request type not offered");
  const std::uint32_t len = chain.readable_bytes() - static_cast<std::uint32_t>(sizeof(ReqHeader));
  const std::uint32_t n = len / sizeof(DiscardWriteZeroesSeg);
  if (len % sizeof(DiscardWriteZeroesSeg) != 0 || n == 0 || n > max_seg || n > segs.size())
    return answer(r, kSUnsupp, "segment list length invalid or over max_*_seg");
  vring::ChainReader reader(chain);
  reader.skip(sizeof(ReqHeader));
  for (std::uint32_t i = 0; i < n; ++i) {
    reader.read(&segs[i], sizeof(DiscardWriteZeroesSeg));
    if (std::optional<BlkRequest> refused = check_segment(r, segs[i], discard, limits))
      return *refused;
  }
  r.op = discard ? BlkOp::discard : BlkOp::write_zeroes;
  r.seg_count = n;
  return r;
}

}  // namespace

bool sector_range_ok(std::uint64_t sector, std::uint64_t bytes, std::uint64_t capacity) {
  const std::uint64_t sectors = (bytes + kSectorSize - 1) >> kSectorShift;
  return sector <= capacity && sectors <= capacity - sector;
}

BlkRequest parse_request(const vring::Chain& chain, const BlkLimits& limits,
                         std::span<iovec> iov, std::span<DiscardWriteZeroesSeg> segs) {
  BlkRequest r;
  // §5.2.6: the status byte is the last device-writable byte; without one nothing can be answered.
  if (chain.writable_bytes() == 0) {
    r.op = BlkOp::no_status;
    r.reason = "no device-writable byte for the status";
    return r;
  }
  const vring::Segment& last = chain.writable().back();
  r.status_byte = last.data + last.len - 1;
  // §5.2.6: every request starts with the 16-byte struct virtio_blk_req header.
  if (chain.readable_bytes() < sizeof(ReqHeader))
    return answer(r, kSIoErr, "request header shorter than 16 bytes");
  ReqHeader hdr{};
  vring::ChainReader(chain).read(&hdr, sizeof hdr);  // one copy: the guest may change it later
  switch (hdr.type) {
    case kTIn:
    case kTOut:
      return parse_rw(r, chain, hdr, limits, iov);
    case kTFlush:
      r.op = BlkOp::flush;
      return r;
    case kTGetId:
      r.op = BlkOp::get_id;
      r.data_len = std::min<std::uint32_t>(chain.writable_bytes() - 1u, kIdBytes);
      return r;
    case kTDiscard:
    case kTWriteZeroes:
      return parse_dwz(r, chain, hdr, limits, segs);
    default:
      // §5.2.6: unknown request types are answered VIRTIO_BLK_S_UNSUPP.
      return answer(r, kSUnsupp, "unknown request type");
  }
}

}  // namespace vireo::device::blk
