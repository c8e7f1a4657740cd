#!/bin/sh
# Build (once) the Linux guest that Vireo's QEMU tests boot: Debian's cloud
# kernel plus a busybox-static initramfs whose /init loads the virtio modules,
# runs a test payload, prints a verdict on the serial console and powers off.
#
# Cache: ${VIREO_CACHE:-$HOME/.cache/vireo}/guest/<kernel-version>/
#          vmlinuz  initramfs.cpio.gz  modules.load  build-info  stamp
#        ${VIREO_CACHE:-$HOME/.cache/vireo}/guest/current -> <kernel-version>
# A second run is a no-op (it prints where the cache is). The initramfs is
# rebuilt, without fetching the kernel again, when init, payloads or this
# script change (the "stamp" is a hash of those inputs).
#
# Usage: qemu/build-guest.sh [--force] [--print-dir]
#   --force      rebuild the initramfs even if the stamp matches
#   --print-dir  print only the guest directory on stdout (for scripts)
# Environment:
#   VIREO_CACHE            cache root (default $HOME/.cache/vireo)
#   VIREO_GUEST_KERNEL     pin a kernel ABI version, e.g. 6.1.0-56-cloud-amd64
#                          (default: what linux-image-cloud-amd64 depends on)
# Exit codes: 0 ok, 77 the kernel or busybox cannot be had here (skip), 1 error.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE_ROOT=${VIREO_CACHE:-${HOME:-/root}/.cache/vireo}
GUEST_ROOT=$CACHE_ROOT/guest
FORCE=0
PRINT_DIR=0
for a in "$@"; do
    case $a in
    --force) FORCE=1 ;;
    --print-dir) PRINT_DIR=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "build-guest.sh: unknown argument: $a" >&2; exit 1 ;;
    esac
done

say() { if [ "$PRINT_DIR" = 1 ]; then echo "build-guest: $*" >&2; else echo "build-guest: $*"; fi; }
skip() { echo "build-guest: SKIP: $*" >&2; exit 77; }
die() { echo "build-guest: ERROR: $*" >&2; exit 1; }

# Modules the guest loads (dependencies are added and ordered from modules.dep).
WANTED_MODULES="virtio_pci_modern_dev virtio_pci_legacy_dev virtio_ring virtio virtio_pci
failover net_failover virtio_net virtio_blk virtio-rng virtio_console qemu_fw_cfg
virtio_input vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport fuse virtiofs"

BUSYBOX=
for b in /bin/busybox /usr/bin/busybox; do
    if [ -x "$b" ]; then BUSYBOX=$b; break; fi
done
[ -n "$BUSYBOX" ] || skip "busybox not found (apt-get install busybox-static)"
# The guest has no libc: busybox must be the static build.
if command -v ldd >/dev/null 2>&1 && ldd "$BUSYBOX" 2>&1 | grep -q '=>'; then
    skip "$BUSYBOX is dynamically linked (apt-get install busybox-static)"
fi

# --- Which kernel? ----------------------------------------------------------
resolve_kver() {
    if [ -n "${VIREO_GUEST_KERNEL:-}" ]; then echo "$VIREO_GUEST_KERNEL"; return 0; fi
    command -v apt-cache >/dev/null 2>&1 || return 1
    dep=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
          sed -n 's/^ *Depends: linux-image-\([0-9].*-cloud-amd64\)$/\1/p' | head -1)
    if [ -z "$dep" ] && command -v apt-get >/dev/null 2>&1; then
        say "apt-cache knows no linux-image-cloud-amd64: running apt-get update"
        apt-get update >/dev/null 2>&1 || true
        dep=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
              sed -n 's/^ *Depends: linux-image-\([0-9].*-cloud-amd64\)$/\1/p' | head -1)
    fi
    [ -n "$dep" ] && echo "$dep"
}

KVER=$(resolve_kver || true)
if [ -z "$KVER" ]; then
    # Offline or no apt: fall back to whatever is cached.
    if [ -e "$GUEST_ROOT/current/vmlinuz" ]; then
        KVER=$(basename "$(readlink -f "$GUEST_ROOT/current")")
        say "cannot resolve linux-image-cloud-amd64 with apt; using cached kernel $KVER"
    else
        skip "cannot resolve linux-image-cloud-amd64 (no apt-cache or no package lists) and nothing cached"
    fi
fi
case $KVER in *[!A-Za-z0-9._+-]*) die "odd kernel version: $KVER" ;; esac

