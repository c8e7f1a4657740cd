// Connection over a socketpair: framing, partial I/O, fd passing and fd hygiene, disconnects.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstring>
#include <functional>
#include <thread>

#include "fd_helpers.hpp"
#include "proto/connection.hpp"
#include "proto/sys/event_fd.hpp"

namespace vireo::proto {
namespace {

using testing::make_fds;
using testing::open_fd_count;
using testing::raw;
using Kind = ProtoError::Kind;

struct Pair {
  Connection a;  // "front-end"
  UnixStream b;  // raw peer
};

Pair make_pair() {
  auto p = UnixStream::socketpair();
  EXPECT_TRUE(p);
  return Pair{Connection(std::move(p->first)), std::move(p->second)};
}

std::vector<std::byte> frame(std::uint32_t req, std::uint32_t flags, std::uint32_t size,
                             std::span<const std::byte> payload = {}) {
  std::vector<std::byte> out(kHeaderSize + payload.size());
  MsgHeader h{req, flags, size};
  std::memcpy(out.data(), &h, kHeaderSize);
  if (!payload.empty()) std::memcpy(out.data() + kHeaderSize, payload.data(), payload.size());
  return out;
}

void send_raw(const UnixStream& s, std::span<const std::byte> bytes, std::span<const int> fds = {}) {
  auto n = s.send_msg(bytes, fds);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, bytes.size());
}

TEST(ConnectionTest, RoundTripWithPayloadAndFds) {
  auto p = UnixStream::socketpair();
  ASSERT_TRUE(p);
  Connection front(std::move(p->first)), back(std::move(p->second));
  auto kick = EventFd::create(true);
  ASSERT_TRUE(kick);
  int fd = kick->fd();
  ASSERT_TRUE(front.send(12, 0, as_bytes(U64{encode_vring_file(2, false)}), std::span<const int>(&fd, 1)));
  auto msg = back.recv();
  ASSERT_TRUE(msg) << msg.error().message();
  EXPECT_EQ(msg->hdr.request, 12u);
  EXPECT_EQ(msg->version(), kVersion);
  EXPECT_EQ(msg->payload_as<U64>().u64, 0x2u);
  ASSERT_EQ(msg->fds.size(), 1u);
  EXPECT_TRUE(validate(*msg, 0));
  // The received fd is the same eventfd: a signal through it is seen by the original.
  auto received = EventFd::adopt(std::move(msg->fds[0]));
  ASSERT_TRUE(received.signal(5));
  EXPECT_EQ(*kick->drain(), 5u);
}

TEST(ConnectionTest, ByteByByteSenderIsReassembled) {
  auto [conn, peer] = make_pair();
  VringAddr addr{1, 0, 0x1000, 0x2000, 0x3000, 0};
  auto bytes = frame(9, kVersion, sizeof addr, as_bytes(addr));
  auto fds = make_fds(2);
  auto fd_raw = raw(fds);
  std::thread sender([&, &peer = peer] {
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      auto n = peer.send_msg(std::span(bytes).subspan(i, 1),
                             i == 0 ? std::span<const int>(fd_raw) : std::span<const int>{});
      ASSERT_TRUE(n);
      std::this_thread::yield();
    }
  });
  auto msg = conn.recv();
  sender.join();
  ASSERT_TRUE(msg) << msg.error().message();
  EXPECT_EQ(msg->hdr.size, sizeof addr);
  EXPECT_EQ(msg->payload_as<VringAddr>().avail_user_addr, 0x3000u);
  EXPECT_EQ(msg->fds.size(), 2u);
}

TEST(ConnectionTest, LargePayloadSurvivesPartialWrites) {
  auto p = UnixStream::socketpair();
  ASSERT_TRUE(p);
  int small = 4096;  // force several sendmsg calls per message
  ::setsockopt(p->first.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  Connection front(std::move(p->first)), back(std::move(p->second));
  std::vector<std::byte> payload(kMaxPayload);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = std::byte(i * 7);
  std::thread sender([&] {
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(front.send(26, 0, payload));
  });
  for (int i = 0; i < 20; ++i) {
    auto msg = back.recv();
    ASSERT_TRUE(msg) << msg.error().message();
    ASSERT_EQ(msg->hdr.size, kMaxPayload);
    ASSERT_EQ(std::memcmp(msg->payload.data(), payload.data(), kMaxPayload), 0);
  }
  sender.join();
}

TEST(ConnectionTest, FdsOfARejectedMessageAreClosed) {
  auto [conn, peer] = make_pair();
  int before = open_fd_count();
  {
    auto fds = make_fds(3);
    send_raw(peer, frame(8, kVersion, 8, as_bytes(VringState{0, 256})), raw(fds));
  }  // our copies closed; the only references now sit in the socket
  EXPECT_EQ(open_fd_count(), before);
  {
    auto msg = conn.recv();
    ASSERT_TRUE(msg);
    EXPECT_EQ(msg->fds.size(), 3u);
    EXPECT_EQ(open_fd_count(), before + 3);
    auto r = validate(*msg, 0);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().reason, "SET_VRING_NUM carries 3 fds, expected 0 to 0");
  }
  EXPECT_EQ(open_fd_count(), before);
}

