#!/usr/bin/env bash
# Read-only disks: keel's object disk (a snapshot's disk served from its chunk objects, each
# re-hashed on first read) and keel's plain file disk beside QEMU's virtio-blk on the same image,
# the same Debian-kernel guest reading /dev/vda with O_DIRECT (tests/guest/tools/diskread.c):
# sequential 1 MiB and random 4 KiB requests, 10 s each, all inside the test appliance VM in
# one run (nested KVM under TCG: only the ratios mean anything). Runs only in `./build.sh bench`.
set -u
: "${KEEL_TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${KEEL:=$KEEL_TOP/build/keel}"
command -v qemu-system-x86_64 >/dev/null || { echo "disks: skipped (qemu-system-x86_64 not installed)"; exit 0; }
[ -x "$KEEL" ] || { echo "disks: skipped (no $KEEL)"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/inside.sh" <<'IN'
K=/guest/vmlinux I=/guest/initramfs.cpio T=/tmp/b S=/tmp/b/store
CL="console=ttyS0 reboot=t panic=-1 quiet keel.cmd=diskbench keel.secs=10"
mkdir -p $T
keel store init $S >/dev/null
dd if=/dev/urandom of=$T/disk.img bs=1048576 count=128 2>/dev/null
say() { sed -n "s/.*keel-test: diskread \([a-z]*\): \([0-9]*\) bytes in \([0-9.]*\) s.*/bench-disk $1 \1 \2 \3/p" "$2"; }
# keel: the snapshot's disk, served from its chunk objects
timeout 300 keel vm run --kernel $K --initrd $I --mem 256 --disk $T/disk.img,ro --snapshot-on "keel-test: diskbench-ready" \
	--store $S --name db --cmdline "$CL" </dev/null > $T/snap.log 2>&1
timeout 300 keel vm restore --store $S db > $T/obj.log 2>&1
say keel-obj $T/obj.log
grep -q "diskread seq" $T/obj.log || { tail -n 3 $T/obj.log; dmesg | grep -i "syscall=" | tail -n 3; } | sed 's/^/bench-info /'
# keel: the same image as a plain file disk
timeout 300 keel vm run --kernel $K --initrd $I --mem 256 --disk $T/disk.img,ro --cmdline "$CL" </dev/null > $T/file.log 2>&1
say keel-file $T/file.log
# QEMU's virtio-blk on the same file (microvm, virtio-mmio like keel)
timeout 300 qemu-system-x86_64 -accel kvm -cpu host -M microvm,rtc=on -m 256M -smp 1 -display none -no-reboot -nodefaults \
	-serial file:$T/q.log -kernel $K -initrd $I -append "$CL" \
	-drive file=$T/disk.img,format=raw,if=none,id=d0,readonly=on -device virtio-blk-device,drive=d0 </dev/null
say qemu $T/q.log
IN

st=0
bash "$KEEL_TOP/tests/appliance/vmtest.sh" --timeout 1500 --with-qemu --keel "$KEEL" "$tmp/inside.sh" \
	> "$tmp/console" 2> "$tmp/err" || st=$?
out=$(tr -d '\r' < "$tmp/console")
grep -q "^bench-disk " <<< "$out" || {
	echo "disks: no results (vmtest.sh exit $st): $(tail -n 4 "$tmp/console" "$tmp/err" | tr '\n' ' ' | head -c 400)"
	exit 0
}
mbs() { awk -v w="$1" -v m="$2" '$1 == "bench-disk" && $2 == w && $3 == m { printf "%.1f", ($5 > 0 ? $4 / 1048576 / $5 : 0); exit }' <<< "$out"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
for m in seq rand; do
	echo "disks $m reads of a 128 MiB ro disk (appliance, TCG, $([ $m = seq ] && echo '1 MiB' || echo '4 KiB') O_DIRECT requests): keel object disk $(mbs keel-obj $m) MiB/s vs QEMU virtio-blk $(mbs qemu $m) MiB/s = $(ratio "$(mbs keel-obj $m)" "$(mbs qemu $m)") (higher is better); keel file disk $(mbs keel-file $m) MiB/s = $(ratio "$(mbs keel-file $m)" "$(mbs qemu $m)")"
done
grep "^bench-info" <<< "$out" | sed 's/^bench-info /disks: /'
