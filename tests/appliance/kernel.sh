#!/usr/bin/env bash
# Fetch Debian bookworm's kernel (linux-image-amd64) with apt-get download and lay out what guests and the
# test appliance need: build/kernel/{vmlinuz,vmlinux,version,config,modules/*.ko,modules.dep}.
# Nothing is installed on the host; the package comes from Debian's signed archive (apt checks it).
# Idempotent: when build/kernel/.stamp names the package file already present, nothing is redone.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${KEEL_BUILD_DIR:-$top/build}
K=$B/kernel
DL=$B/dl
export LC_ALL=C

die() { printf 'kernel.sh: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'kernel.sh: %s\n' "$*" >&2; }

# The modules the guests and the appliance load; their dependencies are added from .modinfo.
WANT=(irqbypass ccp kvm kvm_amd kvm_intel virtio virtio_ring virtio_mmio virtio_pci virtio_blk virtio_net
      virtio_console virtio_rng vmw_vsock_virtio_transport ext4 crc32c_generic button evdev ib700wdt tun veth)

# Resolve linux-image-amd64 -> linux-image-6.1.0-NN-amd64 (the metapackage only depends on it).
resolve_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1
}

# Fast path: already laid out. `rm -rf build/kernel` (or KEEL_KERNEL_REFRESH=1) picks up a newer package.
if grep -qs " kernel.sh-v6$" "$K/.stamp" && [ -f "$K/vmlinux" ] && [ -z "${KEEL_KERNEL_REFRESH:-}" ] && [ -z "${KEEL_KERNEL_PKG:-}" ]; then
	exit 0
fi

pkg=${KEEL_KERNEL_PKG:-}
if [ -z "$pkg" ]; then
	pkg=$(resolve_pkg)
	if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
		apt-get update -qq >/dev/null 2>&1 || true
		pkg=$(resolve_pkg)
	fi
fi
# Offline and apt knows nothing: reuse what was fetched before, if anything.
if [ -z "$pkg" ]; then
	deb=$(ls "$DL"/linux-image-[0-9]*-amd64_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
	[ -n "$deb" ] || die "cannot resolve the kernel package: apt-cache depends linux-image-amd64 gives no linux-image-*-amd64 (no apt lists? run apt-get update)"
else
	deb=$(ls "$DL/${pkg}"_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
	if [ -z "$deb" ]; then
		mkdir -p "$DL"
		say "fetching Debian package $pkg"
		tmpd=$(mktemp -d "$DL/.apt-XXXXXX")
		chmod 0777 "$tmpd"   # apt downloads as _apt when it can
		if ! (cd "$tmpd" && apt-get download -qq "$pkg" >/dev/null 2>"$tmpd/.err"); then
			msg=$(grep -v '^W:' "$tmpd/.err" | head -n 1)
			rm -rf "$tmpd"
			die "cannot fetch kernel package $pkg with apt-get download (${msg:-no network or no Debian mirror?})"
		fi
		mv "$tmpd"/"${pkg}"_*.deb "$DL"/
		rm -rf "$tmpd"
		deb=$(ls "$DL/${pkg}"_*.deb | sort -V | tail -n 1)
	fi
fi

stamp="$(basename "$deb") kernel.sh-v6"
if [ -f "$K/.stamp" ] && [ "$(cat "$K/.stamp")" = "$stamp" ] && [ -f "$K/vmlinux" ]; then
	exit 0
fi

say "extracting $(basename "$deb")"
work=$(mktemp -d "${TMPDIR:-/tmp}/keel-kernel-XXXXXX")
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work/x" || die "dpkg-deb -x $(basename "$deb") failed"
kver=$(ls "$work/x/lib/modules" | head -n 1)
[ -n "$kver" ] || die "$(basename "$deb") holds no lib/modules/<version>"
[ -f "$work/x/boot/vmlinuz-$kver" ] || die "$(basename "$deb") holds no boot/vmlinuz-$kver"

new=$K.new
rm -rf "$new"
mkdir -p "$new/modules"
cp "$work/x/boot/vmlinuz-$kver" "$new/vmlinuz"
cp "$work/x/boot/config-$kver" "$new/config"

# vmlinux: the bzImage's payload is XZ (CONFIG_KERNEL_XZ); find each XZ stream magic and take the first
# offset that decompresses to an ELF file (the extract-vmlinux approach).
found=0
for boff in $(grep -obUaP '\xfd7zXZ\x00' "$new/vmlinuz" | cut -d: -f1); do
	tail -c +$((boff + 1)) "$new/vmlinuz" | xz -dc 2>/dev/null > "$work/vmlinux" || true
	if [ "$(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
		found=1; break
	fi
done
[ "$found" = 1 ] || die "no XZ-compressed ELF payload found in vmlinuz-$kver"
mv "$work/vmlinux" "$new/vmlinux"

# Modules: read name= and depends= from each candidate's .modinfo (the package has no modules.dep; depmod
# would need kmod), close WANT over dependencies, copy them decompressed as modules/<name>.ko, and write
# modules.dep as "name: dep dep" lines.
declare -A path deps
while IFS= read -r f; do
	case $f in
	*.ko) cp "$f" "$work/m.ko" ;;
	*.ko.xz) xz -dc "$f" > "$work/m.ko" ;;
	*.ko.zst) zstd -qdc "$f" > "$work/m.ko" ;;
	*) continue ;;
	esac
	# objcopy replaces its output file by rename: never point it at /dev/stdout (as root that
	# turns the /dev/stdout link into a regular file for the whole machine).
	objcopy -O binary -j .modinfo "$work/m.ko" "$work/modinfo" 2>/dev/null || : > "$work/modinfo"
	info=$(tr '\0' '\n' < "$work/modinfo")
	n=$(printf '%s\n' "$info" | sed -n 's/^name=//p' | head -n 1)
	[ -n "$n" ] || n=$(basename "${f%%.ko*}" | tr - _)
	path[$n]=$f
	deps[$n]=$(printf '%s\n' "$info" | sed -n 's/^depends=//p' | head -n 1 | tr , ' ')
