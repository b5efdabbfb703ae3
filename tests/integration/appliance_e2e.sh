#!/usr/bin/env bash
# End to end on the appliance set (`./build.sh image` + tests/appliance/run.sh): QEMU boots Debian's
# kernel with keel as /init (no busybox), snap.img as the read-only partition, a fresh ext4 data disk and
# a virtio NIC whose listener port is forwarded to the host.
#  1. boot: the timeline shows init start, the partition opened and the demo sandbox restored, and the
#     sandbox's `heartbeat` lines reach the console;
#  2. update: `keel push` of a second demo snapshot (its guest prints `heartbeat-v2`, signed with the
#     development key) is answered `ok <id>` and the console shows the new version's heartbeat;
#  3. reboot on the same data disk: the appliance comes back on the pushed snapshot;
#  4. rollback: a pushed snapshot whose guest never prints `heartbeat` (board health-timeout 60 s) is
#     rolled back from, to the snapshot pushed before it (v2, from the ref's history in the data store;
#     not the partition image's demo), and heartbeat-v2 resumes;
#  5. a flipped byte in an object of snap.img: the snapshot is refused with a line naming the object, and
#     keel keeps running its listener (a push is still answered ok);
#  and on every boot: SIGTERM to run.sh presses the ACPI power button, keel (reading KEY_POWER) stops the
#  sandboxes and powers off and QEMU exits by itself; the ib700 watchdog keel arms (30 s) never fires (QEMU
#  runs with -action watchdog=debug, so a missed pet prints "watchdog: timer fired"), though each boot
#  lasts well past its timeout, and keel disarms it (magic close) before powering off.
. "$(dirname "$0")/../lib.sh"
export LC_ALL=C

for tool in qemu-system-x86_64 mkfs.ext4 socat; do
	if ! command -v "$tool" >/dev/null; then
		skip appliance "$tool is not installed"
		exit 0
	fi
done
AP=$KEEL_TOP/tests/appliance
A=$KEEL_BUILD/appliance
# An operator's TLS credentials from ./build.sh image (the board's listener requires a client certificate).
TLS=(--tls --cert "$A/keys/tls/operator.pem" --key "$A/keys/tls/operator.key" --ca "$A/keys/tls/appliance-ca.pem")
t_start=$SECONDS

# The appliance set (cached by image.sh when up to date).
if ! KEEL_BUILD_DIR=$KEEL_BUILD bash "$AP/image.sh" > "$T_TMP/image.log" 2>&1; then
	fail "appliance set builds (./build.sh image)" "$(tail -n 3 "$T_TMP/image.log" | tr '\n' ' ')"
	exit 0
fi

