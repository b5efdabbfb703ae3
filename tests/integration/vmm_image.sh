# Restore of the tiny guest from a partition image (`keel vm restore --image`) on the host's
# /dev/kvm: memory chunks are mapped from the image, the counter continues, a flipped byte in the
# image's header, ref table, manifest or a state object is refused with one line, and restore runs no guest then.
. "$(dirname "$0")/../lib.sh"
TINY=$KEEL_BUILD/tests/guest/tiny.elf

if [ ! -c /dev/kvm ]; then
	skip image_restore "no /dev/kvm on this machine"
	exit 0
fi
S=$T_TMP/store
IMG=$T_TMP/snap.img
id=$("$KEEL" vm run --kernel "$TINY" --store "$S" --cmdline "tiny=count n=9" --snapshot-on "count 4." \
	--name counter </dev/null 2>"$T_TMP/snap.err" | tail -n 1)
check snapshot_for_the_image test "${#id}" = 64
"$KEEL" vm run --kernel "$TINY" --store "$S" --mem 1024 --cmdline "tiny=count n=3" --snapshot-on "count 2." \
	--name big </dev/null >/dev/null 2>&1
check image_build "$KEEL" image build --store "$S" -o "$IMG"

"$KEEL" vm restore --image "$IMG" counter </dev/null >"$T_TMP/r1" 2>"$T_TMP/r1.err"; st=$?
check_status image_restore_powers_off_with_0 0 test "$st" = 0
check image_counter_continues grep -qx "tiny: count 5." "$T_TMP/r1"
check image_counter_is_not_restarted sh -c "! grep -q 'count [1-4]\.' '$T_TMP/r1' && ! grep -q 'tiny: hello' '$T_TMP/r1'"
check image_counter_reaches_the_end grep -qx "tiny: count 9." "$T_TMP/r1"
check_status image_restore_by_manifest_id 0 "$KEEL" vm restore --image "$IMG" "$id"
check_status image_restore_1g_guest 0 "$KEEL" vm restore --image "$IMG" big

# Two restores at once from one image: independent copy-on-write guests, the image unchanged.
sum=$(cksum < "$IMG")
"$KEEL" vm restore --image "$IMG" counter </dev/null >"$T_TMP/c1" 2>&1 &
"$KEEL" vm restore --image "$IMG" counter </dev/null >"$T_TMP/c2" 2>&1
wait
check two_image_restores_finish sh -c "grep -qx 'tiny: count 9.' '$T_TMP/c1' && grep -qx 'tiny: count 9.' '$T_TMP/c2'"
check guest_writes_do_not_reach_the_image test "$(cksum < "$IMG")" = "$sum"

"$KEEL" vm restore --image "$IMG" counter --ready-fd 3 --health "count 7." </dev/null >/dev/null 2>&1 3>"$T_TMP/ready"
check image_ready_fd_says_restored_then_healthy test "$(cat "$T_TMP/ready")" = "$(printf 'restored\nhealthy')"

check_status image_unknown_name_exits_1 1 "$KEEL" vm restore --image "$IMG" nosuch
check image_unknown_name_one_line one_line_error "$T_TMP/.err"
check_status missing_image_exits_1 1 "$KEEL" vm restore --image "$T_TMP/none.img" counter
check missing_image_one_line one_line_error "$T_TMP/.err"
check_status store_and_image_together_exit_2 2 "$KEEL" vm restore --store "$S" --image "$IMG" counter

# flip IMG OFFSET OUT: a copy of IMG with the byte at OFFSET inverted
flip() {
	cp "$1" "$3"
	printf "$(printf '\\%03o' $(( $(od -An -tu1 -j "$2" -N1 "$1") ^ 0xff )))" |
		dd of="$3" bs=1 seek="$2" conv=notrunc status=none
}
# offset_of KIND ID: the object's byte offset in the image (from `keel image ls -l`)
offset_of() { "$KEEL" image ls "$IMG" -l | awk -v k="$1" -v i="$2" '$1 == k && $2 == i { print $3 }'; }
vcpu=$(awk '$1 == "vcpu" { print $3 }' "$S/manifests/$id")
vmstate=$(awk '$1 == "vm-state" { print $2 }' "$S/manifests/$id")
flip "$IMG" 4200 "$T_TMP/bad_table.img"   # the ref table follows the 4096-byte header
flip "$IMG" "$(( $(offset_of object "$vcpu") + 100 ))" "$T_TMP/bad_vcpu.img"
flip "$IMG" "$(( $(offset_of object "$vmstate") + 7 ))" "$T_TMP/bad_vm.img"
flip "$IMG" "$(( $(offset_of manifest "$id") + 3 ))" "$T_TMP/bad_manifest.img"
flip "$IMG" 9 "$T_TMP/bad_header.img"
for b in table vcpu vm manifest header; do
	check_status "flipped_byte_in_${b}_exits_1" 1 "$KEEL" vm restore --image "$T_TMP/bad_$b.img" counter
	check "flipped_byte_in_${b}_one_line" one_line_error "$T_TMP/.err"
	check "flipped_byte_in_${b}_runs_no_guest" test ! -s "$T_TMP/.out"
done
"$KEEL" vm restore --image "$T_TMP/bad_vcpu.img" counter </dev/null >/dev/null 2>"$T_TMP/vcpu.err"
check flipped_vcpu_byte_names_the_object grep -q "vCPU state object ${vcpu:0:16}.*corrupt" "$T_TMP/vcpu.err"
