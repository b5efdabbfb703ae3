#!/usr/bin/env bash
# `./build.sh run`: boot build/appliance/ in QEMU the way a box boots it: Debian's kernel, the initramfs
# whose /init is keel, snap.img as a read-only virtio disk (/dev/vda), a data disk (/dev/vdb,
# build/appliance/data.img, ext4, kept between runs) and a virtio NIC on QEMU's user network (DHCP) with the
# listener port forwarded to the host. The console is shown here. SIGTERM or ctrl-c presses the ACPI power
# button (QEMU's system_powerdown): keel reads KEY_POWER, stops the sandboxes, syncs, unmounts and powers
# off (ACPI S5); QEMU exits 0. Not off within KEEL_RUN_STOP_TIMEOUT seconds (default 40): ctrl-alt-del
# (keel: reboot, which ends QEMU: -no-reboot), then 10 s later QEMU is stopped hard.
# The board's watchdog is QEMU's ib700; a missed pet does KEEL_RUN_WATCHDOG_ACTION (default reset, which
# ends QEMU like a power-off: -no-reboot; "debug" prints "watchdog: timer fired" and goes on).
# Usage: run.sh [--port HOSTPORT] [--mem MiB] [--timeout S] [--snap IMG] [--data IMG]
# --snap/--data boot another snapshot partition / data disk than build/appliance/{snap,data}.img (tests use
# their own copies: a fresh data disk, a damaged partition); --data FILE must already hold an ext4.
# Outer accelerator: KVM where the host can run Linux guests with nested virtualization, else the test
# appliance setup of KVM-HERE.md (TCG, -cpu EPYC,+svm); KEEL_APPLIANCE_ACCEL=kvm|tcg overrides.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${KEEL_BUILD_DIR:-$top/build}
AP_NAME=run.sh
. "$top/tests/appliance/lib.sh"
export LC_ALL=C

port=7070 mem=3072 timeout_s=0 snap="" data=""
while [ $# -gt 0 ]; do
	case $1 in
	--port) port=${2:?}; shift 2 ;;
	--mem) mem=${2:?}; shift 2 ;;
	--timeout) timeout_s=${2:?}; shift 2 ;;
	--snap) snap=${2:?}; shift 2 ;;
	--data) data=${2:?}; shift 2 ;;
	-h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (usage: run.sh [--port HOSTPORT] [--mem MiB] [--timeout S] [--snap IMG] [--data IMG])" >&2; exit 2 ;;
	esac
done
case $port$mem$timeout_s in *[!0-9]*) echo "run.sh: --port, --mem and --timeout take numbers" >&2; exit 2 ;; esac

a=$B/appliance
if [ ! -f "$a/initramfs.cpio" ] || [ ! -f "$a/snap.img" ] || [ "$B/keel" -nt "$a/initramfs.cpio" ]; then
	bash "$top/tests/appliance/image.sh"
fi
# The listener port inside comes from board.conf (the one built into the initramfs).
gport=$(sed -n 's/^port *= *\([0-9]*\) *$/\1/p' "$top/board/pc-x86_64/board.conf" | head -n 1)
gport=${gport:-7070}
snap=${snap:-$a/snap.img}
[ -f "$snap" ] || ap_die "no snapshot partition image $snap"
if [ -z "$data" ]; then
	data=$a/data.img
	if [ ! -f "$data" ]; then
		truncate -s 512M "$data"
		mkfs.ext4 -q -F -L keel-data "$data" || ap_die "mkfs.ext4 of the data disk failed"
	fi
fi
[ -f "$data" ] || ap_die "no data disk image $data"

accel=$(ap_host_accel)
clock="" kernel=$a/vmlinuz
if [ "$accel" = kvm ]; then
	cpu=(-accel kvm -cpu host)
else
	cpu=(-accel tcg -cpu EPYC,+svm)
	# Same kernel, uncompressed: TCG spends seconds decompressing a bzImage. The TSC note: see vmtest.sh.
	kernel=$B/kernel/vmlinux
	khz=$(awk '/^cpu MHz/{printf "%d", $4 * 1000; exit}' /proc/cpuinfo)
	[ -n "$khz" ] && clock="tsc=reliable tsc_early_khz=$khz"
