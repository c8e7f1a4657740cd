// A/B alternation for the compare commands: measure A, then B, then A, then B ... (N pairs), so a
// slow phase of a shared, CPU-stolen machine hits both sides alike; then the ratio A/B of each
// pair and their median. Shared by compare-dpdk (Vireo vs DPDK) and compare-blk (Vireo vs qsd).
//
//   auto pairs = alternate<LoopResult>(5, measure_vireo, measure_dpdk, [](const Pair<LoopResult>& p) {
//     print(p);   // as each pair completes
//   });
//   if (!pairs) return report(pairs.error());
//   auto s = summarize(ratios(*pairs, [](const LoopResult& r) { return r.pps_driver_to_device; }));
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "bench/peer.hpp"

namespace vireo::bench {

template <class R>
struct Pair {
  int index = 0;  // 1-based
  R a;
  R b;
};

// Runs n pairs, A first in each. Stops at the first Problem of either side and returns it.
template <class R, class MeasureA, class MeasureB, class OnPair>
Measured<std::vector<Pair<R>>> alternate(int n, MeasureA&& measure_a, MeasureB&& measure_b, OnPair&& on_pair) {
  std::vector<Pair<R>> out;
  for (int i = 1; i <= n; ++i) {
    Measured<R> a = measure_a();
    if (!a) return Unexpected(a.error());
    Measured<R> b = measure_b();
    if (!b) return Unexpected(b.error());
    out.push_back(Pair<R>{i, std::move(*a), std::move(*b)});
    on_pair(out.back());
  }
  return out;
}

// The median of values (the mean of the middle two for an even count); 0 for none.
double median(std::vector<double> values);

struct RatioSummary {
  std::vector<double> per_pair;
  double median = 0;
  double min = 0;
  double max = 0;
};

// a/b; 0 when b is 0 (a side that measured nothing makes no ratio).
inline double ratio(double a, double b) { return b > 0 ? a / b : 0; }

template <class R, class Metric>
std::vector<double> ratios(const std::vector<Pair<R>>& pairs, Metric&& metric) {
  std::vector<double> out;
  out.reserve(pairs.size());
  for (const auto& p : pairs) out.push_back(ratio(metric(p.a), metric(p.b)));
  return out;
}

RatioSummary summarize(std::vector<double> per_pair);

}  // namespace vireo::bench
