// Where a virtio-net device's packets go and come from: a Port, chosen per device
// (`vireo net --port loopback|sink|source[:LEN]|responder=IP|tap:IF|peer:PATH`).
//
//   auto port = make_port("responder=10.0.0.1");      // Expected<unique_ptr<Port>, string>
//   NetBackend dev(options, std::move(*port));
//
// Ports are called once per burst, never per packet (the virtual call is amortised over up to
// NetBackend::kBurst packets). A port sees the guest's transmitted frames as PacketViews into
// guest memory (virtio-net header already stripped) and either consumes them at once (copying
// what it keeps) or leaves a suffix for later (backpressure). Packets for the guest come either
// from port memory (pending/consume, copied once into receive buffers) or from a pollable fd
// the device reads straight into receive buffers (rx_fd, zero copy).
//
// Threading: transmit() for pair i runs under pair i's TX lock, pending/consume under its RX
// lock, on whichever worker serves the queue; different pairs may run concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/expected.hpp"
#include "device/backend.hpp"
#include "device/net/net_defs.hpp"

namespace vireo::device::net {

class NetBackend;

class Port {
 public:
  virtual ~Port() = default;
  virtual const char* kind() const = 0;

  // Control path, once before serving: the device the port belongs to (pairs, MAC, MTU).
  virtual Status attach(NetBackend& dev) {
    dev_ = &dev;
    return {};
  }
  // The guest transmitted `pkts` on queue pair `pair`. Returns how many, from the front, the port
  // took (sent, copied or dropped); the rest are offered again on the next pass.
  virtual std::size_t transmit(std::uint16_t pair, std::span<const PacketView> pkts) = 0;
  // Up to out.size() packets waiting for pair's receive queue, in port memory that stays valid
  // until consume(pair, n) says the first n were delivered (or dropped).
  virtual std::size_t pending(std::uint16_t, std::span<PacketView>) { return 0; }
  virtual void consume(std::uint16_t, std::size_t) {}
  // A non-blocking fd whose reads yield one frame each for pair's receive queue, or -1.
  virtual int rx_fd(std::uint16_t) const { return -1; }
  // The front-end went away: forget per-connection state (queued replies).
  virtual void reset() {}

 protected:
  NetBackend* dev_ = nullptr;
};

// Builds a port from its command-line spelling: "loopback", "sink", "source" / "source:LEN",
// "responder=IP", "tap:IFNAME". ("peer:PATH" needs two devices: see peer_port.hpp.)
Expected<std::unique_ptr<Port>, std::string> make_port(std::string_view spec);

}  // namespace vireo::device::net
