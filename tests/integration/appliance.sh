#!/usr/bin/env bash
# The test appliance VM (tests/appliance/vmtest.sh): it boots, /dev/kvm is a nested-virtualization KVM
# inside, keel runs inside, added files arrive, a Debian-kernel guest boots one level down (QEMU/KVM in
# the appliance), and the script's exit status comes back out.
. "$(dirname "$0")/../lib.sh"

if ! command -v qemu-system-x86_64 >/dev/null; then
	skip boots "qemu-system-x86_64 is not installed"
	exit 0
fi

cat > "$T_TMP/inside.sh" <<'IN'
[ -c /dev/kvm ] && echo "vmtest-check kvm-device"
dmesg | grep -q 'kvm: Nested Virtualization enabled' && echo "vmtest-check nested-virt"
dmesg | grep -q 'Nested Paging enabled' && echo "vmtest-check nested-paging"
/bin/keel version | grep -q '^keel ' && echo "vmtest-check keel-runs"
[ -f /extra/hello.txt ] && [ "$(cat /extra/hello.txt)" = hello-from-host ] && echo "vmtest-check added-file"
# A nested guest one level down: the test guest under QEMU with KVM inside the appliance.
t0=$(cut -d' ' -f1 /proc/uptime)
qemu-system-x86_64 -accel kvm -cpu host -M microvm,acpi=off -m 256M -smp 1 -display none -no-reboot \
	-nodefaults -serial stdio -kernel /guest/vmlinux -initrd /guest/initramfs.cpio \
	-append "console=ttyS0 acpi=off reboot=t panic=-1 quiet keel.cmd=none" </dev/null > /tmp/guest.log 2>&1 &
q=$!
i=0
while [ $i -lt 1800 ] && ! grep -q 'keel-guest: ready' /tmp/guest.log; do sleep 0.1; i=$((i + 1)); done
t1=$(cut -d' ' -f1 /proc/uptime)
kill $q 2>/dev/null
if grep -q 'keel-guest: ready' /tmp/guest.log; then
	echo "vmtest-check nested-guest $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")"
else
	echo "nested guest console:"; tail -n 20 /tmp/guest.log
fi
exit 42
IN
echo hello-from-host > "$T_TMP/hello.txt"

st=0
bash "$KEEL_TOP/tests/appliance/vmtest.sh" --timeout 400 --with-qemu --keel "$KEEL" \
	--add "$T_TMP/hello.txt:/extra/hello.txt" --log "$T_TMP/console.txt" "$T_TMP/inside.sh" \
	> "$T_TMP/out" 2> "$T_TMP/err" || st=$?
has() { grep -q "^vmtest-check $1" "$T_TMP/console.txt" 2>/dev/null; }
why="status $st; $(grep -E 'vmtest.sh:' "$T_TMP/err" | tail -n 2 | tr '\n' ' ')"
if [ "$st" = 42 ]; then pass "script exit status comes back (42)"; else fail "script exit status comes back (42)" "$why"; fi
for c in kvm-device nested-virt nested-paging keel-runs added-file; do
	if has "$c"; then pass "inside: $c"; else fail "inside: $c" "$why"; fi
done
if has nested-guest; then
	pass "nested Debian guest (QEMU/KVM inside) reaches keel-guest: ready in $(sed -n 's/^vmtest-check nested-guest //p' "$T_TMP/console.txt") s"
else
	fail "nested Debian guest (QEMU/KVM inside) reaches keel-guest: ready" "$(tail -n 5 "$T_TMP/console.txt" | tr '\n' ' ')"
fi
grep -h 'vmtest.sh: .* in all' "$T_TMP/err" | sed 's/^/appliance: /'

