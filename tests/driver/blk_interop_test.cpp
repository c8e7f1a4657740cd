// Suite `interop`: the Vireo virtio-blk driver against a vhost-user-blk back-end - by default
// qemu-storage-daemon's export, with `--vireo PATH` Vireo's own `vireo blk`: patterns written at several offsets with queue depth 1 and 32 are read back and found
// in the image file on the host; flush, write-zeroes, discard; out-of-range requests fail with
// VIRTIO_BLK_S_IOERR; a packed ring is refused because the export does not offer it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "driver/blk.hpp"
#include "peer_process.hpp"
#include "proto/sys/unique_fd.hpp"

namespace vireo::driver {
namespace {

using vireo::testing::PeerProcess;
using vireo::testing::TempDir;

std::string g_qsd;
std::string g_vireo;  // --vireo PATH: test against `vireo blk` instead of qemu-storage-daemon
constexpr std::uint64_t kImageBytes = 64u << 20;

void fill(std::span<std::byte> b, std::uint64_t seed) {
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::byte>((seed * 2654435761u + i * 31) >> 3);
}

class BlkInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    image_ = dir_.path() + "/disk.img";
    sock_ = dir_.path() + "/blk.sock";
    proto::UniqueFd fd(::open(image_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(::ftruncate(fd.get(), kImageBytes), 0);
    ASSERT_TRUE(start_peer()) << peer_.log_tail();
  }

  bool start_peer() {
    if (!g_vireo.empty())
      return peer_.start({g_vireo, "blk", "--socket-path", sock_, "--image", image_}, dir_.path() + "/vireo.log") &&
             peer_.wait_for_socket(sock_, 20'000);
    return peer_.start({g_qsd, "--blockdev", "driver=file,node-name=file0,filename=" + image_ + ",discard=unmap",
                       "--export",
                       "type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=" + sock_ +
                           ",writable=on"},
                      dir_.path() + "/qsd.log") &&
           peer_.wait_for_socket(sock_, 20'000);
  }

  std::unique_ptr<BlkDriver> open(std::uint16_t depth, Layout layout = Layout::split) {
    auto b = BlkDriver::open({.socket_path = sock_, .layout = layout, .depth = depth});
    EXPECT_TRUE(b) << b.error().reason << "\n" << peer_.log_tail();
    return b ? std::move(*b) : nullptr;
  }

  // The image file as the host sees it.
  std::vector<std::byte> host_bytes(std::uint64_t off, std::size_t len) {
    std::vector<std::byte> out(len);
    proto::UniqueFd fd(::open(image_.c_str(), O_RDONLY | O_CLOEXEC));
    EXPECT_EQ(::pread(fd.get(), out.data(), len, static_cast<off_t>(off)), static_cast<ssize_t>(len));
    return out;
  }

  TempDir dir_;
  std::string image_, sock_;
  PeerProcess peer_;
};

TEST_F(BlkInterop, ConfigSpaceGivesCapacity) {
  auto blk = open(1);
  ASSERT_TRUE(blk);
  EXPECT_EQ(blk->capacity_bytes(), kImageBytes);
  EXPECT_GE(blk->config().blk_size, 512u);
}

TEST_F(BlkInterop, Depth1PatternsReadBackAndReachTheHostFile) {
  auto blk = open(1);
  ASSERT_TRUE(blk);
  auto wbuf = blk->alloc_buffer(8192);
  auto rbuf = blk->alloc_buffer(8192);
  ASSERT_TRUE(wbuf && rbuf);
  const std::uint64_t sectors[] = {0, 17, 101, 2048, 12345, kImageBytes / 512 - 16};  // 16 sectors each, disjoint
  for (std::uint64_t s : sectors) {
    fill(*wbuf, s);
    auto w = blk->write(s, *wbuf);
    ASSERT_TRUE(w) << w.error().reason;
    EXPECT_EQ(*w, proto::blk::kSOk) << "sector " << s;
  }
  auto f = blk->flush();
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, proto::blk::kSOk);
  for (std::uint64_t s : sectors) {
    fill(*wbuf, s);
    auto r = blk->read(s, *rbuf);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, proto::blk::kSOk);
    EXPECT_EQ(std::memcmp(rbuf->data(), wbuf->data(), wbuf->size()), 0) << "sector " << s;
    auto host = host_bytes(s * 512, wbuf->size());
    EXPECT_EQ(std::memcmp(host.data(), wbuf->data(), wbuf->size()), 0) << "host file at sector " << s;
  }
}

TEST_F(BlkInterop, Depth32ConcurrentWritesThenReadsCompleteInAnyOrder) {
  constexpr std::uint16_t kDepth = 32;
  auto blk = open(kDepth);
  ASSERT_TRUE(blk);
  std::vector<std::span<std::byte>> w(kDepth), r(kDepth);
  std::vector<BlkRequest> reqs;
  for (std::uint16_t i = 0; i < kDepth; ++i) {
    auto a = blk->alloc_buffer(4096);
    auto b = blk->alloc_buffer(4096);
    ASSERT_TRUE(a && b);
    w[i] = *a;
    r[i] = *b;
    fill(w[i], 1000 + i);
    reqs.push_back({.op = BlkOp::out, .sector = 8u * (i * 97 % 4096), .buf = w[i], .user = i});
  }
  auto run_all = [&](std::vector<BlkRequest>& batch) {
    auto n = blk->submit(batch);
    ASSERT_TRUE(n) << n.error().reason;
    ASSERT_EQ(*n, batch.size());
    EXPECT_EQ(blk->in_flight(), kDepth);
    std::vector<bool> seen(kDepth);
    std::array<BlkCompletion, kDepth> done;
    for (std::size_t got = 0; got < kDepth;) {
      auto k = blk->poll(done);
      ASSERT_TRUE(k) << k.error().reason;
      for (std::size_t j = 0; j < *k; ++j) {
        EXPECT_EQ(done[j].status, proto::blk::kSOk);
        ASSERT_LT(done[j].user, kDepth);
        EXPECT_FALSE(seen[done[j].user]);
        seen[done[j].user] = true;
      }
      got += *k;
      if (*k == 0) {
        ASSERT_TRUE(blk->wait(1000));
      }
    }
  };
  run_all(reqs);
  auto f = blk->flush();
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, proto::blk::kSOk);
  for (std::uint16_t i = 0; i < kDepth; ++i) {
    reqs[i].op = BlkOp::in;
    reqs[i].buf = r[i];
  }
  run_all(reqs);
  for (std::uint16_t i = 0; i < kDepth; ++i) {
    EXPECT_EQ(std::memcmp(r[i].data(), w[i].data(), 4096), 0) << "request " << i;
    auto host = host_bytes(reqs[i].sector * 512, 4096);
    EXPECT_EQ(std::memcmp(host.data(), w[i].data(), 4096), 0) << "host file, request " << i;
  }
}

TEST_F(BlkInterop, OutOfRangeRequestsGetIoErr) {
  auto blk = open(4);
  ASSERT_TRUE(blk);
  auto buf = blk->alloc_buffer(4096);
  ASSERT_TRUE(buf);
  const std::uint64_t end = kImageBytes / 512;
  for (std::uint64_t s : {end, end - 1, end + 1000, ~std::uint64_t{0} / 1024}) {
    auto r = blk->read(s, *buf);
    ASSERT_TRUE(r) << r.error().reason;
    EXPECT_EQ(*r, proto::blk::kSIoErr) << "read at sector " << s;
    auto w = blk->write(s, *buf);
    ASSERT_TRUE(w);
    EXPECT_EQ(*w, proto::blk::kSIoErr) << "write at sector " << s;
  }
  auto ok = blk->read(end - 8, *buf);  // the last 4 KiB is fine
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, proto::blk::kSOk);
}

