// The vhost-user request tables and validate(). Every rule cites QEMU docs/interop/vhost-user.rst
// ("rst"); section names are the rst headings.
#include "proto/message_table.hpp"

#include <array>
#include <cstdarg>
#include <cstdio>

#include "proto/sys/event_fd.hpp"

namespace vireo::proto {
namespace {

using Check = Expected<void, std::string>;

[[gnu::format(printf, 1, 2)]] std::string fmt(const char* format, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, format);
  std::vsnprintf(buf, sizeof buf, format, ap);
  va_end(ap);
  return buf;
}

Check fail(std::string reason) { return Unexpected<std::string>(std::move(reason)); }

std::size_t region_size(std::uint64_t features) {
  // rst "Memory region description": XEN_MMAP appends u32 xen mmap flags + u32 domid.
  return has_proto(features, kProtoFXenMmap) ? kMemoryRegionXenSize : sizeof(MemoryRegion);
}

Check check_region(const char* what, const MemoryRegion& r) {
  if (r.memory_size == 0) return fail(fmt("%s region has memory_size 0", what));
  if (r.guest_phys_addr + r.memory_size < r.guest_phys_addr ||
      r.userspace_addr + r.memory_size < r.userspace_addr ||
      r.mmap_offset + r.memory_size < r.mmap_offset)
    return fail(fmt("%s region [gpa 0x%llx, size 0x%llx] wraps the 64-bit address space", what,
                    static_cast<unsigned long long>(r.guest_phys_addr),
                    static_cast<unsigned long long>(r.memory_size)));
  return {};
}

// rst "Multiple Memory regions description" + SET_MEM_TABLE: nregions <= 8 entries are sent,
// "The size and ordering of the fds matches the number and ordering of memory regions".
Check check_mem_table(const Message& m, std::uint64_t f) {
  auto n = m.payload_as<std::uint32_t>();
  if (n > kMemoryBaselineNregions)
    return fail(fmt("SET_MEM_TABLE has %u regions, at most %u (VHOST_MEMORY_BASELINE_NREGIONS)", n,
                    kMemoryBaselineNregions));
  std::size_t rs = region_size(f);
  if (m.hdr.size != kMemoryTableHeaderSize + rs * n)
    return fail(fmt("SET_MEM_TABLE payload is %u bytes, expected %zu for %u regions", m.hdr.size,
                    kMemoryTableHeaderSize + rs * n, n));
  if (m.fds.size() != n)
    return fail(fmt("SET_MEM_TABLE carries %zu fds for %u regions (one fd per region)",
                    m.fds.size(), n));
  for (std::uint32_t i = 0; i < n; ++i) {
    auto ok = check_region("SET_MEM_TABLE", m.payload_as<MemoryRegion>(8 + rs * i));
    if (!ok) return ok;
  }
  return {};
}

// rst SET_LOG_BASE + "Migration": with LOG_SHMFD the payload is a log description and the
// shared-memory fd is in the ancillary data; otherwise a bare u64 without fd.
Check check_log_base(const Message& m, std::uint64_t f) {
  bool shm = has_proto(f, kProtoFLogShmfd);
  std::uint32_t want_size = shm ? sizeof(LogDesc) : sizeof(U64);
  std::size_t want_fds = shm ? 1 : 0;
  if (m.hdr.size != want_size)
    return fail(fmt("SET_LOG_BASE payload is %u bytes, expected %u (%s)", m.hdr.size, want_size,
                    shm ? "log description, LOG_SHMFD" : "u64, no LOG_SHMFD"));
  if (m.fds.size() != want_fds)
    return fail(fmt("SET_LOG_BASE carries %zu fds, expected %zu", m.fds.size(), want_fds));
  return {};
}

// rst SET_VRING_KICK/CALL/ERR: "Bits (0-7) of the payload contain the vring index. Bit 8 is the
// invalid FD flag. This flag is set when there is no file descriptor in the ancillary data."
Check check_vring_file(const Message& m, std::uint64_t) {
  auto v = m.payload_as<std::uint64_t>();
  auto name = to_string(static_cast<FrontendReq>(m.hdr.request));
  if ((v & ~(kVringIdxMask | kVringNofdMask)) != 0)
    return fail(fmt("%.*s payload 0x%llx sets bits above 8 (only index 0-7 and invalid-FD 8)",
                    static_cast<int>(name.size()), name.data(), static_cast<unsigned long long>(v)));
  std::size_t want = vring_file_nofd(v) ? 0 : 1;
  if (m.fds.size() != want)
    return fail(fmt("%.*s carries %zu fds but the invalid-FD flag (bit 8) is %s", static_cast<int>(name.size()),
                    name.data(), m.fds.size(), vring_file_nofd(v) ? "set" : "clear"));
  // rst: kick, call and err are eventfds. A pipe the front-end never reads would block the
  // worker signalling it (and with it every quiesce of the control thread).
  if (want == 1 && !is_eventfd(m.fds[0].get()))
    return fail(fmt("%.*s fd is not an eventfd (it is %s)", static_cast<int>(name.size()), name.data(),
                    describe_fd(m.fds[0].get()).c_str()));
  return {};
}

// rst VRING_KICK: "The state.num field is currently reserved and must be set to 0".
Check check_state_num_zero(const Message& m, std::uint64_t) {
  auto st = m.payload_as<VringState>();
  if (st.num != 0) {
    auto name = to_string(static_cast<FrontendReq>(m.hdr.request));
    return fail(fmt("%.*s num is %u, reserved and must be 0", static_cast<int>(name.size()),
                    name.data(), st.num));
  }
  return {};
}

// rst SET_VRING_ENABLE (enable or disable) and SET_VRING_ENDIAN ("Little-endian is indicated with
// state.num set to 0 and big-endian is indicated with state.num set to 1. Other values are
// invalid.").
Check check_state_num_bool(const Message& m, std::uint64_t) {
  auto st = m.payload_as<VringState>();
  if (st.num > 1) {
    auto name = to_string(static_cast<FrontendReq>(m.hdr.request));
    return fail(fmt("%.*s num is %u, expected 0 or 1", static_cast<int>(name.size()), name.data(),
                    st.num));
  }
  return {};
}

// rst "Virtio device config space": offset, size, flags (0 or 1), then size bytes; QEMU and
// libvhost-user limit the space to VHOST_USER_MAX_CONFIG_SIZE = 256.
Check check_config(const Message& m, std::uint64_t) {
  auto c = m.payload_as<ConfigHeader>();
  auto name = to_string(static_cast<FrontendReq>(m.hdr.request));
  int nl = static_cast<int>(name.size());
  if (c.size == 0 || c.size > kMaxConfigSize)
    return fail(fmt("%.*s config size is %u, expected 1..%u", nl, name.data(), c.size, kMaxConfigSize));
  if (std::uint64_t{c.offset} + c.size > kMaxConfigSize)
    return fail(fmt("%.*s config range [%u, +%u) exceeds %u bytes", nl, name.data(), c.offset, c.size,
                    kMaxConfigSize));
  if (m.hdr.size != sizeof(ConfigHeader) + c.size)
    return fail(fmt("%.*s payload is %u bytes, expected 12 + config size %u", nl, name.data(),
                    m.hdr.size, c.size));
  if (c.flags > kConfigFlagLiveMigration)
    return fail(fmt("%.*s flags is %u, expected 0 (writable) or 1 (live migration)", nl, name.data(),
                    c.flags));
  return {};
}

// rst "Single memory region description" (ADD_MEM_REG / REM_MEM_REG).
Check check_mem_reg(const Message& m, std::uint64_t f) {
  auto name = to_string(static_cast<FrontendReq>(m.hdr.request));
  std::size_t want = sizeof(std::uint64_t) + region_size(f);
  if (m.hdr.size != want)
    return fail(fmt("%.*s payload is %u bytes, expected %zu", static_cast<int>(name.size()),
                    name.data(), m.hdr.size, want));
  return check_region(name.data(), m.payload_as<MemoryRegion>(sizeof(std::uint64_t)));
}

// rst "Device state transfer parameters": direction 0 save / 1 load; phase 0 stopped only.
Check check_device_state(const Message& m, std::uint64_t) {
  auto t = m.payload_as<DeviceStateTransfer>();
  if (t.direction > 1) return fail(fmt("SET_DEVICE_STATE_FD direction is %u, expected 0 or 1", t.direction));
  if (t.phase != 0) return fail(fmt("SET_DEVICE_STATE_FD phase is %u, expected 0 (stopped)", t.phase));
  return {};
}

// rst BACKEND_VRING_CALL / BACKEND_VRING_ERR: "The state.num field is currently reserved and must
// be set to 0".
Check check_backend_state_num_zero(const Message& m, std::uint64_t) {
  if (m.payload_as<VringState>().num != 0)
    return fail(fmt("%s num is %u, reserved and must be 0",
                    to_string(static_cast<BackendReq>(m.hdr.request)).data(),
                    m.payload_as<VringState>().num));
  return {};
}

// ---- table builders: one short line per message ----
struct P { PayloadRule rule; std::uint32_t size; };
struct Fd { std::uint8_t min, max; };
struct R { ReplyRule rule; int feature; std::uint32_t size; std::uint8_t max_fds; };

constexpr P kNone{PayloadRule::none, 0};
constexpr P exact(std::uint32_t n) { return {PayloadRule::exact, n}; }
constexpr P at_least(std::uint32_t n) { return {PayloadRule::at_least, n}; }
constexpr Fd kNoFds{0, 0}, kOneFd{1, 1}, kOptFd{0, 1};
constexpr R kAck{ReplyRule::ack_only, kNoFeature, sizeof(U64), 0};
constexpr R reply(std::uint32_t size, std::uint8_t max_fds = 0) {
  return {ReplyRule::always, kNoFeature, size, max_fds};
}
constexpr R reply_with(int feature, std::uint32_t size) {
  return {ReplyRule::with_feature, feature, size, 0};
}

template <class Req>
constexpr MessageSpec spec(Req req, std::string_view name, P p, Fd fd, int feature, R r,
                           SpecCheck check = nullptr) {
  return MessageSpec{static_cast<std::uint32_t>(req), name, p.rule, p.size, fd.min, fd.max,
                     feature, r.rule, r.feature, r.size, r.max_fds, check};
}

using F = FrontendReq;
constexpr int kNoGate = kNoFeature;
constexpr std::uint32_t k8 = sizeof(U64);
constexpr std::uint32_t kState = sizeof(VringState);

// rst "Front-end message types". Gates are the protocol features each entry names; messages
// gated by virtio feature bits (SET_VRING_ENABLE: bit 30, IOTLB_MSG: IOMMU_PLATFORM) are left
// to the session, which knows the virtio features.
constexpr std::array<MessageSpec, kFrontendReqMax> kFrontend{{
    spec(F::get_features, "GET_FEATURES", kNone, kNoFds, kNoGate, reply(k8)),
    spec(F::set_features, "SET_FEATURES", exact(k8), kNoFds, kNoGate, kAck),
    spec(F::set_owner, "SET_OWNER", kNone, kNoFds, kNoGate, kAck),
    spec(F::reset_owner, "RESET_OWNER", kNone, kNoFds, kNoGate, kAck),
    // Postcopy (after POSTCOPY_LISTEN) replies with region bases: handled by the session.
    spec(F::set_mem_table, "SET_MEM_TABLE", at_least(kMemoryTableHeaderSize), {0, kMemoryBaselineNregions},
         kNoGate, kAck, check_mem_table),
    spec(F::set_log_base, "SET_LOG_BASE", at_least(k8), kOptFd, kNoGate,
         reply_with(kProtoFLogShmfd, k8), check_log_base),
    spec(F::set_log_fd, "SET_LOG_FD", kNone, kOneFd, kNoGate, kAck),
    spec(F::set_vring_num, "SET_VRING_NUM", exact(kState), kNoFds, kNoGate, kAck),
    spec(F::set_vring_addr, "SET_VRING_ADDR", exact(sizeof(VringAddr)), kNoFds, kNoGate, kAck),
    spec(F::set_vring_base, "SET_VRING_BASE", exact(kState), kNoFds, kNoGate, kAck),
    // rst: num is "reserved and must be set to 0", but DPDK 22.11's virtio-user sends whatever
    // it holds there; the field carries no meaning, so it is ignored rather than enforced.
    spec(F::get_vring_base, "GET_VRING_BASE", exact(kState), kNoFds, kNoGate, reply(kState)),
    spec(F::set_vring_kick, "SET_VRING_KICK", exact(k8), kOptFd, kNoGate, kAck, check_vring_file),
    spec(F::set_vring_call, "SET_VRING_CALL", exact(k8), kOptFd, kNoGate, kAck, check_vring_file),
    spec(F::set_vring_err, "SET_VRING_ERR", exact(k8), kOptFd, kNoGate, kAck, check_vring_file),
    spec(F::get_protocol_features, "GET_PROTOCOL_FEATURES", kNone, kNoFds, kNoGate, reply(k8)),
    spec(F::set_protocol_features, "SET_PROTOCOL_FEATURES", exact(k8), kNoFds, kNoGate, kAck),
    spec(F::get_queue_num, "GET_QUEUE_NUM", kNone, kNoFds, kProtoFMq, reply(k8)),
    spec(F::set_vring_enable, "SET_VRING_ENABLE", exact(kState), kNoFds, kNoGate, kAck,
         check_state_num_bool),
    spec(F::send_rarp, "SEND_RARP", exact(k8), kNoFds, kProtoFRarp, kAck),
    spec(F::net_set_mtu, "NET_SET_MTU", exact(k8), kNoFds, kProtoFMtu, kAck),
    spec(F::set_backend_req_fd, "SET_BACKEND_REQ_FD", kNone, kOneFd, kProtoFBackendReq, kAck),
    spec(F::iotlb_msg, "IOTLB_MSG", exact(sizeof(IotlbMsg)), kNoFds, kNoGate, reply(k8)),
    spec(F::set_vring_endian, "SET_VRING_ENDIAN", exact(kState), kNoFds, kProtoFCrossEndian, kAck,
         check_state_num_bool),
    spec(F::get_config, "GET_CONFIG", at_least(sizeof(ConfigHeader)), kNoFds, kProtoFConfig,
         reply(kVariableSize), check_config),
    spec(F::set_config, "SET_CONFIG", at_least(sizeof(ConfigHeader)), kNoFds, kProtoFConfig, kAck,
         check_config),
    // Crypto session description: i64 session id first; the rest is QEMU-crypto specific.
    spec(F::create_crypto_session, "CREATE_CRYPTO_SESSION", at_least(k8), kNoFds,
         kProtoFCryptoSession, reply(kVariableSize)),
    spec(F::close_crypto_session, "CLOSE_CRYPTO_SESSION", exact(k8), kNoFds, kProtoFCryptoSession, kAck),
    spec(F::postcopy_advise, "POSTCOPY_ADVISE", kNone, kNoFds, kProtoFPagefault, reply(0, 1)),
    spec(F::postcopy_listen, "POSTCOPY_LISTEN", kNone, kNoFds, kProtoFPagefault, kAck),
    spec(F::postcopy_end, "POSTCOPY_END", kNone, kNoFds, kProtoFPagefault, reply(k8)),
    spec(F::get_inflight_fd, "GET_INFLIGHT_FD", exact(sizeof(InflightDesc)), kNoFds,
         kProtoFInflightShmfd, reply(sizeof(InflightDesc), 1)),
    spec(F::set_inflight_fd, "SET_INFLIGHT_FD", exact(sizeof(InflightDesc)), kOneFd,
         kProtoFInflightShmfd, kAck),
    spec(F::gpu_set_socket, "GPU_SET_SOCKET", kNone, kOneFd, kNoGate, kAck),
    spec(F::reset_device, "RESET_DEVICE", kNone, kNoFds, kProtoFResetDevice, kAck),
    spec(F::vring_kick, "VRING_KICK", exact(kState), kNoFds, kProtoFInbandNotifications, kAck,
         check_state_num_zero),
    spec(F::get_max_mem_slots, "GET_MAX_MEM_SLOTS", kNone, kNoFds, kProtoFConfigureMemSlots, reply(k8)),
    spec(F::add_mem_reg, "ADD_MEM_REG", at_least(sizeof(SingleMemRegion)), kOneFd,
         kProtoFConfigureMemSlots, kAck, check_mem_reg),
    // "If a file descriptor is passed, the back-end MUST close it": Message owns it, so dropping
    // the message closes it.
    spec(F::rem_mem_reg, "REM_MEM_REG", at_least(sizeof(SingleMemRegion)), kOptFd,
         kProtoFConfigureMemSlots, kAck, check_mem_reg),
    spec(F::set_status, "SET_STATUS", exact(k8), kNoFds, kProtoFStatus, kAck),
    spec(F::get_status, "GET_STATUS", kNone, kNoFds, kProtoFStatus, reply(k8)),
    spec(F::get_shared_object, "GET_SHARED_OBJECT", exact(sizeof(SharedObject)), kNoFds,
         kProtoFSharedObject, reply(kVariableSize, 1)),
    spec(F::set_device_state_fd, "SET_DEVICE_STATE_FD", exact(sizeof(DeviceStateTransfer)), kOneFd,
         kProtoFDeviceState, reply(k8, 1), check_device_state),
    spec(F::check_device_state, "CHECK_DEVICE_STATE", kNone, kNoFds, kProtoFDeviceState, reply(k8)),
}};

using B = BackendReq;
// rst "Back-end message types".
constexpr std::array<MessageSpec, kBackendReqMax> kBackend{{
    spec(B::backend_iotlb_msg, "BACKEND_IOTLB_MSG", exact(sizeof(IotlbMsg)), kNoFds, kNoGate, kAck),
    spec(B::backend_config_change_msg, "BACKEND_CONFIG_CHANGE_MSG", kNone, kNoFds, kProtoFConfig, kAck),
    spec(B::backend_vring_host_notifier_msg, "BACKEND_VRING_HOST_NOTIFIER_MSG",
         exact(sizeof(VringArea)), kOptFd, kProtoFHostNotifier, kAck),
    spec(B::backend_vring_call, "BACKEND_VRING_CALL", exact(kState), kNoFds,
         kProtoFInbandNotifications, kAck, check_backend_state_num_zero),
    spec(B::backend_vring_err, "BACKEND_VRING_ERR", exact(kState), kNoFds,
         kProtoFInbandNotifications, kAck, check_backend_state_num_zero),
    spec(B::backend_shared_object_add, "BACKEND_SHARED_OBJECT_ADD", exact(sizeof(SharedObject)),
         kNoFds, kProtoFSharedObject, kAck),
    spec(B::backend_shared_object_remove, "BACKEND_SHARED_OBJECT_REMOVE", exact(sizeof(SharedObject)),
         kNoFds, kProtoFSharedObject, kAck),
    // "reply payload: dmabuf fd and u64"; no fd when the lookup failed.
    spec(B::backend_shared_object_lookup, "BACKEND_SHARED_OBJECT_LOOKUP", exact(sizeof(SharedObject)),
         kNoFds, kProtoFSharedObject, reply(k8, 1)),
}};

template <std::size_t N>
constexpr bool sorted_and_complete(const std::array<MessageSpec, N>& table) {
  for (std::size_t i = 0; i < N; ++i)
    if (table[i].request != i + 1 || table[i].name.empty() || table[i].min_fds > table[i].max_fds)
      return false;
  return true;
}
static_assert(sorted_and_complete(kFrontend), "front-end table must list ids 1..43 in order");
static_assert(sorted_and_complete(kBackend), "back-end table must list ids 1..8 in order");

constexpr std::array<std::string_view, 20> kFeatureNames{
    "MQ", "LOG_SHMFD", "RARP", "REPLY_ACK", "MTU", "BACKEND_REQ", "CROSS_ENDIAN",
    "CRYPTO_SESSION", "PAGEFAULT", "CONFIG", "BACKEND_SEND_FD", "HOST_NOTIFIER",
    "INFLIGHT_SHMFD", "RESET_DEVICE", "INBAND_NOTIFICATIONS", "CONFIGURE_MEM_SLOTS", "STATUS",
    "XEN_MMAP", "SHARED_OBJECT", "DEVICE_STATE"};
static_assert(kFeatureNames.size() == kProtoFDeviceState + 1);

template <std::size_t N>
const MessageSpec* lookup(const std::array<MessageSpec, N>& table, std::uint32_t id) {
  return id >= 1 && id <= N ? &table[id - 1] : nullptr;
}

Rejection reject(std::string reason, bool close) { return Rejection{std::move(reason), close}; }

// Header-level rules (rst "Header"): version 1 in bits 0-1; a request never has the REPLY flag.
Expected<void, Rejection> check_header(const Message& m, const char* side) {
  if (m.version() != kVersion)
    return Unexpected(reject(fmt("%s request %u has flags 0x%x: version %u, expected 1", side,
                                 m.hdr.request, m.hdr.flags, m.version()), true));
  if (m.is_reply())
    return Unexpected(reject(fmt("%s request %u has the REPLY flag set (flags 0x%x)", side,
                                 m.hdr.request, m.hdr.flags), true));
  if (m.hdr.size > kMaxPayload)
    return Unexpected(reject(fmt("%s request %u payload is %u bytes, more than %zu", side,
                                 m.hdr.request, m.hdr.size, kMaxPayload), true));
  return {};
}

std::string size_mismatch(const MessageSpec& s, std::uint32_t got) {
  const char* how = s.payload == PayloadRule::at_least ? "at least " : "";
  return fmt("%.*s payload is %u bytes, expected %s%u", static_cast<int>(s.name.size()),
             s.name.data(), got, how, s.size);
}

// Table-level rules shared by both directions.
Expected<const MessageSpec*, Rejection> check_spec(const MessageSpec& s, const Message& m,
                                                   std::uint64_t f) {
  // A rejected message whose sender waits for a reply body can only be answered by closing.
  bool close = reply_kind(s, m.hdr.flags, f) == ReplyKind::body;
  int nl = static_cast<int>(s.name.size());
  if (s.feature != kNoFeature && !has_proto(f, static_cast<unsigned>(s.feature)))
    return Unexpected(reject(fmt("%.*s needs protocol feature %s (bit %d), which was not negotiated",
                                 nl, s.name.data(), proto_feature_name(s.feature).data(), s.feature),
                             false));
  bool size_ok = s.payload == PayloadRule::at_least ? m.hdr.size >= s.size : m.hdr.size == s.size;
  if (!size_ok) return Unexpected(reject(size_mismatch(s, m.hdr.size), close));
  if (m.fds.size() < s.min_fds || m.fds.size() > s.max_fds)
    return Unexpected(reject(fmt("%.*s carries %zu fds, expected %u to %u", nl, s.name.data(),
                                 m.fds.size(), s.min_fds, s.max_fds), close));
  if (s.check) {
    if (auto ok = s.check(m, f); !ok) return Unexpected(reject(ok.error(), close));
  }
  return &s;
}

}  // namespace

