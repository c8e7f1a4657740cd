// HostileDevice, LogLines, snapshot(), Daemon, HostileTest and the raw ring writers.
#include "hostile_rig.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "device/daemon.hpp"
#include "proto/messages.hpp"
#include "vring/barriers.hpp"

namespace vireo::test::hostile {

using proto::FrontendReq;

device::DeviceInfo HostileDevice::info() const {
  device::DeviceInfo d = rng_.info();
  d.name = "hostile-rng";
  d.config_size = kConfigSize;
  return d;
}

void HostileDevice::read_config(std::uint32_t offset, std::span<std::byte> out) const {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::byte>(offset + i);
}

// ---- LogLines ----

LogLines::LogLines() { log::set_sink(&LogLines::sink, this); }
LogLines::~LogLines() { log::set_sink(nullptr, nullptr); }

void LogLines::sink(void* ctx, log::Level, const char* line) {
  auto* self = static_cast<LogLines*>(ctx);
  std::lock_guard lock(self->mu_);
  self->lines_.emplace_back(line);
}

bool LogLines::wait_for(std::string_view text, int timeout_ms) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    {
      std::lock_guard lock(mu_);
      for (const std::string& l : lines_)
        if (l.find(text) != std::string::npos) return true;
    }
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::string LogLines::all() const {
  std::lock_guard lock(mu_);
  std::string s;
  for (const std::string& l : lines_) s += l + "\n";
  return s;
}

// ---- resources ----

Resources snapshot() {
  Resources r;
  r.fds = count_open_fds();
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    ++r.maps;
    // "start-end perms ...": perms is rwxs / rwxp.
    if (const auto sp = line.find(' '); sp != std::string::npos && sp + 4 < line.size() && line[sp + 4] == 's')
      ++r.shared_maps;
    if (line.find("vireo-test-guest") != std::string::npos) ++r.guest_maps;
  }
  return r;
}

// ---- Daemon ----

Daemon::Daemon(device::Backend& dev) {
  static std::atomic<int> serial{0};
  path_ = "/tmp/vireo-hostile-" + std::to_string(::getpid()) + "-" + std::to_string(serial++) + ".sock";
  device::DaemonOptions opt;
  opt.socket_path = path_;
  thread_ = std::make_unique<DaemonThread>(dev, opt);
}

Daemon::~Daemon() { stop(); }

void Daemon::stop() {
  if (!thread_) return;
  thread_->join();
  thread_.reset();
  ::unlink(path_.c_str());
}

