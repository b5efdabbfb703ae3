# Disk bench guest: says "keel-test: diskbench-ready" (a snapshot may be taken there), then reads
# /dev/vda for keel.secs seconds (default 10) sequentially and at random (tests/guest/tools/diskread.c)
# and powers off.
secs=10
for a in $(cat /proc/cmdline); do
	case $a in keel.secs=*) secs=${a#keel.secs=} ;; esac
done
echo "keel-test: diskbench-ready"
sleep 2
echo "keel-test: $(diskread /dev/vda seq $secs 2>&1)"
echo "keel-test: $(diskread /dev/vda rand $secs 2>&1)"
poweroff -f
