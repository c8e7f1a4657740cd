#include "bench/testpmd.hpp"

#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "bench/child_process.hpp"
#include "vring/features.hpp"

namespace vireo::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kPrompt = "testpmd> ";
constexpr milliseconds kStartupTimeout{60'000};  // EAL init on a loaded, stolen-from machine
constexpr milliseconds kCommandTimeout{20'000};

// The unsigned number after `key` in text (from pos), skipping blanks; nullopt if absent.
std::optional<std::uint64_t> number_after(std::string_view text, std::string_view key, std::size_t pos = 0) {
  std::size_t at = text.find(key, pos);
  if (at == std::string_view::npos) return std::nullopt;
  std::size_t i = at + key.size();
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  if (i >= text.size() || text[i] < '0' || text[i] > '9') return std::nullopt;
  std::uint64_t v = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) v = v * 10 + std::uint64_t(text[i] - '0');
  return v;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string tail(const std::string& s, std::size_t n = 600) { return s.size() > n ? s.substr(s.size() - n) : s; }

// The run directory of a file prefix (rte_eal_get_runtime_dir): /var/run/dpdk for root.
fs::path dpdk_runtime_dir(const std::string& prefix) {
  if (::getuid() == 0) return fs::path("/var/run/dpdk") / prefix;
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  return fs::path(xdg != nullptr ? xdg : "/tmp") / "dpdk" / prefix;
}

std::vector<fs::path> hugetlbfs_mounts() {
  std::vector<fs::path> out;
  std::ifstream mounts("/proc/mounts");
  for (std::string dev, dir, type, rest; mounts >> dev >> dir >> type && std::getline(mounts, rest);)
    if (type == "hugetlbfs") out.emplace_back(dir);
  return out;
}

// Everything one run leaves on the machine, removed on every path: its temp dir (socket, logs),
// DPDK's runtime dir, and the hugepage files of its prefix (kept by DPDK after exit with
// --single-file-segments, and after a kill in any case).
class RunFiles {
 public:
  RunFiles() {
    static std::atomic<unsigned> counter{0};
    prefix_ = "vireo-bench-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    std::string tmpl = (fs::temp_directory_path() / "vireo-bench.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) dir_ = tmpl;
  }
  ~RunFiles() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
    fs::remove_all(dpdk_runtime_dir(prefix_), ec);
    for (const auto& mount : hugetlbfs_mounts()) {
      for (const auto& entry : fs::directory_iterator(mount, ec)) {
        if (entry.path().filename().string().starts_with(prefix_ + "map_")) fs::remove(entry.path(), ec);
      }
    }
  }
  RunFiles(const RunFiles&) = delete;
  RunFiles& operator=(const RunFiles&) = delete;

  bool ok() const { return !dir_.empty(); }
  const std::string& prefix() const { return prefix_; }
  std::string socket() const { return dir_ + "/vhost-net.sock"; }
  std::string stderr_log() const { return dir_ + "/testpmd.stderr"; }

 private:
  std::string prefix_;
  std::string dir_;
};

// The first two CPUs we may run on: testpmd's main lcore and its one forwarding lcore.
std::optional<std::string> two_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return std::nullopt;
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  if (cpus.size() < 2) return std::nullopt;
  return std::to_string(cpus[0]) + "," + std::to_string(cpus[1]);
}

class Session {
 public:
  Session(ChildProcess child, std::string* transcript) : child_(std::move(child)), transcript_(transcript) {}

