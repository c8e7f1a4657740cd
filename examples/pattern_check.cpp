// pattern-check: drives pattern-rng (or any virtio-rng back-end with --any) with Vireo's user-space
// vhost-user front-end: negotiates split or packed rings, posts device-writable buffers, waits for
// the calls and checks every byte. Exit 0 when all buffers came back as expected.
//
//   ./pattern-check SOCKET split|packed COUNT [--any]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "driver/frontend.hpp"
#include "driver/guest_memory.hpp"
#include "vring/driver_queue.hpp"

namespace {

constexpr std::uint32_t kLen = 256;    // bytes per buffer
constexpr std::uint16_t kDepth = 32;   // buffers outstanding at once

int fail(const std::string& why) {
  std::fprintf(stderr, "pattern-check: %s\n", why.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace vireo;
  if (argc < 4) return fail("usage: pattern-check SOCKET split|packed COUNT [--any]");
  const bool any = argc > 4 && std::strcmp(argv[4], "--any") == 0;
  const unsigned long count = std::strtoul(argv[3], nullptr, 10);
  auto mem = driver::GuestMemory::create({.size = 4u << 20});
  if (!mem) return fail(mem.error());
  driver::FrontendOptions o;
  o.socket_path = argv[1];
  o.layout = std::strcmp(argv[2], "packed") == 0 ? driver::Layout::packed : driver::Layout::split;
  o.queue_size = 64;
  auto fe = driver::Frontend::open(o, *mem);
  if (!fe) return fail("cannot open " + o.socket_path + ": " + fe.error().reason);
  auto area = mem->alloc(std::size_t{kDepth} * kLen, 64);
  if (!area) return fail(area.error());

  driver::Queue& q = (*fe)->queue(0);
  unsigned long posted = 0, done = 0;
  std::uint64_t bytes = 0;
  auto post = [&](std::uint64_t slot) {
    const vring::DriverBuffer b{area->gpa + slot * kLen, kLen};
    return vring::process_burst(q.ring, [&](auto& ring) {
      auto r = ring.add({}, std::span<const vring::DriverBuffer>(&b, 1), slot);
      if (r && ring.kick_prepare()) (*fe)->kick(0);
      return static_cast<bool>(r);
    });
  };
  for (std::uint64_t s = 0; s < kDepth && posted < count; ++s, ++posted)
    if (!post(s)) return fail("cannot add a buffer");
  while (done < count) {
    vring::DriverUsed u{};
    auto got = vring::process_burst(q.ring, [&](auto& ring) { return ring.get_used(u); });
    if (!got) return fail("the device broke the ring");
    if (!*got) {
      const std::uint16_t qi = 0;
      auto woke = (*fe)->wait_call(std::span(&qi, 1), 5000);
      if (!woke || !*woke) return fail("no call from the device within 5 s");
      if (!(*fe)->check_connection()) return fail("the back-end closed the connection");
      continue;
    }
    if (u.len != kLen) return fail("buffer " + std::to_string(done) + " came back with " + std::to_string(u.len) + " bytes");
    const std::byte* p = area->host + u.token * kLen;
    for (std::uint32_t k = 0; k < kLen && !any; ++k)
      if (p[k] != static_cast<std::byte>((k * 7u + 3u) % 251u))
        return fail("buffer " + std::to_string(done) + " byte " + std::to_string(k) + " is wrong");
    ++done;
    bytes += u.len;
    if (posted < count && post(u.token)) ++posted;
  }
  std::printf("pattern-check: %lu buffers, %llu bytes verified (%s ring)\n", done,
              static_cast<unsigned long long>(bytes), argv[2]);
  return 0;
}
