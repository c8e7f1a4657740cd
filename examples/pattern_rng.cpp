// pattern-rng: a custom vhost-user device built out of tree against the installed Vireo library
// (pkg-config vireo). It is virtio-rng (device id 4, virtio §5.4) but fills every buffer with a
// known pattern instead of random bytes, so pattern-check can verify what moved:
// byte k of a buffer is (k * 7 + 3) % 251.
//
//   ./pattern-rng --socket-path /tmp/p.sock &      # same options as `vireo rng` (--help)
//   ./pattern-check /tmp/p.sock split 1000         # a Vireo driver reads 1000 buffers
#include <cstdint>
#include <cstdio>

#include "device/backend.hpp"
#include "device/cli_options.hpp"
#include "device/daemon.hpp"
#include "device/virt_queue.hpp"
#include "vring/chain.hpp"

namespace {

using vireo::device::DeviceInfo;
using vireo::device::VirtQueue;

class PatternRng final : public vireo::device::Backend {
 public:
  DeviceInfo info() const override {
    DeviceInfo d;
    d.device_id = 4;  // §5.4.1: entropy device
    d.name = "pattern-rng";
    d.num_queues = 1;  // §5.4.2: requestq only
    return d;
  }

  // Runs on the queue's worker thread after a kick: pop every available buffer, fill, push.
  void process(VirtQueue& q) override {
    if (!q.enabled()) return;  // started but disabled: no side effects (rst "Ring states")
    vireo::vring::Chain& chain = q.scratch_chain();
    q.visit([&](auto& ring) {
      for (;;) {
        auto popped = ring.pop(chain);
        if (!popped) return q.report_broken(popped.error());  // a broken ring stops this queue only
        if (!*popped) break;
        std::uint32_t written = 0;
        // §5.4.6.1: the device writes only device-writable buffers.
        for (const vireo::vring::Segment& s : chain.writable())
          for (std::uint32_t i = 0; i < s.len; ++i, ++written)
            s.data[i] = static_cast<std::byte>((written * 7u + 3u) % 251u);
        ring.push(chain, written);
        q.stats().add(q.stats().chains, 1);
        q.stats().add(q.stats().bytes, written);
      }
      ring.flush();  // publish the used index once per burst
    });
    q.notify();  // call the driver if its notification suppression asks for it
  }
};

}  // namespace

int main(int argc, char** argv) {
  PatternRng dev;
  if (auto rc = vireo::device::print_capabilities_if_asked(argc, argv, 1, dev.info().device_id)) return *rc;
  vireo::OptionParser p("pattern-rng --socket-path PATH", "virtio-rng serving a fixed byte pattern (Vireo example)");
  vireo::device::BackendCli cli(p);
  if (auto rc = p.parse(argc, argv, 1)) return *rc;
  if (auto rc = cli.finish()) return *rc;
  return vireo::device::run_daemon(dev, cli.options());
}
