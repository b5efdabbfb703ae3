# Root filesystem test (keel.root=/dev/vda): says what / is and the disk's /etc/version, then
# "keel-test: rootfs-ready" (a snapshot is taken there); after a restore it reads all of
# /opt/model.bin from the disk (never read before the snapshot) and reports its MD5, then stays up.
ver=$(cat /etc/version 2>/dev/null)
echo "keel-test: root $(awk '$2 == "/" { r = $1 " " $3 " " substr($4, 1, 2) } END { print r }' /proc/mounts) version $ver"
echo "keel-test: rootfs-ready"
sleep 2
sum=$(md5sum /opt/model.bin 2>/tmp/err | cut -d' ' -f1)
echo "keel-test: rootfs version $ver model md5 ${sum:-none} err $(tr '\n' ' ' < /tmp/err | head -c 80)"
