// libFuzzer target: virtio-net header parsing and the receive fill, through the real NetBackend.
// A driver (the vring driver rings) posts transmit packets (virtio_net_hdr + frame, split over
// several descriptors), receive buffers and control commands into one guest memory; the backend
// serves them with a loopback, responder (ARP/ICMP answers) or sink port: TX header checks
// (check_tx), the mergeable / non-mergeable RX fill (RxFiller), the control queue (MQ pairs).
// Raw scribbles over the shared memory make the driver hostile at any point.
//
// Oracles besides ASan/UBSan: every used token was outstanding; while no scribble or reuse of the
// data area has touched shared memory, a used length never exceeds the buffer's writable bytes
// and each received packet's header says num_buffers >= 1 (exactly 1 without MRG_RXBUF,
// §5.1.6.4.1).
//
// Speed: what does not depend on the input (guest memory, the call eventfd, one NetBackend per
// pair count and port, one VirtQueue per queue area and EVENT_IDX setting) is built once per
// process in a Fixture and reset per input (see Fixture). Rebuilt per input, their large
// allocations (the backend's 64 KiB scratch and 96 chains of 64 segments per pair, the
// responder's 96 KiB reply ring, each VirtQueue's 1024-segment scratch chain) were page-faulting
// ASan allocations and memsets that held the target to about 200-1,000 exec/s.
//
// Input format (fuzz_input.hpp): header {u8 flags (1 packed, 2 EVENT_IDX, 4 INDIRECT_DESC,
// 8 MRG_RXBUF, 16 CSUM, 32 two pairs + control queue), u8 port (0 loopback, 1 responder, 2 sink),
// u8 size_sel}, then ops (see step()).
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "base/log.hpp"
#include "device/net/net_backend.hpp"
#include "device/net/net_defs.hpp"
#include "device/net/port.hpp"
#include "device/virt_queue.hpp"
#include "fuzz_input.hpp"
#include "proto/sys/event_fd.hpp"
#include "vring/features.hpp"
#include "vring/packed_driver.hpp"
#include "vring/split_driver.hpp"

namespace {

using namespace vireo;
using namespace vireo::device::net;
using fuzz::FuzzInput;

constexpr std::size_t kMemBytes = 0x10000;
constexpr std::size_t kQueueArea = 0x3000;  // per queue: desc, avail (+0x1000), used (+0x2000)
constexpr std::size_t kDataOff = 3 * kQueueArea, kDataBytes = kMemBytes - kDataOff;

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "fuzz_net: invariant violated: %s\n", what);
  __builtin_trap();
}

struct Posted {
  std::uint64_t token;
  std::uint32_t writable;  // bytes the device may write
  std::uint64_t first_gpa; // where an RX buffer starts (its virtio_net_hdr)
  std::uint32_t first_len;
};

// Built once, reset per input so that nothing from one input reaches the next (a finding must
// replay from its input alone):
// - mem: zeroed per input.
// - NetBackend: reset() forgets the port's queued replies, the active pair count and the
//   once-per-connection warnings; set_features() sets header length, MRG_RXBUF and CSUM;
//   queue_started() empties the pair's RX window and held TX packets, and the previous input's
//   NetRig stopped every queue it started (queue_stopping() completes what was held). Left over:
//   the counters, which nothing reads.
// - VirtQueue: gets a new, unconfigured ring per input and is enabled. Left over: its statistics
//   and whether it has logged a broken ring, which only decide whether that line is logged.
struct Fixture {
  static constexpr std::uint16_t kIndex[3] = {0, 1, 4};  // RX, TX, control (with two pairs)

  Fixture()
      : mem(static_cast<std::byte*>(std::aligned_alloc(4096, kMemBytes))),
        table({vring::Region{0, kMemBytes, 0, mem}}) {
    auto c = proto::EventFd::create(/*nonblocking=*/true);
    if (c) call = std::move(*c);
    const char* specs[] = {"loopback", "responder=192.0.2.1", "sink"};
    for (int pairs = 1; pairs <= 2; ++pairs) {
      for (int port = 0; port < 3; ++port) {
        auto& b = backend[pairs - 1][port];
        b = std::make_unique<NetBackend>(NetOptions{.pairs = static_cast<std::uint16_t>(pairs)},
                                         nullptr);
        auto p = make_port(specs[port]);
        if (!p || !b->set_port(std::move(*p))) b.reset();
      }
    }
    for (int k = 0; k < 3; ++k)
      for (int e = 0; e < 2; ++e)
        vq[k][e] = std::make_unique<device::VirtQueue>(
            kIndex[k], vring::make_device_queue<vring::RegionTable>(0), e != 0, call.fd(), -1,
            nullptr, nullptr, vring::kDefaultMaxSegments);
  }

