# multi: exercise every virtio device found: each disk (blk, blk_vdb, ...),
# the first virtio-net interface (net; others only report features: net1, ...),
# the entropy device (rng). Fails if none is found or any check fails.
# Takes the same args as blk, net and rng.
found=
for b in /sys/block/vd*; do
    [ -e "$b" ] || continue
    d=$(basename "$b")
    if [ "$d" = vda ]; then p=blk; else p=blk_$d; fi
    do_blk "$d" "$p"
    found="$found${found:+,}$p"
done
i=0
for dev in $(virtio_devs 1); do
    if [ "$i" = 0 ]; then
        do_net "$dev" net
        found="$found${found:+,}net"
    else
        report_features "net$i" "$dev"
        found="$found${found:+,}net$i"
    fi
    i=$((i + 1))
done
dev=$(virtio_devs 4 | head -1)
if [ -n "$dev" ]; then
    do_rng "$dev" rng
    found="$found${found:+,}rng"
fi
kv tested "$found"
[ -n "$found" ] || fail "no virtio blk, net or rng device found (virtio devices: $(list_virtio))"
pass
