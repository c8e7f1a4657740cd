// Every resource limit a front-end or guest can run into, in one place. Each is enforced where
// the resource is taken, with an error naming the limit; docs/LIMITS.md lists them with their
// error messages. Protocol and spec maxima are here too, so one file answers "how much can a peer
// make us hold?".
//
//   if (hdr.size > limits::kMaxMessagePayload) ...   // proto/connection.cpp
#pragma once

#include <cstddef>
#include <cstdint>

namespace vireo::limits {

// ---- vhost-user messages (proto/) ----
// Largest payload of one message; a bigger size field closes the connection before a byte of the
// payload is read (framing cannot be recovered). 4096 holds the largest fixed message (GET_CONFIG
// with 256 bytes) with room to spare.
inline constexpr std::uint32_t kMaxMessagePayload = 4096;
// Fds accepted with one message (SCM_RIGHTS); more close the connection. Fds sent: 8.
inline constexpr std::size_t kMaxMessageFds = 32;
inline constexpr std::size_t kMaxSendFds = 8;
// A message whose first byte arrived must complete within this time, and a reply the back-end
// waits for must arrive within it.
inline constexpr int kMessageTimeoutMs = 10'000;
// GET_CONFIG / SET_CONFIG size (VHOST_USER_MAX_CONFIG_SIZE).
inline constexpr std::uint32_t kMaxConfigSize = 256;

// ---- guest memory (device/memory_table) ----
// Regions in one SET_MEM_TABLE (VHOST_MEMORY_BASELINE_NREGIONS, the rst's fixed array).
inline constexpr std::uint32_t kMaxRegionsPerTable = 8;
// Regions mapped at once (GET_MAX_MEM_SLOTS; ADD_MEM_REG beyond it is refused). libvhost-user
// and rust-vmm answer 509; QEMU caps at 512.
inline constexpr std::uint64_t kMaxMemSlots = 509;

// ---- rings (vring/) ----
// Queue size, both layouts (VIRTIO 1.x §2.7, §2.8). A device's own maximum (DeviceInfo::
// max_queue_size, 1024 by default) is at most this.
inline constexpr std::uint32_t kMaxQueueSize = 32768;
// Buffer descriptors in one chain, direct and indirect together: no constant, the queue size
// (§2.7.5.2, §2.8.5) unless a device asks for less (max_chain_len).
// Entries in one indirect table: a split `next` (16 bits) cannot index more, and Linux vhost
// refuses bigger tables the same way.
inline constexpr std::uint32_t kMaxIndirectEntries = 65536;
// Host segments one popped chain may need (a descriptor crossing region edges needs several);
// Chain objects are sized for this once.
inline constexpr std::uint32_t kMaxChainSegments = 1024;

// ---- inflight tracking (device/inflight) ----
// Largest inflight region SET_INFLIGHT_FD may map (the back-end's own GET_INFLIGHT_FD regions
// are num_queues x queue_size entries of 16-32 bytes, far below it).
inline constexpr std::uint64_t kMaxInflightBytes = std::uint64_t{256} << 20;

}  // namespace vireo::limits
