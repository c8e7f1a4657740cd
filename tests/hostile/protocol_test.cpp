// Hostile front-end: messages out of order, bad memory regions, config-space abuse. Each case
// asserts the logged reason and what broke (a nacked request, or the connection); TearDown then
// proves the daemon serves the next front-end and leaked nothing.
#include <sys/eventfd.h>

#include "hostile_rig.hpp"
#include "proto/messages.hpp"
#include "proto/sys/event_fd.hpp"

namespace vireo::test::hostile {
namespace {

using proto::FrontendReq;

// ---- messages out of order ----

TEST_F(HostileTest, SetVringAddrBeforeSetMemTable) {
  connect();
  ASSERT_TRUE(fe().negotiate(kSplit, kProtoAll));
  fe().make_queue(0, kQueueSize);
  ASSERT_TRUE(fe().request(FrontendReq::set_vring_num, proto::as_bytes(proto::VringState{0, kQueueSize})));
  EXPECT_FALSE(fe().send_vring_addr(0));
  EXPECT_TRUE(log_.wait_for("front-end sent SET_VRING_ADDR for queue 0 before SET_MEM_TABLE"));
  expect_connection_closed();
}

TEST_F(HostileTest, SetVringKickBeforeTheRingIsConfigured) {
  connect();
  ASSERT_TRUE(fe().negotiate(kSplit, kProtoAll));
  ASSERT_TRUE(fe().set_mem_table());
  auto& q = fe().make_queue(0, kQueueSize);
  EXPECT_FALSE(fe().send_vring_fd(FrontendReq::set_vring_kick, 0, q.kick.fd()));
  EXPECT_TRUE(log_.wait_for("front-end sent SET_VRING_KICK for queue 0 before SET_VRING_NUM"));
  expect_connection_closed();
}

TEST_F(HostileTest, SetVringKickOnARingThatDoesNotExist) {
  connect();
  ASSERT_TRUE(fe().negotiate(kSplit, kProtoAll));
  ASSERT_TRUE(fe().set_mem_table());
  auto kick = proto::EventFd::create(true);
  ASSERT_TRUE(kick);
  EXPECT_FALSE(fe().send_vring_fd(FrontendReq::set_vring_kick, 5, kick->fd()));
  EXPECT_TRUE(log_.wait_for("front-end sent SET_VRING_KICK for queue 5 but the device has 1 queues"));
  expect_connection_closed();
}

TEST_F(HostileTest, GetVringBaseTwice) {
  start();
  ASSERT_TRUE(fe().get_vring_base(0));
  EXPECT_FALSE(fe().get_vring_base(0));
  EXPECT_TRUE(log_.wait_for("front-end sent GET_VRING_BASE for queue 0, which is not started"));
  expect_connection_closed();
}

TEST_F(HostileTest, SetVringNumOnAStartedRing) {
  start();
  EXPECT_FALSE(fe().request(FrontendReq::set_vring_num, proto::as_bytes(proto::VringState{0, 4})));
  EXPECT_TRUE(log_.wait_for("front-end sent SET_VRING_NUM for started queue 0"));
  expect_connection_closed();
}

// ---- memory regions ----

Expected<proto::Message, proto::ProtoError> send_table(FrontendFake& fe, std::span<const proto::MemoryRegion> regions,
                                                       std::span<const int> fds) {
  proto::MemoryTable t{};
  t.nregions = static_cast<std::uint32_t>(regions.size());
  for (std::size_t i = 0; i < regions.size(); ++i) t.regions[i] = regions[i];
  auto bytes = std::span(reinterpret_cast<const std::byte*>(&t),
                         proto::kMemoryTableHeaderSize + regions.size() * sizeof(proto::MemoryRegion));
  return fe.request(FrontendReq::set_mem_table, bytes, fds);
}

class HostileMemory : public HostileTest {
 protected:
  void SetUp() override {
    HostileTest::SetUp();
    connect();
    ASSERT_TRUE(fe().negotiate(kSplit, kProtoAll));
  }
  // The request was refused (REPLY_ACK failure), the reason logged, the connection kept; a valid
  // table is accepted afterwards.
  void expect_refused(const Expected<proto::Message, proto::ProtoError>& r, const std::string& why) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, proto::ProtoError::Kind::rejected) << r.error().message();
    EXPECT_TRUE(log_.wait_for(why)) << log_.all();
    ASSERT_TRUE(connection_alive());
    ASSERT_TRUE(fe().set_mem_table());
  }
};

TEST_F(HostileMemory, RegionsOverlapInGuestPhysicalSpace) {
  proto::MemoryRegion a = fe().ram_region(), b = fe().ram_region();
  a.memory_size = b.memory_size = kRam / 2;
  b.userspace_addr += kRam / 2;
  b.mmap_offset += kRam / 2;
  b.guest_phys_addr += kRam / 4;  // overlaps a's second half
  const proto::MemoryRegion r[2] = {a, b};
  const int fds[2] = {fe().ram_fd(), fe().ram_fd()};
  expect_refused(send_table(fe(), r, fds), "overlaps");
  EXPECT_TRUE(log_.wait_for("in guest-physical space"));
}

