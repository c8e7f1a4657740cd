#include "bench/results.hpp"

#include <cstdio>

namespace vireo::bench {

JsonLine loop_json(const LoopResult& r, int pair) {
  JsonLine j;
  j.str("bench", "loopback").str("impl", r.impl).str("layout", layout_name(r.packed)).boolean("event_idx", r.event_idx);
  j.boolean("in_order", r.in_order).integer("len", r.len).num("seconds", r.seconds);
  j.num("pps_driver_to_device", r.pps_driver_to_device).num("pps_device_to_driver", r.pps_device_to_driver);
  if (r.kicks_per_packet >= 0) {
    j.boolean("busy_poll", r.busy_poll).num("kicks_per_packet", r.kicks_per_packet);
    j.num("calls_per_packet", r.calls_per_packet);
  }
  if (r.packets != 0) j.integer("packets", static_cast<long long>(r.packets));
  if (pair > 0) j.integer("pair", pair);
  return j;
}

JsonLine loop_skip_json(const std::string& impl, const LoopParams& p, const std::string& reason) {
  JsonLine j;
  j.str("bench", "loopback").str("impl", impl).str("layout", layout_name(p.packed)).integer("len", p.len);
  j.str("skipped", reason);
  return j;
}

JsonLine blk_json(const BlkResult& r, int pair) {
  JsonLine j;
  j.str("bench", "blk").str("impl", r.impl).str("rw", r.rw).integer("iodepth", r.iodepth);
  j.integer("block_size", r.block_size).num("seconds", r.seconds).num("iops", r.iops);
  if (pair > 0) j.integer("pair", pair);
  return j;
}

JsonLine blk_skip_json(const std::string& impl, const BlkParams& p, const std::string& reason) {
  JsonLine j;
  j.str("bench", "blk").str("impl", impl).str("rw", p.rw).integer("iodepth", p.iodepth).str("skipped", reason);
  return j;
}

JsonLine compare_dpdk_json(const char* kind, const LoopParams& p) {
  JsonLine j;
  j.str("bench", "compare-dpdk").str("kind", kind).str("layout", layout_name(p.packed));
  j.boolean("event_idx", p.event_idx).integer("len", p.len);
  return j;
}

JsonLine compare_blk_json(const char* kind, const BlkParams& p) {
  JsonLine j;
  j.str("bench", "compare-blk").str("kind", kind).str("rw", p.rw).integer("iodepth", p.iodepth);
  return j;
}

void add_summary(JsonLine& line, const std::string& metric, const RatioSummary& s) {
  line.num("median_ratio_" + metric, s.median).num("min_ratio_" + metric, s.min).num("max_ratio_" + metric, s.max);
  line.integer("pairs", static_cast<long long>(s.per_pair.size()));
}

std::string loop_row(const LoopResult& r) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%-6s %-6s event_idx=%-3s len=%-5u  d->D %7.3f Mpps  D->d %7.3f Mpps",
                r.impl.c_str(), layout_name(r.packed), r.event_idx ? "on" : "off", r.len, r.pps_driver_to_device / 1e6,
                r.pps_device_to_driver / 1e6);
  std::string row = buf;
  if (r.kicks_per_packet >= 0) {
    std::snprintf(buf, sizeof buf, "  busy_poll=%s kicks/pkt %.4f calls/pkt %.4f", r.busy_poll ? "on" : "off",
                  r.kicks_per_packet, r.calls_per_packet);
    row += buf;
  }
  return row;
}

}  // namespace vireo::bench
