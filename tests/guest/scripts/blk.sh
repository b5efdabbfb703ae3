# Device test: read the first bytes of /dev/vda (virtio-blk, read-only), write a line to /dev/vdb, and
# read virtio-rng through /dev/hwrng.
printf 'keel-test: vda %s\n' "$(head -c 16 /dev/vda)"
echo "written-by-guest" | dd of=/dev/vdb conv=fsync 2>/dev/null
printf 'keel-test: vda-write %s\n' "$(echo x | dd of=/dev/vda 2>&1 >/dev/null | head -c 40)"
printf 'keel-test: hwrng %s\n' "$(head -c 16 /dev/hwrng | od -An -tx1 | tr -d ' \n')"
poweroff -f
