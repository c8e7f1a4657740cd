// FrontendFake, BackendThread, DaemonThread.
#include "frontend_fake.hpp"

#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>

#include "vring/features.hpp"
#include "vring/layout.hpp"

namespace vireo::test {

using proto::FrontendReq;

BackendThread::BackendThread(device::Backend& backend, device::DaemonOptions options) {
  auto pair = proto::UnixStream::socketpair();
  if (!pair) return;
  frontend_ = std::move(pair->first);
  thread_ = std::thread([this, &backend, options, s = std::move(pair->second)]() mutable {
    device::serve_connection(backend, options, std::move(s), &stop_);
    finished_.store(true, std::memory_order_release);  // pairs with the acquire in finished()
  });
}

BackendThread::~BackendThread() {
  stop_.store(true, std::memory_order_release);  // pairs with the acquire in the daemon loop
  if (thread_.joinable()) thread_.join();
}

bool BackendThread::wait_finished(int timeout_ms) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!finished()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

DaemonThread::DaemonThread(device::Backend& backend, device::DaemonOptions options)
    : thread_([this, &backend, options] { rc_ = device::run_daemon(backend, options, &stop_); }) {}

DaemonThread::~DaemonThread() { (void)join(); }

int DaemonThread::join() {
  stop_.store(true, std::memory_order_release);  // pairs with the acquire in the daemon loop
  if (thread_.joinable()) thread_.join();
  return rc_;
}

FrontendFake::FrontendFake(proto::UnixStream stream, std::size_t ram_bytes, std::size_t guard_bytes)
    : conn_(std::move(stream)), ram_bytes_(ram_bytes), guard_(guard_bytes) {
  conn_.set_timeout_ms(5000);
  const std::size_t total = ram_bytes + 2 * guard_bytes;
  auto mem = proto::MemFd::create("vireo-test-guest", total);
  if (!mem) return;
  ram_ = std::move(*mem);
  auto map = proto::Mapping::map(ram_.fd(), total, 0, /*writable=*/true);
  if (!map) return;
  map_ = std::move(*map);
  std::memset(map_.data(), static_cast<int>(kCanary), guard_);
  std::memset(map_.data() + guard_ + ram_bytes_, static_cast<int>(kCanary), guard_);
}

bool FrontendFake::canaries_intact() const {
  const std::byte* tail = map_.data() + guard_ + ram_bytes_;
  for (std::size_t i = 0; i < guard_; ++i)
    if (map_.data()[i] != kCanary || tail[i] != kCanary) return false;
  return true;
}

Expected<proto::Message, proto::ProtoError> FrontendFake::request(FrontendReq req,
                                                                  std::span<const std::byte> payload,
                                                                  std::span<const int> fds,
                                                                  bool need_reply) {
  return conn_.request(req, payload, fds, need_reply);
}

bool FrontendFake::send_raw(std::uint32_t request, std::uint32_t flags,
                            std::span<const std::byte> payload, std::span<const int> fds) {
  // Built by hand so the version bits and size field are the test's choice.
  std::vector<std::byte> buf(sizeof(proto::MsgHeader) + payload.size());
  proto::MsgHeader h{request, flags, static_cast<std::uint32_t>(payload.size())};
  std::memcpy(buf.data(), &h, sizeof h);
  if (!payload.empty()) std::memcpy(buf.data() + sizeof h, payload.data(), payload.size());
  auto n = conn_.stream().send_msg(buf, fds);
  return n && *n == buf.size();
}

std::optional<std::uint64_t> FrontendFake::get_u64(FrontendReq req) {
  auto r = request(req);
  if (!r) return std::nullopt;
  return r->payload_as<proto::U64>().u64;
}

bool FrontendFake::negotiate(std::uint64_t features, std::uint64_t protocol_features) {
  auto offered = get_u64(FrontendReq::get_features);
  if (!offered) return false;
  if (!request(FrontendReq::set_owner)) return false;
  if (vring::has_feature(*offered, vring::kFProtocolFeatures) &&
      vring::has_feature(features, vring::kFProtocolFeatures)) {
    auto pf = get_u64(FrontendReq::get_protocol_features);
    if (!pf) return false;
    const std::uint64_t want = protocol_features & *pf;
    if (!request(FrontendReq::set_protocol_features, proto::as_bytes(proto::U64{want}))) return false;
    conn_.set_protocol_features(want);
  }
  features_ = features;
  return static_cast<bool>(request(FrontendReq::set_features, proto::as_bytes(proto::U64{features})));
}

proto::MemoryRegion FrontendFake::ram_region() const {
  return proto::MemoryRegion{kGpaBase, ram_bytes_, reinterpret_cast<std::uint64_t>(map_.data() + guard_),
                             guard_};
}

bool FrontendFake::set_mem_table() {
  proto::MemoryTable t{};
  t.nregions = 1;
  t.regions[0] = ram_region();
  const int fd = ram_.fd();
  auto bytes = std::span(reinterpret_cast<const std::byte*>(&t), proto::kMemoryTableHeaderSize + sizeof(proto::MemoryRegion));
  return static_cast<bool>(request(FrontendReq::set_mem_table, bytes, std::span(&fd, 1)));
}

std::uint64_t FrontendFake::alloc(std::size_t len, std::size_t align) {
  next_ = (next_ + align - 1) / align * align;
  const std::uint64_t gpa = next_;
  next_ += len;
  std::memset(host(gpa), 0, len);
  return gpa;
}

FrontendFake::Queue& FrontendFake::make_queue(std::uint16_t index, std::uint16_t size) {
  if (queues_.size() <= index) queues_.resize(index + 1u);
  auto q = std::make_unique<Queue>();
  q->size = size;
  const bool packed = vring::has_feature(features_, vring::kFRingPacked);
  q->desc_gpa = alloc(packed ? vring::packed_desc_bytes(size) : vring::split_desc_bytes(size), 4096);
  q->avail_gpa = alloc(packed ? 4 : vring::split_avail_bytes(size), 64);
  q->used_gpa = alloc(packed ? 4 : vring::split_used_bytes(size), 64);
  vring::DriverConfig cfg{size, features_, host(q->desc_gpa), host(q->avail_gpa), host(q->used_gpa)};
  (void)vring::configure_driver_queue(q->ring, cfg);
  q->kick = std::move(*proto::EventFd::create(true));
  q->call = std::move(*proto::EventFd::create(true));
  queues_[index] = std::move(q);
  return *queues_[index];
}

bool FrontendFake::send_vring_addr(std::uint16_t index) {
  Queue& q = queue(index);
  proto::VringAddr a{index, 0, uva(q.desc_gpa), uva(q.used_gpa), uva(q.avail_gpa), q.used_gpa};
  if (vring::has_feature(features_, vring::kFRingPacked)) a.log_guest_addr = q.desc_gpa;
  return static_cast<bool>(request(FrontendReq::set_vring_addr, proto::as_bytes(a)));
}

bool FrontendFake::send_vring_fd(FrontendReq req, std::uint16_t index, int fd) {
  const std::uint64_t v = proto::encode_vring_file(static_cast<std::uint8_t>(index), fd < 0);
  if (fd < 0) return static_cast<bool>(request(req, proto::as_bytes(proto::U64{v})));
  return static_cast<bool>(request(req, proto::as_bytes(proto::U64{v}), std::span(&fd, 1)));
}

bool FrontendFake::enable(std::uint16_t index, bool on) {
  proto::VringState st{index, on ? 1u : 0u};
  return static_cast<bool>(request(FrontendReq::set_vring_enable, proto::as_bytes(st)));
}

bool FrontendFake::setup_queue(std::uint16_t index, std::uint16_t size, bool on,
                               std::optional<std::uint32_t> base_opt) {
  Queue& q = make_queue(index, size);
  const bool packed = vring::has_feature(features_, vring::kFRingPacked);
  const std::uint32_t base =
      base_opt ? *base_opt : proto::encode_vring_base(proto::VringBase{0, true, 0, true}, packed);
  if (!request(FrontendReq::set_vring_num, proto::as_bytes(proto::VringState{index, size}))) return false;
  if (!request(FrontendReq::set_vring_base, proto::as_bytes(proto::VringState{index, base}))) return false;
  if (!send_vring_addr(index)) return false;
  if (!send_vring_fd(FrontendReq::set_vring_call, index, q.call.fd())) return false;
  if (!send_vring_fd(FrontendReq::set_vring_kick, index, q.kick.fd())) return false;
  if (on && vring::has_feature(features_, vring::kFProtocolFeatures)) return enable(index, true);
  return true;
}

std::optional<std::uint32_t> FrontendFake::get_vring_base(std::uint16_t index) {
  auto r = request(FrontendReq::get_vring_base, proto::as_bytes(proto::VringState{index, 0}));
  if (!r) return std::nullopt;
  return r->payload_as<proto::VringState>().num;
}

std::uint64_t FrontendFake::add_writable(std::uint16_t index, std::uint32_t len) {
  Queue& q = queue(index);
  const std::uint64_t gpa = alloc(len, 64);
  vring::DriverBuffer b{gpa, len};
  const std::uint64_t token = q.next_token++;
  vring::process_burst(q.ring, [&](auto& ring) {
    (void)ring.add(std::span<const vring::DriverBuffer>{}, std::span(&b, 1), token);
  });
  return gpa;
}

bool FrontendFake::kick(std::uint16_t index, bool force) {
  Queue& q = queue(index);
  const bool need = vring::process_burst(q.ring, [](auto& ring) { return ring.kick_prepare(); });
  if (need || force) (void)q.kick.signal();
  return need || force;
}

std::optional<vring::DriverUsed> FrontendFake::wait_used(std::uint16_t index, int timeout_ms) {
  Queue& q = queue(index);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    vring::DriverUsed u{};
    auto got = vring::process_burst(q.ring, [&](auto& ring) { return ring.get_used(u); });
    if (got && *got) return u;
    if (!got || std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

bool FrontendFake::wait_closed(int timeout_ms) {
  pollfd p{conn_.fd(), POLLIN, 0};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (::poll(&p, 1, 50) <= 0) continue;
    char c;
    if (::recv(conn_.fd(), &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0) return true;
    auto m = conn_.recv();  // a reply that was still in flight: skip it
    if (!m) return m.error().kind == proto::ProtoError::Kind::closed;
  }
  return false;
}

int count_open_fds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;  // the DIR's own fd
}

}  // namespace vireo::test
