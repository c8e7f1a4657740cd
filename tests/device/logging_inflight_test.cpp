// Dirty logging under VHOST_F_LOG_ALL, and the inflight regions of GET/SET_INFLIGHT_FD.
#include <algorithm>

#include "device/inflight.hpp"
#include "proto/sys/mapping.hpp"
#include "proto/sys/memfd.hpp"
#include "rig.hpp"
#include "vring/dirty_log.hpp"

namespace vireo::test {
namespace {

using proto::FrontendReq;

class DirtyLogging : public ::testing::TestWithParam<bool> {};

TEST_P(DirtyLogging, WrittenBuffersAndUsedRingAreLogged) {
  const bool packed = GetParam();
  RngRig rig;
  const std::uint64_t f = kBaseFeatures | (packed ? kPacked : 0) | vring::feature_bit(vring::kFLogAll);
  ASSERT_TRUE(rig.fe.negotiate(f, kProtoAll));
  ASSERT_TRUE(rig.fe.set_mem_table());
  const std::size_t log_bytes = 4096;  // covers 128 MiB of guest-physical space
  auto log_fd = proto::MemFd::create("log", log_bytes);
  ASSERT_TRUE(log_fd);
  auto log_map = proto::Mapping::map(log_fd->fd(), log_bytes, 0, true);
  ASSERT_TRUE(log_map);
  const int fd = log_fd->fd();
  ASSERT_TRUE(rig.fe.request(FrontendReq::set_log_base, proto::as_bytes(proto::LogDesc{log_bytes, 0}),
                             std::span(&fd, 1)));
  ASSERT_TRUE(rig.fe.setup_queue(0, 8));
  const std::uint64_t unused = rig.fe.alloc(4096, 4096);
  const std::uint64_t buf = rig.fe.add_writable(0, 3 * 4096);
  rig.fe.kick(0, true);
  ASSERT_TRUE(rig.fe.wait_used(0));
  vring::DirtyLog log(log_map->data(), log_bytes);
  EXPECT_TRUE(log.test(buf));
  EXPECT_TRUE(log.test(buf + 4096));
  EXPECT_TRUE(log.test(buf + 3 * 4096 - 1));
  const auto& q = rig.fe.queue(0);
  EXPECT_TRUE(log.test(packed ? q.desc_gpa : q.used_gpa)) << "used ring / used descriptors logged";
  EXPECT_FALSE(log.test(unused));
}

INSTANTIATE_TEST_SUITE_P(Layouts, DirtyLogging, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Packed" : "Split"; });

TEST(DirtyLogging, NothingIsLoggedWithoutLogAll) {
  RngRig rig;
  ASSERT_TRUE(rig.fe.negotiate(kBaseFeatures, kProtoAll));
  ASSERT_TRUE(rig.fe.set_mem_table());
  auto log_fd = proto::MemFd::create("log", 4096);
  ASSERT_TRUE(log_fd);
  auto log_map = proto::Mapping::map(log_fd->fd(), 4096, 0, true);
  ASSERT_TRUE(log_map);
  const int fd = log_fd->fd();
  ASSERT_TRUE(rig.fe.request(FrontendReq::set_log_base, proto::as_bytes(proto::LogDesc{4096, 0}),
                             std::span(&fd, 1)));
  ASSERT_TRUE(rig.fe.setup_queue(0, 8));
  const std::uint64_t buf = rig.fe.add_writable(0, 64);
  rig.fe.kick(0, true);
  ASSERT_TRUE(rig.fe.wait_used(0));
  EXPECT_FALSE(vring::DirtyLog(log_map->data(), 4096).test(buf));
}

// Found by fuzz_session (corpus/session/crash-log-past-fd-end): a log mapped past the end of its
// memfd took the whole back-end down with SIGBUS at the first dirty bit the worker set there.
TEST(DirtyLogging, SetLogBaseLargerThanItsFdIsRefused) {
  RngRig rig;
  ASSERT_TRUE(rig.fe.negotiate(kBaseFeatures | vring::feature_bit(vring::kFLogAll), kProtoAll));
  ASSERT_TRUE(rig.fe.set_mem_table());
  auto log_fd = proto::MemFd::create("log", 4096);
  ASSERT_TRUE(log_fd);
  const int fd = log_fd->fd();
  LogCapture log;
  EXPECT_FALSE(rig.fe.request(FrontendReq::set_log_base, proto::as_bytes(proto::LogDesc{8192, 0}),
                              std::span(&fd, 1)));
  ASSERT_TRUE(rig.be.wait_finished());
  EXPECT_NE(log.take().find("SET_LOG_BASE with a log of 8192 bytes at offset 0 that its fd does not hold"),
            std::string::npos);
}

class Inflight : public ::testing::TestWithParam<bool> {};

TEST_P(Inflight, GetInflightFdHandsOutAnInitialisedRegionThatSetInflightFdTakesBack) {
  const bool packed = GetParam();
  RngRig rig;
  ASSERT_TRUE(rig.fe.negotiate(kBaseFeatures | (packed ? kPacked : 0), kProtoAll));
  proto::InflightDesc want{0, 0, 1, 64, {0, 0}};
  auto r = rig.fe.request(FrontendReq::get_inflight_fd, proto::as_bytes(want));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->fds.size(), 1u);
  const auto d = r->payload_as<proto::InflightDesc>();
  const auto layout = packed ? device::InflightLayout::packed : device::InflightLayout::split;
  // rst "Inflight I/O tracking" / DPDK: split 16 * 64 + 16 -> 1088; packed 32 * 64 + 29 -> 2112.
  EXPECT_EQ(d.mmap_size, packed ? 2112u : 1088u);
  EXPECT_EQ(d.mmap_size, device::inflight_queue_bytes(layout, 64));
  EXPECT_EQ(d.num_queues, 1u);
  EXPECT_EQ(d.queue_size, 64u);
  auto map = proto::Mapping::map(r->fds[0].get(), d.mmap_size, d.mmap_offset, true);
  ASSERT_TRUE(map);
  device::InflightQueue q(layout, map->data(), 64);
  if (packed) {
    EXPECT_EQ(q.packed()->version, 1u);
    EXPECT_EQ(q.packed()->desc_num, 64u);
    EXPECT_EQ(q.packed()->used_wrap_counter, 1u);
    EXPECT_EQ(q.packed_desc()[5].next, 6u);
  } else {
    EXPECT_EQ(q.split()->version, 1u);
    EXPECT_EQ(q.split()->desc_num, 64u);
  }
  EXPECT_TRUE(q.pending().empty());
  // A reconnecting front-end hands the region back.
  const int fd = r->fds[0].get();
  EXPECT_TRUE(rig.fe.request(FrontendReq::set_inflight_fd, proto::as_bytes(d), std::span(&fd, 1)));
  // A region too small for what it claims is refused.
  proto::InflightDesc lie = d;
  lie.queue_size = 1024;
  EXPECT_FALSE(rig.fe.request(FrontendReq::set_inflight_fd, proto::as_bytes(lie), std::span(&fd, 1)));
}

// Found by fuzz_session (tests/fuzz/corpus/session/crash-inflight-misaligned-offset): an offset of
// 4 made every queue region, and its u64 counters, misaligned (UBSan: misaligned reference).
TEST_P(Inflight, SetInflightFdWithMisalignedMmapOffsetIsRefused) {
  const bool packed = GetParam();
  RngRig rig;
  ASSERT_TRUE(rig.fe.negotiate(kBaseFeatures | (packed ? kPacked : 0), kProtoAll));
  const auto layout = packed ? device::InflightLayout::packed : device::InflightLayout::split;
  const std::uint64_t bytes = device::inflight_queue_bytes(layout, 64);
  auto mem = proto::MemFd::create("inflight", 8192);  // room for the region at any offset below
  ASSERT_TRUE(mem);
  const int fd = mem->fd();
  proto::InflightDesc d{bytes, 64, 1, 64, {0, 0}};  // aligned: taken
  EXPECT_TRUE(rig.fe.request(FrontendReq::set_inflight_fd, proto::as_bytes(d), std::span(&fd, 1)));
  d.mmap_offset = 4;  // refused, and the connection closes (a broken state machine)
  EXPECT_FALSE(rig.fe.request(FrontendReq::set_inflight_fd, proto::as_bytes(d), std::span(&fd, 1)));
}

INSTANTIATE_TEST_SUITE_P(Layouts, Inflight, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "Packed" : "Split"; });

TEST(InflightQueue, PendingIsInCounterOrder) {
  std::vector<std::byte> mem(device::inflight_queue_bytes(device::InflightLayout::split, 8));
  device::InflightQueue q(device::InflightLayout::split, mem.data(), 8);
  q.split_desc()[5] = {1, {}, 0, 7};
  q.split_desc()[2] = {1, {}, 0, 9};
  q.split_desc()[3] = {0, {}, 0, 1};
  q.split_desc()[0] = {1, {}, 0, 3};
  EXPECT_EQ(q.pending(), (std::vector<std::uint16_t>{0, 5, 2}));
}

}  // namespace
}  // namespace vireo::test

