#include "device/net/tap_port.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.hpp"
#include "device/net/net_backend.hpp"

namespace vireo::device::net {

namespace {

std::string sys_reason(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Brings the interface up (SIOCSIFFLAGS IFF_UP); returns an empty string or why it failed.
std::string set_link_up(const std::string& name) {
  proto::UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return sys_reason("socket");
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.c_str(), name.size());
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) < 0) return sys_reason("SIOCGIFFLAGS");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) < 0) return sys_reason("SIOCSIFFLAGS");
  return {};
}

}  // namespace

Status TapPort::attach(NetBackend& dev) {
  dev_ = &dev;
  fds_.clear();
  scratch_.assign(dev.pairs(), std::vector<std::byte>(dev.max_frame() + 1024));
  for (std::uint16_t i = 0; i < dev.pairs(); ++i) {
    proto::UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd)
      return error("cannot open /dev/net/tun for tap '" + name_ + "' (" + sys_reason("open") +
                   "); load the tun module and run as root or with CAP_NET_ADMIN");
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, name_.c_str(), name_.size());
    ifr.ifr_flags = static_cast<short>(IFF_TAP | IFF_NO_PI | (dev.pairs() > 1 ? IFF_MULTI_QUEUE : 0));
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0)
      return error("cannot attach to tap '" + name_ + "' (" + sys_reason("TUNSETIFF") +
                   "); is the name used by a non-tap interface, or a tap without multi_queue?");
    fds_.push_back(std::move(fd));
  }
  if (std::string why = set_link_up(name_); !why.empty())
    VIREO_LOG_WARN("tap %s: could not set the link up (%s); run 'ip link set %s up'",
                   name_.c_str(), why.c_str(), name_.c_str());
  return {};
}

std::size_t TapPort::transmit(std::uint16_t pair, std::span<const PacketView> pkts) {
  constexpr std::uint32_t kMaxIov = 64;
  const int fd = fds_[pair].get();
  iovec iov[kMaxIov];
  for (const PacketView& p : pkts) {
    int n = 0;
    if (p.nsegs <= kMaxIov) {  // zero copy: the kernel reads guest memory directly
      std::uint32_t skip = p.skip, left = p.len;
      for (std::uint32_t k = 0; k < p.nsegs && left != 0; ++k) {
        const std::uint32_t piece = std::min(left, p.segs[k].len - skip);
        iov[n++] = iovec{p.segs[k].data + skip, piece};
        left -= piece;
        skip = 0;
      }
    } else {  // a very fragmented chain: one linearising copy
      std::vector<std::byte>& buf = scratch_[pair];
      iov[n++] = iovec{buf.data(), copy_out(p, 0, buf.data(), buf.size())};
    }
    if (::writev(fd, iov, n) < 0) {
      tx_dropped_.fetch_add(1, std::memory_order_relaxed);
      if (errno != EAGAIN && errno != ENOBUFS && !warned_.exchange(true))
        VIREO_LOG_WARN("tap %s: write failed (%s); dropping frames (logged once)", name_.c_str(),
                       std::strerror(errno));
    }
  }
  return pkts.size();  // a TAP drops what it cannot queue: so do we
}

}  // namespace vireo::device::net
