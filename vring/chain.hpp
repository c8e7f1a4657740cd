// A descriptor chain popped by the device: zero-copy segments into guest memory.
//
//   Chain chain(kDefaultMaxSegments);     // allocate once, reuse for every pop
//   while (ring.pop(chain) == PopResult::chain) {
//     ChainReader r(chain);  r.read(&hdr, sizeof hdr);       // device-readable part
//     ChainWriter w(chain);  w.write(&status, 1);            // device-writable part
//     ring.push(chain.head(), w.written());
//   }
//   ring.flush();
//
// Segments are laid out readable first, then writable (§2.7.4.2 / §2.8.4 require that order, and
// the walker rejects chains that break it). A descriptor whose buffer crosses a region edge becomes
// several segments. The Chain owns its segment array (sized once at construction) but not the
// memory the segments point to: that belongs to the guest and stays valid while the memory table
// the chain was popped under is alive.
#pragma once

#include "base/limits.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "vring/errc.hpp"
#include "vring/memory.hpp"

namespace vireo::vring {

// What the device hands back to push(): the buffer id and, for packed rings, how many ring slots
// the buffer occupied (§2.8.6: the used index advances by that count). Split rings ignore ndescs.
struct Head {
  std::uint16_t id = 0;
  std::uint16_t ndescs = 1;
};

// What a serve_lone() callback returns to leave a buffer in the ring (the device rings' lone lane,
// vring/split_lane.hpp and packed_lane.hpp); anything else is the used length to push.
inline constexpr std::uint32_t kNotServed = UINT32_MAX;

struct Segment {
  std::byte* data;     // host pointer into guest memory (guest-controlled contents)
  std::uint32_t len;
  std::uint64_t gpa;   // guest-physical address of data, for dirty logging
};

inline constexpr std::uint32_t kDefaultMaxSegments = limits::kMaxChainSegments;

class Chain {
 public:
  // Holds at least one segment (capacity() >= 1), so the walkers' one-buffer fast paths never
  // need to check.
  explicit Chain(std::uint32_t max_segments = kDefaultMaxSegments)
      : segs_(std::make_unique<Segment[]>(std::max<std::uint32_t>(max_segments, 1))),
        cap_(std::max<std::uint32_t>(max_segments, 1)) {}
  Chain(Chain&&) noexcept = default;
  Chain& operator=(Chain&&) noexcept = default;

  Head head() const { return head_; }
  std::span<const Segment> readable() const { return {segs_.get(), n_readable_}; }
  std::span<const Segment> writable() const { return {segs_.get() + n_readable_, n_writable_}; }
  std::uint32_t readable_bytes() const { return readable_bytes_; }
  std::uint32_t writable_bytes() const { return writable_bytes_; }
  std::uint32_t capacity() const { return cap_; }

  // --- used by the ring walkers ---
  void reset(Head h) {
    head_ = h;
    n_readable_ = n_writable_ = 0;
    readable_bytes_ = writable_bytes_ = 0;
  }
  void set_ndescs(std::uint16_t n) { head_.ndescs = n; }
  // Packed rings learn the buffer id from the LAST descriptor of the list (§2.8.6).
  void set_id(std::uint16_t id) { head_.id = id; }

  // The walkers' burst fast path: the chain becomes the one buffer [gpa, gpa+len) at host `data`,
  // which the caller checked is non-empty, does not wrap and lies inside one mapped region (what
  // append_single() would find). Same state as reset(h) + append_single().
  void set_single(Head h, std::byte* data, std::uint32_t len, std::uint64_t gpa, bool writable) noexcept {
    head_ = h;
    segs_[0] = Segment{data, len, gpa};
    // A branch (one direction per ring, well predicted), not selects: g++ vectorises those.
    if (writable) {
      n_readable_ = readable_bytes_ = 0;
      n_writable_ = 1;
      writable_bytes_ = len;
    } else {
      n_writable_ = writable_bytes_ = 0;
      n_readable_ = 1;
      readable_bytes_ = len;
    }
  }

  // The walkers' single-descriptor fast path: the only buffer of a chain just reset(). Same
  // result as append(); falls back to it for an empty buffer, a region edge or any error.
  template <GuestMemory M>
  Errc append_single(const M& mem, std::uint64_t gpa, std::uint32_t len, bool writable) noexcept {
    if (gpa + len > gpa) [[likely]] {  // len != 0 and no wrap
      const std::span<std::byte> s = mem.translate(gpa, len);
      if (s.size() == len) [[likely]] {
        segs_[0] = Segment{s.data(), len, gpa};
        if (writable) {
          n_writable_ = 1;
          writable_bytes_ = len;
        } else {
          n_readable_ = 1;
          readable_bytes_ = len;
        }
        return Errc::ok;
      }
    }
    return append(mem, gpa, len, writable);
  }

