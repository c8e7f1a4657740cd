// Session: the memory table (SET_MEM_TABLE, ADD/REM_MEM_REG) and dirty logging (SET_LOG_BASE).
#include <sys/stat.h>

#include "base/log.hpp"
#include "device/session.hpp"
#include "vring/features.hpp"

namespace vireo::device {

Outcome Session::on_set_mem_table(proto::Message& m) {
  const auto n = m.payload_as<std::uint32_t>();
  std::vector<MappedRegion> regions;
  // rst "Multiple Memory regions description": validate() checked nregions <= 8, the payload
  // size and one fd per region.
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto r = m.payload_as<proto::MemoryRegion>(proto::kMemoryTableHeaderSize + sizeof(proto::MemoryRegion) * i);
    auto mapped = MemoryTable::map_region(r, m.fds[i].get());
    if (!mapped) return fail("front-end sent SET_MEM_TABLE with " + mapped.error(), false);
    regions.push_back(std::move(*mapped));
  }
  auto table = MemoryTable::create(std::move(regions));
  if (!table) return fail("front-end sent SET_MEM_TABLE with " + table.error(), false);
  swap_memory(std::move(*table));
  return {};
}

Outcome Session::on_get_max_mem_slots(proto::Message& m) { return reply_u64(m, kMaxMemSlots); }

Outcome Session::on_add_mem_reg(proto::Message& m) {
  const auto r = m.payload_as<proto::MemoryRegion>(sizeof(std::uint64_t));
  if (mem_->size() >= kMaxMemSlots)
    return fail("front-end sent ADD_MEM_REG but all " + std::to_string(kMaxMemSlots) +
                " memory slots are in use", false);
  auto mapped = MemoryTable::map_region(r, m.fds[0].get());
  if (!mapped) return fail("front-end sent ADD_MEM_REG with " + mapped.error(), false);
  auto table = mem_->with_added(std::move(*mapped));
  if (!table) return fail("front-end sent ADD_MEM_REG with " + table.error(), false);
  swap_memory(std::move(*table));
  return {};
}

Outcome Session::on_rem_mem_reg(proto::Message& m) {
  // rst REM_MEM_REG: an fd, if passed, "MUST be closed": the Message owns it.
  const auto r = m.payload_as<proto::MemoryRegion>(sizeof(std::uint64_t));
  auto table = mem_->without(r);
  if (!table) return fail("front-end sent REM_MEM_REG for " + table.error(), false);
  swap_memory(std::move(*table));
  return {};
}

// Installs a new table: workers quiesced, every started ring re-resolved and rebound, then the
// old table is released (its mappings go when the last queue drops it: here, under quiescence).
void Session::swap_memory(MemoryTable::Ptr table) {
  Quiesce q(*this);
  for (std::size_t i = 0; i < vrings_.size(); ++i) {
    VringSlot& s = vrings_[i];
    if (!s.vq) continue;
    if (s.runnable()) backend_.queue_stopping(*s.vq);
    auto areas = resolve(*table, s);
    if (!areas)  // the ring breaks (Errc::not_ready) until the front-end fixes its addresses
      VIREO_LOG_WARN("queue %zu: after the memory table change the %s; the queue stops", i,
                     areas.error().c_str());
    s.vq->visit([&](auto& ring) {
      if (areas) ring.rebind(&table->regions(), areas->desc, areas->avail, areas->used);
      else ring.rebind(nullptr, nullptr, nullptr, nullptr);
    });
    s.vq->set_memory(table);
    if (s.runnable()) backend_.queue_started(*s.vq);
    s.process_now = true;
  }
  mem_ = std::move(table);
}

// Dirty logging of a started ring: on iff VHOST_F_LOG_ALL is negotiated and a log is shared.
// Buffer writes are logged by push(); used-ring writes at log_guest_addr (rst "Migration").
void Session::attach_log(VringSlot& s) {
  if (!s.vq) return;
  const bool on = log_ && vring::has_feature(features_, vring::kFLogAll);
  const std::uint64_t ring_gpa = s.addr ? s.addr->log_guest_addr : 0;
  s.vq->visit([&](auto& ring) { ring.set_dirty_log(on ? &log_->log : nullptr, ring_gpa); });
}

// rst SET_LOG_BASE with LOG_SHMFD: map the log, reply u64 0 once it is in use.
Outcome Session::on_set_log_base(proto::Message& m) {
  if (!proto::has_proto(protocol_features_, proto::kProtoFLogShmfd))
    return fail("front-end sent SET_LOG_BASE without LOG_SHMFD; only a shared-memory log is supported");
  const auto d = m.payload_as<proto::LogDesc>();
  // A log reaching past the end of its fd would SIGBUS at the first dirty bit set there: refuse
  // it, as MemoryTable refuses such memory regions.
  struct stat st {};
  if (::fstat(m.fds[0].get(), &st) != 0 || d.mmap_offset + d.mmap_size < d.mmap_offset ||
      (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) < d.mmap_offset + d.mmap_size))
    return fail("front-end sent SET_LOG_BASE with a log of " + std::to_string(d.mmap_size) +
                " bytes at offset " + std::to_string(d.mmap_offset) + " that its fd does not hold");
  auto map = proto::Mapping::map(m.fds[0].get(), d.mmap_size, d.mmap_offset, /*writable=*/true);
  if (!map)
    return fail("front-end sent SET_LOG_BASE with a log that cannot be mapped (" +
                map.error().message() + ")");
  auto area = std::make_unique<LogArea>();
  area->map = std::move(*map);
  area->log = vring::DirtyLog(area->map.data(), area->map.size());
  std::unique_ptr<LogArea> old;
  {
    Quiesce q(*this);
    old = std::move(log_);
    log_ = std::move(area);
    for (VringSlot& s : vrings_) attach_log(s);
  }
  old.reset();  // no ring points at it any more
  return reply_u64(m, 0);
}

Outcome Session::on_set_log_fd(proto::Message& m) {
  log_fd_ = std::move(m.fds[0]);
  return {};
}

}  // namespace vireo::device
