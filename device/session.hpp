// Session: the vhost-user protocol state of one front-end connection, and the only place that
// turns messages into device and ring actions.
//
//   Session s(backend, conn, channel, {.busy_poll = false, .workers = 1});
//   while (auto msg = conn.recv())
//     if (!s.handle(*msg)) break;          // false: close the connection (reason logged)
//   // ~Session: rings stopped, workers joined, backend.reset(), every fd and mapping released
//
// handle() validates with proto::validate() (the one message table) BEFORE any handler runs,
// then dispatches to one small handler per request. Handlers are split by concern:
// session.cpp (dispatch, features, owner, status, reset), session_memory.cpp (memory table,
// dirty log), session_vring.cpp (ring state machine), session_config.cpp (config space,
// back-end channel, inflight regions).
//
// Ring state machine (rst "Ring states"): every ring starts stopped and disabled. SET_VRING_KICK
// starts it, GET_VRING_BASE stops it (and returns its position), SET_VRING_ENABLE enables or
// disables it; SET_FEATURES without VHOST_USER_F_PROTOCOL_FEATURES enables all rings. A queue is
// *runnable* when started and enabled: Backend::queue_started / queue_stopping mark those edges.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/expected.hpp"
#include "device/backend.hpp"
#include "device/backend_channel.hpp"
#include "device/inflight.hpp"
#include "device/memory_table.hpp"
#include "device/virt_queue.hpp"
#include "device/worker.hpp"
#include "proto/connection.hpp"
#include "proto/message.hpp"
#include "proto/sys/mapping.hpp"
#include "vring/dirty_log.hpp"

namespace vireo::device {

struct SessionOptions {
  bool busy_poll = false;
  unsigned workers = 1;
  // No data-plane thread: the caller's thread (which also calls handle()) runs the queues with
  // poll_data_plane(). For a device and a driver sharing one core (vireo bench loopback).
  bool inline_data_plane = false;
  // Workers keep polling a kicked queue until it stays idle (Worker::set_poll_after_kick).
  bool poll_after_kick = false;
};

// A handler's failure: the sentence for the log, and whether the connection must close.
struct Failure {
  std::string reason;
  bool close = true;
};
using Outcome = vireo::Expected<void, Failure>;

class Session {
 public:
  Session(Backend& backend, proto::Connection& conn, BackendChannel& channel,
          const SessionOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Handles one message from the front-end. False: close the connection.
  bool handle(proto::Message& msg);

  // inline_data_plane only: one non-blocking pass over the started queues (kicks, completions,
  // polled queues). Call it on the thread that calls handle().
  void poll_data_plane();
  // The counters of queue `index` while it is started, else null.
  const QueueStats* queue_stats(std::uint16_t index) const;

  // One line per queue: chains, bytes, kicks, calls (relaxed reads of the worker counters).
  void print_stats(std::FILE* out) const;

  // Virtio transport bits the framework supports (before the device's masked_features).
  static std::uint64_t transport_features();
  std::uint64_t offered_features() const;
  std::uint64_t offered_protocol_features() const;

 private:
  struct VringSlot {
    std::uint16_t num = 0;                 // SET_VRING_NUM; 0 = not set
    std::optional<proto::VringAddr> addr;  // SET_VRING_ADDR (front-end virtual addresses)
    vring::RingState base{};               // SET_VRING_BASE, or the last GET_VRING_BASE
    proto::UniqueFd kick, call, err;
    bool started = false;
    bool enabled = false;
    bool process_now = false;              // worker runs process() once on resume
    std::unique_ptr<VirtQueue> vq;         // exists while started
    bool runnable() const { return started && enabled; }
  };
  struct RingAreas {
    void* desc;
    void* avail;
    void* used;
  };
  struct LogArea {
    proto::Mapping map;
    vring::DirtyLog log;
  };
  // Pauses every worker for its lifetime; on destruction hands each worker its new item list.
  class Quiesce {
   public:
    explicit Quiesce(Session& s);
    ~Quiesce();
    Quiesce(const Quiesce&) = delete;
    Quiesce& operator=(const Quiesce&) = delete;

   private:
    Session& s_;
  };
  using Handler = Outcome (Session::*)(proto::Message&);
  static const Handler* handler_table();

  // session.cpp
  bool finish(const proto::Message& msg, const Outcome& out, proto::ReplyKind kind);
  Outcome reply_u64(const proto::Message& m, std::uint64_t v);
  Outcome on_get_features(proto::Message& m);
  Outcome on_set_features(proto::Message& m);
  Outcome on_get_protocol_features(proto::Message& m);
  Outcome on_set_protocol_features(proto::Message& m);
  Outcome on_set_owner(proto::Message& m);
  Outcome on_reset_owner(proto::Message& m);
  Outcome on_reset_device(proto::Message& m);
  Outcome on_get_queue_num(proto::Message& m);
  Outcome on_set_status(proto::Message& m);
  Outcome on_get_status(proto::Message& m);
  Outcome on_unsupported(proto::Message& m);
  void reset_rings();
  void refresh_workers();
  // session_memory.cpp
  Outcome on_set_mem_table(proto::Message& m);
  Outcome on_get_max_mem_slots(proto::Message& m);
  Outcome on_add_mem_reg(proto::Message& m);
  Outcome on_rem_mem_reg(proto::Message& m);
  Outcome on_set_log_base(proto::Message& m);
  Outcome on_set_log_fd(proto::Message& m);
  void swap_memory(MemoryTable::Ptr table);
  void attach_log(VringSlot& s);
  // Swaps in a new inflight region (under Quiesce) and points every started ring at it.
  void attach_inflight(std::unique_ptr<InflightRegion> region);
  // session_vring.cpp
  Expected<VringSlot*, Failure> slot(const proto::Message& m, std::uint32_t index);
  Expected<RingAreas, std::string> resolve(const MemoryTable& mem, const VringSlot& s) const;
  Outcome on_set_vring_num(proto::Message& m);
  Outcome on_set_vring_addr(proto::Message& m);
  Outcome on_set_vring_base(proto::Message& m);
  Outcome on_get_vring_base(proto::Message& m);
  Outcome on_set_vring_kick(proto::Message& m);
  Outcome on_set_vring_call(proto::Message& m);
  Outcome on_set_vring_err(proto::Message& m);
  Outcome on_set_vring_enable(proto::Message& m);
  Outcome start_ring(VringSlot& s, std::uint16_t index);
  void stop_ring(VringSlot& s);
  void set_enabled(VringSlot& s, bool on);
  // session_config.cpp
  Outcome on_get_config(proto::Message& m);
  Outcome on_set_config(proto::Message& m);
  Outcome on_set_backend_req_fd(proto::Message& m);
  Outcome on_get_inflight_fd(proto::Message& m);
  Outcome on_set_inflight_fd(proto::Message& m);

  bool packed() const;
  static vireo::Unexpected<Failure> fail(std::string reason, bool close = true);

  Backend& backend_;
  const DeviceInfo info_;
  proto::Connection& conn_;
  BackendChannel& channel_;
  SessionOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<VringSlot> vrings_;
  MemoryTable::Ptr mem_ = MemoryTable::empty();
  std::unique_ptr<LogArea> log_;
  proto::UniqueFd log_fd_;
  std::unique_ptr<InflightRegion> inflight_;
  bool owner_ = false;
  bool features_set_ = false;
  std::uint64_t features_ = 0;
  std::uint64_t protocol_features_ = 0;
  bool protocol_features_set_ = false;  // SET_PROTOCOL_FEATURES received (bit 30 was offered)
  std::uint8_t status_ = 0;
};

}  // namespace vireo::device