  // Appends the guest buffer [gpa, gpa+len), split at region edges. Enforces readable-before-
  // writable (§2.7.4.2), the 32-bit total length and the segment capacity.
  template <GuestMemory M>
  Errc append(const M& mem, std::uint64_t gpa, std::uint32_t len, bool writable) noexcept {
    if (!writable && n_writable_ != 0) [[unlikely]]
      return Errc::readable_after_writable;
    std::uint32_t& total = writable ? writable_bytes_ : readable_bytes_;
    if (len > UINT32_MAX - readable_bytes_ - writable_bytes_) [[unlikely]]
      return Errc::length_overflow;
    if (gpa + len < gpa) [[unlikely]]
      return Errc::address_not_mapped;
    total += len;
    while (len != 0) {
      std::span<std::byte> s = mem.translate(gpa, len);
      if (s.empty()) [[unlikely]]
        return Errc::address_not_mapped;
      if (n_readable_ + n_writable_ == cap_) [[unlikely]]
        return Errc::too_many_segments;
      segs_[n_readable_ + n_writable_] =
          Segment{s.data(), static_cast<std::uint32_t>(s.size()), gpa};
      (writable ? n_writable_ : n_readable_) += 1;
      gpa += s.size();
      len -= static_cast<std::uint32_t>(s.size());
    }
    return Errc::ok;
  }

 private:
  std::unique_ptr<Segment[]> segs_;
  std::uint32_t cap_;
  Head head_{};
  std::uint32_t n_readable_ = 0;
  std::uint32_t n_writable_ = 0;
  std::uint32_t readable_bytes_ = 0;
  std::uint32_t writable_bytes_ = 0;
};

// The per-buffer rules every general device walk applies, in this order, to each buffer
// descriptor of a chain (direct or in an indirect table): at most `max_buffers` of them (the
// device's max_chain_len, default Queue Size: §2.7.5.2, §2.8.5); no device-readable buffer after
// a device-writable one, even an empty writable one (§2.7.4.2, §2.8.17); then Chain::append's own
// checks (length, mapping, segments).
struct BufferRules {
  std::uint32_t max_buffers;
  std::uint32_t buffers = 0;
  bool seen_writable = false;

  template <GuestMemory M>
  Errc append(Chain& out, const M& mem, std::uint64_t gpa, std::uint32_t len, bool writable) noexcept {
    if (++buffers > max_buffers) [[unlikely]]
      return Errc::chain_too_long;
    if (!writable && seen_writable) [[unlikely]]
      return Errc::readable_after_writable;
    seen_writable = seen_writable || writable;
    return out.append(mem, gpa, len, writable);
  }
};

// Copies out of the device-readable segments, as a byte stream.
class ChainReader {
 public:
  explicit ChainReader(const Chain& c) : segs_(c.readable()) {}
  // Copies up to n bytes; returns how many were copied.
  std::size_t read(void* dst, std::size_t n) {
    auto* out = static_cast<std::byte*>(dst);
    std::size_t done = 0;
    while (done < n && seg_ < segs_.size()) {
      const Segment& s = segs_[seg_];
      std::size_t k = std::min<std::size_t>(n - done, s.len - off_);
      std::memcpy(out + done, s.data + off_, k);
      done += k;
      advance(k);
    }
    return done;
  }
  std::size_t skip(std::size_t n) {
    std::size_t done = 0;
    while (done < n && seg_ < segs_.size()) {
      std::size_t k = std::min<std::size_t>(n - done, segs_[seg_].len - off_);
      done += k;
      advance(k);
    }
    return done;
  }
  std::size_t consumed() const { return consumed_; }

 private:
  void advance(std::size_t k) {
    off_ += k;
    consumed_ += k;
    if (off_ == segs_[seg_].len) {
      ++seg_;
      off_ = 0;
    }
  }
  std::span<const Segment> segs_;
  std::size_t seg_ = 0;
  std::size_t off_ = 0;
  std::size_t consumed_ = 0;
};

// Copies into the device-writable segments, as a byte stream; written() is the used length.
class ChainWriter {
 public:
  explicit ChainWriter(const Chain& c) : segs_(c.writable()) {}
  std::size_t write(const void* src, std::size_t n) {
    const auto* in = static_cast<const std::byte*>(src);
    std::size_t done = 0;
    while (done < n && seg_ < segs_.size()) {
      const Segment& s = segs_[seg_];
      std::size_t k = std::min<std::size_t>(n - done, s.len - off_);
      std::memcpy(s.data + off_, in + done, k);
      done += k;
      off_ += k;
      if (off_ == s.len) {
        ++seg_;
        off_ = 0;
      }
    }
    written_ += done;
    return done;
  }
  std::size_t written() const { return written_; }

 private:
  std::span<const Segment> segs_;
  std::size_t seg_ = 0;
  std::size_t off_ = 0;
  std::size_t written_ = 0;
};

}  // namespace vireo::vring
