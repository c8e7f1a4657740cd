// vireo bench loopback --peer vireo: Vireo's net driver and Vireo's net back-end in one process,
// on ONE thread, through a real vhost-user socket and the driver's shared memfd.
//
// Setup: the device listens on a socket in /tmp; a helper thread runs NetDriver::open() (it
// blocks on replies) while this thread accepts and handles the Session's messages. Once open()
// returns the helper is joined and this thread owns both ends; it keeps handling any control
// message between bursts. Data: two loops at once, as dpdk-testpmd's io forwarding between its
// vhost and virtio-user ports does:
//   driver TX -> device (ForwardPort copies the frame out of guest memory) -> TX buffer completed
//     -> the driver sends the same buffer again (no copy on the driver side);
//   device (ForwardPort copies a frame into an RX buffer) -> driver RX -> the driver hands the
//     buffer back -> the device fills it again.
// So the device copies each payload once per pass and the driver never copies, like DPDK's vhost
// PMD (copies) and virtio-user PMD (zero copy).
#include "cli/bench_loop.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "device/backend_channel.hpp"
#include "device/net/net_backend.hpp"
#include "device/net/packet.hpp"
#include "device/net/port.hpp"
#include "device/session.hpp"
#include "driver/net.hpp"
#include "proto/connection.hpp"
#include "proto/sys/unix_socket.hpp"

// Under `valgrind --tool=callgrind`, the measured interval is dumped on its own (instructions per
// packet = its Ir / packets moved); without valgrind these are a few no-op instructions.
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(x)
#endif

namespace vireo::cli {
namespace {

using bench::LoopParams;
using bench::LoopResult;
using bench::Measured;
using bench::Problem;
namespace dnet = device::net;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kBurst = 32;
constexpr std::uint32_t kSlotBytes = 2048;

// A forwarding port: frames the driver transmits are copied into a ring of port buffers (one
// copy), and the driver's receive queue is fed from those buffers (one copy each). The RX side
// does not wait for TX: both loops run at full speed, as in testpmd where both ports start with
// a burst in flight. As lean as a forwarding port gets: transmit() is one copy per frame (inline
// for a one-segment frame), pending() hands out views built once (like a burst of mbuf pointers).
class ForwardPort final : public dnet::Port {
 public:
  explicit ForwardPort(std::uint32_t len) : len_(len), pool_(std::size_t{kSlots} * kSlotBytes) {}
  const char* kind() const override { return "forward"; }
  device::Status attach(dnet::NetBackend& dev) override {
    dev_ = &dev;
    const std::uint8_t src_ip[4] = {10, 0, 0, 1};
    const std::uint8_t dst_ip[4] = {10, 0, 0, 2};
    for (std::uint32_t s = 0; s < kSlots; ++s) {
      std::uint8_t* frame = reinterpret_cast<std::uint8_t*>(pool_.data() + std::size_t{s} * kSlotBytes);
      dnet::build_udp_frame(frame, len_, dev.mac(), dnet::kPortMac, src_ip, dst_ip);
      segs_[s] = vring::Segment{pool_.data() + std::size_t{s} * kSlotBytes, len_, 0};
    }
    // views_[k] shows slot k % kSlots: any kViewRun consecutive views are one contiguous run.
    for (std::uint32_t k = 0; k < views_.size(); ++k) views_[k] = dnet::PacketView{&segs_[k % kSlots], 1, 0, len_};
    return {};
  }
  std::size_t transmit(std::uint16_t, std::span<const dnet::PacketView> pkts) override {
    std::byte* const pool = pool_.data();
    std::uint64_t next = tx_next_, got = 0;
    for (const dnet::PacketView& p : pkts) {
      std::byte* slot = pool + std::size_t{next++ % kSlots} * kSlotBytes;
      got += dnet::copy_out(p, 0, slot, kSlotBytes) != 0;
    }
    tx_next_ = next;
    received_ += got;
    return pkts.size();
  }
  std::size_t pending(std::uint16_t, std::span<dnet::PacketView> out) override {
    const std::size_t n = std::min<std::size_t>(out.size(), kViewRun);
    std::copy_n(views_.data() + rx_next_ % kSlots, n, out.data());
    return n;
  }
  void consume(std::uint16_t, std::size_t n) override { rx_next_ += n; }
  std::uint64_t received() const { return received_; }

