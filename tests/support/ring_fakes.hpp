// Driver-side fakes for device-ring tests: they write RAW ring memory, so a test can build any
// chain, including malformed ones, and read the device's used elements back.
//
//   TestGuest guest;                                     // guarded guest RAM (RegionTable)
//   SplitDriverFake drv(guest, 8);
//   auto id = drv.chain().readable(a, 16).writable(b, 64).build();   // errors deferred to build()
//   drv.publish();                                       // avail->idx release store
//   ring.configure(&guest.mem(), drv.config<SplitDeviceRing<RegionTable>>(features), {});
//   ...  std::optional<UsedBuf> u = drv.read_used();
//
// SplitLayout / PackedLayout name the ring, the fake and the feature bit of one layout, so
// TYPED_TEST_SUITE(..., RingLayouts) runs a behaviour on both.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "base/expected.hpp"
#include "vring/barriers.hpp"
#include "vring/features.hpp"
#include "vring/index.hpp"
#include "vring/layout.hpp"
#include "vring/memory.hpp"
#include "vring/packed_device.hpp"
#include "vring/split_device.hpp"

namespace vireo::test {

using vring::PackedCursor;
using vring::Region;
using vring::RegionTable;

// Guest RAM: one host buffer holding [guard | guest | guard]; only the middle is translatable,
// so the guards (filled with kCanary) catch any write outside guest memory. Extra regions (a
// second host buffer, a huge PROT_NONE reservation) can be added before a ring is configured.
class TestGuest {
 public:
  static constexpr std::uint64_t kBase = 0x100000;
  static constexpr std::size_t kGuard = 4096;
  static constexpr std::byte kCanary{0xA5};

  explicit TestGuest(std::size_t bytes = std::size_t{1} << 20);

  const RegionTable& mem() const { return table_; }
  std::uint64_t base() const { return kBase; }
  std::uint64_t end() const { return kBase + bytes_; }  // one past the guest window
  // Host address of a guest address (any region); nullptr when unmapped.
  std::byte* host(std::uint64_t gpa) const;
  template <class T>
  T* at(std::uint64_t gpa) const { return reinterpret_cast<T*>(host(gpa)); }
  // Bump allocator inside the guest window; zeroed. Returns the guest address.
  std::uint64_t alloc(std::size_t len, std::size_t align = 16);
  // Writes/reads bytes through the translation (may cross regions); false if unmapped.
  bool write(std::uint64_t gpa, const void* src, std::size_t len) const;
  bool read(std::uint64_t gpa, void* dst, std::size_t len) const;
  void fill(std::uint64_t gpa, std::size_t len, std::byte v) const;
  // True when every byte of [gpa, gpa+len) equals v.
  bool all_equal(std::uint64_t gpa, std::size_t len, std::byte v) const;
  bool guards_intact() const;
  void add_region(std::uint64_t gpa, std::byte* host, std::size_t size);

