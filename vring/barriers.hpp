// Memory ordering for shared ring fields: the only place atomics touch guest memory.
//
// Ring indexes and flags are accessed through these helpers (std::atomic_ref over the shared
// field); descriptor and buffer contents are plain memory ordered by them. Every call site carries a
// one-line comment naming the write its ordering pairs with, e.g.
//   // acquire: pairs with the driver's release store of avail->idx after writing the ring entries
//   uint16_t avail = load_acquire(*view.avail_idx);
//
// vhost-user peers are CPUs sharing memory, so SMP (weak) barriers suffice: VIRTIO_F_ORDER_PLATFORM
// is not offered (§6, "if not negotiated, SMP barriers suffice").
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>

namespace vireo::vring {

template <class T>
inline T load_acquire(const T& field) {
  return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_acquire);
}
template <class T>
inline T load_relaxed(const T& field) {
  return std::atomic_ref<T>(const_cast<T&>(field)).load(std::memory_order_relaxed);
}
template <class T>
inline void store_release(T& field, T value) {
  std::atomic_ref<T>(field).store(value, std::memory_order_release);
}
template <class T>
inline void store_relaxed(T& field, T value) {
  std::atomic_ref<T>(field).store(value, std::memory_order_relaxed);
}

// Store-load ordering: needed where one side publishes an index and then reads the other side's
// suppression field (EVENT_IDX / flags), and for "re-check after enable". Pairs with the same
// fence on the other side.
#if defined(__SANITIZE_THREAD__)
// ThreadSanitizer does not model fences (g++ rejects them under -fsanitize=thread). A seq_cst
// read-modify-write of one shared word gives the same store-load ordering on every CPU (it is what
// Linux's virt_mb() compiles to on x86) and is something TSan understands.
inline void full_fence() {
  static std::atomic<std::uint32_t> word{0};
  word.fetch_add(0, std::memory_order_seq_cst);
}
#else
inline void full_fence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
#endif

// Copies a guest-controlled object (a descriptor) into a local exactly once. The compiler barrier
// after the copy stops the optimizer from re-reading the shared bytes in place of the copy, so a
// value that was validated is the value that is used (no double fetch). `src` need not be aligned
// (indirect tables have no alignment rule), hence the void pointer and the memcpy.
template <class T>
inline T read_once(const void* src) noexcept {
  T local;
  std::memcpy(&local, src, sizeof(T));
  std::atomic_signal_fence(std::memory_order_seq_cst);
  return local;
}

}  // namespace vireo::vring
