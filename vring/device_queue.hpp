// One device-side queue of either layout, dispatched ONCE per burst (never per descriptor).
//
//   DeviceQueue<RegionTable> q = make_device_queue<RegionTable>(features);  // split or packed
//   configure_queue(q, &mem, features, size, desc, avail, used, base);
//   with_ring(q, [&](auto& ring) {           // the layout is resolved here, once
//     Result<std::size_t> n = ring.pop_burst(chains);
//     ...  ring.push(chain, len) ...  ring.flush();
//     if (ring.needs_notification()) call();
//   });
//
// Both ring classes provide the same verbs; DeviceRing lists them and is checked below.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <variant>

#include "vring/chain.hpp"
#include "vring/dirty_log.hpp"
#include "vring/errc.hpp"
#include "vring/features.hpp"
#include "vring/index.hpp"
#include "vring/inflight_log.hpp"
#include "vring/memory.hpp"
#include "vring/packed_device.hpp"
#include "vring/split_device.hpp"

namespace vireo::vring {

template <class R>
concept DeviceRing = requires(R& r, const R& cr, Chain& chain, std::span<Chain> chains, Head head,
                              std::uint32_t n, const DirtyLog* log, std::uint64_t gpa, void* p,
                              const typename R::Config& cfg, RingState base) {
  typename R::Config;
  typename R::Memory;
  { r.configure(static_cast<const typename R::Memory*>(nullptr), cfg, base) } -> std::same_as<Status>;
  { r.rebind(static_cast<const typename R::Memory*>(nullptr), p, p, p) } -> std::same_as<void>;
  { r.reset() } -> std::same_as<void>;
  { r.pop(chain) } -> std::same_as<Result<bool>>;
  { r.pop_burst(chains) } -> std::same_as<Result<std::size_t>>;
  { r.push(std::as_const(chain), n) } -> std::same_as<void>;
  { r.push(head, n) } -> std::same_as<void>;
  { r.push_burst(static_cast<const Chain*>(nullptr), std::size_t{0}, n) } -> std::same_as<void>;
  // The lone lane (split_lane.hpp, packed_lane.hpp): serve_lone(max, writable, serve) takes, in
  // ring order, up to `max` available buffers that are each ONE descriptor (no NEXT, no INDIRECT)
  // whose WRITE flag is `writable`, lying inside the ring's cached region, and calls
  // serve(std::byte* data, std::uint32_t len, std::uint16_t id) for each (id: the buffer id; split:
  // the head index). serve() returns the used length to push, or kNotServed to leave that buffer
  // where it is. The lane stops at the first buffer that is anything else; pop_burst() takes it and
  // reports any violation with the same Errc. pop_lone() is the same without the push: the buffers
  // stay in flight until push_unwritten() (or push()) completes them. The lane serves nothing while
  // a dirty log or an inflight log is attached or heads wait to be resubmitted. It returns the
  // buffers it took (pushed ones are published by the next flush()). On return, as after
  // pop_burst(), either has_available() is true or the ring is re-armed (with kicks on and
  // EVENT_IDX: event index published, full fence), also when it took `max` buffers, so a caller
  // that then sees has_available() false may wait for the next kick.
  { r.serve_lone(std::size_t{0}, true, [](std::byte*, std::uint32_t, std::uint16_t) { return 0u; }) }
      -> std::same_as<std::size_t>;
  { r.pop_lone(std::size_t{0}, true, [](std::byte*, std::uint32_t, std::uint16_t) { return 0u; }) }
      -> std::same_as<std::size_t>;
  { r.push_unwritten(static_cast<const Head*>(nullptr), std::size_t{0}) } -> std::same_as<void>;
  { r.flush() } -> std::same_as<void>;
  { r.needs_notification() } -> std::same_as<bool>;
  { r.disable_notification() } -> std::same_as<void>;
  { r.enable_notification() } -> std::same_as<bool>;
  { r.set_dirty_log(log, gpa) } -> std::same_as<void>;
  { r.set_inflight_log(static_cast<InflightLog*>(nullptr)) } -> std::same_as<void>;
  { cr.broken() } -> std::same_as<bool>;
  { cr.error() } -> std::same_as<Errc>;
  { cr.state() } -> std::same_as<RingState>;
  { cr.size() } -> std::same_as<std::uint16_t>;
  { cr.inflight() } -> std::same_as<std::uint16_t>;
};

static_assert(DeviceRing<SplitDeviceRing<BufferMemory>>);
static_assert(DeviceRing<PackedDeviceRing<BufferMemory>>);
static_assert(DeviceRing<SplitDeviceRing<RegionTable>>);
static_assert(DeviceRing<PackedDeviceRing<RegionTable>>);

template <GuestMemory M>
using DeviceQueue = std::variant<SplitDeviceRing<M>, PackedDeviceRing<M>>;

// The (unconfigured) ring the negotiated features call for: packed iff VIRTIO_F_RING_PACKED.
template <GuestMemory M>
DeviceQueue<M> make_device_queue(std::uint64_t features) {
  if (has_feature(features, kFRingPacked))
    return DeviceQueue<M>(std::in_place_type<PackedDeviceRing<M>>);
  return DeviceQueue<M>(std::in_place_type<SplitDeviceRing<M>>);
}

// Calls f(ring) with the active ring type. Use it around a whole burst.
template <GuestMemory M, class F>
decltype(auto) with_ring(DeviceQueue<M>& q, F&& f) {
  return std::visit(std::forward<F>(f), q);
}
template <GuestMemory M, class F>
decltype(auto) with_ring(const DeviceQueue<M>& q, F&& f) {
  return std::visit(std::forward<F>(f), q);
}

// Switches `q` to the layout `features` selects (if needed) and configures it. For packed rings
// `avail` / `used` are the driver / device event suppression areas (vhost-user SET_VRING_ADDR).
template <GuestMemory M>
Status configure_queue(DeviceQueue<M>& q, const M* mem, std::uint64_t features, std::uint16_t size,
                       void* desc, void* avail, void* used, RingState base,
                       std::uint32_t max_chain_len = 0) {
  const bool packed = has_feature(features, kFRingPacked);
  if (packed != std::holds_alternative<PackedDeviceRing<M>>(q)) q = make_device_queue<M>(features);
  return with_ring(q, [&](auto& ring) -> Status {
    using Config = typename std::remove_cvref_t<decltype(ring)>::Config;
    return ring.configure(mem, Config{size, features, desc, avail, used, max_chain_len}, base);
  });
}

}  // namespace vireo::vring
