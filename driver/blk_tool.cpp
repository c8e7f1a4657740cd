// vireo bench blk: random reads or writes at a fixed queue depth against a vhost-user blk back-end.
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "base/json_line.hpp"
#include "base/options.hpp"
#include "driver/blk.hpp"
#include "driver/tools.hpp"

namespace vireo::driver {
namespace {

struct BenchResult {
  std::uint64_t ios = 0, errors = 0, reconnects = 0;
  double seconds = 0;
};

// Keeps `depth` requests in flight (one buffer per slot) for `seconds`, then drains.
Result<BenchResult> run_bench(BlkDriver& blk, bool write, std::uint32_t bs, double seconds) {
  const std::uint64_t blocks = blk.capacity_bytes() / bs;
  if (blocks == 0) return error(Error::Kind::unsupported, "device smaller than one block");
  std::vector<std::span<std::byte>> bufs;
  for (std::uint16_t i = 0; i < blk.depth(); ++i) {
    auto b = blk.alloc_buffer(bs);
    if (!b) return Unexpected(b.error());
    for (std::size_t k = 0; k < b->size(); ++k) (*b)[k] = static_cast<std::byte>(k * 7 + i);
    bufs.push_back(*b);
  }
  std::mt19937_64 rng(42);
  std::vector<BlkRequest> batch;
  batch.reserve(blk.depth());
  std::vector<std::uint16_t> idle_bufs;
  for (std::uint16_t i = 0; i < blk.depth(); ++i) idle_bufs.push_back(i);
  std::vector<BlkCompletion> done(blk.depth());
  BenchResult r;
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  bool running = true;
  auto last_progress = start;
  while (running || blk.in_flight() != 0) {
    if (running && Clock::now() >= end) running = false;
    batch.clear();
    while (running && !idle_bufs.empty()) {
      const std::uint16_t b = idle_bufs.back();
      idle_bufs.pop_back();
      batch.push_back(BlkRequest{.op = write ? BlkOp::out : BlkOp::in,
                                 .sector = (rng() % blocks) * (bs / proto::blk::kSectorSize), .buf = bufs[b], .user = b});
    }
    if (!batch.empty()) {
      auto n = blk.submit(batch);
      if (!n) return Unexpected(n.error());
      for (std::size_t k = *n; k < batch.size(); ++k) idle_bufs.push_back(static_cast<std::uint16_t>(batch[k].user));
    }
    auto got = blk.poll(done);
    if (!got) return Unexpected(got.error());
    if (*got != 0) {
      last_progress = Clock::now();
    } else if (Clock::now() - last_progress > std::chrono::milliseconds(10)) {
      auto link = blk.poll_link();  // back-end gone? reconnect and resume the ring
      if (!link) return Unexpected(link.error());
      if (*link) ++r.reconnects, last_progress = Clock::now();
      if (Clock::now() - last_progress > std::chrono::seconds(10))
        return error(Error::Kind::device, "no completion for 10 s with " + std::to_string(blk.in_flight()) +
                                              " requests in flight");
    }
    for (std::size_t k = 0; k < *got; ++k) {
      if (done[k].status != proto::blk::kSOk) ++r.errors;
      else ++r.ios;
      idle_bufs.push_back(static_cast<std::uint16_t>(done[k].user));
    }
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

}  // namespace

int blk_bench_main(int argc, char** argv, int first) {
  OptionParser p("vireo bench blk --socket-path PATH",
                 "virtio-blk driver benchmark: random reads or writes at a fixed queue depth against a "
                 "vhost-user blk back-end (e.g. qemu-storage-daemon); busy-polls for completions.");
  auto& socket = p.add("socket-path", "", "back-end's vhost-user socket");
  auto& rw = p.add_choice("rw", {"randread", "randwrite"}, "randread", "randread | randwrite");
  auto& bs = p.add_u64("bs", 4096, "block size in bytes (multiple of 512)");
  auto& depth = p.add_u64("iodepth", 32, "requests in flight");
  auto& seconds = p.add("seconds", "5", "run time");
  auto& layout = p.add_choice("layout", {"split", "packed"}, "split", "ring layout: split|packed");
  auto& event_idx = p.add_choice("event-idx", {"on", "off"}, "on", "VIRTIO_F_EVENT_IDX: on|off");
  auto& hugepages = p.flag("hugepages", "guest memory from huge pages");
  auto& json = p.flag("json", "print one JSON line");
  if (auto rc = p.parse(argc, argv, first)) return *rc;
  const bool write = rw.value == "randwrite";
  if (socket.value.empty() || bs.as_u64() == 0 || bs.as_u64() % 512 != 0 ||
      bs.as_u64() > (16u << 20) || depth.as_u64() == 0 || depth.as_u64() > 1024) {
    std::fprintf(stderr, "vireo bench blk: need --socket-path, --bs a multiple of 512 up to 16 MiB, "
                         "--iodepth 1..1024\n");
    return 2;
  }
  const auto d = static_cast<std::uint16_t>(depth.as_u64());
  std::uint16_t qsize = 64;
  while (qsize < 3 * d) qsize = static_cast<std::uint16_t>(qsize * 2);
  BlkOptions o{.socket_path = socket.value,
               .layout = layout.value == "packed" ? Layout::packed : Layout::split,
               .event_idx = event_idx.value == "on",
               .queue_size = qsize,
               .depth = d,
               .buffer_pool = d * bs.as_u64() + (1u << 20),
               .hugepages = hugepages.set};
  auto blk = BlkDriver::open(o);
  if (!blk) {
    std::fprintf(stderr, "vireo bench blk: %s\n", blk.error().reason.c_str());
    return 1;
  }
  auto r = run_bench(**blk, write, static_cast<std::uint32_t>(bs.as_u64()), seconds.as_double());
  if (!r) {
    std::fprintf(stderr, "vireo bench blk: %s\n", r.error().reason.c_str());
    return 1;
  }
  const double iops = r->seconds > 0 ? static_cast<double>(r->ios) / r->seconds : 0;
  if (json.set)
    JsonLine()
        .str("rw", rw.value)
        .integer("bs", static_cast<long long>(bs.as_u64()))
        .integer("iodepth", d)
        .num("iops", iops)
        .num("mib_per_s", iops * static_cast<double>(bs.as_u64()) / (1 << 20))
        .integer("ios", static_cast<long long>(r->ios))
        .integer("errors", static_cast<long long>(r->errors))
        .num("seconds", r->seconds)
        .str("layout", layout.value)
        .boolean("event_idx", o.event_idx)
        .print(stdout);
  else
    std::printf("%s bs=%llu iodepth=%u: %.0f IOPS (%llu I/Os, %llu errors in %.2f s)\n", rw.value.c_str(),
                static_cast<unsigned long long>(bs.as_u64()), d, iops, static_cast<unsigned long long>(r->ios),
                static_cast<unsigned long long>(r->errors), r->seconds);
  return r->errors == 0 ? 0 : 1;
}

}  // namespace vireo::driver
