// Entry points of the `vireo bench ...` subcommands. Each prints a human table, or one JSON line
// per result with --json.
#pragma once

namespace vireo::bench {

// vireo bench ring: driver and device halves of one ring over a plain buffer (vring only).
int ring_main(int argc, char** argv, int first);

}  // namespace vireo::bench
