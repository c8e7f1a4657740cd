// Hostile front-end: disconnects in the middle of a message, and requests beyond the back-end's
// resource limits (docs/LIMITS.md). Fds that came with a cut-off message are closed; the daemon
// serves the next front-end (TearDown).
#include <sys/socket.h>
#include <unistd.h>

#include "base/limits.hpp"
#include "hostile_rig.hpp"
#include "proto/messages.hpp"
#include "proto/sys/event_fd.hpp"
#include "proto/sys/memfd.hpp"

namespace vireo::test::hostile {
namespace {

using proto::FrontendReq;

// Sends `bytes` of a message (with fds on the first byte) and closes the connection.
void send_part_and_close(FrontendFake& fe, std::span<const std::byte> bytes, std::span<const int> fds) {
  auto n = fe.conn().stream().send_msg(bytes, fds);
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, bytes.size());
  ::shutdown(fe.conn().fd(), SHUT_RDWR);
}

std::vector<std::byte> message(FrontendReq req, std::span<const std::byte> payload) {
  const proto::MsgHeader h{static_cast<std::uint32_t>(req), proto::kVersion,
                           static_cast<std::uint32_t>(payload.size())};
  std::vector<std::byte> m(sizeof h + payload.size());
  std::memcpy(m.data(), &h, sizeof h);
  if (!payload.empty()) std::memcpy(m.data() + sizeof h, payload.data(), payload.size());
  return m;
}

TEST_F(HostileTest, DisconnectAfterTheHeader) {
  connect();
  ASSERT_TRUE(fe().negotiate(kSplit, kProtoAll));
  const auto m = message(FrontendReq::set_vring_num, proto::as_bytes(proto::VringState{0, 8}));
  send_part_and_close(fe(), std::span(m).first(proto::kHeaderSize), {});
  EXPECT_TRUE(log_.wait_for("peer closed the connection after 0 of 8 payload bytes")) << log_.all();
}

TEST_F(HostileTest, DisconnectWithHalfThePayloadAndItsFd) {
  connect();
  ASSERT_TRUE(fe().negotiate(kSplit, kProtoAll));
  proto::MemoryTable t{};
  t.nregions = 1;
  t.regions[0] = fe().ram_region();
  const auto m = message(FrontendReq::set_mem_table,
                         std::span(reinterpret_cast<const std::byte*>(&t), proto::kMemoryTableHeaderSize + 32));
  const int fd = fe().ram_fd();
  send_part_and_close(fe(), std::span(m).first(proto::kHeaderSize + 20), std::span(&fd, 1));
  EXPECT_TRUE(log_.wait_for("peer closed the connection after 20 of 40 payload bytes")) << log_.all();
}

TEST_F(HostileTest, DisconnectWithFdsButNoPayload) {
  connect();
  ASSERT_TRUE(fe().negotiate(kSplit, kProtoAll));
  auto a = proto::EventFd::create(true), b = proto::EventFd::create(true);
  ASSERT_TRUE(a && b);
  const int fds[2] = {a->fd(), b->fd()};
  const auto m = message(FrontendReq::set_vring_kick, proto::as_bytes(proto::U64{0}));
  send_part_and_close(fe(), std::span(m).first(4), fds);
  EXPECT_TRUE(log_.wait_for("peer closed the connection after 4 of 12 header bytes")) << log_.all();
}

TEST_F(HostileTest, DisconnectWithoutAByte) {
  connect();
  fe_.reset();
  EXPECT_TRUE(log_.wait_for("front-end disconnected")) << log_.all();
}

// ---- limits ----

TEST_F(HostileTest, MessageAboveTheSizeLimit) {
  connect();
  const proto::MsgHeader h{1, proto::kVersion, limits::kMaxMessagePayload + 1};
  ASSERT_TRUE(fe().conn().stream().send_msg(proto::as_bytes(h), {}));
  expect_connection_closed();
  EXPECT_TRUE(log_.wait_for("more than 4096")) << log_.all();
}

TEST_F(HostileTest, MoreRegionsThanSetMemTableHolds) {
  connect();
  ASSERT_TRUE(fe().negotiate(kSplit, kProtoAll));
  std::array<std::byte, proto::kMemoryTableHeaderSize + 9 * sizeof(proto::MemoryRegion)> p{};
  const std::uint32_t nine = 9;
  std::memcpy(p.data(), &nine, sizeof nine);
  EXPECT_FALSE(fe().request(FrontendReq::set_mem_table, p));
  EXPECT_TRUE(log_.wait_for("SET_MEM_TABLE has 9 regions, at most 8")) << log_.all();
}

TEST_F(HostileTest, AddMemRegBeyondTheSlotLimit) {
  connect();
  ASSERT_TRUE(fe().negotiate(kSplit, kProtoAll));
  auto slots = fe().get_u64(FrontendReq::get_max_mem_slots);
  ASSERT_TRUE(slots);
  ASSERT_EQ(*slots, limits::kMaxMemSlots);
  auto mem = proto::MemFd::create("vireo-test-guest-slots", 4096 * (*slots + 1));
  ASSERT_TRUE(mem);
  const int fd = mem->fd();
  for (std::uint64_t i = 0; i <= *slots; ++i) {
    const proto::SingleMemRegion r{0, {0x100000000ull + i * 0x10000, 4096, 0x7f0000000000ull + i * 0x10000, i * 4096}};
    auto ok = fe().request(FrontendReq::add_mem_reg, proto::as_bytes(r), std::span(&fd, 1));
    if (i < *slots) {
      ASSERT_TRUE(ok) << "slot " << i << ": " << ok.error().message();
    } else {
      EXPECT_FALSE(ok) << "slot " << i << " above the limit was accepted";
    }
  }
  EXPECT_TRUE(log_.wait_for("but all 509 memory slots are in use")) << log_.all();
  EXPECT_TRUE(connection_alive());
}

TEST_F(HostileTest, QueueSizeAboveTheDeviceMaximum) {
  connect();
  ASSERT_TRUE(fe().negotiate(kSplit, kProtoAll));
  EXPECT_FALSE(fe().request(FrontendReq::set_vring_num, proto::as_bytes(proto::VringState{0, 2048})));
  EXPECT_TRUE(log_.wait_for("front-end sent SET_VRING_NUM 2048 for queue 0; the device accepts 1..1024")) << log_.all();
  expect_connection_closed();
}


// ---- fds that are not what the message says ----

// A call fd that blocks: a pipe nobody reads fills after 8192 calls (64 KiB); a back-end that
// wrote to it would hang its worker, then the control thread quiescing that worker, then the
// daemon. vhost-user's kick/call/err fds are eventfds: anything else is refused up front.
TEST_F(HostileTest, CallFdIsAPipeNobodyReads) {
  start();
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  const bool accepted = fe().send_vring_fd(FrontendReq::set_vring_call, 0, p[1]);
  EXPECT_FALSE(accepted) << "a pipe was accepted as the call fd";
  EXPECT_TRUE(log_.wait_for("SET_VRING_CALL fd is not an eventfd")) << log_.all();
  for (int i = 0; accepted && i < 9000; ++i) {  // without the check: fill the pipe
    fe().add_writable(0, 8);
    fe().kick(0, true);
    if (!fe().wait_used(0, 200)) break;
  }
  ::close(p[0]);
  ::close(p[1]);
}

TEST_F(HostileTest, KickFdIsARegularFile) {
  start();
  EXPECT_FALSE(fe().send_vring_fd(FrontendReq::set_vring_kick, 0, fe().ram_fd()));
  EXPECT_TRUE(log_.wait_for("SET_VRING_KICK fd is not an eventfd")) << log_.all();
}

// 12 header bytes sent one at a time, each with 8 fds: 96 fds for one message.
TEST_F(HostileTest, MoreFdsThanOneMessageMayCarry) {
  connect();
  auto ev = proto::EventFd::create(true);
  ASSERT_TRUE(ev);
  const int fds[8] = {ev->fd(), ev->fd(), ev->fd(), ev->fd(), ev->fd(), ev->fd(), ev->fd(), ev->fd()};
  const auto m = message(FrontendReq::get_features, {});
  for (std::size_t i = 0; i < m.size(); ++i)
    if (!fe().conn().stream().send_msg(std::span(m).subspan(i, 1), fds)) break;  // closed: done
  expect_connection_closed();
  EXPECT_TRUE(log_.wait_for("message carries more than 32 fds")) << log_.all();
}

}  // namespace
}  // namespace vireo::test::hostile