TEST(ConnectionTest, CleanCloseAtMessageBoundary) {
  auto [conn, peer] = make_pair();
  peer = UnixStream();  // close
  auto msg = conn.recv();
  ASSERT_FALSE(msg);
  EXPECT_EQ(msg.error().kind, Kind::closed);
  EXPECT_TRUE(msg.error().should_reconnect());
}

TEST(ConnectionTest, PeerDisconnectMidHeaderClosesReceivedFds) {
  auto [conn, peer] = make_pair();
  int before = open_fd_count();
  {
    auto fds = make_fds(2);
    auto bytes = frame(5, kVersion, 40);
    send_raw(peer, std::span(bytes).first(5), raw(fds));
  }
  peer = UnixStream();
  auto msg = conn.recv();
  ASSERT_FALSE(msg);
  EXPECT_EQ(msg.error().kind, Kind::truncated);
  EXPECT_NE(msg.error().reason.find("5 of 12 header bytes"), std::string::npos) << msg.error().reason;
  EXPECT_TRUE(msg.error().should_reconnect());
  EXPECT_EQ(open_fd_count(), before - 1);  // the peer socket, and every received fd
  EXPECT_TRUE(conn.broken());
  EXPECT_EQ(conn.recv().error().kind, Kind::protocol);
}

TEST(ConnectionTest, PeerDisconnectMidPayload) {
  auto [conn, peer] = make_pair();
  int before = open_fd_count();
  {
    auto fds = make_fds(1);
    auto bytes = frame(12, kVersion, 8, as_bytes(U64{0}));
    send_raw(peer, std::span(bytes).first(15), raw(fds));
  }
  peer = UnixStream();
  auto msg = conn.recv();
  ASSERT_FALSE(msg);
  EXPECT_EQ(msg.error().kind, Kind::truncated);
  EXPECT_NE(msg.error().reason.find("3 of 8 payload bytes"), std::string::npos) << msg.error().reason;
  EXPECT_EQ(open_fd_count(), before - 1);  // the peer socket, and every received fd
}

TEST(ConnectionTest, OversizeSizeFieldIsRejectedBeforeReadingThePayload) {
  auto [conn, peer] = make_pair();
  auto fds = make_fds(1);
  send_raw(peer, frame(5, kVersion, kMaxPayload + 1), raw(fds));
  fds.clear();
  std::byte marker[3] = {std::byte{0xaa}, std::byte{0xbb}, std::byte{0xcc}};
  send_raw(peer, marker);
  int before = open_fd_count();
  auto msg = conn.recv();
  ASSERT_FALSE(msg);
  EXPECT_EQ(msg.error().kind, Kind::malformed);
  EXPECT_FALSE(msg.error().should_reconnect());
  EXPECT_EQ(open_fd_count(), before);  // the fd that came with the header was closed
  // The bytes after the header are still in the socket: nothing of the payload was consumed.
  std::byte rest[3];
  std::vector<UniqueFd> none;
  auto n = conn.stream().recv_msg(rest, none);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 3u);
  EXPECT_EQ(rest[0], std::byte{0xaa});
}

TEST(ConnectionTest, MoreThan32FdsIsMalformedAndAllAreClosed) {
  auto [conn, peer] = make_pair();
  int before = open_fd_count();
  {
    auto fds = make_fds(40);
    auto fd_raw = raw(fds);
    auto bytes = frame(5, kVersion, 0);
    iovec iov{bytes.data(), bytes.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(40 * sizeof(int))] = {};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(40 * sizeof(int));
    std::memcpy(CMSG_DATA(c), fd_raw.data(), 40 * sizeof(int));
    ASSERT_EQ(::sendmsg(peer.fd(), &mh, 0), static_cast<ssize_t>(bytes.size()));
  }
  auto msg = conn.recv();
  ASSERT_FALSE(msg);
  EXPECT_EQ(msg.error().kind, Kind::malformed);
  EXPECT_EQ(open_fd_count(), before);
}

TEST(ConnectionTest, NonBlockingRecvWithNothingPendingWouldBlock) {
  auto [conn, peer] = make_pair();
  ASSERT_TRUE(conn.stream().set_nonblocking(true));
  auto msg = conn.recv();
  ASSERT_FALSE(msg);
  EXPECT_EQ(msg.error().kind, Kind::would_block);
  EXPECT_FALSE(conn.broken());
  send_raw(peer, frame(3, kVersion, 0));
  EXPECT_TRUE(conn.recv());
}

