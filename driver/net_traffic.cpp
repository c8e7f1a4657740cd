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

namespace {

// The state of one run_traffic call; each step is one burst on one queue pair.
class TrafficLoop {
 public:
  TrafficLoop(NetDriver& net, const TrafficOptions& o)
      : net_(net), o_(o), sends_(o.mode != TrafficMode::rx), checks_(o.mode != TrafficMode::tx),
        max_seq_(o.count != 0 ? o.count : (std::uint64_t{1} << 30)),
        window_(o.window != 0 ? o.window : 192u * net.queue_pairs()), tx_(o.burst), rx_(o.burst) {
    if (checks_) seen_.bits.assign((max_seq_ + 63) / 64, 0);  // allocated once, before the loop
  }

  Result<TrafficResult> run() {
    start_ = last_progress_ = last_rx_ = last_tx_ = Clock::now();
    sending_ = sends_;
    for (std::uint64_t loop = 0;; ++loop) {
      now_ = Clock::now();
      if (sending_ && ((o_.seconds > 0 && since(start_, now_) >= o_.seconds) || r_.sent >= max_seq_))
        sending_ = false;
      bool progress = false;
      for (std::uint16_t qp = 0; qp < net_.queue_pairs(); ++qp) {
        auto t = transmit(qp);
        if (!t) return Unexpected(t.error());
        auto g = receive(qp);
        if (!g) return Unexpected(g.error());
        progress = progress || *t || *g;
      }
      if (progress) {
        last_progress_ = now_;
        continue;
      }
      auto more = idle(loop);
      if (!more) return Unexpected(more.error());
      if (!*more) break;
    }
    r_.seconds = since(start_, o_.mode == TrafficMode::tx ? last_tx_ : last_rx_);
    if (checks_ && r_.sent != 0) r_.lost = r_.sent > r_.received ? r_.sent - r_.received : 0;
    return r_;
  }

 private:
  // One TX burst, limited by the ping-pong window. True if anything was sent.
  Result<bool> transmit(std::uint16_t qp) {
    const std::uint64_t room =
        o_.mode == TrafficMode::pingpong ? (window_ > outstanding_ ? window_ - outstanding_ : 0) : o_.burst;
    if (!sending_ || room == 0) return false;
    const std::size_t want = std::min<std::uint64_t>({o_.burst, room, max_seq_ - r_.sent});
    const std::size_t n = net_.alloc_tx(qp, std::span(tx_).first(want));
    for (std::size_t k = 0; k < n; ++k) {
      build_frame(tx_[k].data, o_.len, o_.first_seq + r_.sent + k, net_.mac());
      tx_[k].len = o_.len;
    }
    auto s = net_.send(qp, std::span(tx_).first(n));
    if (!s) return Unexpected(s.error());
    r_.sent += *s;
    outstanding_ += *s;
    if (*s != 0) last_tx_ = now_;
    return *s != 0;
  }

  // One RX burst: check every frame, give the buffers back. True if anything arrived.
  Result<bool> receive(std::uint16_t qp) {
    auto got = net_.recv(qp, rx_);
    if (!got) return Unexpected(got.error());
    for (std::size_t k = 0; k < *got && checks_; ++k) account(rx_[k]);
    if (auto ok = net_.release(qp, std::span(rx_).first(*got)); !ok) return Unexpected(ok.error());
    if (*got != 0) last_rx_ = now_;
    outstanding_ -= std::min<std::uint64_t>(outstanding_, *got);
    return *got != 0;
  }

  void account(const RxPacket& pkt) {
    std::uint64_t seq = 0;
    if (!check_frame(pkt, seq)) ++r_.corrupt;
    else if (seq < o_.first_seq || seq - o_.first_seq >= max_seq_) ++r_.stray;
    else if (!seen_.insert(seq - o_.first_seq)) ++r_.duplicates;
    else {
      ++r_.received;
      if (r_.reconnects != 0) ++r_.received_after_reconnect;
    }
  }

  // Nothing moved: decide whether to stop, give up on lost frames, or check the back-end.
  // False ends the run.
  Result<bool> idle(std::uint64_t loop) {
    if (o_.mode == TrafficMode::rx && o_.count != 0 && r_.received >= o_.count) return false;
    if (o_.mode == TrafficMode::rx && o_.seconds > 0 && since(start_, now_) >= o_.seconds) return false;
    const auto idle_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now_ - last_progress_).count();
    if (!sending_ && (r_.sent != 0 || o_.mode == TrafficMode::rx) && idle_ms >= o_.linger_ms) return false;
    if (o_.mode == TrafficMode::pingpong && outstanding_ != 0 && idle_ms >= 100)
      outstanding_ = 0;  // the rest is lost (dropped by the peer, or a dead back-end): reopen the window
    if (idle_ms < 5 || (loop & 0xff) != 0) return true;
    auto link = net_.poll_link();
    if (!link) {
      if (!o_.reconnect || link.error().kind != Error::Kind::disconnected) return Unexpected(link.error());
      VIREO_LOG_WARN("traffic: %s; retrying", link.error().reason.c_str());
    } else if (*link) {
      ++r_.reconnects;
      r_.received_after_reconnect = 0;
      last_progress_ = Clock::now();
    }
    return true;
  }

  NetDriver& net_;
  const TrafficOptions& o_;
  const bool sends_, checks_;
  const std::uint64_t max_seq_;
  const std::uint64_t window_;
  std::vector<TxPacket> tx_;
  std::vector<RxPacket> rx_;
  SeenSet seen_;
  TrafficResult r_;
  std::uint64_t outstanding_ = 0;
  bool sending_ = false;
  Clock::time_point start_, now_, last_progress_, last_rx_, last_tx_;
};

}  // namespace

Result<TrafficResult> run_traffic(NetDriver& net, const TrafficOptions& o) {
  if (o.len < kMinFrame || o.len > net.max_frame())
    return error(Error::Kind::unsupported, "frame length must be " + std::to_string(kMinFrame) + ".." +
                                               std::to_string(net.max_frame()));
  if (o.burst == 0) return error(Error::Kind::unsupported, "burst must be at least 1");
  return TrafficLoop(net, o).run();
}

void add_json(JsonLine& line, const TrafficResult& r) {
  line.integer("sent", static_cast<long long>(r.sent)).integer("received", static_cast<long long>(r.received));
  line.integer("lost", static_cast<long long>(r.lost)).integer("corrupt", static_cast<long long>(r.corrupt));
  line.integer("duplicates", static_cast<long long>(r.duplicates));
  line.integer("reconnects", static_cast<long long>(r.reconnects)).num("seconds", r.seconds).num("pps", r.pps());
}

}  // namespace vireo::driver
