// Session: the ring state machine (rst "Ring states") - SET_VRING_*, GET_VRING_BASE.
#include <string>

#include "base/log.hpp"
#include "device/session.hpp"

#include "vring/packed_resume.hpp"
#include "proto/message_table.hpp"
#include "vring/features.hpp"
#include "vring/layout.hpp"

namespace vireo::device {

using proto::FrontendReq;

namespace {

std::string name_of(const proto::Message& m) {
  return std::string(proto::to_string(static_cast<FrontendReq>(m.hdr.request)));
}

}  // namespace

Expected<Session::VringSlot*, Failure> Session::slot(const proto::Message& m, std::uint32_t index) {
  if (index >= vrings_.size())
    return fail("front-end sent " + name_of(m) + " for queue " + std::to_string(index) +
                " but the device has " + std::to_string(vrings_.size()) + " queues");
  return &vrings_[index];
}

// Host pointers of the ring areas: front-end virtual addresses (rst "vring address description")
// translated through the memory table; each area must be contiguous in one region.
Expected<Session::RingAreas, std::string> Session::resolve(const MemoryTable& mem,
                                                           const VringSlot& s) const {
  using Fail = Unexpected<std::string>;
  const proto::VringAddr& a = *s.addr;
  const std::uint32_t n = s.num;
  // Packed (rst SET_VRING_ADDR + §2.8.10): desc = ring, avail = driver area, used = device area.
  const std::uint64_t desc_len = packed() ? vring::packed_desc_bytes(n) : vring::split_desc_bytes(n);
  const std::uint64_t avail_len = packed() ? sizeof(vring::EventSuppress) : vring::split_avail_bytes(n);
  const std::uint64_t used_len = packed() ? sizeof(vring::EventSuppress) : vring::split_used_bytes(n);
  RingAreas r{mem.translate_uva(a.desc_user_addr, desc_len), mem.translate_uva(a.avail_user_addr, avail_len),
              mem.translate_uva(a.used_user_addr, used_len)};
  auto where = [](const char* what, std::uint64_t uva, std::uint64_t len) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s area [0x%llx, +%llu) is not inside one shared memory region",
                  what, static_cast<unsigned long long>(uva), static_cast<unsigned long long>(len));
    return std::string(buf);
  };
  if (r.desc == nullptr) return Fail(where("descriptor", a.desc_user_addr, desc_len));
  if (r.avail == nullptr) return Fail(where(packed() ? "driver event" : "available", a.avail_user_addr, avail_len));
  if (r.used == nullptr) return Fail(where(packed() ? "device event" : "used", a.used_user_addr, used_len));
  return r;
}

Outcome Session::on_set_vring_num(proto::Message& m) {
  const auto st = m.payload_as<proto::VringState>();
  auto s = slot(m, st.index);
  if (!s) return Unexpected(s.error());
  if ((*s)->started)
    return fail("front-end sent SET_VRING_NUM for started queue " + std::to_string(st.index));
  // §2.7: split sizes are powers of 2 up to 32768; §2.8: packed up to 32768. Device maximum too.
  const bool split_ok = !features_set_ || packed() || vring::valid_split_size(st.num);
  if (st.num == 0 || st.num > info_.max_queue_size || !vring::valid_packed_size(st.num) || !split_ok)
    return fail("front-end sent SET_VRING_NUM " + std::to_string(st.num) + " for queue " +
                std::to_string(st.index) + "; the device accepts 1.." +
                std::to_string(info_.max_queue_size) + (packed() ? "" : ", a power of 2"));
  (*s)->num = static_cast<std::uint16_t>(st.num);
  return {};
}

Outcome Session::on_set_vring_addr(proto::Message& m) {
  const auto a = m.payload_as<proto::VringAddr>();
  auto s = slot(m, a.index);
  if (!s) return Unexpected(s.error());
  VringSlot& v = **s;
  if (mem_->size() == 0)
    return fail("front-end sent SET_VRING_ADDR for queue " + std::to_string(a.index) +
                " before SET_MEM_TABLE");
  if (v.num == 0)
    return fail("front-end sent SET_VRING_ADDR for queue " + std::to_string(a.index) +
                " before SET_VRING_NUM");
  const std::optional<proto::VringAddr> old = v.addr;
  v.addr = a;
  auto areas = resolve(*mem_, v);
  if (!areas) {
    v.addr = old;
    return fail("front-end sent SET_VRING_ADDR for queue " + std::to_string(a.index) + ": " +
                areas.error());
  }
  if (v.started) {  // QEMU re-sends it on a running ring to toggle VHOST_VRING_F_LOG
    Quiesce q(*this);
    v.vq->visit([&](auto& ring) { ring.rebind(&mem_->regions(), areas->desc, areas->avail, areas->used); });
    attach_log(v);
  }
  return {};
}

