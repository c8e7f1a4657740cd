// Test plumbing for the virtio-blk back-end: a temp image file, a BlkBackend on it, guest memory
// with the raw driver fakes (tests/support) on one or more queues, and helpers that build §5.2.6
// requests, kick, and wait for completions through completion_fd().
//
//   BlkHarness<SplitLayout> h;                       // 1 MiB image, one queue of 64
//   auto r = h.write(8, {h.data(4096, std::byte{7})});
//   h.kick();  h.wait(1);  EXPECT_EQ(h.status(r), kSOk);
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "device/blk/blk_backend.hpp"
#include "proto/virtio_blk.hpp"
#include "device/virt_queue.hpp"
#include "proto/sys/unique_fd.hpp"
#include "tests/support/ring_fakes.hpp"
#include "vring/device_queue.hpp"

namespace vireo::test {

using device::blk::BlkBackend;
using device::blk::BlkOptions;
using proto::blk::DiscardWriteZeroesSeg;

// A temp file of `bytes` bytes filled with a position-dependent pattern; removed on destruction.
class TempImage {
 public:
  explicit TempImage(std::uint64_t bytes);
  ~TempImage();
  const std::string& path() const { return path_; }
  std::vector<std::byte> contents() const;          // the whole file, read back with pread
  std::vector<std::byte> read(std::uint64_t off, std::size_t len) const;
  void write(std::uint64_t off, const std::vector<std::byte>& bytes) const;
  void truncate(std::uint64_t bytes) const;
  static std::byte pattern(std::uint64_t off) { return std::byte(off * 7 + (off >> 9) * 13); }

 private:
  std::string path_;
  proto::UniqueFd fd_;
};

// One guest buffer (guest address, length) of a request.
struct Buf {
  std::uint64_t gpa;
  std::uint32_t len;
};

// A submitted request: its id on the ring and where its status byte lives.
struct Submitted {
  std::uint16_t id = 0;
  std::uint64_t status_gpa = 0;
};

struct QueueUnderTest {
  std::unique_ptr<DriverFake> drv;
  std::unique_ptr<device::VirtQueue> q;
  proto::UniqueFd call;  // call eventfd the device signals
  std::map<std::uint16_t, std::uint32_t> used;  // id -> used length, as reaped
  std::vector<std::uint16_t> order;             // ids in used order
};

template <class Layout>
class BlkHarness {
 public:
  static constexpr std::size_t kGuestBytes = std::size_t{4} << 20;
  static constexpr std::size_t kExtraRegion = 64 * 1024;

  explicit BlkHarness(BlkOptions opt = {}, std::uint64_t image_bytes = 1u << 20,
                      std::uint16_t queue_size = 64, std::uint16_t nqueues = 1)
      : image(image_bytes), guest(kGuestBytes), extra_(0, kExtraRegion) {
    // A second host buffer right after the guest window: buffers crossing end() straddle regions.
    guest.add_region(guest.end(), extra_.host(0), kExtraRegion);
    opt.image = image.path();
    if (opt.num_queues < nqueues) opt.num_queues = nqueues;
    auto dev = BlkBackend::create(opt);
    if (!dev) ADD_FAILURE() << dev.error();
    else backend = std::move(*dev);
    for (std::uint16_t i = 0; i < nqueues; ++i) queues.push_back(make_queue(i, queue_size));
  }

  ~BlkHarness() {
    // Nothing may still write into guest memory once the harness goes.
    if (backend)
      for (QueueUnderTest& t : queues) backend->queue_stopping(*t.q);
  }

  // ---- guest buffers ----
  std::uint64_t alloc(std::size_t len, std::size_t align = 4096) { return guest.alloc(len, align); }
  Buf data(std::uint32_t len, std::byte fill, std::size_t align = 4096) {
    Buf b{guest.alloc(len, align), len};
    guest.fill(b.gpa, len, fill);
    return b;
  }
  // A buffer holding bytes (seed + i * 31) at gpa (allocated when 0).
  Buf pattern(std::uint32_t len, unsigned seed, std::uint64_t gpa = 0) {
    Buf b{gpa != 0 ? gpa : guest.alloc(len, 4096), len};
    std::vector<std::byte> v(len);
    for (std::uint32_t i = 0; i < len; ++i) v[i] = std::byte(seed + i * 31u);
    guest.write(b.gpa, v.data(), len);
    return b;
  }
  std::vector<std::byte> bytes(const Buf& b) const {
    std::vector<std::byte> v(b.len);
    guest.read(b.gpa, v.data(), v.size());
    return v;
  }

