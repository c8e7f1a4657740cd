// `vireo bench report`: reads the JSON lines of loopback / compare-dpdk / blk / compare-blk
// (bench/results.hpp) and turns them into a chart and a summary.
//
//   std::ifstream in("results.jsonl");
//   auto r = build_report(in);                  // Expected<Report, std::string> ("line 7: ...")
//   write(render_svg(kReportTitle, r->panels, r->footnotes));
//
// Repeated runs of one configuration become one bar: the median, with a min..max whisker.
#pragma once

#include <istream>
#include <string>
#include <vector>

#include "base/expected.hpp"
#include "bench/chart.hpp"

namespace vireo::bench {

inline constexpr const char* kReportTitle = "Vireo throughput against its peers";

struct Report {
  std::vector<Panel> panels;  // net (if any loopback line), then blk (if any blk line)
  std::vector<std::string> footnotes;
  std::vector<std::string> ratio_lines;  // the compare "median" lines, as read
};

Expected<Report, std::string> build_report(std::istream& in);
// The report as one JSON document: {"bars":[...],"ratios":[...],"skipped":[...]}.
std::string report_json(const Report& r);

}  // namespace vireo::bench
