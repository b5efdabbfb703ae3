# Read-only disks in manifests (`keel manifest create --disk`): chunked into objects, shared
# across versions, carried by packs, strict lines. (The VMM serving them comes with #32's rest.)
. "$(dirname "$0")/../lib.sh"

S=$T_TMP/s S2=$T_TMP/s2
"$KEEL" store init "$S" >/dev/null
"$KEEL" store init "$S2" >/dev/null
# a 4 MiB + 512-byte image: random data in its first and last MiB, zeros between
img=$T_TMP/root.img
head -c 1048576 /dev/urandom > "$img"
head -c 2097152 /dev/zero >> "$img"
head -c 1049088 /dev/urandom >> "$img"
m1=$("$KEEL" manifest create --store "$S" --name box --memory 8192 --chunk 4096 --disk root="$img" --created 1)
check "manifest create --disk prints a manifest id" test -f "$S/manifests/$m1"
"$KEEL" manifest show --store "$S" "$m1" > "$T_TMP/m1"
check "the manifest names the disk, read-only, with its size and chunk size" \
	grep -qx "disk root 4194816 65536 ro" "$T_TMP/m1"
n1=$(grep -c '^disk-chunk ' "$T_TMP/m1")
check "all-zero disk chunks are left out (33 of 65 stored)" test "$n1" = 33
last=$(grep '^disk-chunk ' "$T_TMP/m1" | tail -n 1 | cut -d' ' -f3)
check "the short last chunk is stored as it is (512 bytes)" test "$(stat -c %s "$S/objects/$last")" = 512
# v2: one 4 KiB block changed in the middle of the random first MiB
cp "$img" "$T_TMP/root2.img"
printf 'keel v2' | dd of="$T_TMP/root2.img" bs=1 seek=500000 conv=notrunc 2>/dev/null
m2=$("$KEEL" manifest create --store "$S" --name box --memory 8192 --chunk 4096 --disk root="$T_TMP/root2.img" --created 2)
"$KEEL" manifest show --store "$S" "$m2" > "$T_TMP/m2"
new=$(grep '^disk-chunk ' "$T_TMP/m2" | sort > "$T_TMP/c2"; grep '^disk-chunk ' "$T_TMP/m1" | sort > "$T_TMP/c1"; comm -23 "$T_TMP/c2" "$T_TMP/c1" | wc -l)
check "v2 of the disk shares all but one chunk with v1" test "$new" = 1
echo "disks: v2 after v1 adds 1 disk chunk of $n1 (65536 bytes of 4194816)"
# packs carry the disk's chunks
"$KEEL" pack send --store "$S" --manifest "$m1" > "$T_TMP/p1"
check "a pack of the manifest carries its disk chunks and lands whole" \
	sh -c '"$0" pack receive --store "$1" < "$2" && "$0" manifest show --store "$1" "$3" >/dev/null' "$KEEL" "$S2" "$T_TMP/p1" "$m1"
check "every disk chunk is in the receiving store" \
	sh -c 'for id in $(grep "^disk-chunk " "$1" | cut -d" " -f3); do test -f "$2/objects/$id" || exit 1; done' "$T_TMP/m1" "$S2"
check "the receiving store verifies" "$KEEL" store verify "$S2"
# bad input: one line, nothing made
printf 'x' > "$T_TMP/odd.img"
check_status "a disk image not a multiple of 512 bytes is refused" 2 \
	"$KEEL" manifest create --store "$S" --name box --memory 8192 --chunk 4096 --disk root="$T_TMP/odd.img"
check "... saying why" grep -q "multiple of 512" "$T_TMP/.err"
check_status "a disk name outside [a-z0-9] is refused" 2 \
	"$KEEL" manifest create --store "$S" --name box --memory 8192 --chunk 4096 --disk Root="$img"
check_status "the same disk name twice is refused" 2 \
	"$KEEL" manifest create --store "$S" --name box --memory 8192 --chunk 4096 --disk a="$img" --disk a="$img"
m3=$("$KEEL" manifest create --store "$S" --name box --memory 8192 --chunk 4096 --disk var="$img" --disk boot="$img" --created 3)
check "disks are written in name order whatever the order given" \
	sh -c '"$0" manifest show --store "$1" "$2" | grep "^disk " | cut -d" " -f2 | tr "\n" " " | grep -qx "boot var "' "$KEEL" "$S" "$m3"
