// The block peer (suite interop): qemu-storage-daemon serves a tmpfs image as a vhost-user-blk
// socket, answers VHOST_USER_GET_FEATURES there, and stops cleanly (exit 0 on SIGTERM, socket
// and image removed). Skips (exit 77) when qemu-storage-daemon is missing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "bench/qsd.hpp"

namespace vireo::bench {
namespace {

namespace fs = std::filesystem;

TEST(Qsd, ServesVhostUserBlkAndStopsCleanly) {
  if (find_program("qemu-storage-daemon").empty()) GTEST_SKIP() << "qemu-storage-daemon not installed";
  auto image = TmpfsImage::create(16 << 20);
  ASSERT_TRUE(image) << image.error();
  std::string image_path = image->path();
  EXPECT_EQ(fs::file_size(image_path), 16u << 20);
  std::string socket = image_path + ".sock";
  {
    auto qsd = start_qsd({image_path, socket, 1});
    ASSERT_TRUE(qsd) << qsd.error().reason;
    pid_t pid = (*qsd)->pid();
    EXPECT_EQ(::kill(pid, 0), 0);
    auto features = probe_vhost_user(socket);
    ASSERT_TRUE(features) << features.error();
    EXPECT_NE(*features & (1ull << 32), 0u);  // VIRTIO_F_VERSION_1
    EXPECT_NE(*features & (1ull << 30), 0u);  // VHOST_USER_F_PROTOCOL_FEATURES
    int status = (*qsd)->stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
    EXPECT_FALSE(fs::exists(socket));
    fs::remove(socket + ".log");
  }
  { auto gone = std::move(*image); }
  EXPECT_FALSE(fs::exists(image_path));
}

TEST(Qsd, ABadImageIsAnErrorWithTheDaemonsWords) {
  if (find_program("qemu-storage-daemon").empty()) GTEST_SKIP() << "qemu-storage-daemon not installed";
  std::string socket = fs::temp_directory_path() / ("vireo-qsd-test-" + std::to_string(::getpid()) + ".sock");
  auto qsd = start_qsd({"/nonexistent/vireo.img", socket, 1});
  ASSERT_FALSE(qsd);
  EXPECT_FALSE(qsd.error().skipped());
  EXPECT_NE(qsd.error().reason.find("exited"), std::string::npos) << qsd.error().reason;
  EXPECT_NE(qsd.error().reason.find("nonexistent"), std::string::npos) << qsd.error().reason;
  fs::remove(socket + ".log");
}

}  // namespace
}  // namespace vireo::bench
