// RAII wrappers: ownership, counters, EventFd, MemFd, Mapping offsets, Unix sockets.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "fd_helpers.hpp"
#include "proto/sys/event_fd.hpp"
#include "proto/sys/mapping.hpp"
#include "proto/sys/memfd.hpp"
#include "proto/sys/unix_socket.hpp"

namespace vireo::proto {
namespace {

using testing::open_fd_count;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/vireo-proto-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path_).c_str()); }
  std::string file(const char* name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

TEST(SysTest, UniqueFdOwnershipAndCounter) {
  auto base_count = live_fd_count();
  int base_open = open_fd_count();
  {
    UniqueFd a(::eventfd(0, EFD_CLOEXEC));
    EXPECT_TRUE(a);
    EXPECT_EQ(live_fd_count(), base_count + 1);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_TRUE(b.valid());
    EXPECT_EQ(live_fd_count(), base_count + 1);
    auto c = b.duplicate();
    ASSERT_TRUE(c);
    EXPECT_EQ(live_fd_count(), base_count + 2);
    int r = c->release();
    EXPECT_EQ(live_fd_count(), base_count + 1);
    ::close(r);
    b.reset();
    EXPECT_EQ(live_fd_count(), base_count);
    b.reset(::eventfd(0, EFD_CLOEXEC));
    UniqueFd d;
    d = std::move(b);
    EXPECT_EQ(live_fd_count(), base_count + 1);
  }
  EXPECT_EQ(live_fd_count(), base_count);
  EXPECT_EQ(open_fd_count(), base_open);
}

TEST(SysTest, EventFdSignalAndDrain) {
  auto e = EventFd::create(/*nonblocking=*/true);
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(*e->drain(), 0u);  // nothing pending on a non-blocking eventfd
  ASSERT_TRUE(e->signal());
  ASSERT_TRUE(e->signal(2));
  EXPECT_EQ(*e->drain(), 3u);
  EXPECT_EQ(*e->drain(), 0u);
}

TEST(SysTest, EventFdSemaphoreDrainsOneAtATime) {
  auto e = EventFd::create(true, /*semaphore=*/true);
  ASSERT_TRUE(e);
  ASSERT_TRUE(e->signal(2));
  EXPECT_EQ(*e->drain(), 1u);
  EXPECT_EQ(*e->drain(), 1u);
  EXPECT_EQ(*e->drain(), 0u);
}

TEST(SysTest, EventFdAdoptAndTake) {
  auto e = EventFd::create(true);
  ASSERT_TRUE(e);
  auto dup = UniqueFd(::fcntl(e->fd(), F_DUPFD_CLOEXEC, 0));
  auto other = EventFd::adopt(std::move(dup));
  ASSERT_TRUE(other.signal(4));
  EXPECT_EQ(*e->drain(), 4u);
  UniqueFd owned = std::move(*e).take();
  EXPECT_TRUE(owned.valid());
  EXPECT_FALSE(e->valid());
}

TEST(SysTest, MemFdHasTheRequestedSize) {
  auto m = MemFd::create("vireo-test", 3 * 4096);
  ASSERT_TRUE(m) << m.error().message();
  struct stat st {};
  ASSERT_EQ(::fstat(m->fd(), &st), 0);
  EXPECT_EQ(st.st_size, 3 * 4096);
  EXPECT_EQ(m->size(), 3u * 4096);
  EXPECT_TRUE(::fcntl(m->fd(), F_GETFD) & FD_CLOEXEC);
}

TEST(SysTest, HugetlbMemFdSucceedsOrSaysWhy) {
  auto m = MemFd::create("vireo-huge", 2u << 20, /*hugetlb=*/true);
  if (m) {
    EXPECT_EQ(m->size(), 2u << 20);
  } else {
    EXPECT_NE(m.error().message().find("hugetlb"), std::string::npos) << m.error().message();
  }
  auto odd = MemFd::create("vireo-huge", 4096, true);
  ASSERT_FALSE(odd);  // never a multiple of a huge page
}

TEST(SysTest, MappingExposesTheUnalignedOffset) {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  auto live = live_mapping_count();
  auto m = MemFd::create("vireo-map", 4 * page);
  ASSERT_TRUE(m);
  for (std::size_t i = 0; i < 4 * page; i += 1) {
    auto b = static_cast<unsigned char>(i * 31 + 7);
    ASSERT_EQ(::pwrite(m->fd(), &b, 1, static_cast<off_t>(i)), 1);
  }
  const std::uint64_t offset = page + 100;
  {
    auto map = Mapping::map(m->fd(), 2 * page, offset, /*writable=*/true);
    ASSERT_TRUE(map) << map.error().message();
    EXPECT_EQ(live_mapping_count(), live + 1);
    EXPECT_EQ(map->size(), 2 * page);
    EXPECT_EQ(static_cast<unsigned char>(map->data()[0]), static_cast<unsigned char>(offset * 31 + 7));
    auto last = offset + 2 * page - 1;
    EXPECT_EQ(static_cast<unsigned char>(map->data()[2 * page - 1]), static_cast<unsigned char>(last * 31 + 7));
    map->data()[0] = std::byte{0x5a};  // MAP_SHARED: visible through the fd
    unsigned char back = 0;
    ASSERT_EQ(::pread(m->fd(), &back, 1, static_cast<off_t>(offset)), 1);
    EXPECT_EQ(back, 0x5a);
    Mapping moved = std::move(*map);
    EXPECT_FALSE(map->valid());
    EXPECT_EQ(live_mapping_count(), live + 1);
  }
  EXPECT_EQ(live_mapping_count(), live);
}

TEST(SysTest, MappingRejectsBadArguments) {
  auto m = MemFd::create("vireo-map", 4096);
  ASSERT_TRUE(m);
  EXPECT_EQ(Mapping::map(m->fd(), 0, 0, false).error().err, EINVAL);
  EXPECT_EQ(Mapping::map(m->fd(), 4096, ~0ull - 10, false).error().err, EINVAL);
  EXPECT_FALSE(Mapping::map(-1, 4096, 0, false));
  auto ro = Mapping::map(m->fd(), 4096, 0, /*writable=*/false);
  EXPECT_TRUE(ro);
}

TEST(SysTest, ListenerConnectAcceptAndUnlinkOnDestruction) {
  TempDir dir;
  auto path = dir.file("s.sock");
  {
    auto l = UnixListener::bind(path);
    ASSERT_TRUE(l) << l.error().message();
    auto c = UnixStream::connect(path);
    ASSERT_TRUE(c) << c.error().message();
    auto s = l->accept();
    ASSERT_TRUE(s);
    std::byte b{42};
    std::vector<UniqueFd> fds;
    ASSERT_TRUE(c->send_msg(std::span(&b, 1), {}));
    std::byte got{};
    EXPECT_EQ(*s->recv_msg(std::span(&got, 1), fds), 1u);
    EXPECT_EQ(got, std::byte{42});
    // A second listener on a live socket must not steal it.
    auto second = UnixListener::bind(path);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().err, EADDRINUSE);
  }
  struct stat st {};
  EXPECT_NE(::lstat(path.c_str(), &st), 0);  // unlinked
}

