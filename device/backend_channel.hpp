// BackendChannel: the back-end -> front-end request channel (SET_BACKEND_REQ_FD), shared by the
// Session (which installs and removes the connection) and the device (which sends requests from
// any thread). libvhost-user serializes this channel with a mutex; so does this class.
//
//   channel.config_changed();   // BACKEND_CONFIG_CHANGE_MSG: the front-end re-reads config space
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>

#include "device/backend.hpp"
#include "proto/connection.hpp"

namespace vireo::device {

class BackendChannel {
 public:
  // Session side: a new channel from SET_BACKEND_REQ_FD (replaces any previous one), or none.
  void attach(proto::UnixStream stream, std::uint64_t protocol_features);
  void detach();
  bool attached();

  // BACKEND_CONFIG_CHANGE_MSG (rst "Back-end message types"; needs CONFIG). Waits for the ack
  // when REPLY_ACK was negotiated.
  Status config_changed();

 private:
  std::mutex mu_;
  std::optional<proto::Connection> conn_;  // guarded by mu_
};

}  // namespace vireo::device
