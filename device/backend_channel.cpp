// BackendChannel: serialized back-end requests to the front-end.
#include "device/backend_channel.hpp"

namespace vireo::device {

void BackendChannel::attach(proto::UnixStream stream, std::uint64_t protocol_features) {
  std::lock_guard lk(mu_);
  conn_.emplace(std::move(stream));
  conn_->set_protocol_features(protocol_features);
}

void BackendChannel::detach() {
  std::lock_guard lk(mu_);
  conn_.reset();
}

bool BackendChannel::attached() {
  std::lock_guard lk(mu_);
  return conn_.has_value();
}

Status BackendChannel::config_changed() {
  std::lock_guard lk(mu_);
  if (!conn_) return error("no back-end channel: the front-end did not send SET_BACKEND_REQ_FD");
  if (!proto::has_proto(conn_->protocol_features(), proto::kProtoFConfig))
    return error("the front-end did not negotiate the CONFIG protocol feature");
  auto r = conn_->request(proto::BackendReq::backend_config_change_msg, {}, {}, /*need_reply=*/true);
  if (!r) return error("BACKEND_CONFIG_CHANGE_MSG failed: " + r.error().message());
  return {};
}

Status Backend::notify_config_change() {
  if (channel_ == nullptr) return error("device is not running under a vhost-user daemon");
  return channel_->config_changed();
}

}  // namespace vireo::device
