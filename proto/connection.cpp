// Connection: framing, fd ownership, reply matching.
#include "proto/connection.hpp"

#include <cstring>

namespace vireo::proto {
namespace {

using Kind = ProtoError::Kind;

ProtoError from_sys(const SysError& e) {
  bool gone = e.err == EPIPE || e.err == ECONNRESET;
  return ProtoError{gone ? Kind::closed : Kind::io, e.err, e.message()};
}

}  // namespace

std::string_view to_string(ProtoError::Kind kind) {
  switch (kind) {
    case Kind::closed: return "closed";
    case Kind::truncated: return "truncated";
    case Kind::io: return "io";
    case Kind::malformed: return "malformed";
    case Kind::protocol: return "protocol";
    case Kind::rejected: return "rejected";
    case Kind::timeout: return "timeout";
    case Kind::would_block: return "would_block";
  }
  return "unknown";
}

bool ProtoError::should_reconnect() const {
  return kind == Kind::closed || kind == Kind::truncated || kind == Kind::io || kind == Kind::timeout;
}

std::string ProtoError::message() const { return std::string(to_string(kind)) + ": " + reason; }

Unexpected<ProtoError> Connection::fail(ProtoError e) {
  if (e.kind != Kind::would_block && e.kind != Kind::rejected) broken_ = true;
  return Unexpected(std::move(e));
}

Expected<void, ProtoError> Connection::wait(bool readable) {
  auto ready = readable ? stream_.wait_readable(timeout_ms_) : stream_.wait_writable(timeout_ms_);
  if (!ready) return fail(from_sys(ready.error()));
  if (!*ready)
    return fail({Kind::timeout, ETIMEDOUT,
                 std::string("peer sent nothing for ") + std::to_string(timeout_ms_) + " ms"});
  return {};
}

// Reads exactly buf.size() bytes, appending fds. Polls (with the timeout) before every read
// except the first of a message, so a stalled peer cannot block a blocking socket forever.
Expected<void, ProtoError> Connection::read_exact(std::span<std::byte> buf,
                                                  std::vector<UniqueFd>& fds, bool message_start,
                                                  bool wait_first) {
  std::size_t got = 0;
  while (got < buf.size()) {
    bool first = message_start && got == 0;
    if (!first || wait_first) {
      if (auto ok = wait(true); !ok) return ok;
    }
    auto n = stream_.recv_msg(buf.subspan(got), fds);
    if (!n && n.error().err == EAGAIN) {
      if (first) return Unexpected(ProtoError{Kind::would_block, EAGAIN, "no message pending"});
      continue;
    }
    if (!n && n.error().err == EMSGSIZE)
      return fail({Kind::malformed, EMSGSIZE, n.error().message()});
    if (!n) return fail(from_sys(n.error()));
    if (*n == 0) {
      if (first) return fail({Kind::closed, 0, "peer closed the connection"});
      return fail({Kind::truncated, 0,
                   "peer closed the connection after " + std::to_string(got) + " of " +
                       std::to_string(buf.size()) + (message_start ? " header bytes" : " payload bytes")});
    }
    got += *n;
    if (fds.size() > kMaxFds)
      return fail({Kind::malformed, EMSGSIZE, "message carries more than 32 fds"});
  }
  return {};
}

Expected<Message, ProtoError> Connection::recv() { return recv_message(false); }

Expected<Message, ProtoError> Connection::recv_message(bool wait_first) {
  if (broken_) return Unexpected(ProtoError{Kind::protocol, 0, "connection out of sync after an earlier error"});
  Message msg;
  std::array<std::byte, kHeaderSize> raw;
  if (auto ok = read_exact(raw, msg.fds, true, wait_first); !ok) return Unexpected(ok.error());
  std::memcpy(&msg.hdr, raw.data(), kHeaderSize);
  if (msg.hdr.size > kMaxPayload)  // rejected before reading a byte of it; msg.fds close here
    return fail({Kind::malformed, EMSGSIZE,
                 "request " + std::to_string(msg.hdr.request) + " announces a " +
                     std::to_string(msg.hdr.size) + "-byte payload, more than " +
                     std::to_string(kMaxPayload)});
  std::span<std::byte> body(msg.payload.data(), msg.hdr.size);
  if (auto ok = read_exact(body, msg.fds, false, false); !ok) return Unexpected(ok.error());
  return msg;
}

Expected<void, ProtoError> Connection::write_all(std::span<const std::byte> bytes,
                                                 std::span<const int> fds) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    auto n = stream_.send_msg(bytes.subspan(sent), sent == 0 ? fds : std::span<const int>{});
    if (!n && n.error().err == EAGAIN) {
      if (auto ok = wait(false); !ok) return ok;
      continue;
    }
    if (!n) return fail(from_sys(n.error()));
    sent += *n;
  }
  return {};
}