Outcome Session::on_set_vring_base(proto::Message& m) {
  const auto st = m.payload_as<proto::VringState>();
  auto s = slot(m, st.index);
  if (!s) return Unexpected(s.error());
  if ((*s)->started)
    return fail("front-end sent SET_VRING_BASE for started queue " + std::to_string(st.index));
  // rst "vring descriptor index": split bits 16-31 are reserved.
  if (!packed() && !proto::split_base_reserved_clear(st.num))
    return fail("front-end sent SET_VRING_BASE 0x" + std::to_string(st.num) + " for split queue " +
                std::to_string(st.index) + " with reserved bits 16-31 set");
  const proto::VringBase b = proto::decode_vring_base(st.num, packed());
  (*s)->base = vring::RingState{vring::PackedCursor{b.avail_idx, packed() ? b.avail_wrap : true},
                                vring::PackedCursor{b.used_idx, packed() ? b.used_wrap : true}};
  // DPDK 22.11's virtio-user sends only the avail half (bits 0-15) for a packed ring and leaves
  // the used half 0, as DPDK's own vhost reads only that half. A used position of (0, wrap 0)
  // would mean a whole ring in flight: take it as "used = avail", which is what such a
  // front-end means (it sets the base only on a stopped, drained ring).
  if (packed() && (st.num >> 16) == 0) (*s)->base.used = (*s)->base.avail;
  return {};
}

Outcome Session::on_get_vring_base(proto::Message& m) {
  const auto st = m.payload_as<proto::VringState>();
  auto s = slot(m, st.index);
  if (!s) return Unexpected(s.error());
  VringSlot& v = **s;
  if (!v.started)
    return fail("front-end sent GET_VRING_BASE for queue " + std::to_string(st.index) +
                ", which is not started (never kicked, or already stopped)");
  {
    Quiesce q(*this);
    stop_ring(v);
  }
  const vring::RingState rs = v.base;
  const proto::VringBase b{rs.avail.idx, rs.avail.wrap, rs.used.idx, rs.used.wrap};
  const proto::VringState reply{st.index, proto::encode_vring_base(b, packed())};
  if (auto ok = conn_.send_reply(m.hdr, proto::as_bytes(reply)); !ok)
    return fail("cannot send the GET_VRING_BASE reply: " + ok.error().message());
  return {};
}

Outcome Session::on_set_vring_kick(proto::Message& m) {
  const std::uint64_t v = m.payload_as<proto::U64>().u64;
  const std::uint8_t index = proto::vring_file_index(v);
  auto s = slot(m, index);
  if (!s) return Unexpected(s.error());
  Quiesce q(*this);
  (*s)->kick = m.fds.empty() ? proto::UniqueFd() : std::move(m.fds[0]);  // no fd: polled
  if ((*s)->started) {
    (*s)->process_now = true;
    return {};
  }
  // rst "Ring states": the ring starts when it receives SET_VRING_KICK.
  return start_ring(**s, index);
}

Outcome Session::on_set_vring_call(proto::Message& m) {
  const std::uint64_t v = m.payload_as<proto::U64>().u64;
  auto s = slot(m, proto::vring_file_index(v));
  if (!s) return Unexpected(s.error());
  Quiesce q(*this);  // the worker may be signalling the old fd
  (*s)->call = m.fds.empty() ? proto::UniqueFd() : std::move(m.fds[0]);
  if ((*s)->vq) (*s)->vq->set_call_fd((*s)->call.get());
  return {};
}

Outcome Session::on_set_vring_err(proto::Message& m) {
  const std::uint64_t v = m.payload_as<proto::U64>().u64;
  auto s = slot(m, proto::vring_file_index(v));
  if (!s) return Unexpected(s.error());
  Quiesce q(*this);
  (*s)->err = m.fds.empty() ? proto::UniqueFd() : std::move(m.fds[0]);
  if ((*s)->vq) (*s)->vq->set_err_fd((*s)->err.get());
  return {};
}

Outcome Session::on_set_vring_enable(proto::Message& m) {
  const auto st = m.payload_as<proto::VringState>();
  // rst SET_VRING_ENABLE: "This request should be sent only when VHOST_USER_F_PROTOCOL_FEATURES
  // has been negotiated." QEMU sends it (enable 0) before SET_FEATURES, once the protocol
  // features are negotiated (GET/SET_PROTOCOL_FEATURES are only legal after bit 30 was offered).
  if (!vring::has_feature(features_, vring::kFProtocolFeatures) && !protocol_features_set_)
    return fail("front-end sent SET_VRING_ENABLE without negotiating VHOST_USER_F_PROTOCOL_FEATURES");
  auto s = slot(m, st.index);
  if (!s) return Unexpected(s.error());
  Quiesce q(*this);
  set_enabled(**s, st.num == 1);
  return {};
}

