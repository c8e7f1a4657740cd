// Frontend: ring areas, per-queue vhost-user setup (NUM, BASE, ADDR, KICK, CALL, ENABLE),
// notifications, and where a ring resumes after a reconnect.
#include <poll.h>

#include "base/log.hpp"
#include "driver/frontend.hpp"

namespace vireo::driver {
namespace {

using proto::FrontendReq;

Result<Area> alloc(GuestMemory& mem, std::size_t len, std::size_t align) {
  auto a = mem.alloc(len, align);
  if (!a) return error(Error::Kind::resource, a.error());
  return *a;
}

std::uint64_t uva(const Area& a) { return reinterpret_cast<std::uint64_t>(a.host); }

}  // namespace

// Ring areas (§2.7 split: desc 16, avail 2, used 4; §2.8 packed: ring 16, event structures 4),
// each on its own cache line, plus the two eventfds, for every queue. The rings are configured
// once here; a reconnect keeps them.
Result<void> Frontend::create_queues() {
  const std::uint16_t n = options_.queue_size;
  const bool is_packed = options_.layout == Layout::packed;
  if (is_packed ? !vring::valid_packed_size(n) : !vring::valid_split_size(n))
    return error(Error::Kind::unsupported, "queue size " + std::to_string(n) +
                                               (is_packed ? " is not 1..32768" : " is not a power of two up to 32768"));
  queues_.resize(options_.num_queues);
  for (Queue& q : queues_) {
    auto desc = alloc(mem_, vring::split_desc_bytes(n), 4096);
    auto drv = alloc(mem_, is_packed ? sizeof(vring::EventSuppress) : vring::split_avail_bytes(n), 64);
    auto dev = alloc(mem_, is_packed ? sizeof(vring::EventSuppress) : vring::split_used_bytes(n), 64);
    if (!desc || !drv || !dev) return Unexpected(!desc ? desc.error() : !drv ? drv.error() : dev.error());
    q.desc = *desc;
    q.driver_area = *drv;
    q.device_area = *dev;
    auto kick = proto::EventFd::create(/*nonblocking=*/true);
    auto call = proto::EventFd::create(/*nonblocking=*/true);
    if (!kick || !call)
      return error(Error::Kind::resource, "cannot create eventfd: " + (!kick ? kick.error() : call.error()).message());
    q.kick = std::move(*kick);
    q.call = std::move(*call);
  }
  return {};
}

// Rings are configured with the negotiated features on the first start only (configure() zeroes
// them); on a reconnect they keep their contents and resume at `base`.
Result<void> Frontend::start_queue(std::uint16_t i, const vring::RingState& base) {
  Queue& q = queues_[i];
  const bool is_packed = options_.layout == Layout::packed;
  if (vring::process_burst(q.ring, [](const auto& r) { return r.size(); }) == 0) {
    vring::DriverConfig cfg{.size = options_.queue_size, .features = features_, .desc = q.desc.host,
                            .avail = q.driver_area.host, .used = q.device_area.host};
    if (auto ok = vring::configure_driver_queue(q.ring, cfg); !ok)
      return error(Error::Kind::resource, std::string("ring setup: ") + vring::to_string(ok.error()));
  }
  const proto::VringState num{i, options_.queue_size};
  if (auto ok = send(FrontendReq::set_vring_num, proto::as_bytes(num)); !ok) return ok;
  const proto::VringBase b{base.avail.idx, base.avail.wrap, base.used.idx, base.used.wrap};
  const proto::VringState st{i, proto::encode_vring_base(b, is_packed)};
  if (auto ok = send(FrontendReq::set_vring_base, proto::as_bytes(st)); !ok) return ok;
  // SET_VRING_ADDR carries front-end virtual addresses (rst "vring address description"); for a
  // packed ring desc/avail/used name the descriptor ring and the driver / device event areas.
  const proto::VringAddr addr{i, 0, uva(q.desc), uva(q.device_area), uva(q.driver_area), q.device_area.gpa};
  if (auto ok = send(FrontendReq::set_vring_addr, proto::as_bytes(addr)); !ok) return ok;
  const int kick_fd = q.kick.fd();
  const int call_fd = q.call.fd();
  const proto::U64 idx{proto::encode_vring_file(static_cast<std::uint8_t>(i), false)};
  // CALL before KICK: the kick fd starts the ring (rst "Ring states"), and a back-end that finds
  // work at once after a reconnect must already have somewhere to signal completions
  // (libvhost-user in qemu-storage-daemon panics writing an unset call fd otherwise).
  if (auto ok = send(FrontendReq::set_vring_call, proto::as_bytes(idx), std::span<const int>(&call_fd, 1)); !ok)
    return ok;
  if (auto ok = send(FrontendReq::set_vring_kick, proto::as_bytes(idx), std::span<const int>(&kick_fd, 1)); !ok)
    return ok;
  if (vring::has_feature(features_, vring::kFProtocolFeatures)) {
    // rst "Ring states": with VHOST_USER_F_PROTOCOL_FEATURES rings start disabled.
    const proto::VringState en{i, 1};
    if (auto ok = send(FrontendReq::set_vring_enable, proto::as_bytes(en)); !ok) return ok;
  }
  return {};
}

Result<vring::RingState> Frontend::resume_state(std::uint16_t i) {
  auto r = vring::process_burst(queues_[i].ring, [](auto& ring) { return ring.resume_state(); });
  if (!r)
    return error(Error::Kind::device, "queue " + std::to_string(i) + " cannot resume: the old back-end left it " +
                                          vring::to_string(r.error()));
  return *r;
}

void Frontend::kick(std::uint16_t i) {
  if (auto ok = queues_[i].kick.signal(); !ok)
    VIREO_LOG_WARN("kick of queue %u failed: %s", i, ok.error().message().c_str());
}

Result<bool> Frontend::wait_call(std::span<const std::uint16_t> queues, int timeout_ms) {
  std::array<pollfd, 65> fds{};
  std::size_t n = 0;
  for (std::uint16_t i : queues) {
    if (n + 1 >= fds.size()) break;
    fds[n++] = pollfd{queues_[i].call.fd(), POLLIN, 0};
  }
  fds[n++] = pollfd{conn_.stream().valid() ? conn_.fd() : -1, POLLIN, 0};
  int r = ::poll(fds.data(), n, timeout_ms);
  if (r < 0 && errno != EINTR) return error(Error::Kind::resource, "poll on call eventfds failed");
  if (r <= 0) return false;
  for (std::size_t k = 0; k + 1 < n; ++k) {
    if (fds[k].revents != 0) (void)queues_[queues[k]].call.drain();
  }
  return true;
}

}  // namespace vireo::driver
