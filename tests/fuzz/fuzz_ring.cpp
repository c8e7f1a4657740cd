// libFuzzer target: the ring walker. A device ring and a driver ring share one set of ring areas in
// a BufferMemory; the input picks the layout (split or packed), the size, EVENT_IDX and
// INDIRECT_DESC and IN_ORDER (then the device pushes in pop order, runs sometimes as one
// push_unwritten batch), then runs a sequence of driver operations (add, kick_prepare, get_used,
// enable_cb/disable_cb), device operations (pop, pop_burst, the lone lane serve_lone/pop_lone,
// push, flush, needs_notification, enable/disable_notification, reconfigure from state()) and raw
// scribbles over the ring areas and buffers (a hostile driver or device rewriting shared memory at
// any point).
//
// Oracles besides ASan/UBSan: every segment of a popped chain lies inside guest memory; every
// token get_used returns was added and not reaped yet (the driver validates used ids); a broken
// ring stays broken. Input format (fuzz_input.hpp): header {u8 flags, u8 size_sel}, then ops.
#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <vector>

#include "fuzz_input.hpp"
#include "vring/chain.hpp"
#include "vring/dirty_log.hpp"
#include "vring/features.hpp"
#include "vring/packed_device.hpp"
#include "vring/packed_driver.hpp"
#include "vring/split_device.hpp"
#include "vring/split_driver.hpp"

namespace {

using namespace vireo::vring;
using vireo::fuzz::FuzzInput;

constexpr std::uint64_t kBase = 0x10000;
constexpr std::size_t kMemBytes = 0x10000;  // a multiple of 4 KiB: BufferMemory's allocation ends here
constexpr std::size_t kDescOff = 0x0000, kAvailOff = 0x1000, kUsedOff = 0x2000;
constexpr std::size_t kIndirectOff = 0x3000;  // driver's indirect tables: 256 x 4 x 16 bytes
constexpr std::uint16_t kIndirectMax = 4;
constexpr std::size_t kDataOff = 0x8000, kDataBytes = kMemBytes - kDataOff;
constexpr std::uint32_t kMaxSegs = 64;

// Stop here with a readable reason; libFuzzer records the input as a crash.
[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "fuzz_ring: invariant violated: %s\n", what);
  __builtin_trap();
}

struct Pending {
  Head head;
  std::uint32_t writable;
};

template <class DevRing, class DrvRing>
class Walker {
 public:
  // mem and chains are reused across inputs (allocated once: the target runs faster); mem is
  // zeroed here, chains are overwritten by every pop.
  Walker(FuzzInput& in, BufferMemory& mem, std::vector<Chain>& chains, std::uint64_t features,
         std::uint16_t size, bool dirty)
      : in_(in), mem_(mem), chains_(chains), features_(features), size_(size) {
    std::byte* m = mem_.bytes().data();
    std::fill_n(m, kMemBytes, std::byte{0});
    DriverConfig dc{size, features, m + kDescOff, m + kAvailOff, m + kUsedOff,
                    m + kIndirectOff, kBase + kIndirectOff, kIndirectMax};
    if (!drv_.configure(dc)) return;
    if (!configure_device(RingState{})) return;
    if (dirty) dev_.set_dirty_log(&log_, kBase + kUsedOff);
    ok_ = true;
  }

  void run() {
    if (!ok_) return;
    for (unsigned steps = 0; !in_.empty() && steps < 4096; ++steps) step(in_.u8());
  }

 private:
  bool configure_device(RingState base) {
    std::byte* m = mem_.bytes().data();
    typename DevRing::Config cfg{size_, features_, m + kDescOff, m + kAvailOff, m + kUsedOff, 0};
    pending_.clear();
    return dev_.configure(&mem_, cfg, base).has_value();
  }

