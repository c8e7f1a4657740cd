// virtio-blk driver: request slots in shared memory, submission, completion, config space.
#include "driver/blk.hpp"

#include <cstring>

#include "base/log.hpp"
#include "vring/barriers.hpp"

namespace vireo::driver {
namespace {

using vring::feature_bit;
using vring::has_feature;

// The virtio-blk features this driver can use (§5.2.3).
constexpr std::uint64_t kDriverFeatures =
    feature_bit(proto::blk::kFSegMax) | feature_bit(proto::blk::kFBlkSize) | feature_bit(proto::blk::kFFlush) |
    feature_bit(proto::blk::kFDiscard) | feature_bit(proto::blk::kFWriteZeroes) | feature_bit(proto::blk::kFRo);

// Per request slot in shared memory: the §5.2.6 header (proto::blk::ReqHeader), the
// discard/write-zeroes segment, the status byte.
constexpr std::size_t kSlotBytes = 64;
constexpr std::size_t kDwzOff = 16;
constexpr std::size_t kStatusOff = 32;
constexpr std::uint8_t kStatusUnset = 0xff;  // the device did not write a status byte

Unexpected<Error> ring_broken(vring::Errc e) {
  VIREO_LOG_ERROR("virtio-blk queue 0 is broken: the back-end %s", vring::to_string(e));
  return error(Error::Kind::device, std::string("virtio-blk queue 0: ") + vring::to_string(e));
}

template <class T>
T config_field(const std::vector<std::byte>& cfg, std::size_t off) {
  T v{};
  if (off + sizeof(T) <= cfg.size()) std::memcpy(&v, cfg.data() + off, sizeof(T));
  return v;
}

}  // namespace

BlkDriver::BlkDriver(const BlkOptions& options) : options_(options) {}
BlkDriver::~BlkDriver() = default;

Result<std::unique_ptr<BlkDriver>> BlkDriver::open(const BlkOptions& o) {
  if (o.depth == 0 || std::uint32_t{o.depth} * 3 > o.queue_size)
    return error(Error::Kind::unsupported, "depth must be 1..queue_size/3 (a request takes up to 3 descriptors); "
                                           "raise --queue-size");
  std::unique_ptr<BlkDriver> d(new BlkDriver(o));
  const std::size_t rings = 16u * o.queue_size + 4096 * 3;
  auto mem = GuestMemory::create({.size = rings + std::size_t{o.depth} * kSlotBytes + o.buffer_pool + (1u << 20),
                                  .hugepages = o.hugepages});
  if (!mem) return error(Error::Kind::resource, mem.error());
  d->mem_ = std::move(*mem);
  FrontendOptions fo{.socket_path = o.socket_path,
                     .server = o.server,
                     .features = kDriverFeatures,
                     .layout = o.layout,
                     .event_idx = o.event_idx,
                     .num_queues = 1,
                     .queue_size = o.queue_size,
                     .connect_timeout_ms = o.connect_timeout_ms,
                     .inflight = o.inflight};
  auto fe = Frontend::open(fo, d->mem_);
  if (!fe) return Unexpected(fe.error());
  d->fe_ = std::move(*fe);
  if (auto ok = d->read_config(); !ok) return Unexpected(ok.error());
  if (auto ok = d->setup_slots(); !ok) return Unexpected(ok.error());
  return d;
}

// §5.2.4: capacity always; blk_size, seg_max, discard / write-zeroes limits only when their
// feature was negotiated.
Result<void> BlkDriver::read_config() {
  auto cfg = fe_->get_config(0, proto::blk::kConfigSize);
  if (!cfg) return Unexpected(cfg.error());
  const std::uint64_t f = fe_->features();
  using C = proto::blk::Config;
  config_.capacity = config_field<std::uint64_t>(*cfg, offsetof(C, capacity));
  if (has_feature(f, proto::blk::kFSegMax))
    config_.seg_max = config_field<std::uint32_t>(*cfg, offsetof(C, seg_max));
  if (has_feature(f, proto::blk::kFBlkSize))
    config_.blk_size = config_field<std::uint32_t>(*cfg, offsetof(C, blk_size));
  if (has_feature(f, proto::blk::kFDiscard))
    config_.max_discard_sectors = config_field<std::uint32_t>(*cfg, offsetof(C, max_discard_sectors));
  if (has_feature(f, proto::blk::kFWriteZeroes))
    config_.max_write_zeroes_sectors = config_field<std::uint32_t>(*cfg, offsetof(C, max_write_zeroes_sectors));
  if (config_.blk_size < proto::blk::kSectorSize || (config_.blk_size & (config_.blk_size - 1)) != 0) {
    VIREO_LOG_WARN("virtio-blk: device reports blk_size %u; using 512", config_.blk_size);
    config_.blk_size = proto::blk::kSectorSize;
  }
  return {};
}

Result<void> BlkDriver::setup_slots() {
  auto a = mem_.alloc(std::size_t{options_.depth} * kSlotBytes, 64);
  if (!a) return error(Error::Kind::resource, a.error());
  slot_area_ = *a;
  user_.assign(options_.depth, 0);
  free_.reserve(options_.depth);
  for (std::uint16_t s = options_.depth; s-- > 0;) free_.push_back(s);
  // Completions are polled; wait() re-enables used-buffer notifications around a sleep.
  vring::process_burst(fe_->queue(0).ring, [](auto& ring) { ring.disable_cb(); });
  return {};
}

Result<std::span<std::byte>> BlkDriver::alloc_buffer(std::size_t len, std::size_t align) {
  auto a = mem_.alloc(len, align);
  if (!a) return error(Error::Kind::resource, a.error());
  return a->bytes();
}

// §5.2.6: header (device-readable), data (readable for OUT, writable for IN), status (writable).
Result<void> BlkDriver::add_request(auto& ring, const BlkRequest& rq) {
  const std::uint16_t slot = free_.back();
  std::byte* s = slot_area_.host + std::size_t{slot} * kSlotBytes;
  const std::uint64_t gpa = slot_area_.gpa + std::size_t{slot} * kSlotBytes;
  // §5.2.6: sector is unused (0) for anything but IN / OUT; discard and write-zeroes carry it in
  // their own segment.
  const bool rw = rq.op == BlkOp::in || rq.op == BlkOp::out;
  const proto::blk::ReqHeader hdr{static_cast<std::uint32_t>(rq.op), 0, rw ? rq.sector : 0};
  std::memcpy(s, &hdr, sizeof hdr);
  s[kStatusOff] = std::byte{kStatusUnset};
  std::array<vring::DriverBuffer, 2> out{vring::DriverBuffer{gpa, sizeof(proto::blk::ReqHeader)}, {}};
  std::size_t nout = 1;
  std::array<vring::DriverBuffer, 2> in{};
  std::size_t nin = 0;
  switch (rq.op) {
    case BlkOp::in:
    case BlkOp::out: {
      std::uint64_t data_gpa = 0;
      if (rq.buf.empty() || rq.buf.size() % proto::blk::kSectorSize != 0 || rq.buf.size() > 0xffffffffu ||
          !mem_.gpa_of(rq.buf.data(), rq.buf.size(), data_gpa))
        return error(Error::Kind::unsupported, "read/write buffer must come from alloc_buffer() and be a multiple of 512 bytes");
      const vring::DriverBuffer data{data_gpa, static_cast<std::uint32_t>(rq.buf.size())};
      if (rq.op == BlkOp::out) out[nout++] = data;
      else in[nin++] = data;
      break;
    }
    case BlkOp::discard:
    case BlkOp::write_zeroes: {
      const proto::blk::DiscardWriteZeroesSeg dwz{rq.sector, rq.num_sectors,
                                                 rq.unmap ? proto::blk::kWriteZeroesFlagUnmap : 0u};
      std::memcpy(s + kDwzOff, &dwz, sizeof dwz);
      out[nout++] = vring::DriverBuffer{gpa + kDwzOff, sizeof dwz};
      break;
    }
    case BlkOp::flush:
    case BlkOp::get_id:
      break;
  }
  in[nin++] = vring::DriverBuffer{gpa + kStatusOff, 1};
  auto r = ring.add(std::span<const vring::DriverBuffer>(out.data(), nout),
                    std::span<const vring::DriverBuffer>(in.data(), nin), slot);
  if (!r) {
    if (ring.broken()) return ring_broken(ring.error());
    return error(Error::Kind::resource, std::string("virtio-blk submit: ") + vring::to_string(r.error()));
  }
  free_.pop_back();
  user_[slot] = rq.user;
  return {};
}

Result<std::size_t> BlkDriver::submit(std::span<const BlkRequest> requests) {
  return vring::process_burst(fe_->queue(0).ring, [&](auto& ring) -> Result<std::size_t> {
    std::size_t n = 0;
    Result<void> failed;
    for (const BlkRequest& rq : requests) {
      if (free_.empty()) break;
      if (failed = add_request(ring, rq); !failed) break;
      ++n;
    }
    if (ring.kick_prepare()) fe_->kick(0);
    if (!failed && n == 0) return Unexpected(failed.error());
    return n;
  });
}

Result<std::size_t> BlkDriver::poll(std::span<BlkCompletion> out) {
  std::array<vring::DriverUsed, 64> used;
  const std::size_t want = std::min(out.size(), used.size());
  auto got = vring::process_burst(fe_->queue(0).ring, [&](auto& ring) -> Result<std::size_t> {
    auto r = ring.get_used_burst(std::span(used).first(want));
    if (!r) return ring_broken(ring.error());
    return *r;
  });
  if (!got) return got;
  for (std::size_t k = 0; k < *got; ++k) {
    const auto slot = static_cast<std::uint16_t>(used[k].token);
    const std::byte* status = slot_area_.host + std::size_t{slot} * kSlotBytes + kStatusOff;
    out[k] = BlkCompletion{user_[slot], vring::read_once<std::uint8_t>(status), used[k].len};
    free_.push_back(slot);
  }
  return got;
}

Result<void> BlkDriver::wait(int timeout_ms) {
  Queue& q = fe_->queue(0);
  const bool pending = vring::process_burst(q.ring, [](auto& ring) { return ring.enable_cb(); });
  Result<bool> woke = true;
  const std::uint16_t qi = 0;
  if (!pending) woke = fe_->wait_call(std::span(&qi, 1), timeout_ms);
  vring::process_burst(q.ring, [](auto& ring) { ring.disable_cb(); });
  if (!woke) return Unexpected(woke.error());
  return {};
}

Result<bool> BlkDriver::poll_link() {
  if (fe_->check_connection()) return false;
  VIREO_LOG_WARN("virtio-blk: back-end at %s went away; reconnecting", options_.socket_path.c_str());
  if (auto ok = fe_->reconnect(); !ok) return Unexpected(ok.error());
  return true;
}

Result<std::uint8_t> BlkDriver::execute(const BlkRequest& rq) {
  if (in_flight() != 0) return error(Error::Kind::unsupported, "synchronous request while asynchronous ones are in flight");
  BlkRequest tagged = rq;
  tagged.user = ~std::uint64_t{0};
  auto n = submit(std::span(&tagged, 1));
  if (!n) return Unexpected(n.error());
  BlkCompletion c;
  for (int idle = 0;;) {
    auto got = poll(std::span(&c, 1));
    if (!got) return Unexpected(got.error());
    if (*got == 1) return c.status;
    if (auto w = wait(100); !w) return Unexpected(w.error());
    // A back-end that died with the request in flight: reconnect; the resumed ring hands the
    // request to the new back-end and the wait goes on.
    if (auto link = poll_link(); !link) return Unexpected(link.error());
    if (++idle > 300) return error(Error::Kind::device, "virtio-blk: no completion in 30 s (back-end stuck)");
  }
}

Result<std::uint8_t> BlkDriver::read(std::uint64_t sector, std::span<std::byte> buf) {
  return execute(BlkRequest{.op = BlkOp::in, .sector = sector, .buf = buf});
}
Result<std::uint8_t> BlkDriver::write(std::uint64_t sector, std::span<std::byte> buf) {
  return execute(BlkRequest{.op = BlkOp::out, .sector = sector, .buf = buf});
}
Result<std::uint8_t> BlkDriver::flush() { return execute(BlkRequest{.op = BlkOp::flush}); }
Result<std::uint8_t> BlkDriver::discard(std::uint64_t sector, std::uint32_t num_sectors) {
  return execute(BlkRequest{.op = BlkOp::discard, .sector = sector, .num_sectors = num_sectors});
}
Result<std::uint8_t> BlkDriver::write_zeroes(std::uint64_t sector, std::uint32_t num_sectors, bool unmap) {
  return execute(BlkRequest{.op = BlkOp::write_zeroes, .sector = sector, .num_sectors = num_sectors, .unmap = unmap});
}

}  // namespace vireo::driver