free_port() {
	local p=$((20000 + RANDOM % 20000))
	while ss -ltnH 2>/dev/null | grep -q ":$p "; do p=$((p + 1)); done
	echo "$p"
}
# wait_for FILE REGEX SECONDS: until a line of FILE matches.
wait_for() {
	local i=0
	while [ "$i" -lt $(($3 * 5)) ]; do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		kill -0 "$rpid" 2>/dev/null || { grep -qE "$2" "$1" 2>/dev/null; return; }
		sleep 0.2; i=$((i + 1))
	done
	return 1
}
rpid=""
# boot SNAP DATA LOG: run.sh in the background (rpid), console to LOG.
boot() {
	port=$(free_port)
	KEEL_BUILD_DIR=$KEEL_BUILD KEEL_RUN_WATCHDOG_ACTION=debug bash "$AP/run.sh" --port "$port" --snap "$1" --data "$2" --timeout 400 \
		> "$3" 2>&1 &
	rpid=$!
}
# halt: run.sh's clean stop (power button, ctrl-alt-del); prints whether keel stopped the sandbox.
halt() {
	[ -n "$rpid" ] || return 0
	kill -TERM "$rpid" 2>/dev/null
	local i=0
	while kill -0 "$rpid" 2>/dev/null && [ "$i" -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
	kill -0 "$rpid" 2>/dev/null && kill -KILL "$rpid" 2>/dev/null
	wait "$rpid" 2>/dev/null
	rpid=""
}
trap 'halt; rm -rf "$T_TMP"' EXIT
ms() { sed -n "s/.*keel-init: \[ *\([0-9.]*\) ms\] $2.*/\1/p" "$1" | head -n 1; }

# The second demo snapshot, made (in the test appliance VM, in the background while boot 1 runs) the way
# image.sh makes the first: the test guest plus a heartbeat service, snapshotted once it beats; its
# manifest signed with the development key; shipped out as one SNAPPACK 1 stream on a disk.
mkdir -p "$T_TMP/v2/etc/keel"
cat > "$T_TMP/v2/etc/keel/heartbeat.sh" <<'EOF'
i=0
while :; do
	i=$((i + 1))
	echo "heartbeat-v2 $i up $(cut -d' ' -f1 /proc/uptime)"
	sleep 2
done
EOF
. "$AP/lib.sh"
ap_cpio "$T_TMP/v2" "$T_TMP/hb2.cpio"
cat "$KEEL_BUILD/guest/initramfs.cpio" "$T_TMP/hb2.cpio" > "$T_TMP/demo2.cpio"
# v3: a service that runs but never says the board's health marker.
mkdir -p "$T_TMP/v3/etc/keel"
cat > "$T_TMP/v3/etc/keel/heartbeat.sh" <<'EOF'
i=0
while :; do
	i=$((i + 1))
	echo "silent-v3 $i"
	sleep 2
done
EOF
ap_cpio "$T_TMP/v3" "$T_TMP/hb3.cpio"
cat "$KEEL_BUILD/guest/initramfs.cpio" "$T_TMP/hb3.cpio" > "$T_TMP/demo3.cpio"
cat > "$T_TMP/mkv2.sh" <<'EOF'
set -e
timeout 150 keel vm run --kernel /guest/vmlinuz --initrd /v2/demo2.cpio --mem 128 --rng \
	--cmdline "console=ttyS0 reboot=t panic=-1 acpi=off quiet keel.cmd=heartbeat" \
	--snapshot-on "heartbeat-v2 2 " --store /tmp/store --name demo --health heartbeat-v2 >/dev/null
id=$(keel manifest sign --key /v2/dev.key.pem --store /tmp/store demo)
keel pack send --store /tmp/store --manifest "$id" > /tmp/v2.pack
echo "v2-manifest $id"
echo "v2-pack-size $(wc -c < /tmp/v2.pack)"
dd if=/tmp/v2.pack of=/dev/vda bs=1M conv=fsync 2>/dev/null
timeout 150 keel vm run --kernel /guest/vmlinuz --initrd /v2/demo3.cpio --mem 128 --rng \
	--cmdline "console=ttyS0 reboot=t panic=-1 acpi=off quiet keel.cmd=heartbeat" \
	--snapshot-on "silent-v3 2" --store /tmp/store3 --name demo --health heartbeat >/dev/null
id=$(keel manifest sign --key /v2/dev.key.pem --store /tmp/store3 demo)
keel pack send --store /tmp/store3 --manifest "$id" > /tmp/v3.pack
echo "v3-manifest $id"
echo "v3-pack-size $(wc -c < /tmp/v3.pack)"
dd if=/tmp/v3.pack of=/dev/vda bs=1M seek=256 conv=fsync 2>/dev/null
EOF
truncate -s 512M "$T_TMP/v2.disk"
(bash "$AP/vmtest.sh" --timeout 400 --keel "$KEEL_BUILD/keel" --add "$T_TMP/demo2.cpio:/v2/demo2.cpio" --add "$T_TMP/demo3.cpio:/v2/demo3.cpio" \
	--add "$A/keys/dev.key.pem:/v2/dev.key.pem" --disk "$T_TMP/v2.disk" --log "$T_TMP/v2.log" \
	"$T_TMP/mkv2.sh" > /dev/null 2>"$T_TMP/v2.err"; echo $? > "$T_TMP/v2.status") &
v2pid=$!

# 1. Boot with keel as /init on a copy of snap.img and a fresh data disk.
cp "$A/snap.img" "$T_TMP/snap.img"
truncate -s 1G "$T_TMP/data.img"
mkfs.ext4 -q -F -L keel-data "$T_TMP/data.img"
c1=$T_TMP/boot1.log
b0=$SECONDS
boot "$T_TMP/snap.img" "$T_TMP/data.img" "$c1"
if wait_for "$c1" 'demo\| heartbeat [0-9]+ up' 180 && wait_for "$c1" 'sandbox demo healthy' 30 && grep -q 'init start' "$c1" &&
   grep -q 'partition opened: .* signature good' "$c1" && grep -q 'sandbox demo restored' "$c1"; then
	pass "boot: keel as /init opens the partition, restores demo, heartbeat on the console (init start $(ms "$c1" 'init start') ms, partition $(ms "$c1" 'partition opened') ms, restored $(ms "$c1" 'sandbox demo restored') ms, healthy $(ms "$c1" 'sandbox demo healthy') ms since kernel start; $((SECONDS - b0)) s wall)"
else
	fail "boot: keel as /init opens the partition, restores demo, heartbeat on the console" \
		"$(grep -E 'keel-init|heartbeat|run.sh' "$c1" | tail -n 6 | tr '\n' ' ')"
fi
# The board mounted cgroup2 (favordynmods: no warning), demo and the listener run in cgroups of their
# own, one line gives demo's limits, and PID 1's lines reach the console once (not again via kmsg).
if grep -q 'keel-init: limits: cgroup /sys/fs/cgroup/keel: cpu, memory, pids' "$c1" && ! grep -q 'favordynmods' "$c1" &&
   grep -q 'keel-init: sandbox demo: limits cpu 100% of one CPU, memory 144 MiB, pids 9' "$c1" &&
   ! grep -q 'listener: cgroup' "$c1" && [ "$(grep -c 'keel-init: .*init start' "$c1")" = 1 ]; then
	pass "boot: limits enforced ($(grep -m1 'sandbox demo: limits' "$c1" | sed 's/.*sandbox demo: //'; true)); PID 1's lines once on the console"
else
	fail "boot: limits enforced, PID 1's lines once" \
		"$(grep -E 'limits|cgroup|init start' "$c1" | head -n 5 | tr '\n' ' ')"
fi

# 2. Push the second snapshot once it is made; the console must show its heartbeat.
wait "$v2pid"
v2st=$(cat "$T_TMP/v2.status" 2>/dev/null)
v2id=$(sed -n 's/^v2-manifest \([0-9a-f]\{64\}\)$/\1/p' "$T_TMP/v2.log" 2>/dev/null | tail -n 1)
v2size=$(sed -n 's/^v2-pack-size \([0-9]*\)$/\1/p' "$T_TMP/v2.log" 2>/dev/null | tail -n 1)
if [ "$v2st" != 0 ] || [ -z "$v2id" ] || [ -z "$v2size" ]; then
	fail "push: a new signed snapshot is answered ok and its heartbeat shows" \
		"making it in the test appliance failed (status $v2st): $(tail -n 4 "$T_TMP/v2.log" 2>/dev/null | tr '\n' ' ')"
else
	head -c "$v2size" "$T_TMP/v2.disk" > "$T_TMP/v2.pack"
	# The board's listener speaks TLS only: a certificate copied off a box (the appliance's own) is no
	# operator's, and plain TCP gets nowhere.
	timeout 60 "$KEEL" push --to "127.0.0.1:$port" --tls --cert "$A/keys/tls/appliance.pem" --key "$A/keys/tls/appliance.key" \
		--ca "$A/keys/tls/appliance-ca.pem" "$T_TMP/v2.pack" > "$T_TMP/pushx.out" 2>&1
	timeout 60 "$KEEL" push --to "127.0.0.1:$port" "$T_TMP/v2.pack" >> "$T_TMP/pushx.out" 2>&1
	if ! grep -q "^ok" "$T_TMP/pushx.out" && grep -q "listener: started" "$c1" && ! grep -q "PLAINTEXT" "$c1"; then
		pass "TLS by default: the appliance's own certificate as a client and a plaintext push are both refused"
	else
		fail "TLS by default: the appliance's own certificate as a client and a plaintext push are both refused" \
			"$(head -c 300 "$T_TMP/pushx.out" | tr '\n' ' ')"
	fi
	p0=$SECONDS
	"$KEEL" push --to "127.0.0.1:$port" "${TLS[@]}" "$T_TMP/v2.pack" > "$T_TMP/push.out" 2> "$T_TMP/push.err"
	pst=$?
	p1=$SECONDS
	if [ "$pst" = 0 ] && grep -q "^ok $v2id" "$T_TMP/push.out" && wait_for "$c1" 'demo\| heartbeat-v2 [0-9]+ up' 120; then
		pass "push: $((v2size / 1024)) KiB signed snapshot answered ok in $((p1 - p0)) s, the console shows heartbeat-v2 $((SECONDS - p1)) s later"
	else
		fail "push: a new signed snapshot is answered ok and its heartbeat shows" \
			"push exit $pst: $(cat "$T_TMP/push.out" "$T_TMP/push.err" | head -c 300 | tr '\n' ' '); console: $(grep -E 'keel-init' "$c1" | tail -n 4 | tr '\n' ' ')"
	fi
fi
# Keep the box up past two watchdog timeouts before the power button, so "never fired" means keel
# petted it (a faster boot and push must not end the run before the timeout could have fired).
wd_armed=$(sed -n 's/.*keel-init: watchdog .* armed: timeout \([0-9]*\) s.*/\1/p' "$c1" | head -n 1)
[ -n "$wd_armed" ] && while [ $((SECONDS - b0)) -lt $((wd_armed * 2 + 15)) ]; do sleep 1; done
halt
# The power button: keel's orderly power-off, QEMU gone by itself (no ctrl-alt-del fallback) within 30 s.
off_s=$(sed -n 's/^run.sh: the appliance is off (\([0-9]*\) s after the power button; QEMU exit status 0)$/\1/p' "$c1")
if grep -q 'keel-init: power button: power off; stopping sandboxes' "$c1" &&
   grep -q 'keel-init: sandbox demo: stopped' "$c1" && grep -q 'keel-init: \[ *[0-9.]* ms\] powering off' "$c1" &&
   ! grep -q 'ctrl-alt-del\|stopping QEMU' "$c1" && [ -n "$off_s" ] && [ "$off_s" -le 30 ]; then
	pass "power button: SIGTERM to run.sh -> ACPI power button -> keel stops the sandboxes and powers off, QEMU exits 0 by itself ${off_s} s later"
else
	fail "power button: keel powers off on the ACPI power button and QEMU exits by itself" \
		"$(grep -E 'keel-init|run.sh' "$c1" | tail -n 5 | tr '\n' ' ')"
fi
# The watchdog: armed, petted through a boot several timeouts long, disarmed before the power-off.
wd_to=$(sed -n 's/.*keel-init: watchdog .* armed: timeout \([0-9]*\) s.*/\1/p' "$c1" | head -n 1)
off_ms=$(ms "$c1" 'powering off')
if [ -n "$wd_to" ] && [ -n "$off_ms" ] && [ "${off_ms%.*}" -gt $((wd_to * 2000)) ] &&
   ! grep -q 'watchdog: timer fired' "$c1" &&
   awk '/keel-init: watchdog disarmed \(magic close\)/{d=1} /keel-init: .*powering off/{exit !d}' "$c1"; then
	pass "watchdog: armed at ${wd_to} s, the box ran ${off_ms%.*} ms without it firing, disarmed before power-off"
else
	fail "watchdog: armed, petted past its timeout, disarmed on power-off" \
		"timeout '${wd_to}', power-off at '${off_ms}' ms; $(grep -E 'watchdog' "$c1" | tail -n 3 | tr '\n' ' ')"
fi

# 3. Reboot on the same data disk: the pushed snapshot is the one restored.
if [ -n "$v2id" ] && grep -q 'demo| heartbeat-v2' "$c1"; then
	c2=$T_TMP/boot2.log
	boot "$T_TMP/snap.img" "$T_TMP/data.img" "$c2"
	if wait_for "$c2" 'demo\| heartbeat(-v2)? [0-9]+ up' 180 && grep -q 'demo| heartbeat-v2 [0-9]* up' "$c2" &&
	   ! grep -q 'demo| heartbeat [0-9]* up' "$c2"; then
		pass "reboot: the appliance comes back on the pushed snapshot (heartbeat-v2)"
	else
		fail "reboot: the appliance comes back on the pushed snapshot (heartbeat-v2)" \
			"$(grep -E 'keel-init|heartbeat' "$c2" | tail -n 5 | tr '\n' ' ')"
	fi
	# 3b. The version record survived the reboot: a demo signed with the trusted key but older
	# (created 1000) than the pushed v2 is refused, and demo keeps running v2.
	R=$T_TMP/replay
	mkdir -p "$R" && "$KEEL" store init "$R/s" >/dev/null && head -c 8192 /dev/urandom > "$R/mem"
	old=$("$KEEL" manifest create --store "$R/s" --name demo --memory-file "$R/mem" --chunk 4096 --created 1000 \
		--sign "$A/keys/dev.key.pem")
	"$KEEL" pack send --store "$R/s" --manifest "$old" > "$R/old.pack"
	"$KEEL" push --to "127.0.0.1:$port" "${TLS[@]}" "$R/old.pack" > "$R/push.out" 2>&1
	if grep -q "^error .*demo version 1000 .*not newer than version" "$R/push.out" &&
	   ! grep -q "ref demo -> $old" "$c2"; then
		pass "anti-rollback after a reboot: an older signed demo is refused ($(grep -m1 "^error" "$R/push.out" | cut -c1-160))"
	else
		fail "anti-rollback after a reboot: an older signed demo is refused" "$(head -c 300 "$R/push.out" | tr '\n' ' ')"
	fi
	# 4. Push v3 (never healthy): after the health timeout keel rolls back and a heartbeat resumes.
	v3id=$(sed -n 's/^v3-manifest \([0-9a-f]\{64\}\)$/\1/p' "$T_TMP/v2.log" | tail -n 1)
	v3size=$(sed -n 's/^v3-pack-size \([0-9]*\)$/\1/p' "$T_TMP/v2.log" | tail -n 1)
	if [ -n "$v3id" ] && [ -n "$v3size" ]; then
		dd if="$T_TMP/v2.disk" of="$T_TMP/v3.pack" bs=1M skip=256 2>/dev/null
		truncate -s "$v3size" "$T_TMP/v3.pack"
		r0=$SECONDS
		"$KEEL" push --to "127.0.0.1:$port" "${TLS[@]}" "$T_TMP/v3.pack" > "$T_TMP/push3v.out" 2>&1
		after_rb() { awk '/keel-init: sandbox demo: rolling back to/{r=1} r && /demo\| heartbeat(-v2)? [0-9]+ up/{f=1} END{exit !f}' "$c2"; }
		# The rollback target is the previously pushed v2 (data store), and what beats after it is v2.
		to_v2() { grep -q "keel-init: sandbox demo: rolling back to ${v2id:0:12} (data store)" "$c2" &&
			  awk '/keel-init: sandbox demo: rolling back to/{r=1} r && /demo\| heartbeat [0-9]+ up/{bad=1} r && /demo\| heartbeat-v2 [0-9]+ up/{f=1} END{exit !(f && !bad)}' "$c2"; }
		if grep -q "^ok $v3id" "$T_TMP/push3v.out" && wait_for "$c2" 'demo\| silent-v3 [0-9]' 120 &&
		   wait_for "$c2" 'sandbox demo: rolling back to' 150 &&
		   { i=0; until after_rb || [ $i -ge 300 ]; do sleep 0.2; i=$((i + 1)); done; after_rb; } && to_v2; then
			pass "rollback: a pushed snapshot that never gets healthy is rolled back to the previously pushed one, heartbeat-v2 resumes $((SECONDS - r0)) s after the push ($(grep -m1 'sandbox demo: snapshot .* failed' "$c2" | sed 's/^.*keel-init: //'); $(grep -m1 'sandbox demo: rolling back' "$c2" | sed 's/^.*keel-init: sandbox demo: //'))"
		else
			fail "rollback: a pushed snapshot that never gets healthy is rolled back to the previously pushed one (v2)" \
				"$(head -c 200 "$T_TMP/push3v.out" | tr '\n' ' '); $(grep -E 'keel-init' "$c2" | tail -n 5 | tr '\n' ' ')"
		fi
	else
		fail "rollback: a pushed snapshot that never gets healthy is rolled back from" "v3 was not made: $(tail -n 3 "$T_TMP/v2.log" | tr '\n' ' ')"
	fi
	halt
fi

# 5. A flipped byte in the middle of snap.img (inside a guest-memory object): refused, listener stays up.
cp "$A/snap.img" "$T_TMP/bad.img"
off=$(($(stat -c %s "$T_TMP/bad.img") / 2))
byte=$(od -An -tu1 -j "$off" -N1 "$T_TMP/bad.img" | tr -d ' ')
printf "\\$(printf '%03o' $((byte ^ 0xff)))" | dd of="$T_TMP/bad.img" bs=1 seek="$off" conv=notrunc 2>/dev/null
bad=$("$KEEL" image verify "$T_TMP/bad.img" 2>&1 | sed -n 's/.*bad object \([0-9a-f]\{12\}\).*/\1/p' | head -n 1)
truncate -s 256M "$T_TMP/data3.img"
mkfs.ext4 -q -F -L keel-data "$T_TMP/data3.img"
c3=$T_TMP/boot3.log
boot "$T_TMP/bad.img" "$T_TMP/data3.img" "$c3"
wait_for "$c3" 'listener ready' 120
wait_for "$c3" "sandbox demo: .*${bad:-no-bad-object-found}" 120
line=$(grep -E "keel-init: .*sandbox demo: .*${bad:-no-bad-object-found}" "$c3" | head -n 1)
if [ -n "$bad" ] && [ -n "$line" ] && ! grep -q 'demo| heartbeat [0-9]* up' "$c3"; then
	pass "flipped byte in object $bad: refused (${line#keel-init: })"
else
	fail "flipped byte in snap.img: refused with a line naming the object" \
		"bad object '$bad'; $(grep -E 'keel-init|heartbeat' "$c3" | tail -n 5 | tr '\n' ' ')"
fi
if [ -n "$v2size" ] && [ -f "$T_TMP/v2.pack" ] && grep -q 'listener ready' "$c3" &&
   "$KEEL" push --to "127.0.0.1:$port" "${TLS[@]}" "$T_TMP/v2.pack" > "$T_TMP/push3.out" 2>&1 && grep -q '^ok ' "$T_TMP/push3.out"; then
	pass "flipped byte: keel keeps running, its listener answers a push ok"
else
	fail "flipped byte: keel keeps running, its listener answers a push ok" \
		"$(head -c 200 "$T_TMP/push3.out" 2>/dev/null | tr '\n' ' '); $(grep -E 'keel-init' "$c3" | tail -n 4 | tr '\n' ' ')"
fi
halt
fired=$(grep -l 'watchdog: timer fired' "$T_TMP"/boot*.log 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')
offs=$(grep -h 'run.sh: the appliance is off' "$T_TMP"/boot*.log | sed 's/.*off (\([0-9]*\) s.*/\1/' | tr '\n' ' ')
if [ -z "$fired" ] && [ "$(grep -l 'keel-init: power button: power off' "$T_TMP"/boot*.log | wc -l)" -ge 3 ]; then
	pass "every boot: powered off by the power button (${offs% } s after it), the watchdog never fired"
else
	fail "every boot: powered off by the power button, the watchdog never fired" "fired in: ${fired:-none}; off after: $offs"
fi
echo "appliance_e2e: $((SECONDS - t_start)) s in all"
exit 0