std::span<const MessageSpec> frontend_specs() { return kFrontend; }
std::span<const MessageSpec> backend_specs() { return kBackend; }
const MessageSpec* find_spec(FrontendReq req) { return lookup(kFrontend, static_cast<std::uint32_t>(req)); }
const MessageSpec* find_spec(BackendReq req) { return lookup(kBackend, static_cast<std::uint32_t>(req)); }

std::string_view to_string(FrontendReq req) {
  const MessageSpec* s = find_spec(req);
  return s ? s->name : "UNKNOWN";
}
std::string_view to_string(BackendReq req) {
  const MessageSpec* s = find_spec(req);
  return s ? s->name : "UNKNOWN";
}
std::string_view proto_feature_name(unsigned bit) {
  return bit < kFeatureNames.size() ? kFeatureNames[bit] : "UNKNOWN";
}

ReplyKind reply_kind(const MessageSpec& spec, std::uint32_t flags, std::uint64_t f) {
  if (spec.reply == ReplyRule::always) return ReplyKind::body;
  if (spec.reply == ReplyRule::with_feature && has_proto(f, static_cast<unsigned>(spec.reply_feature)))
    return ReplyKind::body;
  // rst "REPLY_ACK": with the extension negotiated, need_reply asks for a u64 ack.
  return ((flags & kFlagNeedReply) && has_proto(f, kProtoFReplyAck)) ? ReplyKind::ack : ReplyKind::none;
}

