// The table of `vireo` subcommands. Each entry names a function in the layer that implements it;
// the CLI itself holds no logic. Add a command by adding a line here.
#pragma once

#include "bench/bench.hpp"
#include "bench/peer_commands.hpp"
#include "device/blk/blk_backend.hpp"
#include "device/net/net_backend.hpp"
#include "device/rng/rng.hpp"
#include "driver/tools.hpp"

namespace vireo::cli {

// Runs a subcommand: argv[first..argc) are its options.
using CommandFn = int (*)(int argc, char** argv, int first);

struct Command {
  const char* words;    // "bench ring": the words that select it
  const char* summary;  // one line for `vireo --help`
  CommandFn run;
};

int version_main(int argc, char** argv, int first);

inline constexpr Command kCommands[] = {
    {"version", "print the version and exit", &version_main},
    {"bench ring", "ring cost on plain buffers: split/packed, EVENT_IDX on/off, 1 or 2 threads",
     &bench::ring_main},
    {"net", "virtio-net vhost-user back-end (ports: loopback, sink, source, responder, tap, peer)",
     &device::net::net_main},
    {"blk", "virtio-blk vhost-user back-end on io_uring (--image FILE)", &device::blk::blk_main},
    {"rng", "virtio-rng vhost-user back-end (--socket-path PATH [--client])",
     &device::rng::rng_main},
    {"driver net", "virtio-net driver: traffic generator/checker against a vhost-user net back-end",
     &driver::net_main},
    {"bench blk", "virtio-blk driver: random read/write IOPS against a vhost-user blk back-end",
     &driver::blk_bench_main},
    {"bench loopback", "one-core net loop, driver + device: --peer vireo|dpdk, packets/s per direction",
     &bench::loopback_main},
    {"bench compare-dpdk", "Vireo vs DPDK (vhost + virtio-user PMDs) loop, alternated pairs, median ratios",
     &bench::compare_dpdk_main},
    {"bench compare-blk", "Vireo blk back-end vs qemu-storage-daemon, alternated pairs, median IOPS ratio",
     &bench::compare_blk_main},
    {"bench report", "JSON lines of the benchmarks -> SVG bar chart (+ JSON summary)", &bench::report_main},
};

}  // namespace vireo::cli
