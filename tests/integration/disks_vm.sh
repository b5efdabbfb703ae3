#!/usr/bin/env bash
# Read-only object disks in the test appliance VM, one boot for two guest scripts that report their
# own PASS/FAIL and measured: lines:
# - tests/guest/appliance/disks.sh: a Debian-kernel guest's disk served from its chunk objects
#   (store, partition image, a corrupt chunk);
# - tests/guest/appliance/rootfs.sh: a real root filesystem. This script makes two ext4 images of
#   the test guest's tree plus a 128 MiB /opt/model.bin (v2 differs in one file, /etc/version; both
#   made reproducibly, so everything else lands in the same blocks), given to the appliance as its
#   /dev/vda and /dev/vdb.
. "$(dirname "$0")/../lib.sh"
for tool in qemu-system-x86_64 mkfs.ext4 cpio; do
	if ! command -v "$tool" >/dev/null; then
		skip disks_vm "$tool is not installed"
		exit 0
	fi
done
bash "$KEEL_TOP/tests/appliance/kernel.sh" && bash "$KEEL_TOP/tests/appliance/mkguest.sh" ||
	{ fail disks_vm_guest "the test guest does not build"; exit 0; }
R=$T_TMP/tree
mkdir -p "$R" && (cd "$R" && cpio -id --quiet < "$KEEL_BUILD/guest/initramfs.cpio")
mkdir -p "$R/opt" "$R/newroot"
head -c $((128 << 20)) /dev/urandom > "$R/opt/model.bin"
echo "MODEL_MD5=$(md5sum < "$R/opt/model.bin" | cut -d' ' -f1)" > "$T_TMP/rootfs.env"
# mkroot VERSION IMAGE: a 384 MiB ext4 of the tree; fixed times, UUID and hash seed, so two
# versions differ only where their files do
mkroot() {
	echo "$1" > "$R/etc/version"
	find "$R" -exec touch -h -d @1767225600 {} +
	E2FSPROGS_FAKE_TIME=1767225600 mkfs.ext4 -q -F -b 4096 -L keelroot -U 6b65656c-726f-6f74-6673-000000000001 \
		-E hash_seed=6b65656c-6861-7368-7365-000000000001,root_owner=0:0 -d "$R" "$2" 384M >/dev/null
}
mkroot v1 "$T_TMP/root1.img" && mkroot v2 "$T_TMP/root2.img" || { fail disks_vm_mkfs "mkfs.ext4 -d failed"; exit 0; }
rm -rf "$R"
G=$KEEL_TOP/tests/guest/appliance
printf '%s\n' 'sh /lib/keel-test/disks.sh; a=$?' 'sh /lib/keel-test/rootfs.sh; b=$?' 'exit $((a | b))' > "$T_TMP/both.sh"
st=0
bash "$KEEL_TOP/tests/appliance/vmtest.sh" --timeout 1200 --keel "$KEEL" \
	--disk "$T_TMP/root1.img,ro" --disk "$T_TMP/root2.img,ro" --add "$T_TMP/rootfs.env:/lib/keel-test/rootfs.env" \
	--add "$G/lan.sh:/lib/keel-test/lan.sh" --add "$G/disks.sh:/lib/keel-test/disks.sh" \
	--add "$G/rootfs.sh:/lib/keel-test/rootfs.sh" "$T_TMP/both.sh" >"$T_TMP/log" 2>&1 || st=$?
tr -d '\r' < "$T_TMP/log" | grep -E '^(PASS|FAIL|SKIP) (disks|rootfs): '
tr -d '\r' < "$T_TMP/log" | grep -E '^measured: ' | sed 's/^/disks_vm: /'
tr -d '\r' < "$T_TMP/log" | grep -E '^vmtest.sh: .* in all' | sed 's/^/disks_vm: /'
[ "$st" = 0 ] && pass disks_vm_appliance_run || fail disks_vm_appliance_run "vmtest.sh exit $st: $(tr -d '\r' < "$T_TMP/log" | grep -vE '^(PASS|measured)' | tail -n 8 | tr '\n' ' ')"
