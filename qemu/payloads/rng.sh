# rng: read N bytes from /dev/hwrng backed by virtio_rng.
# Args: vireo.rng_bytes=4096 vireo.rng_timeout=30
# Reports rng_bytes, rng_rng_current, rng_features, ...
dev=$(virtio_devs 4 | head -1)
[ -n "$dev" ] || fail "no virtio entropy device (virtio devices: $(list_virtio))"
do_rng "$dev" rng
pass
