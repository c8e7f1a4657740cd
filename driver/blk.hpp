// virtio-blk driver (VIRTIO 1.x §5.2) over the vhost-user Frontend: read, write, flush, discard and
// write-zeroes with several requests in flight (completions in any order), capacity and blk_size
// from config space. Data buffers live in the shared guest memory (alloc_buffer), so the device
// reads and writes them in place.
//
//   auto blk = BlkDriver::open({.socket_path = "/tmp/blk.sock", .depth = 32});
//   auto buf = (*blk)->alloc_buffer(4096);
//   (void)(*blk)->write(8, *buf);                    // synchronous helpers: status byte back
//   BlkRequest rq{.op = BlkOp::in, .sector = 0, .buf = *buf, .user = 7};
//   (void)(*blk)->submit(std::span(&rq, 1));         // asynchronous: one kick decision per batch
//   std::array<BlkCompletion, 32> done;
//   auto n = (*blk)->poll(done);                     // {user, status} in completion order
//
// One thread per BlkDriver.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "driver/frontend.hpp"
#include "driver/guest_memory.hpp"
#include "proto/virtio_blk.hpp"

namespace vireo::driver {

// The wire definitions (feature bits, status values, sector size, config layout) are
// proto/virtio_blk.hpp's, shared with the device. BlkOp names the request types (§5.2.6).
enum class BlkOp : std::uint32_t {
  in = proto::blk::kTIn,
  out = proto::blk::kTOut,
  flush = proto::blk::kTFlush,
  get_id = proto::blk::kTGetId,
  discard = proto::blk::kTDiscard,
  write_zeroes = proto::blk::kTWriteZeroes,
};

// §5.2.4 struct virtio_blk_config, the fields this driver reads.
struct BlkConfig {
  std::uint64_t capacity = 0;  // in 512-byte sectors
  std::uint32_t blk_size = 512;
  std::uint32_t seg_max = 0;
  std::uint32_t max_discard_sectors = 0;
  std::uint32_t max_write_zeroes_sectors = 0;
};

struct BlkOptions {
  std::string socket_path;
  bool server = false;
  Layout layout = Layout::split;
  bool event_idx = true;
  std::uint16_t queue_size = 256;
  std::uint16_t depth = 32;            // requests in flight (each takes up to 3 descriptors)
  std::size_t buffer_pool = 8u << 20;  // bytes available to alloc_buffer()
  bool hugepages = false;
  int connect_timeout_ms = 10'000;
  bool inflight = true;                // INFLIGHT_SHMFD when offered (FrontendOptions::inflight)
};

struct BlkRequest {
  BlkOp op = BlkOp::in;
  std::uint64_t sector = 0;          // in 512-byte units (§5.2.6)
  std::span<std::byte> buf{};        // in/out: from alloc_buffer(), a multiple of 512 bytes
  std::uint32_t num_sectors = 0;     // discard / write_zeroes
  bool unmap = false;                // write_zeroes: VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
  std::uint64_t user = 0;            // returned in the completion
};

struct BlkCompletion {
  std::uint64_t user = 0;
  std::uint8_t status = proto::blk::kSIoErr;  // proto::blk::kSOk / kSIoErr / kSUnsupp, as the device wrote it
  std::uint32_t len = 0;             // bytes the device reports written (data + status)
};

class BlkDriver {
 public:
  [[nodiscard]] static Result<std::unique_ptr<BlkDriver>> open(const BlkOptions& options);
  ~BlkDriver();

  const BlkConfig& config() const { return config_; }
  std::uint64_t capacity_bytes() const { return config_.capacity * proto::blk::kSectorSize; }
  std::uint64_t features() const { return fe_->features(); }
  Frontend& frontend() { return *fe_; }
  std::uint16_t depth() const { return options_.depth; }
  std::uint16_t in_flight() const { return static_cast<std::uint16_t>(options_.depth - free_.size()); }

  // Zeroed shared memory for data buffers (`align` a power of two).
  [[nodiscard]] Result<std::span<std::byte>> alloc_buffer(std::size_t len, std::size_t align = 4096);

  // Queues as many requests as there are free slots; kicks once if the ring asks. Returns how
  // many were queued (0 when the depth is exhausted). A malformed request fails without queueing.
  [[nodiscard]] Result<std::size_t> submit(std::span<const BlkRequest> requests);
  // Up to out.size() completions, in the order the device used them.
  [[nodiscard]] Result<std::size_t> poll(std::span<BlkCompletion> out);
  // Sleeps until the device signals a completion (or timeout); re-checks first.
  [[nodiscard]] Result<void> wait(int timeout_ms);
  // Checks the socket; after a disconnect reconnects and resumes. True if it reconnected.
  [[nodiscard]] Result<bool> poll_link();

  // Synchronous helpers (depth 1): submit, wait for the completion, return the status byte.
  [[nodiscard]] Result<std::uint8_t> read(std::uint64_t sector, std::span<std::byte> buf);
  [[nodiscard]] Result<std::uint8_t> write(std::uint64_t sector, std::span<std::byte> buf);
  [[nodiscard]] Result<std::uint8_t> flush();
  [[nodiscard]] Result<std::uint8_t> discard(std::uint64_t sector, std::uint32_t num_sectors);
  [[nodiscard]] Result<std::uint8_t> write_zeroes(std::uint64_t sector, std::uint32_t num_sectors, bool unmap);
  [[nodiscard]] Result<std::uint8_t> execute(const BlkRequest& rq);

 private:
  struct Slot;
  explicit BlkDriver(const BlkOptions& options);
  Result<void> read_config();
  Result<void> setup_slots();
  Result<void> add_request(auto& ring, const BlkRequest& rq);

  BlkOptions options_;
  GuestMemory mem_;
  std::unique_ptr<Frontend> fe_;
  BlkConfig config_;
  Area slot_area_;
  std::vector<std::uint64_t> user_;    // per slot: the caller's cookie
  std::vector<std::uint16_t> free_;    // free slots (a stack)
};

}  // namespace vireo::driver
