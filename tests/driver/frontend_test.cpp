// Frontend negotiation without a real peer: feature choice, the message sequence QEMU sends, and
// where rings resume after a reconnect (SET_VRING_BASE, split and packed rst encodings), against
// a scripted back-end on a Unix socket.
#include "driver/frontend.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "peer_process.hpp"
#include "proto/sys/memfd.hpp"
#include "proto/sys/unix_socket.hpp"
#include "vring/barriers.hpp"

namespace vireo::driver {
namespace {

using proto::FrontendReq;
using vring::feature_bit;

constexpr std::uint64_t kOffered = feature_bit(vring::kFVersion1) | feature_bit(vring::kFEventIdx) |
                                   feature_bit(vring::kFRingPacked) | feature_bit(vring::kFProtocolFeatures) |
                                   feature_bit(5);

TEST(ChooseFeatures, IntersectsTheOfferWithWhatWasAskedFor) {
  FrontendOptions o{.features = feature_bit(5) | feature_bit(15), .layout = Layout::split, .event_idx = true};
  auto f = choose_features(o, kOffered);
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, feature_bit(vring::kFVersion1) | feature_bit(vring::kFEventIdx) |
                    feature_bit(vring::kFProtocolFeatures) | feature_bit(5));
}

TEST(ChooseFeatures, PackedOrEventIdxNotOfferedIsAnErrorNamingTheFix) {
  const std::uint64_t split_only = feature_bit(vring::kFVersion1);
  auto p = choose_features({.layout = Layout::packed, .event_idx = false}, split_only);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().kind, Error::Kind::unsupported);
  EXPECT_NE(p.error().reason.find("--layout split"), std::string::npos);
  auto e = choose_features({.event_idx = true}, split_only);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().reason.find("--event-idx off"), std::string::npos);
  EXPECT_FALSE(choose_features({.event_idx = false}, 0));  // no VERSION_1: legacy device
  EXPECT_FALSE(choose_features({.required = feature_bit(22), .event_idx = false}, split_only));
}

// A back-end that answers the front-end's requests and records them; hangup() drops the
// connection as a crashed back-end would.
struct FakeBackend {
  struct Seen {
    FrontendReq req;
    std::uint64_t u64;  // first 8 payload bytes
    std::size_t nfds;
    ino_t ino = 0;  // SET_INFLIGHT_FD: the region's inode
  };
  std::vector<Seen> seen;
  std::uint64_t protocol = proto::proto_bit(proto::kProtoFReplyAck) | proto::proto_bit(proto::kProtoFMq);
  std::atomic<int> fd{-1};
  std::thread thread;
  std::optional<proto::MemFd> region;  // handed out by GET_INFLIGHT_FD

  void start(proto::UnixListener& l) {
    thread = std::thread([this, &l] { serve(l); });
  }
  void join() {
    if (thread.joinable()) thread.join();
  }
  void hangup() {
    while (fd.load() < 0) std::this_thread::yield();
    ::shutdown(fd.load(), SHUT_RDWR);
    join();
  }

  void serve(proto::UnixListener& l) {
    auto s = l.accept();
    if (!s) return;
    proto::Connection c(std::move(*s));
    fd = c.fd();
    c.set_protocol_features(protocol);
    c.set_timeout_ms(-1);
    for (;;) {
      auto m = c.recv();
      if (!m) return;
      const auto req = static_cast<FrontendReq>(m->hdr.request);
      seen.push_back({req, m->payload_as<std::uint64_t>(), m->fds.size()});
      if (req == FrontendReq::set_inflight_fd && m->fds.size() == 1) {
        struct stat st {};
        if (::fstat(m->fds[0].get(), &st) == 0) seen.back().ino = st.st_ino;
      }
      if (req == FrontendReq::get_inflight_fd) {
        auto want = m->payload_as<proto::InflightDesc>();
        auto mfd = proto::MemFd::create("fake-inflight", 4096);
        if (!mfd) return;
        region = std::move(*mfd);
        const proto::InflightDesc d{4096, 0, want.num_queues, want.queue_size, {0, 0}};
        const int rfd = region->fd();
        (void)c.send_reply(m->hdr, proto::as_bytes(d), std::span<const int>(&rfd, 1));
        continue;
      }
      std::uint64_t answer = 0;
      bool body = true;
      switch (req) {
        case FrontendReq::get_features: answer = kOffered; break;
        case FrontendReq::get_protocol_features: answer = protocol; break;
        case FrontendReq::get_queue_num: answer = 4; break;
        default: body = false;
      }
      if (body) (void)c.send_reply(m->hdr, proto::as_bytes(proto::U64{answer}));
      else if (m->need_reply()) (void)c.send_ack(m->hdr, 0);
    }
  }
  // SET_VRING_BASE num of every queue, in order.
  std::vector<std::uint32_t> bases() const {
    std::vector<std::uint32_t> out;
    for (const Seen& s : seen)
      if (s.req == FrontendReq::set_vring_base) out.push_back(static_cast<std::uint32_t>(s.u64 >> 32));
    return out;
  }
};

