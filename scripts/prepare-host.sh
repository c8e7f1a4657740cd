#!/usr/bin/env bash
# Host preparation for the interop and VM suites (root only; harmless to re-run):
#  - hugetlbfs at /dev/hugepages with enough 2 MiB pages for DPDK virtio-user
#    (it needs --single-file-segments on hugetlbfs; DPDK's vhost PMD runs with --no-huge).
# Prints what it could not do; the suites that need it then SKIP with that reason.
set -u
if [[ $(id -u) -ne 0 ]]; then
  echo "prepare-host: not root; hugepages not configured (DPDK virtio-user tests will skip)"
  exit 0
fi
if ! mountpoint -q /dev/hugepages 2>/dev/null; then
  mkdir -p /dev/hugepages
  mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null ||
    echo "prepare-host: cannot mount hugetlbfs on /dev/hugepages"
fi
want=${VIREO_HUGEPAGES:-512}
have=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
if ((have < want)); then
  echo "$want" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
  have=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
  ((have < want)) && echo "prepare-host: only $have of $want hugepages available"
fi
exit 0
