// virtio-blk wire format (VIRTIO 1.2 §5.2): feature bits, config space, request header, request
// types, status values and the discard / write-zeroes segment. The one definition both sides use:
// the device (device/blk) and the driver (driver/blk). Little-endian host assumed (x86-64,
// aarch64), like the rest of vring/.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vireo::proto::blk {

inline constexpr std::uint32_t kDeviceId = 2;  // §5.2.1

// §5.2.3 feature bits.
inline constexpr unsigned kFSegMax = 2;
inline constexpr unsigned kFRo = 5;
inline constexpr unsigned kFBlkSize = 6;
inline constexpr unsigned kFFlush = 9;
inline constexpr unsigned kFMq = 12;
inline constexpr unsigned kFDiscard = 13;
inline constexpr unsigned kFWriteZeroes = 14;

// §5.2.6 request types.
inline constexpr std::uint32_t kTIn = 0;
inline constexpr std::uint32_t kTOut = 1;
inline constexpr std::uint32_t kTFlush = 4;
inline constexpr std::uint32_t kTGetId = 8;
inline constexpr std::uint32_t kTDiscard = 11;
inline constexpr std::uint32_t kTWriteZeroes = 13;

// §5.2.6 status byte values.
inline constexpr std::uint8_t kSOk = 0;
inline constexpr std::uint8_t kSIoErr = 1;
inline constexpr std::uint8_t kSUnsupp = 2;

inline constexpr std::uint32_t kSectorSize = 512;   // §5.2.6: sectors are always 512 bytes
inline constexpr std::uint32_t kSectorShift = 9;
inline constexpr std::uint32_t kIdBytes = 20;       // §5.2.6: VIRTIO_BLK_ID_BYTES

// §5.2.6: struct virtio_blk_req, the device-readable header every request starts with.
struct ReqHeader {
  std::uint32_t type;
  std::uint32_t reserved;
  std::uint64_t sector;
};
static_assert(sizeof(ReqHeader) == 16);

// §5.2.6: struct virtio_blk_discard_write_zeroes, the data of DISCARD / WRITE_ZEROES.
struct DiscardWriteZeroesSeg {
  std::uint64_t sector;
  std::uint32_t num_sectors;
  std::uint32_t flags;  // bit 0: unmap; the others are reserved
};
static_assert(sizeof(DiscardWriteZeroesSeg) == 16);
inline constexpr std::uint32_t kWriteZeroesFlagUnmap = 1u << 0;

// §5.2.4 struct virtio_blk_config, up to write_zeroes_may_unmap (the fields this device offers).
struct Config {
  std::uint64_t capacity;        // in 512-byte sectors
  std::uint32_t size_max;
  std::uint32_t seg_max;
  std::uint16_t cylinders;       // geometry
  std::uint8_t heads;
  std::uint8_t sectors;
  std::uint32_t blk_size;
  std::uint8_t physical_block_exp;  // topology
  std::uint8_t alignment_offset;
  std::uint16_t min_io_size;
  std::uint32_t opt_io_size;
  std::uint8_t writeback;
  std::uint8_t unused0;
  std::uint16_t num_queues;
  std::uint32_t max_discard_sectors;
  std::uint32_t max_discard_seg;
  std::uint32_t discard_sector_alignment;
  std::uint32_t max_write_zeroes_sectors;
  std::uint32_t max_write_zeroes_seg;
  std::uint8_t write_zeroes_may_unmap;
  std::uint8_t unused1[3];
};
// The wire size: the struct is padded to 64 by its 8-byte alignment; the front-end sees 60 bytes.
inline constexpr std::uint32_t kConfigSize = 60;
static_assert(offsetof(Config, unused1) + sizeof(Config::unused1) == kConfigSize);
static_assert(offsetof(Config, blk_size) == 20);
static_assert(offsetof(Config, num_queues) == 34);
static_assert(offsetof(Config, max_discard_sectors) == 36);
static_assert(offsetof(Config, write_zeroes_may_unmap) == 56);

}  // namespace vireo::proto::blk
