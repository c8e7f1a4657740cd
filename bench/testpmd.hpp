// The DPDK peer of the loopback benchmark: DPDK's vhost PMD (the device) and virtio-user PMD (the
// driver) in ONE dpdk-testpmd with one forwarding core, io forwarding, packets injected with
// `start tx_first 4`. Two independent loops then run on that core:
//
//   vhost port RX  -> virtio-user port TX -> ring -> vhost port RX      (driver -> device)
//   virtio-user RX -> vhost port TX       -> ring -> virtio-user RX     (device -> driver)
//
// so each port's RX rate over the interval is one direction. testpmd runs interactively (`-i`):
// commands go down a pipe on stdin, each answered when the next "testpmd> " prompt appears on
// stdout (stdout unbuffered through stdbuf). Needs hugepages on hugetlbfs (--single-file-segments,
// so virtio-user can share them as fds); without them the result is Problem::skip.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/peer.hpp"

namespace vireo::bench {

// One port's block of `show port stats all`.
struct PortStats {
  std::uint16_t port = 0;
  std::uint64_t rx_packets = 0;
  std::uint64_t rx_missed = 0;
  std::uint64_t tx_packets = 0;
  std::uint64_t rx_pps = 0;  // testpmd's "Rx-pps" since the previous show
};

// Parses every "NIC statistics for port N" block; ports in the order printed.
std::vector<PortStats> parse_port_stats(std::string_view text);
// The id in "Port N is attached." (the output of `port attach`).
std::optional<std::uint16_t> parse_attached_port(std::string_view text);
// The last "negotiated Virtio features: 0x..." that the vhost PMD logged (stderr).
std::optional<std::uint64_t> parse_negotiated_features(std::string_view text);

struct DpdkOptions {
  std::string testpmd = "dpdk-testpmd";
  double warmup_seconds = 0.5;
  std::uint32_t min_free_hugepages = 64;  // 2 MiB pages; 16384 mbufs need ~40 MiB of them
  std::string transcript_path;            // if set: testpmd's stdout, then its stderr, written here
};

// Empty if hugetlbfs is mounted with enough free 2 MiB pages, else why not (a skip reason).
std::string hugepage_shortage(std::uint32_t min_free_pages);

// Runs the DPDK loop once (see the top of this file). impl = "dpdk"; packed and event_idx are
// what the vhost PMD negotiated (virtio-user never offers EVENT_IDX).
Measured<LoopResult> measure_dpdk_loop(const LoopParams& params, const DpdkOptions& options = {});

}  // namespace vireo::bench
