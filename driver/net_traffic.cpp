// run_traffic: one busy-polling loop over every queue pair (send window, receive, verify).
#include "driver/net_traffic.hpp"

#include <chrono>
#include <cstring>
#include <vector>

#include "base/log.hpp"

namespace vireo::driver {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kPayloadOff = kEthHdr + sizeof(Probe);

std::uint32_t fnv1a(std::uint32_t h, std::span<const std::byte> bytes) {
  for (std::byte b : bytes) h = (h ^ static_cast<std::uint8_t>(b)) * 16777619u;
  return h;
}
constexpr std::uint32_t kFnvBasis = 2166136261u;

double since(Clock::time_point t0, Clock::time_point t1) {
  return std::chrono::duration<double>(t1 - t0).count();
}

// Sequence numbers seen: one bit each (allocated once, before the loop).
struct SeenSet {
  std::vector<std::uint64_t> bits;
  bool insert(std::uint64_t seq) {  // false if seen before (or beyond the set)
    if (seq / 64 >= bits.size()) return false;
    std::uint64_t& w = bits[seq / 64];
    const std::uint64_t m = std::uint64_t{1} << (seq % 64);
    const bool fresh = (w & m) == 0;
    w |= m;
    return fresh;
  }
};

}  // namespace

void build_frame(std::span<std::byte> frame, std::uint32_t len, std::uint64_t seq,
                 const std::array<std::uint8_t, 6>& src) {
  std::byte* f = frame.data();
  std::memset(f, 0xff, 6);                // dst: broadcast
  std::memcpy(f + 6, src.data(), 6);      // src: our MAC
  f[12] = std::byte{0x88};                // ethertype 0x88B5: local experimental
  f[13] = std::byte{0xb5};
  for (std::uint32_t i = kPayloadOff; i < len; ++i)
    f[i] = static_cast<std::byte>((seq * 131 + i) & 0xff);
  const Probe p{kProbeMagic, len, seq, fnv1a(kFnvBasis, frame.subspan(kPayloadOff, len - kPayloadOff)), 0};
  std::memcpy(f + kEthHdr, &p, sizeof p);
}

bool check_frame(const RxPacket& pkt, std::uint64_t& seq) {
  if (pkt.nsegs == 0 || pkt.segs[0].size() < kPayloadOff) return false;
  Probe p;
  std::memcpy(&p, pkt.segs[0].data() + kEthHdr, sizeof p);
  if (p.magic != kProbeMagic || p.len != pkt.len) return false;
  std::uint32_t h = kFnvBasis;
  for (std::uint8_t s = 0; s < pkt.nsegs; ++s) h = fnv1a(h, pkt.segs[s].subspan(s == 0 ? kPayloadOff : 0));
  seq = p.seq;
  return h == p.csum;
}

Result<TrafficResult> run_traffic(NetDriver& net, const TrafficOptions& o) {
  if (o.len < kMinFrame || o.len > net.max_frame())
    return error(Error::Kind::unsupported, "frame length must be " + std::to_string(kMinFrame) + ".." +
                                               std::to_string(net.max_frame()));
  const bool sends = o.mode != TrafficMode::rx;
  const bool checks = o.mode != TrafficMode::tx;
  const std::uint64_t max_seq = o.count != 0 ? o.count : (std::uint64_t{1} << 30);
  SeenSet seen;
  if (checks) seen.bits.assign((max_seq + 63) / 64, 0);
  const std::uint32_t window = o.window != 0 ? o.window : 192u * net.queue_pairs();
  std::vector<TxPacket> tx(o.burst);
  std::vector<RxPacket> rx(o.burst);
  TrafficResult r;
  std::uint64_t outstanding = 0;
  const auto start = Clock::now();
  auto last_progress = start, last_rx = start, last_tx = start;
  bool sending = sends;
  for (std::uint64_t loop = 0;; ++loop) {
    const auto now = Clock::now();
    if (sending && ((o.seconds > 0 && since(start, now) >= o.seconds) || (o.count != 0 && r.sent >= o.count) ||
                    r.sent >= max_seq))
      sending = false;
    bool progress = false;
    for (std::uint16_t qp = 0; qp < net.queue_pairs(); ++qp) {
      std::uint64_t room = o.mode == TrafficMode::pingpong ? (window > outstanding ? window - outstanding : 0) : o.burst;
      if (sending && room != 0) {
        std::size_t want = std::min<std::uint64_t>({o.burst, room, max_seq - r.sent});
        std::size_t n = net.alloc_tx(qp, std::span(tx).first(want));
        for (std::size_t k = 0; k < n; ++k) {
          build_frame(tx[k].data, o.len, r.sent + k, net.mac());
          tx[k].len = o.len;
        }
        auto s = net.send(qp, std::span(tx).first(n));
        if (!s) return Unexpected(s.error());
        r.sent += *s;
        outstanding += *s;
        if (*s != 0) progress = true, last_tx = now;
      }
      auto got = net.recv(qp, rx);
      if (!got) return Unexpected(got.error());
      for (std::size_t k = 0; k < *got && checks; ++k) {
        std::uint64_t seq = 0;
        if (!check_frame(rx[k], seq)) ++r.corrupt;
        else if (!seen.insert(seq)) ++r.duplicates;
        else {
          ++r.received;
          if (r.reconnects != 0) ++r.received_after_reconnect;
        }
      }
      if (auto ok = net.release(qp, std::span(rx).first(*got)); !ok) return Unexpected(ok.error());
      if (*got != 0) progress = true, last_rx = now;
      outstanding -= std::min<std::uint64_t>(outstanding, *got);
    }
    if (progress) {
      last_progress = now;
      continue;
    }
    if (o.mode == TrafficMode::rx && o.count != 0 && r.received >= o.count) break;
    const auto idle_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - last_progress).count();
    if (!sending && (r.sent != 0 || o.mode == TrafficMode::rx) && idle_ms >= o.linger_ms) break;
    if (o.mode == TrafficMode::pingpong && outstanding != 0 && r.received + outstanding >= r.sent &&
        idle_ms >= 100)
      outstanding = 0;  // the rest is lost (dropped by the peer or with a dead back-end): reopen
    if (idle_ms >= 5 && (loop & 0xff) == 0) {
      auto link = net.poll_link();
      if (!link) {
        if (!o.reconnect || link.error().kind != Error::Kind::disconnected) return Unexpected(link.error());
        VIREO_LOG_WARN("traffic: %s; retrying", link.error().reason.c_str());
      } else if (*link) {
        ++r.reconnects;
        r.received_after_reconnect = 0;
        last_progress = Clock::now();
      }
    }
    if (o.mode == TrafficMode::rx && o.seconds > 0 && since(start, now) >= o.seconds) break;
  }
  r.seconds = since(start, o.mode == TrafficMode::tx ? last_tx : last_rx);
  if (checks && r.sent != 0) r.lost = r.sent > r.received ? r.sent - r.received : 0;
  return r;
}

std::string to_json(const TrafficResult& r) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "\"sent\": %llu, \"received\": %llu, \"lost\": %llu, \"corrupt\": %llu, "
                "\"duplicates\": %llu, \"reconnects\": %llu, \"seconds\": %.3f, \"pps\": %.0f",
                static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.received),
                static_cast<unsigned long long>(r.lost), static_cast<unsigned long long>(r.corrupt),
                static_cast<unsigned long long>(r.duplicates), static_cast<unsigned long long>(r.reconnects),
                r.seconds, r.pps());
  return buf;
}

}  // namespace vireo::driver
