#include "tests/support/ring_fakes.hpp"

#include <stdexcept>

namespace vireo::test {

using namespace vring;

// ---------------------------------------------------------------------------------------------
// TestGuest
// ---------------------------------------------------------------------------------------------

TestGuest::TestGuest(std::size_t bytes)
    : bytes_(bytes), backing_(kBase - kGuard, kGuard + bytes + kGuard), next_(kBase) {
  std::span<std::byte> all = backing_.bytes();
  std::fill(all.begin(), all.begin() + kGuard, kCanary);
  std::fill(all.end() - kGuard, all.end(), kCanary);
  regions_.push_back(Region{kBase, bytes, kBase, backing_.host(kBase)});
  table_ = RegionTable(regions_);
}

std::byte* TestGuest::host(std::uint64_t gpa) const {
  std::span<std::byte> s = table_.translate(gpa, 1);
  return s.empty() ? nullptr : s.data();
}

std::uint64_t TestGuest::alloc(std::size_t len, std::size_t align) {
  std::uint64_t gpa = (next_ + align - 1) & ~std::uint64_t{align - 1};
  if (gpa + len > end()) throw std::length_error("TestGuest: out of guest memory");
  next_ = gpa + len;
  fill(gpa, len, std::byte{0});
  return gpa;
}

bool TestGuest::write(std::uint64_t gpa, const void* src, std::size_t len) const {
  const auto* in = static_cast<const std::byte*>(src);
  while (len != 0) {
    std::span<std::byte> s = table_.translate(gpa, len);
    if (s.empty()) return false;
    std::memcpy(s.data(), in, s.size());
    in += s.size();
    gpa += s.size();
    len -= s.size();
  }
  return true;
}

bool TestGuest::read(std::uint64_t gpa, void* dst, std::size_t len) const {
  auto* out = static_cast<std::byte*>(dst);
  while (len != 0) {
    std::span<std::byte> s = table_.translate(gpa, len);
    if (s.empty()) return false;
    std::memcpy(out, s.data(), s.size());
    out += s.size();
    gpa += s.size();
    len -= s.size();
  }
  return true;
}

void TestGuest::fill(std::uint64_t gpa, std::size_t len, std::byte v) const {
  while (len != 0) {
    std::span<std::byte> s = table_.translate(gpa, len);
    if (s.empty()) return;
    std::fill(s.begin(), s.end(), v);
    gpa += s.size();
    len -= s.size();
  }
}

bool TestGuest::all_equal(std::uint64_t gpa, std::size_t len, std::byte v) const {
  while (len != 0) {
    std::span<std::byte> s = table_.translate(gpa, len);
    if (s.empty()) return false;
    for (std::byte b : s)
      if (b != v) return false;
    gpa += s.size();
    len -= s.size();
  }
  return true;
}

bool TestGuest::guards_intact() const {
  std::span<std::byte> all = backing_.bytes();
  for (std::size_t i = 0; i < kGuard; ++i)
    if (all[i] != kCanary || all[all.size() - 1 - i] != kCanary) return false;
  return true;
}

void TestGuest::add_region(std::uint64_t gpa, std::byte* host_ptr, std::size_t size) {
  regions_.push_back(Region{gpa, size, gpa, host_ptr});
  table_ = RegionTable(regions_);
}

// ---------------------------------------------------------------------------------------------
// ChainBuilder
// ---------------------------------------------------------------------------------------------

ChainBuilder& ChainBuilder::readable(std::uint64_t gpa, std::uint32_t len) {
  spec_.descs.push_back(DescSpec{gpa, len, 0, {}, {}});
  return *this;
}
ChainBuilder& ChainBuilder::writable(std::uint64_t gpa, std::uint32_t len) {
  spec_.descs.push_back(DescSpec{gpa, len, kDescFWrite, {}, {}});
  return *this;
}
ChainBuilder& ChainBuilder::indirect() {
  if (spec_.has_indirect()) error_ = "indirect() used twice";
  spec_.indirect_from = spec_.descs.size();
  return *this;
}
ChainBuilder& ChainBuilder::flags(std::uint16_t extra) {
  if (spec_.descs.empty()) error_ = "flags() before any descriptor";
  else spec_.descs.back().flags |= extra;
  return *this;
}
ChainBuilder& ChainBuilder::link(std::uint32_t position) {
  if (spec_.descs.empty()) error_ = "link() before any descriptor";
  else spec_.descs.back().link = position;
  return *this;
}
ChainBuilder& ChainBuilder::next_raw(std::uint16_t next) {
  if (spec_.descs.empty()) error_ = "next_raw() before any descriptor";
  else spec_.descs.back().next_raw = next;
  return *this;
}
ChainBuilder& ChainBuilder::indirect_flags(std::uint16_t extra) {
  spec_.indirect_flags |= extra;
  return *this;
}
ChainBuilder& ChainBuilder::indirect_at(std::uint64_t gpa) {
  spec_.indirect_gpa = gpa;
  return *this;
}
ChainBuilder& ChainBuilder::indirect_len(std::uint32_t len) {
  spec_.indirect_len = len;
  return *this;
}
ChainBuilder& ChainBuilder::id(std::uint16_t value) {
  spec_.id = value;
  return *this;
}
vireo::Expected<std::uint16_t, std::string> ChainBuilder::build() {
  if (!error_.empty()) return vireo::Unexpected<std::string>(error_);
  return drv_->add(spec_);
}

// ---------------------------------------------------------------------------------------------
// DriverFake
// ---------------------------------------------------------------------------------------------

std::uint64_t DriverFake::write_table(const ChainSpec& spec, bool packed) {
  const std::size_t from = spec.indirect_from;
  const std::size_t n = spec.descs.size() - from;
  const std::uint64_t gpa = spec.indirect_gpa ? *spec.indirect_gpa : guest_->alloc(16 * (n ? n : 1));
  for (std::size_t i = 0; i < n; ++i) {
    const DescSpec& s = spec.descs[from + i];
    if (packed) {
      // §2.8.7: sequential entries; NEXT is not used inside a packed indirect table.
      PackedDesc d{s.addr, s.len, 0, s.flags};
      guest_->write(gpa + 16 * i, &d, sizeof d);
      continue;
    }
    SplitDesc d{s.addr, s.len, s.flags, 0};
    if (i + 1 < n) {
      d.flags |= kDescFNext;
      d.next = static_cast<std::uint16_t>(i + 1);
    }
    if (s.link) {
      d.flags |= kDescFNext;
      d.next = static_cast<std::uint16_t>(*s.link - from);
    }
    if (s.next_raw) {
      d.flags |= kDescFNext;
      d.next = *s.next_raw;
    }
    guest_->write(gpa + 16 * i, &d, sizeof d);
  }
  return gpa;
}

// ---------------------------------------------------------------------------------------------
// SplitDriverFake
// ---------------------------------------------------------------------------------------------

SplitDriverFake::SplitDriverFake(TestGuest& g, std::uint16_t size) : DriverFake(g, size) {
  areas_.desc_gpa = g.alloc(split_desc_bytes(size), 4096);
  areas_.avail_gpa = g.alloc(split_avail_bytes(size), 4096);
  areas_.used_gpa = g.alloc(split_used_bytes(size) + 2, 4096);  // + avail_event
  areas_.desc = g.host(areas_.desc_gpa);
  areas_.avail = g.host(areas_.avail_gpa);
  areas_.used = g.host(areas_.used_gpa);
  view_ = SplitRingView::at(areas_.desc, areas_.avail, areas_.used, size);
  for (std::uint32_t i = size; i-- > 0;) free_.push_back(static_cast<std::uint16_t>(i));
  owned_.resize(size);
}

vireo::Expected<std::uint16_t, std::string> SplitDriverFake::add(const ChainSpec& spec) {
  const std::size_t direct = spec.has_indirect() ? spec.indirect_from : spec.descs.size();
  const std::size_t needed = direct + (spec.has_indirect() ? 1 : 0);
  if (needed == 0) return vireo::Unexpected<std::string>("empty chain");
  if (free_.size() < needed) return vireo::Unexpected<std::string>("no free descriptors");
  const std::uint64_t table = spec.has_indirect() ? write_table(spec, false) : 0;
  std::vector<std::uint16_t> idx(needed);
  for (auto& i : idx) {
    i = free_.back();
    free_.pop_back();
  }
  for (std::size_t i = 0; i < direct; ++i) {
    const DescSpec& s = spec.descs[i];
    SplitDesc d{s.addr, s.len, s.flags, 0};
    if (i + 1 < needed) {
      d.flags |= kDescFNext;
      d.next = idx[i + 1];
    }
    if (s.link) {
      d.flags |= kDescFNext;
      d.next = *s.link < needed ? idx[*s.link] : static_cast<std::uint16_t>(*s.link);
    }
    if (s.next_raw) {
      d.flags |= kDescFNext;
      d.next = *s.next_raw;
    }
    view_.desc[idx[i]] = d;
  }
  if (spec.has_indirect()) {
    const auto n = static_cast<std::uint32_t>(spec.descs.size() - spec.indirect_from);
    view_.desc[idx[direct]] = SplitDesc{
        table, spec.indirect_len ? *spec.indirect_len : 16 * n,
        static_cast<std::uint16_t>(kDescFIndirect | spec.indirect_flags), 0};
  }
  const std::uint16_t head = idx[0];
  owned_[head] = std::move(idx);
  pending_.push_back(spec.id ? *spec.id : head);
  return head;
}

void SplitDriverFake::publish() {
  for (std::uint16_t h : pending_) {
    view_.avail_ring[avail_idx_ & (size_ - 1)] = h;
    ++avail_idx_;
  }
  pending_.clear();
  // release: ring entries and descriptors before the index (§2.7.13.3).
  store_release(*view_.avail_idx, avail_idx_);
}

std::optional<UsedBuf> SplitDriverFake::read_used() {
  // acquire: pairs with the device's release store of used->idx.
  if (load_acquire(*view_.used_idx) == last_used_) return std::nullopt;
  const UsedElem e = view_.used_ring[last_used_ & (size_ - 1)];
  ++last_used_;
  if (e.id < size_) {
    for (std::uint16_t i : owned_[e.id]) free_.push_back(i);
    owned_[e.id].clear();
  }
  return UsedBuf{e.id, e.len};
}

void SplitDriverFake::set_avail_idx_raw(std::uint16_t v) {
  avail_idx_ = v;
  store_release(*view_.avail_idx, v);
}

// ---------------------------------------------------------------------------------------------
// PackedDriverFake
// ---------------------------------------------------------------------------------------------

PackedDriverFake::PackedDriverFake(TestGuest& g, std::uint16_t size)
    : DriverFake(g, size), free_slots_(size) {
  areas_.desc_gpa = g.alloc(packed_desc_bytes(size), 4096);
  areas_.avail_gpa = g.alloc(sizeof(EventSuppress), 4);
  areas_.used_gpa = g.alloc(sizeof(EventSuppress), 4);
  areas_.desc = g.host(areas_.desc_gpa);
  areas_.avail = g.host(areas_.avail_gpa);
  areas_.used = g.host(areas_.used_gpa);
  view_ = PackedRingView::at(areas_.desc, areas_.avail, areas_.used, size);
  for (std::uint32_t i = size; i-- > 0;) free_ids_.push_back(static_cast<std::uint16_t>(i));
  ndescs_.resize(size);
}

vireo::Expected<std::uint16_t, std::string> PackedDriverFake::add(const ChainSpec& spec) {
  const std::size_t direct = spec.has_indirect() ? spec.indirect_from : spec.descs.size();
  const std::size_t slots = direct + (spec.has_indirect() ? 1 : 0);
  if (slots == 0) return vireo::Unexpected<std::string>("empty chain");
  if (free_slots_ < slots) return vireo::Unexpected<std::string>("ring full");
  if (!spec.id && free_ids_.empty()) return vireo::Unexpected<std::string>("no free id");
  std::uint16_t id = 0;
  if (spec.id) {
    id = *spec.id;
  } else {
    id = free_ids_.back();
    free_ids_.pop_back();
  }
  const std::uint64_t table = spec.has_indirect() ? write_table(spec, true) : 0;
  for (std::size_t i = 0; i < slots; ++i) {
    PackedDesc d{};
    if (i < direct) {
      d = PackedDesc{spec.descs[i].addr, spec.descs[i].len, id, spec.descs[i].flags};
    } else {
      const auto n = static_cast<std::uint32_t>(spec.descs.size() - spec.indirect_from);
      d = PackedDesc{table, spec.indirect_len ? *spec.indirect_len : 16 * n, id,
                     static_cast<std::uint16_t>(kDescFIndirect | spec.indirect_flags)};
    }
    if (i + 1 < slots) d.flags |= kDescFNext;
    // §2.8.1: AVAIL = Driver Ring Wrap Counter, USED = its inverse.
    d.flags |= avail_.wrap ? kDescFAvail : kDescFUsed;
    PackedDesc& slot = view_.desc[avail_.idx];
    slot.addr = d.addr;
    slot.len = d.len;
    slot.id = d.id;
    if (i == 0) pending_.push_back(Pending{avail_.idx, d.flags});  // head flags last (§2.8.6)
    else store_relaxed(slot.flags, d.flags);
    avail_.advance(1, size_);
  }
  free_slots_ = static_cast<std::uint16_t>(free_slots_ - slots);
  if (id < size_) ndescs_[id] = static_cast<std::uint16_t>(slots);
  return id;
}

void PackedDriverFake::publish() {
  for (const Pending& p : pending_) {
    // release: the rest of the list before the head's flags (§2.8.21.1).
    store_release(view_.desc[p.slot].flags, p.flags);
  }
  pending_.clear();
}

std::optional<UsedBuf> PackedDriverFake::read_used() {
  // acquire: pairs with the device's release store of the first used descriptor's flags.
  const std::uint16_t flags = load_acquire(view_.desc[used_.idx].flags);
  const bool avail = (flags & kDescFAvail) != 0;
  const bool used = (flags & kDescFUsed) != 0;
  if (avail != used_.wrap || used != used_.wrap) return std::nullopt;
  const PackedDesc& d = view_.desc[used_.idx];
  const std::uint16_t id = d.id;
  // §2.8.4: len is only meaningful with WRITE in a used descriptor.
  const std::uint32_t len = (flags & kDescFWrite) != 0 ? d.len : 0;
  std::uint16_t n = 1;
  if (id < size_ && ndescs_[id] != 0) {
    n = ndescs_[id];
    ndescs_[id] = 0;
    free_ids_.push_back(id);
  }
  used_.advance(n, size_);
  free_slots_ = static_cast<std::uint16_t>(free_slots_ + n);
  return UsedBuf{id, len};
}

void PackedDriverFake::set_driver_event(std::uint16_t flags, std::uint16_t off_wrap) {
  store_relaxed(view_.driver_event->off_wrap, off_wrap);
  // release: off_wrap before flags, as a driver enabling DESC events does.
  store_release(view_.driver_event->flags, flags);
}

EventSuppress PackedDriverFake::device_event() const {
  return EventSuppress{load_relaxed(view_.device_event->off_wrap),
                       load_relaxed(view_.device_event->flags)};
}

}  // namespace vireo::test
