// Session: construction, validation + dispatch, features, ownership, status and reset.
#include "device/session.hpp"

#include <array>
#include <cinttypes>

#include "base/log.hpp"
#include "proto/message_table.hpp"
#include "vring/features.hpp"

namespace vireo::device {

using proto::FrontendReq;

namespace {
std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}
}  // namespace

using proto::has_proto;
using proto::proto_bit;

Session::Session(Backend& backend, proto::Connection& conn, BackendChannel& channel,
                 const SessionOptions& options)
    : backend_(backend), info_(backend.info()), conn_(conn), channel_(channel), options_(options),
      vrings_(info_.num_queues) {
  if (options.inline_data_plane) {
    workers_.push_back(std::make_unique<Worker>(backend_, options.busy_poll, 0, Worker::kInline));
    workers_.back()->set_poll_after_kick(options.poll_after_kick);
    return;
  }
  const unsigned n = std::max(1u, std::min<unsigned>(options.workers, info_.num_queues));
  for (unsigned i = 0; i < n; ++i)
    workers_.push_back(std::make_unique<Worker>(backend_, options.busy_poll, i));
}

Session::~Session() {
  reset_rings();
  workers_.clear();  // joins the threads
  channel_.detach();
  backend_.reset();
}

vireo::Unexpected<Failure> Session::fail(std::string reason, bool close) {
  return vireo::Unexpected<Failure>(Failure{std::move(reason), close});
}

bool Session::packed() const { return vring::has_feature(features_, vring::kFRingPacked); }

std::uint64_t Session::transport_features() {
  using namespace vring;
  return feature_bit(kFVersion1) | feature_bit(kFIndirectDesc) | feature_bit(kFEventIdx) |
         feature_bit(kFRingPacked) | feature_bit(kFProtocolFeatures) | feature_bit(kFLogAll);
}

std::uint64_t Session::offered_features() const {
  // §2.7.9 / §2.8.23: VIRTIO_F_IN_ORDER only from a device that uses buffers in the order it
  // popped them.
  const std::uint64_t in_order = info_.in_order ? vring::feature_bit(vring::kFInOrder) : 0;
  return ((transport_features() | in_order) & ~info_.masked_features) | info_.device_features;
}

std::uint64_t Session::offered_protocol_features() const {
  using namespace proto;
  std::uint64_t f = proto_bit(kProtoFMq) | proto_bit(kProtoFLogShmfd) | proto_bit(kProtoFReplyAck) |
                    proto_bit(kProtoFBackendReq) | proto_bit(kProtoFResetDevice) |
                    proto_bit(kProtoFInflightShmfd) | proto_bit(kProtoFConfigureMemSlots) |
                    proto_bit(kProtoFStatus);
  if (info_.config_size > 0) f |= proto_bit(kProtoFConfig);
  return f | info_.protocol_features;
}

// ---- dispatch ----

const Session::Handler* Session::handler_table() {
  static const std::array<Handler, proto::kFrontendReqMax + 1> table = [] {
    std::array<Handler, proto::kFrontendReqMax + 1> t{};
    t.fill(&Session::on_unsupported);
    auto set = [&t](FrontendReq r, Handler h) { t[static_cast<std::size_t>(r)] = h; };
    set(FrontendReq::get_features, &Session::on_get_features);
    set(FrontendReq::set_features, &Session::on_set_features);
    set(FrontendReq::set_owner, &Session::on_set_owner);
    set(FrontendReq::reset_owner, &Session::on_reset_owner);
    set(FrontendReq::set_mem_table, &Session::on_set_mem_table);
    set(FrontendReq::set_log_base, &Session::on_set_log_base);
    set(FrontendReq::set_log_fd, &Session::on_set_log_fd);
    set(FrontendReq::set_vring_num, &Session::on_set_vring_num);
    set(FrontendReq::set_vring_addr, &Session::on_set_vring_addr);
    set(FrontendReq::set_vring_base, &Session::on_set_vring_base);
    set(FrontendReq::get_vring_base, &Session::on_get_vring_base);
    set(FrontendReq::set_vring_kick, &Session::on_set_vring_kick);
    set(FrontendReq::set_vring_call, &Session::on_set_vring_call);
    set(FrontendReq::set_vring_err, &Session::on_set_vring_err);
    set(FrontendReq::get_protocol_features, &Session::on_get_protocol_features);
    set(FrontendReq::set_protocol_features, &Session::on_set_protocol_features);
    set(FrontendReq::get_queue_num, &Session::on_get_queue_num);
    set(FrontendReq::set_vring_enable, &Session::on_set_vring_enable);
    set(FrontendReq::set_backend_req_fd, &Session::on_set_backend_req_fd);
    set(FrontendReq::get_config, &Session::on_get_config);
    set(FrontendReq::set_config, &Session::on_set_config);
    set(FrontendReq::get_inflight_fd, &Session::on_get_inflight_fd);
    set(FrontendReq::set_inflight_fd, &Session::on_set_inflight_fd);
    set(FrontendReq::reset_device, &Session::on_reset_device);
    set(FrontendReq::get_max_mem_slots, &Session::on_get_max_mem_slots);
    set(FrontendReq::add_mem_reg, &Session::on_add_mem_reg);
    set(FrontendReq::rem_mem_reg, &Session::on_rem_mem_reg);
    set(FrontendReq::set_status, &Session::on_set_status);
    set(FrontendReq::get_status, &Session::on_get_status);
    return t;
  }();
  return table.data();
}

