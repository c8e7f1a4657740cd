// validate(): every malformed class per relevant message, from the table (vhost-user.rst).
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "fd_helpers.hpp"
#include "proto/message_table.hpp"

namespace vireo::proto {
namespace {

using testing::make_fds;

constexpr std::uint64_t kAllFeatures = (std::uint64_t{1} << (kProtoFDeviceState + 1)) - 1;
constexpr std::uint64_t kAllButXen = kAllFeatures & ~proto_bit(kProtoFXenMmap);

template <class Req>
Message make(Req req, std::size_t size, std::size_t nfds = 0, std::uint32_t flags = kVersion) {
  Message m;
  m.hdr = MsgHeader{static_cast<std::uint32_t>(req), flags, static_cast<std::uint32_t>(size)};
  m.fds = make_fds(nfds);
  return m;
}

template <class Req, class T>
Message make_with(Req req, const T& payload, std::size_t nfds = 0, std::size_t size = sizeof(T)) {
  Message m = make(req, size, nfds);
  std::memcpy(m.payload.data(), &payload, sizeof(T));
  return m;
}

std::string reason(const Expected<const MessageSpec*, Rejection>& r) {
  return r ? std::string("accepted") : r.error().reason;
}

TEST(MessageTableTest, SortedCompleteAndNamed) {
  auto specs = frontend_specs();
  ASSERT_EQ(specs.size(), 43u);
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    EXPECT_EQ(specs[i].request, i + 1);
    EXPECT_TRUE(names.insert(specs[i].name).second) << specs[i].name;
    EXPECT_EQ(to_string(static_cast<FrontendReq>(i + 1)), specs[i].name);
    EXPECT_LE(specs[i].min_fds, specs[i].max_fds);
    EXPECT_EQ(find_spec(static_cast<FrontendReq>(i + 1)), &specs[i]);
  }
  ASSERT_EQ(backend_specs().size(), 8u);
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(backend_specs()[i].request, i + 1);
  EXPECT_EQ(find_spec(static_cast<FrontendReq>(0)), nullptr);
  EXPECT_EQ(find_spec(static_cast<FrontendReq>(44)), nullptr);
}

TEST(MessageTableTest, ReplyRulesFollowRstCommunicationSection) {
  for (auto req : {FrontendReq::get_features, FrontendReq::get_protocol_features,
                   FrontendReq::get_vring_base, FrontendReq::get_queue_num, FrontendReq::get_config,
                   FrontendReq::get_inflight_fd, FrontendReq::get_max_mem_slots,
                   FrontendReq::iotlb_msg, FrontendReq::get_status, FrontendReq::check_device_state})
    EXPECT_EQ(reply_kind(*find_spec(req), kVersion, 0), ReplyKind::body) << to_string(req);
  const auto& num = *find_spec(FrontendReq::set_vring_num);
  EXPECT_EQ(reply_kind(num, kVersion, kAllFeatures), ReplyKind::none);
  EXPECT_EQ(reply_kind(num, kVersion | kFlagNeedReply, kAllFeatures), ReplyKind::ack);
  EXPECT_EQ(reply_kind(num, kVersion | kFlagNeedReply, 0), ReplyKind::none);  // no REPLY_ACK
  const auto& log = *find_spec(FrontendReq::set_log_base);
  EXPECT_EQ(reply_kind(log, kVersion, proto_bit(kProtoFLogShmfd)), ReplyKind::body);
  EXPECT_EQ(reply_kind(log, kVersion, 0), ReplyKind::none);
}

// ---- generic classes, for every entry of the table ----

TEST(MessageTableTest, WrongVersionIsRejectedAndCloses) {
  for (std::uint32_t flags : {0u, 2u, 3u}) {
    auto r = validate(make(FrontendReq::get_features, 0, 0, flags), kAllFeatures);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().close_connection);
    EXPECT_NE(r.error().reason.find("version"), std::string::npos) << r.error().reason;
  }
}

TEST(MessageTableTest, ReplyFlagOnARequestIsRejected) {
  auto r = validate(make(FrontendReq::get_features, 0, 0, kVersion | kFlagReply), kAllFeatures);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().close_connection);
}