class FrontendFake : public ::testing::Test {
 protected:
  void SetUp() override {
    sock_ = dir_.path() + "/fe.sock";
    auto l = proto::UnixListener::bind(sock_);
    ASSERT_TRUE(l);
    listener_.emplace(std::move(*l));
    auto m = GuestMemory::create({.size = 1 << 20});
    ASSERT_TRUE(m);
    mem_ = std::move(*m);
  }
  std::unique_ptr<Frontend> open(FakeBackend& fake, Layout layout) {
    fake.start(*listener_);
    auto fe = Frontend::open({.socket_path = sock_, .layout = layout, .num_queues = 2, .queue_size = 8,
                              .connect_timeout_ms = 2000},
                             mem_);
    EXPECT_TRUE(fe) << fe.error().reason;
    return fe ? std::move(*fe) : nullptr;
  }

  vireo::testing::TempDir dir_;
  std::string sock_;
  std::optional<proto::UnixListener> listener_;
  GuestMemory mem_;
};

TEST_F(FrontendFake, NegotiatesInQemuOrderWithCallBeforeKick) {
  FakeBackend fake;
  auto fe = open(fake, Layout::split);
  ASSERT_TRUE(fe);
  EXPECT_EQ(fe->max_queues(), 4);
  fe.reset();  // closes the socket: the fake sees EOF
  fake.join();
  using R = FrontendReq;
  std::vector<R> want = {R::get_features, R::get_protocol_features, R::set_protocol_features, R::get_queue_num,
                         R::set_owner, R::set_features, R::set_mem_table};
  for (int q = 0; q < 2; ++q)
    for (R r : {R::set_vring_num, R::set_vring_base, R::set_vring_addr, R::set_vring_call, R::set_vring_kick,
                R::set_vring_enable})
      want.push_back(r);
  ASSERT_EQ(fake.seen.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(fake.seen[i].req, want[i]) << "message " << i << " is " << proto::to_string(fake.seen[i].req);
    const bool fd = want[i] == R::set_mem_table || want[i] == R::set_vring_kick || want[i] == R::set_vring_call;
    EXPECT_EQ(fake.seen[i].nfds, fd ? 1u : 0u) << proto::to_string(want[i]);
  }
  EXPECT_EQ(fake.seen[5].u64, feature_bit(vring::kFVersion1) | feature_bit(vring::kFEventIdx) |
                                  feature_bit(vring::kFProtocolFeatures));
  EXPECT_EQ(fake.seen[2].u64, fake.protocol);  // REPLY_ACK and MQ taken, nothing else
  EXPECT_EQ(fake.bases(), (std::vector<std::uint32_t>{0, 0}));
}

TEST_F(FrontendFake, PackedStartsWithBothWrapCountersSet) {
  FakeBackend fake;
  auto fe = open(fake, Layout::packed);
  ASSERT_TRUE(fe);
  fe.reset();
  fake.join();
  // rst packed encoding: bit 15 avail wrap counter, bit 31 used wrap counter (§2.8.1: start at 1).
  EXPECT_EQ(fake.bases(), (std::vector<std::uint32_t>{0x80008000u, 0x80008000u}));
}

TEST_F(FrontendFake, ReconnectResumesSplitRingAtUsedIdx) {
  FakeBackend first;
  auto fe = open(first, Layout::split);
  ASSERT_TRUE(fe);
  Queue& q = fe->queue(0);
  auto& ring = std::get<vring::SplitDriverRing>(q.ring);
  vring::DriverBuffer b{0x1000, 64};
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(ring.add({}, std::span(&b, 1), 100 + i));
  (void)ring.kick_prepare();
  // The old back-end used heads 0..2 (in order) before it died.
  auto view = vring::SplitRingView::at(q.desc.host, q.driver_area.host, q.device_area.host, 8);
  for (std::uint32_t i = 0; i < 3; ++i) view.used_ring[i] = vring::UsedElem{i, 64};
  vring::store_release(*view.used_idx, std::uint16_t{3});  // pairs with the driver's acquire
  first.hangup();
  EXPECT_FALSE(fe->check_connection());
  FakeBackend second;
  second.start(*listener_);
  auto ok = fe->reconnect();
  ASSERT_TRUE(ok) << ok.error().reason;
  EXPECT_EQ(fe->reconnects(), 1u);
  fe.reset();
  second.join();
  EXPECT_EQ(second.bases(), (std::vector<std::uint32_t>{3, 0}));
}

