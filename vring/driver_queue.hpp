// One driver queue whose layout (split or packed) is fixed at configure time.
//
//   DriverQueue q;
//   configure_driver_queue(q, cfg);                 // picks the layout from VIRTIO_F_RING_PACKED
//   process_burst(q, [&](auto& ring) {              // one dispatch for the whole burst
//     for (auto& req : batch) ring.add(req.out, req.in, req.token);
//     if (ring.kick_prepare()) kick();
//   });
//
// std::visit happens once per burst, never per descriptor (Linux VIRTQUEUE_CALL, DPDK
// set_rxtx_funcs): inside the callable the ring type is concrete and every call is direct.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <variant>

#include "vring/driver_common.hpp"
#include "vring/packed_driver.hpp"
#include "vring/split_driver.hpp"

namespace vireo::vring {

// The verbs every driver-side ring layout provides, with the same signatures.
template <class R>
concept DriverRing = requires(R& r, const R& cr, const DriverConfig& c,
                              std::span<const DriverBuffer> bufs, std::uint64_t token,
                              DriverUsed& used, std::span<DriverUsed> burst) {
  { r.configure(c) } -> std::same_as<Status>;
  { r.add(bufs, bufs, token, true) } -> std::same_as<Result<std::uint16_t>>;
  { r.kick_prepare() } -> std::same_as<bool>;
  { r.get_used(used) } -> std::same_as<Result<bool>>;
  { r.get_used_burst(burst) } -> std::same_as<Result<std::size_t>>;
  { r.disable_cb() } -> std::same_as<void>;
  { r.enable_cb() } -> std::same_as<bool>;
  { cr.num_free() } -> std::same_as<std::uint16_t>;
  { cr.size() } -> std::same_as<std::uint16_t>;
  { cr.broken() } -> std::same_as<bool>;
  { cr.error() } -> std::same_as<Errc>;
};

static_assert(DriverRing<SplitDriverRing>);
static_assert(DriverRing<PackedDriverRing>);

using DriverQueue = std::variant<SplitDriverRing, PackedDriverRing>;

// Selects the layout from the negotiated VIRTIO_F_RING_PACKED bit and configures it.
inline Status configure_driver_queue(DriverQueue& q, const DriverConfig& c) {
  if (has_feature(c.features, kFRingPacked)) return q.emplace<PackedDriverRing>().configure(c);
  return q.emplace<SplitDriverRing>().configure(c);
}

// Runs fn(ring) once with the concrete ring; fn does the whole burst. Returns what fn returns.
template <class F>
decltype(auto) process_burst(DriverQueue& q, F&& fn) {
  return std::visit(std::forward<F>(fn), q);
}
template <class F>
decltype(auto) process_burst(const DriverQueue& q, F&& fn) {
  return std::visit(std::forward<F>(fn), q);
}

}  // namespace vireo::vring
