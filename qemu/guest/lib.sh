# Helpers for Vireo guest payloads (busybox sh). Sourced by /init before a
# payload runs; payloads may call everything here.
#
# Verdict protocol (one line each on the serial console):
#   VIREO-KV key=value          a fact (any number, keys [A-Za-z0-9_.-])
#   VIREO-RESULT: PASS          exactly one verdict line per boot ...
#   VIREO-RESULT: FAIL reason   ... or this one
# A payload must end with `pass` or `fail REASON`; `fail` also exits.

VIREO_VERDICT_FILE=/tmp/.vireo-verdict

kv() { echo "VIREO-KV $1=$2"; }
log() { echo "vireo: $*"; }

pass() {
    [ -e "$VIREO_VERDICT_FILE" ] && return 0
    echo PASS > "$VIREO_VERDICT_FILE"
    echo "VIREO-RESULT: PASS"
}

fail() {
    if [ ! -e "$VIREO_VERDICT_FILE" ]; then
        echo FAIL > "$VIREO_VERDICT_FILE"
        echo "VIREO-RESULT: FAIL $*"
    fi
    exit 1
}

# arg NAME DEFAULT: value of vireo.NAME (kernel cmdline or fw_cfg opt/vireo/args).
arg() {
    local _v
    _v=$(echo "$1" | tr 'a-z.-' 'A-Z__')
    eval "_v=\${VIREO_ARG_$_v-}"
    if [ -n "$_v" ]; then echo "$_v"; else echo "$2"; fi
}

# Seconds since boot, two decimals.
now() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# wait_for PATH SECONDS: poll until PATH exists.
wait_for() {
    local n=$(( $2 * 10 ))
    while [ ! -e "$1" ] && [ "$n" -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
    [ -e "$1" ]
}

# Feature bits: /sys/bus/virtio/devices/*/features is a 64-char string, char i = bit i.
feature_bit() { echo "$1" | cut -c$(( $2 + 1 )); }
features_hex() {
    echo "$1" | awk '{ lo = 0; hi = 0; p = 1
        for (i = 1; i <= 32; i++) { if (substr($0, i, 1) == "1") lo += p; p *= 2 }
        p = 1
        for (i = 33; i <= 64; i++) { if (substr($0, i, 1) == "1") hi += p; p *= 2 }
        if (hi > 0) printf "0x%x%08x", hi, lo; else printf "0x%x", lo }'
}
# report_features PREFIX SYSFS_VIRTIO_DIR
report_features() {
    local _f
    _f=$(cat "$2/features" 2>/dev/null)
    kv "$1_features" "$_f"
    kv "$1_features_hex" "$(features_hex "$_f")"
    kv "$1_indirect" "$(feature_bit "$_f" 28)"
    kv "$1_event_idx" "$(feature_bit "$_f" 29)"
    kv "$1_version_1" "$(feature_bit "$_f" 32)"
    kv "$1_packed" "$(feature_bit "$_f" 34)"
}

# Virtio device ids (virtio spec 5.x): 1 net, 2 block, 3 console, 4 entropy.
# virtio_devs ID: sysfs dirs of the virtio devices with that id.
virtio_devs() {
    local _d
    for _d in /sys/bus/virtio/devices/virtio*; do
        [ -e "$_d/device" ] || continue
        [ "$(($(cat "$_d/device")))" = "$1" ] && echo "$_d"
    done
}
list_virtio() {
    local _d _out=
    for _d in /sys/bus/virtio/devices/virtio*; do
        [ -e "$_d/device" ] || continue
        _out="$_out${_out:+,}$(basename "$_d"):$(($(cat "$_d/device")))"
    done
    echo "$_out"
}

# ---------------------------------------------------------------------------
# blk: write SIZE MiB of a seeded pattern at OFFSET MiB with O_DIRECT, read it
# back with O_DIRECT, compare. busybox dd opens with O_DIRECT for
# oflag=direct/iflag=direct and uses an mmap'ed (page-aligned) buffer, so
# 1 MiB blocks satisfy O_DIRECT's alignment rules.
# do_blk DEV PREFIX   (args: seed, size_mib, offset_mib)
make_pattern() { # SEED MIB -> stdout: MIB MiB of 64-byte lines (line index + 31-bit LCG)
    # Each 64-byte line holds its own index, so misplaced or stale sectors show.
    # vireo_vm.py's pattern() makes the same bytes on the host.
    awk -v seed="$1" -v lines="$(( $2 * 16384 ))" 'BEGIN {
        # Modulus 2^31: busybox awk printf %x of values >= 2^31 gave 80000000 under TCG.
        m = 2147483648; seed = seed % m
        x = (seed * 69069 + 12345) % m
        for (l = 0; l < lines; l++) {
            a = (x * 69069 + 1) % m; b = (a * 69069 + 1) % m; c = (b * 69069 + 1) % m
            x = (c * 69069 + 1) % m
            printf "%08x: %08x %08x %08x %08x %08x %08x\n", l, a, b, c, x, (a + l) % m, (b + seed) % m
        }
    }'
}

