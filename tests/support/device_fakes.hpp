// Device-side fakes for testing the driver rings: they read the raw ring memory a driver wrote
// (avail ring + descriptor table, or packed descriptors), return the parsed chains, and write used
// elements back, including malformed ones, plus the device's notification-suppression fields.
//
//   SplitDeviceFake dev(SplitRingView::at(d, a, u, 8), mem);   // mem: BufferMemory for tables
//   std::optional<FakeChain> c = dev.pop();                    // nullopt: nothing available
//   dev.push(c->id, 64);                                        // used elem + release of used->idx
//   dev.write_used(99, 0); dev.publish();                       // a bad id, for malicious tests
//
// The fakes are deliberately simple and independent of the driver code: they follow the spec's
// device algorithm directly, so a test compares the driver against the spec, not against itself.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vring/barriers.hpp"
#include "vring/index.hpp"
#include "vring/layout.hpp"
#include "vring/memory.hpp"

namespace vireo::vring::test {

// One element descriptor as found in the ring or an indirect table (raw flags kept for checks).
struct FakeDesc {
  std::uint64_t addr = 0;
  std::uint32_t len = 0;
  std::uint16_t flags = 0;
  bool writable() const { return (flags & kDescFWrite) != 0; }
};

struct FakeChain {
  std::uint16_t id = 0;         // split: head index; packed: buffer id of the last descriptor
  std::uint16_t ndescs = 0;     // ring descriptors the buffer occupies
  bool indirect = false;
  std::uint64_t table_addr = 0;  // indirect: the ring descriptor's addr/len/flags
  std::uint32_t table_len = 0;
  std::uint16_t table_desc_flags = 0;
  std::vector<FakeDesc> descs;  // elements in chain order (from the table if indirect)
  std::vector<std::uint16_t> ring_ids;  // packed: id field of each ring descriptor
};

// Base for both fakes: error reporting and the indirect table lookup.
class DeviceFakeBase {
 public:
  const std::string& error() const { return error_; }

 protected:
  explicit DeviceFakeBase(const BufferMemory& mem) : mem_(&mem) {}
  std::nullopt_t bad(std::string why) {
    error_ = std::move(why);
    return std::nullopt;
  }
  bool fail_bool(std::string why) {
    error_ = std::move(why);
    return false;
  }
  template <class Desc>
  const Desc* table(std::uint64_t gpa, std::uint32_t len) const {
    return static_cast<const Desc*>(translate_contiguous(*mem_, gpa, len));
  }
  std::string error_;

 private:
  const BufferMemory* mem_;
};

// ------------------------------------------------------------------------------------------------
// Split (§2.7)
// ------------------------------------------------------------------------------------------------
class SplitDeviceFake : public DeviceFakeBase {
 public:
  SplitDeviceFake(SplitRingView v, const BufferMemory& mem) : DeviceFakeBase(mem), v_(v) {}

  // acquire: pairs with the driver's release store of avail->idx.
  std::uint16_t avail_idx() const { return load_acquire(*v_.avail_idx); }
  std::uint16_t avail_flags() const { return load_relaxed(*v_.avail_flags); }
  std::uint16_t used_event() const { return load_relaxed(*v_.used_event); }
  std::uint16_t next_avail() const { return next_avail_; }
  std::uint16_t used_idx() const { return used_shadow_; }
  bool has_avail() const { return avail_idx() != next_avail_; }

  // Takes the next available chain (§2.7.13 device view), walking NEXT links with a TTL.
  std::optional<FakeChain> pop() {
    if (!has_avail()) return std::nullopt;
    const std::uint16_t head = v_.avail_ring[next_avail_ % v_.size];
    if (head >= v_.size) return bad("avail head out of range");
    ++next_avail_;
    FakeChain c;
    c.id = head;
    std::uint16_t i = head;
    for (std::uint32_t ttl = v_.size; ttl != 0; --ttl) {
      const SplitDesc d = v_.desc[i];
      ++c.ndescs;
      if ((d.flags & kDescFIndirect) != 0) return pop_indirect(c, d);
      c.descs.push_back(FakeDesc{d.addr, d.len, d.flags});
      if ((d.flags & kDescFNext) == 0) return c;
      if (d.next >= v_.size) return bad("next out of range");
      i = d.next;
    }
    return bad("descriptor loop");
  }