namespace vireo::test {
namespace {

// Through the daemon: after buffers were popped and completed, the region holds their pop
// counters and the used position, and nothing is left in flight.
TEST_P(Inflight, RegionRecordsPopsOfTheRunningRing) {
  const bool packed = GetParam();
  RngRig rig;
  ASSERT_TRUE(rig.fe.negotiate(kBaseFeatures | (packed ? kPacked : 0), kProtoAll));
  proto::InflightDesc want{0, 0, 1, 8, {0, 0}};
  auto r = rig.fe.request(FrontendReq::get_inflight_fd, proto::as_bytes(want));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->fds.size(), 1u);
  const auto d = r->payload_as<proto::InflightDesc>();
  auto map = proto::Mapping::map(r->fds[0].get(), d.mmap_size, d.mmap_offset, true);
  ASSERT_TRUE(map);
  ASSERT_TRUE(rig.fe.set_mem_table());
  ASSERT_TRUE(rig.fe.setup_queue(0, 8));
  for (int i = 0; i < 3; ++i) rig.fe.add_writable(0, 32);
  rig.fe.kick(0, true);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(rig.fe.wait_used(0));
  ASSERT_TRUE(rig.sync());
  device::InflightQueue q(packed ? device::InflightLayout::packed : device::InflightLayout::split,
                          map->data(), 8);
  EXPECT_TRUE(q.pending().empty());
  if (packed) {
    EXPECT_EQ(q.packed()->used_idx, 3u);
    EXPECT_EQ(q.packed()->old_used_idx, 3u) << "the last batch was committed";
    EXPECT_EQ(q.packed()->free_head, q.packed()->old_free_head);
    std::uint64_t last = 0;
    for (int i = 0; i < 8; ++i) last = std::max(last, q.packed_desc()[i].counter);
    EXPECT_EQ(last, 3u) << "three pops recorded, the last with counter 3";
  } else {
    EXPECT_EQ(q.split()->used_idx, 3u);
    std::uint64_t counters = 0;
    for (int i = 0; i < 8; ++i) counters += q.split_desc()[i].counter;
    EXPECT_EQ(counters, 1u + 2u + 3u) << "three pops recorded with counters 1, 2, 3";
  }
}

}  // namespace
}  // namespace vireo::test
