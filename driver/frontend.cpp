// Frontend: connecting (client or server mode) and the negotiation replayed on every connect.
#include <poll.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "base/log.hpp"
#include "driver/frontend.hpp"

namespace vireo::driver {
namespace {

using proto::FrontendReq;
using vring::feature_bit;
using vring::has_feature;

Error from_proto(const proto::ProtoError& e, proto::FrontendReq req) {
  const std::string what = std::string(proto::to_string(req)) + ": " + e.message();
  if (e.should_reconnect()) return Error{Error::Kind::disconnected, "back-end connection lost at " + what};
  if (e.kind == proto::ProtoError::Kind::rejected) return Error{Error::Kind::rejected, what};
  return Error{Error::Kind::protocol, what};
}

}  // namespace

std::uint64_t wanted_features(const FrontendOptions& o) {
  std::uint64_t f = o.features | feature_bit(vring::kFVersion1) |
                    feature_bit(vring::kFProtocolFeatures);
  if (o.event_idx) f |= feature_bit(vring::kFEventIdx);
  if (o.layout == Layout::packed) f |= feature_bit(vring::kFRingPacked);
  if (o.in_order) f |= feature_bit(vring::kFInOrder);
  return f;
}

Result<std::uint64_t> choose_features(const FrontendOptions& o, std::uint64_t offered) {
  struct Need {
    bool asked;
    unsigned bit;
    const char* what;
  };
  const Need needs[] = {
      {true, vring::kFVersion1, "VIRTIO_F_VERSION_1 (a modern virtio 1.x device)"},
      {o.layout == Layout::packed, vring::kFRingPacked, "VIRTIO_F_RING_PACKED: use --layout split"},
      {o.event_idx, vring::kFEventIdx, "VIRTIO_F_EVENT_IDX: use --event-idx off"},
  };
  for (const Need& n : needs) {
    if (n.asked && !has_feature(offered, n.bit))
      return error(Error::Kind::unsupported, std::string("back-end does not offer ") + n.what);
  }
  if ((offered & o.required) != o.required)
    return error(Error::Kind::unsupported,
                 "back-end lacks required device features: offered 0x" + [&] {
                   char b[64];
                   std::snprintf(b, sizeof b, "%llx, required 0x%llx",
                                 static_cast<unsigned long long>(offered),
                                 static_cast<unsigned long long>(o.required));
                   return std::string(b);
                 }());
  return offered & wanted_features(o);
}

Frontend::~Frontend() = default;

Result<std::unique_ptr<Frontend>> Frontend::open(const FrontendOptions& options, GuestMemory& mem) {
  if (options.num_queues == 0 || options.num_queues > 256)
    return error(Error::Kind::unsupported, "queue count must be 1..256 (vhost-user vring index is 8 bits)");
  std::unique_ptr<Frontend> fe(new Frontend(options, mem));
  if (auto ok = fe->create_queues(); !ok) return Unexpected(ok.error());
  if (auto ok = fe->connect_socket(); !ok) return Unexpected(ok.error());
  if (auto ok = fe->negotiate(false); !ok) return Unexpected(ok.error());
  return fe;
}

// Client mode: retries connect() until the back-end's socket accepts or the timeout passes.
// Server mode: listens (once) and accepts one back-end within the timeout.
Result<void> Frontend::connect_socket() {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(options_.connect_timeout_ms);
  if (options_.server) {
    if (!listener_) {
      auto l = proto::UnixListener::bind(options_.socket_path);
      if (!l) return error(Error::Kind::resource, "cannot listen on " + options_.socket_path + ": " + l.error().message());
      listener_.emplace(std::move(*l));
    }
    pollfd p{listener_->fd(), POLLIN, 0};
    if (::poll(&p, 1, options_.connect_timeout_ms) <= 0)
      return error(Error::Kind::disconnected, "no back-end connected to " + options_.socket_path +
                                                  " within " + std::to_string(options_.connect_timeout_ms) + " ms");
    auto s = listener_->accept();
    if (!s) return error(Error::Kind::disconnected, "accept on " + options_.socket_path + ": " + s.error().message());
    conn_ = proto::Connection(std::move(*s));
    return {};
  }
  for (;;) {
    auto s = proto::UnixStream::connect(options_.socket_path);
    if (s) {
      conn_ = proto::Connection(std::move(*s));
      return {};
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return error(Error::Kind::disconnected, "cannot connect to back-end socket " + options_.socket_path +
                                                  ": " + s.error().message() + " (is the back-end running?)");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Result<void> Frontend::send(FrontendReq req, std::span<const std::byte> payload,
                            std::span<const int> fds) {
  auto r = conn_.request(req, payload, fds, /*need_reply=*/true);
  if (!r) return Unexpected(from_proto(r.error(), req));
  return {};
}

Result<std::uint64_t> Frontend::get_u64(FrontendReq req) {
  auto r = conn_.request(req, {}, {}, false);
  if (!r) return Unexpected(from_proto(r.error(), req));
  return r->payload_as<proto::U64>().u64;
}

Result<void> Frontend::set_u64(FrontendReq req, std::uint64_t value) {
  return send(req, proto::as_bytes(proto::U64{value}));
}

// The whole negotiation. `again` (reconnect): the new back-end must accept the same features.
Result<void> Frontend::negotiate(bool again) {
  conn_.set_protocol_features(0);
  auto offered = get_u64(FrontendReq::get_features);
  if (!offered) return Unexpected(offered.error());
  auto features = choose_features(options_, *offered);
  if (!features) return Unexpected(features.error());
  if (again && *features != features_)
    return error(Error::Kind::unsupported, "restarted back-end offers different features; cannot resume");
  features_ = *features;
  protocol_ = 0;
  if (has_feature(features_, vring::kFProtocolFeatures)) {
    auto proto_offered = get_u64(FrontendReq::get_protocol_features);
    if (!proto_offered) return Unexpected(proto_offered.error());
    protocol_ = *proto_offered & kFrontendProtocolFeatures;
    if (!options_.inflight) protocol_ &= ~proto::proto_bit(proto::kProtoFInflightShmfd);
    if (auto ok = set_u64(FrontendReq::set_protocol_features, protocol_); !ok) return ok;
    conn_.set_protocol_features(protocol_);  // REPLY_ACK from here on
  }
  max_queues_ = 1;
  if (proto::has_proto(protocol_, proto::kProtoFMq)) {
    auto n = get_u64(FrontendReq::get_queue_num);
    if (!n) return Unexpected(n.error());
    max_queues_ = static_cast<std::uint16_t>(std::min<std::uint64_t>(*n, 0xffff));
  }
  if (auto ok = send(FrontendReq::set_owner, {}); !ok) return ok;
  if (auto ok = set_u64(FrontendReq::set_features, features_); !ok) return ok;
  if (auto ok = setup_inflight(again); !ok) return ok;
  if (auto ok = set_mem_table(); !ok) return ok;
  for (std::uint16_t i = 0; i < queues_.size(); ++i) {
    vring::RingState base{};  // §2.8.1: both wrap counters start at 1 (PackedCursor default)
    if (again) {
      auto r = resume_state(i);
      if (!r) return Unexpected(r.error());
      base = *r;
    }
    if (auto ok = start_queue(i, base); !ok) return ok;
  }
  VIREO_LOG_DEBUG("front-end: negotiated features 0x%llx protocol 0x%llx, %zu queues",
                  static_cast<unsigned long long>(features_), static_cast<unsigned long long>(protocol_),
                  queues_.size());
  return {};
}

// rst "Inflight I/O tracking", in QEMU's order (vhost_user_blk_start): after SET_FEATURES (the
// back-end picks the split or packed layout from them) and before any SET_VRING_*, the region is
// asked for once (GET_INFLIGHT_FD with the queue count and size) and handed to every back-end
// this front-end talks to (SET_INFLIGHT_FD), the first one included.
Result<void> Frontend::setup_inflight(bool again) {
  if (!proto::has_proto(protocol_, proto::kProtoFInflightShmfd)) {
    if (again && inflight_fd_.valid())
      VIREO_LOG_WARN("restarted back-end does not offer INFLIGHT_SHMFD: buffers the old one had "
                     "taken are not resubmitted from the inflight region");
    return {};
  }
  if (!inflight_fd_.valid()) {
    const proto::InflightDesc want{0, 0, static_cast<std::uint16_t>(queues_.size()), options_.queue_size, {0, 0}};
    auto r = conn_.request(FrontendReq::get_inflight_fd, proto::as_bytes(want), {}, false);
    if (!r) return Unexpected(from_proto(r.error(), FrontendReq::get_inflight_fd));
    const auto got = r->payload_as<proto::InflightDesc>();
    if (r->fds.size() != 1 || got.mmap_size == 0)
      return error(Error::Kind::protocol, "back-end answered GET_INFLIGHT_FD without a region (" +
                                              std::to_string(r->fds.size()) + " fds, " +
                                              std::to_string(got.mmap_size) + " bytes)");
    inflight_desc_ = got;
    inflight_desc_.num_queues = want.num_queues;  // rst: the reply's own fields are size and offset
    inflight_desc_.queue_size = want.queue_size;
    inflight_fd_ = std::move(r->fds[0]);
  }
  const int fd = inflight_fd_.get();
  return send(FrontendReq::set_inflight_fd, proto::as_bytes(inflight_desc_), std::span<const int>(&fd, 1));
}

Result<void> Frontend::set_mem_table() {
  proto::MemoryTable table{};
  table.nregions = 1;
  table.regions[0] = mem_.region();
  const int fd = mem_.fd();
  return send(FrontendReq::set_mem_table,
              proto::as_bytes(table).first(proto::kMemoryTableHeaderSize + sizeof(proto::MemoryRegion)),
              std::span<const int>(&fd, 1));
}

Result<std::vector<std::byte>> Frontend::get_config(std::uint32_t offset, std::uint32_t size) {
  if (!proto::has_proto(protocol_, proto::kProtoFConfig))
    return error(Error::Kind::unsupported, "back-end does not offer the CONFIG protocol feature");
  if (size == 0 || size > proto::kMaxConfigSize)
    return error(Error::Kind::unsupported, "config read size must be 1..256");
  std::array<std::byte, sizeof(proto::ConfigHeader) + proto::kMaxConfigSize> buf{};
  const proto::ConfigHeader hdr{offset, size, proto::kConfigFlagWritable};
  std::memcpy(buf.data(), &hdr, sizeof hdr);
  auto r = conn_.request(FrontendReq::get_config,
                         std::span<const std::byte>(buf.data(), sizeof hdr + size), {}, false);
  if (!r) return Unexpected(from_proto(r.error(), FrontendReq::get_config));
  const auto got = r->payload_as<proto::ConfigHeader>();
  if (r->hdr.size != sizeof hdr + size || got.size != size)  // rst: reply size equals the request
    return error(Error::Kind::protocol, "back-end answered GET_CONFIG with " +
                                            std::to_string(r->hdr.size) + " bytes for a " +
                                            std::to_string(size) + "-byte read (does it support config space?)");
  auto bytes = r->payload_bytes().subspan(sizeof hdr, size);
  return std::vector<std::byte>(bytes.begin(), bytes.end());
}

bool Frontend::check_connection() {
  if (conn_.broken() || !conn_.stream().valid()) return false;
  pollfd p{conn_.fd(), POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return true;
  // The back-end never speaks first on this socket: readable means EOF (or a protocol breach).
  auto msg = conn_.recv();
  if (msg) {
    VIREO_LOG_WARN("back-end sent an unsolicited request %u on the front-end socket; dropping the connection",
                   msg->hdr.request);
  } else {
    VIREO_LOG_WARN("back-end connection lost: %s", msg.error().message().c_str());
  }
  conn_ = proto::Connection();
  return false;
}

// Retries until connect_timeout_ms: a restarting back-end may accept and then drop a connection
// while it is still setting up (seen with qemu-storage-daemon).
Result<void> Frontend::reconnect() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.connect_timeout_ms);
  for (;;) {
    conn_ = proto::Connection();
    Result<void> ok = connect_socket();
    if (ok) ok = negotiate(true);
    if (ok) break;
    conn_ = proto::Connection();
    if (ok.error().kind != Error::Kind::disconnected || std::chrono::steady_clock::now() >= deadline) return ok;
    VIREO_LOG_INFO("front-end: reconnect attempt failed (%s); retrying", ok.error().reason.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ++reconnects_;
  for (std::uint16_t i = 0; i < queues_.size(); ++i) kick(i);  // rst "Reconnection": resume I/O
  VIREO_LOG_INFO("front-end: reconnected to %s (reconnect #%llu)", options_.socket_path.c_str(),
                 static_cast<unsigned long long>(reconnects_));
  return {};
}

}  // namespace vireo::driver