fi
run=$(mktemp -d "${TMPDIR:-/tmp}/keel-run-XXXXXX")
mon=$run/monitor.sock
qpid="" timer="" stopper=""
# after_delay S CMD...: CMD after S seconds in a background subshell whose sleep dies with it, so
# cleanup can cancel it (a timer outliving run.sh would later signal whatever reuses its pid).
after_delay() {
	local s=$1; shift
	( trap 'kill "$sl" 2>/dev/null; exit 0' TERM; sleep "$s" & sl=$!; wait "$sl" && "$@" ) &
}
cleanup() {
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null
	[ -n "$timer" ] && kill "$timer" 2>/dev/null
	[ -n "$stopper" ] && kill "$stopper" 2>/dev/null
	rm -rf "$run"
}
trap cleanup EXIT

# A PC machine (not microvm): ACPI (PIIX4 PM) gives it a power button (system_powerdown) and S5 power-off;
# its i8042 keyboard controller carries ctrl-alt-del, which the kernel turns into SIGINT for keel (keel
# disables the kernel's own CAD reboot); an ISA bus for the ib700 watchdog; devices are virtio-pci, which
# the Debian kernel finds without ACPI help (it cannot take virtio_mmio.device= from the command line).
wact=${KEEL_RUN_WATCHDOG_ACTION:-reset}
qemu=(qemu-system-x86_64 "${cpu[@]}" -M pc -m "${mem}M" -smp 1 -display none -no-reboot -nodefaults
      -device ib700 -action "watchdog=$wact"
      -serial stdio -monitor "unix:$mon,server=on,wait=off"
      -kernel "$kernel" -initrd "$a/initramfs.cpio"
      -append "console=ttyS0 reboot=t panic=-1 quiet $clock"
      -drive "file=$snap,if=none,id=snap,format=raw,readonly=on" -device virtio-blk-pci,drive=snap
      -drive "file=$data,if=none,id=data,format=raw" -device virtio-blk-pci,drive=data
      -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:$gport" -device virtio-net-pci,netdev=n0)
monitor() { printf '%s\n' "$1" | socat - "UNIX-CONNECT:$mon" >/dev/null 2>&1; }

printf 'run.sh: booting the appliance (%s; listener: 127.0.0.1:%s -> %s; ctrl-c or SIGTERM powers it off)\n' \
	"$accel" "$port" "$gport" >&2
if [ -f "$a/keys/tls/operator.pem" ]; then
	printf 'run.sh: push an update over TLS: keel push --to 127.0.0.1:%s --tls --cert %s --key %s --ca %s FILE.pack\n' \
		"$port" "$a/keys/tls/operator.pem" "$a/keys/tls/operator.key" "$a/keys/tls/appliance-ca.pem" >&2
fi
# Its own session: a ctrl-c on this terminal reaches run.sh (which asks for a clean power-off), not QEMU.
setsid "${qemu[@]}" </dev/null &
qpid=$!
stopping=0 t_stop=0
stop() {
	[ "$stopping" = 1 ] && return 0
	stopping=1 t_stop=$SECONDS
	# The ACPI power button, as on a box; ctrl-alt-del and then a hard stop only if that does not end it.
	echo "run.sh: stopping the appliance: ACPI power button" >&2
	monitor system_powerdown
	after_delay "${KEEL_RUN_STOP_TIMEOUT:-40}" escalate
	stopper=$!
}
escalate() {
	kill -0 "$qpid" 2>/dev/null || return 0
	echo "run.sh: not off ${KEEL_RUN_STOP_TIMEOUT:-40} s after the power button; ctrl-alt-del" >&2
	monitor "sendkey ctrl-alt-delete"
	sleep 10
	kill -0 "$qpid" 2>/dev/null && echo "run.sh: still not off; stopping QEMU" >&2 && monitor quit
}
trap stop INT TERM
if [ "$timeout_s" -gt 0 ]; then
	after_delay "$timeout_s" kill -TERM $$
	timer=$!
fi
st=0
while kill -0 "$qpid" 2>/dev/null; do
	wait "$qpid" && st=0 || st=$?
done
qpid=""
if [ "$stopping" = 1 ]; then
	echo "run.sh: the appliance is off ($((SECONDS - t_stop)) s after the power button; QEMU exit status $st)" >&2
	exit 0
fi
echo "run.sh: the appliance went off by itself (QEMU exit status $st)" >&2
exit "$st"