Expected<void, ProtoError> Connection::send(std::uint32_t request, std::uint32_t flags,
                                            std::span<const std::byte> payload,
                                            std::span<const int> fds) {
  if (broken_) return Unexpected(ProtoError{Kind::protocol, 0, "connection out of sync after an earlier error"});
  if (payload.size() > kMaxPayload || fds.size() > kMaxSendFds)  // caller bug: nothing sent
    return Unexpected(ProtoError{Kind::malformed, EMSGSIZE, "outgoing message too large or too many fds"});
  std::array<std::byte, kHeaderSize + kMaxPayload> buf;
  MsgHeader hdr{request, (flags & ~kVersionMask) | kVersion, static_cast<std::uint32_t>(payload.size())};
  std::memcpy(buf.data(), &hdr, kHeaderSize);
  if (!payload.empty()) std::memcpy(buf.data() + kHeaderSize, payload.data(), payload.size());
  return write_all(std::span<const std::byte>(buf.data(), kHeaderSize + payload.size()), fds);
}

Expected<void, ProtoError> Connection::send_reply(const MsgHeader& req,
                                                  std::span<const std::byte> payload,
                                                  std::span<const int> fds) {
  return send(req.request, kFlagReply, payload, fds);
}

Expected<void, ProtoError> Connection::send_ack(const MsgHeader& req, std::uint64_t status) {
  return send_reply(req, as_bytes(U64{status}));
}

Expected<Message, ProtoError> Connection::transact(const MessageSpec& spec,
                                                   std::span<const std::byte> payload,
                                                   std::span<const int> fds, bool need_reply) {
  std::uint32_t flags = (need_reply && has_proto(protocol_features_, kProtoFReplyAck)) ? kFlagNeedReply : 0;
  ReplyKind kind = reply_kind(spec, flags, protocol_features_);
  if (auto ok = send(spec.request, flags, payload, fds); !ok) return Unexpected(ok.error());
  if (kind == ReplyKind::none) return Message{};
  auto reply = recv_message(true);
  if (!reply) return reply;
  if (auto ok = validate_reply(*reply, spec, kind); !ok)
    return fail({Kind::protocol, EPROTO, ok.error().reason});
  if (kind == ReplyKind::ack) {
    auto status = reply->payload_as<U64>().u64;
    if (status != 0)
      return Unexpected(ProtoError{Kind::rejected, static_cast<int>(status & 0x7fffffff),
                                   std::string(spec.name) + " failed: peer acked status " +
                                       std::to_string(status)});
  }
  return reply;
}

Expected<Message, ProtoError> Connection::request(FrontendReq req, std::span<const std::byte> payload,
                                                  std::span<const int> fds, bool need_reply) {
  const MessageSpec* spec = find_spec(req);
  if (!spec) return Unexpected(ProtoError{Kind::protocol, EINVAL, "request id not in vhost-user.rst"});
  return transact(*spec, payload, fds, need_reply);
}

Expected<Message, ProtoError> Connection::request(BackendReq req, std::span<const std::byte> payload,
                                                  std::span<const int> fds, bool need_reply) {
  const MessageSpec* spec = find_spec(req);
  if (!spec) return Unexpected(ProtoError{Kind::protocol, EINVAL, "request id not in vhost-user.rst"});
  return transact(*spec, payload, fds, need_reply);
}

}  // namespace vireo::proto
