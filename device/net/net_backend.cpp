#include "device/net/net_backend.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/log.hpp"
#include "device/virt_queue.hpp"

namespace vireo::device::net {

// Why a packet was not forwarded. Each reason is logged once per connection.
enum class NetBackend::Drop : std::uint8_t {
  none,
  writable_in_tx,
  short_header,
  runt,
  needs_csum,
  gso,
  rx_too_big,
  fd_error,
  ctrl_no_ack,
};

namespace {

const char* to_string(std::uint8_t why) {
  switch (why) {
    case 1: return "the driver made a transmit buffer with device-writable descriptors available "
                   "(§5.1.6.2: transmit buffers are device-readable); completing it unsent";
    case 2: return "a transmit buffer is shorter than the virtio-net header (§5.1.6); completing "
                   "it unsent";
    case 3: return "a transmitted frame is shorter than an Ethernet header (14 bytes); dropping it";
    case 4: return "a transmit header sets NEEDS_CSUM but VIRTIO_NET_F_CSUM was not negotiated "
                   "(§5.1.6.2.1); dropping the packet";
    case 5: return "a transmit header asks for segmentation (gso_type != GSO_NONE) but no "
                   "HOST_TSO/UFO feature was negotiated (§5.1.6.2.1); dropping the packet";
    case 6: return "a packet does not fit the guest's receive buffers (post buffers of at least "
                   "MTU + 26 bytes, or negotiate VIRTIO_NET_F_MRG_RXBUF); dropping it";
    case 7: return "reading frames from the port failed; will retry on the next wake-up";
    case 8: return "a control buffer has no device-writable byte for the ack (§5.1.6.5); "
                   "completing it without an answer";
  }
  return "unknown drop reason";
}

std::uint64_t bit(unsigned n) { return vring::feature_bit(n); }

}  // namespace

struct NetBackend::Pair {
  explicit Pair(std::uint16_t i) : index(i), scratch(65536) {
    tx_chains.reserve(kBurst);
    for (std::uint32_t k = 0; k < kBurst; ++k) tx_chains.emplace_back(kTxMaxSegments);
  }
  std::uint16_t index;
  // ---- TX side, under tx_lock ----
  std::mutex tx_lock;
  VirtQueue* tx = nullptr;
  // [0, held): packets popped and checked, not yet taken by the port. Each has its head and view;
  // a chain from pop_burst() lives in tx_chains[k], a lone buffer from pop_lone() in tx_segs[k]
  // (its view points there).
  std::vector<vring::Chain> tx_chains;
  std::array<vring::Segment, kBurst> tx_segs{};
  std::array<vring::Head, kBurst> tx_heads{};
  std::array<PacketView, kBurst> tx_views{};
  std::uint32_t held = 0;
  // Of those, malformed buffers popped after a packet still held (a view with no segments): they
  // are completed unsent in their turn, since buffers are used in the order they were popped
  // (VIRTIO_F_IN_ORDER, §2.7.9 / §2.8.23).
  std::uint32_t held_drops = 0;
  // ---- RX side, under rx_lock ----
  std::mutex rx_lock;
  VirtQueue* rx = nullptr;
  RxFiller filler;
  std::array<PacketView, kBurst> rx_views{};
  std::vector<std::byte> scratch;  // frames read from an fd and dropped (no receive buffers)
  PairCounters counters;
};

NetBackend::NetBackend(const NetOptions& options, std::unique_ptr<Port> port)
    : options_(options) {
  if (options_.pairs == 0) options_.pairs = 1;
  pairs_.reserve(options_.pairs);
  for (std::uint16_t i = 0; i < options_.pairs; ++i) pairs_.push_back(std::make_unique<Pair>(i));
  if (port) (void)set_port(std::move(port));
}

NetBackend::~NetBackend() = default;

const PairCounters& NetBackend::counters(std::uint16_t pair) const { return pairs_[pair]->counters; }

Status NetBackend::set_port(std::unique_ptr<Port> port) {
  port_ = std::move(port);
  return port_ ? port_->attach(*this) : Status{};
}

DeviceInfo NetBackend::info() const {
  DeviceInfo d;
  d.device_id = 1;  // §5.1.1: network card
  d.name = "net";
  // §5.1.2: receiveq1, transmitq1, ..., receiveqN, transmitqN, controlq (only with CTRL_VQ).
  d.num_queues = static_cast<std::uint16_t>(2 * options_.pairs + (has_ctrl() ? 1 : 0));
  d.max_queue_size = options_.max_queue_size;
  d.device_features = bit(kFMac) | bit(kFStatus) | bit(kFMtu) | bit(kFMrgRxbuf);
  // §5.1.3.1: VIRTIO_NET_F_MQ requires VIRTIO_NET_F_CTRL_VQ.
  if (has_ctrl()) d.device_features |= bit(kFMq) | bit(kFCtrlVq);
  d.protocol_features = bit(kProtocolFConfig) | (has_ctrl() ? bit(kProtocolFMq) : 0);
  d.config_size = sizeof(NetConfig);
  d.in_order = true;
  return d;
}

void NetBackend::read_config(std::uint32_t offset, std::span<std::byte> out) const {
  NetConfig c{};
  c.mac = options_.mac;
  c.status = kStatusLinkUp;  // §5.1.4: link status, valid with VIRTIO_NET_F_STATUS
  c.max_virtqueue_pairs = options_.pairs;
  c.mtu = options_.mtu;
  c.speed = kSpeedUnknown;
  c.duplex = kDuplexUnknown;
  const auto* src = reinterpret_cast<const std::byte*>(&c);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = offset + i < sizeof c ? src[offset + i] : std::byte{0};
}

Status NetBackend::set_features(std::uint64_t features) {
  // §5.1.3.1 makes MQ depend on CTRL_VQ, but over vhost-user the front-end keeps the control queue
  // for itself (QEMU never passes CTRL_VQ on) and selects pairs with SET_VRING_ENABLE (rst
  // "Multiple queue support"): without CTRL_VQ every pair is active.
  if (vring::has_feature(features, kFMq) && !vring::has_feature(features, kFCtrlVq))
    active_pairs_.store(options_.pairs, std::memory_order_relaxed);
  mergeable_ = vring::has_feature(features, kFMrgRxbuf);
  csum_ = vring::has_feature(features, kFCsum);
  // §5.1.6: the header has num_buffers with VERSION_1 or MRG_RXBUF (12 bytes), else 10 bytes.
  hdr_len_ = vring::has_feature(features, vring::kFVersion1) || mergeable_ ? kNetHdrLen
                                                                          : kLegacyNetHdrLen;
  for (auto& p : pairs_) {
    std::lock_guard lock(p->rx_lock);
    p->filler.configure(hdr_len_, mergeable_);
  }
  return {};
}

void NetBackend::reset() {
  active_pairs_.store(1, std::memory_order_relaxed);
  warned_.store(0, std::memory_order_relaxed);
  if (port_) port_->reset();
}

void NetBackend::queue_started(VirtQueue& q) {
  const std::uint16_t i = q.index();
  if (i >= 2 * options_.pairs) return;
  Pair& p = *pairs_[i / 2];
  if (i % 2 == 0) {
    std::lock_guard lock(p.rx_lock);
    p.rx = &q;
    p.filler.forget();
    p.filler.configure(hdr_len_, mergeable_);
  } else {
    std::lock_guard lock(p.tx_lock);
    p.tx = &q;
    p.held = p.held_drops = 0;
  }
}

void NetBackend::queue_stopping(VirtQueue& q) {
  const std::uint16_t i = q.index();
  if (i >= 2 * options_.pairs) return;
  Pair& p = *pairs_[i / 2];
  if (i % 2 == 0) {
    std::lock_guard lock(p.rx_lock);
    if (p.rx != &q) return;
    // Receive buffers popped for packets that never came go back unused (length 0).
    q.visit([&](auto& ring) {
      p.filler.release(ring);
      ring.flush();
    });
    p.rx = nullptr;
  } else {
    std::lock_guard lock(p.tx_lock);
    if (p.tx != &q) return;
    // Packets held for a full receive queue are completed unsent: nothing stays in flight.
    q.visit([&](auto& ring) {
      ring.push_unwritten(p.tx_heads.data(), p.held);
      ring.flush();
    });
    p.held = p.held_drops = 0;
    p.tx = nullptr;
  }
  q.notify();
}

void NetBackend::process(VirtQueue& q) {
  const std::uint16_t i = q.index();
  if (has_ctrl() && i == ctrl_index()) return process_ctrl(q);
  if (i >= 2 * options_.pairs) return;
  Pair& p = *pairs_[i / 2];
  // Either queue's kick serves the pair: an RX kick (new receive buffers) also releases TX
  // packets that waited for them.
  service_tx(p);
  service_rx(p);
}

int NetBackend::completion_fd(VirtQueue& q) {
  const std::uint16_t i = q.index();
  if (!port_ || i >= 2 * options_.pairs || i % 2 != 0) return -1;
  return port_->rx_fd(static_cast<std::uint16_t>(i / 2));
}

void NetBackend::complete(VirtQueue& q) {
  const std::uint16_t i = q.index();
  if (i >= 2 * options_.pairs) return;
  service_rx(*pairs_[i / 2]);
}

// ------------------------------------------------------------------------------------------------
// TX
// ------------------------------------------------------------------------------------------------

void NetBackend::service_tx(Pair& p) {
  std::lock_guard lock(p.tx_lock);
  if (p.tx == nullptr) return;
  VirtQueue& q = *p.tx;
  q.visit([&](auto& ring) {
    // Nothing held for the port and nothing to pop: pop_burst() left the ring re-armed. (In
    // busy-poll both queues' process() serve the pair, so every second call finds this.)
    if (ring.broken() || (p.held == 0 && !ring.has_available())) return;
    drain_tx(p, q, ring);
  });
}

// Pops, transmits and completes bursts while the ring has buffers and the port takes them. Each
// burst is published (flush + notify) before the next is popped: a driver that keeps the ring
// busy must get its buffers back while the drain goes on, or it runs out of descriptors. (DPDK's
// virtio-user, against a device slowed down by ThreadSanitizer, dropped every packet it had
// when its completions waited for the end of the drain.)
template <class Ring>
void NetBackend::drain_tx(Pair& p, VirtQueue& q, Ring& ring) {
  for (;;) {
    const std::uint32_t room = kBurst - p.held;
    // One-descriptor buffers through the lone lane; from the first that is not one (or is
    // malformed), pop_burst() and the full checks.
    std::size_t popped = pop_lone_tx(p, ring);
    if (p.held != kBurst && ring.has_available()) popped += pop_tx(p, q, ring, p.held);
    if (ring.broken()) return;
    if (p.held != 0) transmit_held(p, q, ring);
    ring.flush();  // this burst's completions, malformed buffers included
    q.notify();
    if (p.held != 0) return;  // backpressure: the rest waits for the port
    // Drained (pop_burst() re-armed the ring when it found nothing more). Only malformed buffers
    // in a full burst: keep draining.
    if (popped < room || !ring.has_available()) return;
  }
}

// Hands the held TX packets to the port and completes, in order, the ones it took and the
// malformed buffers between them; the rest stay held, in order.
template <class Ring>
void NetBackend::transmit_held(Pair& p, VirtQueue& q, Ring& ring) {
  const std::uint32_t n = p.held;
  PacketView* const views = p.tx_views.data();
  std::uint32_t done = 0;  // [0, done) completed
  std::uint32_t sent = 0;
  std::uint64_t bytes = 0;
  while (done != n) {
    // A run of malformed buffers (none unless held_drops), then a run of packets for the port.
    std::uint32_t first = done;
    std::uint32_t end = n;
    if (p.held_drops != 0) [[unlikely]] {
      while (first != n && views[first].segs == nullptr) ++first;
      end = first;
      while (end != n && views[end].segs != nullptr) ++end;
    }
    std::uint32_t taken = end - first;
    // vhost-user "Ring states": started but disabled -> process TX without side effects (discard).
    if (taken != 0 && q.enabled() && port_)
      taken = static_cast<std::uint32_t>(
          std::min<std::size_t>(taken, port_->transmit(p.index, {views + first, taken})));
    for (std::uint32_t k = first; k < first + taken; ++k) bytes += views[k].len;
    sent += taken;
    done = first + taken;
    if (done != end) break;  // the port is full
  }
  if (p.held_drops != 0) [[unlikely]]
    for (std::uint32_t k = 0; k < done; ++k) p.held_drops -= views[k].segs == nullptr ? 1u : 0u;
  // §5.1.6.2: the device writes nothing into TX buffers.
  ring.push_unwritten(p.tx_heads.data(), done);
  for (std::uint32_t k = done; k < n; ++k) {
    const std::uint32_t to = k - done;
    std::swap(p.tx_chains[to], p.tx_chains[k]);  // a chain's segments move with it
    p.tx_segs[to] = p.tx_segs[k];
    p.tx_heads[to] = p.tx_heads[k];
    views[to] = views[k];
    if (views[to].segs == &p.tx_segs[k]) views[to].segs = &p.tx_segs[to];
  }
  p.held = n - done;
  PairCounters::add(p.counters.tx_packets, sent);
  PairCounters::add(p.counters.tx_bytes, bytes);
  q.stats().add(q.stats().chains, sent);
  q.stats().add(q.stats().bytes, bytes);
}

// Pops into tx_chains[at, kBurst) and packs the good ones after the held ones (p.held grows); a
// malformed buffer is completed at once if nothing is held before it, else held as a drop
// (held_drops) for transmit_held(). Returns how many chains were popped.
template <class Ring>
std::size_t NetBackend::pop_tx(Pair& p, VirtQueue& q, Ring& ring, std::uint32_t at) {
  vring::Result<std::size_t> got =
      ring.pop_burst(std::span<vring::Chain>(p.tx_chains.data() + at, kBurst - at));
  if (!got) [[unlikely]] {
    q.report_broken(got.error());
    p.held = p.held_drops = 0;  // a broken ring completes nothing
    return 0;
  }
  vring::Chain* const chains = p.tx_chains.data();
  PacketView* const views = p.tx_views.data();
  const std::uint32_t hdr_len = hdr_len_;
  const std::uint32_t end = at + static_cast<std::uint32_t>(*got);
  std::uint32_t w = at;
  for (std::uint32_t i = at; i < end; ++i) {
    vring::Chain& c = chains[i];
    PacketView v;
    // Fast path: header + frame in one readable segment, no offload flags; anything else goes
    // through check_tx(), which decides on its own single read of the header.
    if (check_tx_fast(c, hdr_len, v)) [[likely]] {
      if (w != i) std::swap(chains[w], c);  // the view's segments move with the chain
      p.tx_heads[w] = chains[w].head();
      views[w++] = v;
      continue;
    }
    if (const Drop why = check_tx(c, v); why != Drop::none) [[unlikely]] {
      PairCounters::add(p.counters.tx_errors, 1);
      warn_once(why, q.index());
      if (w == 0) {  // nothing popped before it is still held: complete it now, in order
        ring.push(c, 0);
        continue;
      }
      p.tx_heads[w] = c.head();  // completed by transmit_held() in its turn
      views[w++] = PacketView{};
      ++p.held_drops;
      continue;
    }
    if (w != i) std::swap(p.tx_chains[w], c);  // the view's segments move with the chain
    p.tx_heads[w] = p.tx_chains[w].head();
    p.tx_views[w++] = v;
  }
  p.held = w;
  return *got;
}

// The common TX buffer, as one contiguous readable buffer of `len` bytes: the header and at least
// an Ethernet header, flags and gso_type 0 (§5.1.6.2.1). Shared by check_tx_fast() and the lone
// lane (pop_lone_tx); anything else goes through check_tx().
inline bool NetBackend::plain_tx_buffer(const std::byte* data, std::uint32_t len, std::uint32_t hdr_len) {
  if (len < hdr_len + kEthHeaderLen) return false;
  std::uint16_t flags_gso;  // NetHdr::flags and gso_type; guest-controlled: read once
  std::memcpy(&flags_gso, data, sizeof flags_gso);
  return flags_gso == 0;
}

// Pops one-descriptor TX buffers that are plain_tx_buffer()s through the ring's lone lane
// into [held, kBurst): no chain, the view over tx_segs. Stops at anything else, which pop_tx()
// takes with the full checks. Returns how many it popped.
template <class Ring>
std::size_t NetBackend::pop_lone_tx(Pair& p, Ring& ring) {
  const std::uint32_t hdr_len = hdr_len_;
  const std::uint32_t at = p.held;
  vring::Segment* seg = p.tx_segs.data() + at;
  vring::Head* head = p.tx_heads.data() + at;
  PacketView* view = p.tx_views.data() + at;
  const std::size_t n = ring.pop_lone(kBurst - at, false, [&](std::byte* data, std::uint32_t len, std::uint16_t id) {
    if (!plain_tx_buffer(data, len, hdr_len)) [[unlikely]]
      return vring::kNotServed;
    *seg = vring::Segment{data, len, 0};  // gpa: only writable segments are dirty-logged
    *view++ = PacketView{seg++, 1, hdr_len, len - hdr_len};
    *head++ = vring::Head{id, 1};
    return 0u;
  });
  p.held = at + static_cast<std::uint32_t>(n);
  return n;
}

// check_tx() for the common buffer: one device-readable segment that is a plain_tx_buffer().
// False: ask check_tx().
inline bool NetBackend::check_tx_fast(const vring::Chain& c, std::uint32_t hdr_len, PacketView& view) {
  const std::span<const vring::Segment> segs = c.readable();
  if (segs.size() != 1 || !c.writable().empty()) return false;
  const std::uint32_t seg_len = segs[0].len;
  if (!plain_tx_buffer(segs[0].data, seg_len, hdr_len)) return false;
  view = PacketView{segs.data(), 1, hdr_len, seg_len - hdr_len};
  return true;
}

// §5.1.6.2: a transmit buffer is the header followed by the frame, all device-readable.
NetBackend::Drop NetBackend::check_tx(const vring::Chain& c, PacketView& view) const {
  if (!c.writable().empty()) [[unlikely]]
    return Drop::writable_in_tx;
  if (c.readable_bytes() < hdr_len_) [[unlikely]]
    return Drop::short_header;
  NetHdr h{};
  std::span<const vring::Segment> segs = c.readable();
  // Guest-controlled: copied once, then checked.
  if (segs[0].len >= hdr_len_) std::memcpy(&h, segs[0].data, hdr_len_);
  else vring::ChainReader(c).read(&h, hdr_len_);
  if ((h.flags & kHdrFNeedsCsum) != 0 && !csum_) [[unlikely]]
    return Drop::needs_csum;
  if (h.gso_type != kHdrGsoNone) [[unlikely]]
    return Drop::gso;
  const std::uint32_t len = c.readable_bytes() - hdr_len_;
  if (len < kEthHeaderLen) [[unlikely]]
    return Drop::runt;
  std::uint32_t skip = hdr_len_;
  std::size_t k = 0;
  while (skip >= segs[k].len) skip -= segs[k++].len;  // terminates: len > 0 bytes follow
  view = PacketView{segs.data() + k, static_cast<std::uint32_t>(segs.size() - k), skip, len};
  return Drop::none;
}

// ------------------------------------------------------------------------------------------------
// RX
// ------------------------------------------------------------------------------------------------

// Defined before deliver(), whose generic lambda uses it: clang instantiates a member template
// only from a definition it has already seen there.
template <class Ring>
std::size_t NetBackend::deliver_locked(Pair& p, VirtQueue& q, Ring& ring,
                                       std::span<const PacketView> pkts) {
  std::size_t i = 0;
  std::uint64_t bytes = 0, delivered = 0, dropped = 0;
  for (; i < pkts.size(); ++i) {
    // The common packets in one go; the one that stops put_burst() takes reserve()/put().
    const std::size_t fast = p.filler.put_burst(ring, pkts.subspan(i), bytes);
    delivered += fast;
    i += fast;
    if (i == pkts.size()) break;
    const RxFiller::Fit f = p.filler.reserve(ring, pkts[i].len);
    if (f == RxFiller::Fit::ok) [[likely]] {
      p.filler.put(ring, pkts[i]);
      ++delivered;
      bytes += pkts[i].len;
    } else if (f == RxFiller::Fit::too_big) {
      ++dropped;
      warn_once(Drop::rx_too_big, q.index());
    } else if (f == RxFiller::Fit::broken) {
      q.report_broken(p.filler.error());
      dropped += pkts.size() - i;
      i = pkts.size();
      break;
    } else {
      break;  // no receive buffers: the rest waits (or the caller drops it)
    }
  }
  PairCounters::add(p.counters.rx_packets, delivered);
  PairCounters::add(p.counters.rx_bytes, bytes);
  PairCounters::add(p.counters.rx_dropped, dropped);
  q.stats().add(q.stats().chains, delivered);
  q.stats().add(q.stats().bytes, bytes);
  return i;
}

std::size_t NetBackend::deliver(std::uint16_t pair, std::span<const PacketView> pkts) {
  if (pair >= options_.pairs) return pkts.size();
  Pair& p = *pairs_[pair];
  std::lock_guard lock(p.rx_lock);
  // vhost-user "Ring states": a disabled ring gets no new packets; they wait.
  if (p.rx == nullptr || !p.rx->enabled()) return 0;
  VirtQueue& q = *p.rx;
  const std::size_t n = q.visit([&](auto& ring) -> std::size_t {
    if (ring.broken()) return pkts.size();  // nobody will ever read them
    const std::size_t k = deliver_locked(p, q, ring, pkts);
    ring.flush();
    return k;
  });
  q.notify();
  return n;
}

void NetBackend::service_rx(Pair& p) {
  std::lock_guard lock(p.rx_lock);
  if (p.rx == nullptr || !p.rx->enabled() || !port_) return;
  VirtQueue& q = *p.rx;
  const int fd = port_->rx_fd(p.index);
  q.visit([&](auto& ring) {
    if (ring.broken()) return;
    if (fd >= 0) return read_fd(p, q, ring, fd);
    for (;;) {  // drain the port while the guest has buffers; one flush + notify per burst
      // No receive buffer held or available: leave the frames in the port. (In busy-poll both
      // queues' process() serve the pair, so every second call would copy a burst of views for
      // nothing: 7% of the one-core loop.)
      if (p.filler.held() == 0 && !ring.has_available()) break;
      const std::size_t n = port_->pending(p.index, p.rx_views);
      if (n == 0) break;
      const std::size_t k = deliver_locked(p, q, ring, {p.rx_views.data(), n});
      port_->consume(p.index, k);
      ring.flush();
      q.notify();
      if (k < n || ring.broken()) break;
    }
  });
}

// Reads frames from the port's fd straight into receive buffers (readv into guest memory).
template <class Ring>
void NetBackend::read_fd(Pair& p, VirtQueue& q, Ring& ring, int fd) {
  constexpr std::size_t kMaxIov = 64;
  iovec iov[kMaxIov];
  std::uint32_t since_flush = 0;
  for (std::uint32_t budget = 4 * kBurst; budget != 0; --budget) {
    const RxFiller::Fit f = p.filler.reserve(ring, max_frame());
    if (f == RxFiller::Fit::broken) {
      q.report_broken(p.filler.error());
      return;
    }
    if (f != RxFiller::Fit::ok) {
      // No room for a full-size frame: read and drop, so the fd stops polling readable.
      if (f == RxFiller::Fit::too_big) warn_once(Drop::rx_too_big, q.index());
      drop_fd_frames(p, fd);
      break;
    }
    const std::size_t niov = p.filler.payload_iov(iov, kMaxIov);
    const ssize_t r = ::readv(fd, iov, static_cast<int>(niov));
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) warn_once(Drop::fd_error, q.index());
      break;
    }
    if (r == 0) break;
    p.filler.commit(ring, static_cast<std::uint32_t>(r));
    PairCounters::add(p.counters.rx_packets, 1);
    PairCounters::add(p.counters.rx_bytes, static_cast<std::uint64_t>(r));
    q.stats().add(q.stats().chains, 1);
    q.stats().add(q.stats().bytes, static_cast<std::uint64_t>(r));
    if (++since_flush == kBurst) {
      ring.flush();
      q.notify();
      since_flush = 0;
    }
  }
  ring.flush();
  q.notify();
}

