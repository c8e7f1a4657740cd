// Feature negotiation and memory-table messages through a real Session.
#include <unistd.h>

#include "proto/sys/memfd.hpp"
#include "rig.hpp"

namespace vireo::test {
namespace {

using proto::FrontendReq;

TEST(Negotiation, OffersTransportBitsAndProtocolFeatures) {
  RngRig rig;
  auto f = rig.fe.get_u64(FrontendReq::get_features);
  ASSERT_TRUE(f);
  for (unsigned bit : {vring::kFVersion1, vring::kFIndirectDesc, vring::kFEventIdx,
                       vring::kFRingPacked, vring::kFProtocolFeatures, vring::kFLogAll})
    EXPECT_TRUE(vring::has_feature(*f, bit)) << "bit " << bit;
  auto pf = rig.fe.get_u64(FrontendReq::get_protocol_features);
  ASSERT_TRUE(pf);
  for (unsigned bit : {proto::kProtoFMq, proto::kProtoFLogShmfd, proto::kProtoFReplyAck,
                       proto::kProtoFBackendReq, proto::kProtoFResetDevice, proto::kProtoFInflightShmfd,
                       proto::kProtoFConfigureMemSlots, proto::kProtoFStatus})
    EXPECT_TRUE(proto::has_proto(*pf, bit)) << "protocol bit " << bit;
  EXPECT_FALSE(proto::has_proto(*pf, proto::kProtoFConfig)) << "rng has no config space";
  ASSERT_TRUE(rig.fe.negotiate(kBaseFeatures, kProtoAll));
  EXPECT_EQ(rig.fe.get_u64(FrontendReq::get_queue_num), 1u);
  EXPECT_EQ(rig.fe.get_u64(FrontendReq::get_max_mem_slots), 509u);
}

// §2.7.9 / §2.8.23: VIRTIO_F_IN_ORDER only from a device that says it uses buffers in order
// (DeviceInfo::in_order; rng does, blk does not).
TEST(Negotiation, InOrderOnlyFromADeviceThatUsesBuffersInOrder) {
  RngRig rig;
  auto f = rig.fe.get_u64(FrontendReq::get_features);
  ASSERT_TRUE(f);
  EXPECT_TRUE(vring::has_feature(*f, vring::kFInOrder));
  class OutOfOrderRng final : public device::Backend {
   public:
    device::DeviceInfo info() const override {
      device::DeviceInfo i = rng_.info();
      i.in_order = false;
      return i;
    }
    void process(device::VirtQueue& q) override { rng_.process(q); }

   private:
    device::rng::RngBackend rng_;
  } dev;
  BackendThread be(dev);
  FrontendFake fe(be.take_frontend());
  auto g = fe.get_u64(FrontendReq::get_features);
  ASSERT_TRUE(g);
  EXPECT_FALSE(vring::has_feature(*g, vring::kFInOrder));
  EXPECT_TRUE(vring::has_feature(*g, vring::kFRingPacked));
}

TEST(Negotiation, UnofferedFeatureIsNackedWithReason) {
  RngRig rig;
  ASSERT_TRUE(rig.fe.negotiate(kBaseFeatures, kProtoAll));
  LogCapture log;
  auto r = rig.fe.request(FrontendReq::set_features, proto::as_bytes(proto::U64{kBaseFeatures | 1}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, proto::ProtoError::Kind::rejected);
  ASSERT_TRUE(rig.sync());
  EXPECT_NE(log.take().find("did not offer (0x1)"), std::string::npos);
}

TEST(Negotiation, StatusRoundTrips) {
  RngRig rig;
  ASSERT_TRUE(rig.fe.negotiate(kBaseFeatures, kProtoAll));
  ASSERT_TRUE(rig.fe.request(FrontendReq::set_status, proto::as_bytes(proto::U64{0x0f})));
  EXPECT_EQ(rig.fe.get_u64(FrontendReq::get_status), 0x0fu);
}

std::vector<std::byte> single_region(const proto::MemoryRegion& r) {
  proto::SingleMemRegion m{0, r};
  auto b = proto::as_bytes(m);
  return {b.begin(), b.end()};
}

TEST(MemorySlots, AddAndRemoveRegionsThenRunTheRing) {
  RngRig rig;
  ASSERT_TRUE(rig.fe.negotiate(kBaseFeatures, kProtoAll));
  const int fd = rig.fe.ram_fd();
  proto::MemoryRegion whole = rig.fe.ram_region();
  // Two halves added one at a time, the first removed and added back.
  proto::MemoryRegion lo = whole, hi = whole;
  lo.memory_size = hi.memory_size = whole.memory_size / 2;
  hi.guest_phys_addr += lo.memory_size;
  hi.userspace_addr += lo.memory_size;
  hi.mmap_offset = lo.memory_size;
  ASSERT_TRUE(rig.fe.request(FrontendReq::add_mem_reg, single_region(lo), std::span(&fd, 1)));
  ASSERT_TRUE(rig.fe.request(FrontendReq::add_mem_reg, single_region(hi), std::span(&fd, 1)));
  ASSERT_TRUE(rig.fe.request(FrontendReq::rem_mem_reg, single_region(lo)));
  ASSERT_TRUE(rig.fe.request(FrontendReq::add_mem_reg, single_region(lo), std::span(&fd, 1)));
  ASSERT_TRUE(rig.fe.setup_queue(0, 8));
  rig.fe.add_writable(0, 64);
  rig.fe.kick(0);
  auto u = rig.fe.wait_used(0);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->len, 64u);
}

TEST(MemorySlots, OverlapZeroSizeAndBadFdAreNacked) {
  RngRig rig;
  ASSERT_TRUE(rig.fe.negotiate(kBaseFeatures, kProtoAll));
  const int fd = rig.fe.ram_fd();
  proto::MemoryRegion whole = rig.fe.ram_region();
  ASSERT_TRUE(rig.fe.request(FrontendReq::add_mem_reg, single_region(whole), std::span(&fd, 1)));
  LogCapture log;
  proto::MemoryRegion shifted = whole;
  shifted.guest_phys_addr += 4096;
  shifted.userspace_addr += 1ull << 40;
  auto overlap = rig.fe.request(FrontendReq::add_mem_reg, single_region(shifted), std::span(&fd, 1));
  EXPECT_FALSE(overlap);
  proto::MemoryRegion zero = whole;
  zero.guest_phys_addr += 1ull << 32;
  zero.memory_size = 0;
  EXPECT_FALSE(rig.fe.request(FrontendReq::add_mem_reg, single_region(zero), std::span(&fd, 1)));
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  proto::MemoryRegion other = whole;
  other.guest_phys_addr += 1ull << 32;
  other.userspace_addr += 1ull << 40;
  EXPECT_FALSE(rig.fe.request(FrontendReq::add_mem_reg, single_region(other), std::span(&p[0], 1)));
  ::close(p[0]);
  ::close(p[1]);
  proto::MemoryRegion absent = other;
  EXPECT_FALSE(rig.fe.request(FrontendReq::rem_mem_reg, single_region(absent)));
  ASSERT_TRUE(rig.sync());
  const std::string text = log.take();
  EXPECT_NE(text.find("overlaps"), std::string::npos) << text;
  EXPECT_NE(text.find("memory_size 0"), std::string::npos) << text;
  EXPECT_NE(text.find("cannot map the fd"), std::string::npos) << text;
  EXPECT_NE(text.find("is not in the memory table"), std::string::npos) << text;
}

}  // namespace
}  // namespace vireo::test
