#!/usr/bin/env bash
# `./build.sh image`: the bootable appliance set for an x86 box, in build/appliance/:
#   vmlinuz         Debian's kernel (build/kernel/vmlinuz)
#   initramfs.cpio  keel as /init, /etc/keel/board.conf, the modules board.conf names, the trusted key
#   snap.img        `keel image build` of a demo sandbox: the busybox test guest running a service that
#                   prints "heartbeat N" lines, snapshotted by `keel vm run --snapshot-on` inside the test
#                   appliance VM (the only place a Linux guest runs here), signed with a development key
#   keys/           that development key pair (dev-only: a real box gets its own), and keys/tls/: the
#                   listener's TLS files (two development CAs: one issues the appliance's certificate,
#                   the other operators' client certificates, so a certificate copied off a box is no
#                   operator's), made once and never overwritten
# Usage: image.sh [--board NAME] [--no-snap]
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${KEEL_BUILD_DIR:-$top/build}
AP_NAME=image.sh
. "$top/tests/appliance/lib.sh"
export LC_ALL=C

board="" snap=1
while [ $# -gt 0 ]; do
	case $1 in
	--board) board=${2:?}; shift 2 ;;
	--no-snap) snap=0; shift ;;
	-h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "image.sh: unknown argument $1 (usage: image.sh [--board NAME] [--no-snap])" >&2; exit 2 ;;
	esac
done
if [ -z "$board" ]; then
	board=$(sed -n 's/^CONFIG_BOARD_NAME="\(.*\)"$/\1/p' "$top/.config" 2>/dev/null)
	[ -n "$board" ] || board=pc-x86_64
fi
conf=$top/board/$board/board.conf
[ -f "$conf" ] || ap_die "no $conf"
keel=$B/keel
[ -x "$keel" ] || ap_die "$keel missing: run ./build.sh first"
file "$keel" | grep -q 'statically linked' || ap_die "$keel is not static; the appliance has no libc files"
bash "$top/tests/appliance/kernel.sh"
bash "$top/tests/appliance/mkguest.sh"

out=$B/appliance
mkdir -p "$out/keys"
cp "$B/kernel/vmlinuz" "$out/vmlinuz"

# A development signing key (P-256), made once; board.conf's trusted-key gets the public half.
if [ ! -f "$out/keys/dev.key.pem" ]; then
	openssl ecparam -name prime256v1 -genkey -noout -out "$out/keys/dev.key.pem.tmp" 2>/dev/null ||
		ap_die "openssl could not make a P-256 key"
	openssl pkcs8 -topk8 -nocrypt -in "$out/keys/dev.key.pem.tmp" -out "$out/keys/dev.key.pem" 2>/dev/null
	rm -f "$out/keys/dev.key.pem.tmp"
	openssl ec -in "$out/keys/dev.key.pem" -pubout -out "$out/keys/dev.pub.pem" 2>/dev/null
fi