 private:
  // Two bursts' worth, reused in turn: a forwarding port's buffers stay hot the way DPDK's
  // mempool cache (LIFO) keeps testpmd's mbufs hot. 512 slots in FIFO turn cost the loop ~8%
  // in L1 misses (docs/PERFORMANCE.md), a footprint no forwarding application has.
  static constexpr std::uint32_t kSlots = 2 * kBurst;
  static constexpr std::uint32_t kViewRun = 64;  // views per pending() at most
  std::uint32_t len_;
  std::vector<std::byte> pool_;
  std::array<vring::Segment, kSlots> segs_{};
  std::array<dnet::PacketView, kSlots + kViewRun> views_{};
  std::uint64_t tx_next_ = 0, rx_next_ = 0, received_ = 0;
};

struct Counts {
  std::uint64_t to_device = 0, to_driver = 0, kicks = 0, calls = 0;
};

// Both ends on this thread: the driver sends and receives, the device runs one pass.
class Loop {
 public:
  Loop(const LoopParams& p, driver::NetDriver& drv, device::Session& session, proto::Connection& conn,
       ForwardPort& port)
      : p_(p), drv_(drv), session_(session), conn_(conn), port_(port) {}

  Expected<void, std::string> prime() {
    // Every TX buffer holds the frame from the start; the driver re-sends them unchanged.
    std::vector<driver::TxPacket> all(p_.queue_size);
    const std::size_t n = drv_.alloc_tx(0, all);
    for (std::size_t k = 0; k < n; ++k) {
      std::memset(all[k].data.data(), 0, p_.len);
      std::memset(all[k].data.data(), 0xff, 6);  // broadcast
    }
    drv_.free_tx(0, std::span(all).first(n));
    if (!p_.busy_poll) set_rx_callbacks(false);
    return {};
  }

  // One pass of both ends. False: the control connection closed or a ring broke.
  Expected<void, std::string> pass() {
    const std::size_t n = drv_.alloc_tx(0, tx_);
    for (std::size_t k = 0; k < n; ++k) tx_[k].len = p_.len;
    if (n != 0) {
      auto sent = drv_.send(0, std::span(tx_).first(n));
      if (!sent) return Unexpected<std::string>(sent.error().reason);
    }
    session_.poll_data_plane();
    auto got = drv_.recv(0, rx_);
    if (!got) return Unexpected<std::string>(got.error().reason);
    if (*got != 0) {
      auto ok = drv_.release(0, std::span(rx_).first(*got));
      if (!ok) return Unexpected<std::string>(ok.error().reason);
    }
    if (!p_.busy_poll) napi(*got != 0);
    return {};
  }

  // Control messages arriving while the loop runs (none expected; a disconnect ends the run).
  Expected<void, std::string> control() {
    pollfd pf{conn_.fd(), POLLIN, 0};
    while (::poll(&pf, 1, 0) > 0) {
      auto msg = conn_.recv();
      if (!msg) return Unexpected<std::string>("control connection: " + msg.error().message());
      if (!session_.handle(*msg)) return Unexpected<std::string>("the session closed the connection");
    }
    return {};
  }

  Counts counts() const {
    Counts c;
    c.to_device = port_.received();
    c.to_driver = drv_.stats().rx_packets;
    c.kicks = drv_.stats().kicks;
    for (std::uint16_t q = 0; q < 2; ++q)
      if (const device::QueueStats* s = session_.queue_stats(q)) c.calls += s->calls.load(std::memory_order_relaxed);
    return c;
  }

 private:
  // Event mode: like Linux NAPI, the driver polls with calls disabled while RX has work and
  // re-enables them when it finds the ring empty (it would sleep there).
  void napi(bool had_work) {
    if (had_work && armed_) set_rx_callbacks(false);
    else if (!had_work && !armed_) set_rx_callbacks(true);
  }
  void set_rx_callbacks(bool on) {
    armed_ = on;
    vring::process_burst(drv_.frontend().queue(0).ring, [on](auto& ring) {
      if (on) (void)ring.enable_cb();
      else ring.disable_cb();
    });
  }