TEST(ConnectionTest, StalledPeerMidMessageTimesOut) {
  auto [conn, peer] = make_pair();
  conn.set_timeout_ms(50);
  auto bytes = frame(2, kVersion, 8);
  send_raw(peer, bytes);  // header only, payload never comes
  auto msg = conn.recv();
  ASSERT_FALSE(msg);
  EXPECT_EQ(msg.error().kind, Kind::timeout);
}

// ---- request(): the front-end side ----

// Runs a fake back-end on peer that answers one request with the bytes f returns.
std::thread answer_once(UnixStream& peer, std::function<std::vector<std::byte>(const Message&)> f) {
  return std::thread([back = Connection(std::move(peer)), f]() mutable {
    auto msg = back.recv();
    ASSERT_TRUE(msg);
    auto out = f(*msg);
    if (!out.empty()) send_raw(back.stream(), out);
  });
}

TEST(ConnectionTest, RequestWaitsForTheReplyBody) {
  auto [conn, peer] = make_pair();
  auto t = answer_once(peer, [](const Message& m) {
    EXPECT_EQ(m.hdr.request, 1u);
    EXPECT_EQ(m.hdr.flags, kVersion);
    return frame(1, kVersion | kFlagReply, 8, as_bytes(U64{0x140000000ull}));
  });
  auto reply = conn.request(FrontendReq::get_features, {}, {}, false);
  t.join();
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(reply->payload_as<U64>().u64, 0x140000000ull);
}

TEST(ConnectionTest, RequestWithoutDueReplyReturnsAtOnce) {
  auto [conn, peer] = make_pair();
  // need_reply without REPLY_ACK negotiated: NEED_REPLY is not set, nothing is awaited.
  auto r = conn.request(FrontendReq::set_vring_num, as_bytes(VringState{0, 256}), {}, true);
  ASSERT_TRUE(r);
  Connection back(std::move(peer));
  auto msg = back.recv();
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->hdr.flags, kVersion);
}

TEST(ConnectionTest, ReplyAckSuccessAndFailure) {
  for (std::uint64_t status : {0ull, 1ull}) {
    auto [conn, peer] = make_pair();
    conn.set_protocol_features(proto_bit(kProtoFReplyAck));
    auto t = answer_once(peer, [status](const Message& m) {
      EXPECT_TRUE(m.need_reply());
      return frame(8, kVersion | kFlagReply, 8, as_bytes(U64{status}));
    });
    auto r = conn.request(FrontendReq::set_vring_num, as_bytes(VringState{0, 256}), {}, true);
    t.join();
    if (status == 0) {
      EXPECT_TRUE(r);
    } else {
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().kind, Kind::rejected);
      EXPECT_FALSE(conn.broken());
    }
  }
}

TEST(ConnectionTest, MismatchedReplyIsAProtocolError) {
  auto [conn, peer] = make_pair();
  auto t = answer_once(peer, [](const Message&) {
    return frame(15, kVersion | kFlagReply, 8, as_bytes(U64{0}));
  });
  auto r = conn.request(FrontendReq::get_features, {}, {}, false);
  t.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, Kind::protocol);
}

TEST(ConnectionTest, MissingReplyTimesOut) {
  auto [conn, peer] = make_pair();
  conn.set_timeout_ms(50);
  auto r = conn.request(FrontendReq::get_features, {}, {}, false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, Kind::timeout);
  EXPECT_TRUE(r.error().should_reconnect());
}

TEST(ConnectionTest, SendReplyAndAck) {
  auto [conn, peer] = make_pair();
  MsgHeader req{11, kVersion, 8};
  ASSERT_TRUE(conn.send_reply(req, as_bytes(VringState{0, 42})));
  ASSERT_TRUE(conn.send_ack(req, 0));
  Connection other(std::move(peer));
  auto a = other.recv();
  auto b = other.recv();
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_EQ(a->hdr.flags, kVersion | kFlagReply);
  EXPECT_EQ(a->payload_as<VringState>().num, 42u);
  EXPECT_EQ(b->hdr.size, 8u);
}

TEST(ConnectionTest, SendRejectsTooManyFdsWithoutSending) {
  auto [conn, peer] = make_pair();
  auto fds = make_fds(9);
  auto r = conn.send(5, 0, {}, raw(fds));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, Kind::malformed);
  EXPECT_FALSE(conn.broken());
}

TEST(ConnectionTest, BackendChannelRequest) {
  auto [conn, peer] = make_pair();
  conn.set_protocol_features(proto_bit(kProtoFSharedObject));
  auto t = answer_once(peer, [](const Message& m) {
    EXPECT_TRUE(validate_backend(m, proto_bit(kProtoFSharedObject)));
    return frame(8, kVersion | kFlagReply, 8, as_bytes(U64{0}));
  });
  auto r = conn.request(BackendReq::backend_shared_object_lookup, as_bytes(SharedObject{}), {}, false);
  t.join();
  ASSERT_TRUE(r) << r.error().message();
}

}  // namespace
}  // namespace vireo::proto