# TLS for the listener (board.conf's tls-cert/tls-key/tls-ca): made once, never overwritten.
tls=$out/keys/tls
mkdir -p "$tls"
# tls_make NAME CN ISSUER [EXT]: NAME.key (P-256) and NAME.pem, self-signed CA when ISSUER is "-".
tls_make() {
	local name=$1 cn=$2 issuer=$3 ext=${4:-}
	[ -f "$tls/$name.pem" ] && [ -f "$tls/$name.key" ] && return 0
	openssl ecparam -name prime256v1 -genkey -noout -out "$tls/$name.key.tmp" 2>/dev/null &&
		openssl pkcs8 -topk8 -nocrypt -in "$tls/$name.key.tmp" -out "$tls/$name.key" 2>/dev/null ||
		ap_die "openssl could not make the $name key"
	rm -f "$tls/$name.key.tmp"
	chmod 0600 "$tls/$name.key"
	if [ "$issuer" = - ]; then
		openssl req -x509 -new -key "$tls/$name.key" -subj "/CN=$cn" -days 3650 \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
			-out "$tls/$name.pem" 2>/dev/null || ap_die "openssl could not make the $name CA"
	else
		openssl req -new -key "$tls/$name.key" -subj "/CN=$cn" -addext "$ext" -out "$tls/$name.csr" 2>/dev/null &&
			openssl x509 -req -in "$tls/$name.csr" -CA "$tls/$issuer.pem" -CAkey "$tls/$issuer.key" \
				-CAcreateserial -days 825 -copy_extensions copy -out "$tls/$name.pem" 2>/dev/null ||
			ap_die "openssl could not issue the $name certificate"
		rm -f "$tls/$name.csr"
	fi
	printf 'image.sh: made %s/%s.pem and .key\n' "$tls" "$name" >&2
}
tls_make appliance-ca "keel development appliance CA" -
tls_make appliance keel-appliance appliance-ca "subjectAltName=DNS:keel-appliance"
tls_make operator-ca "keel development operator CA" -
tls_make operator keel-operator operator-ca "extendedKeyUsage=clientAuth"
printf 'image.sh: push over TLS: keel push --to HOST:PORT --tls --cert %s --key %s --ca %s ...\n' \
	"$tls/operator.pem" "$tls/operator.key" "$tls/appliance-ca.pem" >&2

# initramfs: keel is the only program, and it loads exactly board.conf's module list, in order. So the list
# written into the initramfs is complete: first what the board's devices imply (a /dev/vd* partition:
# virtio_mmio or virtio_pci + virtio_blk; an ext4 data partition: ext4 + crc32c), then board.conf's own modules, each
# preceded by its dependencies (build/kernel/modules.dep). Files go where board.conf's lines say (names
# compared with '-' and '_' alike, as the kernel does); the rest beside them.
st=$(mktemp -d "${TMPDIR:-/tmp}/keel-image-XXXXXX")
trap 'rm -rf "$st"' EXIT
mkdir -p "$st"/{dev,proc,sys,run,tmp,data,etc/keel}
cp "$keel" "$st/init"
strip "$st/init" 2>/dev/null || true
chmod 0755 "$st/init"
mlines=$(sed -n 's/^module *= *\(\/[^ ]*\) *$/\1/p' "$conf")
mdir=$(dirname "$(echo "${mlines:-/lib/modules/x.ko}" | head -n 1)")
implied=()
grep -qE '^(image|data-device) *= */dev/vd' "$conf" &&
	implied+=("$mdir/virtio_mmio.ko" "$mdir/virtio_pci.ko" "$mdir/virtio_blk.ko")
if grep -qE '^data-device *= */dev/' "$conf" && ! grep -qE '^data-fstype *= *' "$conf" ||
   grep -qE '^data-fstype *= *ext4 *$' "$conf"; then
	implied+=("$mdir/crc32c_generic.ko" "$mdir/ext4.ko")
fi
declare -A placed=()
modlist() {
	local m n dep path
	for m in "${implied[@]}" $mlines; do
		n=$(basename "$m" .ko | tr - _)
		[ -f "$B/kernel/modules/$n.ko" ] || ap_die "board.conf module $m: $n.ko is not among build/kernel/modules (add it to kernel.sh's WANT)"
		for dep in $(ap_mod_order "$n"); do
			[ -n "${placed[$dep]:-}" ] && continue
			if [ "$dep" = "$n" ]; then path=$m; else path=$mdir/$dep.ko; fi
			placed[$dep]=$path
			mkdir -p "$st$(dirname "$path")"
			cp "$B/kernel/modules/$dep.ko" "$st$path"
			echo "module = $path"
		done
	done
}
done_mods=0
while IFS= read -r line; do
	case $line in
	module*=*) [ "$done_mods" = 1 ] || modlist; done_mods=1 ;;
	*) printf '%s\n' "$line" ;;
	esac
