#include "device/blk/blk_queue.hpp"

#include <fcntl.h>
#include <linux/falloc.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "base/log.hpp"

namespace vireo::device::blk {

namespace {

constexpr std::size_t kBurst = 32;    // chains popped per pop_burst
constexpr unsigned kBufferedFile = 0;  // registered (fixed) file indexes
constexpr unsigned kDirectFile = 1;

std::string uring_error(std::uint16_t index, const char* what, int rc) {
  return "queue " + std::to_string(index) + ": " + what + ": " + std::strerror(-rc) +
         " (is io_uring disabled on this host? see /proc/sys/kernel/io_uring_disabled)";
}

unsigned uring_entries(std::uint32_t max_queue_size) {
  unsigned n = 1;
  while (n < max_queue_size && n < 32768) n <<= 1;
  return n;
}

}  // namespace

BlkQueue::BlkQueue(const BlkShared& shared, std::uint16_t index) : shared_(shared), index_(index) {
  staging_.reserve(kBurst);
  for (std::size_t i = 0; i < kBurst; ++i) staging_.emplace_back(shared.chain_segments);
  seg_stride_ = std::max<std::uint32_t>(
      1, std::max(shared.limits.max_discard_seg, shared.limits.max_write_zeroes_seg));
}

BlkQueue::~BlkQueue() {
  if (!uring_live_) return;
  // Requests still in flight write into guest memory: wait for them before the ring goes (the
  // Session calls queue_stopping first; this covers a device destroyed without it).
  submit();
  while (sqes_in_flight_ != 0) {
    io_uring_cqe* cqe = nullptr;
    const int rc = ::io_uring_wait_cqe(&uring_, &cqe);
    if (rc == -EINTR || rc == -EAGAIN) continue;
    if (rc < 0) break;
    ::io_uring_cqe_seen(&uring_, cqe);
    --sqes_in_flight_;
  }
  ::io_uring_queue_exit(&uring_);
}

Expected<std::unique_ptr<BlkQueue>, std::string> BlkQueue::create(const BlkShared& shared,
                                                                  std::uint16_t index) {
  std::unique_ptr<BlkQueue> q(new BlkQueue(shared, index));
  auto efd = proto::EventFd::create(/*nonblocking=*/true);
  if (!efd) return Unexpected<std::string>("queue " + std::to_string(index) + ": " +
                                           efd.error().message());
  q->efd_ = std::move(*efd);
  int rc = ::io_uring_queue_init(uring_entries(shared.max_queue_size), &q->uring_, 0);
  if (rc < 0) return Unexpected<std::string>(uring_error(index, "io_uring_queue_init", rc));
  q->uring_live_ = true;
  // Every completion signals it. (io_uring_register_eventfd_async would spare the signal of a
  // read served inside io_uring_submit(), but it signals only completions posted by io-wq
  // workers: an O_DIRECT completion would then wake nobody.)
  rc = ::io_uring_register_eventfd(&q->uring_, q->efd_.fd());
  if (rc < 0) return Unexpected<std::string>(uring_error(index, "io_uring_register_eventfd", rc));
  // Fixed files spare the kernel an fd lookup and reference per request.
  const int files[2] = {shared.image->buffered_fd(), shared.image->direct_fd()};
  rc = ::io_uring_register_files(&q->uring_, files, shared.image->has_direct() ? 2 : 1);
  if (rc < 0) return Unexpected<std::string>(uring_error(index, "io_uring_register_files", rc));
  return q;
}

// Sizes the slot table to the ring: one slot per descriptor the driver can have outstanding, so a
// popped chain always finds a slot. Allocates only when the ring grew and nothing is in flight.
void BlkQueue::ensure_slots(std::uint16_t ring_size) {
  if (slots_.size() >= ring_size || in_use_ != 0) return;
  const std::uint32_t cap = shared_.chain_segments;
  slots_.clear();
  slots_.reserve(ring_size);
  for (std::uint16_t i = 0; i < ring_size; ++i) slots_.emplace_back(cap);
  iov_.assign(std::size_t{ring_size} * cap, iovec{});
  segs_.assign(std::size_t{ring_size} * seg_stride_, DiscardWriteZeroesSeg{});
  free_.clear();
  for (std::size_t i = ring_size; i-- > 0;) {
    slots_[i].iov = &iov_[i * cap];
    slots_[i].segs = &segs_[i * seg_stride_];
    free_.push_back(static_cast<std::uint16_t>(i));
  }
}

// The used length covers the whole device-writable part up to and including the status byte (as
// QEMU reports it), so a dirty log attached to the ring also covers the status byte's page.
bool BlkQueue::finish(Slot& s, std::uint8_t status) {
  *s.status_byte = std::byte{status};  // guest memory; published by the ring's flush()
  s.used_len = s.chain.writable_bytes();
  return true;
}

void BlkQueue::log_no_status() {
  if (no_status_chains_++ == 0)
    VIREO_LOG_WARN("queue %u: the guest sent a request with no device-writable byte, so it cannot "
                   "receive a status (§5.2.6); it is returned with length 0. Further ones are "
                   "counted silently.", index_);
}

bool BlkQueue::start(Slot& s) {
  const BlkRequest r = parse_request(s.chain, shared_.limits,
                                     std::span<iovec>(s.iov, shared_.chain_segments),
                                     std::span<DiscardWriteZeroesSeg>(s.segs, seg_stride_));
  s.op = r.op;
  s.status_byte = r.status_byte;
  s.used_len = 0;
  s.data_bytes = 0;
  switch (r.op) {
    case BlkOp::no_status:
      log_no_status();
      return true;
    case BlkOp::complete:
      if (r.reason != nullptr) VIREO_DP_LOG("queue %u: request refused: %s", index_, r.reason);
      return finish(s, r.status);
    case BlkOp::get_id:
      vring::ChainWriter(s.chain).write(shared_.serial, r.data_len);
      s.data_bytes = r.data_len;
      return finish(s, kSOk);
    case BlkOp::read:
    case BlkOp::write:
      s.offset = r.offset;
      s.remaining = r.data_len;
      s.data_bytes = r.data_len;
      s.iov_next = 0;
      s.iov_count = r.iov_count;
      s.direct = choose_direct(s);
      break;
    case BlkOp::discard:
    case BlkOp::write_zeroes:
      s.seg_next = 0;
      s.seg_count = r.seg_count;
      s.punch_fallback = false;
      break;
    case BlkOp::flush:
      break;
  }
  return retry(s);
}

// O_DIRECT needs the file offset and every iovec length aligned to dio_offset_align and every
// iovec base to dio_mem_align; otherwise this request goes through the page cache.
bool BlkQueue::choose_direct(const Slot& s) const {
  const BlkImage& img = *shared_.image;
  if (!img.has_direct()) return false;
  const std::uint64_t off_mask = img.dio_offset_align() - 1;
  const std::uint64_t mem_mask = img.dio_mem_align() - 1;
  if ((s.offset & off_mask) != 0) return false;
  for (std::uint32_t i = s.iov_next; i < s.iov_count; ++i) {
    const iovec& v = s.iov[i];
    if ((reinterpret_cast<std::uintptr_t>(v.iov_base) & mem_mask) != 0 ||
        (v.iov_len & off_mask) != 0)
      return false;
  }
  return true;
}

bool BlkQueue::retry(Slot& s) { return prep(s) ? false : finish(s, kSIoErr); }

bool BlkQueue::prep(Slot& s) {
  io_uring_sqe* sqe = ::io_uring_get_sqe(&uring_);
  if (sqe == nullptr) {  // cannot happen while SQ entries >= slots; submit and retry anyway
    submit();
    sqe = ::io_uring_get_sqe(&uring_);
  }
  if (sqe == nullptr) {
    VIREO_LOG_ERROR("queue %u: io_uring submission queue full; failing the request", index_);
    return false;
  }
  const unsigned file = s.direct ? kDirectFile : kBufferedFile;
  const auto n = std::min(s.iov_count - s.iov_next, shared_.max_iov_per_op);
  switch (s.op) {
    case BlkOp::read:
      ::io_uring_prep_readv(sqe, static_cast<int>(file), s.iov + s.iov_next, n, s.offset);
      break;
    case BlkOp::write:
      ::io_uring_prep_writev(sqe, static_cast<int>(file), s.iov + s.iov_next, n, s.offset);
      break;
    case BlkOp::flush:  // §5.2.6.2: the flush completes when the data is on stable storage
      ::io_uring_prep_fsync(sqe, kBufferedFile, IORING_FSYNC_DATASYNC);
      break;
    default: {  // discard / write_zeroes: one fallocate per segment, in order
      const DiscardWriteZeroesSeg& g = s.segs[s.seg_next];
      const bool punch = s.op == BlkOp::discard || s.punch_fallback ||
                         ((g.flags & kWriteZeroesFlagUnmap) != 0 &&
                          shared_.limits.write_zeroes_may_unmap);
      const int mode = FALLOC_FL_KEEP_SIZE | (punch ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);
      ::io_uring_prep_fallocate(sqe, kBufferedFile, mode, g.sector << kSectorShift,
                                std::uint64_t{g.num_sectors} << kSectorShift);
      break;
    }
  }
  sqe->flags |= IOSQE_FIXED_FILE;
  ::io_uring_sqe_set_data64(sqe, static_cast<std::uint64_t>(&s - slots_.data()));
  ++unsubmitted_;
  ++sqes_in_flight_;
  return true;
}

bool BlkQueue::on_rw(Slot& s, int res) {
  if (res == -EAGAIN || res == -EINTR) {
    return retry(s);
  }
  if (res == -EINVAL && s.direct) {  // the file system refused this O_DIRECT shape: go buffered
    s.direct = false;
    return retry(s);
  }
  if (res <= 0) {  // an error, or end of file inside the capacity (the image shrank)
    VIREO_DP_LOG("queue %u: %s at offset %llu failed: %d", index_,
                 s.op == BlkOp::read ? "read" : "write", static_cast<unsigned long long>(s.offset),
                 res);
    return finish(s, kSIoErr);
  }
  auto done = std::min<std::uint32_t>(static_cast<std::uint32_t>(res), s.remaining);
  s.offset += done;
  s.remaining -= done;
  while (done != 0 && s.iov_next < s.iov_count) {  // short transfer: advance the iovecs
    iovec& v = s.iov[s.iov_next];
    if (done >= v.iov_len) {
      done -= static_cast<std::uint32_t>(v.iov_len);
      ++s.iov_next;
    } else {
      v.iov_base = static_cast<std::byte*>(v.iov_base) + done;
      v.iov_len -= done;
      done = 0;
    }
  }
  if (s.remaining == 0 || s.iov_next == s.iov_count) return finish(s, kSOk);
  s.direct = s.direct && choose_direct(s);
  return retry(s);  // the rest: after a short transfer, or past max_iov_per_op iovecs
}

bool BlkQueue::on_dwz(Slot& s, int res) {
  if (res == -EOPNOTSUPP && s.op == BlkOp::write_zeroes && !s.punch_fallback) {
    s.punch_fallback = true;  // no ZERO_RANGE here: a punched hole also reads back as zeroes
    return retry(s);
  }
  // §5.2.6.2: discard only MAY deallocate, so a file system without hole punching is no error.
  if (res < 0 && !(res == -EOPNOTSUPP && s.op == BlkOp::discard)) return finish(s, kSIoErr);
  if (++s.seg_next == s.seg_count) return finish(s, kSOk);
  return retry(s);
}

bool BlkQueue::on_cqe(Slot& s, int res) {
  switch (s.op) {
    case BlkOp::read:
    case BlkOp::write:
      return on_rw(s, res);
    case BlkOp::flush:
      return finish(s, res < 0 ? kSIoErr : kSOk);
    case BlkOp::discard:
    case BlkOp::write_zeroes:
      return on_dwz(s, res);
    default:
      return finish(s, kSIoErr);
  }
}

void BlkQueue::submit() {
  if (unsubmitted_ == 0) return;
  const int rc = ::io_uring_submit(&uring_);
  if (rc >= 0) {
    unsubmitted_ -= std::min<std::uint32_t>(unsubmitted_, static_cast<std::uint32_t>(rc));
  } else if (rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
    VIREO_LOG_ERROR("queue %u: io_uring_submit: %s", index_, std::strerror(-rc));
  }
}

template <class Ring>
void BlkQueue::process(Ring& ring, VirtQueue& q) {
  ensure_slots(ring.size());
  std::uint32_t pushed = 0;
  for (;;) {
    const std::size_t room = std::min(free_.size(), staging_.size());
    if (room == 0) break;
    const vring::Result<std::size_t> n = ring.pop_burst(std::span<vring::Chain>(staging_.data(), room));
    if (!n) {
      q.report_broken(n.error());
      break;
    }
    for (std::size_t i = 0; i < *n; ++i) {
      const std::uint16_t idx = free_.back();
      free_.pop_back();
      ++in_use_;
      Slot& s = slots_[idx];
      std::swap(s.chain, staging_[i]);  // swaps segment arrays: no allocation
      if (start(s)) {
        ring.push(s.chain, s.used_len);
        pushed_bytes_ += s.data_bytes;
        free_.push_back(idx);
        --in_use_;
        ++pushed;
      }
    }
    if (*n < room) break;
  }
  // One io_uring_submit for the whole burst; what completed inside it shares this burst's flush
  // and call.
  pushed += submit_and_reap(ring);
  publish(ring, q, pushed);
}

template <class Ring>
std::uint32_t BlkQueue::submit_and_reap(Ring& ring) {
  std::uint32_t pushed = 0;
  for (;;) {
    submit();
    // Whatever completed inside submit() (page-cache reads) is in the CQ now: reaped here it
    // shares this burst's flush and call instead of waiting for its completion_fd wake-up.
    if (::io_uring_cq_ready(&uring_) == 0) return pushed;
    pushed += reap(ring);  // may queue continuations (short transfers, discard segments)
  }
}

template <class Ring>
std::uint32_t BlkQueue::reap(Ring& ring) {
  std::uint32_t pushed = 0;
  unsigned head = 0;
  unsigned seen = 0;
  io_uring_cqe* cqe = nullptr;
  io_uring_for_each_cqe(&uring_, head, cqe) {
    ++seen;
    --sqes_in_flight_;
    const std::uint64_t idx = cqe->user_data;
    if (idx >= slots_.size()) continue;  // not ours (cannot happen: every SQE carries a slot)
    Slot& s = slots_[idx];
    if (!on_cqe(s, cqe->res)) continue;
    ring.push(s.chain, s.used_len);
    pushed_bytes_ += s.data_bytes;
    free_.push_back(static_cast<std::uint16_t>(idx));
    --in_use_;
    ++pushed;
  }
  ::io_uring_cq_advance(&uring_, seen);
  return pushed;
}

template <class Ring>
void BlkQueue::publish(Ring& ring, VirtQueue& q, std::uint32_t pushed) {
  if (pushed == 0) return;
  ring.flush();  // one used-index publication for the batch
  q.stats().add(q.stats().chains, pushed);
  q.stats().add(q.stats().bytes, pushed_bytes_);  // data bytes read or written (--stats)
  pushed_bytes_ = 0;
  q.notify();    // and at most one call
}

template <class Ring>
void BlkQueue::complete(Ring& ring, VirtQueue& q) {
  // The eventfd is not read: the worker watches it edge-triggered (BlkBackend says it is an
  // event counter), so a CQE posted after the reap below is a new edge and another complete().
  publish(ring, q, submit_and_reap(ring));
}

template <class Ring>
void BlkQueue::drain(Ring& ring, VirtQueue& q) {
  while (in_use_ != 0) {
    submit();
    io_uring_cqe* cqe = nullptr;
    const int rc = ::io_uring_wait_cqe(&uring_, &cqe);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN) {
      VIREO_LOG_ERROR("queue %u: waiting for %u outstanding requests failed: %s", index_, in_use_,
                      std::strerror(-rc));
      return;
    }
    publish(ring, q, reap(ring));
  }
  submit();
}

template void BlkQueue::process(vring::SplitDeviceRing<vring::RegionTable>&, VirtQueue&);
template void BlkQueue::process(vring::PackedDeviceRing<vring::RegionTable>&, VirtQueue&);
template void BlkQueue::complete(vring::SplitDeviceRing<vring::RegionTable>&, VirtQueue&);
template void BlkQueue::complete(vring::PackedDeviceRing<vring::RegionTable>&, VirtQueue&);
template void BlkQueue::drain(vring::SplitDeviceRing<vring::RegionTable>&, VirtQueue&);
template void BlkQueue::drain(vring::PackedDeviceRing<vring::RegionTable>&, VirtQueue&);

}  // namespace vireo::device::blk