 private:
  std::size_t bytes_;
  vring::BufferMemory backing_;  // host storage at kBase - kGuard, guards included
  std::vector<Region> regions_;
  RegionTable table_;
  std::uint64_t next_;
};

// One descriptor of a ChainSpec.
struct DescSpec {
  std::uint64_t addr = 0;
  std::uint32_t len = 0;
  std::uint16_t flags = 0;                // kDescFWrite plus anything forced with .flags()
  std::optional<std::uint32_t> link;      // split: NEXT to this position of the same table
  std::optional<std::uint16_t> next_raw;  // split: NEXT with this raw `next` value
};

// What a ChainBuilder collected; interpreted by the layout's fake.
struct ChainSpec {
  static constexpr std::size_t kNoIndirect = SIZE_MAX;
  std::vector<DescSpec> descs;
  std::size_t indirect_from = kNoIndirect;  // descs[indirect_from..] live in an indirect table
  std::uint16_t indirect_flags = 0;         // extra flags on the ring descriptor with INDIRECT
  std::optional<std::uint64_t> indirect_gpa;  // place the table here (default: allocated)
  std::optional<std::uint32_t> indirect_len;  // ring descriptor len override (table unchanged)
  std::optional<std::uint16_t> id;            // packed: buffer id; split: avail ring entry value
  bool has_indirect() const { return indirect_from != kNoIndirect; }
};

class DriverFake;

// Fluent chain construction; errors are deferred to build(), which writes the descriptors (not
// yet visible to the device: see DriverFake::publish()).
class ChainBuilder {
 public:
  explicit ChainBuilder(DriverFake& drv) : drv_(&drv) {}
  ChainBuilder& readable(std::uint64_t gpa, std::uint32_t len);
  ChainBuilder& writable(std::uint64_t gpa, std::uint32_t len);
  ChainBuilder& indirect();                         // following descriptors go to an indirect table
  ChainBuilder& flags(std::uint16_t extra);         // OR into the last descriptor's flags
  ChainBuilder& link(std::uint32_t position);       // split: last.next -> descriptor #position
  ChainBuilder& next_raw(std::uint16_t next);       // split: last.next = raw value, with NEXT
  ChainBuilder& indirect_flags(std::uint16_t extra);
  ChainBuilder& indirect_at(std::uint64_t gpa);
  ChainBuilder& indirect_len(std::uint32_t len);
  ChainBuilder& id(std::uint16_t id);
  // The buffer id (packed) / head index (split), or why the chain could not be written.
  vireo::Expected<std::uint16_t, std::string> build();

 private:
  DriverFake* drv_;
  ChainSpec spec_;
  std::string error_;
};

struct UsedBuf {
  std::uint32_t id;
  std::uint32_t len;
  friend bool operator==(const UsedBuf&, const UsedBuf&) = default;
};

// Ring areas as host pointers and guest addresses.
struct RingAreas {
  void* desc;
  void* avail;  // packed: driver event suppression
  void* used;   // packed: device event suppression
  std::uint64_t desc_gpa, avail_gpa, used_gpa;
};

// The driver half, written for tests. Single-threaded: the test alternates driver and device.
class DriverFake {
 public:
  virtual ~DriverFake() = default;
  ChainBuilder chain() { return ChainBuilder(*this); }
  virtual vireo::Expected<std::uint16_t, std::string> add(const ChainSpec& spec) = 0;
  virtual void publish() = 0;                     // make every built chain available
  virtual std::optional<UsedBuf> read_used() = 0; // next used buffer, frees its descriptors
  virtual std::uint16_t free_slots() const = 0;
  std::uint16_t size() const { return size_; }
  const RingAreas& areas() const { return areas_; }
  TestGuest& guest() const { return *guest_; }

  template <class Ring>
  typename Ring::Config config(std::uint64_t features, std::uint32_t max_chain_len = 0) const {
    return typename Ring::Config{size_, features, areas_.desc, areas_.avail, areas_.used,
                                 max_chain_len};
  }

 protected:
  DriverFake(TestGuest& g, std::uint16_t size) : guest_(&g), size_(size) {}
  // Writes an indirect table for descs[from..] as `Desc` entries; returns its guest address.
  std::uint64_t write_table(const ChainSpec& spec, bool packed);
  TestGuest* guest_;
  std::uint16_t size_;
  RingAreas areas_{};
};

class SplitDriverFake final : public DriverFake {
 public:
  SplitDriverFake(TestGuest& g, std::uint16_t size);
  vireo::Expected<std::uint16_t, std::string> add(const ChainSpec& spec) override;
  void publish() override;
  std::optional<UsedBuf> read_used() override;
  std::uint16_t free_slots() const override { return static_cast<std::uint16_t>(free_.size()); }

