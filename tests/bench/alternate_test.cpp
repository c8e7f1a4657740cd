// The A/B alternation, ratios and medians, and the compare runs end to end with fake
// measurements standing in for Vireo, DPDK and qemu-storage-daemon.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "bench/alternate.hpp"
#include "bench/compare.hpp"
#include "base/json_line.hpp"

namespace vireo::bench {
namespace {

TEST(Median, OddEvenEmptyUnsorted) {
  EXPECT_EQ(median({}), 0);
  EXPECT_EQ(median({4}), 4);
  EXPECT_EQ(median({3, 1, 2}), 2);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(median({0.9, 1.1, 5.0, 0.8, 1.0}), 1.0);  // an outlier pair does not move it
}

TEST(Summarize, MinMaxAndPerPair) {
  auto s = summarize({1.2, 0.8, 1.0});
  EXPECT_EQ(s.median, 1.0);
  EXPECT_EQ(s.min, 0.8);
  EXPECT_EQ(s.max, 1.2);
  EXPECT_EQ(s.per_pair.size(), 3u);
  EXPECT_EQ(ratio(3, 0), 0);  // a side that measured nothing makes no ratio
  EXPECT_EQ(ratio(3, 2), 1.5);
}

TEST(Alternate, RunsABInTurnAndStopsAtTheFirstProblem) {
  std::string order;
  int calls_b = 0;
  auto a = [&]() -> Measured<int> {
    order += "A";
    return 1;
  };
  auto b = [&]() -> Measured<int> {
    order += "B";
    if (++calls_b == 3) return Unexpected(Problem::fail("broke"));
    return 2;
  };
  std::vector<int> seen;
  auto run = alternate<int>(5, a, b, [&](const Pair<int>& p) { seen.push_back(p.index); });
  ASSERT_FALSE(run);
  EXPECT_EQ(run.error().reason, "broke");
  EXPECT_EQ(order, "ABABAB");
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
  order.clear();
  calls_b = -100;
  auto ok = alternate<int>(3, a, b, [](const Pair<int>&) {});
  ASSERT_TRUE(ok);
  EXPECT_EQ(order, "ABABAB");
  EXPECT_EQ(ok->size(), 3u);
}

// Reads back what a compare run printed.
struct Captured {
  std::FILE* json = std::tmpfile();
  std::FILE* table = std::tmpfile();
  ~Captured() {
    std::fclose(json);
    std::fclose(table);
  }
  static std::vector<std::string> lines(std::FILE* f) {
    std::rewind(f);
    std::vector<std::string> out;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, f) != nullptr) out.emplace_back(buf);
    return out;
  }
  std::vector<JsonObject> objects() const {
    std::vector<JsonObject> out;
    for (auto& l : lines(json)) {
      auto o = parse_json_line(l);
      EXPECT_TRUE(o) << l;
      if (o) out.push_back(*o);
    }
    return out;
  }
};

LoopMeasure fake_loop(const char* impl, std::vector<double> pps, std::string& order) {
  auto i = std::make_shared<std::size_t>(0);
  return [=, &order](const LoopParams& p) -> Measured<LoopResult> {
    order += impl[0];
    LoopResult r;
    r.impl = impl;
    r.packed = p.packed;
    r.len = p.len;
    r.seconds = p.seconds;
    r.pps_driver_to_device = pps[*i % pps.size()];
    r.pps_device_to_driver = 2 * pps[*i % pps.size()];
    ++*i;
    return r;
  };
}