done < "$conf" > "$st/etc/keel/board.conf"
[ "$done_mods" = 1 ] || modlist >> "$st/etc/keel/board.conf"
while read -r k; do
	mkdir -p "$st$(dirname "$k")"
	cp "$out/keys/dev.pub.pem" "$st$k"
done < <(sed -n 's/^trusted-key *= *\(\/[^ ]*\) *$/\1/p' "$conf")
# The listener's files: its certificate and key, and the CA that issues operators' certificates.
for pair in tls-cert:appliance.pem tls-key:appliance.key tls-ca:operator-ca.pem; do
	k=$(sed -n "s/^${pair%%:*} *= *\(\/[^ ]*\) *$/\1/p" "$conf")
	[ -n "$k" ] || continue
	mkdir -p "$st$(dirname "$k")"
	cp "$tls/${pair#*:}" "$st$k"
done
ap_cpio "$st" "$out/initramfs.cpio"
printf 'image.sh: %s/initramfs.cpio (%s bytes, board %s)\n' "$out" "$(stat -c %s "$out/initramfs.cpio")" "$board" >&2

[ "$snap" = 1 ] || exit 0

# snap.img, made inside the test appliance VM: the demo guest is the test guest plus a heartbeat script
# (a second cpio appended: the kernel unpacks both), booted by keel, snapshotted once it beats.
ap_newer "$out/snap.img" "$keel" "$B/guest/initramfs.cpio" "$out/keys/dev.key.pem" "$0" || {
	printf 'image.sh: %s/snap.img is up to date\n' "$out" >&2; exit 0; }
d=$st/demo
mkdir -p "$d/etc/keel"
cat > "$d/etc/keel/heartbeat.sh" <<'EOF'
# demo sandbox service: one heartbeat line every 2 s on the console.
i=0
while :; do
	i=$((i + 1))
	echo "heartbeat $i up $(cut -d' ' -f1 /proc/uptime) date $(date +%s)"
	sleep 2
done
EOF
ap_cpio "$d" "$st/heartbeat.cpio"
cat "$B/guest/initramfs.cpio" "$st/heartbeat.cpio" > "$st/demo.cpio"
cat > "$st/mksnap.sh" <<'EOF'
set -e
keel vm run --kernel /guest/vmlinuz --initrd /demo/demo.cpio --mem 128 --rng \
	--cmdline "console=ttyS0 reboot=t panic=-1 acpi=off quiet keel.cmd=heartbeat" \
	--snapshot-on "heartbeat 2 " --store /tmp/store --name demo --health heartbeat
keel image build --store /tmp/store --ref demo --key /demo/dev.key.pem -o /tmp/snap.img
keel image ls /tmp/snap.img
size=$(wc -c < /tmp/snap.img)
echo "snap.img-size $size"
dd if=/tmp/snap.img of=/dev/vda bs=1M conv=fsync 2>/dev/null
EOF
truncate -s 1G "$st/out.img"
bash "$top/tests/appliance/vmtest.sh" --timeout 600 --add "$st/demo.cpio:/demo/demo.cpio" \
	--add "$out/keys/dev.key.pem:/demo/dev.key.pem" --disk "$st/out.img" --log "$st/mksnap.log" \
	"$st/mksnap.sh" >&2 || ap_die "making the demo snapshot in the test appliance failed (log above)"
size=$(sed -n 's/^snap.img-size \([0-9]*\)$/\1/p' "$st/mksnap.log" | tail -n 1)
[ -n "$size" ] || ap_die "the appliance did not report the image size"
head -c "$size" "$st/out.img" > "$out/snap.img.tmp"
"$keel" image verify "$out/snap.img.tmp" --key "$out/keys/dev.pub.pem" >&2 || ap_die "snap.img does not verify"
mv "$out/snap.img.tmp" "$out/snap.img"
printf 'image.sh: %s/snap.img (%s bytes, demo sandbox "demo")\n' "$out" "$size" >&2