std::unique_ptr<FrontendFake> Daemon::connect() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {  // the daemon thread may not be listening yet
    auto s = proto::UnixStream::connect(path_);
    if (s) return std::make_unique<FrontendFake>(std::move(*s), kRam, kGuard);
    if (std::chrono::steady_clock::now() > deadline) return nullptr;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// ---- HostileTest ----

void HostileTest::SetUp() {
  // Warm-up once per process: the first daemon run creates lazily allocated state (thread stacks
  // that glibc then caches, malloc arenas) that later runs reuse; only later runs are comparable.
  static bool warmed = false;
  if (!warmed) {
    warmed = true;
    HostileDevice dev;
    Daemon d(dev);
    expect_clean_connection_moves_data(d, kSplit);
    expect_clean_connection_moves_data(d, kPacked);
  }
  before_ = snapshot();
  daemon_ = std::make_unique<Daemon>(dev_);
}

void HostileTest::TearDown() {
  if (fe_) {
    EXPECT_TRUE(fe_->canaries_intact()) << "the back-end wrote next to the shared region";
    fe_.reset();  // the hostile front-end goes away
  }
  expect_clean_connection_moves_data(*daemon_, features_);
  daemon_.reset();
  const Resources after = snapshot();
  EXPECT_EQ(after.fds, before_.fds) << "fds leaked (or closed) by the back-end";
  EXPECT_EQ(after.guest_maps, before_.guest_maps) << "guest memory mappings leaked";
  EXPECT_EQ(after.shared_maps, before_.shared_maps) << "shared mappings leaked";
  if (kCompareAllMaps) {
    EXPECT_EQ(after.maps, before_.maps) << "mappings leaked";
  }
  if (HasFailure()) std::fprintf(stderr, "back-end log:\n%s", log_.all().c_str());
}

FrontendFake& HostileTest::connect(std::uint64_t features) {
  features_ = features;
  fe_ = daemon_->connect();
  if (!fe_) ADD_FAILURE() << "cannot connect to the daemon";
  return *fe_;
}

void HostileTest::start(std::uint64_t features) {
  connect(features);
  ASSERT_TRUE(fe_->negotiate(features, kProtoAll));
  ASSERT_TRUE(fe_->set_mem_table());
  ASSERT_TRUE(fe_->setup_queue(0, kQueueSize));
}

bool HostileTest::connection_alive() { return fe_->get_u64(FrontendReq::get_features).has_value(); }

void HostileTest::expect_queue_recovers() {
  ASSERT_TRUE(connection_alive()) << "a queue violation closed the whole connection";
  ASSERT_TRUE(fe_->get_vring_base(0)) << "GET_VRING_BASE on the broken queue failed";
  ASSERT_TRUE(fe_->setup_queue(0, kQueueSize));
  fe_->add_writable(0, 64);
  fe_->kick(0, true);
  auto u = fe_->wait_used(0);
  ASSERT_TRUE(u) << "the reset queue does not move data";
  EXPECT_EQ(u->len, 64u);
}

void HostileTest::expect_connection_closed() {
  EXPECT_TRUE(fe_->wait_closed()) << "the back-end kept the hostile connection";
}

void HostileTest::expect_clean_connection_moves_data(Daemon& d, std::uint64_t features, int buffers) {
  auto fe = d.connect();
  ASSERT_TRUE(fe);
  ASSERT_TRUE(fe->negotiate(features, kProtoAll)) << "the daemon does not serve the next front-end";
  ASSERT_TRUE(fe->set_mem_table());
  ASSERT_TRUE(fe->setup_queue(0, kQueueSize));
  for (int i = 0; i < buffers; ++i) {
    fe->add_writable(0, 128);
    fe->kick(0, true);
    auto u = fe->wait_used(0);
    ASSERT_TRUE(u) << "the next front-end's buffer was not used";
    EXPECT_EQ(u->len, 128u);
  }
  EXPECT_TRUE(fe->canaries_intact());
}

// ---- raw ring writers ----

namespace {
std::uint16_t* avail(FrontendFake& fe) {
  return reinterpret_cast<std::uint16_t*>(fe.host(fe.queue(0).avail_gpa));
}
}  // namespace

void split_desc(FrontendFake& fe, std::uint16_t i, std::uint64_t addr, std::uint32_t len,
                std::uint16_t flags, std::uint16_t next) {
  auto* d = reinterpret_cast<vring::SplitDesc*>(fe.host(fe.queue(0).desc_gpa));
  d[i] = vring::SplitDesc{addr, len, flags, next};
}

void split_publish(FrontendFake& fe, std::initializer_list<std::uint16_t> heads) {
  std::uint16_t* a = avail(fe);  // flags, idx, ring[]
  std::uint16_t idx = vring::load_relaxed(a[1]);
  for (std::uint16_t h : heads) a[2 + (idx++ % fe.queue(0).size)] = h;
  split_set_avail_idx(fe, idx);
}

void split_set_avail_idx(FrontendFake& fe, std::uint16_t idx) {
  // release: pairs with the device's acquire load of avail->idx; ring entries written before.
  vring::store_release(avail(fe)[1], idx);
  (void)fe.queue(0).kick.signal();
}

void packed_desc(FrontendFake& fe, std::uint16_t i, std::uint64_t addr, std::uint32_t len,
                 std::uint16_t flags, std::uint16_t id) {
  auto* d = reinterpret_cast<vring::PackedDesc*>(fe.host(fe.queue(0).desc_gpa));
  d[i] = vring::PackedDesc{addr, len, id, static_cast<std::uint16_t>(flags | vring::kDescFAvail)};
}

void packed_head(FrontendFake& fe, std::uint16_t i, std::uint64_t addr, std::uint32_t len,
                 std::uint16_t flags, std::uint16_t id, bool raw_flags) {
  auto* d = reinterpret_cast<vring::PackedDesc*>(fe.host(fe.queue(0).desc_gpa));
  d[i].addr = addr;
  d[i].len = len;
  d[i].id = id;
  const auto f = static_cast<std::uint16_t>(raw_flags ? flags : flags | vring::kDescFAvail);
  // release: pairs with the device's acquire load of the head flags; the list was written before.
  vring::store_release(d[i].flags, f);
  (void)fe.queue(0).kick.signal();
}

}  // namespace vireo::test::hostile
