// Device-side cost of QD-N 4 KiB random reads: BlkBackend driven in-process by the real driver
// ring (vring/driver_queue.hpp) on one thread, no vhost-user socket, no guest. Prints IOPS.
//
//   blk_qd_bench IMAGE [layout=split|packed] [qd=32] [seconds=3] [direct=1]
// Not a test: the CI does not run it. It bounds what the back-end itself costs per request.
#include <poll.h>
#include <sys/eventfd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "device/blk/blk_backend.hpp"
#include "device/virt_queue.hpp"
#include "tests/support/ring_fakes.hpp"
#include "vring/driver_queue.hpp"

using namespace vireo;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s IMAGE [split|packed] [qd] [seconds] [direct 0|1]\n", argv[0]);
    return 2;
  }
  const bool packed = argc > 2 && std::string(argv[2]) == "packed";
  const unsigned qd = argc > 3 ? static_cast<unsigned>(std::atoi(argv[3])) : 32;
  const double seconds = argc > 4 ? std::atof(argv[4]) : 3.0;
  device::blk::BlkOptions opt;
  opt.image = argv[1];
  opt.try_direct = argc > 5 ? std::atoi(argv[5]) != 0 : true;
  opt.max_queue_size = 256;
  auto dev = device::blk::BlkBackend::create(opt);
  if (!dev) return std::fprintf(stderr, "%s\n", dev.error().c_str()), 1;
  device::blk::BlkBackend& be = **dev;

  constexpr std::uint16_t kSize = 256;
  test::TestGuest guest(std::size_t{8} << 20);
  const std::uint64_t features = vring::feature_bit(vring::kFVersion1) |
                                 (packed ? vring::feature_bit(vring::kFRingPacked) : 0);
  const std::uint64_t desc = guest.alloc(16u * kSize, 4096);
  const std::uint64_t avail = guest.alloc(vring::split_avail_bytes(kSize) + 64, 64);
  const std::uint64_t used = guest.alloc(vring::split_used_bytes(kSize) + 64, 64);
  vring::DriverQueue drv;
  vring::DriverConfig dc{kSize, features, guest.host(desc), guest.host(avail), guest.host(used)};
  if (!vring::configure_driver_queue(drv, dc)) return std::fprintf(stderr, "driver ring\n"), 1;
  device::VirtQueue q(0, vring::make_device_queue<vring::RegionTable>(features), false, -1, -1,
                      nullptr, nullptr, 64);
  if (!vring::configure_queue(q.ring(), &guest.mem(), features, kSize, dc.desc, dc.avail, dc.used,
                              vring::RingState{}))
    return std::fprintf(stderr, "device ring\n"), 1;
  q.set_enabled(true);

  struct Slot {
    std::uint64_t hdr, data, status;
  };
  std::vector<Slot> slots(qd);
  for (Slot& s : slots) s = {guest.alloc(16), guest.alloc(4096, 4096), guest.alloc(1)};
  const std::uint64_t sectors = be.config().capacity;
  std::uint64_t rng = 88172645463325252ull;
  auto add = [&](auto& ring, std::uint64_t token) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    const proto::blk::ReqHeader h{proto::blk::kTIn, 0, (rng % (sectors / 8)) * 8};
    guest.write(slots[token].hdr, &h, sizeof h);
    const vring::DriverBuffer r[1] = {{slots[token].hdr, 16}};
    const vring::DriverBuffer w[2] = {{slots[token].data, 4096}, {slots[token].status, 1}};
    (void)ring.add(r, w, token);
  };
  std::uint64_t done = 0, errors = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const auto until = t0 + std::chrono::duration<double>(seconds);
  vring::process_burst(drv, [&](auto& ring) {
    for (unsigned i = 0; i < qd; ++i) add(ring, i);
    (void)ring.kick_prepare();
    be.process(q);
    vring::DriverUsed u[64];
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{be.completion_fd(q), POLLIN, 0};
      if (::poll(&p, 1, 1000) > 0) {  // an event counter (see BlkHarness::consume_edge)
        eventfd_t events = 0;
        (void)::eventfd_read(p.fd, &events);
      }
      be.complete(q);
      const std::size_t n = ring.get_used_burst(u).value_or(0);
      for (std::size_t i = 0; i < n; ++i) {
        std::byte st{};
        guest.read(slots[u[i].token].status, &st, 1);
        errors += st != std::byte{0};
        add(ring, u[i].token);
      }
      done += n;
      if (n != 0) {
        (void)ring.kick_prepare();
        be.process(q);
      }
    }
  });
  be.queue_stopping(q);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s qd=%u direct=%d: %.0f IOPS (%llu reads, %llu errors, %.2f s)\n",
              packed ? "packed" : "split", qd, be.image().has_direct() ? 1 : 0, done / secs,
              static_cast<unsigned long long>(done), static_cast<unsigned long long>(errors), secs);
  return errors == 0 ? 0 : 1;
}
