// `vireo driver net` and `vireo bench blk`: command-line front-ends of the drivers (registered in
// cli/commands.hpp). Option parsing and printing only; the work is in net_traffic / blk.
#pragma once

namespace vireo::driver {

int net_main(int argc, char** argv, int first);        // vireo driver net
int blk_bench_main(int argc, char** argv, int first);  // vireo bench blk

}  // namespace vireo::driver
