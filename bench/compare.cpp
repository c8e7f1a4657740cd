// vireo bench loopback / compare-dpdk / compare-blk: the command lines, and the compare runs.
#include "bench/compare.hpp"

#include <unistd.h>

#include <filesystem>

#include "base/options.hpp"
#include "bench/alternate.hpp"
#include "bench/peer_commands.hpp"
#include "bench/qsd.hpp"
#include "bench/results.hpp"
#include "bench/testpmd.hpp"

namespace vireo::bench {
namespace {

void emit(std::FILE* out, const JsonLine& line) {
  if (out == nullptr) return;
  std::fprintf(out, "%s\n", line.text().c_str());
  std::fflush(out);
}

// A problem ends a compare run: a skip is reported as a result (exit 0), a failure is an error.
int report_problem(const char* command, const Problem& pr, const JsonLine& skip_line, std::FILE* json_out) {
  if (pr.skipped()) {
    emit(json_out, skip_line);
    std::fprintf(stderr, "%s: skipped: %s\n", command, pr.reason.c_str());
    return 0;
  }
  std::fprintf(stderr, "%s: %s\n", command, pr.reason.c_str());
  return 1;
}

std::string reason_of(const Problem& pr) { return pr.reason; }

}  // namespace

int run_compare_dpdk(const LoopParams& p, int pairs, const LoopMeasure& vireo, const LoopMeasure& dpdk,
                     std::FILE* json_out, std::FILE* table_out) {
  std::fprintf(table_out, "vireo/dpdk, %s, event_idx=%s (vireo), len=%u, %d pairs of %.1f s\n", layout_name(p.packed),
               p.event_idx ? "on" : "off", p.len, pairs, p.seconds);
  std::fprintf(table_out, "pair  vireo d->D  dpdk d->D  ratio | vireo D->d  dpdk D->d  ratio   (Mpps)\n");
  auto on_pair = [&](const Pair<LoopResult>& pr) {
    emit(json_out, loop_json(pr.a, pr.index));
    emit(json_out, loop_json(pr.b, pr.index));
    double r_out = ratio(pr.a.pps_driver_to_device, pr.b.pps_driver_to_device);
    double r_in = ratio(pr.a.pps_device_to_driver, pr.b.pps_device_to_driver);
    JsonLine line = compare_dpdk_json("pair", p);
    line.integer("pair", pr.index).num("ratio_driver_to_device", r_out).num("ratio_device_to_driver", r_in);
    emit(json_out, line);
    std::fprintf(table_out, "%4d  %10.3f %10.3f %6.3f | %10.3f %10.3f %6.3f\n", pr.index, pr.a.pps_driver_to_device / 1e6,
                 pr.b.pps_driver_to_device / 1e6, r_out, pr.a.pps_device_to_driver / 1e6, pr.b.pps_device_to_driver / 1e6,
                 r_in);
    std::fflush(table_out);
  };
  auto run = alternate<LoopResult>(pairs, [&] { return vireo(p); }, [&] { return dpdk(p); }, on_pair);
  if (!run) {
    JsonLine skip = compare_dpdk_json("skipped", p);
    skip.str("skipped", reason_of(run.error()));
    return report_problem("vireo bench compare-dpdk", run.error(), skip, json_out);
  }
  auto out = summarize(ratios(*run, [](const LoopResult& r) { return r.pps_driver_to_device; }));
  auto in = summarize(ratios(*run, [](const LoopResult& r) { return r.pps_device_to_driver; }));
  JsonLine line = compare_dpdk_json("median", p);
  add_summary(line, "driver_to_device", out);
  add_summary(line, "device_to_driver", in);
  emit(json_out, line);
  std::fprintf(table_out, "median                  %6.3f |                       %6.3f   (min %.3f/%.3f, max %.3f/%.3f)\n",
               out.median, in.median, out.min, in.min, out.max, in.max);
  return 0;
}

namespace {

// Serve, drive, stop: one blk measurement of one side.
Measured<BlkResult> measure_blk_side(const BlkParams& p, const BlkSide& side, const BlkDrive& drive,
                                     const std::string& image) {
  auto backend = side.start(BlkTarget{image, side.socket, 1});
  if (!backend) return Unexpected(backend.error());
  auto r = drive(side.socket, p);
  backend->reset();  // stopped before the next side starts on the same image
  if (!r) return Unexpected(r.error());
  r->impl = side.impl;
  return r;
}

}  // namespace

int run_compare_blk(const BlkParams& p, int pairs, const BlkSide& vireo, const BlkSide& peer, const BlkDrive& drive,
                    const std::string& image, std::FILE* json_out, std::FILE* table_out) {
  std::fprintf(table_out, "%s/%s, %s, iodepth=%u, bs=%u, %d pairs of %.1f s\n", vireo.impl.c_str(), peer.impl.c_str(),
               p.rw.c_str(), p.iodepth, p.block_size, pairs, p.seconds);
  std::fprintf(table_out, "pair  %10s  %10s   ratio   (kIOPS)\n", vireo.impl.c_str(), peer.impl.c_str());
  auto on_pair = [&](const Pair<BlkResult>& pr) {
    emit(json_out, blk_json(pr.a, pr.index));
    emit(json_out, blk_json(pr.b, pr.index));
    double r = ratio(pr.a.iops, pr.b.iops);
    JsonLine line = compare_blk_json("pair", p);
    line.integer("pair", pr.index).num("ratio_iops", r);
    emit(json_out, line);
    std::fprintf(table_out, "%4d  %10.2f  %10.2f  %6.3f\n", pr.index, pr.a.iops / 1e3, pr.b.iops / 1e3, r);
    std::fflush(table_out);
  };
  auto run = alternate<BlkResult>(
      pairs, [&] { return measure_blk_side(p, vireo, drive, image); },
      [&] { return measure_blk_side(p, peer, drive, image); }, on_pair);
  if (!run) {
    JsonLine skip = compare_blk_json("skipped", p);
    skip.str("skipped", reason_of(run.error()));
    return report_problem("vireo bench compare-blk", run.error(), skip, json_out);
  }
  auto s = summarize(ratios(*run, [](const BlkResult& r) { return r.iops; }));
  JsonLine line = compare_blk_json("median", p);
  add_summary(line, "iops", s);
  emit(json_out, line);
  std::fprintf(table_out, "median                        %6.3f   (min %.3f, max %.3f)\n", s.median, s.min, s.max);
  return 0;
}

namespace {

struct LoopOptions {
  Option* layout;
  Option* event_idx;
  Option* in_order;
  Option* len;
  Option* seconds;
  Option* queue_size;
  Option* busy_poll;
};

LoopOptions add_loop_options(OptionParser& o) {
  return {&o.add_choice("layout", {"split", "packed"}, "split", "ring layout: split|packed"),
          &o.add_choice("event-idx", {"on", "off"}, "on", "Vireo: negotiate VIRTIO_F_EVENT_IDX: on|off (DPDK's virtio-user never does)"),
          &o.add_choice("in-order", {"on", "off"}, "on", "negotiate VIRTIO_F_IN_ORDER: on|off (both peers; DPDK: virtio-user in_order=1|0)"),
          &o.add_u64("len", 64, "frame length in bytes: 64..1518"), &o.add("seconds", "2", "measured seconds per run"),
          &o.add_u64("queue-size", 256, "ring size"),
          &o.add_choice("busy-poll", {"on", "off"}, "on", "Vireo: on, both ends poll with notifications off; off, the device runs on kicks "
                                    "and the driver re-arms calls when idle (kicks/calls per packet reported)")};
}

std::optional<LoopParams> loop_params(const LoopOptions& o, const char* command) {
  LoopParams p;
  p.packed = o.layout->value == "packed";
  p.event_idx = o.event_idx->value == "on";
  p.in_order = o.in_order->value == "on";
  p.len = static_cast<std::uint32_t>(o.len->as_u64());
  p.seconds = o.seconds->as_double();
  p.queue_size = static_cast<std::uint16_t>(o.queue_size->as_u64());
  p.busy_poll = o.busy_poll->value == "on";
  if (p.len < 64 || p.len > 1518 || !(p.seconds > 0) || o.queue_size->as_u64() == 0 ||
      o.queue_size->as_u64() > 32768) {
    std::fprintf(stderr, "%s: invalid options (len 64..1518, seconds > 0, "
                         "queue-size 1..32768)\n", command);
    return std::nullopt;
  }
  return p;
}

int not_linked(const char* command, const char* hook) {
  std::fprintf(stderr,
               "%s: the Vireo side is not linked into this build (bench::hooks().%s is not set), so there is "
               "nothing to compare; the peer alone runs with 'vireo bench loopback --peer dpdk'\n",
               command, hook);
  return kExitNotLinked;
}

}  // namespace

int loopback_main(int argc, char** argv, int first) {
  OptionParser o("vireo bench loopback",
                 "One-core net loop: a virtio driver and a vhost device forwarding in both directions on one core; "
                 "prints packets per second per direction.");
  auto& peer = o.add_choice("peer", {"vireo", "dpdk"}, "vireo", "whose device and driver: vireo|dpdk (dpdk-testpmd: vhost + virtio-user PMDs)");
  LoopOptions lo = add_loop_options(o);
  auto& transcript = o.add("transcript", "", "dpdk: write testpmd's output to this file");
  auto& json = o.flag("json", "print one JSON line instead of a table row");
  if (auto rc = o.parse(argc, argv, first)) return *rc;
  auto p = loop_params(lo, "vireo bench loopback");
  if (!p) return 2;
  Measured<LoopResult> r = Unexpected(Problem::fail(""));
  if (peer.value == "dpdk") {
    r = measure_dpdk_loop(*p, {.transcript_path = transcript.value});
  } else {
    if (!hooks().vireo_loop) return not_linked("vireo bench loopback", "vireo_loop");
    r = hooks().vireo_loop(*p);
  }
  if (!r) {
    return report_problem("vireo bench loopback", r.error(), loop_skip_json(peer.value, *p, r.error().reason),
                          json.set ? stdout : nullptr);
  }
  if (json.set) emit(stdout, loop_json(*r));
  else std::printf("%s\n", loop_row(*r).c_str());
  return 0;
}

int compare_dpdk_main(int argc, char** argv, int first) {
  OptionParser o("vireo bench compare-dpdk",
                 "Vireo's one-core loop against DPDK's (vhost + virtio-user PMDs in one testpmd), alternated "
                 "A B A B ... for N pairs; prints each pair's Vireo/DPDK ratio per direction and the median.");
  LoopOptions lo = add_loop_options(o);
  auto& pairs = o.add_u64("pairs", 5, "number of Vireo-then-DPDK pairs (at least 5)");
  auto& json = o.flag("json", "JSON lines on stdout (the table goes to stderr)");
  if (auto rc = o.parse(argc, argv, first)) return *rc;
  auto p = loop_params(lo, "vireo bench compare-dpdk");
  if (!p) return 2;
  if (pairs.as_u64() < 5 || pairs.as_u64() > 1000) {
    std::fprintf(stderr, "vireo bench compare-dpdk: --pairs must be 5..1000 (a median needs several pairs)\n");
    return 2;
  }
  if (!hooks().vireo_loop) return not_linked("vireo bench compare-dpdk", "vireo_loop");
  LoopMeasure dpdk = [](const LoopParams& lp) { return measure_dpdk_loop(lp); };
  return run_compare_dpdk(*p, static_cast<int>(pairs.as_u64()), hooks().vireo_loop, dpdk, json.set ? stdout : nullptr,
                          json.set ? stderr : stdout);
}

int compare_blk_main(int argc, char** argv, int first) {
  OptionParser o("vireo bench compare-blk",
                 "Vireo's vhost-user-blk back-end against qemu-storage-daemon on the same tmpfs image, both driven "
                 "by Vireo's blk driver, alternated A B A B ... for N pairs; prints IOPS ratios and the median.");
  auto& rw = o.add_choice("rw", {"randread", "randwrite"}, "randread", "workload: randread|randwrite");
  auto& iodepth = o.add_u64("iodepth", 1, "requests in flight: 1..256");
  auto& bs = o.add_u64("block-size", 4096, "bytes per request (a multiple of 512)");
  auto& seconds = o.add("seconds", "2", "measured seconds per run");
  auto& pairs = o.add_u64("pairs", 5, "number of Vireo-then-qsd pairs (at least 5)");
  auto& image_mib = o.add_u64("image-mib", 256, "image size in MiB (on /dev/shm)");
  auto& json = o.flag("json", "JSON lines on stdout (the table goes to stderr)");
  if (auto rc = o.parse(argc, argv, first)) return *rc;
  BlkParams p{rw.value, static_cast<std::uint32_t>(iodepth.as_u64()), static_cast<std::uint32_t>(bs.as_u64()),
              seconds.as_double()};
  if (p.iodepth == 0 || p.iodepth > 256 || p.block_size == 0 ||
      p.block_size % 512 != 0 || !(p.seconds > 0) || pairs.as_u64() < 5 || pairs.as_u64() > 1000 ||
      image_mib.as_u64() == 0) {
    std::fprintf(stderr, "vireo bench compare-blk: invalid options (iodepth 1..256, "
                         "block-size a multiple of 512, seconds > 0, pairs 5..1000, image-mib > 0)\n");
    return 2;
  }
  if (!hooks().vireo_blk_backend) return not_linked("vireo bench compare-blk", "vireo_blk_backend");
  if (!hooks().blk_driver) return not_linked("vireo bench compare-blk", "blk_driver");
  auto image = TmpfsImage::create(image_mib.as_u64() << 20);
  if (!image) {
    std::fprintf(stderr, "vireo bench compare-blk: %s\n", image.error().c_str());
    return 1;
  }
  std::string dir = image->path() + ".d";  // sockets next to the image, removed with it below
  std::filesystem::create_directories(dir);
  BlkSide vireo{"vireo", hooks().vireo_blk_backend, dir + "/vireo.sock"};
  BlkSide qsd{"qsd", [](const BlkTarget& t) -> Measured<std::unique_ptr<BlkBackend>> {
                auto b = start_qsd(t);
                if (!b) return Unexpected(b.error());
                return std::unique_ptr<BlkBackend>(std::move(*b));
              },
              dir + "/qsd.sock"};
  int rc = run_compare_blk(p, static_cast<int>(pairs.as_u64()), vireo, qsd, hooks().blk_driver, image->path(),
                           json.set ? stdout : nullptr, json.set ? stderr : stdout);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rc;
}

}  // namespace vireo::bench
