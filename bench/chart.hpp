// A hand-written SVG bar chart (no library): stacked panels, each with groups of bars, a y axis
// with ticks and a label, the value on each bar, a min..max whisker where a bar aggregates
// several runs, a note line under each group (the median ratios), and a legend per panel.
//
//   Panel net{"Net loopback, one core", "Mpps", 1e6, {}};
//   net.groups.push_back({"64 B split", "vireo/dpdk 0.93", {{"dpdk: driver to device", 3.1e6, 3.0e6, 3.2e6, 5}}});
//   std::string svg = render_svg("Vireo vs peers", {net}, {"skipped: ..."});
//
// Every bar is one <rect class="bar" data-series="..." data-value="..."/>.
#pragma once

#include <string>
#include <vector>

namespace vireo::bench {

struct Bar {
  std::string series;  // legend entry; equal series share a colour across groups
  double value = 0;    // the bar's height (a median over runs)
  double min = 0;      // whisker, drawn when runs > 1
  double max = 0;
  int runs = 1;
};

struct Group {
  std::string label;  // under the x axis
  std::string note;   // second line under the label (e.g. median ratios); may be empty
  std::vector<Bar> bars;
};

struct Panel {
  std::string title;
  std::string unit;    // y axis label, e.g. "Mpps"
  double scale = 1;    // displayed value = value / scale
  std::vector<Group> groups;
  std::string subtitle;  // one smaller line under the title (what the notes under the groups mean)
};

std::string render_svg(const std::string& title, const std::vector<Panel>& panels,
                       const std::vector<std::string>& footnotes);

// Escapes & < > " ' for XML text and attribute values.
std::string xml_escape(const std::string& s);

}  // namespace vireo::bench