TEST(MessageTableTest, UnknownRequestIsRejectedWithoutClosing) {
  for (std::uint32_t id : {0u, 44u, 1000u}) {
    auto r = validate(make(static_cast<FrontendReq>(id), 0), kAllFeatures);
    ASSERT_FALSE(r);
    EXPECT_FALSE(r.error().close_connection);
    EXPECT_NE(r.error().reason.find("unknown front-end request"), std::string::npos);
  }
}

TEST(MessageTableTest, OversizeSizeFieldIsRejected) {
  auto r = validate(make(FrontendReq::set_features, kMaxPayload + 1), kAllFeatures);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().close_connection);
}

TEST(MessageTableTest, EveryGatedMessageNeedsItsFeature) {
  int gated = 0;
  for (const auto& s : frontend_specs()) {
    if (s.feature == kNoFeature) continue;
    ++gated;
    Message m = make(static_cast<FrontendReq>(s.request), s.size, s.min_fds);
    auto r = validate(m, kAllFeatures & ~proto_bit(static_cast<unsigned>(s.feature)));
    ASSERT_FALSE(r) << s.name;
    EXPECT_NE(r.error().reason.find("needs protocol feature"), std::string::npos) << reason(r);
    EXPECT_NE(r.error().reason.find(std::string(proto_feature_name(s.feature))), std::string::npos);
  }
  EXPECT_EQ(gated, 24);
}

TEST(MessageTableTest, EveryMessageRejectsShortAndLongPayloads) {
  for (const auto& s : frontend_specs()) {
    auto req = static_cast<FrontendReq>(s.request);
    if (s.payload != PayloadRule::at_least) {
      auto longer = validate(make(req, s.size + 8, s.min_fds), kAllButXen);
      ASSERT_FALSE(longer) << s.name;
      EXPECT_NE(longer.error().reason.find("payload is"), std::string::npos) << reason(longer);
    }
    if (s.size > 0) {
      auto shorter = validate(make(req, s.size - 1, s.min_fds), kAllButXen);
      ASSERT_FALSE(shorter) << s.name;
      EXPECT_NE(shorter.error().reason.find("payload is"), std::string::npos) << reason(shorter);
    }
  }
}

TEST(MessageTableTest, EveryMessageRejectsTooManyFds) {
  for (const auto& s : frontend_specs()) {
    Message m = make(static_cast<FrontendReq>(s.request), s.size, s.max_fds + 1u);
    if (s.request == static_cast<std::uint32_t>(FrontendReq::set_mem_table)) continue;  // below
    auto r = validate(m, kAllButXen);
    ASSERT_FALSE(r) << s.name;
  }
}

TEST(MessageTableTest, MessagesThatNeedAnFdRejectNone) {
  for (auto req : {FrontendReq::set_log_fd, FrontendReq::set_backend_req_fd,
                   FrontendReq::set_inflight_fd, FrontendReq::gpu_set_socket,
                   FrontendReq::set_device_state_fd}) {
    const auto& s = *find_spec(req);
    auto r = validate(make(req, s.size, 0), kAllFeatures);
    ASSERT_FALSE(r) << s.name;
    EXPECT_NE(r.error().reason.find("fds"), std::string::npos) << reason(r);
  }
}

// ---- per message ----

TEST(MessageTableTest, SetVringNumShortPayloadReason) {
  auto r = validate(make(FrontendReq::set_vring_num, 4), 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "SET_VRING_NUM payload is 4 bytes, expected 8");
  EXPECT_FALSE(r.error().close_connection);  // no reply body owed: the session can go on
  EXPECT_TRUE(validate(make_with(FrontendReq::set_vring_num, VringState{0, 256}), 0));
}

TEST(MessageTableTest, MalformedRequestThatOwesAReplyClosesTheConnection) {
  auto r = validate(make(FrontendReq::get_vring_base, 4), 0);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().close_connection);
}

