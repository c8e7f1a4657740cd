// ResponderPort: ARP and ICMP echo answers for one IPv4 address.
#include <cstring>

#include "device/net/net_backend.hpp"
#include "device/net/packet.hpp"
#include "device/net/ports.hpp"

namespace vireo::device::net {

// Replies of one pair: a single-producer (transmit, under the TX lock) single-consumer
// (pending/consume, under the RX lock) ring of kSlots frames.
struct ResponderPort::Queue {
  explicit Queue(std::uint32_t slot_bytes) : storage(std::size_t{kSlots} * slot_bytes) {}
  std::vector<std::uint8_t> storage;
  std::array<vring::Segment, kSlots> segs{};
  std::atomic<std::uint32_t> head{0};  // next reply to deliver (consumer)
  std::atomic<std::uint32_t> tail{0};  // next slot to fill (producer)
};

ResponderPort::ResponderPort(std::array<std::uint8_t, 4> ip) : ip_(ip) {}
ResponderPort::~ResponderPort() = default;

Status ResponderPort::attach(NetBackend& dev) {
  dev_ = &dev;
  slot_bytes_ = (std::max(dev.max_frame(), kMinFrameLen) + 63) & ~63u;
  queues_.clear();
  for (std::uint16_t i = 0; i < dev.pairs(); ++i)
    queues_.push_back(std::make_unique<Queue>(slot_bytes_));
  return {};
}

void ResponderPort::reset() {
  for (auto& q : queues_) {
    q->head.store(0, std::memory_order_relaxed);
    q->tail.store(0, std::memory_order_relaxed);
  }
}

std::size_t ResponderPort::transmit(std::uint16_t pair, std::span<const PacketView> pkts) {
  Queue& q = *queues_[pair];
  std::uint32_t tail = q.tail.load(std::memory_order_relaxed);  // we are the only writer
  // acquire: pairs with consume()'s release of head; slots before it are free to overwrite.
  std::uint32_t head = q.head.load(std::memory_order_acquire);
  for (const PacketView& p : pkts) {
    if (p.len > slot_bytes_) continue;  // larger than any frame we answer
    if (tail - head == kSlots) {
      head = q.head.load(std::memory_order_acquire);  // pairs with consume()'s release
      if (tail - head == kSlots) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
    }
    const std::uint32_t slot = tail % kSlots;
    std::uint8_t* out = q.storage.data() + std::size_t{slot} * slot_bytes_;
    const std::uint32_t len = answer(p, out);
    if (len == 0) continue;
    q.segs[slot] = vring::Segment{reinterpret_cast<std::byte*>(out), len, 0};
    ++tail;
    replies_.fetch_add(1, std::memory_order_relaxed);
  }
  // release: the reply bytes and segs[] before the new tail; pairs with pending()'s acquire.
  q.tail.store(tail, std::memory_order_release);
  return pkts.size();
}

std::size_t ResponderPort::pending(std::uint16_t pair, std::span<PacketView> out) {
  Queue& q = *queues_[pair];
  const std::uint32_t head = q.head.load(std::memory_order_relaxed);  // we are the only writer
  // acquire: pairs with transmit()'s release of tail (reply bytes written before it).
  const std::uint32_t tail = q.tail.load(std::memory_order_acquire);
  const std::size_t n = std::min<std::size_t>(out.size(), tail - head);
  for (std::size_t i = 0; i < n; ++i) {
    const vring::Segment& s = q.segs[(head + i) % kSlots];
    out[i] = PacketView{&s, 1, 0, s.len};
  }
  return n;
}

void ResponderPort::consume(std::uint16_t pair, std::size_t n) {
  Queue& q = *queues_[pair];
  const std::uint32_t head = q.head.load(std::memory_order_relaxed);
  // release: we are done reading those slots; pairs with transmit()'s acquire of head.
  q.head.store(head + static_cast<std::uint32_t>(n), std::memory_order_release);
}

std::uint32_t ResponderPort::answer(const PacketView& p, std::uint8_t* out) const {
  // One copy out of guest memory, then everything is parsed and rewritten in place.
  const std::uint32_t len = static_cast<std::uint32_t>(
      copy_out(p, 0, reinterpret_cast<std::byte*>(out), slot_bytes_));
  if (len < kEthHeaderLen) return 0;
  const std::uint16_t type = load_be16(out + 12);
  if (type == kEtherTypeArp) return answer_arp(out, len, out);
  if (type == kEtherTypeIpv4) return answer_icmp(out, len, out);
  return 0;
}

// RFC 826: a request (oper 1) for our protocol address gets a reply (oper 2) from kPortMac.
std::uint32_t ResponderPort::answer_arp(const std::uint8_t* req, std::uint32_t len,
                                        std::uint8_t* out) const {
  if (len < kArpFrameLen) return 0;
  const std::uint8_t* a = req + 14;
  if (load_be16(a) != 1 || load_be16(a + 2) != kEtherTypeIpv4 || a[4] != 6 || a[5] != 4 ||
      load_be16(a + 6) != 1 || std::memcmp(a + 24, ip_.data(), 4) != 0)
    return 0;
  std::uint8_t sha[6], spa[4];
  std::memcpy(sha, a + 8, 6);
  std::memcpy(spa, a + 14, 4);
  std::memset(out, 0, kMinFrameLen);
  std::memcpy(out, sha, 6);
  std::memcpy(out + 6, kPortMac.data(), 6);
  store_be16(out + 12, kEtherTypeArp);
  std::uint8_t* r = out + 14;
  store_be16(r, 1);                // htype Ethernet
  store_be16(r + 2, kEtherTypeIpv4);
  r[4] = 6;
  r[5] = 4;
  store_be16(r + 6, 2);            // oper: reply
  std::memcpy(r + 8, kPortMac.data(), 6);
  std::memcpy(r + 14, ip_.data(), 4);
  std::memcpy(r + 18, sha, 6);
  std::memcpy(r + 24, spa, 4);
  return kMinFrameLen;
}

// RFC 792: an echo request (type 8) to our address comes back as an echo reply (type 0) with the
// same identifier, sequence and data; both checksums are recomputed.
std::uint32_t ResponderPort::answer_icmp(const std::uint8_t* req, std::uint32_t len,
                                         std::uint8_t* out) const {
  if (len < kEthHeaderLen + 20 + 8) return 0;
  std::uint8_t* ip = out + 14;
  const std::uint32_t ihl = (req[14] & 0x0F) * 4u;
  const std::uint32_t total = load_be16(req + 16);
  if ((req[14] >> 4) != 4 || ihl < 20 || total < ihl + 8 || kEthHeaderLen + total > len) return 0;
  if ((load_be16(ip + 6) & 0x3FFF) != 0) return 0;  // a fragment: not answered
  if (ip[9] != kIpProtoIcmp || std::memcmp(ip + 16, ip_.data(), 4) != 0) return 0;
  if (inet_checksum(ip, ihl) != 0) return 0;        // corrupt IPv4 header
  std::uint8_t* icmp = ip + ihl;
  const std::uint32_t icmp_len = total - ihl;
  if (icmp[0] != 8 || icmp[1] != 0 || inet_checksum(icmp, icmp_len) != 0) return 0;
  std::uint8_t mac[6];
  std::memcpy(mac, out + 6, 6);
  std::memcpy(out, mac, 6);
  std::memcpy(out + 6, kPortMac.data(), 6);
  std::uint8_t addr[4];
  std::memcpy(addr, ip + 12, 4);
  std::memcpy(ip + 12, ip + 16, 4);
  std::memcpy(ip + 16, addr, 4);
  ip[8] = 64;                        // TTL
  store_be16(ip + 10, 0);
  store_be16(ip + 10, inet_checksum(ip, ihl));
  icmp[0] = 0;                       // echo reply
  store_be16(icmp + 2, 0);
  store_be16(icmp + 2, inet_checksum(icmp, icmp_len));
  std::uint32_t frame = kEthHeaderLen + total;
  if (frame < kMinFrameLen) {
    std::memset(out + frame, 0, kMinFrameLen - frame);
    frame = kMinFrameLen;
  }
  return frame;
}

}  // namespace vireo::device::net