bool ack_owed(const MsgHeader& hdr, std::uint64_t f) {
  return (hdr.flags & kFlagNeedReply) && has_proto(f, kProtoFReplyAck);
}

Expected<const MessageSpec*, Rejection> validate(const Message& m, std::uint64_t f) {
  if (auto ok = check_header(m, "front-end"); !ok) return Unexpected(ok.error());
  const MessageSpec* s = lookup(kFrontend, m.hdr.request);
  if (!s)
    return Unexpected(reject(fmt("unknown front-end request %u (vhost-user.rst defines 1..%u)",
                                 m.hdr.request, kFrontendReqMax), false));
  return check_spec(*s, m, f);
}

Expected<const MessageSpec*, Rejection> validate_backend(const Message& m, std::uint64_t f) {
  if (auto ok = check_header(m, "back-end"); !ok) return Unexpected(ok.error());
  const MessageSpec* s = lookup(kBackend, m.hdr.request);
  if (!s)
    return Unexpected(reject(fmt("unknown back-end request %u (vhost-user.rst defines 1..%u)",
                                 m.hdr.request, kBackendReqMax), false));
  // rst "Back-end communication": fds only with BACKEND_SEND_FD.
  if (!m.fds.empty() && !has_proto(f, kProtoFBackendSendFd))
    return Unexpected(reject(fmt("%s carries %zu fds but BACKEND_SEND_FD was not negotiated",
                                 s->name.data(), m.fds.size()), false));
  return check_spec(*s, m, f);
}

Expected<void, Rejection> validate_reply(const Message& r, const MessageSpec& s, ReplyKind kind) {
  int nl = static_cast<int>(s.name.size());
  if (r.hdr.request != s.request || !r.is_reply() || r.version() != kVersion)
    return Unexpected(reject(fmt("expected a reply to %.*s, got request %u flags 0x%x", nl,
                                 s.name.data(), r.hdr.request, r.hdr.flags), true));
  std::uint32_t want = kind == ReplyKind::ack ? sizeof(U64) : s.reply_size;
  std::size_t max_fds = kind == ReplyKind::ack ? 0 : s.reply_max_fds;
  if (want != kVariableSize && r.hdr.size != want)
    return Unexpected(reject(fmt("%.*s reply payload is %u bytes, expected %u", nl, s.name.data(),
                                 r.hdr.size, want), true));
  if (r.fds.size() > max_fds)
    return Unexpected(reject(fmt("%.*s reply carries %zu fds, at most %zu", nl, s.name.data(),
                                 r.fds.size(), max_fds), true));
  return {};
}

}  // namespace vireo::proto
