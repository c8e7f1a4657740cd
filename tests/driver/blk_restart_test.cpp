// Suite `restart` (issue #6): restart without loss. The Vireo virtio-blk driver writes numbered
// 4 KiB blocks (content = block number + generation, verifiable) at depth 16 to `vireo blk` on a
// tmpfs image while another thread SIGKILLs `vireo blk` at random moments and restarts it,
// VIREO_RESTARTS times (default 100). The driver reconnects and hands the inflight region back
// (SET_INFLIGHT_FD); the back-end resubmits what the killed one had taken. At the end every
// acknowledged write is in the image with its content, nothing completed with an error, and no
// request was left without a completion. Split and packed rings.
//
// One write per block is in flight at a time, so the image must hold exactly the last
// acknowledged generation of every block.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include "driver/blk.hpp"
#include "peer_process.hpp"
#include "proto/sys/unique_fd.hpp"

namespace vireo::driver {
namespace {

using vireo::testing::PeerProcess;
using vireo::testing::TempDir;

std::string g_vireo;
constexpr std::uint64_t kBlock = 4096;
constexpr std::uint64_t kBlocks = 512;  // 2 MiB image
constexpr std::uint16_t kDepth = 16;

int restarts_wanted() {
  const char* e = std::getenv("VIREO_RESTARTS");
  const int n = e != nullptr ? std::atoi(e) : 100;
  return n > 0 ? n : 100;
}

// Block `b`, generation `gen`: the two numbers first, then a pattern derived from both.
void pattern(std::span<std::byte> out, std::uint64_t b, std::uint64_t gen) {
  std::uint64_t x = (b + 1) * 0x9E3779B97F4A7C15ull ^ gen * 0xC2B2AE3D27D4EB4Full;
  std::memcpy(out.data(), &b, 8);
  std::memcpy(out.data() + 8, &gen, 8);
  for (std::size_t i = 16; i + 8 <= out.size(); i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(out.data() + i, &x, 8);
  }
}

class BlkRestart : public ::testing::TestWithParam<Layout> {
 protected:
  void SetUp() override {
    if (!std::filesystem::is_directory("/dev/shm")) GTEST_SKIP() << "no tmpfs at /dev/shm";
    image_ = "/dev/shm/vireo-restart-" + std::to_string(::getpid()) + ".img";
    sock_ = dir_.path() + "/blk.sock";
    proto::UniqueFd fd(::open(image_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(::ftruncate(fd.get(), kBlocks * kBlock), 0);
    ASSERT_TRUE(start_peer()) << peer_.log_tail();
  }
  void TearDown() override {
    peer_.stop(SIGKILL);
    if (!image_.empty()) std::filesystem::remove(image_);
  }

  bool start_peer() {
    std::filesystem::remove(sock_);
    return peer_.start({g_vireo, "blk", "--socket-path", sock_, "--image", image_}, dir_.path() + "/vireo.log") &&
           peer_.wait_for_socket(sock_, 20'000);
  }

  TempDir dir_;
  std::string image_, sock_;
  PeerProcess peer_;
};

TEST_P(BlkRestart, EveryAcknowledgedWriteSurvivesRepeatedSigkill) {
  const int restarts = restarts_wanted();
  auto opened = BlkDriver::open({.socket_path = sock_, .layout = GetParam(), .queue_size = 64,
                                 .depth = kDepth, .connect_timeout_ms = 20'000});
  ASSERT_TRUE(opened) << opened.error().reason << "\n" << peer_.log_tail();
  BlkDriver& blk = **opened;
  ASSERT_GE(blk.frontend().inflight_fd(), 0) << "vireo blk offers INFLIGHT_SHMFD and the driver takes it";
  std::vector<std::span<std::byte>> bufs;
  for (int i = 0; i < kDepth; ++i) {
    auto b = blk.alloc_buffer(kBlock);
    ASSERT_TRUE(b);
    bufs.push_back(*b);
  }
  std::vector<std::uint64_t> free_bufs;
  for (std::uint64_t i = 0; i < kDepth; ++i) free_bufs.push_back(i);
  std::vector<std::uint64_t> gen(kBlocks, 0), acked(kBlocks, 0), block_of(kDepth, 0);
  std::vector<bool> busy(kBlocks, false);

  std::atomic<int> kills{0};
  std::atomic<bool> killer_done{false}, restart_failed{false}, test_done{false};
  std::thread killer([&] {
    std::mt19937 rng(12345u + static_cast<unsigned>(GetParam()));
    for (int r = 0; r < restarts; ++r) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(2, 60)(rng)));
      peer_.stop(SIGKILL);
      ++kills;
      if (!start_peer()) {
        restart_failed = true;
        break;
      }
    }
    killer_done = true;
    // The last vireo blk has this thread as its parent: PR_SET_PDEATHSIG kills it when the
    // thread ends, so stay until the test is done with it.
    while (!test_done) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  });
  struct Joiner {
    std::thread& t;
    std::atomic<bool>& done;
    ~Joiner() {
      done = true;
      if (t.joinable()) t.join();
    }
  } joiner{killer, test_done};

  std::uint64_t next_block = 0, submitted = 0, completed = 0;
  std::mt19937_64 pick(7);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(150);
  std::array<BlkCompletion, kDepth> done{};
  for (;;) {
    const bool stopping = killer_done.load();
    // Fill the depth with writes to blocks that have none in flight.
    while (!stopping && !free_bufs.empty()) {
      std::uint64_t b = (next_block + pick() % 7) % kBlocks;
      next_block = (next_block + 1) % kBlocks;
      if (busy[b]) continue;
      const std::uint64_t slot = free_bufs.back();
      pattern(bufs[slot], b, gen[b] + 1);
      const BlkRequest rq{.op = BlkOp::out, .sector = b * (kBlock / proto::blk::kSectorSize), .buf = bufs[slot], .user = slot};
      auto n = blk.submit(std::span(&rq, 1));
      ASSERT_TRUE(n) << n.error().reason;
      if (*n == 0) break;
      free_bufs.pop_back();
      busy[b] = true;
      ++gen[b];
      block_of[slot] = b;
      ++submitted;
    }
    auto got = blk.poll(done);
    ASSERT_TRUE(got) << got.error().reason << "\n" << peer_.log_tail();
    for (std::size_t k = 0; k < *got; ++k) {
      const std::uint64_t slot = done[k].user;
      ASSERT_LT(slot, kDepth);
      const std::uint64_t b = block_of[slot];
      ASSERT_EQ(done[k].status, proto::blk::kSOk) << "write of block " << b << " generation " << gen[b] << " failed";
      ASSERT_TRUE(busy[b]) << "a second completion for block " << b;
      acked[b] = gen[b];
      busy[b] = false;
      free_bufs.push_back(slot);
      ++completed;
    }
    if (stopping && blk.in_flight() == 0) break;
    if (*got == 0) {
      ASSERT_TRUE(blk.wait(20));
      auto link = blk.poll_link();  // the back-end died: reconnect, hand the region back
      ASSERT_TRUE(link) << link.error().reason << "\n" << peer_.log_tail();
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << blk.in_flight() << " writes never completed after " << kills.load() << " kills ("
        << completed << " of " << submitted << " completed)\n" << peer_.log_tail();
  }
  ASSERT_FALSE(restart_failed) << peer_.log_tail();
  EXPECT_EQ(kills.load(), restarts);
  EXPECT_EQ(completed, submitted);

  // Every block holds its last acknowledged generation.
  proto::UniqueFd fd(::open(image_.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  std::vector<std::byte> disk(kBlock), want(kBlock);
  std::uint64_t written_blocks = 0;
  for (std::uint64_t b = 0; b < kBlocks; ++b) {
    ASSERT_EQ(::pread(fd.get(), disk.data(), kBlock, static_cast<off_t>(b * kBlock)), static_cast<ssize_t>(kBlock));
    if (acked[b] == 0) {
      want.assign(kBlock, std::byte{0});
    } else {
      pattern(want, b, acked[b]);
      ++written_blocks;
    }
    std::uint64_t on_disk[2];
    std::memcpy(on_disk, disk.data(), sizeof on_disk);
    EXPECT_EQ(std::memcmp(disk.data(), want.data(), kBlock), 0)
        << "block " << b << ": acknowledged generation " << acked[b] << ", the image holds block "
        << on_disk[0] << " generation " << on_disk[1];
  }
  // How often a new back-end found requests the killed one had taken (its SET_INFLIGHT_FD log).
  int resumed_with_inflight = 0;
  long in_flight_total = 0;
  {
    std::FILE* f = std::fopen((dir_.path() + "/vireo.log").c_str(), "re");
    ASSERT_NE(f, nullptr);
    char line[512];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      const char* at = std::strstr(line, " buffers were in flight when the previous back-end stopped");
      if (at == nullptr) continue;
      const char* num = at;
      while (num > line && num[-1] >= '0' && num[-1] <= '9') --num;
      ++resumed_with_inflight;
      in_flight_total += std::atol(num);
    }
    std::fclose(f);
  }
  const char* layout = GetParam() == Layout::packed ? "packed" : "split";
  std::printf("restart %s: %d SIGKILLs, %llu reconnects, %d of them with requests in flight (%ld in "
              "all), %llu writes acknowledged, %llu blocks checked\n",
              layout, kills.load(), static_cast<unsigned long long>(blk.frontend().reconnects()),
              resumed_with_inflight, in_flight_total, static_cast<unsigned long long>(completed),
              static_cast<unsigned long long>(written_blocks));
  EXPECT_GT(resumed_with_inflight, 0) << "no restart found requests in flight: resubmission was not exercised";
  RecordProperty("kills", kills.load());
  RecordProperty("reconnects", static_cast<int>(blk.frontend().reconnects()));
  RecordProperty("writes", static_cast<int>(completed));
  EXPECT_GT(blk.frontend().reconnects(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Layouts, BlkRestart, ::testing::Values(Layout::split, Layout::packed),
                         [](const ::testing::TestParamInfo<Layout>& i) {
                           return i.param == Layout::packed ? "Packed" : "Split";
                         });

}  // namespace
}  // namespace vireo::driver

int main(int argc, char** argv) {
  vireo::driver::g_vireo = vireo::testing::take_vireo_arg(argc, argv);
  if (vireo::driver::g_vireo.empty()) return vireo::testing::skip("no --vireo PATH to the vireo binary");
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
