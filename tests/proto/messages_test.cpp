// Wire layout of every payload against vhost-user.rst "Payload", plus the small encodings.
#include <gtest/gtest.h>

#include <cstddef>

#include "proto/messages.hpp"

namespace vireo::proto {
namespace {

TEST(MessagesTest, HeaderIsThreeU32InOrder) {
  EXPECT_EQ(sizeof(MsgHeader), 12u);
  EXPECT_EQ(offsetof(MsgHeader, request), 0u);
  EXPECT_EQ(offsetof(MsgHeader, flags), 4u);
  EXPECT_EQ(offsetof(MsgHeader, size), 8u);
  EXPECT_EQ(kVersion, 1u);
  EXPECT_EQ(kVersionMask, 3u);
  EXPECT_EQ(kFlagReply, 4u);
  EXPECT_EQ(kFlagNeedReply, 8u);
}

TEST(MessagesTest, VringStateAndAddr) {
  EXPECT_EQ(sizeof(VringState), 8u);
  EXPECT_EQ(offsetof(VringState, num), 4u);
  EXPECT_EQ(sizeof(VringAddr), 40u);
  EXPECT_EQ(offsetof(VringAddr, flags), 4u);
  EXPECT_EQ(offsetof(VringAddr, desc_user_addr), 8u);
  EXPECT_EQ(offsetof(VringAddr, used_user_addr), 16u);
  EXPECT_EQ(offsetof(VringAddr, avail_user_addr), 24u);
  EXPECT_EQ(offsetof(VringAddr, log_guest_addr), 32u);
  EXPECT_EQ(kVringFLog, 1u);
}

TEST(MessagesTest, MemoryDescriptions) {
  EXPECT_EQ(sizeof(MemoryRegion), 32u);
  EXPECT_EQ(offsetof(MemoryRegion, memory_size), 8u);
  EXPECT_EQ(offsetof(MemoryRegion, userspace_addr), 16u);
  EXPECT_EQ(offsetof(MemoryRegion, mmap_offset), 24u);
  EXPECT_EQ(sizeof(MemoryTable), 8u + 8u * 32u);
  EXPECT_EQ(offsetof(MemoryTable, padding), 4u);
  EXPECT_EQ(offsetof(MemoryTable, regions), 8u);
  EXPECT_EQ(sizeof(SingleMemRegion), 40u);
  EXPECT_EQ(offsetof(SingleMemRegion, region), 8u);
  EXPECT_EQ(kMemoryRegionXenSize, 40u);
  EXPECT_EQ(sizeof(LogDesc), 16u);
  EXPECT_EQ(offsetof(LogDesc, mmap_offset), 8u);
}

TEST(MessagesTest, IotlbIsNaturallyPadded) {
  // struct vhost_iotlb_msg is not packed: 3 x u64 + 2 x u8 + 6 bytes tail padding.
  EXPECT_EQ(sizeof(IotlbMsg), 32u);
  EXPECT_EQ(offsetof(IotlbMsg, uaddr), 16u);
  EXPECT_EQ(offsetof(IotlbMsg, perm), 24u);
  EXPECT_EQ(offsetof(IotlbMsg, type), 25u);
}

TEST(MessagesTest, ConfigAreaInflightSharedDeviceState) {
  EXPECT_EQ(sizeof(ConfigHeader), 12u);
  EXPECT_EQ(offsetof(ConfigHeader, size), 4u);
  EXPECT_EQ(offsetof(ConfigHeader, flags), 8u);
  EXPECT_EQ(kMaxConfigSize, 256u);
  EXPECT_EQ(sizeof(VringArea), 24u);
  EXPECT_EQ(offsetof(VringArea, offset), 16u);
  // VhostUserInflight is not packed in QEMU: 24 bytes on the wire, not 20.
  EXPECT_EQ(sizeof(InflightDesc), 24u);
  EXPECT_EQ(offsetof(InflightDesc, num_queues), 16u);
  EXPECT_EQ(offsetof(InflightDesc, queue_size), 18u);
  EXPECT_EQ(sizeof(SharedObject), 16u);
  EXPECT_EQ(sizeof(DeviceStateTransfer), 8u);
  EXPECT_EQ(offsetof(DeviceStateTransfer, phase), 4u);
}

TEST(MessagesTest, RequestIdsMatchRst) {
  EXPECT_EQ(static_cast<std::uint32_t>(FrontendReq::get_features), 1u);
  EXPECT_EQ(static_cast<std::uint32_t>(FrontendReq::set_mem_table), 5u);
  EXPECT_EQ(static_cast<std::uint32_t>(FrontendReq::get_protocol_features), 15u);
  EXPECT_EQ(static_cast<std::uint32_t>(FrontendReq::set_backend_req_fd), 21u);
  EXPECT_EQ(static_cast<std::uint32_t>(FrontendReq::vring_kick), 35u);
  EXPECT_EQ(static_cast<std::uint32_t>(FrontendReq::check_device_state), 43u);
  EXPECT_EQ(static_cast<std::uint32_t>(BackendReq::backend_iotlb_msg), 1u);
  EXPECT_EQ(static_cast<std::uint32_t>(BackendReq::backend_shared_object_lookup), 8u);
  EXPECT_EQ(to_string(FrontendReq::set_vring_num), "SET_VRING_NUM");
  EXPECT_EQ(to_string(FrontendReq::set_backend_req_fd), "SET_BACKEND_REQ_FD");
  EXPECT_EQ(to_string(static_cast<FrontendReq>(44)), "UNKNOWN");
  EXPECT_EQ(to_string(BackendReq::backend_vring_call), "BACKEND_VRING_CALL");
  EXPECT_EQ(to_string(static_cast<BackendReq>(0)), "UNKNOWN");
}

TEST(MessagesTest, ProtocolFeatureBitsMatchRst) {
  EXPECT_EQ(kProtoFMq, 0u);
  EXPECT_EQ(kProtoFReplyAck, 3u);
  EXPECT_EQ(kProtoFBackendReq, 5u);
  EXPECT_EQ(kProtoFInflightShmfd, 12u);
  EXPECT_EQ(kProtoFConfigureMemSlots, 15u);
  EXPECT_EQ(kProtoFDeviceState, 19u);
  EXPECT_EQ(kVhostUserFProtocolFeatures, 30u);
  EXPECT_TRUE(has_proto(proto_bit(kProtoFStatus), kProtoFStatus));
  EXPECT_FALSE(has_proto(proto_bit(kProtoFStatus), kProtoFMq));
}

TEST(MessagesTest, VringFileEncoding) {
  static_assert(encode_vring_file(3, false) == 3);
  static_assert(encode_vring_file(255, true) == 0x1ff);
  EXPECT_EQ(vring_file_index(0x1ff), 255);
  EXPECT_TRUE(vring_file_nofd(0x100));
  EXPECT_FALSE(vring_file_nofd(0xff));
}

TEST(MessagesTest, SplitVringBaseRoundTrip) {
  for (std::uint32_t i = 0; i <= 0xffff; ++i) {
    auto b = decode_vring_base(encode_vring_base(VringBase{static_cast<std::uint16_t>(i)}, false), false);
    ASSERT_EQ(b.avail_idx, i);
  }
  EXPECT_EQ(encode_split_base(0xbeef), 0xbeefu);
  EXPECT_TRUE(split_base_reserved_clear(0xffff));
  EXPECT_FALSE(split_base_reserved_clear(0x10000));
}

TEST(MessagesTest, PackedVringBaseBitPositions) {
  // bits 0-14 last_avail_idx, 15 avail wrap, 16-30 last_used_idx, 31 used wrap.
  static_assert(encode_packed_base(VringBase{0, true, 0, false}) == 0x8000u);
  static_assert(encode_packed_base(VringBase{0, false, 0, true}) == 0x80000000u);
  static_assert(encode_packed_base(VringBase{0x7fff, false, 0, false}) == 0x7fffu);
  static_assert(encode_packed_base(VringBase{0, false, 0x7fff, false}) == 0x7fff0000u);
  static_assert(decode_packed_base(0x80010002u) == VringBase{2, false, 1, true});
}

TEST(MessagesTest, PackedVringBaseRoundTripsEveryIndexAndWrap) {
  for (std::uint32_t idx = 0; idx < 0x8000; idx += 7) {
    for (int w = 0; w < 4; ++w) {
      VringBase b{static_cast<std::uint16_t>(idx), (w & 1) != 0,
                  static_cast<std::uint16_t>(0x7fff - idx), (w & 2) != 0};
      ASSERT_EQ(decode_vring_base(encode_vring_base(b, true), true), b);
    }
  }
  for (std::uint64_t num = 0; num <= 0xffffffffu; num += 0x10001) {
    auto n = static_cast<std::uint32_t>(num);
    ASSERT_EQ(encode_packed_base(decode_packed_base(n)), n);
  }
}

}  // namespace
}  // namespace vireo::proto