TEST(SysTest, ListenerReplacesAStaleSocket) {
  TempDir dir;
  auto path = dir.file("stale.sock");
  {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path.c_str());
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }  // closed without unlink: a crashed daemon's leftover
  auto l = UnixListener::bind(path);
  ASSERT_TRUE(l) << l.error().message();
}

TEST(SysTest, ListenerRefusesANonSocketFile) {
  TempDir dir;
  auto path = dir.file("plain");
  UniqueFd f(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
  ASSERT_TRUE(f);
  auto l = UnixListener::bind(path);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().err, EEXIST);
  EXPECT_FALSE(UnixListener::bind(std::string(200, 'x')));  // longer than sun_path
}

TEST(SysTest, ListenerAdoptsAnActivatedSocket) {
  TempDir dir;
  auto path = dir.file("act.sock");
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd.get(), 1), 0);
  auto l = UnixListener::adopt(std::move(fd));
  auto c = UnixStream::connect(path);
  ASSERT_TRUE(c);
  EXPECT_TRUE(l.accept());
  EXPECT_TRUE(l.path().empty());
}

TEST(SysTest, RecvReportsPeerCloseAndEagain) {
  auto p = UnixStream::socketpair();
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->first.set_nonblocking(true));
  std::byte buf[4];
  std::vector<UniqueFd> fds;
  auto again = p->first.recv_msg(buf, fds);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().err, EAGAIN);
  p->second = UnixStream();
  EXPECT_EQ(*p->first.recv_msg(buf, fds), 0u);
  EXPECT_TRUE(p->first.wait_readable(0).value_or(false));
}

TEST(SysTest, SendToAClosedPeerIsAnErrorNotSigpipe) {
  auto p = UnixStream::socketpair();
  ASSERT_TRUE(p);
  p->second = UnixStream();
  std::byte b{1};
  auto r = p->first.send_msg(std::span(&b, 1), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().err, EPIPE);
}

TEST(SysTest, SysErrorMessageNamesTheCall) {
  SysError e{ECONNREFUSED, "connect"};
  EXPECT_EQ(e.message(), "connect: Connection refused");
}

}  // namespace
}  // namespace vireo::proto