do_blk() {
    local _dev=$1 _p=$2 _seed _mib _off _sys _sectors _want _got _t
    _seed=$(arg seed 1); _mib=$(arg size_mib 4); _off=$(arg offset_mib 0)
    wait_for "/dev/$_dev" 5 || fail "$_p: /dev/$_dev not found (virtio devices: $(list_virtio))"
    _sys=$(readlink -f "/sys/block/$_dev/device")
    report_features "$_p" "$_sys"
    _sectors=$(cat "/sys/block/$_dev/size")
    kv "$_p"_dev "$_dev"
    kv "$_p"_capacity_bytes "$(( _sectors * 512 ))"
    [ $(( (_off + _mib) * 2048 )) -le "$_sectors" ] ||
        fail "$_p: device too small ($_sectors sectors) for ${_mib} MiB at ${_off} MiB"
    _t=$(now)
    make_pattern "$_seed" "$_mib" > /tmp/pattern || fail "$_p: cannot make pattern"
    [ "$(wc -c < /tmp/pattern)" = $(( _mib * 1048576 )) ] || fail "$_p: pattern has the wrong size"
    kv "$_p"_pattern_s "$(elapsed "$_t")"
    _want=$(md5sum /tmp/pattern | cut -d' ' -f1)
    _t=$(now)
    dd if=/tmp/pattern of="/dev/$_dev" bs=1M count="$_mib" seek="$_off" oflag=direct conv=notrunc,fsync \
        2>/tmp/dd.err || fail "$_p: O_DIRECT write failed: $(tr '\n' ' ' < /tmp/dd.err)"
    kv "$_p"_write_s "$(elapsed "$_t")"
    _t=$(now)
    _got=$(dd if="/dev/$_dev" bs=1M count="$_mib" skip="$_off" iflag=direct 2>/tmp/dd.err | md5sum | cut -d' ' -f1)
    kv "$_p"_read_s "$(elapsed "$_t")"
    grep -q "^$_mib+0 records in" /tmp/dd.err || fail "$_p: O_DIRECT read failed: $(tr '\n' ' ' < /tmp/dd.err)"
    kv "$_p"_seed "$_seed"
    kv "$_p"_offset_bytes "$(( _off * 1048576 ))"
    kv "$_p"_bytes_written "$(( _mib * 1048576 ))"
    kv "$_p"_md5 "$_want"
    kv "$_p"_md5_readback "$_got"
    rm -f /tmp/pattern
    [ "$_want" = "$_got" ] || fail "$_p: readback md5 $_got != written $_want"
}

# ---------------------------------------------------------------------------
# net: configure the interface of a virtio-net device and ping a target.
# do_net SYSFS_VIRTIO_DIR PREFIX   (args: ip, target, count, interval, min_recv)
do_net() {
    local _sys=$1 _p=$2 _ip _target _count _int _min _if _t _recv
    _ip=$(arg ip 192.0.2.2/24); _target=$(arg target 192.0.2.1)
    _count=$(arg count 5); _int=$(arg interval 0.2); _min=$(arg min_recv "$_count")
    wait_for "$_sys/net" 5 || fail "$_p: no network interface under $_sys"
    _if=$(ls "$_sys/net" | head -1)
    report_features "$_p" "$_sys"
    kv "$_p"_ifname "$_if"
    kv "$_p"_mac "$(cat "/sys/class/net/$_if/address")"
    ip link set lo up
    ip addr add "$_ip" dev "$_if" || fail "$_p: cannot set $_ip on $_if"
    ip link set "$_if" up || fail "$_p: cannot bring $_if up"
    _t=$(now)
    # Replies go to the console as they come (the reconnect test watches them live).
    ping -c "$_count" -i "$_int" -W 5 -w $(( _count + 20 )) "$_target" 2>&1 | tee /tmp/ping.out
    kv "$_p"_ping_s "$(elapsed "$_t")"
    _recv=$(sed -n 's/.* \([0-9]*\) packets received.*/\1/p' /tmp/ping.out)
    _recv=${_recv:-0}
    kv "$_p"_ip "$_ip"
    kv "$_p"_target "$_target"
    kv "$_p"_sent "$_count"
    kv "$_p"_received "$_recv"
    kv "$_p"_rx_bytes "$(cat "/sys/class/net/$_if/statistics/rx_bytes")"
    kv "$_p"_tx_bytes "$(cat "/sys/class/net/$_if/statistics/tx_bytes")"
    [ "$_recv" -ge "$_min" ] || fail "$_p: $_recv of $_count pings to $_target answered (need $_min)"
}

# ---------------------------------------------------------------------------
# rng: read N bytes from /dev/hwrng, which must be backed by virtio_rng.
# do_rng SYSFS_VIRTIO_DIR PREFIX   (args: rng_bytes, rng_timeout)
do_rng() {
    local _sys=$1 _p=$2 _n _to _cur _t _got _nonzero
    _n=$(arg rng_bytes 4096); _to=$(arg rng_timeout 30)
    report_features "$_p" "$_sys"
    wait_for /sys/class/misc/hw_random/rng_current 5 || fail "$_p: no hw_random class"
    _cur=$(cat /sys/class/misc/hw_random/rng_current)
    kv "$_p"_rng_current "$_cur"
    kv "$_p"_rng_available "$(cat /sys/class/misc/hw_random/rng_available | tr ' ' ',')"
    case $_cur in virtio_rng*) ;; *) fail "$_p: rng_current is '$_cur', not virtio_rng" ;; esac
    wait_for /dev/hwrng 5 || fail "$_p: /dev/hwrng missing"
    _t=$(now)
    timeout "$_to" dd if=/dev/hwrng of=/tmp/rng.bin bs="$_n" count=1 iflag=fullblock 2>/dev/null
    kv "$_p"_read_s "$(elapsed "$_t")"
    _got=$(wc -c < /tmp/rng.bin)
    _nonzero=$(tr -d '\000' < /tmp/rng.bin | wc -c)
    kv "$_p"_bytes "$_got"
    kv "$_p"_nonzero_bytes "$_nonzero"
    kv "$_p"_md5 "$(md5sum < /tmp/rng.bin | cut -d' ' -f1)"
    rm -f /tmp/rng.bin
    [ "$_got" -eq "$_n" ] || fail "$_p: read $_got of $_n bytes from /dev/hwrng"
    [ "$_nonzero" -gt 0 ] || fail "$_p: /dev/hwrng gave only zero bytes"
}