TEST_F(BlkInterop, WriteZeroesAndDiscard) {
  auto blk = open(1);
  ASSERT_TRUE(blk);
  ASSERT_TRUE(vring::has_feature(blk->features(), proto::blk::kFWriteZeroes));
  auto buf = blk->alloc_buffer(65536);
  ASSERT_TRUE(buf);
  fill(*buf, 77);
  ASSERT_EQ(*blk->write(4096, *buf), proto::blk::kSOk);
  auto z = blk->write_zeroes(4096 + 8, 16, /*unmap=*/false);
  ASSERT_TRUE(z);
  EXPECT_EQ(*z, proto::blk::kSOk);
  ASSERT_EQ(*blk->flush(), proto::blk::kSOk);
  auto host = host_bytes(4096 * 512, 65536);
  for (std::size_t i = 0; i < 65536; ++i) {
    const bool zeroed = i >= 8 * 512 && i < 24 * 512;
    ASSERT_EQ(host[i], zeroed ? std::byte{0} : (*buf)[i]) << "byte " << i;
  }
  if (vring::has_feature(blk->features(), proto::blk::kFDiscard)) {
    auto d = blk->discard(8192, 128);
    ASSERT_TRUE(d);
    EXPECT_EQ(*d, proto::blk::kSOk);
  }
}

