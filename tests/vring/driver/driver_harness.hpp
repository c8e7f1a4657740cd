// Typed-test plumbing for the driver rings: one "guest RAM" BufferMemory holding the ring areas and
// the indirect pool, a configured driver ring, and the device fake reading the same memory.
//
//   template <class T> class MyTest : public ::testing::Test {};
//   TYPED_TEST_SUITE(MyTest, DriverLayouts, LayoutName);
//   TYPED_TEST(MyTest, X) { DriverHarness<TypeParam> h(8); h.add(1, 1, 0); ... }
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "device_fakes.hpp"
#include "vring/features.hpp"
#include "vring/layout.hpp"
#include "vring/memory.hpp"
#include "vring/packed_driver.hpp"
#include "vring/split_driver.hpp"

namespace vireo::vring::test {

struct SplitLayout {
  using Ring = SplitDriverRing;
  using Fake = SplitDeviceFake;
  static constexpr bool kPacked = false;
  static constexpr std::uint64_t kLayoutFeatures = 0;
  static std::size_t driver_area_bytes(std::uint16_t n) { return split_avail_bytes(n); }
  static std::size_t device_area_bytes(std::uint16_t n) { return split_used_bytes(n); }
  static Fake make_fake(void* d, void* a, void* u, std::uint16_t n, const BufferMemory& m) {
    return Fake(SplitRingView::at(d, a, u, n), m);
  }
};

struct PackedLayout {
  using Ring = PackedDriverRing;
  using Fake = PackedDeviceFake;
  static constexpr bool kPacked = true;
  static constexpr std::uint64_t kLayoutFeatures = feature_bit(kFRingPacked);
  static std::size_t driver_area_bytes(std::uint16_t) { return sizeof(EventSuppress); }
  static std::size_t device_area_bytes(std::uint16_t) { return sizeof(EventSuppress); }
  static Fake make_fake(void* d, void* a, void* u, std::uint16_t n, const BufferMemory& m) {
    return Fake(PackedRingView::at(d, a, u, n), m);
  }
};

using DriverLayouts = ::testing::Types<SplitLayout, PackedLayout>;
struct LayoutName {
  template <class T>
  static std::string GetName(int) {
    return T::kPacked ? "Packed" : "Split";
  }
};

// Buffer addresses are never dereferenced by the driver or the fakes; make them recognisable.
inline std::uint64_t buf_gpa(std::uint64_t token, std::size_t k) {
  return 0x4000'0000ull + token * 0x1000 + k * 0x100;
}
inline std::uint32_t buf_len(std::uint64_t token, std::size_t k) {
  return static_cast<std::uint32_t>(16 + (token % 7) * 8 + k);
}

template <class L>
class DriverHarness {
 public:
  static constexpr std::uint64_t kBase = 0x10000;

  explicit DriverHarness(std::uint16_t size, std::uint64_t features = 0,
                         std::uint16_t indirect_max = 0)
      : size_(size), mem_(kBase, layout(size, indirect_max)) {
    cfg_.size = size;
    cfg_.features = features | L::kLayoutFeatures;
    cfg_.desc = mem_.host(kBase + desc_off_);
    cfg_.avail = mem_.host(kBase + driver_off_);
    cfg_.used = mem_.host(kBase + device_off_);
    if (indirect_max != 0) {
      cfg_.indirect_host = mem_.host(kBase + pool_off_);
      cfg_.indirect_gpa = kBase + pool_off_;
      cfg_.indirect_max = indirect_max;
    }
    status = ring.configure(cfg_);
    fake_.emplace(L::make_fake(cfg_.desc, cfg_.avail, cfg_.used, size, mem_));
  }

  typename L::Fake& dev() { return *fake_; }
  const DriverConfig& config() const { return cfg_; }
  std::uint64_t pool_gpa() const { return kBase + pool_off_; }
  std::byte* host(std::uint64_t gpa) const { return mem_.host(gpa); }
  bool event_idx() const { return has_feature(cfg_.features, kFEventIdx); }

  // Adds a buffer of `nr` readable and `nw` writable elements (addresses from buf_gpa()).
  Result<std::uint16_t> add(std::uint64_t token, std::size_t nr, std::size_t nw,
                            bool indirect = false) {
    std::vector<DriverBuffer> r, w;
    for (std::size_t k = 0; k < nr; ++k) r.push_back({buf_gpa(token, k), buf_len(token, k)});
    for (std::size_t k = nr; k < nr + nw; ++k) w.push_back({buf_gpa(token, k), buf_len(token, k)});
    return ring.add(r, w, token, indirect);
  }

  // Device takes the next chain and must find one.
  FakeChain pop() {
    std::optional<FakeChain> c = fake_->pop();
    EXPECT_TRUE(c.has_value()) << "device fake: " << fake_->error();
    return c.value_or(FakeChain{});
  }

  typename L::Ring ring;
  Status status;

 private:
  std::size_t layout(std::uint16_t n, std::uint16_t indirect_max) {
    auto up = [](std::size_t x) { return (x + 63) & ~std::size_t{63}; };
    desc_off_ = 0;
    driver_off_ = up(desc_off_ + 16u * n);
    device_off_ = up(driver_off_ + L::driver_area_bytes(n));
    pool_off_ = up(device_off_ + L::device_area_bytes(n));
    return pool_off_ + std::size_t{n} * indirect_max * 16u + 64;
  }

  std::uint16_t size_;
  std::size_t desc_off_ = 0, driver_off_ = 0, device_off_ = 0, pool_off_ = 0;
  BufferMemory mem_;
  DriverConfig cfg_;
  std::optional<typename L::Fake> fake_;
};

}  // namespace vireo::vring::test