namespace {

// A packed ring keeps no index in shared memory, so after a back-end crash the front-end may send
// a stale position (QEMU does: vring/packed_resume.hpp). Without inflight tracking the descriptor
// flags are the only record of where the crashed back-end stood; with it, the region is
// (PackedDeviceRing::set_inflight_log).
vring::RingState resume_position(std::uint64_t features, std::uint16_t index, std::uint16_t num,
                                 void* desc, vring::RingState base) {
  if (!vring::has_feature(features, vring::kFRingPacked)) return base;
  // §2.8.10.1 alignment: configure() refuses a misaligned descriptor ring; it is not read here.
  if (reinterpret_cast<std::uintptr_t>(desc) % vring::kPackedDescAlign != 0) return base;
  const auto view = vring::PackedRingView::at(desc, nullptr, nullptr, num);
  if (vring::packed_base_plausible(view, base)) return base;
  const vring::RingState found = vring::packed_position_from_ring(view);
  VIREO_LOG_WARN("queue %u: the front-end's packed ring position (avail %u wrap %d) does not match "
                 "the ring, which shows avail %u wrap %d (a previous back-end stopped without "
                 "reporting it); resuming where the ring shows", index, base.avail.idx,
                 base.avail.wrap, found.avail.idx, found.avail.wrap);
  return found;
}

}  // namespace

// Called with the workers quiesced.
Outcome Session::start_ring(VringSlot& s, std::uint16_t index) {
  const std::string q = "queue " + std::to_string(index);
  if (mem_->size() == 0) return fail("front-end sent SET_VRING_KICK for " + q + " before SET_MEM_TABLE");
  if (s.num == 0) return fail("front-end sent SET_VRING_KICK for " + q + " before SET_VRING_NUM");
  if (!s.addr) return fail("front-end sent SET_VRING_KICK for " + q + " before SET_VRING_ADDR");
  auto areas = resolve(*mem_, s);
  if (!areas) return fail(q + " cannot start: " + areas.error());
  Ring ring = vring::make_device_queue<vring::RegionTable>(features_);
  const vring::RingState base = inflight_ ? s.base : resume_position(features_, index, s.num, areas->desc, s.base);
  auto ok = vring::configure_queue(ring, &mem_->regions(), features_, s.num, areas->desc,
                                   areas->avail, areas->used, base);
  if (!ok) return fail(q + " cannot start: " + vring::to_string(ok.error()));
  InflightQueue* inflight = inflight_ ? inflight_->queue(index) : nullptr;
  s.vq = std::make_unique<VirtQueue>(index, std::move(ring),
                                     vring::has_feature(features_, vring::kFEventIdx), s.call.get(),
                                     s.err.get(), mem_, inflight, vring::kDefaultMaxSegments);
  s.started = true;
  s.vq->set_enabled(s.enabled);
  // rst "Inflight I/O tracking": the ring records pops/pushes and resubmits what a previous
  // back-end left in flight.
  // Packed: the region, not SET_VRING_BASE, says where the ring resumes (QEMU sends a stale
  // packed position after a crash); a region that does not add up is ignored.
  if (inflight) {
    const bool rejected = s.vq->visit([&](auto& r) {
      r.set_inflight_log(&inflight->log());
      if constexpr (requires { r.inflight_rejected(); }) return r.inflight_rejected();
      return false;
    });
    if (rejected)
      VIREO_LOG_WARN("%s: the inflight region is inconsistent (front-end memory); resuming at the "
                     "front-end's position without resubmitting", q.c_str());
  }
  attach_log(s);
  if (s.runnable()) backend_.queue_started(*s.vq);
  s.process_now = true;
  return {};
}

// Called with the workers quiesced: saves the position for GET_VRING_BASE and drops the ring.
void Session::stop_ring(VringSlot& s) {
  if (s.runnable()) backend_.queue_stopping(*s.vq);
  s.vq->visit([](auto& ring) { ring.flush(); });
  s.base = s.vq->visit([](auto& ring) { return ring.state(); });
  s.vq.reset();
  s.started = false;
  s.kick = proto::UniqueFd();  // a restart comes with a new SET_VRING_KICK
}

// Called with the workers quiesced.
void Session::set_enabled(VringSlot& s, bool on) {
  if (s.enabled == on) return;
  const bool was_runnable = s.runnable();
  s.enabled = on;
  if (!s.vq) return;
  if (was_runnable) backend_.queue_stopping(*s.vq);
  s.vq->set_enabled(on);
  if (s.runnable()) {
    backend_.queue_started(*s.vq);
    s.process_now = true;  // buffers may have arrived while disabled
  }
}

}  // namespace vireo::device
