// JSON lines in and out, the SVG writer (well-formed XML, one bar per result) and the report
// built from the lines the bench commands print.
#include <gtest/gtest.h>

#include <sstream>

#include "bench/chart.hpp"
#include "base/json_line.hpp"
#include "bench/report.hpp"
#include "bench/results.hpp"
#include "xml_check.hpp"

namespace vireo::bench {
namespace {

using test::xml_problem;

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

TEST(JsonLine, WritesAndReadsBack) {
  std::string line = JsonLine().str("impl", "d\"p\\dk\n").num("pps", 3148598.25).num("r", 0.93).boolean("ei", false)
                         .integer("len", 1518).text();
  auto o = parse_json_line(line);
  ASSERT_TRUE(o) << o.error();
  EXPECT_EQ(o->string("impl"), "d\"p\\dk\n");
  EXPECT_NEAR(o->number("pps"), 3148598.25, 0.1);
  EXPECT_DOUBLE_EQ(o->number("r"), 0.93);
  EXPECT_FALSE(o->flag("ei", true));
  EXPECT_EQ(o->number("len"), 1518);
  EXPECT_EQ(o->number("missing", -1), -1);
  EXPECT_EQ(o->string("pps", "fallback"), "fallback");  // wrong type
  auto again = parse_json_line(to_json_text(*o));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->string("impl"), o->string("impl"));
}

TEST(JsonLine, RejectsWhatIsNotOneFlatObject) {
  EXPECT_FALSE(parse_json_line(""));
  EXPECT_FALSE(parse_json_line("{\"a\":1"));
  EXPECT_FALSE(parse_json_line("{\"a\":1} x"));
  EXPECT_FALSE(parse_json_line("{\"a\":{\"b\":1}}"));
  EXPECT_FALSE(parse_json_line("{\"a\":[1]}"));
  EXPECT_FALSE(parse_json_line("{\"a\":12abc}"));
  EXPECT_FALSE(parse_json_line("{a:1}"));
  auto e = parse_json_line("{\"a\":{}}");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().find("nested"), std::string::npos);
  EXPECT_TRUE(parse_json_line(" { } "));
  EXPECT_TRUE(parse_json_line("{\"n\":null,\"x\":-1.5e3}"));
}

TEST(XmlCheck, CatchesBrokenDocuments) {
  EXPECT_EQ(xml_problem("<svg><rect x=\"1\"/><text>a &amp; b</text></svg>"), "");
  EXPECT_NE(xml_problem("<svg><rect x=\"1\"></svg>"), "");
  EXPECT_NE(xml_problem("<svg><text>a & b</text></svg>"), "");
  EXPECT_NE(xml_problem("<svg><rect x=1/></svg>"), "");
  EXPECT_NE(xml_problem("<svg><rect x=\"1\" x=\"2\"/></svg>"), "");
  EXPECT_NE(xml_problem("<svg/><svg/>"), "");
  EXPECT_NE(xml_problem("<svg><text>a</svg></text>"), "");
}

Panel sample_panel(int groups, int bars_per_group) {
  Panel p{"Net <loop> & co", "Mpps", 1e6, {}};
  for (int g = 0; g < groups; ++g) {
    Group group{"group \"" + std::to_string(g) + "\"", g % 2 ? "vireo/dpdk: 0.930 | 0.880" : "", {}};
    for (int b = 0; b < bars_per_group; ++b)
      group.bars.push_back(Bar{"series <" + std::to_string(b) + ">", 1e6 * (g + 1) * (b + 1), 0.9e6, 1.1e6 * (g + 1) * (b + 1), 3});
    p.groups.push_back(group);
  }
  return p;
}

