// A guest with a virtio-net device, in one thread: per queue, ring areas in TestGuest memory, the
// driver half (vring::DriverQueue, the real driver rings) and the device half (device::VirtQueue
// over the same memory), with NetBackend::process() called directly in place of a kick.
//
//   NetGuest g(GuestOptions{.packed = true, .event_idx = true}, make_port("loopback"));
//   g.post_rx(0, 8, 2048);                 // eight receive buffers
//   g.send(0, frame);  g.kick_tx(0);        // transmit, then "kick"
//   std::vector<NetGuest::Rx> got = g.receive(0);
//
// Typed suites run over NetConfigs: {split, packed} x {EVENT_IDX off, on}.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "device/net/net_backend.hpp"
#include "device/net/net_defs.hpp"
#include "device/net/port.hpp"
#include "device/virt_queue.hpp"
#include "proto/sys/event_fd.hpp"
#include "tests/support/ring_fakes.hpp"
#include "vring/device_queue.hpp"
#include "vring/driver_queue.hpp"
#include "vring/layout.hpp"

namespace vireo::test {

using device::net::NetHdr;

template <bool P, bool E>
struct NetCfg {
  static constexpr bool kPacked = P;
  static constexpr bool kEventIdx = E;
};
using NetConfigs = ::testing::Types<NetCfg<false, false>, NetCfg<false, true>, NetCfg<true, false>,
                                    NetCfg<true, true>>;
struct NetCfgName {
  template <class T>
  static std::string GetName(int) {
    return std::string(T::kPacked ? "Packed" : "Split") + (T::kEventIdx ? "EventIdx" : "NoEventIdx");
  }
};

struct GuestOptions {
  bool packed = false;
  bool event_idx = false;
  bool mergeable = true;    // negotiate VIRTIO_NET_F_MRG_RXBUF
  std::uint16_t qsize = 64;
  std::uint16_t pairs = 1;
  std::uint16_t mtu = 1500;
  bool start_rx = true;     // queue_started() on the receive queues
  bool in_order = false;    // negotiate VIRTIO_F_IN_ORDER (device and driver rings)
};

template <class Cfg>
GuestOptions options_for(GuestOptions o = {}) {
  o.packed = Cfg::kPacked;
  o.event_idx = Cfg::kEventIdx;
  return o;
}

// A frame of `len` bytes: Ethernet header (to the device MAC) then a counting pattern seeded by
// `seed`, so any misplaced byte shows.
inline std::vector<std::uint8_t> make_frame(std::uint32_t len, std::uint8_t seed) {
  std::vector<std::uint8_t> f(len);
  for (std::uint32_t i = 0; i < len; ++i) f[i] = static_cast<std::uint8_t>(seed + i * 7);
  const std::uint8_t dst[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
  std::memcpy(f.data(), dst, std::min<std::uint32_t>(6, len));
  return f;
}

class NetGuest {
 public:
  struct Rx {
    NetHdr hdr{};
    std::uint16_t buffers = 0;             // used buffers the packet took
    std::vector<std::uint32_t> lens;       // used length of each
    std::vector<std::uint8_t> frame;
  };
  struct Queue {
    vring::DriverQueue drv;
    std::unique_ptr<device::VirtQueue> vq;
    proto::EventFd call;
    void* desc = nullptr;                  // descriptor table / ring (to corrupt it in tests)
    std::vector<std::uint32_t> buf_len;    // by token: posted buffer length (RX) / frame (TX)
    std::vector<std::uint64_t> buf_gpa;    // by token
  };

  NetGuest(const GuestOptions& o, std::unique_ptr<device::net::Port> port);
  ~NetGuest();

  std::uint64_t features() const { return features_; }
  std::uint32_t hdr_len() const { return dev.hdr_len(); }
  Queue& q(std::uint16_t index) { return queues_[index]; }
  device::VirtQueue& vq(std::uint16_t index) { return *queues_[index].vq; }
  std::uint16_t rx(std::uint16_t pair) const { return static_cast<std::uint16_t>(2 * pair); }
  std::uint16_t tx(std::uint16_t pair) const { return static_cast<std::uint16_t>(2 * pair + 1); }

  // Adds one TX buffer: header + frame, split into `nsegs` descriptors (the header alone in the
  // first when nsegs > 1). Publishes it (kick_prepare) but does not process it.
  void send(std::uint16_t pair, const std::vector<std::uint8_t>& frame, NetHdr hdr = {},
            int nsegs = 1);
  // Adds raw readable / writable descriptors as one TX (or any) chain.
  void add_raw(std::uint16_t queue, std::vector<vring::DriverBuffer> readable,
               std::vector<vring::DriverBuffer> writable);
  // Posts `count` receive buffers of `len` bytes each.
  void post_rx(std::uint16_t pair, int count, std::uint32_t len);
  void kick_tx(std::uint16_t pair) { dev.process(vq(tx(pair))); }
  void kick_rx(std::uint16_t pair) { dev.process(vq(rx(pair))); }
  // Reaps every used RX buffer and reassembles packets (num_buffers groups with MRG_RXBUF).
  std::vector<Rx> receive(std::uint16_t pair);
  // Reaps used TX buffers; returns how many (and checks their used length is 0).
  std::size_t reap_tx(std::uint16_t pair) { return reap_tx_tokens(pair).size(); }
  // The same, returning their tokens (send() / add_raw() order: 0, 1, ...) in the order reaped.
  std::vector<std::uint64_t> reap_tx_tokens(std::uint16_t pair);
  // How many used buffer notifications the device sent on `queue` since the last call.
  std::uint64_t calls(std::uint16_t queue);

  std::uint64_t alloc(std::size_t len) { return guest.alloc(len, 64); }
  TestGuest guest;
  device::net::NetBackend dev;

 private:
  void make_queue(std::uint16_t index, const GuestOptions& o, bool start);
  std::uint64_t token(Queue& q, std::uint64_t gpa, std::uint32_t len);

  std::uint64_t features_ = 0;
  std::vector<Queue> queues_;
};

}  // namespace vireo::test
