// Shared setup of the device tests: an rng back-end served in a thread, a front-end fake on the
// other end of the socketpair, and the feature sets the tests negotiate.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "device/rng/rng.hpp"
#include "frontend_fake.hpp"
#include "vring/features.hpp"

namespace vireo::test {

inline constexpr std::uint64_t kBaseFeatures =
    vring::feature_bit(vring::kFVersion1) | vring::feature_bit(vring::kFProtocolFeatures);
inline constexpr std::uint64_t kPacked = vring::feature_bit(vring::kFRingPacked);
inline constexpr std::uint64_t kEventIdx = vring::feature_bit(vring::kFEventIdx);

struct RngRig {
  explicit RngRig(device::DaemonOptions opt = {}) : be(dev, opt), fe(be.take_frontend()) {}
  // Negotiates, shares memory and starts queue 0 (size 8 by default).
  void start(std::uint64_t features, std::uint16_t size = 8) {
    ASSERT_TRUE(fe.negotiate(features, kProtoAll));
    ASSERT_TRUE(fe.set_mem_table());
    ASSERT_TRUE(fe.setup_queue(0, size));
  }
  // A round trip: everything sent before has been handled (and logged) by the back-end.
  bool sync() { return fe.get_u64(proto::FrontendReq::get_features).has_value(); }

  device::rng::RngBackend dev;
  BackendThread be;
  FrontendFake fe;
};

// Captures stderr (where VIREO_LOG writes) for the lifetime of the object.
class LogCapture {
 public:
  LogCapture() { ::testing::internal::CaptureStderr(); }
  ~LogCapture() {
    if (!taken_) (void)::testing::internal::GetCapturedStderr();
  }
  std::string take() {
    taken_ = true;
    return ::testing::internal::GetCapturedStderr();
  }

 private:
  bool taken_ = false;
};

}  // namespace vireo::test