// qemu-storage-daemon SIGKILLed between (and possibly during) synchronous writes, then restarted:
// the driver reconnects, the ring resumes at used->idx, and writes carry on and reach the file.
TEST_F(BlkInterop, ReconnectAfterTheDaemonIsKilled) {
  auto blk = open(1);
  ASSERT_TRUE(blk);
  auto buf = blk->alloc_buffer(4096);
  ASSERT_TRUE(buf);
  std::atomic<bool> restarted{false}, done{false};
  struct Joiner {  // an ASSERT returning early must not leave a joinable thread behind
    std::atomic<bool>& done;
    std::thread t;
    ~Joiner() {
      done = true;
      if (t.joinable()) t.join();
    }
  } killer{done, {}};
  killer.t = std::thread([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    peer_.stop(SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::filesystem::remove(sock_);
    restarted = start_peer();
    while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // PDEATHSIG: stay alive
    peer_.stop(SIGKILL);
  });
  std::uint64_t writes = 0, after = 0, reconnects = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < end) {
    fill(*buf, writes);
    auto w = blk->write(8 * (writes % 1024), *buf);  // reconnects inside if the daemon dies
    ASSERT_TRUE(w) << w.error().reason;
    ASSERT_EQ(*w, proto::blk::kSOk);
    ++writes;
    if (blk->frontend().reconnects() != 0) ++after;
    auto link = blk->poll_link();
    ASSERT_TRUE(link) << link.error().reason;
  }
  reconnects = blk->frontend().reconnects();
  done = true;
  killer.t.join();
  ASSERT_TRUE(restarted);
  EXPECT_EQ(reconnects, 1u);
  EXPECT_GT(after, 10u) << "writes did not resume after the reconnect";
  auto host = host_bytes(8 * ((writes - 1) % 1024) * 512, 4096);
  fill(*buf, writes - 1);
  EXPECT_EQ(std::memcmp(host.data(), buf->data(), 4096), 0);
}

// A back-end that offers RING_PACKED (vireo blk) serves the same patterns on a packed ring.
TEST_F(BlkInterop, PackedRingPatternsReadBack) {
  auto b = BlkDriver::open({.socket_path = sock_, .layout = Layout::packed, .depth = 32});
  if (!b) GTEST_SKIP() << "the back-end does not offer RING_PACKED: " << b.error().reason;
  auto buf = (*b)->alloc_buffer(64 * 1024);
  ASSERT_TRUE(buf);
  for (std::uint64_t i = 0; i < 16; ++i) {
    fill(*buf, 1000 + i);
    auto w = (*b)->write(i * 4096, *buf);
    ASSERT_TRUE(w) << w.error().reason;
    ASSERT_EQ(*w, proto::blk::kSOk);
  }
  ASSERT_TRUE((*b)->flush());
  for (std::uint64_t i = 0; i < 16; ++i) {
    fill(*buf, 1000 + i);
    auto host = host_bytes(i * 4096 * 512, buf->size());
    EXPECT_EQ(std::memcmp(host.data(), buf->data(), buf->size()), 0) << "block group " << i;
  }
}

TEST_F(BlkInterop, PackedIsRefusedWhenTheExportDoesNotOfferIt) {
  auto b = BlkDriver::open({.socket_path = sock_, .layout = Layout::packed, .depth = 1});
  if (b) GTEST_SKIP() << "this qemu-storage-daemon offers RING_PACKED";
  EXPECT_EQ(b.error().kind, Error::Kind::unsupported);
  EXPECT_NE(b.error().reason.find("RING_PACKED"), std::string::npos) << b.error().reason;
}

}  // namespace
}  // namespace vireo::driver

int main(int argc, char** argv) {
  vireo::driver::g_vireo = vireo::testing::take_vireo_arg(argc, argv);
  if (vireo::driver::g_vireo.empty()) {
    auto tool = vireo::testing::find_program("qemu-storage-daemon");
    if (!tool) return vireo::testing::skip("qemu-storage-daemon not found (Debian: apt-get install qemu-utils)");
    vireo::driver::g_qsd = *tool;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