  Measured<std::string> wait_prompt(milliseconds timeout) {
    auto out = child_.read_until(kPrompt, timeout);
    if (!out) return Unexpected(Problem::fail("dpdk-testpmd: " + out.error()));
    if (transcript_ != nullptr) *transcript_ += *out + std::string(kPrompt);
    return *out;
  }
  // Sends one command and returns its output (everything up to the next prompt).
  Measured<std::string> run(const std::string& command) {
    if (auto w = child_.write(command + "\n"); !w) return Unexpected(Problem::fail("dpdk-testpmd: " + w.error()));
    return wait_prompt(kCommandTimeout);
  }
  void quit() {
    (void)child_.write("quit\n");
    if (!child_.wait_exit(milliseconds(10'000))) child_.stop(milliseconds(2'000));
  }

 private:
  ChildProcess child_;
  std::string* transcript_;
};

Measured<std::vector<PortStats>> show_stats(Session& s) {
  auto out = s.run("show port stats all");
  if (!out) return Unexpected(out.error());
  auto stats = parse_port_stats(*out);
  if (stats.size() != 2) return Unexpected(Problem::fail("unexpected 'show port stats all' output: " + tail(*out)));
  return stats;
}

const PortStats* find_port(const std::vector<PortStats>& stats, std::uint16_t port) {
  for (const auto& s : stats)
    if (s.port == port) return &s;
  return nullptr;
}

// The commands of one measurement, after testpmd printed its first prompt.
Measured<LoopResult> drive(Session& s, const RunFiles& files, const LoopParams& p, const DpdkOptions& o) {
  std::string attach = "port attach net_virtio_user0,path=" + files.socket() +
                       ",packed_vq=" + (p.packed ? "1" : "0") + ",in_order=" + (p.in_order ? "1" : "0") +
                       ",queue_size=" + std::to_string(p.queue_size);
  auto attached = s.run(attach);
  if (!attached) return Unexpected(attached.error());
  auto user_port = parse_attached_port(*attached);
  if (!user_port) return Unexpected(Problem::fail("virtio-user port did not attach: " + tail(*attached)));
  std::uint16_t vhost_port = *user_port == 0 ? 1 : 0;
  for (std::string cmd : {std::string("port start all"), std::string("set fwd io"),
                          "set txpkts " + std::to_string(p.len), std::string("start tx_first 4")}) {
    auto out = s.run(cmd);
    if (!out) return Unexpected(out.error());
    if (out->find("Invalid") != std::string::npos || out->find("Bad arguments") != std::string::npos ||
        out->find("Fail") != std::string::npos)
      return Unexpected(Problem::fail("dpdk-testpmd refused '" + cmd + "': " + tail(*out)));
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup_seconds));
  auto before = show_stats(s);
  if (!before) return Unexpected(before.error());
  auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(p.seconds));
  auto after = show_stats(s);
  if (!after) return Unexpected(after.error());
  double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  (void)s.run("stop");
  auto rx = [&](std::uint16_t port) {
    const PortStats* a = find_port(*after, port);
    const PortStats* b = find_port(*before, port);
    return a != nullptr && b != nullptr && a->rx_packets >= b->rx_packets ? double(a->rx_packets - b->rx_packets) : 0.0;
  };
  LoopResult r;
  r.impl = "dpdk";
  r.in_order = p.in_order;
  r.len = p.len;
  r.seconds = seconds;
  r.pps_driver_to_device = rx(vhost_port) / seconds;
  r.pps_device_to_driver = rx(*user_port) / seconds;
  return r;
}

}  // namespace

std::vector<PortStats> parse_port_stats(std::string_view text) {
  static constexpr std::string_view kHead = "NIC statistics for port ";
  std::vector<PortStats> out;
  for (std::size_t at = text.find(kHead); at != std::string_view::npos;) {
    std::size_t next = text.find(kHead, at + kHead.size());
    std::string_view block = text.substr(at, next == std::string_view::npos ? std::string_view::npos : next - at);
    auto port = number_after(block, kHead);
    auto rx = number_after(block, "RX-packets:");
    auto tx = number_after(block, "TX-packets:");
    if (port && rx && tx && *port <= 0xffff) {
      PortStats s;
      s.port = static_cast<std::uint16_t>(*port);
      s.rx_packets = *rx;
      s.tx_packets = *tx;
      s.rx_missed = number_after(block, "RX-missed:").value_or(0);
      s.rx_pps = number_after(block, "Rx-pps:").value_or(0);
      out.push_back(s);
    }
    at = next;
  }
  return out;
}

std::optional<std::uint16_t> parse_attached_port(std::string_view text) {
  std::size_t at = text.find(" is attached");
  if (at == std::string_view::npos) return std::nullopt;
  std::size_t start = text.rfind("Port ", at);
  if (start == std::string_view::npos) return std::nullopt;
  auto port = number_after(text.substr(start, at - start), "Port ");
  if (!port || *port > 0xffff) return std::nullopt;
  return static_cast<std::uint16_t>(*port);
}

