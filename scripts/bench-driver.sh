#!/usr/bin/env bash
# Driver benchmarks against real peers: `vireo driver net` (ping-pong through dpdk-testpmd's vhost
# PMD, io forwarding) and `vireo bench blk` (qemu-storage-daemon, file on tmpfs-or-disk image).
# Prints the median of RUNS runs per configuration. Peers are started and killed here.
#   scripts/bench-driver.sh [BUILD_DIR]        RUNS=3 SECONDS_PER_RUN=3 by default
set -u
build=${1:-build}
runs=${RUNS:-3}
secs=${SECONDS_PER_RUN:-3}
vireo=$(realpath "$build/vireo")
work=$(mktemp -d /tmp/vireo-bench-XXXXXX)
prefix="vireobench$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$work" "/var/run/dpdk/$prefix"
}
trap cleanup EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['$1'])"; }

if command -v dpdk-testpmd >/dev/null; then
  mkfifo "$work/stdin"  # testpmd exits on EOF on stdin: hold a writer open until we are done
  dpdk-testpmd -l 0,1 --no-pci --no-huge -m 256 --file-prefix=$prefix \
    --vdev "net_vhost0,iface=$work/net.sock" -- --forward-mode=io --total-num-mbufs=16384 -a \
    <"$work/stdin" >"$work/testpmd.log" 2>&1 &
  pids+=($!)
  exec 4>"$work/stdin"
  for _ in $(seq 100); do [[ -S $work/net.sock ]] && break; sleep 0.1; done
  for layout in split packed; do
    for ev in on off; do
      vals=$(for _ in $(seq "$runs"); do
        "$vireo" driver net --socket-path "$work/net.sock" --layout $layout --event-idx $ev \
          --seconds "$secs" --len 64 --json 2>/dev/null | field pps
      done | median)
      echo "net pingpong 64B $layout event_idx=$ev: median ${vals} pps over $runs runs"
    done
  done
else
  echo "net: SKIPPED (dpdk-testpmd not found)"
fi

if command -v qemu-storage-daemon >/dev/null; then
  truncate -s 1G "$work/disk.img"
  qemu-storage-daemon --blockdev "driver=file,node-name=file0,filename=$work/disk.img" \
    --export "type=vhost-user-blk,id=exp0,node-name=file0,addr.type=unix,addr.path=$work/blk.sock,writable=on" \
    >"$work/qsd.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [[ -S $work/blk.sock ]] && break; sleep 0.1; done
  for rw in randread randwrite; do
    for qd in 1 32; do
      vals=$(for _ in $(seq "$runs"); do
        "$vireo" bench blk --socket-path "$work/blk.sock" --rw $rw --bs 4096 --iodepth $qd \
          --seconds "$secs" --json 2>/dev/null | field iops
      done | median)
      echo "blk $rw 4k iodepth=$qd: median ${vals} IOPS over $runs runs"
    done
  done
else
  echo "blk: SKIPPED (qemu-storage-daemon not found)"
fi