  std::byte* mem;
  vring::RegionTable table;
  proto::EventFd call;
  std::unique_ptr<NetBackend> backend[2][3];       // [pairs - 1][port]
  std::unique_ptr<device::VirtQueue> vq[3][2];     // [queue area][EVENT_IDX]
};

template <class DrvRing>
class NetRig {
 public:
  NetRig(FuzzInput& in, Fixture& fx, NetBackend& backend, std::uint8_t flags, std::uint16_t size)
      : in_(in), fx_(fx), mem_(fx.mem), size_(size), table_(fx.table), backend_(backend) {
    backend_.reset();
    features_ = vring::feature_bit(vring::kFVersion1);
    if ((flags & 1) != 0) features_ |= vring::feature_bit(vring::kFRingPacked);
    if ((flags & 2) != 0) features_ |= vring::feature_bit(vring::kFEventIdx);
    if ((flags & 4) != 0) features_ |= vring::feature_bit(vring::kFIndirectDesc);
    if ((flags & 8) != 0) features_ |= vring::feature_bit(kFMrgRxbuf);
    if ((flags & 16) != 0) features_ |= vring::feature_bit(kFCsum);
    if ((flags & 32) != 0) features_ |= vring::feature_bit(kFCtrlVq) | vring::feature_bit(kFMq);
    mergeable_ = (flags & 8) != 0;
    if (!backend_.set_features(features_)) return;
    // RX 0, TX 1, and the control queue (index 4, only with two pairs) in the third area.
    for (int k = 0; k < ((flags & 32) != 0 ? 3 : 2); ++k)
      if (!start(k)) return;
    ok_ = true;
  }

  ~NetRig() {
    for (device::VirtQueue* q : vq_)
      if (q != nullptr) backend_.queue_stopping(*q);
  }

  void run() {
    if (!ok_) return;
    for (unsigned steps = 0; !in_.empty() && steps < 256; ++steps) step(in_.u8());
  }

 private:
  bool start(int k) {
    std::byte* area = mem_ + k * kQueueArea;
    vring::DriverConfig dc{size_, features_, area, area + 0x1000, area + 0x2000};
    if (!drv_[k].configure(dc)) return false;
    device::VirtQueue& q = *fx_.vq[k][vring::has_feature(features_, vring::kFEventIdx) ? 1 : 0];
    q.ring() = vring::make_device_queue<vring::RegionTable>(features_);  // a new ring, no state
    vring::RingState base{};
    if (!vring::configure_queue(q.ring(), &table_, features_, size_, area, area + 0x1000,
                                area + 0x2000, base))
      return false;
    q.set_enabled(true);
    vq_[k] = &q;
    backend_.queue_started(q);
    return true;
  }

  void step(std::uint8_t op) {
    switch (op % 8) {
      case 0: post_tx(op >= 128); break;
      case 1: post_rx(op >= 128); break;
      case 2: post_ctrl(); break;
      case 3: kick(op / 8 % 3); break;
      case 4: for (int k = 0; k < 3; ++k) reap(k); break;
      case 5: scribble(); break;
      case 6: restart(op / 8 % 3); break;
      case 7: if (vq_[0]) backend_.complete(*vq_[0]); break;  // responder's answers, on RX
    }
  }

  // The data area is reused from its start: buffers still outstanding may be overwritten.
  void wrap() {
    cursor_ = 0;
    tampered_ = true;
  }

  // Copies `len` input bytes into the data area; returns their guest address.
  std::uint64_t place(std::size_t len) {
    if (cursor_ + len > kDataBytes) wrap();
    const std::uint64_t gpa = kDataOff + cursor_;
    in_.bytes(mem_ + gpa, len);
    cursor_ += (len + 15) & ~std::size_t{15};
    return gpa;
  }