std::optional<std::uint64_t> parse_negotiated_features(std::string_view text) {
  static constexpr std::string_view kKey = "negotiated Virtio features: 0x";
  std::size_t at = text.rfind(kKey);
  if (at == std::string_view::npos) return std::nullopt;
  std::uint64_t v = 0;
  std::size_t i = at + kKey.size(), digits = 0;
  for (; i < text.size() && digits < 16; ++i, ++digits) {
    char c = text[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) break;
    v = (v << 4) | std::uint64_t(d);
  }
  if (digits == 0) return std::nullopt;
  return v;
}

std::string hugepage_shortage(std::uint32_t min_free_pages) {
  if (hugetlbfs_mounts().empty())
    return "no hugetlbfs mounted (run scripts/prepare-host.sh as root)";
  std::ifstream meminfo("/proc/meminfo");
  std::uint64_t free_pages = 0, page_kb = 0;
  for (std::string key; meminfo >> key;) {
    if (key == "HugePages_Free:") meminfo >> free_pages;
    else if (key == "Hugepagesize:") meminfo >> page_kb;
  }
  if (page_kb != 2048) return "the default hugepage size is not 2 MiB (Hugepagesize: " + std::to_string(page_kb) + " kB)";
  if (free_pages < min_free_pages)
    return "only " + std::to_string(free_pages) + " free 2 MiB hugepages, need " + std::to_string(min_free_pages) +
           " (run scripts/prepare-host.sh, or free them)";
  return "";
}

Measured<LoopResult> measure_dpdk_loop(const LoopParams& p, const DpdkOptions& o) {
  if (find_program(o.testpmd).empty())
    return Unexpected(Problem::skip(o.testpmd + " not found (Debian: apt-get install dpdk-dev)"));
  if (find_program("stdbuf").empty()) return Unexpected(Problem::skip("stdbuf (coreutils) not found"));
  if (auto why = hugepage_shortage(o.min_free_hugepages); !why.empty()) return Unexpected(Problem::skip(why));
  auto cpus = two_cpus();
  if (!cpus) return Unexpected(Problem::skip("testpmd needs two CPUs (a main and a forwarding lcore)"));
  if (p.len < 64 || p.len > 1518 || p.seconds <= 0)
    return Unexpected(Problem::fail("--len must be 64..1518 and --seconds > 0"));
  RunFiles files;  // outlives the child: cleaned after testpmd is gone
  if (!files.ok()) return Unexpected(Problem::fail("cannot create a temporary directory"));
  auto child = ChildProcess::spawn(
      {.argv = {"stdbuf", "-o0", o.testpmd, "-l", *cpus, "--file-prefix", files.prefix(), "--single-file-segments",
                "--no-pci", "--vdev", "net_vhost0,iface=" + files.socket(), "--", "-i", "--nb-cores=1",
                "--txd=256", "--rxd=256", "--burst=32", "--total-num-mbufs=16384",
                "--mask-event=all"},
       .pipe_stdin = true,
       .pipe_stdout = true,
       .stderr_path = files.stderr_log()});
  if (!child) return Unexpected(Problem::fail("cannot start dpdk-testpmd: " + child.error()));
  std::string transcript;
  Session session(std::move(*child), &transcript);
  Measured<LoopResult> result = Unexpected(Problem::fail(""));
  if (auto first = session.wait_prompt(kStartupTimeout); !first) result = Unexpected(first.error());
  else result = drive(session, files, p, o);
  session.quit();
  std::string err = read_file(files.stderr_log());
  if (!o.transcript_path.empty()) std::ofstream(o.transcript_path) << transcript << "\n---- stderr ----\n" << err;
  if (!result) {
    Problem pr = result.error();
    pr.reason += "; testpmd stderr: " + tail(err, 400);
    return Unexpected(pr);
  }
  auto features = parse_negotiated_features(err);
  if (!features) return Unexpected(Problem::fail("the vhost PMD logged no negotiated features: " + tail(err)));
  result->packed = vring::has_feature(*features, vring::kFRingPacked);
  result->event_idx = vring::has_feature(*features, vring::kFEventIdx);
  if (result->packed != p.packed)
    return Unexpected(Problem::fail(std::string("virtio-user negotiated the ") + (result->packed ? "packed" : "split") +
                                    " layout, not the one asked for"));
  if (result->pps_driver_to_device <= 0 || result->pps_device_to_driver <= 0)
    return Unexpected(Problem::fail("no packets flowed in one direction; transcript tail: " + tail(transcript)));
  return result;
}

}  // namespace vireo::bench