void NetBackend::drop_fd_frames(Pair& p, int fd) {
  std::uint64_t dropped = 0;
  for (std::uint32_t k = 0; k < kBurst; ++k) {
    const ssize_t r = ::read(fd, p.scratch.data(), p.scratch.size());
    if (r <= 0) break;
    ++dropped;
  }
  PairCounters::add(p.counters.rx_dropped, dropped);
}

// ------------------------------------------------------------------------------------------------
// Control queue (§5.1.6.5)
// ------------------------------------------------------------------------------------------------

void NetBackend::process_ctrl(VirtQueue& q) {
  if (!q.enabled()) return;  // started but disabled: no side effects
  vring::Chain& c = q.scratch_chain();
  q.visit([&](auto& ring) {
    for (;;) {
      vring::Result<bool> got = ring.pop(c);
      if (!got) return q.report_broken(got.error());
      if (!*got) break;
      const std::uint8_t ack = handle_ctrl(c);
      if (c.writable_bytes() == 0) {
        warn_once(Drop::ctrl_no_ack, q.index());
        ring.push(c, 0);
        continue;
      }
      vring::ChainWriter(c).write(&ack, 1);  // §5.1.6.5: u8 ack, the device-writable part
      ring.push(c, 1);
    }
    ring.flush();
  });
  q.notify();
}

