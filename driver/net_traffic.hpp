// Traffic generator / checker on a NetDriver, for two-process tests and benchmarks: frames carry a
// sequence number and a checksum of their payload, so the receiving side can tell lost,
// duplicated and corrupted frames apart.
//
//   TrafficOptions t{.mode = TrafficMode::pingpong, .count = 100000, .len = 64};
//   auto r = run_traffic(*net, t);        // against a back-end that loops frames back
//   r->lost == 0 && r->corrupt == 0
//
// Frame: Ethernet header (dst broadcast, src = our MAC, ethertype 0x88B5 "local experimental"),
// then Probe, then payload bytes; Probe::csum is FNV-1a over the payload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "base/json_line.hpp"
#include "driver/net.hpp"

namespace vireo::driver {

enum class TrafficMode : std::uint8_t { tx, rx, pingpong };

struct TrafficOptions {
  TrafficMode mode = TrafficMode::pingpong;
  std::uint64_t count = 0;      // frames to send (tx/pingpong) or expect (rx); 0 = until `seconds`
  double seconds = 0;           // stop sending after this long (0 = until count)
  std::uint32_t len = 64;       // frame length (>= 60)
  std::uint32_t burst = 32;
  std::uint32_t window = 0;     // pingpong: frames in flight (0 = 3/4 of the queue size)
  int linger_ms = 1000;         // after sending stops, wait this long for stragglers
  bool reconnect = true;        // reconnect when the back-end dies, then carry on
  std::uint64_t first_seq = 0;  // sequence number of the first frame (frames outside this run's
                                // range, e.g. late ones from an earlier run, count as stray)
};

struct TrafficResult {
  std::uint64_t sent = 0, received = 0, corrupt = 0, duplicates = 0, lost = 0, reconnects = 0;
  std::uint64_t received_after_reconnect = 0;
  std::uint64_t stray = 0;                     // intact frames from outside this run's range  // good frames received after the last reconnect
  double seconds = 0;           // from first send to last frame received (tx: last send)
  double pps() const { return seconds > 0 ? static_cast<double>(mode_frames()) / seconds : 0; }
  std::uint64_t mode_frames() const { return received != 0 ? received : sent; }
};

// Probe header after the Ethernet header.
struct Probe {
  std::uint32_t magic;
  std::uint32_t len;   // whole frame length
  std::uint64_t seq;
  std::uint32_t csum;  // FNV-1a over the payload after the probe
  std::uint32_t pad;
};
inline constexpr std::uint32_t kProbeMagic = 0x4f524956;  // "VIRO"
inline constexpr std::size_t kEthHdr = 14;
inline constexpr std::uint32_t kMinFrame = 60;

// Writes a probe frame of `len` bytes into `frame`.
void build_frame(std::span<std::byte> frame, std::uint32_t len, std::uint64_t seq,
                 const std::array<std::uint8_t, 6>& src);
// Checks a received frame (possibly in several segments); returns its sequence number.
bool check_frame(const RxPacket& pkt, std::uint64_t& seq);

[[nodiscard]] Result<TrafficResult> run_traffic(NetDriver& net, const TrafficOptions& options);

void add_json(JsonLine& line, const TrafficResult& r);

}  // namespace vireo::driver