Message mem_table(std::uint32_t nregions, std::size_t nfds, std::size_t extra = 0) {
  MemoryTable t{};
  t.nregions = nregions;
  for (std::uint32_t i = 0; i < std::min(nregions, 8u); ++i)
    t.regions[i] = MemoryRegion{i * 0x100000ull, 0x100000, 0x7f0000000000ull + i * 0x100000ull, 0};
  return make_with(FrontendReq::set_mem_table, t, nfds, 8 + 32 * std::min(nregions, 8u) + extra);
}

TEST(MessageTableTest, SetMemTable) {
  EXPECT_TRUE(validate(mem_table(0, 0), 0));
  EXPECT_TRUE(validate(mem_table(2, 2), 0));
  EXPECT_TRUE(validate(mem_table(8, 8), 0));
  EXPECT_NE(reason(validate(mem_table(2, 1), 0)).find("1 fds for 2 regions"), std::string::npos);
  EXPECT_NE(reason(validate(mem_table(2, 3), 0)).find("3 fds for 2 regions"), std::string::npos);
  EXPECT_NE(reason(validate(mem_table(2, 2, 32), 0)).find("expected 72"), std::string::npos);
  EXPECT_FALSE(validate(mem_table(8, 9), 0));  // fds above the table maximum
  Message nine = mem_table(8, 8);
  std::uint32_t n = 9;
  std::memcpy(nine.payload.data(), &n, 4);
  EXPECT_NE(reason(validate(nine, 0)).find("at most 8"), std::string::npos);
  // XEN_MMAP: 40-byte regions, so the 2-region table above is the wrong size.
  EXPECT_FALSE(validate(mem_table(2, 2), proto_bit(kProtoFXenMmap)));
}

TEST(MessageTableTest, SetMemTableRejectsEmptyAndWrappingRegions) {
  Message zero = mem_table(1, 1);
  std::uint64_t size = 0;
  std::memcpy(zero.payload.data() + 8 + 8, &size, 8);
  EXPECT_NE(reason(validate(zero, 0)).find("memory_size 0"), std::string::npos);
  Message wrap = mem_table(1, 1);
  std::uint64_t gpa = ~0ull - 10;
  std::memcpy(wrap.payload.data() + 8, &gpa, 8);
  EXPECT_NE(reason(validate(wrap, 0)).find("wraps"), std::string::npos);
}

TEST(MessageTableTest, SetLogBaseDependsOnLogShmfd) {
  auto shm = proto_bit(kProtoFLogShmfd);
  EXPECT_TRUE(validate(make_with(FrontendReq::set_log_base, LogDesc{4096, 0}, 1), shm));
  EXPECT_FALSE(validate(make_with(FrontendReq::set_log_base, LogDesc{4096, 0}, 0), shm));
  EXPECT_FALSE(validate(make_with(FrontendReq::set_log_base, U64{0}, 1), shm));
  EXPECT_TRUE(validate(make_with(FrontendReq::set_log_base, U64{0}, 0), 0));
  EXPECT_FALSE(validate(make_with(FrontendReq::set_log_base, LogDesc{4096, 0}, 1), 0));
}

TEST(MessageTableTest, VringKickCallErrFdMatchesBit8) {
  for (auto req : {FrontendReq::set_vring_kick, FrontendReq::set_vring_call, FrontendReq::set_vring_err}) {
    EXPECT_TRUE(validate(make_with(req, U64{encode_vring_file(3, false)}, 1), 0));
    EXPECT_TRUE(validate(make_with(req, U64{encode_vring_file(3, true)}, 0), 0));
    auto fd_but_nofd = validate(make_with(req, U64{encode_vring_file(3, true)}, 1), 0);
    EXPECT_NE(reason(fd_but_nofd).find("is set"), std::string::npos) << reason(fd_but_nofd);
    auto nofd_clear = validate(make_with(req, U64{encode_vring_file(3, false)}, 0), 0);
    EXPECT_NE(reason(nofd_clear).find("is clear"), std::string::npos) << reason(nofd_clear);
    EXPECT_NE(reason(validate(make_with(req, U64{0x203}, 0), 0)).find("above 8"), std::string::npos);
  }
}

