# net: bring up the first virtio-net interface and ping a target.
# Args: vireo.ip=192.0.2.2/24 vireo.target=192.0.2.1 vireo.count=5
#       vireo.interval=0.2 vireo.min_recv=<count>
# Reports net_received, net_features (EVENT_IDX bit 29, RING_PACKED bit 34), ...
dev=$(virtio_devs 1 | head -1)
[ -n "$dev" ] || fail "no virtio-net device (virtio devices: $(list_virtio))"
do_net "$dev" net
pass