done < <(find "$work/x/lib/modules/$kver/kernel" \( -path '*/arch/x86/kvm/*' -o -path '*/virt/*' \
	-o -path '*/drivers/virtio/*' -o -path '*/drivers/block/virtio*' -o -path '*/drivers/net/*' \
	-o -path '*/net/core/*' -o -path '*/drivers/char/*' -o -path '*/drivers/crypto/ccp/*' \
	-o -path '*/net/vmw_vsock/*' -o -path '*/fs/*' -o -path '*/lib/*' -o -path '*/crypto/*' \
	-o -path '*/drivers/acpi/*' -o -path '*/drivers/input/*' -o -path '*/drivers/watchdog/*' \) -name '*.ko*')

declare -A need
add() {
	local m=$1 d
	[ -n "${need[$m]:-}" ] && return 0
	[ -n "${path[$m]:-}" ] || die "module $m (wanted or a dependency) is not in $(basename "$deb")"
	need[$m]=1
	for d in ${deps[$m]}; do add "$d"; done
}
for m in "${WANT[@]}"; do add "$m"; done
: > "$new/modules.dep"
for m in $(printf '%s\n' "${!need[@]}" | sort); do
	case ${path[$m]} in
	*.ko) cp "${path[$m]}" "$new/modules/$m.ko" ;;
	*.ko.xz) xz -dc "${path[$m]}" > "$new/modules/$m.ko" ;;
	*.ko.zst) zstd -qdc "${path[$m]}" > "$new/modules/$m.ko" ;;
	esac
	echo "$m: ${deps[$m]}" | sed 's/ *$//' >> "$new/modules.dep"
done

{
	echo "package $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version)"
	echo "release $kver"
} > "$new/version"
echo "$stamp" > "$new/.stamp"
rm -rf "$K"
mv "$new" "$K"
say "kernel $kver: $K/vmlinuz, $K/vmlinux, ${#need[@]} modules"