# Devices: a read-only and a read-write virtio-blk disk, and a virtio NIC with a forwarded TCP port.
printf 'keel-disk-bytes!' > "$T_TMP/ro.img"; truncate -s 1M "$T_TMP/ro.img"
truncate -s 1M "$T_TMP/rw.img"
port=$((20000 + RANDOM % 20000))
while ss -ltnH 2>/dev/null | grep -q ":$port "; do port=$((port + 1)); done
cat > "$T_TMP/dev.sh" <<'IN'
[ "$(head -c 16 /dev/vda)" = keel-disk-bytes! ] && echo "vmtest-check disk-read"
echo written-by-appliance | dd of=/dev/vdb conv=notrunc 2>/dev/null && sync
echo overwrite | dd of=/dev/vda conv=notrunc 2>/dev/null; sync
vmtest-net-up && echo hello-from-appliance | nc -l -p 7070 && echo "vmtest-check net-served"
exit 0
IN
(for i in $(seq 1 400); do
	r=$(nc -w 30 127.0.0.1 "$port" </dev/null 2>/dev/null) || true
	[ -n "$r" ] && { echo "$r" > "$T_TMP/net.got"; break; }
	sleep 0.5
done) &
pollpid=$!
st=0
bash "$KEEL_TOP/tests/appliance/vmtest.sh" --timeout 300 --keel "$KEEL" --disk "$T_TMP/ro.img,ro" \
	--disk "$T_TMP/rw.img" --net-fwd "$port:7070" --log "$T_TMP/dev.txt" "$T_TMP/dev.sh" \
	> "$T_TMP/out" 2> "$T_TMP/err" || st=$?
kill "$pollpid" 2>/dev/null; wait "$pollpid" 2>/dev/null
why="status $st; $(tail -n 3 "$T_TMP/dev.txt" 2>/dev/null | tr '\n' ' ')"
if grep -q '^vmtest-check disk-read' "$T_TMP/dev.txt"; then pass "--disk: guest reads the disk"; else fail "--disk: guest reads the disk" "$why"; fi
if [ "$(head -c 20 "$T_TMP/rw.img")" = written-by-appliance ]; then pass "--disk: writes reach the host file"; else fail "--disk: writes reach the host file" "$why"; fi
if [ "$(head -c 16 "$T_TMP/ro.img")" = keel-disk-bytes! ]; then pass "--disk FILE,ro: the file is not written"; else fail "--disk FILE,ro: the file is not written" "$why"; fi
if [ "$(cat "$T_TMP/net.got" 2>/dev/null)" = hello-from-appliance ]; then
	pass "--net-fwd: a host connection reaches the appliance's port 7070"
else
	fail "--net-fwd: a host connection reaches the appliance's port 7070" "$why"
fi

# ./build.sh image's initramfs (without the snapshot, which needs a guest run): keel is /init, the only
# program; every module board.conf will load is in it, after the modules it depends on.
if bash "$KEEL_TOP/tests/appliance/image.sh" --no-snap > "$T_TMP/img.out" 2>&1; then
	x=$T_TMP/initramfs
	mkdir -p "$x"
	(cd "$x" && cpio -id --quiet < "$KEEL_BUILD/appliance/initramfs.cpio")
	strip -o "$T_TMP/keel.stripped" "$KEEL_BUILD/keel" 2>/dev/null || cp "$KEEL_BUILD/keel" "$T_TMP/keel.stripped"
	if cmp -s "$T_TMP/keel.stripped" "$x/init" || cmp -s "$KEEL_BUILD/keel" "$x/init"; then
		pass "image: keel is /init"
	else
		fail "image: keel is /init" "init differs from build/keel"
	fi
	progs=$(find "$x" -type f -perm -u+x ! -name init | head -n 3)
	if [ -z "$progs" ]; then pass "image: no other programs"; else fail "image: no other programs" "$progs"; fi
	bad="" loaded=" "
	for m in $(sed -n 's/^module *= *//p' "$x/etc/keel/board.conf"); do
		[ -f "$x$m" ] || bad="$bad missing:$m"
		n=$(basename "$m" .ko | tr - _)
		for d in $(sed -n "s/^$n://p" "$KEEL_BUILD/kernel/modules.dep"); do
			case $loaded in *" $d "*) ;; *) bad="$bad $n-before-$d" ;; esac
		done
		loaded="$loaded$n "
	done
	case $loaded in *" virtio_blk "*) ;; *) bad="$bad no-virtio_blk" ;; esac
	if [ -z "$bad" ]; then pass "image: board modules present, dependencies first"; else fail "image: board modules present, dependencies first" "$bad"; fi
else
	fail "image: image.sh --no-snap" "$(tail -n 2 "$T_TMP/img.out" | tr '\n' ' ')"
fi
