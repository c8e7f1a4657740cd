// Guest memory as the rings see it: a translation from (guest address, length) to host memory.
//
// Rings are templates over the GuestMemory concept, so the hot path has no virtual call and tests
// run on plain buffers. translate() may return a span SHORTER than asked when the range crosses
// the end of a region; the caller then translates the rest (one buffer may need several spans).
// An empty span means "not mapped": the caller treats the buffer as invalid.
//
//   BufferMemory mem(0x10000, 1 << 20);          // 1 MiB of test "guest RAM" at GPA 0x10000
//   std::span<std::byte> s = mem.translate(0x10040, 64);
//
// This header defines consumer-side interfaces only; who maps the memory (vhost-user SET_MEM_TABLE
// in device/, a memfd in driver/) owns the mappings and must keep them alive while a table built
// from them is in use.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <vector>

namespace vireo::vring {

template <class M>
concept GuestMemory = requires(const M& m, std::uint64_t gpa, std::uint64_t len) {
  { m.translate(gpa, len) } noexcept -> std::same_as<std::span<std::byte>>;
};

// Translate a whole range that must be contiguous in host memory (ring areas, indirect tables).
// Returns nullptr if any part is unmapped or the range crosses a region edge.
template <GuestMemory M>
inline void* translate_contiguous(const M& mem, std::uint64_t gpa, std::uint64_t len) noexcept {
  if (len == 0) return nullptr;
  std::span<std::byte> s = mem.translate(gpa, len);
  return s.size() == len ? s.data() : nullptr;
}

// One region of guest memory mapped into this process.
struct Region {
  std::uint64_t gpa = 0;     // guest-physical start
  std::uint64_t size = 0;    // bytes
  std::uint64_t uva = 0;     // front-end (e.g. QEMU) virtual address of the same bytes
  std::byte* host = nullptr; // where it is mapped here
};

// A plain host buffer posing as guest memory at a chosen base GPA (tests, benchmarks).
class BufferMemory {
 public:
  BufferMemory(std::uint64_t base_gpa, std::size_t size)
      : base_(base_gpa), size_(size),
        data_(static_cast<std::byte*>(std::aligned_alloc(4096, round_up(size))), &std::free) {
    std::fill_n(data_.get(), round_up(size), std::byte{0});
    whole_ = Region{base_gpa, size, 0, data_.get()};
  }

  std::span<std::byte> translate(std::uint64_t gpa, std::uint64_t len) const noexcept {
    if (gpa < base_ || gpa - base_ >= size_) return {};
    std::uint64_t off = gpa - base_;
    return {data_.get() + off, static_cast<std::size_t>(std::min<std::uint64_t>(len, size_ - off))};
  }

  std::uint64_t base() const { return base_; }
  std::size_t size() const { return size_; }
  std::byte* host(std::uint64_t gpa) const { return data_.get() + (gpa - base_); }
  std::span<std::byte> bytes() const { return {data_.get(), size_}; }
  // The region holding gpa (the whole buffer), or nullptr; for TranslateCache.
  const Region* region_of(std::uint64_t gpa) const noexcept {
    return gpa - base_ < size_ ? &whole_ : nullptr;
  }

 private:
  static std::size_t round_up(std::size_t n) { return (n + 4095) & ~std::size_t{4095}; }
  std::uint64_t base_;
  std::size_t size_;
  std::unique_ptr<std::byte, decltype(&std::free)> data_;
  Region whole_;
};

// Several mapped regions (what vhost-user SET_MEM_TABLE / ADD_MEM_REG describe). Immutable once
// built: a memory-table change builds a new RegionTable and swaps it in (see device/memory_table).
// Translates guest-physical addresses (descriptors) and front-end virtual addresses (vring
// addresses in SET_VRING_ADDR).
class RegionTable {
 public:
  RegionTable() = default;
  explicit RegionTable(std::vector<Region> regions) : by_gpa_(std::move(regions)) {
    std::sort(by_gpa_.begin(), by_gpa_.end(),
              [](const Region& a, const Region& b) { return a.gpa < b.gpa; });
    by_uva_ = by_gpa_;
    std::sort(by_uva_.begin(), by_uva_.end(),
              [](const Region& a, const Region& b) { return a.uva < b.uva; });
  }

