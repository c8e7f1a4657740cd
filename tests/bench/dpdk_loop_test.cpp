// The real DPDK loop (suite dpdk): testpmd with the vhost PMD and the virtio-user PMD on one
// forwarding core for 1 s, split and packed; both directions must move packets. Skips (exit 77)
// with the reason when testpmd, stdbuf, hugepages or a second CPU are missing.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "bench/testpmd.hpp"

namespace vireo::bench {
namespace {

void run_loop(bool packed, std::uint32_t len) {
  LoopParams p;
  p.packed = packed;
  p.len = len;
  p.seconds = 1;
  auto r = measure_dpdk_loop(p);
  if (!r && r.error().skipped()) GTEST_SKIP() << r.error().reason;
  ASSERT_TRUE(r) << r.error().reason;
  EXPECT_EQ(r->impl, "dpdk");
  EXPECT_EQ(r->packed, packed);
  EXPECT_EQ(r->len, len);
  EXPECT_FALSE(r->event_idx);
  EXPECT_GT(r->pps_driver_to_device, 0);
  EXPECT_GT(r->pps_device_to_driver, 0);
  EXPECT_GE(r->seconds, 0.9);
  std::printf("dpdk %s len=%u: %.3f / %.3f Mpps\n", packed ? "packed" : "split", len, r->pps_driver_to_device / 1e6,
              r->pps_device_to_driver / 1e6);
}

// Nothing of a run stays behind: DPDK's runtime dir and hugepage files of our prefixes.
void expect_no_leftovers() {
  std::string ours = "vireo-bench-" + std::to_string(::getpid()) + "-";
  std::error_code ec;
  for (const char* dir : {"/var/run/dpdk", "/dev/hugepages"})
    for (const auto& e : std::filesystem::directory_iterator(dir, ec))
      EXPECT_FALSE(e.path().filename().string().starts_with(ours)) << e.path();
}

TEST(DpdkLoop, Split) {
  run_loop(false, 64);
  expect_no_leftovers();
}

TEST(DpdkLoop, Packed) {
  run_loop(true, 64);
  expect_no_leftovers();
}

TEST(DpdkLoop, Packed1518) { run_loop(true, 1518); }

}  // namespace
}  // namespace vireo::bench
