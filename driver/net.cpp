// virtio-net driver: buffer pools in shared memory, TX/RX bursts, mergeable RX reassembly.
#include "driver/net.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include "base/log.hpp"
#include "driver/net_rx.hpp"
#include "vring/barriers.hpp"

namespace vireo::driver {
namespace {

using vring::feature_bit;
using vring::has_feature;
constexpr std::size_t kHdr = sizeof(proto::net::NetHdr);

std::uint16_t rxq(std::uint16_t qp) { return static_cast<std::uint16_t>(2 * qp); }
std::uint16_t txq(std::uint16_t qp) { return static_cast<std::uint16_t>(2 * qp + 1); }

Unexpected<Error> ring_broken(std::uint16_t q, vring::Errc e) {
  VIREO_LOG_ERROR("virtio-net queue %u is broken: the back-end %s", q, vring::to_string(e));
  return error(Error::Kind::device, "virtio-net queue " + std::to_string(q) + ": " + vring::to_string(e));
}

}  // namespace

struct NetDriver::Pair {
  Area rx_bufs;
  Area tx_bufs;
  std::vector<std::uint16_t> tx_free;  // free TX slots: a stack of tx_nfree, sized queue_size
  std::size_t tx_nfree = 0;
  RxPacket partial;                    // mergeable frame being collected
  std::uint16_t need = 0;              // buffers still missing from it
  bool dropping = false;               // the frame is malformed: its buffers go straight back
};

NetDriver::NetDriver(const NetOptions& options) : options_(options) {}
NetDriver::~NetDriver() = default;

Result<std::unique_ptr<NetDriver>> NetDriver::open(const NetOptions& o) {
  if (o.queue_pairs == 0 || o.queue_pairs > 128)
    return error(Error::Kind::unsupported, "queue pairs must be 1..128");
  const std::uint32_t rx_buf = o.rx_buf_size != 0 ? o.rx_buf_size : o.buf_size;
  if (o.buf_size < 64 + kHdr || o.buf_size > 65536 || rx_buf < 64 + kHdr || rx_buf > 65536)
    return error(Error::Kind::unsupported, "buffer sizes must be 76..65536 bytes");
  std::unique_ptr<NetDriver> d(new NetDriver(o));
  d->rx_buf_ = rx_buf;
  const std::size_t queues = 2u * o.queue_pairs;
  const std::size_t ring_bytes = 16u * o.queue_size + 4096 * 3;
  const std::size_t bufs = std::size_t{o.queue_size} * (o.buf_size + rx_buf);
  auto mem = GuestMemory::create({.size = queues * (ring_bytes + bufs) + (1u << 20), .hugepages = o.hugepages});
  if (!mem) return error(Error::Kind::resource, mem.error());
  d->mem_ = std::move(*mem);
  FrontendOptions fo{.socket_path = o.socket_path,
                     .server = o.server,
                     .features = feature_bit(proto::net::kFMac) | (o.mrg_rxbuf ? feature_bit(proto::net::kFMrgRxbuf) : 0) |
                                 (o.queue_pairs > 1 ? feature_bit(proto::net::kFMq) : 0),
                     .required = o.queue_pairs > 1 ? feature_bit(proto::net::kFMq) : 0,
                     .layout = o.layout,
                     .event_idx = o.event_idx,
                     .in_order = o.in_order,
                     .num_queues = static_cast<std::uint16_t>(queues),
                     .queue_size = o.queue_size,
                     .connect_timeout_ms = o.connect_timeout_ms,
                     .inflight = o.inflight};
  auto fe = Frontend::open(fo, d->mem_);
  if (!fe) return Unexpected(fe.error());
  d->fe_ = std::move(*fe);
  if (o.queue_pairs > d->fe_->max_queues())
    return error(Error::Kind::unsupported, "back-end supports " + std::to_string(d->fe_->max_queues()) +
                                               " queue pairs, " + std::to_string(o.queue_pairs) + " requested");
  d->mrg_ = has_feature(d->fe_->features(), proto::net::kFMrgRxbuf);
  if (auto ok = d->read_mac(); !ok) return Unexpected(ok.error());
  if (auto ok = d->setup_buffers(); !ok) return Unexpected(ok.error());
  return d;
}

// §5.1.4: mac is valid iff VIRTIO_NET_F_MAC; otherwise the driver picks a random, locally
// administered unicast address.
Result<void> NetDriver::read_mac() {
  if (has_feature(fe_->features(), proto::net::kFMac) &&
      proto::has_proto(fe_->protocol_features(), proto::kProtoFConfig)) {
    auto cfg = fe_->get_config(offsetof(proto::net::NetConfig, mac), sizeof(proto::net::NetConfig::mac));
    if (!cfg) return Unexpected(cfg.error());  // get_config() returns exactly the size asked for
    std::memcpy(mac_.data(), cfg->data(), mac_.size());
    mac_from_device_ = true;
    return {};
  }

  {
    proto::UniqueFd fd(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
    if (!fd || ::read(fd.get(), mac_.data(), mac_.size()) != static_cast<ssize_t>(mac_.size()))
      mac_ = {0, 0x16, 0x3e, 0, 0, 1};
  }
  mac_[0] = static_cast<std::uint8_t>((mac_[0] & 0xfe) | 0x02);
  return {};
}

// Per pair: queue_size RX buffers (all posted now) and queue_size TX buffers (free), so neither
// ring can run out of descriptors: every buffer is one descriptor.
Result<void> NetDriver::setup_buffers() {
  pairs_.resize(options_.queue_pairs);
  const std::size_t n = options_.queue_size;
  for (std::uint16_t qp = 0; qp < options_.queue_pairs; ++qp) {
    Pair& p = pairs_[qp];
    auto rx = mem_.alloc(n * rx_buf_, 4096);
    auto tx = mem_.alloc(n * options_.buf_size, 4096);
    if (!rx || !tx) return error(Error::Kind::resource, !rx ? rx.error() : tx.error());
    p.rx_bufs = *rx;
    p.tx_bufs = *tx;
    p.tx_free.resize(options_.queue_size);
    for (std::uint16_t s = options_.queue_size; s-- > 0;) p.tx_free[p.tx_nfree++] = s;
    std::vector<RxPacket> all(options_.queue_size);
    for (std::uint16_t s = 0; s < options_.queue_size; ++s) {
      all[s].slots[0] = s;
      all[s].nsegs = 1;
    }
    if (auto ok = release(qp, all); !ok) return ok;
  }
  // The driver polls: ask the device not to signal used buffers (§2.7.7 / §2.8.10) unless a caller
  // sleeps in wait_rx(), which re-enables them around the wait.
  for (std::uint16_t i = 0; i < fe_->num_queues(); ++i)
    vring::process_burst(fe_->queue(i).ring, [](auto& ring) { ring.disable_cb(); });
  return {};
}

// Completed TX buffers go straight from the used ring into out (none in flight on the free
// stack, the common case under load); the free stack fills what is left.
std::size_t NetDriver::alloc_tx(std::uint16_t qp, std::span<TxPacket> out) {
  Pair& p = pairs_[qp];
  std::byte* const base = p.tx_bufs.host + kHdr;
  const std::size_t stride = options_.buf_size;
  const std::uint32_t frame = max_frame();
  auto packet = [base, stride, frame](std::uint16_t s) {
    return TxPacket{std::span<std::byte>(base + std::size_t{s} * stride, frame), 0, s};
  };
  TxPacket* o = out.data();
  vring::process_burst(fe_->queue(txq(qp)).ring, [&](auto& ring) {
    // A broken TX ring hands back nothing here; send() reports it.
    (void)ring.reap_burst(out.size(), [&o, &packet](std::uint64_t token, std::uint32_t) {
      *o++ = packet(static_cast<std::uint16_t>(token));
    });
  });
  TxPacket* const end = out.data() + out.size();
  const std::uint16_t* top = p.tx_free.data() + p.tx_nfree;
  while (o != end && top != p.tx_free.data()) *o++ = packet(*--top);
  p.tx_nfree = static_cast<std::size_t>(top - p.tx_free.data());
  return static_cast<std::size_t>(o - out.data());
}

void NetDriver::free_tx(std::uint16_t qp, std::span<const TxPacket> pkts) {
  Pair& p = pairs_[qp];
  for (const TxPacket& t : pkts)
    if (p.tx_nfree < p.tx_free.size()) p.tx_free[p.tx_nfree++] = t.slot;  // else: freed twice
}

Result<std::size_t> NetDriver::send(std::uint16_t qp, std::span<const TxPacket> pkts) {
  Pair& p = pairs_[qp];
  const std::uint16_t qi = txq(qp);
  Queue& q = fe_->queue(qi);
  std::byte* const host = p.tx_bufs.host;
  const std::uint64_t gpa = p.tx_bufs.gpa;
  const std::size_t stride = options_.buf_size;
  const std::uint32_t frame = max_frame();
  const TxPacket* const t = pkts.data();
  return vring::process_burst(q.ring, [&](auto& ring) -> Result<std::size_t> {
    auto added = ring.add_burst(pkts.size(), false, [&](std::size_t k) {
      const std::size_t off = std::size_t{t[k].slot} * stride;
      std::memset(host + off, 0, kHdr);  // §5.1.6.2: no offloads, flags 0, GSO_NONE
      const auto len = static_cast<std::uint32_t>(kHdr + std::min(t[k].len, frame));
      return vring::DriverAdd{{gpa + off, len}, t[k].slot};
    });
    if (!added) return ring_broken(qi, ring.error());
    // Fewer only if the ring ran out, which cannot happen (one descriptor per TX slot), but
    // never lose a slot.
    const std::size_t n = *added;
    if (n != pkts.size()) [[unlikely]]
      free_tx(qp, pkts.subspan(n));
    stats_.tx_packets += n;
    if (ring.kick_prepare()) {
      fe_->kick(qi);
      ++stats_.kicks;
    }
    return n;
  });
}

// One used RX buffer into the frame being assembled. True when a whole frame is in pkt.
Result<bool> NetDriver::take_rx(Pair& p, vring::DriverUsed u, RxPacket& pkt) {
  const auto slot = static_cast<std::uint16_t>(u.token);
  const std::byte* buf = p.rx_bufs.host + std::size_t{slot} * rx_buf_;
  if (p.need == 0 && detail::RxArea{p.rx_bufs.host, rx_buf_, mrg_}.take_whole(u.token, u.len, pkt))
    return true;
  const std::uint32_t len = std::min(u.len, rx_buf_);  // device-controlled length
  if (p.need == 0) {  // first buffer of a frame: header
    const auto hdr = vring::read_once<proto::net::NetHdr>(buf);
    // §5.1.6.4: num_buffers is 1 unless VIRTIO_NET_F_MRG_RXBUF was negotiated.
    const std::uint16_t num = mrg_ ? hdr.num_buffers : 1;
    p.partial = RxPacket{};
    p.dropping = len < kHdr || num == 0 || num > kMaxRxSegs || u.len > rx_buf_;
    p.need = num == 0 ? 1 : num;
    if (p.dropping)
      VIREO_DP_LOG("dropping RX frame: len %u num_buffers %u", u.len, num);
  }
  RxPacket& f = p.partial;
  if (f.nsegs == kMaxRxSegs) {  // only while dropping an over-long frame: straight back
    RxPacket one;
    one.slots[0] = slot;
    one.nsegs = 1;
    if (auto ok = release(static_cast<std::uint16_t>(&p - pairs_.data()), std::span(&one, 1)); !ok)
      return Unexpected(ok.error());
  } else {
    const std::size_t skip = f.nsegs == 0 ? std::min<std::size_t>(kHdr, len) : 0;
    f.segs[f.nsegs] = std::span<const std::byte>(buf + skip, len - skip);
    f.slots[f.nsegs++] = slot;
    f.len += static_cast<std::uint32_t>(len - skip);
  }
  if (--p.need != 0) return false;
  if (p.dropping) {
    ++stats_.rx_dropped;
    if (auto ok = release(static_cast<std::uint16_t>(&p - pairs_.data()), std::span(&f, 1)); !ok)
      return Unexpected(ok.error());
    return false;
  }
  pkt = f;
  return true;
}

Result<std::size_t> NetDriver::recv(std::uint16_t qp, std::span<RxPacket> out) {
  Pair& p = pairs_[qp];
  const std::uint16_t qi = rxq(qp);
  const detail::RxArea area{p.rx_bufs.host, rx_buf_, mrg_};
  std::size_t n = 0;
  std::array<vring::DriverUsed, 32> rest;  // buffers take_rx() handles, after the reap
  while (n < out.size()) {
    // Each buffer yields at most one frame, so `want` never overfills out.
    const std::size_t want = std::min(rest.size(), out.size() - n);
    RxPacket* pkt = out.data() + n;
    vring::DriverUsed* slow = rest.data();
    // Whole frames go straight from the used ring into out; from the first buffer that is not
    // one (a mergeable frame, a bad length), the rest of the burst goes through take_rx in order.
    bool whole = p.need == 0;
    auto got = vring::process_burst(fe_->queue(qi).ring, [&](auto& ring) -> Result<std::size_t> {
      auto r = ring.reap_burst(want, [&](std::uint64_t token, std::uint32_t len) {
        if (whole && area.take_whole(token, len, *pkt)) [[likely]] {
          ++pkt;
        } else {
          whole = false;
          *slow++ = vring::DriverUsed{token, len};
        }
      });
      if (!r) return ring_broken(qi, ring.error());
      return *r;
    });
    if (!got) return Unexpected(got.error());
    if (*got == 0) break;
    n = static_cast<std::size_t>(pkt - out.data());
    for (const vring::DriverUsed* u = rest.data(); u != slow; ++u) {
      auto done = take_rx(p, *u, out[n]);
      if (!done) return Unexpected(done.error());
      if (*done) ++n;
    }
  }
  stats_.rx_packets += n;
  return n;
}

// Re-posts the buffers of every frame: runs of one-buffer frames (the common case) as one
// add_burst each, a mergeable frame's buffers as one more; one kick decision for all.
Result<void> NetDriver::release(std::uint16_t qp, std::span<const RxPacket> pkts) {
  Pair& p = pairs_[qp];
  const std::uint16_t qi = rxq(qp);
  const std::uint64_t gpa = p.rx_bufs.gpa;
  const std::uint32_t size = rx_buf_;
  auto buffer = [gpa, size](std::uint16_t slot) {
    return vring::DriverAdd{{gpa + std::size_t{slot} * size, size}, slot};
  };
  return vring::process_burst(fe_->queue(qi).ring, [&](auto& ring) -> Result<void> {
    auto post = [&](std::size_t n, auto&& at) -> Result<void> {
      auto r = ring.add_burst(n, true, at);
      if (!r) return ring_broken(qi, ring.error());
      if (*r != n) return ring_broken(qi, vring::Errc::no_space);
      return {};
    };
    const RxPacket* const end = pkts.data() + pkts.size();
    for (const RxPacket* run = pkts.data(); run != end;) {
      const RxPacket* f = run;
      while (f != end && f->nsegs == 1) ++f;
      if (f != run) {
        auto ok = post(static_cast<std::size_t>(f - run),
                       [run, &buffer](std::size_t k) { return buffer(run[k].slots[0]); });
        if (!ok) return ok;
      }
      if (f != end) {
        auto ok = post(f->nsegs, [f, &buffer](std::size_t k) { return buffer(f->slots[k]); });
        if (!ok) return ok;
        ++f;
      }
      run = f;
    }
    if (ring.kick_prepare()) {
      fe_->kick(qi);
      ++stats_.kicks;
    }
    return {};
  });
}

Result<void> NetDriver::wait_rx(std::uint16_t qp, int timeout_ms) {
  const std::uint16_t qi = rxq(qp);
  Queue& q = fe_->queue(qi);
  const bool pending = vring::process_burst(q.ring, [](auto& ring) { return ring.enable_cb(); });
  Result<bool> woke = true;
  if (!pending) woke = fe_->wait_call(std::span(&qi, 1), timeout_ms);
  vring::process_burst(q.ring, [](auto& ring) { ring.disable_cb(); });
  if (!woke) return Unexpected(woke.error());
  return {};
}

Result<bool> NetDriver::poll_link() {
  if (fe_->check_connection()) return false;
  VIREO_LOG_WARN("virtio-net: back-end at %s went away; reconnecting", options_.socket_path.c_str());
  if (auto ok = fe_->reconnect(); !ok) return Unexpected(ok.error());
  return true;
}

}  // namespace vireo::driver
