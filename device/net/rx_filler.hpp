// The receive side of one queue pair: a window of popped, not yet used RX chains, and the single
// copy of a packet (virtio-net header + frame) into them.
//
//   RxFiller rx;  rx.configure(/*hdr_len=*/12, /*mergeable=*/true);
//   q.visit([&](auto& ring) {                               // one dispatch per burst
//     for (const PacketView& p : pkts) {
//       if (rx.reserve(ring, p.len) != RxFiller::Fit::ok) break;
//       rx.put(ring, p);                                    // header, payload, push
//     }
//     ring.flush();
//   });
//
// With VIRTIO_NET_F_MRG_RXBUF a packet spans as many chains as it needs and num_buffers says how
// many (§5.1.6.4); without it each packet takes exactly one chain and num_buffers is 1
// (§5.1.6.4.1). Chains are popped in bursts; chains popped but not needed by the current packet
// stay in the window for the next one, and release() hands them back (used length 0) when the
// queue stops. Chains are filled in pop order and pushed in pop order. While the window is empty,
// put_burst() fills one-descriptor buffers straight from the ring (its lone lane, serve_lone).
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <utility>
#include <vector>

#include "device/net/net_defs.hpp"
#include "vring/chain.hpp"
#include "vring/errc.hpp"

namespace vireo::device::net {

class RxFiller {
 public:
  enum class Fit : std::uint8_t {
    ok,          // reserved chains hold the packet
    no_buffers,  // the guest has not posted enough receive buffers (yet)
    too_big,     // cannot hold it even with every chain the window can take: drop it
    broken,      // the ring reported a guest violation (error() says which)
  };
  static constexpr std::uint32_t kWindow = 64;      // chains held at most
  static constexpr std::uint32_t kPopBurst = 32;    // chains popped per pop_burst
  static constexpr std::uint32_t kMaxSegments = 64; // host segments per RX chain

  RxFiller() {
    chains_.reserve(kWindow);
    for (std::uint32_t i = 0; i < kWindow; ++i) chains_.emplace_back(kMaxSegments);
  }

  void configure(std::uint32_t hdr_len, bool mergeable) {
    hdr_len_ = hdr_len;
    mergeable_ = mergeable;
  }
  std::uint32_t hdr_len() const { return hdr_len_; }
  std::uint32_t held() const { return end_ - begin_; }
  vring::Errc error() const { return error_; }
  // Bytes the reserved chains can take after the header (valid after reserve()).
  std::uint32_t room() const { return room_ > hdr_len_ ? room_ - hdr_len_ : 0; }

  // Makes sure the window holds chains for a packet of `payload` bytes (header added here).
  // On too_big the window's chains are still reserved and room() tells how much fits.
  template <class Ring>
  [[gnu::always_inline]] Fit reserve(Ring& ring, std::uint32_t payload) {
    // Fast path: the next held chain alone takes header + packet (what the general search below
    // finds first, with or without MRG_RXBUF).
    if (begin_ != end_) [[likely]] {
      const std::uint32_t room = chains_[begin_].writable_bytes();
      if (room >= std::uint64_t{hdr_len_} + payload) [[likely]] {
        n_ = 1;
        room_ = room;
        return Fit::ok;
      }
    }
    return reserve_slow(ring, payload);
  }

  // Writes the header and the packet into the reserved chains and pushes them. After reserve()
  // returned ok for p.len.
  template <class Ring>
  [[gnu::always_inline]] void put(Ring& ring, const PacketView& p) {
    // Fast path, the common case: one contiguous source segment and one receive chain whose
    // first writable segment holds header + frame: one header store and one move.
    if (n_ == 1 && p.nsegs == 1 && p.segs[0].len >= std::uint64_t{p.skip} + p.len) [[likely]] {
      const vring::Chain& c = chains_[begin_];
      const std::span<const vring::Segment> w = c.writable();
      if (!w.empty() && w[0].len >= std::uint64_t{hdr_len_} + p.len) [[likely]] {
        write_one_buffer_header(w[0].data, hdr_len_);
        // A move, not a copy: with a loopback port the source is the guest's own TX buffer, which
        // a hostile driver may place over this RX buffer; overlapping memcpy is undefined.
        move_frame(w[0].data + hdr_len_, p.segs[0].data + p.skip, p.len);
        ring.push(c, hdr_len_ + p.len);
        if (++begin_ == end_) begin_ = end_ = 0;
        n_ = 0;
        return;
      }
    }
    put_slow(ring, p);
  }

