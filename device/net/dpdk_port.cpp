// DpdkPort (device/net/dpdk_port.hpp): EAL set-up, one ethdev RX/TX queue per queue pair.
#include "device/net/dpdk_port.hpp"

#ifndef VIREO_HAVE_DPDK

namespace vireo::device::net {

bool dpdk_port_available() { return false; }

Expected<std::unique_ptr<Port>, std::string> make_dpdk_port(std::string_view) {
  return Unexpected<std::string>("this vireo was built without DPDK (meson found no libdpdk; "
                                 "install libdpdk-dev and reconfigure with -Ddpdk=enabled)");
}

}  // namespace vireo::device::net

#else

#include <pthread.h>
#include <sched.h>

#include <array>
#include <cstring>
#include <mutex>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "base/log.hpp"
#include "device/net/net_backend.hpp"

namespace vireo::device::net {
namespace {

constexpr std::uint16_t kRing = 1024;     // descriptors per ethdev queue
constexpr unsigned kMbufs = 8191;         // per port: RX rings + TX in flight + held RX bursts
constexpr std::size_t kRxBurst = 32;

std::string rte_error(const char* what, int rc) {
  return std::string(what) + ": " + rte_strerror(rc < 0 ? -rc : rc);
}

// rte_eal_init once per process, in plain memory (--no-huge: no hugepages needed; --no-shconf:
// no runtime files, as --in-memory would, which --no-huge excludes). It pins the calling thread to its main lcore; Vireo's control
// and worker threads must keep the CPUs they were given, so the affinity is restored after.
Expected<void, std::string> init_eal(const std::string& devargs) {
  static std::mutex mu;
  static bool done = false;
  std::lock_guard lock(mu);
  if (done) return {};
  cpu_set_t cpus;
  const bool saved = ::pthread_getaffinity_np(::pthread_self(), sizeof cpus, &cpus) == 0;
  std::vector<std::string> args{"vireo", "--no-huge", "--no-shconf", "-m", "256", "--no-telemetry",
                                "--log-level=lib.eal:error", "--log-level=pmd.*:error"};
  if (devargs.rfind("net_", 0) == 0) {
    args.push_back("--no-pci");  // a virtual device only: do not probe (or claim) PCI NICs
    args.push_back("--vdev=" + devargs);
  } else {
    args.push_back("-a");
    args.push_back(devargs);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = rte_eal_init(static_cast<int>(args.size()), argv.data());
  if (saved) ::pthread_setaffinity_np(::pthread_self(), sizeof cpus, &cpus);
  if (rc < 0) return Unexpected<std::string>(rte_error("DPDK EAL initialisation failed", rte_errno));
  done = true;
  return {};
}

class DpdkPort final : public Port {
 public:
  DpdkPort(std::string devargs, std::uint16_t port_id) : devargs_(std::move(devargs)), port_id_(port_id) {}
  ~DpdkPort() override {
    if (started_) {
      rte_eth_dev_stop(port_id_);
      rte_eth_dev_close(port_id_);
    }
    for (Held& h : held_)
      for (std::size_t k = h.next; k < h.count; ++k) rte_pktmbuf_free(h.mbufs[k]);
    if (pool_ != nullptr) rte_mempool_free(pool_);
  }
  const char* kind() const override { return "dpdk"; }

  Status attach(NetBackend& dev) override {
    dev_ = &dev;
    const std::uint16_t pairs = dev.pairs();
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(port_id_, &info); rc != 0) return error(rte_error("rte_eth_dev_info_get", rc));
    if (pairs > info.max_rx_queues || pairs > info.max_tx_queues)
      return error("DPDK device " + devargs_ + " has " + std::to_string(info.max_rx_queues) + " RX / " +
                   std::to_string(info.max_tx_queues) + " TX queues; --queues " + std::to_string(pairs) +
                   " needs one of each per pair");
    if (dev.max_frame() > RTE_MBUF_DEFAULT_DATAROOM)
      return error("--mtu " + std::to_string(dev.mtu()) + " makes frames longer than one DPDK mbuf (" +
                   std::to_string(RTE_MBUF_DEFAULT_DATAROOM) + " bytes); use --mtu " +
                   std::to_string(RTE_MBUF_DEFAULT_DATAROOM - (dev.max_frame() - dev.mtu())) + " or less");
    const int socket = rte_eth_dev_socket_id(port_id_);
    pool_ = rte_pktmbuf_pool_create(("vireo" + std::to_string(port_id_)).c_str(), kMbufs, 256, 0,
                                    RTE_MBUF_DEFAULT_BUF_SIZE, socket < 0 ? SOCKET_ID_ANY : socket);
    if (pool_ == nullptr) return error(rte_error("cannot create the DPDK mbuf pool", rte_errno));
    rte_eth_conf conf{};
    if (int rc = rte_eth_dev_configure(port_id_, pairs, pairs, &conf); rc != 0)
      return error(rte_error(("rte_eth_dev_configure(" + devargs_ + ")").c_str(), rc));
    for (std::uint16_t q = 0; q < pairs; ++q) {
      if (int rc = rte_eth_rx_queue_setup(port_id_, q, kRing, socket, nullptr, pool_); rc != 0)
        return error(rte_error("rte_eth_rx_queue_setup", rc));
      if (int rc = rte_eth_tx_queue_setup(port_id_, q, kRing, socket, nullptr); rc != 0)
        return error(rte_error("rte_eth_tx_queue_setup", rc));
    }
    if (int rc = rte_eth_dev_start(port_id_); rc != 0) return error(rte_error("rte_eth_dev_start", rc));
    started_ = true;
    (void)rte_eth_promiscuous_enable(port_id_);  // the guest's MAC is not the NIC's
    held_ = std::vector<Held>(pairs);
    VIREO_LOG_INFO("dpdk port %u (%s, driver %s): %u queue pair(s)", port_id_, devargs_.c_str(),
                   info.driver_name, pairs);
    return {};
  }

  // Copies each frame into one mbuf and sends the burst; what the device does not take now is
  // offered again (backpressure to the guest's TX ring).
  std::size_t transmit(std::uint16_t pair, std::span<const PacketView> pkts) override {
    std::array<rte_mbuf*, kRxBurst> m{};
    std::size_t taken = 0;
    while (taken < pkts.size()) {
      const std::size_t n = std::min(m.size(), pkts.size() - taken);
      if (rte_pktmbuf_alloc_bulk(pool_, m.data(), static_cast<unsigned>(n)) != 0) break;  // pool empty: retry later
      for (std::size_t k = 0; k < n; ++k) {
        const PacketView& p = pkts[taken + k];
        const std::uint32_t len = p.len;  // <= max_frame() <= the data room (attach)
        copy_out(p, 0, rte_pktmbuf_mtod(m[k], std::byte*), len);
        m[k]->data_len = static_cast<std::uint16_t>(len);
        m[k]->pkt_len = len;
      }
      const std::uint16_t sent = rte_eth_tx_burst(port_id_, pair, m.data(), static_cast<std::uint16_t>(n));
      for (std::size_t k = sent; k < n; ++k) rte_pktmbuf_free(m[k]);
      taken += sent;
      if (sent < n) break;
    }
    return taken;
  }

  std::size_t pending(std::uint16_t pair, std::span<PacketView> out) override {
    Held& h = held_[pair];
    if (h.next == h.count) {
      h.next = 0;
      h.count = rte_eth_rx_burst(port_id_, pair, h.mbufs.data(), kRxBurst);
      // One segment per frame: attach() keeps frames within one mbuf's data room.
      for (std::size_t k = 0; k < h.count; ++k)
        h.segs[k] = vring::Segment{rte_pktmbuf_mtod(h.mbufs[k], std::byte*), h.mbufs[k]->data_len, 0};
    }
    const std::size_t n = std::min(out.size(), h.count - h.next);
    for (std::size_t k = 0; k < n; ++k) out[k] = PacketView{&h.segs[h.next + k], 1, 0, h.segs[h.next + k].len};
    return n;
  }

  void consume(std::uint16_t pair, std::size_t n) override {
    Held& h = held_[pair];
    for (std::size_t k = 0; k < n && h.next < h.count; ++k) rte_pktmbuf_free(h.mbufs[h.next++]);
  }

 private:
  struct Held {  // one RX burst, delivered to the guest in order
    std::array<rte_mbuf*, kRxBurst> mbufs{};
    std::array<vring::Segment, kRxBurst> segs{};
    std::size_t next = 0, count = 0;
  };
  std::string devargs_;
  std::uint16_t port_id_;
  rte_mempool* pool_ = nullptr;
  bool started_ = false;
  std::vector<Held> held_;  // per pair, under the pair's RX lock
};

}  // namespace

bool dpdk_port_available() { return true; }

Expected<std::unique_ptr<Port>, std::string> make_dpdk_port(std::string_view devargs) {
  if (devargs.empty()) return Unexpected<std::string>("dpdk:DEVARGS needs a device, e.g. dpdk:net_ring0");
  const std::string spec(devargs);
  if (auto ok = init_eal(spec); !ok) return Unexpected<std::string>(ok.error());
  const std::string name = spec.substr(0, spec.find(','));
  std::uint16_t port_id = 0;
  if (rte_eth_dev_get_port_by_name(name.c_str(), &port_id) != 0)
    return Unexpected<std::string>("DPDK has no ethdev named '" + name + "' after probing '" + spec +
                                   "' (is its driver installed, e.g. librte_net_ring?)");
  return std::unique_ptr<Port>(std::make_unique<DpdkPort>(spec, port_id));
}

}  // namespace vireo::device::net

#endif