  vring::SplitRingView& view() { return view_; }
  void set_used_event(std::uint16_t v) { vring::store_relaxed(*view_.used_event, v); }
  void set_avail_flags(std::uint16_t v) { vring::store_relaxed(*view_.avail_flags, v); }
  std::uint16_t avail_event() const { return vring::load_relaxed(*view_.avail_event); }
  std::uint16_t used_flags() const { return vring::load_relaxed(*view_.used_flags); }
  std::uint16_t used_idx() const { return vring::load_relaxed(*view_.used_idx); }
  std::uint16_t avail_idx() const { return avail_idx_; }
  // Raw avail->idx (e.g. a jump); the ring entries are not touched.
  void set_avail_idx_raw(std::uint16_t v);

 private:
  vring::SplitRingView view_{};
  std::vector<std::uint16_t> free_;                  // free descriptor indexes (stack)
  std::vector<std::vector<std::uint16_t>> owned_;    // descriptors per head
  std::vector<std::uint16_t> pending_;               // built, not yet published heads
  std::uint16_t avail_idx_ = 0;
  std::uint16_t last_used_ = 0;
};

class PackedDriverFake final : public DriverFake {
 public:
  PackedDriverFake(TestGuest& g, std::uint16_t size);
  vireo::Expected<std::uint16_t, std::string> add(const ChainSpec& spec) override;
  void publish() override;
  std::optional<UsedBuf> read_used() override;
  std::uint16_t free_slots() const override { return free_slots_; }

  vring::PackedRingView& view() { return view_; }
  void set_driver_event(std::uint16_t flags, std::uint16_t off_wrap);
  vring::EventSuppress device_event() const;
  PackedCursor avail_cursor() const { return avail_; }
  PackedCursor used_cursor() const { return used_; }

 private:
  struct Pending {
    std::uint16_t slot;
    std::uint16_t flags;
  };
  vring::PackedRingView view_{};
  PackedCursor avail_{};  // next slot to fill + Driver Ring Wrap Counter
  PackedCursor used_{};   // next slot to read used from + its wrap counter
  std::uint16_t free_slots_;
  std::vector<std::uint16_t> free_ids_;
  std::vector<std::uint16_t> ndescs_;  // per outstanding id: ring slots
  std::vector<Pending> pending_;
};

struct SplitLayout {
  using Driver = SplitDriverFake;
  template <class M>
  using Ring = vring::SplitDeviceRing<M>;
  static constexpr bool kPacked = false;
  static constexpr std::uint64_t kFeatures = 0;
};
struct PackedLayout {
  using Driver = PackedDriverFake;
  template <class M>
  using Ring = vring::PackedDeviceRing<M>;
  static constexpr bool kPacked = true;
  static constexpr std::uint64_t kFeatures = vring::feature_bit(vring::kFRingPacked);
};
using RingLayouts = ::testing::Types<SplitLayout, PackedLayout>;

class LayoutNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return T::kPacked ? "Packed" : "Split";
  }
};

// Guest + fake driver + device ring + a few chains: the state most tests start from.
template <class Layout>
struct RingHarness {
  using Ring = typename Layout::template Ring<RegionTable>;
  using Driver = typename Layout::Driver;

  explicit RingHarness(std::uint16_t size = 8, std::size_t guest_bytes = std::size_t{1} << 20)
      : guest(guest_bytes), drv(guest, size) {}

  vring::Status configure(std::uint64_t features = 0, std::uint32_t max_chain_len = 0,
                          vring::RingState base = {}) {
    return ring.configure(&guest.mem(),
                          drv.template config<Ring>(features | Layout::kFeatures, max_chain_len),
                          base);
  }
  // A data buffer in guest memory, filled with `fill`.
  std::uint64_t buffer(std::size_t len, std::byte fill = std::byte{0}) {
    std::uint64_t gpa = guest.alloc(len);
    guest.fill(gpa, len, fill);
    return gpa;
  }

  TestGuest guest;
  Driver drv;
  Ring ring;
  vring::Chain chain{64};
};

}  // namespace vireo::test
