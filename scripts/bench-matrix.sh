#!/usr/bin/env bash
# Two-process net matrix (issue #5 item 2): a virtio-net device in one process, a driver in
# another, one direction at a time, 64-byte frames, split and packed rings:
#   vireo net (--busy-poll)       x  vireo driver net
#   vireo net (--busy-poll)       x  dpdk-testpmd virtio-user PMD   (txonly / rxonly)
#   dpdk-testpmd vhost PMD        x  vireo driver net               (rxonly / txonly)
# driver_to_device: the driver transmits, the device drops (vireo: --port sink; testpmd: rxonly).
# device_to_driver: the device generates (vireo: --port source:64; testpmd: txonly), the driver
# receives. Each cell runs RUNS times; one JSON line per cell with the median, min and max pps.
# Two busy-polling processes on a CPU-stolen machine are noisy: compare medians, not single runs.
#   scripts/bench-matrix.sh [BUILD_DIR]          RUNS=5 SECONDS_PER_RUN=3 LEN=64
# Needs hugepages (scripts/prepare-host.sh) for the virtio-user cells; cells whose peer is
# missing print {"skipped": "..."}.
set -u
build=${1:-build}
runs=${RUNS:-5}
secs=${SECONDS_PER_RUN:-3}
len=${LEN:-64}
vireo=$(realpath "$build/vireo")
work=$(mktemp -d /tmp/vireo-matrix-XXXXXX)
prefix="vireomatrix$$"
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  pids=()
  exec 4>&- 2>/dev/null
  rm -f "$work"/*.sock "$work/stdin"
}
trap 'stop_all; rm -rf "$work" "/var/run/dpdk/$prefix"' EXIT

# Median, min, max of numbers on stdin, as a JSON fragment.
summary() {
  python3 -c '
import sys, statistics
v = [float(x) for x in sys.stdin.read().split()]
if not v: print("\"skipped\": \"no run produced a figure\""); sys.exit()
print("\"runs\": %d, \"median_pps\": %.0f, \"min_pps\": %.0f, \"max_pps\": %.0f" % (len(v), statistics.median(v), min(v), max(v)))'
}
cell() {  # device driver direction layout <fragment>
  echo "{\"bench\": \"two-process\", \"device\": \"$1\", \"driver\": \"$2\", \"direction\": \"$3\", \"layout\": \"$4\", \"len\": $len, $5}"
}
wait_socket() { for _ in $(seq 100); do [[ -S $1 ]] && return 0; sleep 0.1; done; return 1; }
have_hugepages() { [[ $(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0) -gt 0 ]] && mountpoint -q /dev/hugepages; }

start_vireo_net() {  # port
  "$vireo" net --socket-path "$work/net.sock" --port "$1" --busy-poll --stats 1 >"$work/net.stats" 2>"$work/net.log" &
  pids+=($!)
  wait_socket "$work/net.sock"
}

start_testpmd() {  # fwd-mode vdev [extra eal args...]
  local mode=$1 vdev=$2
  shift 2
  rm -f "$work/stdin"
  mkfifo "$work/stdin"  # testpmd exits on EOF on stdin: hold a writer open
  dpdk-testpmd -l 0,1 --file-prefix=$prefix "$@" --vdev "$vdev" -- --forward-mode="$mode" \
    --txd=256 --rxd=256 --burst=32 --total-num-mbufs=16384 --stats-period 1 -a \
    <"$work/stdin" >"$work/testpmd.log" 2>&1 &
  pids+=($!)
  exec 4>"$work/stdin"
}

# pps a `vireo net --stats 1` log shows for queue q between its second and last report.
vireo_stats_pps() {
  python3 - "$work/net.stats" "$1" <<'EOF'
import re, sys
q = sys.argv[2]
v = [int(m.group(1)) for m in (re.search(r"queue %s: packets (\d+)" % q, l) for l in open(sys.argv[1])) if m]
print((v[-1] - v[1]) / (len(v) - 2) if len(v) > 2 else "")
EOF
}

driver_pps() {  # mode layout
  "$vireo" driver net --socket-path "$work/net.sock" --layout "$2" --event-idx on --mode "$1" \
    --seconds "$secs" --len "$len" --json 2>>"$work/driver.log" |
    python3 -c "
import json, sys
l = sys.stdin.readline()
if l:
    o = json.loads(l)  # rx from a generator: its frames are not the tool's probes, count them all
    n = o['received'] + o['corrupt'] + o['duplicates'] if sys.argv[1] == 'rx' else o['sent']
    print(n / o['seconds'] if o['seconds'] > 0 else '')" "$1"
}

for layout in split packed; do
  packed=$([[ $layout == packed ]] && echo 1 || echo 0)

  # ---- vireo device x vireo driver ----
  for dir in driver_to_device device_to_driver; do
    port=$([[ $dir == driver_to_device ]] && echo sink || echo "source:$len")
    mode=$([[ $dir == driver_to_device ]] && echo tx || echo rx)
    start_vireo_net "$port" || { cell vireo vireo $dir $layout '"skipped": "vireo net did not listen"'; stop_all; continue; }
    cell vireo vireo $dir $layout "$(for _ in $(seq "$runs"); do driver_pps $mode $layout; done | summary)"
    stop_all
  done

  # ---- dpdk device (vhost PMD) x vireo driver ----
  if command -v dpdk-testpmd >/dev/null; then
    for dir in driver_to_device device_to_driver; do
      fwd=$([[ $dir == driver_to_device ]] && echo rxonly || echo txonly)
      mode=$([[ $dir == driver_to_device ]] && echo tx || echo rx)
      start_testpmd $fwd "net_vhost0,iface=$work/net.sock" --no-pci --no-huge -m 256
      if wait_socket "$work/net.sock"; then
        cell dpdk vireo $dir $layout "$(for _ in $(seq "$runs"); do driver_pps $mode $layout; done | summary)"
      else
        cell dpdk vireo $dir $layout '"skipped": "dpdk-testpmd did not listen (see its log)"'
      fi
      stop_all
    done
  else
    for dir in driver_to_device device_to_driver; do cell dpdk vireo $dir $layout '"skipped": "dpdk-testpmd not found"'; done
  fi

  # ---- vireo device x dpdk driver (virtio-user PMD) ----
  if ! command -v dpdk-testpmd >/dev/null || ! have_hugepages; then
    for dir in driver_to_device device_to_driver; do
      cell vireo dpdk $dir $layout '"skipped": "needs dpdk-testpmd and hugepages (scripts/prepare-host.sh)"'
    done
    continue
  fi
  for dir in driver_to_device device_to_driver; do
    port=$([[ $dir == driver_to_device ]] && echo sink || echo "source:$len")
    fwd=$([[ $dir == driver_to_device ]] && echo txonly || echo rxonly)
    queue=$([[ $dir == driver_to_device ]] && echo 1 || echo 0)
    vals=$(for _ in $(seq "$runs"); do
      start_vireo_net "$port" >/dev/null || continue
      start_testpmd $fwd "net_virtio_user0,path=$work/net.sock,queue_size=256,packed_vq=$packed" \
        --no-pci --single-file-segments -m 512
      sleep "$((secs + 3))"  # testpmd needs ~1 s to start; then secs + 1 reports
      vireo_stats_pps $queue
      stop_all
    done)
    cell vireo dpdk $dir $layout "$(echo "$vals" | summary)"
  done
done