TEST_F(HostileMemory, RegionsOverlapInFrontEndVirtualSpace) {
  proto::MemoryRegion a = fe().ram_region(), b = fe().ram_region();
  a.memory_size = b.memory_size = kRam / 2;
  b.guest_phys_addr += kRam;
  b.mmap_offset += kRam / 2;
  const proto::MemoryRegion r[2] = {a, b};
  const int fds[2] = {fe().ram_fd(), fe().ram_fd()};
  expect_refused(send_table(fe(), r, fds), "in front-end virtual space");
}

TEST_F(HostileMemory, ZeroSizedRegion) {
  proto::MemoryRegion a = fe().ram_region();
  a.memory_size = 0;
  const int fd = fe().ram_fd();
  expect_refused(send_table(fe(), std::span(&a, 1), std::span(&fd, 1)), "region has memory_size 0");
}

TEST_F(HostileMemory, RegionFdIsAnEventfd) {
  auto ev = proto::EventFd::create(true);
  ASSERT_TRUE(ev);
  const proto::MemoryRegion a = fe().ram_region();
  const int fd = ev->fd();
  expect_refused(send_table(fe(), std::span(&a, 1), std::span(&fd, 1)), "cannot map the fd");
}

TEST_F(HostileMemory, RegionLargerThanItsMemfd) {
  proto::MemoryRegion a = fe().ram_region();
  a.memory_size = 2 * kRam;
  const int fd = fe().ram_fd();
  expect_refused(send_table(fe(), std::span(&a, 1), std::span(&fd, 1)), "less than mmap_offset + memory_size");
}

TEST_F(HostileMemory, RegionOffsetPastTheEndOfItsMemfd) {
  proto::MemoryRegion a = fe().ram_region();
  a.mmap_offset = kRam + 2 * kGuard;  // the file's size: not one byte is backed
  const int fd = fe().ram_fd();
  expect_refused(send_table(fe(), std::span(&a, 1), std::span(&fd, 1)), "less than mmap_offset + memory_size");
}

TEST_F(HostileMemory, RegionWrappingTheAddressSpace) {
  proto::MemoryRegion a = fe().ram_region();
  a.guest_phys_addr = ~std::uint64_t{0} - 0xfff;
  const int fd = fe().ram_fd();
  expect_refused(send_table(fe(), std::span(&a, 1), std::span(&fd, 1)), "wraps the 64-bit address space");
}

TEST_F(HostileMemory, AddMemRegOverlappingAnExistingRegion) {
  ASSERT_TRUE(fe().set_mem_table());
  const proto::SingleMemRegion r{0, fe().ram_region()};
  const int fd = fe().ram_fd();
  expect_refused(fe().request(FrontendReq::add_mem_reg, proto::as_bytes(r), std::span(&fd, 1)), "overlaps");
}

TEST_F(HostileMemory, RemMemRegOfARegionThatIsNotThere) {
  ASSERT_TRUE(fe().set_mem_table());
  proto::SingleMemRegion r{0, fe().ram_region()};
  r.region.guest_phys_addr += 0x1000;
  expect_refused(fe().request(FrontendReq::rem_mem_reg, proto::as_bytes(r)), "is not in the memory table");
}

// ---- config space ----

TEST_F(HostileTest, ConfigReadPastTheEnd) {
  connect();
  ASSERT_TRUE(fe().negotiate(kSplit, kProtoAll | proto::proto_bit(proto::kProtoFConfig)));
  const proto::ConfigHeader h{4, 8, 0};  // bytes [4, 12) of an 8-byte config space
  std::array<std::byte, sizeof h + 8> bad{};
  std::memcpy(bad.data(), &h, sizeof h);
  auto r = fe().request(FrontendReq::get_config, bad);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->payload_as<proto::ConfigHeader>().size, 0u) << "failure is a reply with size 0";
  EXPECT_TRUE(log_.wait_for("front-end sent GET_CONFIG for bytes [4, +8) but the hostile-rng config space has 8 bytes"));
  const proto::ConfigHeader ok{0, kConfigSize, 0};
  std::array<std::byte, sizeof ok + kConfigSize> p{};
  std::memcpy(p.data(), &ok, sizeof ok);
  auto good = fe().request(FrontendReq::get_config, p);
  ASSERT_TRUE(good) << "a valid read after the bad one failed";
  EXPECT_EQ(good->payload_as<proto::ConfigHeader>().size, kConfigSize);
}

TEST_F(HostileTest, ConfigWritePastTheEnd) {
  connect();
  ASSERT_TRUE(fe().negotiate(kSplit, kProtoAll | proto::proto_bit(proto::kProtoFConfig)));
  const proto::ConfigHeader h{6, 4, 0};
  std::array<std::byte, sizeof h + 4> p{};
  std::memcpy(p.data(), &h, sizeof h);
  EXPECT_FALSE(fe().request(FrontendReq::set_config, p));
  EXPECT_TRUE(log_.wait_for("front-end sent SET_CONFIG for bytes [6, +4) but the config space has 8 bytes"));
  EXPECT_TRUE(connection_alive());
}

}  // namespace
}  // namespace vireo::test::hostile