  // ---- requests (§5.2.6): header, data, status ----
  Submitted request(std::uint32_t type, std::uint64_t sector, const std::vector<Buf>& readable,
                    const std::vector<Buf>& writable, bool with_status = true,
                    std::uint32_t header_len = 16, std::uint16_t qi = 0) {
    const proto::blk::ReqHeader hdr{type, 0, sector};
    const std::uint64_t hdr_gpa = guest.alloc(16);
    guest.write(hdr_gpa, &hdr, sizeof hdr);
    Submitted s;
    s.status_gpa = guest.alloc(1);
    guest.fill(s.status_gpa, 1, std::byte{0xEE});
    ChainBuilder b = queues[qi].drv->chain();
    b.readable(hdr_gpa, header_len);
    for (const Buf& r : readable) b.readable(r.gpa, r.len);
    for (const Buf& w : writable) b.writable(w.gpa, w.len);
    if (with_status) b.writable(s.status_gpa, 1);
    auto id = b.build();
    EXPECT_TRUE(id) << (id ? "" : id.error());
    s.id = id ? *id : 0xFFFF;
    return s;
  }
  Submitted read(std::uint64_t sector, const std::vector<Buf>& bufs, std::uint16_t qi = 0) {
    return request(proto::blk::kTIn, sector, {}, bufs, true, 16, qi);
  }
  Submitted write(std::uint64_t sector, const std::vector<Buf>& bufs, std::uint16_t qi = 0) {
    return request(proto::blk::kTOut, sector, bufs, {}, true, 16, qi);
  }
  Submitted segments(std::uint32_t type, const std::vector<DiscardWriteZeroesSeg>& segs) {
    Buf b{guest.alloc(segs.size() * 16 + 1, 16), static_cast<std::uint32_t>(segs.size() * 16)};
    guest.write(b.gpa, segs.data(), b.len);
    return request(type, 0, {b}, {});
  }
  std::uint8_t status(const Submitted& s) const {
    std::byte v{};
    guest.read(s.status_gpa, &v, 1);
    return static_cast<std::uint8_t>(v);
  }

  // ---- driving the device ----
  void kick(std::uint16_t qi = 0) {
    queues[qi].drv->publish();
    backend->process(*queues[qi].q);
  }
  // Waits (completion_fd + complete()) until `n` more buffers were used; false on timeout.
  bool wait(std::size_t n, std::uint16_t qi = 0, int timeout_ms = 5000) {
    QueueUnderTest& t = queues[qi];
    const std::size_t want = t.order.size() + n;
    reap(t);
    while (t.order.size() < want) {
      pollfd p{backend->completion_fd(*t.q), POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) return false;
      consume_edge(p.fd);
      backend->complete(*t.q);
      reap(t);
    }
    return t.order.size() == want;
  }
  // The completion fd is an event counter the worker watches edge-triggered and never reads
  // (Backend::completion_fd_is_event_counter); polling it level-triggered, the harness consumes
  // the events itself, as the edge would be.
  static void consume_edge(int fd) {
    eventfd_t events = 0;
    (void)::eventfd_read(fd, &events);
  }
  std::uint32_t used_len(const Submitted& s, std::uint16_t qi = 0) {
    auto it = queues[qi].used.find(s.id);
    return it == queues[qi].used.end() ? 0xFFFFFFFFu : it->second;
  }
  void reap(QueueUnderTest& t) {
    while (std::optional<UsedBuf> u = t.drv->read_used()) {
      t.used[static_cast<std::uint16_t>(u->id)] = u->len;
      t.order.push_back(static_cast<std::uint16_t>(u->id));
    }
  }

  TempImage image;
  TestGuest guest;
  std::unique_ptr<BlkBackend> backend;
  std::vector<QueueUnderTest> queues;

 private:
  QueueUnderTest make_queue(std::uint16_t index, std::uint16_t size) {
    QueueUnderTest t;
    t.drv = std::make_unique<typename Layout::Driver>(guest, size);
    t.call.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    const std::uint64_t features = Layout::kFeatures | vring::feature_bit(vring::kFVersion1);
    t.q = std::make_unique<device::VirtQueue>(
        index, vring::make_device_queue<vring::RegionTable>(features), false, t.call.get(), -1,
        nullptr, nullptr, 64);
    const RingAreas& a = t.drv->areas();
    auto st = vring::configure_queue(t.q->ring(), &guest.mem(), features, size, a.desc, a.avail,
                                     a.used, vring::RingState{});
    EXPECT_TRUE(st);
    t.q->set_enabled(true);
    return t;
  }

  vring::BufferMemory extra_;  // host storage of the second region
};

}  // namespace vireo::test
