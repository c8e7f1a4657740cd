// Session: config space, the back-end channel and inflight regions.
#include <cstring>

#include "base/limits.hpp"
#include "base/log.hpp"
#include "device/session.hpp"
#include "vring/features.hpp"

namespace vireo::device {

// rst GET_CONFIG: the reply has the request's offset/size/flags and `size` bytes; validate()
// checked size <= 256 and the payload length. The range must also fit the device's config space.
Outcome Session::on_get_config(proto::Message& m) {
  const auto h = m.payload_as<proto::ConfigHeader>();
  std::array<std::byte, sizeof(proto::ConfigHeader) + proto::kMaxConfigSize> buf{};
  if (std::uint64_t{h.offset} + h.size > info_.config_size) {
    VIREO_LOG_WARN("front-end sent GET_CONFIG for bytes [%u, +%u) but the %s config space has %u bytes; "
                   "replying with size 0 (failure)", h.offset, h.size, info_.name, info_.config_size);
    proto::ConfigHeader err{h.offset, 0, h.flags};
    std::memcpy(buf.data(), &err, sizeof err);
    if (auto ok = conn_.send_reply(m.hdr, std::span(buf.data(), sizeof err)); !ok)
      return fail("cannot send the GET_CONFIG reply: " + ok.error().message());
    return {};
  }
  std::memcpy(buf.data(), &h, sizeof h);
  backend_.read_config(h.offset, std::span(buf.data() + sizeof h, h.size));
  if (auto ok = conn_.send_reply(m.hdr, std::span(buf.data(), sizeof h + h.size)); !ok)
    return fail("cannot send the GET_CONFIG reply: " + ok.error().message());
  return {};
}

Outcome Session::on_set_config(proto::Message& m) {
  const auto h = m.payload_as<proto::ConfigHeader>();
  if (std::uint64_t{h.offset} + h.size > info_.config_size)
    return fail("front-end sent SET_CONFIG for bytes [" + std::to_string(h.offset) + ", +" +
                    std::to_string(h.size) + ") but the config space has " +
                    std::to_string(info_.config_size) + " bytes",
                false);
  auto bytes = m.payload_bytes().subspan(sizeof h, h.size);
  if (auto ok = backend_.write_config(h.offset, bytes); !ok)
    return fail("front-end sent SET_CONFIG: " + ok.error(), false);
  return {};
}

Outcome Session::on_set_backend_req_fd(proto::Message& m) {
  channel_.attach(proto::UnixStream::adopt(std::move(m.fds[0])), protocol_features_);
  return {};
}

// rst GET_INFLIGHT_FD: allocate the region for num_queues x queue_size and hand out its fd.
Outcome Session::on_get_inflight_fd(proto::Message& m) {
  const auto d = m.payload_as<proto::InflightDesc>();
  if (d.num_queues > vrings_.size() || d.queue_size > info_.max_queue_size)
    return fail("front-end sent GET_INFLIGHT_FD for " + std::to_string(d.num_queues) + " queues of " +
                std::to_string(d.queue_size) + "; the device has " + std::to_string(vrings_.size()) +
                " queues of at most " + std::to_string(info_.max_queue_size));
  const InflightLayout layout = packed() ? InflightLayout::packed : InflightLayout::split;
  auto region = InflightRegion::create(layout, d.num_queues, d.queue_size);
  if (!region) return fail(region.error());
  const proto::InflightDesc reply = (*region)->desc();
  const int fd = (*region)->fd();
  if (auto ok = conn_.send_reply(m.hdr, proto::as_bytes(reply), std::span(&fd, 1)); !ok)
    return fail("cannot send the GET_INFLIGHT_FD reply: " + ok.error().message());
  attach_inflight(std::move(*region));
  return {};
}

void Session::attach_inflight(std::unique_ptr<InflightRegion> region) {
  Quiesce q(*this);
  inflight_ = std::move(region);
  for (std::size_t i = 0; i < vrings_.size(); ++i) {
    if (!vrings_[i].vq) continue;
    InflightQueue* iq = inflight_->queue(i);
    vrings_[i].vq->set_inflight(iq);
    vrings_[i].vq->visit([&](auto& r) { r.set_inflight_log(iq ? &iq->log() : nullptr); });
  }
}

// rst SET_INFLIGHT_FD: the front-end returns the region after a reconnect.
Outcome Session::on_set_inflight_fd(proto::Message& m) {
  const auto d = m.payload_as<proto::InflightDesc>();
  if (d.num_queues > vrings_.size())
    return fail("front-end sent SET_INFLIGHT_FD for " + std::to_string(d.num_queues) +
                " queues but the device has " + std::to_string(vrings_.size()));
  if (d.mmap_size > limits::kMaxInflightBytes)
    return fail("front-end sent SET_INFLIGHT_FD region is " + std::to_string(d.mmap_size) +
                " bytes, more than the " + std::to_string(limits::kMaxInflightBytes) + " this back-end maps");
  const InflightLayout layout = packed() ? InflightLayout::packed : InflightLayout::split;
  auto region = InflightRegion::adopt(layout, std::move(m.fds[0]), d);
  if (!region) return fail("front-end sent " + region.error());
  for (std::size_t i = 0; i < (*region)->num_queues(); ++i) {
    const auto pending = (*region)->queue(i)->pending();
    if (!pending.empty())
      VIREO_LOG_INFO("queue %zu: %zu buffers were in flight when the previous back-end stopped", i,
                     pending.size());
  }
  attach_inflight(std::move(*region));
  return {};
}

}  // namespace vireo::device
