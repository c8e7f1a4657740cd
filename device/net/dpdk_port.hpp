// DpdkPort: forwards between the guest and a DPDK ethdev (`vireo net --port dpdk:DEVARGS`): a NIC
// driven by a DPDK poll-mode driver, or a virtual device (net_ring0, net_null0,
// net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap, net_af_packet0,iface=eth0).
//
//   auto port = make_dpdk_port("net_ring0");   // initialises the EAL once (--no-huge --no-shconf)
//   NetBackend dev(options, nullptr);  dev.set_port(std::move(*port));   // one ethdev queue per pair
//
// Guest frames are copied once into mbufs and sent with rte_eth_tx_burst on the pair's TX queue;
// frames received with rte_eth_rx_burst on the pair's RX queue are offered as PacketViews into
// the mbufs and copied once into the guest's receive buffers. An ethdev has no fd to wait on, so
// the device must busy-poll (`vireo net` turns --busy-poll on for this port).
//
// Built only when meson finds libdpdk (option 'dpdk'); see make_dpdk_port() otherwise.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/expected.hpp"
#include "device/net/port.hpp"

namespace vireo::device::net {

// True when this build links DPDK.
bool dpdk_port_available();

// DEVARGS starting with "net_" are virtual devices (EAL --vdev); anything else is an allowed
// device (EAL -a, e.g. a PCI address "0000:03:00.0"). The EAL and the ethdev are set up here, so
// a bad DEVARGS fails before the daemon serves.
Expected<std::unique_ptr<Port>, std::string> make_dpdk_port(std::string_view devargs);

}  // namespace vireo::device::net
