// The JSON lines the peer benchmarks print, one object per line (read back by `vireo bench
// report`). Every line has "bench":
//   "loopback"       one net loop measurement: impl, layout, event_idx, len, queue_size, seconds,
//                    pps_driver_to_device, pps_device_to_driver [, pair]
//   "blk"            one blk measurement: impl (vireo|qsd), rw, iodepth, block_size, seconds, iops
//                    [, pair]
//   "compare-dpdk"   kind "pair" (ratio_driver_to_device, ratio_device_to_driver) or kind "median"
//                    (median_/min_/max_ratio_<direction>, pairs), with layout, event_idx, len
//   "compare-blk"    kind "pair" (ratio_iops) or "median" (median_/min_/max_ratio_iops, pairs),
//                    with rw, iodepth
// A measurement that could not run is {"bench":..., <its parameters>, "skipped": "<reason>"}.
#pragma once

#include <string>

#include "bench/alternate.hpp"
#include "base/json_line.hpp"
#include "bench/peer.hpp"

namespace vireo::bench {

inline const char* layout_name(bool packed) { return packed ? "packed" : "split"; }

JsonLine loop_json(const LoopResult& r, int pair = 0);
JsonLine loop_skip_json(const std::string& impl, const LoopParams& p, const std::string& reason);
JsonLine blk_json(const BlkResult& r, int pair = 0);
JsonLine blk_skip_json(const std::string& impl, const BlkParams& p, const std::string& reason);
// The loop parameters a compare-dpdk line is keyed by (the Vireo side's event_idx).
JsonLine compare_dpdk_json(const char* kind, const LoopParams& p);
JsonLine compare_blk_json(const char* kind, const BlkParams& p);
void add_summary(JsonLine& line, const std::string& metric, const RatioSummary& s);

// One human row: "dpdk   split  event_idx=off len=64    d->D  3.150 Mpps  D->d  3.148 Mpps".
std::string loop_row(const LoopResult& r);

}  // namespace vireo::bench
