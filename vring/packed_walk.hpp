// The general walk of PackedDeviceRing (vring/packed_device.hpp): a descriptor list of any
// length, direct or through one indirect table, with every rule of §2.8 checked. The burst loop
// (pop_run) and the lone-descriptor path (walk_single) cover the common buffer; everything else
// comes here. Included at the end of packed_device.hpp; not a header of its own.
#pragma once

#include "vring/packed_device.hpp"

namespace vireo::vring {

template <GuestMemory M>
template <class Fetch, class Record>
Errc PackedDeviceRing<M>::walk_list(Fetch&& fetch, Record&& record, Chain& out) noexcept {
  const CachedMemory<M> mem = cached_mem();
  out.reset(Head{0, 0});
  std::uint32_t slots = 0;
  BufferRules rules{max_chain_len_};  // shared with the indirect table (then alone in the list)
  std::uint16_t id = 0;
  for (;;) {
    // §2.8.17: a list is never longer than the Queue Size (and cannot loop).
    if (++slots > size_) [[unlikely]]
      return Errc::chain_too_long;
    PackedDesc d;
    if (!fetch(slots - 1, d)) [[unlikely]]
      return Errc::next_out_of_range;
    // Buffer ids name driver state of at most Queue Size buffers; §2.8.6: "Buffer ID is
    // included in the last descriptor in the list" (an indirect descriptor is alone).
    if ((d.flags & kDescFIndirect) != 0) [[unlikely]] {
      if (const Errc e = walk_indirect(mem, d, slots, out, rules); e != Errc::ok) return e;
      if (d.id >= size_) [[unlikely]]
        return Errc::packed_id_out_of_range;
      record(d, slots == 1, true);
      id = d.id;
      break;
    }
    if (const Errc e = rules.append(out, mem, d.addr, d.len, (d.flags & kDescFWrite) != 0);
        e != Errc::ok) [[unlikely]]
      return e;
    const bool last = (d.flags & kDescFNext) == 0;
    if (last && d.id >= size_) [[unlikely]]
      return Errc::packed_id_out_of_range;
    record(d, slots == 1, last);
    if (last) {
      id = d.id;
      break;
    }
  }
  out.set_id(id);
  out.set_ndescs(static_cast<std::uint16_t>(slots));
  return Errc::ok;
}

template <GuestMemory M>
Errc PackedDeviceRing<M>::walk_indirect(const CachedMemory<M>& mem, const PackedDesc& d,
                                        std::uint32_t slot, Chain& out,
                                        BufferRules& rules) noexcept {
  if (!indirect_) [[unlikely]]
    return Errc::indirect_not_negotiated;
  // "MUST NOT write direct descriptors with DESC_F_INDIRECT set in a list linked by NEXT"
  if (slot != 1 || (d.flags & kDescFNext) != 0) [[unlikely]]
    return Errc::next_with_indirect;
  if (d.len == 0 || d.len % sizeof(PackedDesc) != 0) [[unlikely]]
    return Errc::indirect_len_bad;
  if (d.len / sizeof(PackedDesc) > limits::kMaxIndirectEntries) [[unlikely]]
    return Errc::indirect_too_large;
  const auto* table = static_cast<const std::byte*>(translate_contiguous(mem, d.addr, d.len));
  if (table == nullptr) [[unlikely]]
    return Errc::address_not_mapped;
  const std::uint32_t entries = d.len / sizeof(PackedDesc);
  for (std::uint32_t i = 0; i < entries; ++i) {
    const PackedDesc e = read_once<PackedDesc>(table + std::size_t{i} * sizeof(PackedDesc));
    if ((e.flags & kDescFIndirect) != 0) [[unlikely]]  // §2.8.19: only WRITE is valid here
      return Errc::indirect_in_indirect;
    // NEXT is ignored in the table.
    if (const Errc err = rules.append(out, mem, e.addr, e.len, (e.flags & kDescFWrite) != 0);
        err != Errc::ok) [[unlikely]]
      return err;
  }
  return Errc::ok;
}

}  // namespace vireo::vring
