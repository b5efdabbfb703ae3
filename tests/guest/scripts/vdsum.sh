# Disk test: says "keel-test: vdsum-ready" (a snapshot is taken there, before the disk is read),
# then the MD5 of all of /dev/vda and whether reading it failed, and powers off.
echo "keel-test: vdsum-ready"
sleep 2
sum=$(md5sum /dev/vda 2>/tmp/err | cut -d' ' -f1)
echo "keel-test: vda md5 ${sum:-none} err $(tr '\n' ' ' < /tmp/err | head -c 80)"
poweroff -f
