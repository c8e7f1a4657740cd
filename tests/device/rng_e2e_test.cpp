// virtio-rng end to end through the framework: split and packed, EVENT_IDX on and off, one and
// several workers, kick-driven and busy-poll.
#include <algorithm>
#include <tuple>

#include "rig.hpp"

namespace vireo::test {
namespace {

struct Case {
  bool packed;
  bool event_idx;
  bool busy_poll;
};

class RngEndToEnd : public ::testing::TestWithParam<Case> {};

TEST_P(RngEndToEnd, FillsEveryBufferAcrossWrapArounds) {
  const Case c = GetParam();
  device::DaemonOptions opt;
  opt.busy_poll = c.busy_poll;
  RngRig rig(opt);
  rig.start(kBaseFeatures | (c.packed ? kPacked : 0) | (c.event_idx ? kEventIdx : 0), 16);
  unsigned served = 0;
  for (unsigned round = 0; round < 20; ++round) {  // 200 buffers through a 16-entry ring
    std::vector<std::uint64_t> bufs;
    for (unsigned i = 0; i < 10; ++i) bufs.push_back(rig.fe.add_writable(0, 256));
    rig.fe.kick(0);
    for (unsigned i = 0; i < 10; ++i) {
      auto u = rig.fe.wait_used(0);
      ASSERT_TRUE(u) << "round " << round << " buffer " << i;
      EXPECT_EQ(u->len, 256u);
      ++served;
    }
    // 256 random bytes are all zero with probability 2^-2048.
    for (std::uint64_t gpa : bufs) {
      const std::byte* p = rig.fe.host(gpa);
      EXPECT_TRUE(std::any_of(p, p + 256, [](std::byte b) { return b != std::byte{0}; }));
    }
  }
  EXPECT_EQ(served, 200u);
  EXPECT_EQ(rig.dev.bytes_served(), 200u * 256u);
}

INSTANTIATE_TEST_SUITE_P(Layouts, RngEndToEnd,
                         ::testing::Values(Case{false, false, false}, Case{false, true, false},
                                           Case{true, false, false}, Case{true, true, false},
                                           Case{false, true, true}, Case{true, true, true}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return std::string(i.param.packed ? "Packed" : "Split") +
                                  (i.param.event_idx ? "EventIdx" : "NoEventIdx") +
                                  (i.param.busy_poll ? "BusyPoll" : "Kicked");
                         });

TEST(RngEndToEnd, KicksAndCallsAreCounted) {
  RngRig rig;
  rig.start(kBaseFeatures, 8);
  rig.fe.add_writable(0, 16);
  rig.fe.kick(0, true);
  ASSERT_TRUE(rig.fe.wait_used(0));
  auto n = rig.fe.queue(0).call.drain();
  ASSERT_TRUE(n);
  EXPECT_GE(*n, 1u) << "the back-end signalled the call eventfd";
}

}  // namespace
}  // namespace vireo::test