  // Used element at the device's used index; publish() makes it visible.
  void write_used(std::uint32_t id, std::uint32_t len) {
    v_.used_ring[used_shadow_ % v_.size] = UsedElem{id, len};
    ++used_shadow_;
  }
  // release: pairs with the driver's load_acquire of used->idx.
  void publish() { store_release(*v_.used_idx, used_shadow_); }
  void push(std::uint32_t id, std::uint32_t len) {
    write_used(id, len);
    publish();
  }
  // Malicious: store any used->idx.
  void set_used_idx(std::uint16_t idx) {
    used_shadow_ = idx;
    publish();
  }

  void set_no_notify(bool on) { store_relaxed(*v_.used_flags, on ? kUsedFNoNotify : std::uint16_t{0}); }
  void set_avail_event(std::uint16_t idx) { store_relaxed(*v_.avail_event, idx); }

  // Layout-neutral names for typed tests.
  void suppress_kicks(bool on) { set_no_notify(on); }
  // Kick wanted when the driver makes buffer number k (0-based, counted since configure) available.
  void kick_event_at(std::uint64_t k) { set_avail_event(static_cast<std::uint16_t>(k)); }
  // Does the driver currently want a used buffer notification for the next used buffer?
  bool wants_call(bool event_idx) const {
    if (event_idx) return used_event() == used_shadow_;
    return (avail_flags() & kAvailFNoInterrupt) == 0;
  }

 private:
  std::optional<FakeChain> pop_indirect(FakeChain& c, const SplitDesc& d) {
    if ((d.flags & kDescFNext) != 0) return bad("NEXT with INDIRECT");
    if (d.len == 0 || d.len % 16 != 0) return bad("indirect len");
    const auto* t = table<SplitDesc>(d.addr, d.len);
    if (t == nullptr) return bad("indirect table not mapped");
    c.indirect = true;
    c.table_addr = d.addr;
    c.table_len = d.len;
    c.table_desc_flags = d.flags;
    const std::uint32_t n = d.len / 16;
    std::uint32_t i = 0;
    for (std::uint32_t ttl = n; ttl != 0; --ttl) {
      c.descs.push_back(FakeDesc{t[i].addr, t[i].len, t[i].flags});
      if ((t[i].flags & kDescFNext) == 0) return c;
      if (t[i].next >= n) return bad("indirect next out of range");
      i = t[i].next;
    }
    return bad("indirect loop");
  }

  SplitRingView v_;
  std::uint16_t next_avail_ = 0;
  std::uint16_t used_shadow_ = 0;
};

// ------------------------------------------------------------------------------------------------
// Packed (§2.8)
// ------------------------------------------------------------------------------------------------
class PackedDeviceFake : public DeviceFakeBase {
 public:
  PackedDeviceFake(PackedRingView v, const BufferMemory& mem)
      : DeviceFakeBase(mem), v_(v), ndescs_(v.size, 1) {}

  PackedCursor next_avail() const { return avail_; }
  PackedCursor used_pos() const { return used_; }

  // §2.8.1: available iff AVAIL == device wrap counter and USED != it.
  bool has_avail() const {
    // acquire: pairs with the driver's release store of the head's flags.
    return is_avail(load_acquire(v_.desc[avail_.idx].flags), avail_.wrap);
  }

  // Takes the next available buffer (§2.8.6): consecutive slots while NEXT, id from the last.
  std::optional<FakeChain> pop() {
    if (!has_avail()) return std::nullopt;
    FakeChain c;
    PackedCursor pos = avail_;
    for (std::uint32_t ttl = v_.size; ttl != 0; --ttl) {
      const PackedDesc d = read_desc(pos.idx);
      if (!is_avail(d.flags, pos.wrap)) return bad("chain continues into an unavailable slot");
      ++c.ndescs;
      c.ring_ids.push_back(d.id);
      c.id = d.id;
      pos.advance(1, v_.size);
      if ((d.flags & kDescFIndirect) != 0) {
        if (!pop_indirect(c, d)) return std::nullopt;
      } else {
        c.descs.push_back(FakeDesc{d.addr, d.len, d.flags});
      }
      if ((d.flags & kDescFNext) == 0) {
        if (c.id >= v_.size) return bad("buffer id out of range");
        ndescs_[c.id] = c.ndescs;
        avail_ = pos;
        return c;
      }
    }
    return bad("chain longer than the ring");
  }

