// A driver ring and a device ring of the same layout over one plain buffer: the harness behind
// `vireo bench ring` and the two-thread stress test. No sockets, no eventfds: the two halves meet
// in memory exactly as a guest driver and a vhost-user back-end do.
//
//   RingPair<Packed> pair(256, features, /*buffer_len=*/64);
//   pair.driver.add(...);  pair.device.pop_burst(...);
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "vring/features.hpp"
#include "vring/layout.hpp"
#include "vring/memory.hpp"
#include "vring/packed_device.hpp"
#include "vring/packed_driver.hpp"
#include "vring/split_device.hpp"
#include "vring/split_driver.hpp"

namespace vireo::bench {

struct Split {
  using Device = vring::SplitDeviceRing<vring::BufferMemory>;
  using Driver = vring::SplitDriverRing;
  static constexpr const char* kName = "split";
  static constexpr std::uint64_t kFeatures = 0;
};
struct Packed {
  using Device = vring::PackedDeviceRing<vring::BufferMemory>;
  using Driver = vring::PackedDriverRing;
  static constexpr const char* kName = "packed";
  static constexpr std::uint64_t kFeatures = vring::feature_bit(vring::kFRingPacked);
};

template <class Layout>
class RingPair {
 public:
  static constexpr std::uint64_t kBase = 0x100000;  // GPA of the first byte

  RingPair(std::uint16_t size, std::uint64_t features, std::uint32_t buffer_len)
      : size_(size), buffer_len_(buffer_len), mem_(kBase, bytes_needed(size, buffer_len)) {
    features |= Layout::kFeatures | vring::feature_bit(vring::kFVersion1);
    typename Layout::Driver::Config dc{};
    dc.size = size;
    dc.features = features;
    dc.desc = mem_.host(desc_gpa());
    dc.avail = mem_.host(avail_gpa());
    dc.used = mem_.host(used_gpa());
    if (!driver.configure(dc)) die("driver ring configure failed");
    typename Layout::Device::Config vc{};
    vc.size = size;
    vc.features = features;
    vc.desc = dc.desc;
    vc.avail = dc.avail;
    vc.used = dc.used;
    if (!device.configure(&mem_, vc, vring::RingState{})) die("device ring configure failed");
  }

  std::uint64_t buffer_gpa(std::uint32_t i) const { return buffers_gpa() + std::uint64_t{i} * stride(); }
  std::byte* buffer_host(std::uint32_t i) const { return mem_.host(buffer_gpa(i)); }
  std::uint32_t buffer_len() const { return buffer_len_; }
  std::uint16_t size() const { return size_; }
  const vring::BufferMemory& memory() const { return mem_; }
  // The three ring areas (split: desc, avail, used; packed: desc, driver event, device event).
  void* desc_area() const { return mem_.host(desc_gpa()); }
  void* avail_area() const { return mem_.host(avail_gpa()); }
  void* used_area() const { return mem_.host(used_gpa()); }

  typename Layout::Driver driver;
  typename Layout::Device device;

 private:
  static void die(const char* what) {
    std::fprintf(stderr, "ring pair: %s\n", what);
    std::abort();  // harness misconfiguration, not guest input
  }
  static std::uint64_t align(std::uint64_t v, std::uint64_t a) { return (v + a - 1) & ~(a - 1); }
  std::uint64_t stride() const { return align(buffer_len_, 64); }
  std::uint64_t desc_gpa() const { return kBase; }
  std::uint64_t avail_gpa() const { return align(desc_gpa() + 16ull * size_, 64); }
  std::uint64_t used_gpa() const { return align(avail_gpa() + 6ull + 2ull * size_, 4096); }
  std::uint64_t buffers_gpa() const { return align(used_gpa() + 6ull + 8ull * size_, 4096); }
  static std::size_t bytes_needed(std::uint16_t size, std::uint32_t len) {
    std::uint64_t rings = align(align(16ull * size, 64) + 6 + 2ull * size, 4096) + align(6 + 8ull * size, 4096);
    return static_cast<std::size_t>(rings + std::uint64_t{size} * align(len, 64) + 4096);
  }

  std::uint16_t size_;
  std::uint32_t buffer_len_;
  vring::BufferMemory mem_;
};

}  // namespace vireo::bench