  void step(std::uint8_t op) {
    switch (op % 12) {
      case 0: driver_add(op >= 128); break;
      case 1: (void)drv_.kick_prepare(); break;
      case 2:
        if (op >= 128) device_pop_lone(op & 1);
        else device_pop(1);
        break;
      case 3: device_push(); break;
      case 4: dev_.flush(); break;
      case 5: (void)dev_.needs_notification(); break;
      case 6:
        if (op >= 128) (void)dev_.enable_notification();
        else dev_.disable_notification();
        break;
      case 7: driver_reap(); break;
      case 8:
        if (op >= 128) (void)drv_.enable_cb();
        else drv_.disable_cb();
        break;
      case 9: scribble(); break;
      case 10:
        if (op >= 128) device_serve_lone(op & 1);
        else device_pop(4);
        break;
      case 11: reconnect(); break;
    }
  }

  void driver_add(bool indirect) {
    const std::uint8_t counts = in_.u8();
    DriverBuffer rd[4], wr[4];
    const unsigned nr = counts & 3, nw = (counts >> 2) & 3;
    for (unsigned i = 0; i < nr; ++i) rd[i] = buffer();
    for (unsigned i = 0; i < nw; ++i) wr[i] = buffer();
    const std::uint64_t token = next_token_++;
    Result<std::uint16_t> id = drv_.add({rd, nr}, {wr, nw}, token, indirect);
    if (id) outstanding_.push_back(token);
  }

  DriverBuffer buffer() {
    const std::uint16_t off = in_.u16() % kDataBytes;
    const std::uint16_t len = static_cast<std::uint16_t>(in_.u16() % (kDataBytes - off + 1));
    return DriverBuffer{kBase + kDataOff + off, len};
  }

  void driver_reap() {
    DriverUsed used[4];
    Result<std::size_t> n = drv_.get_used_burst(used);
    if (!n) return;  // broken: the device broke a rule and the driver noticed
    for (std::size_t i = 0; i < *n; ++i) {
      auto it = std::find(outstanding_.begin(), outstanding_.end(), used[i].token);
      if (it == outstanding_.end()) violated("get_used returned a token that is not outstanding");
      outstanding_.erase(it);
    }
  }

  void device_pop(std::size_t want) {
    Result<std::size_t> n = dev_.pop_burst(std::span<Chain>(chains_.data(), want));
    if (!n) {
      if (!dev_.broken()) violated("pop failed but the ring is not broken");
      Result<std::size_t> again = dev_.pop_burst(std::span<Chain>(chains_.data(), 1));
      if (again || again.error() != Errc::broken) violated("a broken ring did not stay broken");
      return;
    }
    for (std::size_t i = 0; i < *n; ++i) serve(chains_[i]);
  }

  // The lone lane: what it hands over lies in guest memory; serve_lone pushes at once, pop_lone
  // leaves the buffers to device_push().
  void check_lone(const std::byte* data, std::uint32_t len) const {
    const std::byte* lo = mem_.bytes().data();
    if (data < lo || data + len > lo + kMemBytes || len == 0) violated("lone buffer outside guest memory");
  }
  void device_serve_lone(bool writable) {
    const std::uint8_t max = in_.u8();
    (void)dev_.serve_lone(max % 8, writable, [&](std::byte* data, std::uint32_t len, std::uint16_t) {
      check_lone(data, len);
      if (!writable) return 0u;
      std::fill_n(data, len, std::byte{0x5a});
      return len;
    });
  }
  void device_pop_lone(bool writable) {
    const std::uint8_t max = in_.u8();
    (void)dev_.pop_lone(max % 8, writable, [&](std::byte* data, std::uint32_t len, std::uint16_t id) {
      check_lone(data, len);
      if (pending_.size() < 4 * 1024) pending_.push_back(Pending{Head{id, 1}, 0});
      return 0u;
    });
  }

