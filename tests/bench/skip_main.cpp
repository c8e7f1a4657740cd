// main() for the bench tests that need something the machine may lack (DPDK, hugepages,
// qemu-storage-daemon): a test that calls GTEST_SKIP() makes the whole executable exit 77, which
// meson counts as skipped (not passed), after printing "SKIPPED: <reason>" for each one.
#include <gtest/gtest.h>

#include <cstdio>

namespace {

class SkipReasons : public ::testing::EmptyTestEventListener {
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.skipped()) std::printf("SKIPPED: %s\n", r.message());
  }
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::UnitTest::GetInstance()->listeners().Append(new SkipReasons);
  int rc = RUN_ALL_TESTS();
  if (rc == 0 && ::testing::UnitTest::GetInstance()->skipped_test_count() > 0) return 77;
  return rc;
}