  // reserve() + put() for pkts from the front while each takes put()'s fast path (one source
  // segment; the next held chain's first writable segment holds header + frame), popping more
  // chains whenever the window runs dry. Returns how many it delivered and adds their payload
  // bytes to `bytes`; the caller goes on with reserve()/put() from there (which also reports a
  // ring that broke here, or finds no buffers).
  template <class Ring>
  std::size_t put_burst(Ring& ring, std::span<const PacketView> pkts, std::uint64_t& bytes) {
    // Nothing held: one-descriptor buffers are filled straight from the ring (no window).
    std::size_t done = begin_ == end_ ? put_lone(ring, pkts, bytes) : 0;
    while (done != pkts.size()) {
      if (begin_ == end_ && pop_more(ring) != Fit::ok) break;
      done += put_held(ring, pkts.subspan(done), bytes);
      if (begin_ != end_) break;  // chains left: the next packet needs the slow path
    }
    return done;
  }

  // reserve() for everything but one held chain that takes the packet.
  template <class Ring>
  [[gnu::noinline]] Fit reserve_slow(Ring& ring, std::uint32_t payload) {
    const std::uint64_t need = std::uint64_t{hdr_len_} + payload;
    if (!mergeable_) {
      // §5.1.6.3.1: without MRG_RXBUF every packet goes into a single buffer.
      if (begin_ == end_)
        if (const Fit f = pop_more(ring); f != Fit::ok) return f;
      n_ = 1;
      room_ = chains_[begin_].writable_bytes();
      return room_ >= need ? Fit::ok : Fit::too_big;
    }
    std::uint64_t sum = 0;
    std::uint32_t i = begin_;
    for (;;) {
      for (; i < end_; ++i) {
        sum += chains_[i].writable_bytes();
        if (sum >= need) {
          n_ = i + 1 - begin_;
          room_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(sum, UINT32_MAX));
          return Fit::ok;
        }
      }
      if (end_ == kWindow && begin_ == 0) {
        n_ = end_ - begin_;
        room_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(sum, UINT32_MAX));
        return Fit::too_big;
      }
      const std::uint32_t shift = compact();
      i -= shift;
      if (const Fit f = pop_more(ring); f != Fit::ok) return f;
    }
  }

  // put() for a packet in several segments or chains.
  template <class Ring>
  [[gnu::noinline]] void put_slow(Ring& ring, const PacketView& p) {
    Dst dst(chains_.data() + begin_, n_);
    write_header(dst, n_);
    const vring::Segment* s = p.segs;
    std::uint32_t skip = p.skip;
    std::uint32_t left = p.len;
    for (std::uint32_t k = 0; k < p.nsegs && left != 0; ++k, ++s) {
      if (skip >= s->len) {
        skip -= s->len;
        continue;
      }
      const std::uint32_t piece = std::min(left, s->len - skip);
      dst.write(s->data + skip, piece);
      left -= piece;
      skip = 0;
    }
    finish(ring, hdr_len_ + p.len - left);
  }

  // Scatter list over the reserved chains after the header, at most `max` entries and room()
  // bytes: for ports that read a frame straight into guest memory (readv). Then commit().
  std::size_t payload_iov(iovec* iov, std::size_t max) const {
    std::size_t n = 0;
    std::uint32_t skip = hdr_len_;
    for (std::uint32_t c = 0; c < n_ && n < max; ++c) {
      for (const vring::Segment& s : chains_[begin_ + c].writable()) {
        if (n == max) break;
        if (skip >= s.len) {
          skip -= s.len;
          continue;
        }
        iov[n++] = iovec{s.data + skip, s.len - skip};
        skip = 0;
      }
    }
    return n;
  }

  // A frame of `payload` bytes was read through payload_iov(): writes the header (num_buffers =
  // the chains it actually occupies) and pushes those chains; unused ones stay in the window.
  template <class Ring>
  void commit(Ring& ring, std::uint32_t payload) {
    const std::uint64_t total = std::uint64_t{hdr_len_} + payload;
    std::uint64_t sum = 0;
    std::uint32_t used = 0;
    while (used < n_ && sum < total) sum += chains_[begin_ + used++].writable_bytes();
    n_ = std::max<std::uint32_t>(used, 1);
    Dst dst(chains_.data() + begin_, n_);
    write_header(dst, n_);
    finish(ring, static_cast<std::uint32_t>(std::min<std::uint64_t>(total, sum)));
  }

  // Hands every held chain back unused (used length 0): the queue is stopping and must leave
  // nothing in flight. The caller flushes.
  template <class Ring>
  void release(Ring& ring) {
    for (std::uint32_t i = begin_; i < end_; ++i) ring.push(chains_[i], 0);
    forget();
  }
  // Drops the window without pushing (the ring was reset or is broken).
  void forget() { begin_ = end_ = n_ = room_ = 0; }

 private:
  // put_burst() through the ring's lone lane (serve_lone): each one-descriptor receive buffer
  // that holds header + frame is filled and pushed as the ring hands it over. Stops at the first
  // packet or buffer that needs the window.
  template <class Ring>
  std::size_t put_lone(Ring& ring, std::span<const PacketView> pkts, std::uint64_t& bytes) {
    const std::uint32_t hdr_len = hdr_len_;
    const PacketView* p = pkts.data();
    std::uint64_t moved = 0;
    const std::size_t n = ring.serve_lone(pkts.size(), true, [&](std::byte* dst, std::uint32_t room, std::uint16_t) {
      // Read before the copy: stores into guest memory may alias the view (port memory).
      const PacketView v = *p;
      if (v.nsegs != 1) [[unlikely]]
        return vring::kNotServed;
      const vring::Segment s = v.segs[0];
      if (s.len < std::uint64_t{v.skip} + v.len || room < std::uint64_t{hdr_len} + v.len) [[unlikely]]
        return vring::kNotServed;
      write_one_buffer_header(dst, hdr_len);
      move_frame(dst + hdr_len, s.data + v.skip, v.len);  // a move: see put()
      ++p;
      moved += v.len;
      return hdr_len + v.len;
    });
    bytes += moved;
    return n;
  }

  // put_burst() over the chains the window holds. The window cursor stays in registers: the frame
  // copies go to guest memory, which the compiler must assume aliases every member.
  template <class Ring>
  std::size_t put_held(Ring& ring, std::span<const PacketView> pkts, std::uint64_t& bytes) {
    const std::uint32_t hdr_len = hdr_len_;
    const vring::Chain* const chains = chains_.data();
    const std::uint32_t end = end_;
    const std::uint32_t first = begin_;
    std::uint32_t begin = first;
    std::uint64_t moved = 0;
    std::uint32_t written[kWindow];  // used lengths, pushed after the copies in one push_burst()
    std::size_t i = 0;
    for (; i < pkts.size() && begin != end; ++i) {
      const PacketView& p = pkts[i];
      if (p.nsegs != 1 || p.segs[0].len < std::uint64_t{p.skip} + p.len) [[unlikely]]
        break;
      const vring::Chain& c = chains[begin];
      const std::span<const vring::Segment> w = c.writable();
      if (w.empty() || w[0].len < std::uint64_t{hdr_len} + p.len) [[unlikely]]
        break;
      std::byte* const dst = w[0].data;
      write_one_buffer_header(dst, hdr_len);
      // A move, not a copy: see put().
      move_frame(dst + hdr_len, p.segs[0].data + p.skip, p.len);
      written[begin - first] = hdr_len + p.len;
      moved += p.len;
      ++begin;
    }
    ring.push_burst(chains + first, begin - first, written);
    if (begin == end) begin_ = end_ = 0;
    else begin_ = begin;
    n_ = 0;
    bytes += moved;
    return i;
  }

  // A write cursor over the writable segments of n consecutive chains.
  class Dst {
   public:
    Dst(const vring::Chain* chains, std::uint32_t n) : chains_(chains), n_(n) { load(); }
    void write(const std::byte* src, std::uint32_t len) {
      while (len != 0 && seg_ != nullptr) {
        const std::uint32_t k = std::min(len, seg_->len - off_);
        std::memmove(seg_->data + off_, src, k);  // src may overlap guest memory (see put())
        src += k;
        len -= k;
        off_ += k;
        if (off_ == seg_->len) next();
      }
    }

   private:
    void load() {
      while (c_ < n_) {
        std::span<const vring::Segment> w = chains_[c_].writable();
        if (s_ < w.size()) {
          seg_ = &w[s_];
          return;
        }
        ++c_;
        s_ = 0;
      }
      seg_ = nullptr;
    }
    void next() {
      ++s_;
      off_ = 0;
      load();
    }
    const vring::Chain* chains_;
    std::uint32_t n_;
    std::uint32_t c_ = 0;
    std::size_t s_ = 0;
    std::uint32_t off_ = 0;
    const vring::Segment* seg_ = nullptr;
  };

  // The header of a packet in one buffer, as fixed-size stores: 12 bytes, or 10 for a legacy
  // driver (§5.1.6). No offloads negotiated: flags 0, GSO_NONE (§5.1.6.4); num_buffers 1
  // (§5.1.6.4.1: one buffer used).
  static void write_one_buffer_header(std::byte* dst, std::uint32_t hdr_len) {
    static constexpr NetHdr kHdr{0, kHdrGsoNone, 0, 0, 0, 0, 1};
    if (hdr_len == kNetHdrLen) std::memcpy(dst, &kHdr, kNetHdrLen);
    else std::memcpy(dst, &kHdr, kLegacyNetHdrLen);
  }

  void write_header(Dst& dst, std::uint32_t num_buffers) const {
    NetHdr h{};  // no offloads negotiated: flags 0, GSO_NONE (§5.1.6.4)
    // §5.1.6.4.1: num_buffers is the number of buffers used; 1 without MRG_RXBUF.
    h.num_buffers = static_cast<std::uint16_t>(num_buffers);
    dst.write(reinterpret_cast<const std::byte*>(&h), hdr_len_);
  }

  // Pushes the n_ reserved chains, filled in order with `total` bytes, and drops them from the
  // window.
  template <class Ring>
  void finish(Ring& ring, std::uint32_t total) {
    for (std::uint32_t k = 0; k < n_; ++k) {
      const vring::Chain& c = chains_[begin_ + k];
      const std::uint32_t w = std::min(total, c.writable_bytes());
      ring.push(c, w);
      total -= w;
    }
    begin_ += n_;
    n_ = 0;
    if (begin_ == end_) begin_ = end_ = 0;
  }

  // Moves the held chains to the front of the window; returns how far they moved.
  std::uint32_t compact() {
    const std::uint32_t shift = begin_;
    if (shift == 0) return 0;
    for (std::uint32_t i = begin_; i < end_; ++i) std::swap(chains_[i - shift], chains_[i]);
    end_ -= shift;
    begin_ = 0;
    return shift;
  }

  template <class Ring>
  Fit pop_more(Ring& ring) {
    if (end_ == kWindow) compact();
    const std::uint32_t want = std::min(kWindow - end_, kPopBurst);
    vring::Result<std::size_t> got = ring.pop_burst(std::span<vring::Chain>(chains_.data() + end_, want));
    if (!got) [[unlikely]] {
      error_ = ring.error();  // the violation that broke it (a later pop reports only "broken")
      forget();  // the ring is broken: its chains will never be completed
      return Fit::broken;
    }
    if (*got == 0) return Fit::no_buffers;
    end_ += static_cast<std::uint32_t>(*got);
    return Fit::ok;
  }

  std::vector<vring::Chain> chains_;
  std::uint32_t begin_ = 0;  // first held chain
  std::uint32_t end_ = 0;    // one past the last held chain
  std::uint32_t n_ = 0;      // chains reserved for the current packet, from begin_
  std::uint32_t room_ = 0;   // writable bytes in those chains
  std::uint32_t hdr_len_ = kNetHdrLen;
  bool mergeable_ = false;
  vring::Errc error_ = vring::Errc::ok;
};

}  // namespace vireo::device::net