TEST(MessageTableTest, ReservedNumFieldsMustBeZero) {
  // GET_VRING_BASE's reserved num is ignored: DPDK's virtio-user does not clear it.
  EXPECT_TRUE(validate(make_with(FrontendReq::get_vring_base, VringState{1, 0}), 0));
  EXPECT_TRUE(validate(make_with(FrontendReq::get_vring_base, VringState{1, 0x208020}), 0));
  auto inband = proto_bit(kProtoFInbandNotifications);
  EXPECT_TRUE(validate(make_with(FrontendReq::vring_kick, VringState{1, 0}), inband));
  EXPECT_FALSE(validate(make_with(FrontendReq::vring_kick, VringState{1, 1}), inband));
}

TEST(MessageTableTest, EnableAndEndianAreBooleans) {
  EXPECT_TRUE(validate(make_with(FrontendReq::set_vring_enable, VringState{0, 1}), 0));
  EXPECT_FALSE(validate(make_with(FrontendReq::set_vring_enable, VringState{0, 2}), 0));
  auto ce = proto_bit(kProtoFCrossEndian);
  EXPECT_TRUE(validate(make_with(FrontendReq::set_vring_endian, VringState{0, 1}), ce));
  EXPECT_FALSE(validate(make_with(FrontendReq::set_vring_endian, VringState{0, 2}), ce));
}

Message config(FrontendReq req, std::uint32_t offset, std::uint32_t size, std::uint32_t flags,
               std::size_t wire_size) {
  Message m = make(req, wire_size);
  ConfigHeader h{offset, size, flags};
  std::memcpy(m.payload.data(), &h, sizeof h);
  return m;
}

TEST(MessageTableTest, GetAndSetConfig) {
  auto f = proto_bit(kProtoFConfig);
  for (auto req : {FrontendReq::get_config, FrontendReq::set_config}) {
    EXPECT_TRUE(validate(config(req, 0, 60, 0, 72), f));
    EXPECT_TRUE(validate(config(req, 0, 256, 1, 268), f));
    EXPECT_NE(reason(validate(config(req, 0, 0, 0, 12), f)).find("expected 1..256"), std::string::npos);
    EXPECT_FALSE(validate(config(req, 0, 257, 0, 269), f));
    EXPECT_NE(reason(validate(config(req, 200, 60, 0, 72), f)).find("exceeds"), std::string::npos);
    EXPECT_NE(reason(validate(config(req, 0, 60, 0, 70), f)).find("12 + config size"), std::string::npos);
    EXPECT_NE(reason(validate(config(req, 0, 60, 2, 72), f)).find("flags"), std::string::npos);
    EXPECT_FALSE(validate(config(req, 0, 60, 0, 8), f));  // shorter than the header
  }
  EXPECT_TRUE(validate(config(FrontendReq::get_config, 0, 0, 0, 12), f).error().close_connection);
}

TEST(MessageTableTest, AddAndRemMemReg) {
  auto slots = proto_bit(kProtoFConfigureMemSlots);
  SingleMemRegion r{0, MemoryRegion{0, 0x200000, 0x7f0000000000ull, 0}};
  EXPECT_TRUE(validate(make_with(FrontendReq::add_mem_reg, r, 1), slots));
  EXPECT_FALSE(validate(make_with(FrontendReq::add_mem_reg, r, 0), slots));
  EXPECT_FALSE(validate(make_with(FrontendReq::add_mem_reg, r, 2), slots));
  // REM_MEM_REG: "No file descriptors SHOULD be passed ... the back-end MAY accept [one]".
  EXPECT_TRUE(validate(make_with(FrontendReq::rem_mem_reg, r, 0), slots));
  EXPECT_TRUE(validate(make_with(FrontendReq::rem_mem_reg, r, 1), slots));
  EXPECT_FALSE(validate(make_with(FrontendReq::rem_mem_reg, r, 2), slots));
  EXPECT_FALSE(validate(make_with(FrontendReq::add_mem_reg, r, 1, 48), slots));
  EXPECT_TRUE(validate(make_with(FrontendReq::add_mem_reg, r, 1, 48), slots | proto_bit(kProtoFXenMmap)));
  SingleMemRegion empty{0, MemoryRegion{0, 0, 0, 0}};
  EXPECT_FALSE(validate(make_with(FrontendReq::add_mem_reg, empty, 1), slots));
}