  const LoopParams& p_;
  driver::NetDriver& drv_;
  device::Session& session_;
  proto::Connection& conn_;
  ForwardPort& port_;
  std::array<driver::TxPacket, kBurst> tx_{};
  std::array<driver::RxPacket, kBurst> rx_{};
  bool armed_ = false;
};

Unexpected<Problem> fail(std::string why) { return Unexpected<Problem>(Problem::fail(std::move(why))); }

// Accepts the driver's connection and handles messages until `opened` is set by the helper thread.
Expected<void, std::string> serve_until_open(device::Session& session, proto::Connection& conn,
                                             const std::atomic<bool>& opened) {
  pollfd pf{conn.fd(), POLLIN, 0};
  // acquire: pairs with the helper's release store after NetDriver::open() returned.
  while (!opened.load(std::memory_order_acquire)) {
    if (::poll(&pf, 1, 10) <= 0) continue;
    auto msg = conn.recv();
    if (!msg) return Unexpected<std::string>("control connection during setup: " + msg.error().message());
    if (!session.handle(*msg)) return Unexpected<std::string>("the session refused the driver's setup");
  }
  return {};
}

Measured<LoopResult> run_loop(const LoopParams& p, const std::string& path) {
  auto listener = proto::UnixListener::bind(path);
  if (!listener) return fail("cannot listen on " + path + ": " + listener.error().message());

  auto port_owner = std::make_unique<ForwardPort>(p.len);
  ForwardPort& port = *port_owner;
  dnet::NetOptions dopt;
  dopt.max_queue_size = p.queue_size;
  dnet::NetBackend dev(dopt, std::move(port_owner));

  driver::NetOptions o;
  o.socket_path = path;
  o.layout = p.packed ? driver::Layout::packed : driver::Layout::split;
  o.event_idx = p.event_idx;
  o.in_order = p.in_order;
  o.queue_size = p.queue_size;
  o.connect_timeout_ms = 5000;
  driver::Result<std::unique_ptr<driver::NetDriver>> opened_drv = driver::error(driver::Error::Kind::resource, "not run");
  std::atomic<bool> opened{false};
  std::thread opener([&] {
    opened_drv = driver::NetDriver::open(o);
    opened.store(true, std::memory_order_release);  // pairs with the acquire in serve_until_open
  });
  auto stream = listener->accept();
  if (!stream) {
    opener.join();
    return fail("accept: " + stream.error().message());
  }
  proto::Connection conn(std::move(*stream));
  device::BackendChannel channel;
  dev.set_channel(&channel);
  Measured<LoopResult> out = fail("not run");
  {
    device::Session session(dev, conn, channel, {.busy_poll = p.busy_poll, .workers = 1, .inline_data_plane = true, .poll_after_kick = true});
    auto setup = serve_until_open(session, conn, opened);
    if (!setup) ::shutdown(conn.fd(), SHUT_RDWR);  // the driver sees EOF instead of waiting for a reply
    opener.join();
    if (!setup) return fail(setup.error());
    if (!opened_drv) return fail("driver: " + opened_drv.error().reason);
    driver::NetDriver& drv = **opened_drv;
    const bool event_idx = vring::has_feature(drv.features(), vring::kFEventIdx);
    const bool packed = vring::has_feature(drv.features(), vring::kFRingPacked);

    Loop loop(p, drv, session, conn, port);
    if (auto ok = loop.prime(); !ok) return fail(ok.error());
    auto run_for = [&](double seconds) -> Expected<void, std::string> {
      const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
      for (std::uint32_t i = 0;; ++i) {
        if (auto ok = loop.pass(); !ok) return ok;
        if ((i & 1023) == 0) {
          if (auto ok = loop.control(); !ok) return ok;
          if (Clock::now() >= end) return {};
        }
      }
    };
    if (auto ok = run_for(std::min(0.5, p.seconds / 4)); !ok) return fail(ok.error());  // warm-up
    const Counts a = loop.counts();
    const auto t0 = Clock::now();
    CALLGRIND_ZERO_STATS;
    if (auto ok = run_for(p.seconds); !ok) return fail(ok.error());
    CALLGRIND_DUMP_STATS_AT("measured");
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const Counts b = loop.counts();
    LoopResult r;
    r.impl = "vireo";
    r.packed = packed;
    r.event_idx = event_idx;
    r.in_order = vring::has_feature(drv.features(), vring::kFInOrder);
    r.len = p.len;
    r.seconds = secs;
    r.pps_driver_to_device = static_cast<double>(b.to_device - a.to_device) / secs;
    r.pps_device_to_driver = static_cast<double>(b.to_driver - a.to_driver) / secs;
    const double moved = static_cast<double>((b.to_device - a.to_device) + (b.to_driver - a.to_driver));
    r.busy_poll = p.busy_poll;
    r.kicks_per_packet = moved > 0 ? static_cast<double>(b.kicks - a.kicks) / moved : 0;
    r.calls_per_packet = moved > 0 ? static_cast<double>(b.calls - a.calls) / moved : 0;
    r.packets = static_cast<std::uint64_t>(moved);
    out = r;
    opened_drv->reset();  // the driver disconnects before the session goes
  }
  dev.set_channel(nullptr);
  return out;
}

}  // namespace

Measured<LoopResult> run_vireo_loopback(const LoopParams& p) {
  const std::string path = "/tmp/vireo-loop-" + std::to_string(::getpid()) + ".sock";
  auto r = run_loop(p, path);
  ::unlink(path.c_str());
  return r;
}

}  // namespace vireo::cli
