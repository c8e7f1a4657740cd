#include "cli/bench_hooks.hpp"

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/child_process.hpp"
#include "base/json_line.hpp"
#include "bench/peer.hpp"
#include "bench/qsd.hpp"
#include "cli/bench_loop.hpp"

namespace vireo::cli {
namespace {

using bench::BlkParams;
using bench::BlkResult;
using bench::BlkTarget;
using bench::Measured;
using bench::Problem;

std::string g_self;

Measured<std::unique_ptr<bench::BlkBackend>> start_vireo_blk(const BlkTarget& t) {
  auto child = bench::ChildBackend::start(
      {g_self, "blk", "--socket-path", t.socket, "--image", t.image, "--queues", std::to_string(t.num_queues)},
      t.socket, t.socket + ".log", std::chrono::seconds(10));
  if (!child) return vireo::Unexpected<Problem>(child.error());
  return std::unique_ptr<bench::BlkBackend>(std::move(*child));
}

Measured<BlkResult> drive_blk(const std::string& socket, const BlkParams& p) {
  bench::ChildProcess::Options o;
  o.argv = {g_self, "bench", "blk", "--socket-path", socket, "--rw", p.rw, "--bs", std::to_string(p.block_size),
            "--iodepth", std::to_string(p.iodepth), "--seconds", std::to_string(p.seconds), "--json"};
  o.pipe_stdout = true;
  o.stderr_path = socket + ".driver.log";
  auto child = bench::ChildProcess::spawn(o);
  if (!child) return vireo::Unexpected<Problem>(Problem::fail("vireo bench blk: " + child.error()));
  const auto limit = std::chrono::milliseconds(static_cast<long>(p.seconds * 1000) + 30'000);
  auto line = child->read_until("\n", limit);
  const std::optional<int> rc = child->wait_exit(std::chrono::seconds(5));
  if (!line || line->find('{') == std::string::npos)
    return vireo::Unexpected<Problem>(Problem::fail("vireo bench blk printed no result (exit " +
                                                    std::to_string(rc.value_or(-1)) + "; see " + o.stderr_path + ")"));
  auto obj = vireo::parse_json_line(line->substr(line->find('{')));
  if (!obj) return vireo::Unexpected<Problem>(Problem::fail("vireo bench blk: " + obj.error()));
  BlkResult r;
  r.rw = obj->string("rw", p.rw);
  r.iodepth = static_cast<std::uint32_t>(obj->number("iodepth", p.iodepth));
  r.block_size = static_cast<std::uint32_t>(obj->number("bs", p.block_size));
  r.seconds = obj->number("seconds", p.seconds);
  r.iops = obj->number("iops");
  return r;
}

}  // namespace

void install_bench_hooks(const char* self) {
  std::error_code ec;
  const std::filesystem::path resolved = std::filesystem::read_symlink(self, ec);
  g_self = ec ? std::string(self) : resolved.string();
  bench::hooks().vireo_blk_backend = &start_vireo_blk;
  bench::hooks().blk_driver = &drive_blk;
  bench::hooks().vireo_loop = &run_vireo_loopback;
}

}  // namespace vireo::cli
