#include "tests/net/net_harness.hpp"

#include <algorithm>

namespace vireo::test {

using namespace vring;
namespace net = device::net;

namespace {

net::NetOptions net_options(const GuestOptions& o) {
  net::NetOptions n;
  n.pairs = o.pairs;
  n.max_queue_size = 1024;
  n.mtu = o.mtu;
  return n;
}

}  // namespace

NetGuest::NetGuest(const GuestOptions& o, std::unique_ptr<net::Port> port)
    : guest(std::size_t{16} << 20), dev(net_options(o), std::move(port)) {
  features_ = feature_bit(kFVersion1) | feature_bit(net::kFMac) | feature_bit(net::kFStatus) |
              feature_bit(net::kFMtu);
  if (o.mergeable) features_ |= feature_bit(net::kFMrgRxbuf);
  if (o.event_idx) features_ |= feature_bit(kFEventIdx);
  if (o.packed) features_ |= feature_bit(kFRingPacked);
  if (o.in_order) features_ |= feature_bit(kFInOrder);
  if (o.pairs > 1) features_ |= feature_bit(net::kFMq) | feature_bit(net::kFCtrlVq);
  EXPECT_TRUE(dev.set_features(features_));
  const std::uint16_t n = dev.info().num_queues;
  queues_.resize(n);
  for (std::uint16_t i = 0; i < n; ++i) make_queue(i, o, i % 2 == 1 || o.start_rx || i == 2 * o.pairs);
}

NetGuest::~NetGuest() {
  for (Queue& q : queues_) dev.queue_stopping(*q.vq);
}

void NetGuest::make_queue(std::uint16_t index, const GuestOptions& o, bool start) {
  Queue& q = queues_[index];
  const bool packed = has_feature(features_, kFRingPacked);
  const std::size_t driver_bytes = packed ? sizeof(EventSuppress) : split_avail_bytes(o.qsize);
  const std::size_t device_bytes = packed ? sizeof(EventSuppress) : split_used_bytes(o.qsize);
  const std::uint64_t desc = alloc(16u * o.qsize);
  const std::uint64_t avail = alloc(driver_bytes);
  const std::uint64_t used = alloc(device_bytes);
  DriverConfig dc{};
  dc.size = o.qsize;
  dc.features = features_;
  dc.desc = guest.host(desc);
  q.desc = dc.desc;
  dc.avail = guest.host(avail);
  dc.used = guest.host(used);
  EXPECT_TRUE(configure_driver_queue(q.drv, dc));
  auto call = proto::EventFd::create(/*nonblocking=*/true);
  EXPECT_TRUE(call);
  q.call = std::move(*call);
  q.vq = std::make_unique<device::VirtQueue>(index, device::Ring{}, o.event_idx, q.call.fd(), -1,
                                             nullptr, nullptr, 64);
  EXPECT_TRUE(configure_queue(q.vq->ring(), &guest.mem(), features_, o.qsize, dc.desc, dc.avail,
                              dc.used, RingState{}));
  q.vq->set_enabled(true);
  if (start) dev.queue_started(*q.vq);
}

std::uint64_t NetGuest::token(Queue& q, std::uint64_t gpa, std::uint32_t len) {
  q.buf_gpa.push_back(gpa);
  q.buf_len.push_back(len);
  return q.buf_gpa.size() - 1;
}

void NetGuest::send(std::uint16_t pair, const std::vector<std::uint8_t>& frame, NetHdr hdr,
                    int nsegs) {
  const std::uint32_t hl = hdr_len();
  const auto total = static_cast<std::uint32_t>(hl + frame.size());
  const std::uint64_t gpa = alloc(total);
  guest.write(gpa, &hdr, hl);
  guest.write(gpa + hl, frame.data(), frame.size());
  std::vector<DriverBuffer> r;
  if (nsegs <= 1) {
    r.push_back({gpa, total});
  } else {  // header alone, then the frame cut into nsegs - 1 pieces
    r.push_back({gpa, hl});
    const std::uint32_t piece = std::max<std::uint32_t>(1, static_cast<std::uint32_t>(frame.size()) / (nsegs - 1));
    for (std::uint32_t off = 0; off < frame.size(); off += piece)
      r.push_back({gpa + hl + off, std::min<std::uint32_t>(piece, static_cast<std::uint32_t>(frame.size()) - off)});
  }
  add_raw(tx(pair), r, {});
}

void NetGuest::add_raw(std::uint16_t queue, std::vector<DriverBuffer> readable,
                       std::vector<DriverBuffer> writable) {
  Queue& q = queues_[queue];
  const std::uint32_t len = readable.empty() ? 0 : readable[0].len;
  const std::uint64_t t = token(q, readable.empty() ? 0 : readable[0].gpa, len);
  process_burst(q.drv, [&](auto& ring) {
    ASSERT_TRUE(ring.add(readable, writable, t)) << "driver ring full";
    ring.kick_prepare();
  });
}

void NetGuest::post_rx(std::uint16_t pair, int count, std::uint32_t len) {
  Queue& q = queues_[rx(pair)];
  process_burst(q.drv, [&](auto& ring) {
    for (int i = 0; i < count; ++i) {
      const std::uint64_t gpa = alloc(len);
      guest.fill(gpa, len, std::byte{0xEE});
      const DriverBuffer b{gpa, len};
      ASSERT_TRUE(ring.add({}, std::span<const DriverBuffer>(&b, 1), token(q, gpa, len)));
    }
    ring.kick_prepare();
  });
}

std::vector<NetGuest::Rx> NetGuest::receive(std::uint16_t pair) {
  Queue& q = queues_[rx(pair)];
  std::vector<DriverUsed> used;
  process_burst(q.drv, [&](auto& ring) {
    DriverUsed u;
    while (ring.get_used(u).value_or(false)) used.push_back(u);
    EXPECT_FALSE(ring.broken()) << to_string(ring.error());
  });
  const std::uint32_t hl = hdr_len();
  std::vector<Rx> out;
  for (std::size_t i = 0; i < used.size();) {
    Rx r;
    const std::uint64_t gpa = q.buf_gpa[used[i].token];
    EXPECT_GE(used[i].len, hl) << "used length shorter than the virtio-net header";
    guest.read(gpa, &r.hdr, hl);
    if (hl < sizeof(NetHdr)) r.hdr.num_buffers = 1;
    const std::size_t n = std::max<std::uint16_t>(r.hdr.num_buffers, 1);
    EXPECT_LE(i + n, used.size()) << "num_buffers larger than the used buffers";
    for (std::size_t k = 0; k < n && i + k < used.size(); ++k) {
      const DriverUsed& u = used[i + k];
      const std::uint64_t at = q.buf_gpa[u.token] + (k == 0 ? hl : 0);
      const std::uint32_t len = k == 0 ? u.len - std::min(u.len, hl) : u.len;
      EXPECT_LE(u.len, q.buf_len[u.token]) << "used length beyond the posted buffer";
      const std::size_t old = r.frame.size();
      r.frame.resize(old + len);
      guest.read(at, r.frame.data() + old, len);
      r.lens.push_back(u.len);
    }
    r.buffers = static_cast<std::uint16_t>(n);
    out.push_back(std::move(r));
    i += n;
  }
  return out;
}

std::vector<std::uint64_t> NetGuest::reap_tx_tokens(std::uint16_t pair) {
  Queue& q = queues_[tx(pair)];
  std::vector<std::uint64_t> tokens;
  process_burst(q.drv, [&](auto& ring) {
    DriverUsed u;
    while (ring.get_used(u).value_or(false)) {
      EXPECT_EQ(u.len, 0u) << "the device wrote into a TX buffer";
      tokens.push_back(u.token);
    }
  });
  return tokens;
}

std::uint64_t NetGuest::calls(std::uint16_t queue) {
  return queues_[queue].call.drain().value_or(0);
}

}  // namespace vireo::test