  // One used descriptor at the device's used position for buffer `id` (§2.8.22): id and len
  // first, flags (AVAIL = USED = device wrap counter) with a release store, then skip the
  // buffer's ndescs slots.
  void push(std::uint16_t id, std::uint32_t len) {
    const std::uint16_t flags = used_flags(used_.wrap, len != 0);
    write_used_raw(used_.idx, id, len, flags);
    used_.advance(id < v_.size ? ndescs_[id] : 1, v_.size);
  }
  // Malicious: any id/len/flags at any slot (release store of flags, pairs with the driver's
  // load_acquire of the used descriptor's flags).
  void write_used_raw(std::uint16_t slot, std::uint16_t id, std::uint32_t len, std::uint16_t flags) {
    PackedDesc& d = v_.desc[slot];
    d.id = id;
    d.len = len;
    store_release(d.flags, flags);
  }
  static std::uint16_t used_flags(bool wrap, bool written) {
    return static_cast<std::uint16_t>((wrap ? (kDescFAvail | kDescFUsed) : 0) |
                                      (written ? kDescFWrite : 0));
  }

  void set_device_event(std::uint16_t flags, std::uint16_t off_wrap) {
    store_relaxed(v_.device_event->off_wrap, off_wrap);
    store_relaxed(v_.device_event->flags, flags);
  }
  EventSuppress driver_event() const { return load_relaxed(*v_.driver_event); }
  const PackedDesc& raw(std::uint16_t slot) const { return v_.desc[slot]; }

  void suppress_kicks(bool on) {
    set_device_event(on ? kRingEventFlagsDisable : kRingEventFlagsEnable, 0);
  }
  // Kick wanted when the driver makes single-descriptor buffer number k (0-based, since configure)
  // available: ring position k % size in lap k / size (wrap counter 1 on even laps).
  void kick_event_at(std::uint64_t k) {
    const PackedCursor c{static_cast<std::uint16_t>(k % v_.size), (k / v_.size) % 2 == 0};
    set_device_event(kRingEventFlagsDesc, encode_off_wrap(c));
  }
  bool wants_call(bool event_idx) const {
    const EventSuppress ev = driver_event();
    if (ev.flags == kRingEventFlagsDesc && event_idx) return ev.off_wrap == encode_off_wrap(used_);
    return ev.flags == kRingEventFlagsEnable;
  }

 private:
  static bool is_avail(std::uint16_t flags, bool wrap) {
    return ((flags & kDescFAvail) != 0) == wrap && ((flags & kDescFUsed) != 0) != wrap;
  }
  PackedDesc read_desc(std::uint16_t slot) const {
    const PackedDesc& s = v_.desc[slot];
    return PackedDesc{s.addr, s.len, s.id, load_relaxed(s.flags)};
  }
  bool pop_indirect(FakeChain& c, const PackedDesc& d) {
    if ((d.flags & kDescFNext) != 0) return fail_bool("NEXT with INDIRECT");
    if (d.len == 0 || d.len % 16 != 0) return fail_bool("indirect len");
    const auto* t = table<PackedDesc>(d.addr, d.len);
    if (t == nullptr) return fail_bool("indirect table not mapped");
    c.indirect = true;
    c.table_addr = d.addr;
    c.table_len = d.len;
    c.table_desc_flags = d.flags;
    for (std::uint32_t i = 0; i < d.len / 16; ++i)
      c.descs.push_back(FakeDesc{t[i].addr, t[i].len, t[i].flags});
    return true;
  }

  PackedRingView v_;
  PackedCursor avail_{};  // next slot to read + device's view of the driver wrap counter
  PackedCursor used_{};   // next slot to write + Device Ring Wrap Counter (§2.8.1)
  std::vector<std::uint16_t> ndescs_;  // per buffer id, as popped
};

}  // namespace vireo::vring::test
