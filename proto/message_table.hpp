// One constexpr table per direction describing every vhost-user request: payload size rule, fd
// rule, gating protocol feature, reply rule. validate() enforces it before any handler runs.
//
//   auto spec = validate(msg, session.protocol_features());
//   if (!spec) {
//     VIREO_LOG_WARN("rejecting message: %s", spec.error().reason.c_str());
//     if (spec.error().close_connection) return close();
//     if (ack_owed(msg.hdr, features)) conn.send_ack(msg.hdr, 1);   // REPLY_ACK failure
//     return;                                       // msg (and its fds) dropped: fds closed
//   }
//   switch (reply_kind(**spec, msg.hdr.flags, features)) { ... }
//
// Semantic checks that need session state (queue index < num queues, region overlap, ...) stay
// with the handlers; everything here depends only on the message and negotiated features.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/expected.hpp"
#include "proto/message.hpp"
#include "proto/messages.hpp"

namespace vireo::proto {

enum class PayloadRule : std::uint8_t {
  none,      // size must be 0 (rst "request payload: N/A")
  exact,     // size == MessageSpec::size
  at_least,  // size >= MessageSpec::size; MessageSpec::check decides the rest
};

enum class ReplyRule : std::uint8_t {
  ack_only,      // no reply body; u64 ack only with NEED_REPLY + REPLY_ACK (rst "REPLY_ACK")
  always,        // always a reply body (rst "Communication": the messages that require replies)
  with_feature,  // a reply body when reply_feature is negotiated (SET_LOG_BASE with LOG_SHMFD)
};

enum class ReplyKind : std::uint8_t { none, ack, body };

inline constexpr int kNoFeature = -1;
inline constexpr std::uint32_t kVariableSize = 0xffffffffu;

// Extra content rule: ok, or the reason the message is invalid.
using SpecCheck = Expected<void, std::string> (*)(const Message& msg, std::uint64_t features);

struct MessageSpec {
  std::uint32_t request;
  std::string_view name;      // rst name without "VHOST_USER_", e.g. "SET_VRING_NUM"
  PayloadRule payload;
  std::uint32_t size;         // exact / minimum payload size
  std::uint8_t min_fds;
  std::uint8_t max_fds;       // check may narrow (SET_MEM_TABLE: exactly nregions)
  int feature;                // gating protocol feature bit, or kNoFeature
  ReplyRule reply;
  int reply_feature;          // for ReplyRule::with_feature
  std::uint32_t reply_size;   // reply body size, or kVariableSize
  std::uint8_t reply_max_fds;
  SpecCheck check;            // nullptr: no content rule
};

struct Rejection {
  std::string reason;            // "SET_VRING_NUM payload is 4 bytes, expected 8"
  bool close_connection = false; // framing/version broken, or the peer waits for a reply body
};

// The tables, sorted by id, ids 1..kFrontendReqMax / 1..kBackendReqMax without gaps.
std::span<const MessageSpec> frontend_specs();
std::span<const MessageSpec> backend_specs();
// nullptr for ids outside the rst.
const MessageSpec* find_spec(FrontendReq req);
const MessageSpec* find_spec(BackendReq req);

// Front-end -> back-end request, checked in this order: version bits, REPLY flag (must be clear),
// size within kMaxPayload, known id, gating feature negotiated, payload size, fd count, content.
[[nodiscard]] Expected<const MessageSpec*, Rejection> validate(
    const Message& msg, std::uint64_t negotiated_protocol_features);
// Back-end -> front-end request on the back-end channel; additionally, fds are only allowed with
// BACKEND_SEND_FD (rst "Back-end communication").
[[nodiscard]] Expected<const MessageSpec*, Rejection> validate_backend(
    const Message& msg, std::uint64_t negotiated_protocol_features);
// A reply to a request described by spec, of the kind expected (ack or body): id, REPLY flag,
// version, size and fd count.
[[nodiscard]] Expected<void, Rejection> validate_reply(const Message& reply,
                                                       const MessageSpec& spec, ReplyKind kind);

// What the receiver of a request must send back (rst "Communication", "REPLY_ACK").
ReplyKind reply_kind(const MessageSpec& spec, std::uint32_t flags,
                     std::uint64_t negotiated_protocol_features);
// For a rejected message: an ack (u64 non-zero) is owed iff NEED_REPLY and REPLY_ACK.
bool ack_owed(const MsgHeader& hdr, std::uint64_t negotiated_protocol_features);

// "MQ", "LOG_SHMFD", ... ("UNKNOWN" past DEVICE_STATE).
std::string_view proto_feature_name(unsigned bit);

}  // namespace vireo::proto
