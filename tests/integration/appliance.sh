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
