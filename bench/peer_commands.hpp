// Entry points of the peer benchmark subcommands (see bench/peer.hpp for how Vireo's side plugs
// in). Each prints a human table, or JSON lines with --json.
#pragma once

namespace vireo::bench {

// vireo bench loopback: one-core net loop of a driver and a device (--peer vireo|dpdk).
int loopback_main(int argc, char** argv, int first);
// vireo bench compare-dpdk: Vireo's loop against DPDK's, alternated, median ratios.
int compare_dpdk_main(int argc, char** argv, int first);
// vireo bench compare-blk: Vireo's blk back-end against qemu-storage-daemon, alternated.
int compare_blk_main(int argc, char** argv, int first);
// vireo bench report: JSON lines of the above -> SVG bar chart (+ JSON summary).
int report_main(int argc, char** argv, int first);

}  // namespace vireo::bench
