// Message: one received (or to-be-checked) vhost-user message, owning its fds.
//
//   auto msg = conn.recv();                              // Expected<Message, ProtoError>
//   auto spec = validate(*msg, negotiated_protocol_features);
//   if (!spec) { /* log spec.error().reason; msg's fds close when it goes out of scope */ }
//   auto st = msg->payload_as<VringState>();             // copy out; never alias the buffer
//
// The payload buffer is fixed-size so a message is one allocation-free object apart from fds.
#pragma once

#include "base/limits.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "proto/messages.hpp"
#include "proto/sys/unique_fd.hpp"

namespace vireo::proto {

// Largest payload accepted; hdr.size above this is rejected before any payload byte is read.
// 4096 covers every payload in vhost-user.rst with room to spare (largest fixed ones:
// VhostUserConfig 12 + 256 = 268, VhostUserMemory 8 + 8 * 32 = 264; the crypto session
// description with a 1 KiB asymmetric key is ~1.1 KiB) and equals rust-vmm's MAX_MSG_SIZE.
inline constexpr std::size_t kMaxPayload = limits::kMaxMessagePayload;

struct Message {
  MsgHeader hdr{};
  std::array<std::byte, kMaxPayload> payload{};  // peer-controlled; first hdr.size bytes valid
  std::vector<UniqueFd> fds;                     // owned; closed with the message

  std::span<const std::byte> payload_bytes() const {
    return {payload.data(), std::min<std::size_t>(hdr.size, kMaxPayload)};
  }
  // True if the payload holds at least sizeof(T) bytes.
  template <class T>
  bool payload_fits() const {
    return hdr.size >= sizeof(T) && sizeof(T) <= kMaxPayload;
  }
  // Copies the payload out as T (memcpy: no aliasing, no alignment assumptions). Bytes beyond
  // hdr.size read as zero, so a short payload never exposes stale buffer contents; validate()
  // has already enforced the exact size for every table-described message.
  template <class T>
    requires std::is_trivially_copyable_v<T>
  T payload_as(std::size_t offset = 0) const {
    T value{};
    std::size_t avail = hdr.size > offset ? std::min<std::size_t>(hdr.size, kMaxPayload) - offset : 0;
    if (offset < kMaxPayload)
      std::memcpy(&value, payload.data() + offset, std::min(sizeof(T), avail));
    return value;
  }

  std::uint32_t version() const { return hdr.flags & kVersionMask; }
  bool is_reply() const { return (hdr.flags & kFlagReply) != 0; }
  bool need_reply() const { return (hdr.flags & kFlagNeedReply) != 0; }
};

}  // namespace vireo::proto