  // TX: u8 segments-1 (mod 4), per segment u16 length (mod 1600), then its bytes (the first
  // bytes are the virtio_net_hdr, then the Ethernet frame).
  void post_tx(bool indirect) {
    vring::DriverBuffer b[4];
    const unsigned n = in_.u8() % 4 + 1;
    for (unsigned i = 0; i < n; ++i) {
      const std::uint32_t len = in_.u16() % 1600;
      b[i] = vring::DriverBuffer{place(len), len};
    }
    add(1, {b, n}, {}, indirect, 0, b[0]);
  }

  // RX: u8 buffers-1 (mod 4), per buffer u16 length (mod 2048); one chain of n writable
  // descriptors, or with the top bit n chains of one (mergeable buffers).
  void post_rx(bool separate) {
    vring::DriverBuffer b[4];
    const unsigned n = in_.u8() % 4 + 1;
    for (unsigned i = 0; i < n; ++i) {
      const std::uint32_t len = in_.u16() % 2048;
      if (cursor_ + len > kDataBytes) wrap();
      b[i] = vring::DriverBuffer{kDataOff + cursor_, len};
      std::memset(mem_ + b[i].gpa, 0xee, len);
      cursor_ += (len + 15) & ~std::size_t{15};
    }
    if (separate) {
      for (unsigned i = 0; i < n; ++i) add(0, {}, {&b[i], 1}, false, b[i].len, b[i]);
    } else {
      std::uint32_t total = 0;
      for (unsigned i = 0; i < n; ++i) total += b[i].len;
      add(0, {}, {b, n}, false, total, b[0]);
    }
  }

  // Control: u8 class, u8 command, u8 data length, data; one writable ack byte.
  void post_ctrl() {
    if (!vq_[2]) return;
    std::uint8_t hdr[2] = {in_.u8(), in_.u8()};
    const std::uint32_t len = in_.u8();
    if (cursor_ + 2 + len + 1 > kDataBytes) wrap();
    const std::uint64_t gpa = kDataOff + cursor_;
    std::memcpy(mem_ + gpa, hdr, 2);
    in_.bytes(mem_ + gpa + 2, len);
    cursor_ += (2 + len + 1 + 15) & ~std::size_t{15};
    vring::DriverBuffer rd[2] = {{gpa, 2}, {gpa + 2, len}};
    vring::DriverBuffer ack{gpa + 2 + len, 1};
    add(2, {rd, len != 0 ? 2u : 1u}, {&ack, 1}, false, 1, ack);
  }

  void add(int k, std::span<const vring::DriverBuffer> rd, std::span<const vring::DriverBuffer> wr,
           bool indirect, std::uint32_t writable, vring::DriverBuffer first) {
    const std::uint64_t token = next_token_++;
    if (drv_[k].add(rd, wr, token, indirect))
      posted_[k].push_back(Posted{token, writable, first.gpa, first.len});
  }

  void kick(int k) {
    if (!vq_[k]) return;
    (void)drv_[k].kick_prepare();
    backend_.process(*vq_[k]);
  }

  void reap(int k) {
    if (!vq_[k]) return;
    vring::DriverUsed u;
    while (true) {
      vring::Result<bool> got = drv_[k].get_used(u);
      if (!got || !*got) return;
      auto it = std::find_if(posted_[k].begin(), posted_[k].end(),
                             [&](const Posted& p) { return p.token == u.token; });
      if (it == posted_[k].end()) violated("used token that is not outstanding");
      // §5.1.6.3.1: with MRG_RXBUF each receive buffer MUST be at least the size of the
      // virtio_net_hdr. A driver that posts a shorter one has broken that rule, and the device
      // may then start a packet in it and carry the header (and num_buffers) over into the next
      // buffer: which used buffer begins a packet is no longer knowable here. Stop checking
      // headers (the input tests/fuzz/corpus/net/split_mergeable_short_first_rx_buffer: a
      // zero-length buffer used with length 0 as the first of num_buffers 2).
      if (k == 0 && mergeable_ && continuation_ == 0 && it->writable < kNetHdrLen)
        tampered_ = true;
      // Only while the ring is the device's alone: a scribble can forge a used descriptor.
      if (!tampered_ && u.len > it->writable)
        violated("used length larger than the buffer's writable bytes");
      // A used length of 0 is a buffer returned unused (queue stopped, packet dropped), unless a
      // mergeable packet is still continuing: a zero-length RX buffer the driver posted is then
      // one of its num_buffers.
      if (k == 0 && (u.len != 0 || continuation_ != 0)) check_rx_header(*it);
      posted_[k].erase(it);
    }
  }