TEST(Svg, WellFormedWithOneBarPerResult) {
  Panel blk{"Block", "kIOPS", 1e3, {{"randread, iodepth 1", "", {{"vireo", 123456, 0, 0, 1}, {"qsd", 99999, 0, 0, 1}}}}};
  std::string svg = render_svg("Title & <more>", {sample_panel(3, 4), blk}, {"skipped: dpdk \"x\" <y>"});
  EXPECT_EQ(xml_problem(svg), "") << svg;
  EXPECT_EQ(count(svg, "<rect class=\"bar\""), 3u * 4 + 2);
  EXPECT_EQ(count(svg, "class=\"value\""), 3u * 4 + 2);  // a value on every bar
  EXPECT_NE(svg.find("Title &amp; &lt;more&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">Mpps</text>"), std::string::npos);
  EXPECT_NE(svg.find(">kIOPS</text>"), std::string::npos);
  EXPECT_NE(svg.find(">123</text>"), std::string::npos);  // 123456 IOPS shown as 123 kIOPS
  EXPECT_NE(svg.find("vireo/dpdk: 0.930 | 0.880"), std::string::npos);
  EXPECT_EQ(count(svg, "class=\"legend\""), 4u + 2);
  EXPECT_EQ(count(svg, "class=\"group\""), 3u + 1);
}

TEST(Svg, BarsAreScaledToTheAxis) {
  Panel p{"t", "Mpps", 1e6, {{"g", "", {{"a", 4e6, 0, 0, 1}, {"b", 2e6, 0, 0, 1}}}}};
  std::string svg = render_svg("t", {p}, {});
  auto height_of = [&](const std::string& series) {
    std::size_t at = svg.find("data-series=\"" + series + "\"");
    std::size_t h = svg.find("height=\"", at) + 8;
    return std::stod(svg.substr(h, svg.find('"', h) - h));
  };
  EXPECT_NEAR(height_of("a"), 2 * height_of("b"), 0.2);
  EXPECT_EQ(xml_problem(render_svg("empty", {}, {})), "");
}

constexpr const char* kResults = R"({"bench":"loopback","impl":"dpdk","layout":"split","event_idx":false,"len":64,"seconds":2,"pps_driver_to_device":3000000,"pps_device_to_driver":3100000,"pair":1}
{"bench":"loopback","impl":"vireo","layout":"split","event_idx":true,"len":64,"seconds":2,"pps_driver_to_device":2700000,"pps_device_to_driver":2800000,"pair":1}
{"bench":"loopback","impl":"dpdk","layout":"split","event_idx":false,"len":64,"seconds":2,"pps_driver_to_device":2000000,"pps_device_to_driver":2100000,"pair":2}
{"bench":"loopback","impl":"dpdk","layout":"split","event_idx":false,"len":64,"seconds":2,"pps_driver_to_device":2500000,"pps_device_to_driver":2600000,"pair":3}
{"bench":"compare-dpdk","kind":"pair","layout":"split","event_idx":true,"len":64,"pair":1,"ratio_driver_to_device":0.9,"ratio_device_to_driver":0.9}
{"bench":"compare-dpdk","kind":"median","layout":"split","event_idx":true,"len":64,"median_ratio_driver_to_device":0.93,"min_ratio_driver_to_device":0.9,"max_ratio_driver_to_device":1,"median_ratio_device_to_driver":0.88,"min_ratio_device_to_driver":0.8,"max_ratio_device_to_driver":0.9,"pairs":5}

{"bench":"loopback","impl":"dpdk","layout":"packed","event_idx":false,"len":1518,"seconds":2,"pps_driver_to_device":2200000,"pps_device_to_driver":2200000}
{"bench":"blk","impl":"qsd","rw":"randread","iodepth":32,"block_size":4096,"seconds":2,"iops":200000}
{"bench":"blk","impl":"vireo","rw":"randread","iodepth":32,"block_size":4096,"seconds":2,"iops":300000}
{"bench":"compare-blk","kind":"median","rw":"randread","iodepth":32,"median_ratio_iops":1.5,"min_ratio_iops":1.4,"max_ratio_iops":1.6,"pairs":5}
{"bench":"loopback","impl":"dpdk","layout":"packed","len":64,"skipped":"only 3 free 2 MiB hugepages"}
)";

TEST(Report, AggregatesRunsIntoBarsWithRatiosAndSkips) {
  std::istringstream in(kResults);
  auto r = build_report(in);
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(r->panels.size(), 2u);
  const Panel& net = r->panels[0];
  ASSERT_EQ(net.groups.size(), 2u);  // 64 B split, 1518 B packed
  EXPECT_EQ(net.groups[0].label, "64 B, split");
  EXPECT_EQ(net.groups[1].label, "1518 B, packed");
  ASSERT_EQ(net.groups[0].bars.size(), 4u);  // vireo and dpdk, two directions each
  EXPECT_EQ(net.groups[0].bars[0].series, "vireo, event_idx on: driver -> device");
  const Bar& dpdk_out = net.groups[0].bars[2];
  EXPECT_EQ(dpdk_out.series, "dpdk, event_idx off: driver -> device");
  EXPECT_EQ(dpdk_out.runs, 3);
  EXPECT_EQ(dpdk_out.value, 2500000);  // the median of 3.0, 2.0, 2.5 M
  EXPECT_EQ(dpdk_out.min, 2000000);
  EXPECT_EQ(dpdk_out.max, 3000000);
  EXPECT_EQ(net.groups[0].note, "vireo/dpdk: 0.930 | 0.880");
  EXPECT_EQ(net.groups[1].note, "");
  const Panel& blk = r->panels[1];
  ASSERT_EQ(blk.groups.size(), 1u);
  ASSERT_EQ(blk.groups[0].bars.size(), 2u);
  EXPECT_EQ(blk.groups[0].bars[0].series, "vireo");
  EXPECT_EQ(blk.groups[0].note, "vireo/qsd median: 1.500");
  ASSERT_EQ(r->footnotes.size(), 1u);
  EXPECT_NE(r->footnotes[0].find("only 3 free"), std::string::npos);
  EXPECT_EQ(r->ratio_lines.size(), 2u);
  std::string svg = render_svg(kReportTitle, r->panels, r->footnotes);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(count(svg, "<rect class=\"bar\""), 4u + 2 + 2);
  std::string json = report_json(*r);
  EXPECT_EQ(count(json, "\"series\""), 8u);
  EXPECT_NE(json.find("\"median_ratio_iops\":1.5"), std::string::npos);
}

TEST(Report, NamesTheLineThatIsNotJson) {
  std::istringstream in(std::string(kResults) + "{\"bench\":\"loopback\",\n");
  auto r = build_report(in);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rfind("line 13:", 0), 0u) << r.error();
}

TEST(Results, LoopLinesCarryWhatTheReportReads) {
  LoopResult l{"dpdk", true, false, 1518, 2.0, 2.2e6, 2.1e6};
  auto o = parse_json_line(loop_json(l, 4).text());
  ASSERT_TRUE(o);
  EXPECT_EQ(o->string("bench"), "loopback");
  EXPECT_EQ(o->string("impl"), "dpdk");
  EXPECT_EQ(o->string("layout"), "packed");
  EXPECT_FALSE(o->flag("event_idx", true));
  EXPECT_EQ(o->number("len"), 1518);
  EXPECT_EQ(o->number("pps_driver_to_device"), 2.2e6);
  EXPECT_EQ(o->number("pps_device_to_driver"), 2.1e6);
  EXPECT_EQ(o->number("pair"), 4);
  auto s = parse_json_line(loop_skip_json("dpdk", LoopParams{}, "why").text());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->string("skipped"), "why");
}

}  // namespace
}  // namespace vireo::bench