bool Session::handle(proto::Message& msg) {
  auto spec = proto::validate(msg, protocol_features_);
  if (!spec) {
    // A known request whose sender waits for a reply body cannot be answered with an ack.
    const proto::MessageSpec* known = proto::find_spec(static_cast<FrontendReq>(msg.hdr.request));
    const bool close = spec.error().close_connection ||
                       (known != nullptr && proto::reply_kind(*known, msg.hdr.flags, protocol_features_) ==
                                                proto::ReplyKind::body);
    const bool ack = !close && proto::ack_owed(msg.hdr, protocol_features_);
    VIREO_LOG_WARN("rejecting front-end message: %s; %s", spec.error().reason.c_str(),
                   close ? "closing connection" : ack ? "replying failure" : "ignoring it");
    if (close) return false;
    if (ack) return static_cast<bool>(conn_.send_ack(msg.hdr, 1));
    return true;  // msg and its fds are dropped (closed) by the caller
  }
  const proto::ReplyKind kind = proto::reply_kind(**spec, msg.hdr.flags, protocol_features_);
  VIREO_LOG_DEBUG("front-end: %s", std::string((*spec)->name).c_str());
  const Outcome out = (this->*handler_table()[msg.hdr.request])(msg);
  return finish(msg, out, kind);
}

// Acks (REPLY_ACK) and failure policy: a failed request whose sender waits for a reply body, or
// whose failure leaves the session unusable, closes the connection (rst "REPLY_ACK").
bool Session::finish(const proto::Message& msg, const Outcome& out, proto::ReplyKind kind) {
  if (out) {
    if (kind == proto::ReplyKind::ack) return static_cast<bool>(conn_.send_ack(msg.hdr, 0));
    return true;
  }
  const bool close = out.error().close || kind == proto::ReplyKind::body;
  const bool nack = !close && kind == proto::ReplyKind::ack;
  VIREO_LOG_WARN("%s; %s", out.error().reason.c_str(),
                 close ? "closing connection" : nack ? "replying failure" : "ignoring it");
  if (close) return false;
  if (nack) return static_cast<bool>(conn_.send_ack(msg.hdr, 1));
  return true;
}

Outcome Session::reply_u64(const proto::Message& m, std::uint64_t v) {
  if (auto ok = conn_.send_reply(m.hdr, proto::as_bytes(proto::U64{v})); !ok)
    return fail("cannot send the reply: " + ok.error().message());
  return {};
}

Outcome Session::on_unsupported(proto::Message& m) {
  return fail("front-end sent " +
                  std::string(proto::to_string(static_cast<FrontendReq>(m.hdr.request))) +
                  ", which this back-end does not support",
              false);
}

// ---- features ----

Outcome Session::on_get_features(proto::Message& m) { return reply_u64(m, offered_features()); }

Outcome Session::on_set_features(proto::Message& m) {
  const std::uint64_t f = m.payload_as<proto::U64>().u64;
  if (f & ~offered_features())
    return fail("front-end sent SET_FEATURES " + hex(f) + " with bits the back-end did not offer (" +
                hex(f & ~offered_features()) + ")", false);
  bool any_started = false;
  for (const VringSlot& s : vrings_) any_started = any_started || s.started;
  if (any_started && (f ^ features_) & vring::feature_bit(vring::kFRingPacked))
    return fail("front-end sent SET_FEATURES changing VIRTIO_F_RING_PACKED while rings are started");
  if (auto ok = backend_.set_features(f); !ok)
    return fail("device refused features: " + ok.error(), false);
  if (f != features_)
    VIREO_LOG_INFO("front-end acked features %s (offered %s)", hex(f).c_str(), hex(offered_features()).c_str());
  Quiesce q(*this);
  features_ = f;
  features_set_ = true;
  // rst "Ring states": without VHOST_USER_F_PROTOCOL_FEATURES rings are enabled immediately.
  if (!vring::has_feature(f, vring::kFProtocolFeatures))
    for (VringSlot& s : vrings_) set_enabled(s, true);
  for (VringSlot& s : vrings_) attach_log(s);  // VHOST_F_LOG_ALL toggles dirty logging
  return {};
}

