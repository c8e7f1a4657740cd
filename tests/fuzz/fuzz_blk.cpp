// libFuzzer target: virtio-blk request parsing and validation (device/blk/blk_request.cpp) over a
// fake guest memory of two adjacent regions (so a header or a segment list can straddle a region
// edge and arrive in pieces) and a fake image (a byte array of `capacity` sectors).
//
// The input gives the device limits, then a chain of up to 8 descriptors (gpa, len, writable)
// appended with vring::Chain::append as the ring walker does, then the guest bytes the readable
// part holds (header, data, segment list). The request is parsed and then executed against the
// fake image by plain memcpy, so ASan sees every byte it touches.
//
// Oracles: reads/writes lie inside the image and their iovecs cover exactly data_len bytes of
// guest memory; no write op on a read-only device; every DISCARD / WRITE_ZEROES segment lies
// inside the capacity and under its advertised maximum; the status byte is the last writable byte.
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "device/blk/blk_request.hpp"
#include "fuzz_input.hpp"
#include "vring/chain.hpp"
#include "vring/memory.hpp"

namespace {

using namespace vireo::device::blk;
using vireo::fuzz::FuzzInput;
using vireo::vring::BufferMemory;
using vireo::vring::Chain;
using vireo::vring::Errc;

constexpr std::uint64_t kBase = 0x10000;
constexpr std::size_t kRegion = 0x2000;  // two regions: [kBase, +8K) and [kBase + 8K, +8K)

// Guest RAM in two separately allocated regions at adjacent guest-physical addresses: a buffer
// crossing kBase + kRegion becomes two segments.
struct TwoRegions {
  BufferMemory lo{kBase, kRegion};
  BufferMemory hi{kBase + kRegion, kRegion};
  std::span<std::byte> translate(std::uint64_t gpa, std::uint64_t len) const noexcept {
    std::span<std::byte> s = lo.translate(gpa, len);
    return s.empty() ? hi.translate(gpa, len) : s;
  }
};

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "fuzz_blk: invariant violated: %s\n", what);
  __builtin_trap();
}

BlkLimits read_limits(FuzzInput& in) {
  const std::uint8_t f = in.u8();
  BlkLimits l;
  l.blk_size = (f & 1) != 0 ? 4096 : 512;
  l.read_only = (f & 2) != 0;
  l.capacity = in.u8() % 65;  // up to 64 sectors: 32 KiB of fake image
  if ((f & 4) != 0) {
    l.max_discard_sectors = in.u8() % 70;
    l.max_discard_seg = in.u8() % 5;
    l.discard_sector_alignment = in.u8() % 8 + 1;
  }
  if ((f & 8) != 0) {
    l.max_write_zeroes_sectors = in.u8() % 70;
    l.max_write_zeroes_seg = in.u8() % 5;
    l.write_zeroes_may_unmap = (f & 16) != 0;
  }
  return l;
}

bool inside(const std::byte* p, std::size_t n, const TwoRegions& m) {
  auto in_one = [&](const BufferMemory& b) {
    const std::byte* lo = b.bytes().data();
    return p >= lo && p + n <= lo + b.size();
  };
  return in_one(m.lo) || in_one(m.hi);
}

void execute(const BlkRequest& r, const BlkLimits& l, std::span<const iovec> iov,
             std::span<const DiscardWriteZeroesSeg> segs, const TwoRegions& mem,
             std::vector<std::byte>& image) {
  switch (r.op) {
    case BlkOp::read:
    case BlkOp::write: {
      if (r.op == BlkOp::write && l.read_only) violated("write accepted on a read-only device");
      if (r.offset > image.size() || r.data_len > image.size() - r.offset)
        violated("read/write range outside the image");
      if (r.offset % l.blk_size != 0 || r.data_len % l.blk_size != 0)
        violated("read/write not aligned to blk_size");
      std::size_t at = r.offset, total = 0;
      for (std::uint32_t i = 0; i < r.iov_count; ++i) {
        auto* p = static_cast<std::byte*>(iov[i].iov_base);
        if (!inside(p, iov[i].iov_len, mem)) violated("iovec outside guest memory");
        if (r.op == BlkOp::read) std::copy_n(image.data() + at, iov[i].iov_len, p);
        else std::copy_n(p, iov[i].iov_len, image.data() + at);
        at += iov[i].iov_len;
        total += iov[i].iov_len;
      }
      if (total != r.data_len) violated("iovecs do not cover data_len bytes");
      break;
    }
    case BlkOp::discard:
    case BlkOp::write_zeroes: {
      if (l.read_only) violated("discard/write zeroes accepted on a read-only device");
      const bool discard = r.op == BlkOp::discard;
      const std::uint32_t max_seg = discard ? l.max_discard_seg : l.max_write_zeroes_seg;
      const std::uint32_t max = discard ? l.max_discard_sectors : l.max_write_zeroes_sectors;
      if (r.seg_count == 0 || r.seg_count > max_seg) violated("segment count over max_*_seg");
      for (std::uint32_t i = 0; i < r.seg_count; ++i) {
        const DiscardWriteZeroesSeg& s = segs[i];
        if (s.num_sectors > max) violated("segment over max_*_sectors");
        if (s.sector > l.capacity || s.num_sectors > l.capacity - s.sector)
          violated("segment outside the capacity");
        std::fill_n(image.data() + s.sector * 512, std::size_t{s.num_sectors} * 512, std::byte{0});
      }
      break;
    }
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static TwoRegions mem;
  static Chain chain(16);
  static std::vector<iovec> iov(16);
  static std::vector<DiscardWriteZeroesSeg> segs(8);
  FuzzInput in(data, size);
  const BlkLimits limits = read_limits(in);
  std::vector<std::byte> image(limits.capacity * 512);

  std::fill_n(mem.lo.bytes().data(), kRegion, std::byte{0});
  std::fill_n(mem.hi.bytes().data(), kRegion, std::byte{0});
  chain.reset(vireo::vring::Head{0, 1});
  const unsigned n = in.u8() % 8 + 1;
  for (unsigned i = 0; i < n; ++i) {
    const std::uint64_t gpa = kBase + in.u16() % (2 * kRegion + 0x100);  // a little past the end
    const std::uint32_t len = in.u16();
    const bool writable = in.flag();
    if (chain.append(mem, gpa, len, writable) != Errc::ok) return 0;  // the walker would refuse it
  }
  // The guest's bytes: the readable part, in order (header, data or segment list).
  for (const vireo::vring::Segment& s : chain.readable()) in.bytes(s.data, s.len);

  const BlkRequest r = parse_request(chain, limits, iov, segs);
  if (r.op != BlkOp::no_status) {
    const vireo::vring::Segment& last = chain.writable().back();
    if (r.status_byte != last.data + last.len - 1) violated("status byte is not the last writable byte");
  }
  execute(r, limits, std::span<const iovec>(iov.data(), r.iov_count), segs, mem, image);
  if (r.op == BlkOp::get_id) {
    if (r.data_len > kIdBytes || r.data_len >= chain.writable_bytes() + 1u)
      violated("GET_ID longer than the id or the writable part");
    vireo::vring::ChainWriter w(chain);
    const char id[kIdBytes] = "fuzz-serial";
    w.write(id, r.data_len);
  }
  if (r.status_byte != nullptr) *r.status_byte = std::byte{r.status};
  return 0;
}