TEST(MessageTableTest, InflightIs24Bytes) {
  auto f = proto_bit(kProtoFInflightShmfd);
  InflightDesc d{0, 0, 2, 256, {}};
  EXPECT_TRUE(validate(make_with(FrontendReq::get_inflight_fd, d), f));
  EXPECT_TRUE(validate(make_with(FrontendReq::set_inflight_fd, d, 1), f));
  EXPECT_FALSE(validate(make_with(FrontendReq::get_inflight_fd, d, 0, 20), f));  // packed size
}

TEST(MessageTableTest, DeviceStateTransferParameters) {
  auto f = proto_bit(kProtoFDeviceState);
  EXPECT_TRUE(validate(make_with(FrontendReq::set_device_state_fd, DeviceStateTransfer{1, 0}, 1), f));
  EXPECT_FALSE(validate(make_with(FrontendReq::set_device_state_fd, DeviceStateTransfer{2, 0}, 1), f));
  EXPECT_FALSE(validate(make_with(FrontendReq::set_device_state_fd, DeviceStateTransfer{0, 1}, 1), f));
}

TEST(MessageTableTest, NoPayloadMessagesRejectAPayload) {
  auto r = validate(make(FrontendReq::get_features, 8), 0);
  EXPECT_EQ(reason(r), "GET_FEATURES payload is 8 bytes, expected 0");
}

// ---- back-end channel ----

TEST(MessageTableTest, BackendRequests) {
  auto f = kAllFeatures & ~proto_bit(kProtoFBackendSendFd);
  EXPECT_TRUE(validate_backend(make_with(BackendReq::backend_vring_call, VringState{1, 0}), f));
  EXPECT_FALSE(validate_backend(make_with(BackendReq::backend_vring_call, VringState{1, 1}), f));
  EXPECT_FALSE(validate_backend(make(BackendReq::backend_config_change_msg, 0),
                                f & ~proto_bit(kProtoFConfig)));
  VringArea area{0, 4096, 0};
  auto no_send_fd = validate_backend(make_with(BackendReq::backend_vring_host_notifier_msg, area, 1), f);
  EXPECT_NE(reason(no_send_fd).find("BACKEND_SEND_FD"), std::string::npos);
  EXPECT_TRUE(validate_backend(make_with(BackendReq::backend_vring_host_notifier_msg, area, 1), kAllFeatures));
  EXPECT_FALSE(validate_backend(make(static_cast<BackendReq>(9), 0), kAllFeatures));
  EXPECT_FALSE(validate_backend(make(BackendReq::backend_iotlb_msg, 26), kAllFeatures));
}

// ---- replies ----

Message reply_msg(std::uint32_t req, std::size_t size, std::size_t nfds = 0,
                  std::uint32_t flags = kVersion | kFlagReply) {
  Message m = make(static_cast<FrontendReq>(req), size, nfds, flags);
  return m;
}

TEST(MessageTableTest, ValidateReply) {
  const auto& gf = *find_spec(FrontendReq::get_features);
  EXPECT_TRUE(validate_reply(reply_msg(1, 8), gf, ReplyKind::body));
  EXPECT_FALSE(validate_reply(reply_msg(2, 8), gf, ReplyKind::body));             // wrong id
  EXPECT_FALSE(validate_reply(reply_msg(1, 8, 0, kVersion), gf, ReplyKind::body)); // no REPLY flag
  EXPECT_FALSE(validate_reply(reply_msg(1, 4), gf, ReplyKind::body));
  EXPECT_FALSE(validate_reply(reply_msg(1, 8, 1), gf, ReplyKind::body));
  const auto& inflight = *find_spec(FrontendReq::get_inflight_fd);
  EXPECT_TRUE(validate_reply(reply_msg(31, 24, 1), inflight, ReplyKind::body));
  const auto& num = *find_spec(FrontendReq::set_vring_num);
  EXPECT_TRUE(validate_reply(reply_msg(8, 8), num, ReplyKind::ack));
  EXPECT_FALSE(validate_reply(reply_msg(8, 0), num, ReplyKind::ack));
}

}  // namespace
}  // namespace vireo::proto
