#include "device/net/net_defs.hpp"

#include <algorithm>
#include <cstring>

namespace vireo::device::net {

namespace {
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::optional<MacAddr> parse_mac(std::string_view text) {
  // Exactly six two-digit hex groups separated by ':' (17 characters).
  if (text.size() != 17) return std::nullopt;
  MacAddr mac{};
  for (std::size_t i = 0; i < 6; ++i) {
    const std::size_t at = i * 3;
    if (i != 0 && text[at - 1] != ':') return std::nullopt;
    const int hi = hex_digit(text[at]);
    const int lo = hex_digit(text[at + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    mac[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return mac;
}

std::size_t copy_out_segments(const PacketView& p, std::size_t offset, std::byte* out, std::size_t max) {
  std::size_t skip = p.skip + offset;
  std::size_t left = offset < p.len ? std::min<std::size_t>(max, p.len - offset) : 0;
  std::size_t done = 0;
  for (std::uint32_t k = 0; k < p.nsegs && left != 0; ++k) {
    const vring::Segment& s = p.segs[k];
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    const std::size_t piece = std::min<std::size_t>(left, s.len - skip);
    std::memcpy(out + done, s.data + skip, piece);
    done += piece;
    left -= piece;
    skip = 0;
  }
  return done;
}

}  // namespace vireo::device::net