TEST(CompareDpdk, AlternatesAndReportsPerPairAndMedianRatios) {
  std::string order;
  // Vireo / DPDK per pair (driver->device): 0.5, 1.0, 2.0, 0.9, 1.1 -> median 1.0.
  auto vireo = fake_loop("vireo", {1, 2, 8, 0.9, 2.2}, order);
  auto dpdk = fake_loop("dpdk", {2, 2, 4, 1, 2}, order);
  LoopParams p;
  p.packed = true;
  p.len = 1518;
  Captured c;
  ASSERT_EQ(run_compare_dpdk(p, 5, vireo, dpdk, c.json, c.table), 0);
  EXPECT_EQ(order, "vdvdvdvdvd");
  auto objs = c.objects();
  ASSERT_EQ(objs.size(), 5u * 3 + 1);  // per pair: vireo, dpdk, ratios; then the median
  EXPECT_EQ(objs[0].string("impl"), "vireo");
  EXPECT_EQ(objs[1].string("impl"), "dpdk");
  EXPECT_EQ(objs[2].string("kind"), "pair");
  EXPECT_DOUBLE_EQ(objs[2].number("ratio_driver_to_device"), 0.5);
  EXPECT_DOUBLE_EQ(objs[8].number("ratio_driver_to_device"), 2.0);
  const JsonObject& m = objs.back();
  EXPECT_EQ(m.string("bench"), "compare-dpdk");
  EXPECT_EQ(m.string("kind"), "median");
  EXPECT_EQ(m.string("layout"), "packed");
  EXPECT_EQ(m.number("len"), 1518);
  EXPECT_DOUBLE_EQ(m.number("median_ratio_driver_to_device"), 1.0);
  EXPECT_DOUBLE_EQ(m.number("median_ratio_device_to_driver"), 1.0);  // both sides doubled
  EXPECT_DOUBLE_EQ(m.number("min_ratio_driver_to_device"), 0.5);
  EXPECT_DOUBLE_EQ(m.number("max_ratio_driver_to_device"), 2.0);
  EXPECT_EQ(m.number("pairs"), 5);
  auto table = Captured::lines(c.table);
  ASSERT_EQ(table.size(), 2u + 5 + 1);
  EXPECT_NE(table.back().find("median"), std::string::npos);
}

TEST(CompareDpdk, APeerSkipIsReportedNotFailed) {
  std::string order;
  auto vireo = fake_loop("vireo", {1}, order);
  LoopMeasure dpdk = [](const LoopParams&) -> Measured<LoopResult> { return Unexpected(Problem::skip("no hugepages")); };
  Captured c;
  EXPECT_EQ(run_compare_dpdk(LoopParams{}, 5, vireo, dpdk, c.json, c.table), 0);
  auto objs = c.objects();
  ASSERT_EQ(objs.size(), 1u);
  EXPECT_EQ(objs[0].string("skipped"), "no hugepages");
  LoopMeasure broken = [](const LoopParams&) -> Measured<LoopResult> { return Unexpected(Problem::fail("crashed")); };
  Captured c2;
  EXPECT_EQ(run_compare_dpdk(LoopParams{}, 5, vireo, broken, c2.json, c2.table), 1);
  EXPECT_TRUE(c2.objects().empty());
}

// A fake back-end that logs its start and stop.
class FakeBackend final : public BlkBackend {
 public:
  FakeBackend(std::string& log, std::string name) : log_(log), name_(std::move(name)) { log_ += "start " + name_ + ";"; }
  ~FakeBackend() override { log_ += "stop " + name_ + ";"; }

 private:
  std::string& log_;
  std::string name_;
};

TEST(CompareBlk, EachSideIsServedDrivenAndStoppedInTurn) {
  std::string log;
  auto side = [&](const char* name) {
    return BlkSide{name,
                   [&log, name](const BlkTarget& t) -> Measured<std::unique_ptr<BlkBackend>> {
                     EXPECT_EQ(t.image, "/dev/shm/img");
                     return std::unique_ptr<BlkBackend>(new FakeBackend(log, name));
                   },
                   std::string("/sock/") + name};
  };
  double iops = 100;
  BlkDrive drive = [&](const std::string& socket, const BlkParams& p) -> Measured<BlkResult> {
    log += "drive " + socket + ";";
    BlkResult r;
    r.rw = p.rw;
    r.iodepth = p.iodepth;
    r.iops = socket == "/sock/vireo" ? iops * 1.5 : iops;
    iops += 10;
    return r;
  };
  BlkParams p{"randwrite", 32, 4096, 1};
  Captured c;
  ASSERT_EQ(run_compare_blk(p, 5, side("vireo"), side("qsd"), drive, "/dev/shm/img", c.json, c.table), 0);
  std::string one = "start vireo;drive /sock/vireo;stop vireo;start qsd;drive /sock/qsd;stop qsd;";
  EXPECT_EQ(log, one + one + one + one + one);
  auto objs = c.objects();
  ASSERT_EQ(objs.size(), 16u);
  EXPECT_EQ(objs[0].string("impl"), "vireo");
  EXPECT_EQ(objs[1].string("impl"), "qsd");
  EXPECT_EQ(objs[0].string("bench"), "blk");
  EXPECT_EQ(objs.back().string("kind"), "median");
  EXPECT_EQ(objs.back().string("rw"), "randwrite");
  EXPECT_EQ(objs.back().number("iodepth"), 32);
  // pair i: vireo drives first at iops, then qsd at iops+10: the median ratio is that of pair 3.
  EXPECT_NEAR(objs.back().number("median_ratio_iops"), 1.5 * 140 / 150, 1e-9);
}

}  // namespace
}  // namespace vireo::bench
