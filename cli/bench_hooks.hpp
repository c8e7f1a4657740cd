// Plugs Vireo's own side into the benchmark commands (bench/peer.hpp hooks). The CLI is the one
// place that links bench/, device/ and driver/ together.
#pragma once

namespace vireo::cli {

// `self` is this program (/proc/self/exe): Vireo's blk back-end and blk driver run as child
// processes of it (`vireo blk`, `vireo bench blk --json`), as a user runs them, so the comparison
// with qemu-storage-daemon is like for like.
void install_bench_hooks(const char* self);

}  // namespace vireo::cli
