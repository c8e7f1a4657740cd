// net_loopback_bench: the device side of the headline benchmark, on one thread. A driver (the
// real driver rings) transmits frames on pair 0, NetBackend's loopback port copies each once
// from the TX buffer into an RX buffer, and the driver reaps both rings; process() stands in
// for the kick. Buffers are allocated once and reused.
//
//   build/tests/net/net_loopback_bench [frame_len=64] [seconds=2] [burst=32]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "device/net/ports.hpp"
#include "tests/net/net_harness.hpp"

namespace vireo::test {
namespace {

struct Result {
  double mpps;
  double gbps;
};

Result run(bool packed, bool event_idx, std::uint32_t frame_len, double seconds, std::uint32_t burst) {
  GuestOptions o;
  o.packed = packed;
  o.event_idx = event_idx;
  o.qsize = 256;
  NetGuest g(o, std::make_unique<device::net::LoopbackPort>());
  const std::uint32_t hl = g.hdr_len();
  const std::uint16_t n = o.qsize;
  std::vector<std::uint64_t> tx_gpa(n), rx_gpa(n);
  const std::vector<std::uint8_t> frame = make_frame(frame_len, 1);
  const std::uint32_t rx_len = std::max<std::uint32_t>(2048, hl + frame_len);
  for (std::uint16_t i = 0; i < n; ++i) {
    tx_gpa[i] = g.alloc(hl + frame_len);
    const device::net::NetHdr h{};
    g.guest.write(tx_gpa[i], &h, hl);
    g.guest.write(tx_gpa[i] + hl, frame.data(), frame.size());
    rx_gpa[i] = g.alloc(rx_len);
  }
  auto& txq = g.q(g.tx(0)).drv;
  auto& rxq = g.q(g.rx(0)).drv;
  // The driver polls: no used-buffer notifications (the device's call eventfd stays quiet).
  vring::process_burst(txq, [](auto& ring) { ring.disable_cb(); });
  vring::process_burst(rxq, [](auto& ring) { ring.disable_cb(); });
  std::vector<vring::DriverUsed> used(n);
  std::vector<std::uint16_t> tx_free, rx_free;
  for (std::uint16_t i = 0; i < n; ++i) tx_free.push_back(i), rx_free.push_back(i);
  std::uint64_t packets = 0;
  std::uint64_t bad = 0;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  for (std::uint32_t iter = 0;; ++iter) {
    if ((iter & 1023) == 0 && std::chrono::steady_clock::now() >= end) break;
    vring::process_burst(rxq, [&](auto& ring) {  // keep the receive ring full
      while (!rx_free.empty()) {
        const std::uint16_t s = rx_free.back();
        const vring::DriverBuffer b{rx_gpa[s], rx_len};
        if (!ring.add({}, std::span<const vring::DriverBuffer>(&b, 1), s)) break;
        rx_free.pop_back();
      }
      ring.kick_prepare();
    });
    vring::process_burst(txq, [&](auto& ring) {
      for (std::uint32_t k = 0; k < burst && !tx_free.empty(); ++k) {
        const std::uint16_t s = tx_free.back();
        const vring::DriverBuffer b{tx_gpa[s], hl + frame_len};
        if (!ring.add(std::span<const vring::DriverBuffer>(&b, 1), {}, s)) break;
        tx_free.pop_back();
      }
      ring.kick_prepare();
    });
    g.kick_tx(0);
    vring::process_burst(txq, [&](auto& ring) {
      const std::size_t k = ring.get_used_burst(used).value_or(0);
      for (std::size_t i = 0; i < k; ++i) tx_free.push_back(static_cast<std::uint16_t>(used[i].token));
    });
    vring::process_burst(rxq, [&](auto& ring) {
      const std::size_t k = ring.get_used_burst(used).value_or(0);
      for (std::size_t i = 0; i < k; ++i) {
        bad += used[i].len != hl + frame_len;
        rx_free.push_back(static_cast<std::uint16_t>(used[i].token));
      }
      packets += k;
    });
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (bad != 0) std::fprintf(stderr, "%llu packets with a wrong length\n", static_cast<unsigned long long>(bad));
  // Spot-check the last frame received.
  std::vector<std::uint8_t> check(frame_len);
  g.guest.read(rx_gpa[rx_free.back()] + hl, check.data(), frame_len);
  if (check != frame) std::fprintf(stderr, "payload mismatch\n");
  return {packets / secs / 1e6, packets * frame_len * 8.0 / secs / 1e9};
}

}  // namespace
}  // namespace vireo::test

int main(int argc, char** argv) {
  const std::uint32_t len = argc > 1 ? static_cast<std::uint32_t>(std::atoi(argv[1])) : 64;
  const double secs = argc > 2 ? std::atof(argv[2]) : 2.0;
  const std::uint32_t burst = argc > 3 ? static_cast<std::uint32_t>(std::atoi(argv[3])) : 32;
  std::printf("loopback, one thread, frame %u bytes, burst %u\n", len, burst);
  for (bool packed : {false, true})
    for (bool ev : {false, true}) {
      const auto r = vireo::test::run(packed, ev, len, secs, burst);
      std::printf("  %-6s event_idx=%d  %6.2f Mpps  %6.2f Gbit/s\n", packed ? "packed" : "split",
                  ev ? 1 : 0, r.mpps, r.gbps);
    }
  return 0;
}