TEST_F(FrontendFake, ReconnectResumesPackedRingWithWrapCounters) {
  FakeBackend first;
  auto fe = open(first, Layout::packed);
  ASSERT_TRUE(fe);
  Queue& q = fe->queue(0);
  auto& ring = std::get<vring::PackedDriverRing>(q.ring);
  vring::DriverBuffer b{0x1000, 64};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ring.add({}, std::span(&b, 1), 100 + i));
  (void)ring.kick_prepare();
  // The old back-end used slots 0 and 1 (AVAIL == USED == wrap counter 1) and was killed.
  auto* desc = reinterpret_cast<vring::PackedDesc*>(q.desc.host);
  for (int i = 0; i < 2; ++i)
    vring::store_release(desc[i].flags, static_cast<std::uint16_t>(vring::kDescFAvail | vring::kDescFUsed));
  first.hangup();
  EXPECT_FALSE(fe->check_connection());
  FakeBackend second;
  second.start(*listener_);
  auto ok = fe->reconnect();
  ASSERT_TRUE(ok) << ok.error().reason;
  fe.reset();
  second.join();
  const std::uint32_t slot2 = proto::encode_packed_base({2, true, 2, true});
  EXPECT_EQ(second.bases(), (std::vector<std::uint32_t>{slot2, 0x80008000u}));
  EXPECT_EQ(slot2, 0x80028002u);
}

// rst "Inflight I/O tracking", QEMU's order: GET_INFLIGHT_FD once, after SET_FEATURES, with the
// queue count and size; SET_INFLIGHT_FD with that same region on every connection, before
// SET_MEM_TABLE and every SET_VRING_*.
TEST_F(FrontendFake, InflightRegionIsAskedForOnceAndHandedToEveryBackEnd) {
  const std::uint64_t with_inflight = proto::proto_bit(proto::kProtoFReplyAck) |
                                      proto::proto_bit(proto::kProtoFMq) |
                                      proto::proto_bit(proto::kProtoFInflightShmfd);
  FakeBackend first;
  first.protocol = with_inflight;
  auto fe = open(first, Layout::packed);
  ASSERT_TRUE(fe);
  EXPECT_GE(fe->inflight_fd(), 0);
  EXPECT_EQ(fe->inflight_desc().mmap_size, 4096u);
  first.hangup();
  EXPECT_FALSE(fe->check_connection());
  FakeBackend second;
  second.protocol = with_inflight;
  second.start(*listener_);
  auto ok = fe->reconnect();
  ASSERT_TRUE(ok) << ok.error().reason;
  fe.reset();
  second.join();
  struct stat st {};
  ASSERT_EQ(::fstat(first.region->fd(), &st), 0);
  using R = FrontendReq;
  for (FakeBackend* b : {&first, &second}) {
    const bool is_first = b == &first;
    std::vector<R> order;
    for (const auto& m : b->seen) order.push_back(m.req);
    auto at = [&](R r) { return std::find(order.begin(), order.end(), r) - order.begin(); };
    const auto n = static_cast<long>(order.size());
    EXPECT_EQ(std::count(order.begin(), order.end(), R::get_inflight_fd), is_first ? 1 : 0)
        << "the region is asked for on the first connection only";
    ASSERT_LT(at(R::set_inflight_fd), n) << "SET_INFLIGHT_FD on every connection";
    if (is_first) {
      EXPECT_LT(at(R::set_features), at(R::get_inflight_fd)) << "the layout depends on the features";
      EXPECT_LT(at(R::get_inflight_fd), at(R::set_inflight_fd));
    }
    EXPECT_LT(at(R::set_inflight_fd), at(R::set_mem_table));
    EXPECT_LT(at(R::set_inflight_fd), at(R::set_vring_num));
    const auto& set = b->seen[static_cast<std::size_t>(at(R::set_inflight_fd))];
    EXPECT_EQ(set.nfds, 1u);
    EXPECT_EQ(set.ino, st.st_ino) << "the same region, kept across the reconnect";
  }
}

TEST_F(FrontendFake, InflightCanBeTurnedOff) {
  FakeBackend fake;
  fake.protocol |= proto::proto_bit(proto::kProtoFInflightShmfd);
  fake.start(*listener_);
  auto fe = Frontend::open({.socket_path = sock_, .num_queues = 1, .queue_size = 8,
                            .connect_timeout_ms = 2000, .inflight = false}, mem_);
  ASSERT_TRUE(fe) << fe.error().reason;
  EXPECT_EQ((*fe)->inflight_fd(), -1);
  fe->reset();
  fake.join();
  for (const auto& m : fake.seen) EXPECT_NE(m.req, FrontendReq::get_inflight_fd);
}

TEST_F(FrontendFake, ConnectTimesOutWithAReason) {
  listener_.reset();  // nobody listens
  auto fe = Frontend::open({.socket_path = sock_, .connect_timeout_ms = 100}, mem_);
  ASSERT_FALSE(fe);
  EXPECT_EQ(fe.error().kind, Error::Kind::disconnected);
  EXPECT_NE(fe.error().reason.find(sock_), std::string::npos);
}

}  // namespace
}  // namespace vireo::driver
