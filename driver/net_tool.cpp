// vireo driver net: the virtio-net driver as a traffic generator / checker.
#include <cstdio>
#include <string>

#include "base/json_line.hpp"
#include "base/log.hpp"
#include "base/options.hpp"
#include "driver/net_traffic.hpp"
#include "driver/tools.hpp"

namespace vireo::driver {
namespace {

bool parse_mode(const std::string& s, TrafficMode& m) {
  if (s == "tx") m = TrafficMode::tx;
  else if (s == "rx") m = TrafficMode::rx;
  else if (s == "pingpong") m = TrafficMode::pingpong;
  else return false;
  return true;
}

}  // namespace

int net_main(int argc, char** argv, int first) {
  OptionParser p("vireo driver net --socket-path PATH",
                 "virtio-net driver over vhost-user: sends and/or receives sequence-numbered, "
                 "checksummed frames and reports what was lost or corrupted.");
  auto& socket = p.add("socket-path", "", "back-end's vhost-user socket");
  auto& server = p.flag("server", "listen on the socket (for a back-end started with --client)");
  auto& layout = p.add_choice("layout", {"split", "packed"}, "split", "ring layout: split|packed");
  auto& event_idx = p.add_choice("event-idx", {"on", "off"}, "on", "VIRTIO_F_EVENT_IDX: on|off");
  auto& in_order = p.add_choice("in-order", {"on", "off"}, "on", "VIRTIO_F_IN_ORDER, if the back-end offers it: on|off");
  auto& queues = p.add_u64("queues", 1, "queue pairs");
  auto& qsize = p.add_u64("queue-size", 256, "descriptors per queue");
  auto& mode = p.add_choice("mode", {"tx", "rx", "pingpong"}, "pingpong", "tx | rx | pingpong (send and expect every frame back)");
  auto& count = p.add_u64("count", 0, "frames to send / expect (0: run --seconds)");
  auto& len = p.add_u64("len", 64, "frame length in bytes (>= 60)");
  auto& seconds = p.add("seconds", "0", "stop sending after this many seconds (0: until --count)");
  auto& burst = p.add_u64("burst", 32, "frames per burst");
  auto& hugepages = p.flag("hugepages", "guest memory from huge pages (scripts/prepare-host.sh)");
  auto& timeout = p.add_u64("connect-timeout", 10, "seconds to wait for the back-end (also on reconnect)");
  auto& json = p.flag("json", "print one JSON line");
  if (auto rc = p.parse(argc, argv, first)) return *rc;
  TrafficOptions t;
  if (socket.value.empty() || !parse_mode(mode.value, t.mode)) {
    std::fprintf(stderr, "vireo driver net: need --socket-path and --mode tx|rx|pingpong\n");
    return 2;
  }
  t.count = count.as_u64();
  t.seconds = seconds.as_double();
  t.len = static_cast<std::uint32_t>(len.as_u64());
  t.burst = static_cast<std::uint32_t>(std::max<std::uint64_t>(1, burst.as_u64()));
  if (t.count == 0 && t.seconds <= 0) t.seconds = 5;
  NetOptions o{.socket_path = socket.value,
               .server = server.set,
               .layout = layout.value == "packed" ? Layout::packed : Layout::split,
               .event_idx = event_idx.value == "on",
               .queue_pairs = static_cast<std::uint16_t>(queues.as_u64()),
               .queue_size = static_cast<std::uint16_t>(qsize.as_u64()),
               .in_order = in_order.value == "on",
               .hugepages = hugepages.set,
               .connect_timeout_ms = static_cast<int>(timeout.as_u64() * 1000)};
  auto net = NetDriver::open(o);
  if (!net) {
    std::fprintf(stderr, "vireo driver net: %s\n", net.error().reason.c_str());
    return 1;
  }
  auto r = run_traffic(**net, t);
  if (!r) {
    std::fprintf(stderr, "vireo driver net: %s\n", r.error().reason.c_str());
    return 1;
  }
  if (json.set) {
    JsonLine line;
    line.str("mode", mode.value).str("layout", layout.value).boolean("event_idx", o.event_idx);
    line.integer("queues", o.queue_pairs).integer("len", t.len).hex("features", (*net)->features());
    add_json(line, *r);
    line.print(stdout);
  } else {
    std::printf("%s %s event_idx=%s queues=%u len=%u: sent %llu received %llu lost %llu corrupt %llu "
                "duplicates %llu reconnects %llu in %.3f s (%.0f pps)\n",
                mode.value.c_str(), layout.value.c_str(), event_idx.value.c_str(), o.queue_pairs, t.len,
                static_cast<unsigned long long>(r->sent), static_cast<unsigned long long>(r->received),
                static_cast<unsigned long long>(r->lost), static_cast<unsigned long long>(r->corrupt),
                static_cast<unsigned long long>(r->duplicates), static_cast<unsigned long long>(r->reconnects),
                r->seconds, r->pps());
  }
  const bool ok = r->corrupt == 0 && (t.mode == TrafficMode::tx || r->lost == 0 || r->reconnects != 0);
  return ok ? 0 : 1;
}

}  // namespace vireo::driver
