#include "bench/report.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <tuple>

#include "base/options.hpp"
#include "bench/alternate.hpp"
#include "bench/peer_commands.hpp"
#include "base/json_line.hpp"

namespace vireo::bench {
namespace {

struct Samples {
  std::vector<double> values;
  Bar bar(const std::string& series) const {
    Bar b;
    b.series = series;
    b.value = median(values);
    b.min = *std::min_element(values.begin(), values.end());
    b.max = *std::max_element(values.begin(), values.end());
    b.runs = static_cast<int>(values.size());
    return b;
  }
};

// Vireo first, then DPDK, then qsd, then anything else by name.
int impl_rank(const std::string& impl) { return impl == "vireo" ? 0 : impl == "dpdk" ? 1 : impl == "qsd" ? 2 : 3; }

std::string f3(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

class Builder {
 public:
  Expected<void, std::string> add(const JsonObject& o) {
    std::string bench = o.string("bench");
    if (o.has("skipped")) {
      skipped_.push_back("skipped: " + bench + " " + o.string("impl") + " " + o.string("layout") + o.string("rw") + ": " +
                         o.string("skipped"));
    } else if (bench == "loopback") {
      add_loopback(o);
    } else if (bench == "blk") {
      auto& s = blk_[{o.string("rw"), int(o.number("iodepth"))}][{impl_rank(o.string("impl")), o.string("impl")}];
      s.values.push_back(o.number("iops"));
    } else if ((bench == "compare-dpdk" || bench == "compare-blk") && o.string("kind") == "median") {
      add_median(o, bench);
    }
    return {};
  }

  Report finish() {
    Report r;
    if (!net_.empty()) r.panels.push_back(net_panel());
    if (!blk_.empty()) r.panels.push_back(blk_panel());
    r.footnotes = skipped_;
    r.ratio_lines = ratio_lines_;
    return r;
  }

 private:
  using NetGroup = std::tuple<int, int>;                     // len, packed
  using NetSeries = std::tuple<int, std::string, int, int>;  // impl rank, impl, !event_idx, direction
  using BlkGroup = std::tuple<std::string, int>;             // rw, iodepth
  using BlkSeries = std::tuple<int, std::string>;

  void add_loopback(const JsonObject& o) {
    NetGroup g{int(o.number("len")), o.string("layout") == "packed"};
    std::string impl = o.string("impl");
    int no_ei = o.flag("event_idx") ? 0 : 1;
    net_[g][{impl_rank(impl), impl, no_ei, 0}].values.push_back(o.number("pps_driver_to_device"));
    net_[g][{impl_rank(impl), impl, no_ei, 1}].values.push_back(o.number("pps_device_to_driver"));
  }

  void add_median(const JsonObject& o, const std::string& bench) {
    ratio_lines_.push_back(to_json_text(o));
    if (bench == "compare-dpdk") {
      NetGroup g{int(o.number("len")), o.string("layout") == "packed"};
      net_notes_[g].push_back("vireo/dpdk" + std::string(o.flag("event_idx") ? "" : " (no ei)") + ": " +
                              f3(o.number("median_ratio_driver_to_device")) + " | " +
                              f3(o.number("median_ratio_device_to_driver")));
    } else {
      blk_notes_[{o.string("rw"), int(o.number("iodepth"))}].push_back("vireo/qsd median: " +
                                                                        f3(o.number("median_ratio_iops")));
    }
  }

  static std::string join(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
    return out;
  }

  Panel net_panel() const {
    Panel p{"Net loopback on one core: packets/s per direction", "Mpps", 1e6, {},
            "under each group: median Vireo/DPDK ratio of alternated runs, driver->device | device->driver"};
    for (const auto& [g, series] : net_) {
      Group group{std::to_string(std::get<0>(g)) + " B, " + (std::get<1>(g) ? "packed" : "split"), "", {}};
      if (auto it = net_notes_.find(g); it != net_notes_.end()) group.note = join(it->second);
      for (const auto& [k, s] : series) {
        std::string name = std::get<1>(k) + ", event_idx " + (std::get<2>(k) == 0 ? "on" : "off") + ": " +
                           (std::get<3>(k) == 0 ? "driver -> device" : "device -> driver");
        group.bars.push_back(s.bar(name));
      }
      p.groups.push_back(std::move(group));
    }
    return p;
  }

  Panel blk_panel() const {
    Panel p{"Block: IOPS, vireo blk vs qemu-storage-daemon", "kIOPS", 1e3, {},
            "same Vireo blk driver, same tmpfs image; under each group: median vireo/qsd ratio"};
    for (const auto& [g, series] : blk_) {
      Group group{std::get<0>(g) + ", iodepth " + std::to_string(std::get<1>(g)), "", {}};
      if (auto it = blk_notes_.find(g); it != blk_notes_.end()) group.note = join(it->second);
      for (const auto& [k, s] : series) group.bars.push_back(s.bar(std::get<1>(k)));
      p.groups.push_back(std::move(group));
    }
    return p;
  }

  std::map<NetGroup, std::map<NetSeries, Samples>> net_;
  std::map<NetGroup, std::vector<std::string>> net_notes_;
  std::map<BlkGroup, std::map<BlkSeries, Samples>> blk_;
  std::map<BlkGroup, std::vector<std::string>> blk_notes_;
  std::vector<std::string> skipped_;
  std::vector<std::string> ratio_lines_;
};

}  // namespace

Expected<Report, std::string> build_report(std::istream& in) {
  Builder b;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto o = parse_json_line(line);
    if (!o) return Unexpected("line " + std::to_string(number) + ": " + o.error());
    if (auto added = b.add(*o); !added) return Unexpected("line " + std::to_string(number) + ": " + added.error());
  }
  return b.finish();
}

std::string report_json(const Report& r) {
  std::string bars, ratios, skipped;
  for (const auto& p : r.panels) {
    for (const auto& g : p.groups) {
      for (const auto& b : g.bars) {
        JsonLine j;
        j.str("panel", p.unit == "Mpps" ? "net" : "blk").str("group", g.label).str("series", b.series);
        j.num("median", b.value).num("min", b.min).num("max", b.max).integer("runs", b.runs);
        bars += (bars.empty() ? "\n  " : ",\n  ") + j.text();
      }
    }
  }
  for (const auto& l : r.ratio_lines) ratios += (ratios.empty() ? "\n  " : ",\n  ") + l;
  for (const auto& s : r.footnotes) skipped += (skipped.empty() ? "\n  " : ",\n  ") + json_quote(s);
  return "{\"bars\": [" + bars + "],\n\"ratios\": [" + ratios + "],\n\"skipped\": [" + skipped + "]}\n";
}

int report_main(int argc, char** argv, int first) {
  OptionParser o("vireo bench report",
                 "Reads the JSON lines of the loopback/compare/blk benchmarks and writes an SVG bar chart (medians "
                 "over runs with min..max whiskers, median ratios under each group) and optionally a JSON summary.");
  auto& input = o.add("input", "", "JSON lines file (results.jsonl)");
  auto& svg = o.add("svg", "", "SVG file to write");
  auto& json = o.add("json", "", "also write the summary as JSON to this file");
  if (auto rc = o.parse(argc, argv, first)) return *rc;
  if (input.value.empty() || svg.value.empty()) {
    std::fprintf(stderr, "vireo bench report: --input and --svg are required\n");
    return 2;
  }
  std::ifstream in(input.value);
  if (!in) {
    std::fprintf(stderr, "vireo bench report: cannot read %s\n", input.value.c_str());
    return 1;
  }
  auto r = build_report(in);
  if (!r) {
    std::fprintf(stderr, "vireo bench report: %s: %s\n", input.value.c_str(), r.error().c_str());
    return 1;
  }
  if (r->panels.empty()) {
    std::fprintf(stderr, "vireo bench report: %s has no loopback or blk results to chart\n", input.value.c_str());
    return 1;
  }
  std::ofstream(svg.value) << render_svg(kReportTitle, r->panels, r->footnotes);
  if (!json.value.empty()) std::ofstream(json.value) << report_json(*r);
  std::printf("wrote %s (%zu panels)%s%s\n", svg.value.c_str(), r->panels.size(), json.value.empty() ? "" : " and ",
              json.value.c_str());
  return 0;
}

}  // namespace vireo::bench
