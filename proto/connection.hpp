// Connection: vhost-user message framing over a UnixStream, for both ends and both channels.
//
//   // back-end (device) side
//   Connection conn(std::move(stream));
//   auto msg = conn.recv();                       // Expected<Message, ProtoError>
//   if (!msg) return msg.error().should_reconnect() ? wait_for_frontend() : fail();
//   auto spec = validate(*msg, features);         // message_table.hpp
//   ...
//   (void)conn.send_reply(msg->hdr, as_bytes(U64{features}));
//
//   // front-end (driver) side
//   auto reply = conn.request(FrontendReq::get_features, {}, {}, /*need_reply=*/false);
//   auto features = reply->payload_as<U64>().u64;
//
// Framing (rst "Message Specification"): 12-byte header (request, flags, size), then exactly
// `size` payload bytes; fds travel as SCM_RIGHTS with the message. A Connection is used by one
// thread at a time. After a framing error (truncated, oversize, I/O error) the byte stream is out
// of sync and every later call fails: close it and reconnect.
#pragma once

#include "base/limits.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/expected.hpp"
#include "proto/message.hpp"
#include "proto/message_table.hpp"
#include "proto/messages.hpp"
#include "proto/sys/unix_socket.hpp"

namespace vireo::proto {

struct ProtoError {
  enum class Kind : std::uint8_t {
    closed,       // peer closed (EOF, EPIPE, ECONNRESET) at a message boundary
    truncated,    // peer closed in the middle of a message
    io,           // other socket error (err = errno)
    malformed,    // framing broken: oversize size field, too many fds
    protocol,     // well framed but wrong: unexpected reply, bad reply size, out-of-sync stream
    rejected,     // REPLY_ACK answered with a non-zero status (err = low bits of the status)
    timeout,      // no (complete) message within the timeout
    would_block,  // non-blocking socket, no message started yet: poll and call recv() again
  };
  Kind kind = Kind::io;
  int err = 0;
  std::string reason;

  // True when the session is lost but the peer may come back (closed, truncated, io, timeout):
  // rebuild the connection and replay the negotiation (rst "Reconnection" / inflight tracking).
  bool should_reconnect() const;
  std::string message() const;  // "<kind>: <reason>"
};
std::string_view to_string(ProtoError::Kind kind);

class Connection {
 public:
  // Reply wait and mid-message stall limit (ms); -1 waits forever.
  static constexpr int kDefaultTimeoutMs = limits::kMessageTimeoutMs;

  Connection() = default;
  explicit Connection(UnixStream stream) : stream_(std::move(stream)) {}

  // Reads one whole message with its fds. Rejects hdr.size > kMaxPayload before reading the
  // payload. On any error every fd received so far is closed.
  [[nodiscard]] Expected<Message, ProtoError> recv();

  // Sends header + payload (+ fds, at most kMaxSendFds) completely; partial writes are resumed.
  // The version bits of flags are forced to kVersion.
  [[nodiscard]] Expected<void, ProtoError> send(std::uint32_t request, std::uint32_t flags,
                                                std::span<const std::byte> payload,
                                                std::span<const int> fds = {});
  // Reply to req: same request id, flags = version | kFlagReply.
  [[nodiscard]] Expected<void, ProtoError> send_reply(const MsgHeader& req,
                                                      std::span<const std::byte> payload,
                                                      std::span<const int> fds = {});
  // REPLY_ACK answer: u64 status, 0 = success (rst "REPLY_ACK").
  [[nodiscard]] Expected<void, ProtoError> send_ack(const MsgHeader& req, std::uint64_t status);

  // Sends a request and, if one is due, waits for its reply (reply_kind() with the protocol
  // features set below). need_reply sets NEED_REPLY only when REPLY_ACK is negotiated. Returns
  // the reply (validated by validate_reply), or an empty Message (header all zero) when none is
  // due. A non-zero REPLY_ACK status becomes ProtoError::Kind::rejected.
  [[nodiscard]] Expected<Message, ProtoError> request(FrontendReq req,
                                                      std::span<const std::byte> payload,
                                                      std::span<const int> fds, bool need_reply);
  // Same for the back-end channel (back-end -> front-end requests).
  [[nodiscard]] Expected<Message, ProtoError> request(BackendReq req,
                                                      std::span<const std::byte> payload,
                                                      std::span<const int> fds, bool need_reply);

  // Negotiated protocol features: decide which requests get replies. Set after
  // SET_PROTOCOL_FEATURES.
  void set_protocol_features(std::uint64_t features) { protocol_features_ = features; }
  std::uint64_t protocol_features() const { return protocol_features_; }
  void set_timeout_ms(int ms) { timeout_ms_ = ms; }
  int timeout_ms() const { return timeout_ms_; }

  bool broken() const { return broken_; }
  const UnixStream& stream() const { return stream_; }
  int fd() const { return stream_.fd(); }

 private:
  Expected<Message, ProtoError> recv_message(bool wait_first);
  Expected<void, ProtoError> read_exact(std::span<std::byte> buf, std::vector<UniqueFd>& fds,
                                        bool message_start, bool wait_first);
  Expected<void, ProtoError> write_all(std::span<const std::byte> bytes, std::span<const int> fds);
  Expected<void, ProtoError> wait(bool readable);
  Expected<Message, ProtoError> transact(const MessageSpec& spec, std::span<const std::byte> payload,
                                         std::span<const int> fds, bool need_reply);
  Unexpected<ProtoError> fail(ProtoError e);

  UnixStream stream_;
  std::uint64_t protocol_features_ = 0;
  int timeout_ms_ = kDefaultTimeoutMs;
  bool broken_ = false;
};

}  // namespace vireo::proto