  std::span<std::byte> translate(std::uint64_t gpa, std::uint64_t len) const noexcept {
    return lookup(by_gpa_, &Region::gpa, gpa, len);
  }
  std::span<std::byte> translate_uva(std::uint64_t uva, std::uint64_t len) const noexcept {
    return lookup(by_uva_, &Region::uva, uva, len);
  }
  // Guest-physical address of a front-end virtual address (0 with ok=false if unmapped).
  bool uva_to_gpa(std::uint64_t uva, std::uint64_t& gpa) const noexcept {
    const Region* r = find(by_uva_, &Region::uva, uva);
    if (r == nullptr) return false;
    gpa = r->gpa + (uva - r->uva);
    return true;
  }

  // The region holding guest-physical gpa, or nullptr; for TranslateCache.
  const Region* region_of(std::uint64_t gpa) const noexcept { return find(by_gpa_, &Region::gpa, gpa); }

  std::span<const Region> regions() const { return by_gpa_; }
  bool empty() const { return by_gpa_.empty(); }

 private:
  static const Region* find(const std::vector<Region>& v, std::uint64_t Region::*key,
                            std::uint64_t addr) noexcept {
    // Regions are sorted and do not overlap (checked by whoever builds the table): the candidate
    // is the last region starting at or below addr.
    auto it = std::upper_bound(v.begin(), v.end(), addr,
                               [key](std::uint64_t a, const Region& r) { return a < r.*key; });
    if (it == v.begin()) return nullptr;
    const Region& r = *(it - 1);
    if (addr - r.*key >= r.size) return nullptr;
    return &r;
  }
  static std::span<std::byte> lookup(const std::vector<Region>& v, std::uint64_t Region::*key,
                                     std::uint64_t addr, std::uint64_t len) noexcept {
    const Region* r = find(v, key, addr);
    if (r == nullptr) return {};
    std::uint64_t off = addr - r->*key;
    return {r->host + off, static_cast<std::size_t>(std::min<std::uint64_t>(len, r->size - off))};
  }

  std::vector<Region> by_gpa_;
  std::vector<Region> by_uva_;
};

// A last-hit region cache in front of a GuestMemory, owned by ONE ring (the memory table is shared
// across threads; the cache lives in the single-threaded ring object). Translates exactly like
// mem.translate(); the owner calls invalidate() whenever the table changes (configure, rebind,
// reset), so a cached region never outlives the table it came from.
//
//   TranslateCache<RegionTable> cache;         // in the ring
//   CachedMemory<RegionTable> m{table, &cache}; // a GuestMemory for Chain::append
template <class M>
class TranslateCache {
 public:
  void invalidate() noexcept { size_ = 0; }
  // The cached region (size() == 0: empty), for burst loops that keep it in registers and check
  // a whole buffer against it; a miss goes through translate(), which refills the cache.
  std::uint64_t gpa() const noexcept { return gpa_; }
  std::uint64_t size() const noexcept { return size_; }
  std::byte* host() const noexcept { return host_; }

  std::span<std::byte> translate(const M& mem, std::uint64_t gpa, std::uint64_t len) noexcept {
    if (gpa - gpa_ < size_) [[likely]]
      return span_at(gpa, len);
    if constexpr (requires { { mem.region_of(gpa) } -> std::same_as<const Region*>; }) {
      const Region* r = mem.region_of(gpa);
      if (r == nullptr) return {};
      gpa_ = r->gpa;
      size_ = r->size;
      host_ = r->host;
      return span_at(gpa, len);
    } else {
      return mem.translate(gpa, len);
    }
  }

 private:
  std::span<std::byte> span_at(std::uint64_t gpa, std::uint64_t len) const noexcept {
    const std::uint64_t off = gpa - gpa_;
    return {host_ + off, static_cast<std::size_t>(std::min<std::uint64_t>(len, size_ - off))};
  }
  std::uint64_t gpa_ = 0;
  std::uint64_t size_ = 0;  // 0 = empty cache
  std::byte* host_ = nullptr;
};

// A GuestMemory view that translates through a ring's TranslateCache.
template <class M>
struct CachedMemory {
  const M* mem;
  TranslateCache<M>* cache;
  std::span<std::byte> translate(std::uint64_t gpa, std::uint64_t len) const noexcept {
    return cache->translate(*mem, gpa, len);
  }
};

static_assert(GuestMemory<BufferMemory>);
static_assert(GuestMemory<CachedMemory<RegionTable>>);
static_assert(GuestMemory<RegionTable>);

}  // namespace vireo::vring
