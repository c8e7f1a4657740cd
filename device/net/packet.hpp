// Ethernet / ARP / IPv4 / ICMP / UDP helpers for the ports that build or answer frames
// (source, responder). Frames are byte arrays in network byte order; nothing here allocates.
//
//   std::uint16_t c = inet_checksum(ip_header, 20);      // RFC 1071; 0 when a header verifies
//   build_udp_frame(buf, 64, dst_mac, src_mac, src_ip, dst_ip);
#pragma once

#include <cstddef>
#include <cstdint>

#include "device/net/net_defs.hpp"

namespace vireo::device::net {

inline constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr std::uint16_t kEtherTypeArp = 0x0806;
inline constexpr std::uint8_t kIpProtoIcmp = 1;
inline constexpr std::uint8_t kIpProtoUdp = 17;
inline constexpr std::uint32_t kArpFrameLen = 42;   // Ethernet + ARP for IPv4 over Ethernet
inline constexpr std::uint32_t kMinFrameLen = 60;   // Ethernet minimum without FCS
inline constexpr std::uint32_t kUdpFrameOverhead = 14 + 20 + 8;

// The responder's and the source's own MAC: locally administered 02:76:69:72:65:6f ("vireo").
inline constexpr MacAddr kPortMac{0x02, 0x76, 0x69, 0x72, 0x65, 0x6f};

inline std::uint16_t load_be16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
inline void store_be16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}

// RFC 1071 one's-complement sum of `len` bytes, folded and inverted.
std::uint16_t inet_checksum(const std::uint8_t* data, std::size_t len);

// Writes a `len`-byte (>= kUdpFrameOverhead) IPv4/UDP frame (UDP port 9, "discard") with a valid
// IPv4 header checksum and UDP checksum 0 (none, allowed over IPv4). Payload bytes are zero.
void build_udp_frame(std::uint8_t* frame, std::uint32_t len, const MacAddr& dst,
                     const MacAddr& src, const std::uint8_t src_ip[4], const std::uint8_t dst_ip[4]);

}  // namespace vireo::device::net
