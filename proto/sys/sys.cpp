// Implementations of the small RAII wrappers: SysError, UniqueFd::duplicate, EventFd, MemFd,
// Mapping. Sockets live in unix_socket.cpp.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <limits>

#include "proto/sys/event_fd.hpp"
#include "proto/sys/live_counts.hpp"
#include "proto/sys/mapping.hpp"
#include "proto/sys/memfd.hpp"
#include "proto/sys/unique_fd.hpp"

namespace vireo::proto {

std::string SysError::message() const {
  char buf[128];
  // GNU strerror_r: returns a pointer to the text (maybe not buf); thread-safe unlike strerror.
  const char* text = ::strerror_r(err, buf, sizeof buf);
  return std::string(op) + ": " + text;
}

Expected<UniqueFd, SysError> UniqueFd::duplicate() const {
  UniqueFd copy(::fcntl(fd_, F_DUPFD_CLOEXEC, 0));
  if (!copy) return Unexpected(last_sys_error("fcntl(F_DUPFD_CLOEXEC)"));
  return copy;
}

// ---- EventFd ----

Expected<EventFd, SysError> EventFd::create(bool nonblocking, bool semaphore) {
  int flags = EFD_CLOEXEC | (nonblocking ? EFD_NONBLOCK : 0) | (semaphore ? EFD_SEMAPHORE : 0);
  UniqueFd fd(::eventfd(0, flags));
  if (!fd) return Unexpected(last_sys_error("eventfd"));
  return EventFd(std::move(fd));
}

Expected<void, SysError> EventFd::signal(std::uint64_t n) const {
  for (;;) {
    ssize_t r = ::write(fd_.get(), &n, sizeof n);
    if (r == static_cast<ssize_t>(sizeof n)) return {};
    if (r < 0 && errno == EINTR) continue;
    return Unexpected(r < 0 ? last_sys_error("write(eventfd)") : SysError{EIO, "write(eventfd)"});
  }
}

Expected<std::uint64_t, SysError> EventFd::drain() const {
  for (;;) {
    std::uint64_t value = 0;
    ssize_t r = ::read(fd_.get(), &value, sizeof value);
    if (r == static_cast<ssize_t>(sizeof value)) return value;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return std::uint64_t{0};
    return Unexpected(r < 0 ? last_sys_error("read(eventfd)") : SysError{EIO, "read(eventfd)"});
  }
}

// ---- MemFd ----

namespace {

// Reads "<key>: <number>" from /proc/meminfo (kB for sizes); 0 if absent.
std::uint64_t meminfo_value(const char* key) {
  std::FILE* f = std::fopen("/proc/meminfo", "re");
  if (!f) return 0;
  char line[256];
  std::uint64_t value = 0;
  std::size_t key_len = std::strlen(key);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, key, key_len) == 0 && line[key_len] == ':') {
      value = std::strtoull(line + key_len + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return value;
}

// Checks up front what would otherwise be a SIGBUS on first touch of a hugetlb memfd.
Expected<void, SysError> check_hugepages(std::size_t size) {
  std::uint64_t page = meminfo_value("Hugepagesize") * 1024;
  if (page == 0) return Unexpected(SysError{ENOTSUP, "hugetlb: kernel reports no Hugepagesize"});
  if (size % page != 0)
    return Unexpected(SysError{EINVAL, "hugetlb: size is not a multiple of Hugepagesize"});
  if (meminfo_value("HugePages_Free") * page < size)
    return Unexpected(SysError{ENOMEM, "hugetlb: not enough HugePages_Free (see /proc/meminfo)"});
  return {};
}

}  // namespace

Expected<MemFd, SysError> MemFd::create(const char* name, std::size_t size, bool hugetlb) {
  if (hugetlb) {
    if (auto ok = check_hugepages(size); !ok) return Unexpected(ok.error());
  }
  UniqueFd fd(::memfd_create(name, MFD_CLOEXEC | (hugetlb ? MFD_HUGETLB : 0u)));
  if (!fd) return Unexpected(last_sys_error(hugetlb ? "memfd_create(MFD_HUGETLB)" : "memfd_create"));
  if (size > static_cast<std::size_t>(std::numeric_limits<off_t>::max()))
    return Unexpected(SysError{EFBIG, "ftruncate(memfd)"});
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
    return Unexpected(last_sys_error("ftruncate(memfd)"));
  return MemFd(std::move(fd), size);
}

// ---- Mapping ----

Expected<Mapping, SysError> Mapping::map(int fd, std::size_t length, std::uint64_t offset,
                                         bool writable) {
  const std::uint64_t page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t aligned = offset & ~(page - 1);
  const std::uint64_t slack = offset - aligned;
  const std::uint64_t max_off = static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());
  if (length == 0 || offset > max_off || length > max_off - offset)
    return Unexpected(SysError{EINVAL, "mmap: bad length or offset"});
  const std::size_t map_len = length + static_cast<std::size_t>(slack);
  const int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* base = ::mmap(nullptr, map_len, prot, MAP_SHARED, fd, static_cast<off_t>(aligned));
  if (base == MAP_FAILED) return Unexpected(last_sys_error("mmap"));
  detail::g_live_mappings.fetch_add(1, std::memory_order_relaxed);
  Mapping m;
  m.base_ = base;
  m.map_len_ = map_len;
  m.data_ = static_cast<std::byte*>(base) + slack;
  m.size_ = length;
  return m;
}

Mapping::Mapping(Mapping&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)),
      map_len_(std::exchange(other.map_len_, 0)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    unmap();
    base_ = std::exchange(other.base_, nullptr);
    map_len_ = std::exchange(other.map_len_, 0);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Mapping::~Mapping() { unmap(); }

void Mapping::unmap() noexcept {
  if (base_ == nullptr) return;
  ::munmap(base_, map_len_);
  detail::g_live_mappings.fetch_sub(1, std::memory_order_relaxed);
  base_ = nullptr;
  data_ = nullptr;
  map_len_ = size_ = 0;
}

std::string describe_fd(int fd) {
  char path[64], target[256];
  std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  const ssize_t n = ::readlink(path, target, sizeof target - 1);
  if (n <= 0) return {};
  return std::string(target, static_cast<std::size_t>(n));
}

bool is_eventfd(int fd) {
  const std::string what = describe_fd(fd);
  return what.empty() || what == "anon_inode:[eventfd]";
}

}  // namespace vireo::proto
