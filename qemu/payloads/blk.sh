# blk: O_DIRECT write of a seeded pattern to the first virtio disk, O_DIRECT
# read-back, compare. Args: vireo.dev=vda vireo.seed=1 vireo.size_mib=4 vireo.offset_mib=0
# Reports blk_md5 (md5 of what was written), blk_features, blk_capacity_bytes, ...
do_blk "$(arg dev vda)" blk
pass