  // The first buffer of each received packet starts with its virtio_net_hdr; with MRG_RXBUF the
  // next num_buffers - 1 used buffers continue the packet. Checked only while the buffer's bytes
  // are the device's alone: before any scribble and before the data area was reused.
  void check_rx_header(const Posted& p) {
    if (continuation_ != 0) {
      --continuation_;
      return;
    }
    if (p.first_len < kNetHdrLen) tampered_ = true;  // header split over descriptors: stop here
    if (tampered_) return;
    NetHdr h;
    std::memcpy(&h, mem_ + p.first_gpa, sizeof h);
    if (h.num_buffers == 0 || (!mergeable_ && h.num_buffers != 1))
      violated("RX header num_buffers breaks §5.1.6.4.1");
    continuation_ = h.num_buffers - 1u;
  }

  // A hostile driver rewrites shared memory: u16 offset, u8 length, the bytes.
  void scribble() {
    tampered_ = true;
    const std::size_t off = in_.u16() % kMemBytes;
    in_.bytes(mem_ + off, std::min<std::size_t>(in_.u8(), kMemBytes - off));
  }

  // GET_VRING_BASE then SET_VRING_KICK: the queue stops (held buffers are completed) and starts
  // again from its position.
  void restart(int k) {
    if (!vq_[k]) return;
    backend_.queue_stopping(*vq_[k]);
    const vring::RingState st = vq_[k]->visit([](auto& r) { return r.state(); });
    std::byte* area = mem_ + k * kQueueArea;
    (void)vring::configure_queue(vq_[k]->ring(), &table_, features_, size_, area, area + 0x1000,
                                 area + 0x2000, st);
    backend_.queue_started(*vq_[k]);
  }

  FuzzInput& in_;
  Fixture& fx_;
  std::byte* mem_;
  std::uint16_t size_;
  const vring::RegionTable& table_;
  NetBackend& backend_;
  std::uint64_t features_ = 0;
  bool mergeable_ = false;
  std::array<DrvRing, 3> drv_;
  std::array<device::VirtQueue*, 3> vq_{};  // started queues (the Fixture's), null if not
  std::array<std::vector<Posted>, 3> posted_;
  std::size_t cursor_ = 0;
  std::uint32_t continuation_ = 0;  // used RX buffers still to come for the current packet
  bool tampered_ = false;           // shared memory was rewritten under the device
  std::uint64_t next_token_ = 1;
  bool ok_ = false;
};

}  // namespace

// Only errors are logged while fuzzing: the backend's once-per-connection warnings come again with
// every input (NetBackend::reset()), tens of thousands of lines a second. VIREO_FUZZ_LOG=1 keeps
// them, to see what an input does.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (std::getenv("VIREO_FUZZ_LOG") == nullptr) log::set_threshold(log::Level::error);
  else log::set_threshold(log::Level::debug);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fx;
  std::fill_n(fx.mem, kMemBytes, std::byte{0});
  FuzzInput in(data, size);
  const std::uint8_t flags = in.u8();
  const std::uint8_t port = in.u8();
  const std::uint8_t size_sel = in.u8();
  NetBackend* backend = fx.backend[(flags & 32) != 0 ? 1 : 0][port % 3].get();
  if (backend == nullptr || !fx.call.valid()) violated("the fixture could not be built");
  if ((flags & 1) != 0) {
    NetRig<vring::PackedDriverRing>(in, fx, *backend, flags,
                                    static_cast<std::uint16_t>(size_sel % 64 + 1)).run();
  } else {
    NetRig<vring::SplitDriverRing>(in, fx, *backend, flags,
                                   static_cast<std::uint16_t>(1u << (size_sel % 7))).run();
  }
  return 0;
}
