#include "bench/alternate.hpp"

namespace vireo::bench {

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  std::size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

RatioSummary summarize(std::vector<double> per_pair) {
  RatioSummary s;
  if (!per_pair.empty()) {
    s.median = median(per_pair);
    s.min = *std::min_element(per_pair.begin(), per_pair.end());
    s.max = *std::max_element(per_pair.begin(), per_pair.end());
  }
  s.per_pair = std::move(per_pair);
  return s;
}

}  // namespace vireo::bench
