// GuestMemory: memfd + shared mapping + bump allocator.
#include "driver/guest_memory.hpp"

#include <cstdio>
#include <cstring>

namespace vireo::driver {
namespace {

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

}  // namespace

std::size_t default_huge_page_size() {
  std::FILE* f = std::fopen("/proc/meminfo", "re");
  if (f == nullptr) return 0;
  char line[256];
  std::size_t kb = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "Hugepagesize: %zu kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb * 1024;
}

Expected<GuestMemory, std::string> GuestMemory::create(const GuestMemoryOptions& opt) {
  std::size_t page = 4096;
  if (opt.hugepages) {
    page = default_huge_page_size();
    if (page == 0) return Unexpected(std::string("hugepages: the kernel reports no Hugepagesize"));
  }
  if (opt.size == 0) return Unexpected(std::string("guest memory size is 0"));
  const std::size_t size = round_up(opt.size, page);
  auto memfd = proto::MemFd::create("vireo-driver-ram", size, opt.hugepages);
  if (!memfd)
    return Unexpected("cannot create " + std::to_string(size >> 20) + " MiB of guest memory: " +
                      memfd.error().message() +
                      (opt.hugepages ? " (run scripts/prepare-host.sh to reserve huge pages)" : ""));
  auto mapping = proto::Mapping::map(memfd->fd(), size, 0, /*writable=*/true);
  if (!mapping) return Unexpected("cannot map guest memory: " + mapping.error().message());
  GuestMemory mem;
  mem.memfd_ = std::move(*memfd);
  mem.mapping_ = std::move(*mapping);
  mem.base_gpa_ = opt.base_gpa;
  mem.hugepages_ = opt.hugepages;
  return mem;
}

Expected<Area, std::string> GuestMemory::alloc(std::size_t len, std::size_t align) {
  if (align == 0 || (align & (align - 1)) != 0)
    return Unexpected("guest memory alignment " + std::to_string(align) + " is not a power of two");
  const std::size_t start = round_up(next_, align);
  if (len == 0 || start > size() || len > size() - start)
    return Unexpected("guest memory exhausted: " + std::to_string(len) + " bytes requested, " +
                      std::to_string(size() - std::min(start, size())) + " left of " +
                      std::to_string(size()));
  next_ = start + len;
  Area a{mapping_.data() + start, base_gpa_ + start, len};
  std::memset(a.host, 0, len);
  return a;
}

std::span<std::byte> GuestMemory::translate(std::uint64_t gpa, std::uint64_t len) const noexcept {
  if (gpa < base_gpa_ || gpa - base_gpa_ >= size()) return {};
  const std::uint64_t off = gpa - base_gpa_;
  return {mapping_.data() + off, static_cast<std::size_t>(std::min<std::uint64_t>(len, size() - off))};
}

bool GuestMemory::gpa_of(const void* host, std::size_t len, std::uint64_t& gpa) const noexcept {
  const auto p = reinterpret_cast<std::uintptr_t>(host);
  const auto base = reinterpret_cast<std::uintptr_t>(mapping_.data());
  if (mapping_.data() == nullptr || p < base || p - base >= size() || len > size() - (p - base))
    return false;
  gpa = base_gpa_ + (p - base);
  return true;
}

proto::MemoryRegion GuestMemory::region() const {
  return proto::MemoryRegion{base_gpa_, size(), reinterpret_cast<std::uint64_t>(mapping_.data()), 0};
}

}  // namespace vireo::driver
