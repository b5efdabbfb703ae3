#!/usr/bin/env bash
# Build the busybox test guest's initramfs: build/guest/initramfs.cpio (newc, uncompressed).
# /init mounts proc/sys/devtmpfs, loads the virtio modules (with keel.root=DEV also ext4, then mounts DEV
# read-only and switch_roots to it, running its own /init: a disk made from this tree), prints
# "keel-guest: ready", then runs
# /etc/keel/NAME.sh when the kernel command line has keel.cmd=NAME (tests/guest/scripts/NAME.sh), else a
# shell on the console. The small C programs of tests/guest/tools (a hostile guest's connection
# storm, ...) are built static with musl-gcc into /bin. Rebuilt only when an input changed.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${KEEL_BUILD_DIR:-$top/build}
AP_NAME=mkguest.sh
. "$top/tests/appliance/lib.sh"
export LC_ALL=C

out=$B/guest/initramfs.cpio
scripts=$top/tests/guest/scripts tools=$top/tests/guest/tools
inputs=("$B/kernel/.stamp" "$top/tests/appliance/mkguest.sh" "$top/tests/appliance/lib.sh" /bin/busybox)
[ -d "$scripts" ] && inputs+=("$scripts")
[ -d "$tools" ] && inputs+=("$tools")
[ -f "$B/kernel/.stamp" ] || ap_die "build/kernel missing: run tests/appliance/kernel.sh first"
# A deleted script changes the directory's mtime, so find -newer on the directory catches removals too.
ap_newer "$out" "${inputs[@]}" || exit 0

st=$(mktemp -d "${TMPDIR:-/tmp}/keel-guest-XXXXXX")
trap 'rm -rf "$st"' EXIT
ap_busybox "$st"
mkdir -p "$st"/{proc,sys,dev,tmp,run,root,etc/keel,lib/modules,mnt}
mods=$(ap_mod_order virtio_mmio virtio_blk virtio_net virtio_console virtio_rng vmw_vsock_virtio_transport)
for m in $mods; do cp "$B/kernel/modules/$m.ko" "$st/lib/modules/"; done
printf '%s\n' $mods > "$st/etc/keel/modules"
# keel.root=DEV: ext4 (and what it needs beyond the above) is loaded only then
for m in $(ap_mod_order ext4 crc32c_generic); do
	case " $(echo $mods) " in *" $m "*) continue ;; esac
	cp "$B/kernel/modules/$m.ko" "$st/lib/modules/"
	echo "$m" >> "$st/etc/keel/root-modules"
done
if [ -d "$scripts" ]; then
	for s in "$scripts"/*.sh; do
		[ -f "$s" ] && cp "$s" "$st/etc/keel/"
	done
fi
for c in "$tools"/*.c; do
	[ -f "$c" ] || continue
	musl-gcc -static -O2 -Wall -Werror -o "$st/bin/$(basename "$c" .c)" "$c" || ap_die "guest tool $c does not build"
done
cat > "$st/init" <<'INIT'
#!/bin/busybox sh
# keel test guest init (tests/appliance/mkguest.sh).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
mkdir -p /dev/pts && mount -t devpts pts /dev/pts
cmd= root=
for a in $(cat /proc/cmdline); do
	case $a in keel.cmd=*) cmd=${a#keel.cmd=} ;; keel.root=*) root=${a#keel.root=} ;; esac
done
if [ -z "$KEEL_ROOTED" ]; then
	for m in $(cat /etc/keel/modules); do
		insmod /lib/modules/$m.ko || echo "keel-guest: insmod $m failed"
	done
fi
# keel.root=DEV: the root filesystem is the ext4 disk DEV (read-only), whose /init is this script
if [ -n "$root" ] && [ -z "$KEEL_ROOTED" ]; then
	for m in $(cat /etc/keel/root-modules); do
		insmod /lib/modules/$m.ko || echo "keel-guest: insmod $m failed"
	done
	mkdir -p /newroot
	if mount -t ext4 -o ro "$root" /newroot; then
		umount /dev/pts /tmp /sys /proc
		mount --move /dev /newroot/dev
		export KEEL_ROOTED=1
		exec switch_root /newroot /init
	fi
	echo "keel-guest: cannot mount $root as the root filesystem"
fi
hostname keel-guest
echo "keel-guest: ready"
if [ -n "$cmd" ]; then
	if [ -f "/etc/keel/$cmd.sh" ]; then
		sh "/etc/keel/$cmd.sh"
		echo "keel-guest: $cmd.sh exited $?"
	else
		echo "keel-guest: no /etc/keel/$cmd.sh"
	fi
	# The script did not power off: keep PID 1 alive (its background jobs may still run).
	while :; do sleep 3600; done
fi
while :; do setsid cttyhack sh; done
INIT
chmod 0755 "$st/init"
mkdir -p "$(dirname "$out")"
ap_cpio "$st" "$out"
printf 'mkguest.sh: %s (%s bytes)\n' "$out" "$(stat -c %s "$out")" >&2
