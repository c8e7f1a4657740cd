// Ring errors. Each guest violation has its own code so a log line and a test name can say which
// rule was broken. A ring that reports a violation enters a sticky broken state (Errc::broken on
// every later call) until it is reset.
#pragma once

#include <cstdint>

#include "base/expected.hpp"
#include "base/limits.hpp"

namespace vireo::vring {

enum class Errc : std::uint8_t {
  ok = 0,
  broken,                    // the ring broke earlier; reset to use it again
  not_ready,                 // ring not configured (no addresses / size)
  bad_queue_size,            // size 0, > 32768, or (split) not a power of two
  base_out_of_range,         // (packed) SET_VRING_BASE position >= queue size
  misaligned_ring,           // ring area not aligned as §2.7 / §2.8 require
  head_out_of_range,         // avail ring entry >= queue size
  next_out_of_range,         // desc.next >= table size
  descriptor_loop,           // chain revisits a descriptor (detected by the TTL)
  chain_too_long,            // more descriptors than the ring (or max_chain_len) allows
  indirect_len_bad,          // indirect table length 0 or not a multiple of 16 (§2.7.5.3.1)
  indirect_too_large,        // indirect table above limits::kMaxIndirectEntries entries
  indirect_in_indirect,      // INDIRECT flag inside an indirect table (§2.7.5.3.1)
  next_with_indirect,        // NEXT together with INDIRECT (§2.7.5.3.1)
  indirect_not_negotiated,   // INDIRECT used without VIRTIO_F_INDIRECT_DESC
  readable_after_writable,   // device-readable descriptor after a writable one (§2.7.4.2)
  address_not_mapped,        // buffer or table range does not translate to shared memory
  length_overflow,           // total chain length overflows 32 bits
  too_many_segments,         // chain needs more host segments than the Chain can hold
  avail_index_jump,          // avail->idx moved more than the queue size (§2.7.6)
  packed_id_out_of_range,    // packed buffer id >= queue size
  used_id_bad,               // (driver side) used id/len from the device is not an outstanding buffer
  no_space,                  // (driver side) not enough free descriptors: not a violation
  empty_buffer,              // (driver side) a buffer with no segments
};

static_assert(limits::kMaxIndirectEntries == 65536, "Errc::indirect_too_large's text names the limit");

constexpr const char* to_string(Errc e) {
  switch (e) {
    case Errc::ok: return "ok";
    case Errc::broken: return "queue is broken";
    case Errc::not_ready: return "queue is not configured";
    case Errc::bad_queue_size: return "invalid queue size";
    case Errc::base_out_of_range: return "ring position (SET_VRING_BASE) is outside the queue";
    case Errc::misaligned_ring: return "ring area misaligned";
    case Errc::head_out_of_range: return "available head index out of range";
    case Errc::next_out_of_range: return "descriptor next index out of range";
    case Errc::descriptor_loop: return "descriptor chain loops";
    case Errc::chain_too_long: return "descriptor chain longer than the queue";
    case Errc::indirect_len_bad: return "indirect table length is zero or not a multiple of 16";
    case Errc::indirect_too_large: return "indirect table has more than 65536 entries";
    case Errc::indirect_in_indirect: return "indirect descriptor inside an indirect table";
    case Errc::next_with_indirect: return "descriptor has both NEXT and INDIRECT";
    case Errc::indirect_not_negotiated: return "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
    case Errc::readable_after_writable: return "device-readable descriptor after a writable one";
    case Errc::address_not_mapped: return "buffer address is outside shared memory";
    case Errc::length_overflow: return "chain length overflows 32 bits";
    case Errc::too_many_segments: return "chain needs more segments than allowed";
    case Errc::avail_index_jump: return "available index moved more than the queue size";
    case Errc::packed_id_out_of_range: return "packed buffer id out of range";
    case Errc::used_id_bad: return "used element names a buffer that is not outstanding";
    case Errc::no_space: return "not enough free descriptors";
    case Errc::empty_buffer: return "buffer has no segments";
  }
  return "unknown ring error";
}

template <class T>
using Result = vireo::Expected<T, Errc>;
using Status = vireo::Expected<void, Errc>;
inline vireo::Unexpected<Errc> fail(Errc e) { return vireo::Unexpected<Errc>(e); }

}  // namespace vireo::vring