Outcome Session::on_get_protocol_features(proto::Message& m) {
  return reply_u64(m, offered_protocol_features());
}

Outcome Session::on_set_protocol_features(proto::Message& m) {
  const std::uint64_t f = m.payload_as<proto::U64>().u64;
  if (f & ~offered_protocol_features())
    return fail("front-end sent SET_PROTOCOL_FEATURES " + hex(f) +
                " with features the back-end did not offer (" + hex(f & ~offered_protocol_features()) + ")", false);
  // rst INBAND_NOTIFICATIONS is not offered, so its BACKEND_REQ + REPLY_ACK rule cannot apply.
  protocol_features_ = f;
  protocol_features_set_ = true;
  conn_.set_protocol_features(f);
  return {};
}

Outcome Session::on_get_queue_num(proto::Message& m) { return reply_u64(m, info_.num_queues); }

// ---- ownership, reset, status ----

Outcome Session::on_set_owner(proto::Message&) {
  owner_ = true;
  return {};
}

// rst RESET_OWNER: deprecated; "disable all rings" like libvhost-user.
Outcome Session::on_reset_owner(proto::Message&) {
  reset_rings();
  features_ = 0;
  features_set_ = false;
  backend_.reset();
  return {};
}

// rst RESET_DEVICE: "disable all rings and reset the internal device state"; ownership kept.
Outcome Session::on_reset_device(proto::Message&) {
  reset_rings();
  features_ = 0;
  features_set_ = false;
  status_ = 0;
  backend_.reset();
  return {};
}

Outcome Session::on_set_status(proto::Message& m) {
  status_ = static_cast<std::uint8_t>(m.payload_as<proto::U64>().u64 & 0xff);
  return {};
}

Outcome Session::on_get_status(proto::Message& m) { return reply_u64(m, status_); }

// Stops every started ring and forgets all ring state (fds closed).
void Session::reset_rings() {
  Quiesce q(*this);
  for (VringSlot& s : vrings_) {
    if (s.started) stop_ring(s);
    s = VringSlot{};
  }
}

// ---- workers ----

Session::Quiesce::Quiesce(Session& s) : s_(s) {
  for (auto& w : s_.workers_) w->pause();
}

Session::Quiesce::~Quiesce() {
  s_.refresh_workers();
  for (auto& w : s_.workers_) w->resume();
}

void Session::refresh_workers() {
  std::vector<std::vector<WorkItem>> items(workers_.size());
  for (std::size_t i = 0; i < vrings_.size(); ++i) {
    VringSlot& s = vrings_[i];
    if (!s.started || !s.vq) continue;
    items[i % workers_.size()].push_back(WorkItem{s.vq.get(), s.kick.get(), s.process_now});
    s.process_now = false;
  }
  for (std::size_t w = 0; w < workers_.size(); ++w) workers_[w]->set_items(std::move(items[w]));
}

void Session::poll_data_plane() {
  if (options_.inline_data_plane) workers_[0]->poll_once();
}

const QueueStats* Session::queue_stats(std::uint16_t index) const {
  if (index >= vrings_.size() || !vrings_[index].vq) return nullptr;
  return &vrings_[index].vq->stats();
}

void Session::print_stats(std::FILE* out) const {
  // What a completed chain is, in the device's words (virtio §5.1 packets, §5.2 requests).
  const char* what = info_.device_id == 1 ? "packets" : info_.device_id == 2 ? "requests" : "buffers";
  bool any = false;
  for (std::size_t i = 0; i < vrings_.size(); ++i) {
    const VringSlot& s = vrings_[i];
    if (!s.vq) continue;
    any = true;
    QueueStats& st = s.vq->stats();
    std::fprintf(out, "%s queue %zu: %s %" PRIu64 " bytes %" PRIu64 " kicks %" PRIu64
                 " calls %" PRIu64 "\n", info_.name, i, what,
                 st.chains.load(std::memory_order_relaxed), st.bytes.load(std::memory_order_relaxed),
                 st.kicks.load(std::memory_order_relaxed), st.calls.load(std::memory_order_relaxed));
  }
  if (!any) std::fprintf(out, "%s: front-end connected, no queue started yet\n", info_.name);
  std::fflush(out);
}

}  // namespace vireo::device
