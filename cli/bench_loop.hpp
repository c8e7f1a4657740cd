// The one-core Vireo loop behind `vireo bench loopback --peer vireo` and `vireo bench
// compare-dpdk` (bench::hooks().vireo_loop): Vireo's net driver and net back-end in one process,
// one thread, a real vhost-user socket (see bench_loop.cpp).
#pragma once

#include "bench/peer.hpp"

namespace vireo::cli {

bench::Measured<bench::LoopResult> run_vireo_loopback(const bench::LoopParams& p);

}  // namespace vireo::cli
