// Ring state machine conformance (vhost-user.rst "Ring states"), on both layouts: started by
// SET_VRING_KICK, stopped by GET_VRING_BASE (returning the position in the rst encoding),
// enabled/disabled by SET_VRING_ENABLE, all enabled when PROTOCOL_FEATURES is not negotiated.
#include "proto/sys/event_fd.hpp"
#include "rig.hpp"

namespace vireo::test {
namespace {

using proto::FrontendReq;

template <bool Packed>
struct Layout {
  static constexpr bool kPacked = Packed;
  static constexpr std::uint64_t kFeatures = kBaseFeatures | (Packed ? test::kPacked : 0);
};
using Layouts = ::testing::Types<Layout<false>, Layout<true>>;
struct Names {
  template <class T>
  static std::string GetName(int) { return T::kPacked ? "Packed" : "Split"; }
};

template <class L>
class RingState : public ::testing::Test {
 protected:
  // Serves n buffers, at most `batch` outstanding at a time.
  void serve(unsigned n, unsigned batch = 4) {
    while (n > 0) {
      const unsigned k = std::min(n, batch);
      for (unsigned i = 0; i < k; ++i) rig.fe.add_writable(0, 32);
      rig.fe.kick(0, true);
      for (unsigned i = 0; i < k; ++i) ASSERT_TRUE(rig.fe.wait_used(0)) << "buffer not used";
      n -= k;
    }
  }
  RngRig rig;
};
TYPED_TEST_SUITE(RingState, Layouts, Names);

TYPED_TEST(RingState, StartsOnSetVringKick) {
  auto& fe = this->rig.fe;
  ASSERT_TRUE(fe.negotiate(TypeParam::kFeatures, kProtoAll));
  ASSERT_TRUE(fe.set_mem_table());
  auto& q = fe.make_queue(0, 8);
  ASSERT_TRUE(fe.request(FrontendReq::set_vring_num, proto::as_bytes(proto::VringState{0, 8})));
  ASSERT_TRUE(fe.send_vring_addr(0));
  ASSERT_TRUE(fe.send_vring_fd(FrontendReq::set_vring_call, 0, q.call.fd()));
  ASSERT_TRUE(fe.enable(0, true));
  fe.add_writable(0, 32);
  fe.kick(0, true);  // the eventfd is not the back-end's yet: the ring is stopped
  EXPECT_FALSE(fe.wait_used(0, 200));
  ASSERT_TRUE(fe.send_vring_fd(FrontendReq::set_vring_kick, 0, q.kick.fd()));
  EXPECT_TRUE(fe.wait_used(0));
}

TYPED_TEST(RingState, GetVringBaseStopsAndReturnsThePosition) {
  this->rig.start(TypeParam::kFeatures, 8);
  this->serve(11);  // wraps an 8-entry ring once
  auto base = this->rig.fe.get_vring_base(0);
  ASSERT_TRUE(base);
  if (TypeParam::kPacked) {
    // rst: bits 0-14 last_avail_idx, 15 avail wrap, 16-30 last_used_idx, 31 used wrap.
    const proto::VringBase b = proto::decode_packed_base(*base);
    EXPECT_EQ(b, (proto::VringBase{3, false, 3, false}));
  } else {
    EXPECT_EQ(*base, 11u);  // next avail index, free-running
  }
  // Stopped: a kick is not served.
  this->rig.fe.add_writable(0, 32);
  this->rig.fe.kick(0, true);
  EXPECT_FALSE(this->rig.fe.wait_used(0, 200));
  // Restart from the returned base with a new kick fd: the pending buffer is served.
  ASSERT_TRUE(this->rig.fe.request(FrontendReq::set_vring_base, proto::as_bytes(proto::VringState{0, *base})));
  ASSERT_TRUE(this->rig.fe.send_vring_fd(FrontendReq::set_vring_kick, 0, this->rig.fe.queue(0).kick.fd()));
  EXPECT_TRUE(this->rig.fe.wait_used(0));
  auto again = this->rig.fe.get_vring_base(0);
  ASSERT_TRUE(again);
  if (TypeParam::kPacked) EXPECT_EQ(proto::decode_packed_base(*again), (proto::VringBase{4, false, 4, false}));
  else EXPECT_EQ(*again, 12u);
}

TYPED_TEST(RingState, GetVringBaseTwiceClosesWithReason) {
  this->rig.start(TypeParam::kFeatures);
  ASSERT_TRUE(this->rig.fe.get_vring_base(0));
  LogCapture log;
  EXPECT_FALSE(this->rig.fe.get_vring_base(0));
  ASSERT_TRUE(this->rig.be.wait_finished());
  EXPECT_NE(log.take().find("GET_VRING_BASE for queue 0, which is not started"), std::string::npos);
}

TYPED_TEST(RingState, DisabledRingHasNoSideEffectsUntilEnabled) {
  auto& fe = this->rig.fe;
  ASSERT_TRUE(fe.negotiate(TypeParam::kFeatures, kProtoAll));
  ASSERT_TRUE(fe.set_mem_table());
  ASSERT_TRUE(fe.setup_queue(0, 8, /*enable=*/false));
  fe.add_writable(0, 32);
  fe.kick(0, true);
  EXPECT_FALSE(fe.wait_used(0, 200));
  ASSERT_TRUE(fe.enable(0, true));
  EXPECT_TRUE(fe.wait_used(0));
  ASSERT_TRUE(fe.enable(0, false));
  fe.add_writable(0, 32);
  fe.kick(0, true);
  EXPECT_FALSE(fe.wait_used(0, 200));
}

TYPED_TEST(RingState, AllRingsEnabledWithoutProtocolFeatures) {
  auto& fe = this->rig.fe;
  const std::uint64_t f = TypeParam::kFeatures & ~vring::feature_bit(vring::kFProtocolFeatures);
  ASSERT_TRUE(fe.negotiate(f, 0));
  ASSERT_TRUE(fe.set_mem_table());
  ASSERT_TRUE(fe.setup_queue(0, 8));  // no SET_VRING_ENABLE
  fe.add_writable(0, 32);
  fe.kick(0, true);
  EXPECT_TRUE(fe.wait_used(0));
}

TYPED_TEST(RingState, SetVringEnableWithoutProtocolFeaturesIsRefused) {
  auto& fe = this->rig.fe;
  ASSERT_TRUE(fe.negotiate(TypeParam::kFeatures & ~vring::feature_bit(vring::kFProtocolFeatures), 0));
  LogCapture log;
  ASSERT_TRUE(fe.enable(0, true));  // no REPLY_ACK: the back-end closes the connection
  ASSERT_TRUE(this->rig.be.wait_finished());
  EXPECT_NE(log.take().find("SET_VRING_ENABLE without negotiating"), std::string::npos);
}

TEST(RingErrors, QueueIndexOutOfRangeClosesTheConnection) {
  RngRig rig;
  ASSERT_TRUE(rig.fe.negotiate(kBaseFeatures, kProtoAll));
  LogCapture log;
  EXPECT_FALSE(rig.fe.request(FrontendReq::set_vring_num, proto::as_bytes(proto::VringState{3, 8})));
  ASSERT_TRUE(rig.be.wait_finished());
  EXPECT_NE(log.take().find("front-end sent SET_VRING_NUM for queue 3 but the device has 1 queues; "
                            "closing connection"), std::string::npos);
}

TEST(RingErrors, SetVringAddrBeforeSetMemTable) {
  RngRig rig;
  ASSERT_TRUE(rig.fe.negotiate(kBaseFeatures, kProtoAll));
  rig.fe.make_queue(0, 8);
  ASSERT_TRUE(rig.fe.request(FrontendReq::set_vring_num, proto::as_bytes(proto::VringState{0, 8})));
  LogCapture log;
  EXPECT_FALSE(rig.fe.send_vring_addr(0));
  ASSERT_TRUE(rig.be.wait_finished());
  EXPECT_NE(log.take().find("SET_VRING_ADDR for queue 0 before SET_MEM_TABLE"), std::string::npos);
}

TEST(RingErrors, AddressesThatDoNotTranslate) {
  RngRig rig;
  ASSERT_TRUE(rig.fe.negotiate(kBaseFeatures, kProtoAll));
  ASSERT_TRUE(rig.fe.set_mem_table());
  ASSERT_TRUE(rig.fe.request(FrontendReq::set_vring_num, proto::as_bytes(proto::VringState{0, 8})));
  LogCapture log;
  proto::VringAddr a{0, 0, 0x1000, 0x2000, 0x3000, 0};
  EXPECT_FALSE(rig.fe.request(FrontendReq::set_vring_addr, proto::as_bytes(a)));
  ASSERT_TRUE(rig.be.wait_finished());
  EXPECT_NE(log.take().find("descriptor area [0x1000, +128) is not inside one shared memory region"),
            std::string::npos);
}

// Found by fuzz_session (corpus/session/crash-packed-misaligned-desc): the packed resume check
// read the descriptor flags of a misaligned ring before configure() refused it (UBSan, which the
// ASan+UBSan build runs this under: misaligned PackedDesc access in vring/packed_resume.hpp).
TEST(RingErrors, PackedRingWithMisalignedDescriptorAreaIsRefusedUnread) {
  RngRig rig;
  ASSERT_TRUE(rig.fe.negotiate(kBaseFeatures | kPacked, kProtoAll));
  ASSERT_TRUE(rig.fe.set_mem_table());
  const std::uint64_t desc = rig.fe.alloc(16 * 8 + 16, 4096);
  const std::uint64_t events = rig.fe.alloc(64, 64);
  for (std::size_t i = 0; i < 16 * 8 + 16; ++i) rig.fe.host(desc)[i] = std::byte{0xff};
  ASSERT_TRUE(rig.fe.request(FrontendReq::set_vring_num, proto::as_bytes(proto::VringState{0, 8})));
  proto::VringAddr a{0, 0, rig.fe.uva(desc) + 1, rig.fe.uva(events + 32), rig.fe.uva(events), 0};
  ASSERT_TRUE(rig.fe.request(FrontendReq::set_vring_addr, proto::as_bytes(a)));
  auto call = proto::EventFd::create(true);
  auto kick = proto::EventFd::create(true);
  ASSERT_TRUE(call && kick);
  ASSERT_TRUE(rig.fe.send_vring_fd(FrontendReq::set_vring_call, 0, call->fd()));
  LogCapture log;
  EXPECT_FALSE(rig.fe.send_vring_fd(FrontendReq::set_vring_kick, 0, kick->fd()));
  ASSERT_TRUE(rig.be.wait_finished());
  EXPECT_NE(log.take().find("queue 0 cannot start: ring area misaligned"), std::string::npos);
}

TEST(RingErrors, BadQueueSizeIsRefused) {
  RngRig rig;
  ASSERT_TRUE(rig.fe.negotiate(kBaseFeatures, kProtoAll));
  LogCapture log;
  EXPECT_FALSE(rig.fe.request(FrontendReq::set_vring_num, proto::as_bytes(proto::VringState{0, 6})));
  ASSERT_TRUE(rig.be.wait_finished());
  EXPECT_NE(log.take().find("SET_VRING_NUM 6 for queue 0"), std::string::npos);
}

}  // namespace
}  // namespace vireo::test
