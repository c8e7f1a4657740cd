// One virtio-blk request queue on its own io_uring: request slots preallocated to the ring size,
// data segments handed to readv/writev as iovecs pointing into guest memory (zero copy), one
// io_uring_submit per burst, completions reaped in batches (one flush + one notify per batch),
// out of order. The ring's eventfd is the queue's completion_fd(): a counter of completion
// events, never read, so it must be watched edge-triggered.
//
//   auto bq = BlkQueue::create(shared, /*index=*/0);
//   worker: epoll on bq->completion_fd(), EPOLLET;
//   q.visit([&](auto& ring) { bq->process(ring, q); });     // kick
//   q.visit([&](auto& ring) { bq->complete(ring, q); });    // completion_fd readable
//   q.visit([&](auto& ring) { bq->drain(ring, q); });       // queue_stopping
//
// Used by exactly one worker thread at a time; BlkShared is read-only while queues run.
#pragma once

#include <liburing.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/expected.hpp"
#include "device/blk/blk_image.hpp"
#include "device/blk/blk_request.hpp"
#include "device/virt_queue.hpp"
#include "proto/sys/event_fd.hpp"
#include "vring/chain.hpp"

namespace vireo::device::blk {

// Device-wide, read-only state every queue uses.
struct BlkShared {
  const BlkImage* image = nullptr;
  BlkLimits limits;
  char serial[kIdBytes] = {};       // GET_ID answer, zero padded
  std::uint32_t chain_segments = 0; // segments a request may span (seg_max + header + status + slack)
  std::uint32_t max_iov_per_op = 0; // iovecs per readv/writev (IOV_MAX); longer requests go in parts
  std::uint32_t max_queue_size = 1024;
};

class BlkQueue {
 public:
  static Expected<std::unique_ptr<BlkQueue>, std::string> create(const BlkShared& shared,
                                                                 std::uint16_t index);
  ~BlkQueue();
  BlkQueue(const BlkQueue&) = delete;
  BlkQueue& operator=(const BlkQueue&) = delete;

  int completion_fd() const { return efd_.fd(); }  // edge-triggered: see the top
  // Requests whose I/O has been prepared or submitted and not completed yet.
  std::uint32_t outstanding() const { return in_use_; }

  template <class Ring>
  void process(Ring& ring, VirtQueue& q);
  template <class Ring>
  void complete(Ring& ring, VirtQueue& q);
  // Waits for every outstanding request and pushes it.
  template <class Ring>
  void drain(Ring& ring, VirtQueue& q);

 private:
  struct Slot {
    explicit Slot(std::uint32_t segments) : chain(segments) {}
    vring::Chain chain;
    iovec* iov = nullptr;                   // this slot's part of iov_
    DiscardWriteZeroesSeg* segs = nullptr;  // this slot's part of segs_
    std::byte* status_byte = nullptr;
    std::uint64_t offset = 0;     // file offset of the next byte to transfer
    std::uint32_t remaining = 0;  // data bytes still to transfer
    std::uint32_t used_len = 0;   // used length pushed: 0 without a status byte, else all writable
    std::uint32_t data_bytes = 0; // data bytes the request moves (read / write / get_id), for --stats
    std::uint32_t iov_next = 0;   // first iovec not fully transferred
    std::uint32_t iov_count = 0;
    std::uint32_t seg_next = 0;   // discard / write zeroes progress
    std::uint32_t seg_count = 0;
    BlkOp op = BlkOp::complete;
    bool direct = false;          // current attempt goes through the O_DIRECT fd
    bool punch_fallback = false;  // write zeroes retried as a hole punch
  };

  BlkQueue(const BlkShared& shared, std::uint16_t index);
  void ensure_slots(std::uint16_t ring_size);
  // Starts a popped request; true if it completed at once (status written, ready to push).
  bool start(Slot& s);
  bool choose_direct(const Slot& s) const;
  // Queues the next SQE of the request; false if the SQ has no room.
  bool prep(Slot& s);
  // prep, or finish with IOERR when that fails; true when the request is finished.
  bool retry(Slot& s);
  // Handles one CQE; true when the request is finished (status written).
  bool on_cqe(Slot& s, int res);
  bool on_rw(Slot& s, int res);
  bool on_dwz(Slot& s, int res);
  bool finish(Slot& s, std::uint8_t status);
  void submit();
  template <class Ring>
  std::uint32_t reap(Ring& ring);
  // submit() and reap() until the CQ stays empty; returns the requests pushed.
  template <class Ring>
  std::uint32_t submit_and_reap(Ring& ring);
  template <class Ring>
  void publish(Ring& ring, VirtQueue& q, std::uint32_t pushed);
  void log_no_status();

  const BlkShared& shared_;
  std::uint16_t index_;
  io_uring uring_{};
  bool uring_live_ = false;
  proto::EventFd efd_;
  std::vector<Slot> slots_;
  std::vector<std::uint16_t> free_;        // stack of free slot numbers
  std::vector<vring::Chain> staging_;      // pop_burst target; swapped into slots (no allocation)
  std::vector<iovec> iov_;                 // slots * chain_segments
  std::vector<DiscardWriteZeroesSeg> segs_;  // slots * max segments
  std::uint32_t seg_stride_ = 0;
  std::uint32_t in_use_ = 0;
  std::uint32_t unsubmitted_ = 0;     // SQEs prepared, not yet handed to the kernel
  std::uint32_t sqes_in_flight_ = 0;  // SQEs prepared whose CQE has not been reaped
  std::uint64_t no_status_chains_ = 0;
  std::uint64_t pushed_bytes_ = 0;  // data bytes of chains pushed since the last publish()
};

}  // namespace vireo::device::blk