DIR=$GUEST_ROOT/$KVER
STAMP=$( (cat "$0" "$HERE/guest/init" "$HERE/guest/lib.sh" "$HERE"/payloads/*.sh; echo "$KVER") | md5sum | cut -d' ' -f1)

if [ "$FORCE" = 0 ] && [ -f "$DIR/stamp" ] && [ "$(cat "$DIR/stamp")" = "$STAMP" ] &&
   [ -f "$DIR/vmlinuz" ] && [ -f "$DIR/initramfs.cpio.gz" ]; then
    ln -sfn "$KVER" "$GUEST_ROOT/current"
    say "guest is cached (kernel $KVER): $DIR"
    [ "$PRINT_DIR" = 1 ] && echo "$DIR"
    exit 0
fi

mkdir -p "$DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vireo-guest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM HUP

# --- Kernel: apt-get download + dpkg -x (kept in the cache) -----------------
KDIR=$DIR/kernel
if [ ! -f "$KDIR/boot/vmlinuz-$KVER" ]; then
    command -v apt-get >/dev/null 2>&1 || skip "apt-get not available to fetch linux-image-$KVER"
    command -v dpkg >/dev/null 2>&1 || skip "dpkg not available to unpack linux-image-$KVER"
    say "downloading linux-image-$KVER"
    if ! (cd "$WORK" && apt-get download "linux-image-$KVER" >"$WORK/apt.log" 2>&1); then
        apt-get update >/dev/null 2>&1 || true
        (cd "$WORK" && apt-get download "linux-image-$KVER" >"$WORK/apt.log" 2>&1) ||
            { cat "$WORK/apt.log" >&2; skip "apt-get download linux-image-$KVER failed"; }
    fi
    rm -rf "$KDIR.tmp"
    dpkg -x "$WORK"/linux-image-"$KVER"_*.deb "$KDIR.tmp"
    rm -rf "$KDIR"; mv "$KDIR.tmp" "$KDIR"
    # The .deb ships no modules.dep and kmod is not installed: busybox depmod.
    "$BUSYBOX" depmod -b "$KDIR" "$KVER"
fi
[ -f "$KDIR/lib/modules/$KVER/modules.dep" ] || "$BUSYBOX" depmod -b "$KDIR" "$KVER"
MODDIR=$KDIR/lib/modules/$KVER
cp "$KDIR/boot/vmlinuz-$KVER" "$DIR/vmlinuz"

# --- Module load order: depth-first over modules.dep ------------------------
# modules.dep lists the full dependency closure but not in load order
# (virtio_net: ... net_failover.ko failover.ko), so order it ourselves.
ORDER=$(awk -v wanted="$(echo $WANTED_MODULES)" '
    function base(p,   b) { b = p; sub(/.*\//, "", b); sub(/\.ko(\.[a-z]+)?$/, "", b); return b }
    function canon(n) { gsub(/-/, "_", n); return n }
    function visit(n,   i, k, d) {
        if (n in done) return
        if (!(n in path)) { missing = missing " " n; return }
        done[n] = 1
        k = split(deps[n], d, " ")
        for (i = 1; i <= k; i++) visit(canon(base(d[i])))
        print path[n]
    }
    {
        m = $1; sub(/:$/, "", m); n = canon(base(m)); path[n] = m
        $1 = ""; deps[n] = $0
    }
    END {
        k = split(wanted, w, " ")
        for (i = 1; i <= k; i++) visit(canon(w[i]))
        if (missing != "") print "MISSING" missing > "/dev/stderr"
    }' "$MODDIR/modules.dep")
[ -n "$ORDER" ] || die "no virtio modules found in $MODDIR"

# --- initramfs tree ----------------------------------------------------------
R=$WORK/root
mkdir -p "$R/bin" "$R/sbin" "$R/usr/bin" "$R/usr/sbin" "$R/proc" "$R/sys" "$R/dev" \
         "$R/tmp" "$R/run" "$R/etc" "$R/lib/vireo/payloads" "$R/lib/modules/$KVER"
cp "$BUSYBOX" "$R/bin/busybox"
for applet in $("$BUSYBOX" --list-full); do
    [ -e "$R/$applet" ] || ln -s /bin/busybox "$R/$applet"
done
echo "$ORDER" | while read -r m; do
    mkdir -p "$R/lib/modules/$KVER/$(dirname "$m")"
    cp "$MODDIR/$m" "$R/lib/modules/$KVER/$m"
done
# modules.dep restricted to what we ship, so `modprobe` works in the guest too.
echo "$ORDER" | while read -r m; do grep "^$m:" "$MODDIR/modules.dep"; done > "$R/lib/modules/$KVER/modules.dep"
echo "$ORDER" > "$R/lib/vireo/modules.load"
cp "$R/lib/vireo/modules.load" "$DIR/modules.load"
cp "$HERE/guest/init" "$R/init"
cp "$HERE/guest/lib.sh" "$R/lib/vireo/lib.sh"
cp "$HERE"/payloads/*.sh "$R/lib/vireo/payloads/"
chmod 755 "$R/init" "$R"/lib/vireo/payloads/*.sh
echo "$KVER" > "$R/etc/vireo-kernel"
echo "root:x:0:0:root:/root:/bin/sh" > "$R/etc/passwd"

(cd "$R" && find . | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -9) > "$WORK/initramfs.cpio.gz"
mv "$WORK/initramfs.cpio.gz" "$DIR/initramfs.cpio.gz"
{
    echo "kernel=$KVER"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "busybox=$("$BUSYBOX" 2>&1 | head -1)"
    echo "initramfs_bytes=$(wc -c < "$DIR/initramfs.cpio.gz")"
    echo "modules=$(sed 's|.*/||; s|\.ko$||' "$DIR/modules.load" | tr '\n' ' ')"
} > "$DIR/build-info"
echo "$STAMP" > "$DIR/stamp"
ln -sfn "$KVER" "$GUEST_ROOT/current"
say "built guest (kernel $KVER, initramfs $(wc -c < "$DIR/initramfs.cpio.gz") bytes): $DIR"
[ "$PRINT_DIR" = 1 ] && echo "$DIR"
exit 0