  // Reads every readable byte and writes every writable byte, as a device would.
  void serve(const Chain& c) {
    const std::byte* lo = mem_.bytes().data();
    const std::byte* hi = lo + kMemBytes;
    for (const Segment& s : c.readable())
      if (s.data < lo || s.data + s.len > hi) violated("readable segment outside guest memory");
    for (const Segment& s : c.writable())
      if (s.data < lo || s.data + s.len > hi) violated("writable segment outside guest memory");
    std::byte buf[256];
    ChainReader r(c);
    while (r.read(buf, sizeof buf) == sizeof buf) {
    }
    std::fill_n(buf, sizeof buf, std::byte{0x5a});
    ChainWriter w(c);
    while (w.write(buf, sizeof buf) == sizeof buf) {
    }
    if (pending_.size() < 4 * 1024) pending_.push_back(Pending{c.head(), c.writable_bytes()});
  }

  void device_push() {
    const std::uint8_t pick = in_.u8();
    if (pending_.empty()) return;
    if (has_feature(features_, kFInOrder)) {
      // §2.7.9 / §2.8.23: in the order popped; a run of up to 8 sometimes as one batch.
      std::size_t n = std::min<std::size_t>(pending_.size(), pick % 8 + 1);
      if (n > 1 && pick >= 128) {
        Head heads[8];
        for (std::size_t k = 0; k < n; ++k) heads[k] = pending_[k].head;
        dev_.push_unwritten(heads, n);
      } else {
        n = 1;
        dev_.push(pending_[0].head, pending_[0].writable);
      }
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
      return;
    }
    const std::size_t i = pick % pending_.size();
    dev_.push(pending_[i].head, pending_[i].writable);
    pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
  }

  // A hostile side rewrites shared memory: u16 offset, u8 length, the bytes.
  void scribble() {
    const std::size_t off = in_.u16() % kMemBytes;
    const std::size_t len = std::min<std::size_t>(in_.u8(), kMemBytes - off);
    in_.bytes(mem_.bytes().data() + off, len);
  }

  // A back-end restart: the device ring is configured again from the position it reports.
  void reconnect() {
    const RingState st = dev_.state();
    dev_.flush();
    (void)configure_device(st);
  }

  FuzzInput& in_;
  BufferMemory& mem_;
  std::vector<Chain>& chains_;
  std::uint64_t features_;
  std::uint16_t size_;
  DevRing dev_;
  DrvRing drv_;
  std::byte log_bits_[64] = {};
  DirtyLog log_{log_bits_, sizeof log_bits_};
  std::vector<Pending> pending_;
  std::vector<std::uint64_t> outstanding_;
  std::uint64_t next_token_ = 1;
  bool ok_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static BufferMemory mem(kBase, kMemBytes);
  static std::vector<Chain> chains = [] {
    std::vector<Chain> v;
    for (int i = 0; i < 4; ++i) v.emplace_back(kMaxSegs);
    return v;
  }();
  FuzzInput in(data, size);
  const std::uint8_t flags = in.u8();
  const std::uint8_t size_sel = in.u8();
  const bool packed = (flags & 1) != 0;
  std::uint64_t features = feature_bit(kFVersion1);
  if ((flags & 2) != 0) features |= feature_bit(kFEventIdx);
  if ((flags & 4) != 0) features |= feature_bit(kFIndirectDesc);
  if ((flags & 16) != 0) features |= feature_bit(kFInOrder);
  const bool dirty = (flags & 8) != 0;
  if (packed) {
    features |= feature_bit(kFRingPacked);
    const auto n = static_cast<std::uint16_t>(size_sel % 256 + 1);
    Walker<PackedDeviceRing<BufferMemory>, PackedDriverRing>(in, mem, chains, features, n, dirty).run();
  } else {
    const auto n = static_cast<std::uint16_t>(1u << (size_sel % 9));
    Walker<SplitDeviceRing<BufferMemory>, SplitDriverRing>(in, mem, chains, features, n, dirty).run();
  }
  return 0;
}
