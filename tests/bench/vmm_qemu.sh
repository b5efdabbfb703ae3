#!/usr/bin/env bash
# keel vs QEMU with the same Debian-kernel guest, both inside the test appliance VM in one run
# (tests/appliance/vmtest.sh --with-qemu; nested KVM under TCG, so only the ratios mean anything):
#  - restore: keel `vm restore` of a snapshot vs QEMU `-incoming "exec:cat FILE"` of a migration
#    file of the same guest (tests/guest/scripts/ticker.sh, which prints numbered lines without
#    pause), both taken while it ticks, timed from launch to the first complete tick line the
#    resumed guest prints: the same "guest executes again" point for both, within one loop turn;
#  - cold boot to the guest's first userspace line ("keel-guest: ready"), keel `vm run` vs QEMU
#    `-M microvm,rtc=on` (the same devices), same vmlinux + initramfs + command line;
#  Console lines are watched by a reader blocked on a FIFO (no polling that would steal the
#  appliance's only CPU from the guest), the same way for both VMMs.
#  - VMM memory: RSS of the running VMM minus the guest pages it has touched.
# Times inside come from /proc/timer_list (ns). Runs only in `./build.sh bench`.
set -u
: "${KEEL_TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${KEEL:=$KEEL_TOP/build/keel}"
command -v qemu-system-x86_64 >/dev/null || { echo "vmm_qemu: skipped (qemu-system-x86_64 not installed)"; exit 0; }
[ -x "$KEEL" ] || { echo "vmm_qemu: skipped (no $KEEL)"; exit 0; }
R=${VMM_QEMU_RUNS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/inside.sh" <<IN
R=$R BOOT_RUNS=${VMM_QEMU_BOOT_RUNS:-$R}
IN
cat >> "$tmp/inside.sh" <<'IN'
K=/guest/vmlinux I=/guest/initramfs.cpio T=/tmp/b
CL="console=ttyS0 reboot=t panic=-1 acpi=off quiet"
mkdir -p $T
now() { awk '/^now at/ { print $3; exit }' /proc/timer_list; }
# wait_for FILE TEXT TIMEOUT_S: polls every 2 ms; 0 when TEXT appeared (not used for timing)
wait_for() { local i=0; while ! grep -q "$2" "$1" 2>/dev/null; do i=$((i + 1)); [ $i -gt $(($3 * 500)) ] && return 1; nap; done; }
nap() { usleep 2000 2>/dev/null || sleep 0.002; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }
# watch FIFO LOG SIG PATTERN: copies a VMM's console from FIFO to LOG; when the first complete
# line matching the shell PATTERN arrives, writes the time to the FIFO SIG (empty if the console
# ended first) and goes on copying. Run it in the background, then block on `read t <&5`: fifos
# holds SIG open read-write on fd 5, so neither side's open can block or be cut by a signal.
# Lines end in "\r" (the guest tty's ONLCR): PATTERN must allow it.
watch() {
	{
		t=
		while IFS= read -r l; do
			case $l in $4) t=$(now); echo "$l"; break ;; esac
			echo "$l"
		done
		echo "$t" > "$3"
		cat
	} < "$1" > "$2"
}
fifos() { exec 5>&-; rm -f $T/o $T/sig; mkfifo $T/o $T/sig; exec 5<> $T/sig; }
# rtc=on: the same devices as keel's machine (UART, RTC). QEMU's default under KVM has no RTC,
# and then the guest's rtc_cmos probe polls an open bus for seconds on this nested host.
QEMU="qemu-system-x86_64 -accel kvm -cpu host -M microvm,acpi=off,rtc=on -m 256M -smp 1 -display none -no-reboot -nodefaults"
# own_rss PID GUEST_KIB: VmRSS minus guest memory: keel's guest is the anonymous region pieces
# (>= 2 MiB each) and the store's chunk files; QEMU's guest RAM is one mapping of GUEST_KIB.
own_rss() {
	awk -v g="$2" '
		/^[0-9a-f]+-[0-9a-f]+ / { path = $6; next }
		/^Size:/ { size = $2; next }
		/^Rss:/ { total += $2; if (path ~ /\/objects\// || (path == "" && size >= 2048 && g == 0) || (g > 0 && size == g)) guest += $2 }
		END { print total - guest }' "/proc/$1/smaps"
}


# ---- cold boot ----
# boot WHO: one boot to the first userspace line, timed
boot() {
	fifos
	watch $T/o $T/$1b.log $T/sig "keel-guest: ready*" &
	w=$!
	t0=$(now)
	if [ $1 = keel ]; then
		keel vm run --kernel $K --initrd $I --mem 256 --cmdline "$CL keel.cmd=none" </dev/null > $T/o 2> $T/$1b.err &
	else
		$QEMU -serial stdio -kernel $K -initrd $I -append "$CL keel.cmd=none" </dev/null > $T/o 2> $T/$1b.err &
	fi
	p=$!
	read t1 <&5; [ -n "$t1" ] && echo "bench-boot $1 $(ms $t0 $t1)"
	kill $p; wait $p 2>/dev/null; wait $w
}
# The appliance's first VM pays one-time KVM and page-cache costs: a short start of each VMM
# first, then the order alternates between runs.
for v in keel qemu; do
	if [ $v = keel ]; then
		keel vm run --kernel $K --initrd $I --mem 256 --cmdline "$CL keel.cmd=none" </dev/null > /dev/null 2>&1 &
	else
		$QEMU -serial stdio -kernel $K -initrd $I -append "$CL keel.cmd=none" </dev/null > /dev/null 2>&1 &
	fi
	p=$!; sleep 1; kill $p; wait $p 2>/dev/null
done
for i in $(seq ${BOOT_RUNS:-$R}); do
	if [ $((i % 2)) = 1 ]; then boot keel; boot qemu; else boot qemu; boot keel; fi
done
# For the record, once: QEMU's microvm default under KVM (no RTC).
QEMU_RTC=$QEMU
QEMU=$(echo "$QEMU" | sed 's/,rtc=on//')
boot qemu | sed 's/^bench-boot qemu /bench-info qemu microvm default (no RTC) cold boot ms: /'
QEMU=$QEMU_RTC

# ---- the ticker guest saved while it ticks: keel at the console marker, QEMU stopped by its
# monitor right after the same line showed up. QEMU's source does not record its run state in
# the migration stream (migration.store-global-state=off), so -incoming starts the guest by
# itself once loaded, as keel does; otherwise QEMU keeps a guest migrated while stopped paused.
TICK="keel-test: tick 40 ."
keel vm run --kernel $K --initrd $I --mem 256 --cmdline "$CL keel.cmd=ticker" --snapshot-on "$TICK" \
	--store $T/s --name g </dev/null > $T/ks.log 2>&1
mkfifo $T/mon.in $T/mon.out
$QEMU -global migration.store-global-state=off -serial stdio -monitor pipe:$T/mon -kernel $K -initrd $I \
	-append "$CL keel.cmd=ticker" </dev/null > $T/qs.log 2>&1 &
p=$!
exec 4> $T/mon.in
cat $T/mon.out > $T/mon.txt &
wait_for $T/qs.log "$TICK" 180
echo stop >&4
echo 'migrate "exec:cat > /tmp/b/q.mig"' >&4
i=0
while [ $i -lt 300 ] && ! grep -q "status: completed" $T/mon.txt; do echo "info migrate" >&4; sleep 0.2; i=$((i + 1)); done
grep -q "status: completed" $T/mon.txt || { echo "qemu migration did not complete:"; tail -n 5 $T/mon.txt; }
echo quit >&4
exec 4>&-
wait $p
ls -l $T/q.mig | awk '{ print "bench-info qemu migration file " $5 " bytes" }'
du -sk $T/s | awk '{ print "bench-info keel store " $1 " KiB" }'

# ---- restore: launch -> the first complete tick line of the resumed guest ----
for i in $(seq $R); do
	fifos
	watch $T/o $T/kr.log $T/sig "keel-test: tick * .*" &
	w=$!
	t0=$(now)
	keel vm restore --store $T/s g </dev/null > $T/o 2> $T/kr.err &
	p=$!
	read t1 <&5; [ -n "$t1" ] && echo "bench-restore keel $(ms $t0 $t1)"
	[ $i = 1 ] && { sleep 2; echo "bench-rss keel $(own_rss $p 0) $(awk '/^VmRSS/ { print $2 }' /proc/$p/status)"; }
	kill $p; wait $p 2>/dev/null; wait $w
	fifos
	watch $T/o $T/qr.log $T/sig "keel-test: tick * .*" &
	w=$!
	t0=$(now)
	$QEMU -serial stdio -kernel $K -initrd $I -append "$CL keel.cmd=ticker" -incoming "exec:cat $T/q.mig" \
		</dev/null > $T/o 2> $T/qr.err &
	p=$!
	read t1 <&5; [ -n "$t1" ] && echo "bench-restore qemu $(ms $t0 $t1)"
	[ $i = 1 ] && { sleep 2; echo "bench-rss qemu $(own_rss $p 262144) $(awk '/^VmRSS/ { print $2 }' /proc/$p/status)"; }
	kill $p; wait $p 2>/dev/null; wait $w
done
# the first tick after the snapshot's: the guest continued, it did not start over
for v in kr qr; do
	n=$(grep -m1 -o 'keel-test: tick [0-9]* \.' $T/$v.log | cut -d' ' -f3)
	echo "bench-info $v first tick after resume: ${n:-none}"
	[ -n "$n" ] || { echo "$v restore log:"; tail -n 5 $T/$v.log $T/$v.err; }
done
exit 0
IN
st=0
bash "$KEEL_TOP/tests/appliance/vmtest.sh" --timeout 900 --with-qemu --keel "$KEEL" "$tmp/inside.sh" \
	> "$tmp/console" 2> "$tmp/err" || st=$?
if ! grep -q '^bench-' "$tmp/console"; then
	[ -n "${VMM_QEMU_KEEP:-}" ] && cp "$tmp/console" "$VMM_QEMU_KEEP"
	echo "vmm_qemu: no results (vmtest.sh exit $st): $(tail -n 3 "$tmp/console" "$tmp/err" | tr '\n' ' ' | head -c 400)"
	exit 0
fi
tr -d '\r' < "$tmp/console" > "$tmp/c"
[ -n "${VMM_QEMU_KEEP:-}" ] && cp "$tmp/c" "$VMM_QEMU_KEEP"
grep -A5 -E '^(kr|qr) restore log:|did not complete' "$tmp/c" | sed 's/^/vmm_qemu: /'
# med KIND WHO: median of the "bench-KIND WHO MS" lines
med() { awk -v k="bench-$1" -v w="$2" '$1 == k && $2 == w { print $3 }' "$tmp/c" | sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print 0 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
kr=$(med restore keel); qr=$(med restore qemu); kb=$(med boot keel); qb=$(med boot qemu)
echo "vmm restore in the appliance (launch -> first console line of the resumed guest, Debian guest 256 MiB, median of $R): keel ${kr} ms vs QEMU -incoming ${qr} ms = $(ratio "$kr" "$qr")"
echo "vmm cold boot in the appliance (launch -> keel-guest: ready, median of $R): keel ${kb} ms vs QEMU microvm,rtc=on ${qb} ms = $(ratio "$kb" "$qb") (goal <= 0.70)"
read -r _ _ krss ktot < <(grep '^bench-rss keel' "$tmp/c")
read -r _ _ qrss qtot < <(grep '^bench-rss qemu' "$tmp/c")
echo "vmm VMM RSS minus guest pages (restored Debian guest): keel ${krss:-0} KiB vs QEMU ${qrss:-0} KiB = $(ratio "${krss:-0}" "${qrss:-0}") (keel goal < 2048 KiB; total RSS keel ${ktot:-0} KiB, QEMU ${qtot:-0} KiB)"
grep '^bench-info' "$tmp/c" | sed 's/^bench-info /vmm_qemu: /'
exit 0
