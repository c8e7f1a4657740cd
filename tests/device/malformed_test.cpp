// Every malformed-message class is rejected before any handler, with a logged reason, and the
// fds that came with it are closed.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "proto/sys/event_fd.hpp"
#include "rig.hpp"

namespace vireo::test {
namespace {

using proto::FrontendReq;

constexpr std::uint32_t kNeedReply = proto::kVersion | proto::kFlagNeedReply;

std::uint64_t ack_status(FrontendFake& fe) {
  auto m = fe.conn().recv();
  if (!m) return ~0ull;
  return m->payload_as<proto::U64>().u64;
}

// A pipe whose write end is sent to the back-end: the read end reports POLLHUP only once every
// copy of the write end is closed, which proves the back-end closed the fd it received.
struct Pipe {
  Pipe() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) == 0) {
      read_end = p[0];
      write_end = p[1];
    }
  }
  ~Pipe() {
    close_write();
    if (read_end >= 0) ::close(read_end);
  }
  void close_write() {
    if (write_end >= 0) ::close(write_end);
    write_end = -1;
  }
  bool all_writers_closed(int timeout_ms = 3000) const {
    pollfd p{read_end, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLHUP) != 0;
  }
  int read_end = -1;
  int write_end = -1;
};

class Malformed : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(rig.fe.negotiate(kBaseFeatures, kProtoAll)); }
  RngRig rig;
};

TEST_F(Malformed, ShortPayloadIsNacked) {
  LogCapture log;
  const std::uint32_t four = 8;
  ASSERT_TRUE(rig.fe.send_raw(8, kNeedReply, proto::as_bytes(four)));  // SET_VRING_NUM, 4 bytes
  EXPECT_EQ(ack_status(rig.fe), 1u);
  ASSERT_TRUE(rig.sync());
  EXPECT_NE(log.take().find("SET_VRING_NUM payload is 4 bytes, expected 8"), std::string::npos);
}

TEST_F(Malformed, LongerPayloadThanTheTableSaysIsNacked) {
  LogCapture log;
  std::array<std::byte, 16> p{};
  ASSERT_TRUE(rig.fe.send_raw(8, kNeedReply, p));
  EXPECT_EQ(ack_status(rig.fe), 1u);
  ASSERT_TRUE(rig.sync());
  EXPECT_NE(log.take().find("SET_VRING_NUM payload is 16 bytes, expected 8"), std::string::npos);
}

TEST_F(Malformed, OversizedSizeFieldClosesTheConnection) {
  LogCapture log;
  proto::MsgHeader h{1, proto::kVersion, 5000};  // size above kMaxPayload: framing is lost
  auto n = rig.fe.conn().stream().send_msg(proto::as_bytes(h), {});
  ASSERT_TRUE(n);
  EXPECT_TRUE(rig.fe.wait_closed());
  ASSERT_TRUE(rig.be.wait_finished());
  EXPECT_NE(log.take().find("5000-byte payload, more than 4096"), std::string::npos);
}

TEST_F(Malformed, WrongFdCountIsNackedAndTheFdsAreClosed) {
  LogCapture log;
  Pipe a, b;
  const int fds[2] = {a.write_end, b.write_end};
  const proto::VringState st{0, 8};
  ASSERT_TRUE(rig.fe.send_raw(8, kNeedReply, proto::as_bytes(st), fds));
  EXPECT_EQ(ack_status(rig.fe), 1u);
  a.close_write();
  b.close_write();
  EXPECT_TRUE(a.all_writers_closed()) << "the back-end kept the first fd";
  EXPECT_TRUE(b.all_writers_closed()) << "the back-end kept the second fd";
  ASSERT_TRUE(rig.sync());
  EXPECT_NE(log.take().find("SET_VRING_NUM carries 2 fds, expected 0 to 0"), std::string::npos);
}

TEST_F(Malformed, UnknownRequestIsNacked) {
  LogCapture log;
  ASSERT_TRUE(rig.fe.send_raw(99, kNeedReply, {}));
  EXPECT_EQ(ack_status(rig.fe), 1u);
  ASSERT_TRUE(rig.sync());
  EXPECT_NE(log.take().find("unknown front-end request 99"), std::string::npos);
}

TEST_F(Malformed, WrongVersionClosesTheConnectionAndClosesItsFds) {
  LogCapture log;
  Pipe a;
  const std::uint64_t v = 0;
  ASSERT_TRUE(rig.fe.send_raw(12, 0x2, proto::as_bytes(v), std::span(&a.write_end, 1)));  // version 2
  a.close_write();
  EXPECT_TRUE(rig.fe.wait_closed());
  ASSERT_TRUE(rig.be.wait_finished());
  EXPECT_TRUE(a.all_writers_closed());
  EXPECT_NE(log.take().find("version 2, expected 1"), std::string::npos);
}

TEST_F(Malformed, UnnegotiatedMessageOwingABodyClosesTheConnection) {
  LogCapture log;
  std::array<std::byte, 12 + 4> cfg{};
  ASSERT_TRUE(rig.fe.send_raw(24, kNeedReply, cfg));  // GET_CONFIG without CONFIG: body owed
  EXPECT_TRUE(rig.fe.wait_closed());
  ASSERT_TRUE(rig.be.wait_finished());
  EXPECT_NE(log.take().find("needs protocol feature CONFIG"), std::string::npos);
}

}  // namespace
}  // namespace vireo::test
