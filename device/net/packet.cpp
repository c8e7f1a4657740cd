#include "device/net/packet.hpp"

#include <cstring>

namespace vireo::device::net {

std::uint16_t inet_checksum(const std::uint8_t* data, std::size_t len) {
  std::uint64_t sum = 0;
  std::size_t i = 0;
  for (; i + 1 < len; i += 2) sum += static_cast<std::uint32_t>(data[i] << 8 | data[i + 1]);
  if (i < len) sum += static_cast<std::uint32_t>(data[i] << 8);
  while ((sum >> 16) != 0) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xFFFF);
}

void build_udp_frame(std::uint8_t* f, std::uint32_t len, const MacAddr& dst, const MacAddr& src,
                     const std::uint8_t src_ip[4], const std::uint8_t dst_ip[4]) {
  std::memset(f, 0, len);
  std::memcpy(f, dst.data(), 6);
  std::memcpy(f + 6, src.data(), 6);
  store_be16(f + 12, kEtherTypeIpv4);
  std::uint8_t* ip = f + 14;
  const auto ip_len = static_cast<std::uint16_t>(len - 14);
  ip[0] = 0x45;  // IPv4, 20-byte header
  store_be16(ip + 2, ip_len);
  ip[8] = 64;    // TTL
  ip[9] = kIpProtoUdp;
  std::memcpy(ip + 12, src_ip, 4);
  std::memcpy(ip + 16, dst_ip, 4);
  store_be16(ip + 10, inet_checksum(ip, 20));
  std::uint8_t* udp = ip + 20;
  store_be16(udp, 9);
  store_be16(udp + 2, 9);
  store_be16(udp + 4, static_cast<std::uint16_t>(ip_len - 20));
}

}  // namespace vireo::device::net
