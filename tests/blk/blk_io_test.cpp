// virtio-blk data path on both ring layouts: writes and reads at several offsets and buffer
// shapes, flush, GET_ID, discard, write zeroes, queue depth 32 with out-of-order completion,
// queue_stopping draining in-flight I/O, multiqueue, batching of calls, config space.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "tests/blk/blk_harness.hpp"

namespace vireo::test {
namespace {

using namespace device::blk;

std::vector<std::byte> concat(const std::vector<std::vector<std::byte>>& parts) {
  std::vector<std::byte> all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

std::vector<std::byte> original(std::uint64_t off, std::size_t len) {
  std::vector<std::byte> v(len);
  for (std::size_t i = 0; i < len; ++i) v[i] = TempImage::pattern(off + i);
  return v;
}

template <class L>
class BlkIoTest : public ::testing::Test {};
TYPED_TEST_SUITE(BlkIoTest, RingLayouts, LayoutNames);

TYPED_TEST(BlkIoTest, WriteThenReadBackAtSeveralOffsets) {
  BlkHarness<TypeParam> h;
  const std::uint64_t cap = h.backend->config().capacity;
  ASSERT_EQ(cap, 2048u);
  unsigned seed = 1;
  for (std::uint64_t sector : {std::uint64_t{0}, std::uint64_t{7}, std::uint64_t{1000}, cap - 8}) {
    SCOPED_TRACE(sector);
    // Three segments (512 + 1024 + 2560) written, read back as two (1536 + 2560).
    Buf a = h.pattern(512, seed++), b = h.pattern(1024, seed++), c = h.pattern(2560, seed++);
    Submitted w = h.write(sector, {a, b, c});
    h.kick();
    ASSERT_TRUE(h.wait(1));
    EXPECT_EQ(h.status(w), kSOk);
    EXPECT_EQ(h.used_len(w), 1u);
    const auto written = concat({h.bytes(a), h.bytes(b), h.bytes(c)});
    EXPECT_EQ(h.image.read(sector * 512, 4096), written);

    Buf x = h.data(1536, std::byte{0}), y = h.data(2560, std::byte{0});
    Submitted r = h.read(sector, {x, y});
    h.kick();
    ASSERT_TRUE(h.wait(1));
    EXPECT_EQ(h.status(r), kSOk);
    EXPECT_EQ(h.used_len(r), 4097u);  // data + status
    EXPECT_EQ(concat({h.bytes(x), h.bytes(y)}), written);
  }
  EXPECT_EQ(h.image.read(15 * 512, 985 * 512), original(15 * 512, 985 * 512))
      << "bytes between the written ranges changed";
  EXPECT_TRUE(h.guest.guards_intact());
  // --stats: 4 writes + 4 reads of 4096 data bytes each (the status bytes are not data).
  EXPECT_EQ(h.queues[0].q->stats().chains.load(), 8u);
  EXPECT_EQ(h.queues[0].q->stats().bytes.load(), 8u * 4096) << "blk counts the data bytes it moves";
}

TYPED_TEST(BlkIoTest, RegionStraddlingBuffers) {
  BlkHarness<TypeParam> h;
  // 4 KiB starting 2 KiB before the end of the first region: two segments, two host buffers.
  Buf s = h.pattern(4096, 9, h.guest.end() - 2048);
  Submitted w = h.write(16, {s});
  h.kick();
  ASSERT_TRUE(h.wait(1));
  ASSERT_EQ(h.status(w), kSOk);
  EXPECT_EQ(h.image.read(16 * 512, 4096), h.bytes(s));

  // Read back across the edge at an unaligned split (1000 + 3096): buffered I/O path.
  Buf d{h.guest.end() - 1000, 4096};
  h.guest.fill(d.gpa, d.len, std::byte{0});
  Submitted r = h.read(16, {d});
  h.kick();
  ASSERT_TRUE(h.wait(1));
  EXPECT_EQ(h.status(r), kSOk);
  EXPECT_EQ(h.bytes(d), h.image.read(16 * 512, 4096));
}

TYPED_TEST(BlkIoTest, UnalignedSegmentsFallBackToBufferedIo) {
  BlkHarness<TypeParam> h;
  // 100 + 412 bytes at odd guest addresses, then 512: fine for virtio (total 1024), not O_DIRECT.
  Buf a = h.pattern(100, 3, h.alloc(128) + 8), b = h.pattern(412, 4, h.alloc(512) + 3);
  Buf c = h.pattern(512, 5);
  Submitted w = h.write(33, {a, b, c});
  h.kick();
  ASSERT_TRUE(h.wait(1));
  ASSERT_EQ(h.status(w), kSOk);
  const auto written = concat({h.bytes(a), h.bytes(b), h.bytes(c)});
  EXPECT_EQ(h.image.read(33 * 512, 1024), written);
  Buf x{h.alloc(1100) + 5, 1024};
  Submitted r = h.read(33, {x});
  h.kick();
  ASSERT_TRUE(h.wait(1));
  EXPECT_EQ(h.status(r), kSOk);
  EXPECT_EQ(h.bytes(x), written);
}

TYPED_TEST(BlkIoTest, RequestsLongerThanTheIovLimitGoInParts) {
  BlkOptions opt;
  opt.max_iov_per_op = 2;  // 7 segments -> 4 readv/writev calls
  BlkHarness<TypeParam> h(opt);
  std::vector<Buf> segs;
  for (unsigned i = 0; i < 7; ++i) segs.push_back(h.pattern(512, 40 + i));
  Submitted w = h.write(100, segs);
  h.kick();
  ASSERT_TRUE(h.wait(1));
  ASSERT_EQ(h.status(w), kSOk);
  std::vector<std::vector<std::byte>> parts;
  for (const Buf& s : segs) parts.push_back(h.bytes(s));
  EXPECT_EQ(h.image.read(100 * 512, 7 * 512), concat(parts));
  std::vector<Buf> back;
  for (unsigned i = 0; i < 7; ++i) back.push_back(h.data(512, std::byte{0}));
  Submitted r = h.read(100, back);
  h.kick();
  ASSERT_TRUE(h.wait(1));
  EXPECT_EQ(h.status(r), kSOk);
  EXPECT_EQ(h.used_len(r), 7u * 512 + 1);
  for (unsigned i = 0; i < 7; ++i) EXPECT_EQ(h.bytes(back[i]), parts[i]) << i;
}

TYPED_TEST(BlkIoTest, ShortReadIsContinuedThenEndOfFileIsIoErr) {
  BlkHarness<TypeParam> h;
  // The image shrinks under the device: the last 4 KiB read gets 3 KiB, then end of file.
  h.image.truncate((1u << 20) - 1024);
  Buf b = h.data(4096, std::byte{0xCC});
  Submitted r = h.read(2040, {b});
  h.kick();
  ASSERT_TRUE(h.wait(1));
  EXPECT_EQ(h.status(r), kSIoErr);
  EXPECT_EQ(h.used_len(r), 4096u + 1) << "the writable part up to the status byte";
  std::vector<std::byte> got = h.bytes(b);
  got.resize(3072);
  EXPECT_EQ(got, original(2040 * 512, 3072));
}

TYPED_TEST(BlkIoTest, BufferedOnlyImage) {
  BlkOptions opt;
  opt.try_direct = false;
  BlkHarness<TypeParam> h(opt);
  EXPECT_FALSE(h.backend->image().has_direct());
  Buf a = h.pattern(4096, 21);
  Submitted w = h.write(40, {a});
  Buf x = h.data(4096, std::byte{0});
  h.kick();
  ASSERT_TRUE(h.wait(1));
  Submitted r = h.read(40, {x});
  h.kick();
  ASSERT_TRUE(h.wait(1));
  EXPECT_EQ(h.status(w), kSOk);
  EXPECT_EQ(h.status(r), kSOk);
  EXPECT_EQ(h.bytes(x), h.bytes(a));
}

TYPED_TEST(BlkIoTest, FlushCompletesAfterWrites) {
  BlkHarness<TypeParam> h;
  Submitted w = h.write(0, {h.pattern(4096, 77)});
  Submitted f = h.request(kTFlush, 0, {}, {});
  h.kick();
  ASSERT_TRUE(h.wait(2));
  EXPECT_EQ(h.status(w), kSOk);
  EXPECT_EQ(h.status(f), kSOk);
  EXPECT_EQ(h.used_len(f), 1u);
}

TYPED_TEST(BlkIoTest, GetIdReturnsTheSerial) {
  for (std::string serial : {std::string("disk-42"), std::string("ABCDEFGHIJKLMNOPQRST")}) {
    BlkOptions opt;
    opt.serial = serial;
    BlkHarness<TypeParam> h(opt);
    Buf id = h.data(kIdBytes, std::byte{0xEE});
    Submitted g = h.request(kTGetId, 0, {}, {id});
    h.kick();
    ASSERT_TRUE(h.wait(1));
    EXPECT_EQ(h.status(g), kSOk);
    EXPECT_EQ(h.used_len(g), kIdBytes + 1);
    std::vector<std::byte> want(kIdBytes, std::byte{0});  // §5.2.6: zero padded, no NUL if 20
    std::memcpy(want.data(), serial.data(), serial.size());
    EXPECT_EQ(h.bytes(id), want) << serial;
  }
}

TYPED_TEST(BlkIoTest, DiscardReadsBackAsZeroesAndKeepsTheRest) {
  BlkHarness<TypeParam> h;
  const auto size_before = h.image.contents().size();
  Submitted d = h.segments(kTDiscard, {{8, 16, 0}, {64, 8, 0}});
  h.kick();
  ASSERT_TRUE(h.wait(1));
  ASSERT_EQ(h.status(d), kSOk);
  const auto now = h.image.contents();
  EXPECT_EQ(now.size(), size_before) << "discard changed the image size";
  std::vector<std::byte> want = original(0, now.size());
  std::fill(want.begin() + 8 * 512, want.begin() + 24 * 512, std::byte{0});
  std::fill(want.begin() + 64 * 512, want.begin() + 72 * 512, std::byte{0});
  EXPECT_EQ(now, want);
}

TYPED_TEST(BlkIoTest, WriteZeroesWithAndWithoutUnmap) {
  BlkHarness<TypeParam> h;
  EXPECT_EQ(h.backend->config().write_zeroes_may_unmap, 1);
  Submitted z = h.segments(kTWriteZeroes, {{1, 3, 0}, {100, 9, kWriteZeroesFlagUnmap}});
  h.kick();
  ASSERT_TRUE(h.wait(1));
  ASSERT_EQ(h.status(z), kSOk);
  const auto now = h.image.contents();
  std::vector<std::byte> want = original(0, now.size());
  std::fill(want.begin() + 1 * 512, want.begin() + 4 * 512, std::byte{0});
  std::fill(want.begin() + 100 * 512, want.begin() + 109 * 512, std::byte{0});
  EXPECT_EQ(now, want);
  // And through the device: reads of the zeroed range return zeroes.
  Buf x = h.data(3 * 512, std::byte{0xAB});
  Submitted r = h.read(1, {x});
  h.kick();
  ASSERT_TRUE(h.wait(1));
  EXPECT_TRUE(h.guest.all_equal(x.gpa, x.len, std::byte{0}));
  EXPECT_EQ(h.status(r), kSOk);
}

TYPED_TEST(BlkIoTest, QueueDepth32CompletesOutOfOrder) {
  BlkHarness<TypeParam> h({}, 1u << 20, /*queue_size=*/128);  // 3 descriptors per request
  struct Read {
    Submitted req;
    Buf buf;
    std::uint64_t sector;
  };
  std::vector<Read> reads;
  std::uint64_t sector = 5;
  for (int i = 0; i < 31; ++i) {
    sector = (sector * 1103515245 + 12345) % (2048 - 8);
    Buf b = h.data(4096, std::byte{0xCC});
    reads.push_back({h.read(sector, {b}), b, sector});
  }
  Buf id = h.data(kIdBytes, std::byte{0});
  Submitted g = h.request(kTGetId, 0, {}, {id});  // the 32nd, answered without I/O
  h.kick();
  h.reap(h.queues[0]);
  // Every request is either in flight or used (page-cache hits may complete inside the submit).
  EXPECT_EQ(h.backend->outstanding(0) + h.queues[0].order.size(), 32u);
  ASSERT_TRUE(h.wait(32 - h.queues[0].order.size()));
  // The last request made available is the first one used: completion order != ring order.
  EXPECT_EQ(h.queues[0].order.front(), g.id);
  for (std::size_t i = 0; i < reads.size(); ++i) {
    EXPECT_EQ(h.status(reads[i].req), kSOk) << i;
    EXPECT_EQ(h.used_len(reads[i].req), 4097u) << i;
    EXPECT_EQ(h.bytes(reads[i].buf), original(reads[i].sector * 512, 4096)) << i;
  }
  EXPECT_EQ(h.backend->outstanding(0), 0u);
}

TYPED_TEST(BlkIoTest, QueueStoppingDrainsInFlightIo) {
  BlkHarness<TypeParam> h({}, 1u << 20, /*queue_size=*/128);
  std::vector<std::pair<Submitted, Buf>> writes;
  for (unsigned i = 0; i < 32; ++i) {
    Buf b = h.pattern(4096, i);
    writes.emplace_back(h.write(i * 8, {b}), b);
  }
  h.kick();
  h.reap(h.queues[0]);
  // (On a disk, O_DIRECT writes are still in flight here; on tmpfs they may all be done.)
  EXPECT_EQ(h.backend->outstanding(0) + h.queues[0].order.size(), 32u);
  h.backend->queue_stopping(*h.queues[0].q);  // GET_VRING_BASE: no complete() call at all
  EXPECT_EQ(h.backend->outstanding(0), 0u);
  h.reap(h.queues[0]);
  ASSERT_EQ(h.queues[0].order.size(), 32u) << "every request pushed before queue_stopping returns";
  for (unsigned i = 0; i < 32; ++i) {
    EXPECT_EQ(h.status(writes[i].first), kSOk) << i;
    EXPECT_EQ(h.image.read(i * 8 * 512, 4096), h.bytes(writes[i].second)) << i;
  }
}

TYPED_TEST(BlkIoTest, QueuesAreIndependent) {
  BlkHarness<TypeParam> h({}, 1u << 20, 64, /*nqueues=*/2);
  EXPECT_NE(h.backend->completion_fd(*h.queues[0].q), h.backend->completion_fd(*h.queues[1].q));
  Buf b = h.data(4096, std::byte{0});
  Submitted r = h.read(24, {b}, /*qi=*/1);
  h.kick(1);
  EXPECT_EQ(h.backend->outstanding(0), 0u);
  h.reap(h.queues[1]);
  ASSERT_TRUE(h.wait(h.backend->outstanding(1), 1));  // in flight, or already used in the kick
  ASSERT_EQ(h.queues[1].order.size(), 1u);
  EXPECT_EQ(h.status(r), kSOk);
  EXPECT_EQ(h.bytes(b), original(24 * 512, 4096));
  h.reap(h.queues[0]);
  EXPECT_TRUE(h.queues[0].order.empty());
}

TYPED_TEST(BlkIoTest, OneCallPerCompletionBatch) {
  BlkHarness<TypeParam> h;
  device::VirtQueue& q = *h.queues[0].q;
  for (int i = 0; i < 4; ++i) h.request(kTGetId, 0, {}, {h.data(kIdBytes, std::byte{0})});
  h.kick();  // four inline completions: one flush, one call
  EXPECT_EQ(q.stats().calls.load(), 1u);
  for (int i = 0; i < 8; ++i) h.read(static_cast<std::uint64_t>(i) * 8, {h.data(4096, std::byte{0})});
  h.kick();  // completions found right after the submit share the burst's call
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let all 8 CQEs arrive
  h.backend->complete(q);
  h.reap(h.queues[0]);
  EXPECT_EQ(h.queues[0].order.size(), 12u);
  EXPECT_EQ(q.stats().calls.load(), 2u) << "8 completions published together: one call";
  std::uint64_t signalled = 0;
  ASSERT_EQ(::read(h.queues[0].call.get(), &signalled, sizeof signalled), 8);
  EXPECT_EQ(signalled, 2u);
}

TYPED_TEST(BlkIoTest, ConfigSpaceAndFeatures) {
  BlkOptions opt;
  opt.num_queues = 3;
  BlkHarness<TypeParam> h(opt, 3u << 20);
  const device::DeviceInfo info = h.backend->info();
  EXPECT_EQ(info.device_id, 2u);
  EXPECT_EQ(info.num_queues, 3u);
  EXPECT_EQ(info.config_size, 60u);
  EXPECT_FALSE(info.in_order);
  for (unsigned f : {kFSegMax, kFBlkSize, kFFlush, kFDiscard, kFWriteZeroes, kFMq})
    EXPECT_TRUE(info.device_features & (std::uint64_t{1} << f)) << f;
  EXPECT_FALSE(info.device_features & (std::uint64_t{1} << kFRo));
  std::byte raw[60];
  h.backend->read_config(0, raw);
  Config c{};
  std::memcpy(&c, raw, sizeof raw);
  EXPECT_EQ(c.capacity, 6144u);
  EXPECT_EQ(c.blk_size, 512u);
  EXPECT_EQ(c.seg_max, 254u);
  EXPECT_EQ(c.num_queues, 3u);
  EXPECT_EQ(c.max_discard_seg, 16u);
  EXPECT_EQ(c.max_write_zeroes_seg, 16u);
  EXPECT_EQ(c.discard_sector_alignment, 1u);
  EXPECT_EQ(c.write_zeroes_may_unmap, 1u);
  std::byte part[4];  // a partial read at an offset: num_queues + 2 bytes of max_discard_sectors
  h.backend->read_config(34, part);
  EXPECT_EQ(std::memcmp(part, raw + 34, 4), 0);
}

}  // namespace
}  // namespace vireo::test
