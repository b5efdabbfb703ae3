#!/usr/bin/env bash
# Run a test script inside the test appliance VM (see /work/shared/KVM-HERE.md): QEMU (TCG with AMD SVM
# and nested paging emulated, or KVM where the host really can) boots Debian's kernel with an initramfs
# holding busybox, keel, the kvm modules (loaded before the script) and the test guest; SCRIPT runs with
# /bin/sh as root; the console goes to stdout; vmtest.sh exits with SCRIPT's status.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${KEEL_BUILD_DIR:-$top/build}
AP_NAME=vmtest.sh
. "$top/tests/appliance/lib.sh"
export LC_ALL=C

usage() {
	cat <<'EOF'
usage: vmtest.sh [OPTIONS] SCRIPT
Boot the test appliance VM and run SCRIPT inside it with /bin/sh; exit with its status.
  --timeout S          give up after S seconds (default 300; exit 124)
  --mem MiB            appliance memory (default 3072)
  --add HOST:GUEST     copy file or directory HOST to path GUEST in the appliance (repeatable)
  --disk FILE[,ro]     attach FILE as a virtio-blk disk (/dev/vda, /dev/vdb, ... in order; repeatable)
  --net-fwd H:G        attach a virtio-net NIC (eth0, QEMU user network: address 10.0.2.15/24, gateway
                       10.0.2.2) and forward host TCP port H to appliance port G (repeatable; one NIC)
  --with-qemu          also put qemu-system-x86_64 (+ libraries, firmware) in the appliance, for peers
  --keel FILE          the keel binary to put in as /bin/keel (default build/keel)
  --log FILE           also write the console log to FILE
Inside: /bin/keel, /guest/vmlinuz, /guest/vmlinux, /guest/initramfs.cpio, /guest/modules/*.ko,
/lib/modules/*.ko, /dev/kvm; `vmtest-net-up` configures eth0 for the user network.
The last console line "keel-vmtest-exit N" carries SCRIPT's exit status.
Environment: KEEL_APPLIANCE_ACCEL=tcg|kvm overrides the accelerator choice.
EOF
}

timeout_s=300 mem=3072 with_qemu=0 keel=$B/keel log="" script=""
adds=() disks=() fwds=()
while [ $# -gt 0 ]; do
	case $1 in
	--timeout) timeout_s=${2:?}; shift 2 ;;
	--mem) mem=${2:?}; shift 2 ;;
	--add) adds+=("${2:?}"); shift 2 ;;
	--disk) disks+=("${2:?}"); shift 2 ;;
	--net-fwd) fwds+=("${2:?}"); shift 2 ;;
	--with-qemu) with_qemu=1; shift ;;
	--keel) keel=${2:?}; shift 2 ;;
	--log) log=${2:?}; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	-*) echo "vmtest.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	*) [ -z "$script" ] || { echo "vmtest.sh: one SCRIPT only" >&2; exit 2; }; script=$1; shift ;;
	esac
done
[ -n "$script" ] || { echo "vmtest.sh: missing SCRIPT (see --help)" >&2; exit 2; }
[ -f "$script" ] || { echo "vmtest.sh: no such script: $script" >&2; exit 2; }
case $timeout_s$mem in *[!0-9]*) echo "vmtest.sh: --timeout and --mem take numbers" >&2; exit 2 ;; esac
[ -x "$keel" ] || ap_die "$keel missing: run ./build.sh first"
command -v qemu-system-x86_64 >/dev/null || ap_die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"

bash "$top/tests/appliance/kernel.sh"
bash "$top/tests/appliance/mkguest.sh"

cache=$B/vmtest
mkdir -p "$cache"

# The base layer (busybox, modules, /guest/*, /init) changes rarely: cached as base.cpio.
base=$cache/base.cpio
if ap_newer "$base" "$B/kernel/.stamp" "$B/guest/initramfs.cpio" "$top/tests/appliance/vmtest.sh" \
	"$top/tests/appliance/lib.sh" /bin/busybox; then
	st=$(mktemp -d "$cache/.base-XXXXXX")
	ap_busybox "$st"
	mkdir -p "$st"/{proc,sys,dev,tmp,run,root,etc,mnt,guest,lib/modules}
	cp "$B"/kernel/modules/*.ko "$st/lib/modules/"
	cp "$B/kernel/modules.dep" "$st/lib/modules/"
	cp "$B/kernel/vmlinuz" "$B/kernel/vmlinux" "$B/kernel/version" "$B/guest/initramfs.cpio" "$st/guest/"
	ln -s ../lib/modules "$st/guest/modules"
	# KVM, then TAP and veth (NIC tests: LAN-side namespaces, QEMU peers on a TAP)
	printf '%s\n' $(ap_mod_order irqbypass ccp kvm kvm_amd tun veth) > "$st/etc/vmtest-kvm-modules"
	printf '%s\n' $(ap_mod_order virtio_mmio virtio_blk virtio_net) > "$st/etc/vmtest-virtio-modules"
	cat > "$st/bin/vmtest-net-up" <<'EOF'
#!/bin/sh
# Configure eth0 for QEMU's user network (vmtest.sh --net-fwd).
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
EOF
	cat > "$st/init" <<'EOF'
#!/bin/busybox sh
# keel test appliance init (tests/appliance/vmtest.sh): kvm modules, then /test.sh, then power off.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
mkdir -p /dev/pts /dev/shm && mount -t devpts pts /dev/pts && mount -t tmpfs shm /dev/shm
ip link set lo up 2>/dev/null
for m in $(cat /etc/vmtest-kvm-modules); do
	insmod /lib/modules/$m.ko || echo "keel-vmtest: insmod $m failed"
done
case " $(cat /proc/cmdline) " in *" keel.vmtest.virtio=1 "*)
	for m in $(cat /etc/vmtest-virtio-modules); do
		insmod /lib/modules/$m.ko || echo "keel-vmtest: insmod $m failed"
	done
	mdev -s 2>/dev/null ;;
esac
[ -c /dev/kvm ] || echo "keel-vmtest: no /dev/kvm"
echo "keel-vmtest: start $(cut -d' ' -f1 /proc/uptime)"
cd /
KEEL=/bin/keel sh /test.sh
st=$?
sync
echo "keel-vmtest-exit $st"
# With ACPI off there is no power-off device: reboot (reboot=t triple-faults) and QEMU's -no-reboot exits.
if [ -d /sys/firmware/acpi ]; then poweroff -f; else reboot -f; fi
EOF
	chmod 0755 "$st/init" "$st/bin/vmtest-net-up"
	ap_cpio "$st" "$base"
	rm -rf "$st"
fi

# The QEMU layer: the binary, its libraries at their paths, and the firmware microvm and pc need.
qlayer=$cache/qemu.cpio
if [ "$with_qemu" = 1 ] && ap_newer "$qlayer" "$(command -v qemu-system-x86_64)" "$top/tests/appliance/vmtest.sh"; then
	st=$(mktemp -d "$cache/.qemu-XXXXXX")
	q=$(readlink -f "$(command -v qemu-system-x86_64)")
	mkdir -p "$st/usr/bin" "$st/usr/share/qemu"
	cp "$q" "$st/usr/bin/qemu-system-x86_64"
	for l in $(ldd "$q" | grep -oE '/[^ ]+'); do
		mkdir -p "$st$(dirname "$l")"
		cp -L "$l" "$st$l"
	done
	for f in bios-microvm.bin qboot.rom pvh.bin linuxboot_dma.bin linuxboot.bin kvmvapic.bin multiboot_dma.bin \
		bios-256k.bin efi-virtio.rom; do
		[ -e "/usr/share/qemu/$f" ] && cp -L "/usr/share/qemu/$f" "$st/usr/share/qemu/"
	done
	ap_cpio "$st" "$qlayer"
	rm -rf "$st"
fi

# The per-run layer: keel, the script, the added files.
run=$(mktemp -d "${TMPDIR:-/tmp}/keel-vmtest-XXXXXX")
qpid=""
cleanup() {
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null
	rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
st=$run/layer
mkdir -p "$st/bin"
cp "$keel" "$st/bin/keel"
cp "$script" "$st/test.sh"
for a in "${adds[@]}"; do
	h=${a%%:*} g=${a#*:}
	[ "$h" != "$a" ] && [ -n "$g" ] || ap_die "--add wants HOST:GUEST, got $a"
	[ -e "$h" ] || ap_die "--add: no such file: $h"
	mkdir -p "$st$(dirname "/$g")"
	cp -a "$h" "$st/$g"
done
ap_cpio "$st" "$run/run.cpio"
initrd=$run/initrd.cpio
if [ "$with_qemu" = 1 ]; then
	cat "$base" "$qlayer" "$run/run.cpio" > "$initrd"
else
	cat "$base" "$run/run.cpio" > "$initrd"
fi

accel=$(ap_host_accel)
if [ "$accel" = kvm ]; then
	cpu=(-accel kvm -cpu host)
else
	cpu=(-accel tcg -cpu "${KEEL_VMTEST_CPU:-EPYC,+svm}")
fi
# The Debian kernel has no virtio_mmio.device= command-line support (CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES is
# not set): it finds virtio-mmio devices only through ACPI, so ACPI stays on when devices are attached.
acpi=off append_acpi="acpi=off"
devs=()
i=0
for d in "${disks[@]}"; do
	f=${d%%,*} ro=""
	case $d in *,ro) ro=",readonly=on" ;; *,*) ap_die "--disk wants FILE or FILE,ro, got $d" ;; esac
	[ -f "$f" ] || [ -b "$f" ] || ap_die "--disk: no such file: $f"
	devs+=(-drive "file=$f,if=none,id=d$i,format=raw$ro" -device "virtio-blk-device,drive=d$i")
	i=$((i + 1))
done
if [ ${#fwds[@]} -gt 0 ]; then
	nd="user,id=n0"
	for f in "${fwds[@]}"; do
		case $f in *[!0-9:]*|:*|*:|*:*:*) ap_die "--net-fwd wants HOSTPORT:GUESTPORT, got $f" ;; esac
		nd+=",hostfwd=tcp:127.0.0.1:${f%%:*}-:${f#*:}"
	done
	devs+=(-netdev "$nd" -device virtio-net-device,netdev=n0)
fi
if [ ${#devs[@]} -gt 0 ]; then
	acpi=on append_acpi="keel.vmtest.virtio=1"
fi

# Under TCG the appliance's TSC is the host's TSC, but on a busy host the kernel's PIT calibration fails,
# the TSC is marked unstable and the clocksource falls back to jiffies; KVM inside then livelocks before
# ever entering a guest (KVM_RUN returns EINTR forever, zero exits). Tell it the frequency instead.
clock=""
if [ "$accel" = tcg ]; then
	khz=$(awk '/^cpu MHz/{printf "%d", $4 * 1000; exit}' /proc/cpuinfo)
	[ -n "$khz" ] && [ "$khz" -gt 0 ] && clock="tsc=reliable tsc_early_khz=$khz"
fi
append="console=ttyS0 $append_acpi reboot=t panic=-1 $clock ${KEEL_VMTEST_APPEND-quiet loglevel=4}"
qemu=(qemu-system-x86_64 "${cpu[@]}" -M "microvm,acpi=$acpi" -m "${mem}M" -smp 1 -display none -no-reboot
      -nodefaults -serial stdio -kernel "$B/kernel/vmlinux" -initrd "$initrd" -append "$append" "${devs[@]}")

out=$run/console.log
t0=$(date +%s.%N)
printf 'vmtest.sh: booting the test appliance (%s, %s MiB, %d disks, %d NICs%s) for %s\n' "$accel" "$mem" \
	"${#disks[@]}" "$([ ${#fwds[@]} -gt 0 ] && echo 1 || echo 0)" "$([ "$with_qemu" = 1 ] && echo ', with QEMU')" \
	"$(basename "$script")" >&2
mkfifo "$run/console.fifo"
timeout -k 5 "$timeout_s" "${qemu[@]}" </dev/null >"$run/console.fifo" 2>"$run/qemu.err" &
qpid=$!
started="" st="" killer=""
: > "$out"
while IFS= read -r line || [ -n "$line" ]; do
	printf '%s\n' "$line"
	printf '%s\n' "$line" >> "$out"
	line=${line%$'\r'}
	case $line in
	"keel-vmtest: start "*)
		[ -n "$started" ] || started=$(date +%s.%N) ;;
	"keel-vmtest-exit "*)
		st=${line#keel-vmtest-exit }
		# The appliance is shutting down; do not wait for a hung shutdown.
		[ -n "$killer" ] || { (sleep 10; kill "$qpid" 2>/dev/null) & killer=$!; } ;;
	esac
done < "$run/console.fifo"
set +e
wait "$qpid"
qst=$?
set -e
qpid=""
[ -n "$killer" ] && kill "$killer" 2>/dev/null
t1=$(date +%s.%N)
[ -n "$log" ] && tr -d '\r' < "$out" > "$log"
uptime0=$(tr -d '\r' < "$out" | sed -n 's/^keel-vmtest: start \([0-9.]*\)$/\1/p' | head -n 1)
case $st in ''|*[!0-9]*) st="" ;; esac
printf 'vmtest.sh: %s s in all; /test.sh started %s s after launch (appliance uptime %s s)\n' \
	"$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")" \
	"$([ -n "$started" ] && awk "BEGIN{printf \"%.1f\", $started - $t0}" || echo never)" "${uptime0:-?}" >&2
if [ -n "$st" ]; then
	exit "$st"
fi
if [ "$qst" = 124 ]; then
	echo "vmtest.sh: timed out after ${timeout_s}s (no keel-vmtest-exit line)" >&2
	exit 124
fi
echo "vmtest.sh: the appliance stopped without a keel-vmtest-exit line (qemu status $qst: $(head -c 300 "$run/qemu.err" | tr '\n' ' '))" >&2
exit 125