std::uint8_t NetBackend::handle_ctrl(const vring::Chain& c) {
  vring::ChainReader r(c);
  std::uint8_t cls_cmd[2];
  if (r.read(cls_cmd, 2) != 2) return kCtrlErr;
  if (cls_cmd[0] == kCtrlMq && cls_cmd[1] == kCtrlMqVqPairsSet) {
    std::uint16_t n = 0;
    if (r.read(&n, sizeof n) != sizeof n) return kCtrlErr;
    // §5.1.6.5.5: virtqueue_pairs between 1 and max_virtqueue_pairs.
    if (n < kMqPairsMin || n > options_.pairs) return kCtrlErr;
    active_pairs_.store(n, std::memory_order_relaxed);
    return kCtrlOk;
  }
  return kCtrlErr;  // no other class was offered (CTRL_RX, CTRL_VLAN, ... are not negotiated)
}

void NetBackend::warn_once(Drop why, std::uint16_t queue) {
  const std::uint32_t mask = 1u << static_cast<unsigned>(why);
  if ((warned_.fetch_or(mask, std::memory_order_relaxed) & mask) != 0) return;
  VIREO_LOG_WARN("net queue %u: %s (logged once per connection)", queue,
                 to_string(static_cast<std::uint8_t>(why)));
}

}  // namespace vireo::device::net
