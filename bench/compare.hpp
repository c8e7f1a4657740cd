// The compare runs behind `vireo bench compare-dpdk` and `vireo bench compare-blk`, with the
// measurements passed in (the commands pass Vireo's hooks and the DPDK / qsd peers; tests pass
// fakes). Both alternate A (Vireo) and B (the peer) for N pairs, print each measurement and each
// pair's ratio as JSON lines on `json_out` (null: none), a human table on `table_out`, and end
// with the median ratio line. Returns the command's exit status: 0, 1 after a failed
// measurement, or 0 after a skip (printed as a "skipped" line).
#pragma once

#include <cstdio>

#include "bench/peer.hpp"

namespace vireo::bench {

int run_compare_dpdk(const LoopParams& p, int pairs, const LoopMeasure& vireo, const LoopMeasure& dpdk,
                     std::FILE* json_out, std::FILE* table_out);

// One side of compare-blk: serve `target`, then drive it; `impl` names it in the results.
struct BlkSide {
  std::string impl;
  BlkBackendStart start;
  std::string socket;
};

int run_compare_blk(const BlkParams& p, int pairs, const BlkSide& vireo, const BlkSide& peer, const BlkDrive& drive,
                    const std::string& image, std::FILE* json_out, std::FILE* table_out);

}  // namespace vireo::bench
