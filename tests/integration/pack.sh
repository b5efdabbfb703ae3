# `keel pack send | keel pack receive`: round trips, every bad input (one line, byte offset, nothing lost), O(1) memory.
. "$(dirname "$0")/../lib.sh"

S=$T_TMP/src
D=$T_TMP/dst
"$KEEL" store init "$S"
"$KEEL" store init "$D"
head -c 300000 /dev/urandom > "$T_TMP/mem"
printf 'kernel bytes' > "$T_TMP/kernel"
base=$("$KEEL" manifest create --store "$S" --name box --kernel "$T_TMP/kernel" --memory-file "$T_TMP/mem" \
	--chunk 65536 --created 1)
"$KEEL" store ref "$S" box "$base"

check "capabilities name the wire version" sh -c '"$0" version --capabilities | grep -qx "snappack 1"' "$KEEL"

"$KEEL" pack send --store "$S" --manifest box > "$T_TMP/good.pack"
check "send --manifest writes magic first and end last" \
	sh -c 'head -c 11 "$0" | grep -qx "SNAPPACK 1" && [ "$(tail -c 4 "$0" | od -An -c | tr -d " ")" = "end\\n" ]' "$T_TMP/good.pack"

# A second store holding the base snapshot, ref "box" pointing at it: every bad input must leave it so.
"$KEEL" pack receive --store "$D" --activate < "$T_TMP/good.pack" > /dev/null
check "round trip files the manifest and moves the ref" sh -c '[ "$("$0" store ref "$1" box)" = "$2" ]' "$KEEL" "$D" "$base"
check "received store verifies" "$KEEL" store verify "$D"

# A newer snapshot to stream: new kernel object, same memory.
printf 'kernel v2' > "$T_TMP/kernel2"
k2=$(b3sum --no-names "$T_TMP/kernel2" 2>/dev/null || "$KEEL" b3sum "$T_TMP/kernel2" | cut -d' ' -f1)
next=$("$KEEL" manifest create --store "$S" --name box --parent "$base" --kernel "$T_TMP/kernel2" \
	--memory-file "$T_TMP/mem" --chunk 65536 --created 2)
"$KEEL" pack send --store "$S" --manifest "$next" > "$T_TMP/next.pack"
mtext=$("$KEEL" store get "$S" "$next")
mlen=${#mtext}; mlen=$((mlen + 1))

# bad NAME FILE: receive fails (exit 1), one stderr line with a byte offset, store verifies, ref unchanged.
bad() {
	local name=$1 file=$2 st=0
	"$KEEL" pack receive --store "$D" < "$file" > /dev/null 2> "$T_TMP/err" || st=$?
	if [ "$st" = 0 ]; then fail "$name" "accepted"; return; fi
	if ! one_line_error "$T_TMP/err"; then fail "$name" "stderr is not one line: $(head -c 300 "$T_TMP/err")"; return; fi
	if ! grep -q 'byte [0-9][0-9]*:' "$T_TMP/err"; then fail "$name" "no byte offset: $(cat "$T_TMP/err")"; return; fi
	if ! "$KEEL" store verify "$D" > /dev/null 2>&1; then fail "$name" "store no longer verifies"; return; fi
	if [ "$("$KEEL" store ref "$D" box)" != "$base" ]; then fail "$name" "ref moved"; return; fi
	if [ -e "$D/manifests/$next" ]; then fail "$name" "manifest committed"; return; fi
	pass "$name"
}
P=$T_TMP/bad
mkdir -p "$P"
size=$(stat -c %s "$T_TMP/next.pack")

# first, while the new kernel object is not in the store yet
{ printf 'SNAPPACK 1\nmanifest %s %d\n%s\nend\n' "$next" "$mlen" "$mtext"; } > "$P/missing"
bad "manifest whose objects are missing" "$P/missing"
head -c $((size - 4)) "$T_TMP/next.pack" > "$P/no-end";                bad "EOF before end never commits the manifest" "$P/no-end"
head -c $((size - 40)) "$T_TMP/next.pack" > "$P/cut";                  bad "truncated inside the manifest" "$P/cut"
{ printf 'SNAPPACK 2\n'; tail -c +12 "$T_TMP/next.pack"; } > "$P/magic"; bad "wrong magic" "$P/magic"
{ printf 'SNAPPACK 1\nobj %s 5\nhello' "$(echo "$k2" | tr a-f A-F)"; printf 'end\n'; } > "$P/upper"; bad "uppercase hex" "$P/upper"
{ printf 'SNAPPACK 1\nobj %s 99999999999999999999\n' "$k2"; } > "$P/ovf";  bad "overflowing length" "$P/ovf"
{ printf 'SNAPPACK 1\nobj %s 0x9\n' "$k2"; } > "$P/hexlen";           bad "non-decimal length" "$P/hexlen"
{ printf 'SNAPPACK 1\nobj %s 20\nkernel v2end\n' "$k2"; } > "$P/short"; bad "length that lies (short payload)" "$P/short"
{ printf 'SNAPPACK 1\n'; head -c 200 /dev/zero | tr '\0' a; } > "$P/longhdr"; bad "header line over the cap" "$P/longhdr"
{ printf 'SNAPPACK 1\nobj %s 9\nkernel v3end\n' "$k2"; } > "$P/hash"; bad "payload that does not hash to its id" "$P/hash"
{ printf 'SNAPPACK 1\nmanifest %s %d\n%s\nobj %s 9\nkernel v2end\n' "$next" "$mlen" "$mtext" "$k2"; } > "$P/notlast"
bad "manifest not last" "$P/notlast"
{ printf 'SNAPPACK 1\nmanifest %s %d\n%s\nmanifest %s %d\n%s\nend\n' "$next" "$mlen" "$mtext" "$next" "$mlen" "$mtext"; } > "$P/two"
bad "two manifests" "$P/two"
{ printf 'SNAPPACK 1\nmanifest %s 99999999\n' "$next"; } > "$P/bigman"; bad "manifest over the size cap" "$P/bigman"
{ cat "$T_TMP/next.pack"; printf 'obj %s 0\n' "$k2"; } > "$P/after";   bad "record after end" "$P/after"

check_status "a directory that is not a store" 1 "$KEEL" pack receive --store "$T_TMP" < "$T_TMP/next.pack"
check "... and says so in one line" one_line_error "$T_TMP/.err"

# Disk full: a 1 MiB tmpfs store, a 2 MiB object.
if [ "$(id -u)" = 0 ] && mkdir -p "$T_TMP/small" && mount -t tmpfs -o size=1m keeltest "$T_TMP/small" 2>/dev/null; then
	"$KEEL" store init "$T_TMP/small/s"
	head -c $((2 * 1024 * 1024)) /dev/urandom > "$T_TMP/big"
	big=$("$KEEL" store put "$S" "$T_TMP/big")
	"$KEEL" pack send --store "$S" "$big" > "$T_TMP/big.pack"
	check_status "ENOSPC fails the stream" 1 "$KEEL" pack receive --store "$T_TMP/small/s" < "$T_TMP/big.pack"
	check "ENOSPC: one line naming the byte offset" sh -c '[ "$(wc -l < "$0")" = 1 ] && grep -q "byte .*space" "$0"' "$T_TMP/.err"
	check "ENOSPC: store still verifies, no temp left" sh -c '"$0" store verify "$1" && [ -z "$(ls -A "$1/objects")" ]' \
		"$KEEL" "$T_TMP/small/s"
	umount "$T_TMP/small"
else
	skip "ENOSPC" "cannot mount a small tmpfs (needs root and CAP_SYS_ADMIN)"
fi

# The good stream still goes through after all that, and duplicates are fine.
check "valid stream after the bad ones" sh -c '"$0" pack receive --store "$1" --activate < "$2"' "$KEEL" "$D" "$T_TMP/next.pack"
check "ref moved to the new snapshot" sh -c '[ "$("$0" store ref "$1" box)" = "$2" ]' "$KEEL" "$D" "$next"
# Replay: the earlier snapshot's own stream again, --activate: refused in one line naming both
# versions, the ref stays; a newer one still lands afterwards.
check_status "replay of an earlier snapshot with --activate is refused" 1 \
	"$KEEL" pack receive --store "$D" --activate < "$T_TMP/good.pack"
check "... in one line naming both versions" sh -c '[ "$(wc -l < "$0")" = 1 ] && grep -q "box version 1 .* version 2 already accepted" "$0"' "$T_TMP/.err"
check "... and the ref stays on the newer one" sh -c '[ "$("$0" store ref "$1" box)" = "$2" ]' "$KEEL" "$D" "$next"
newer=$("$KEEL" manifest create --store "$S" --name box --parent "$next" --kernel "$T_TMP/kernel2" \
	--memory-file "$T_TMP/mem" --chunk 65536 --created 3)
"$KEEL" pack send --store "$S" --manifest "$newer" > "$T_TMP/newer.pack"
check "a newer one lands after the refused replay" sh -c '"$0" pack receive --store "$1" --activate < "$2" >/dev/null &&
	[ "$("$0" store ref "$1" box)" = "$3" ]' "$KEEL" "$D" "$T_TMP/newer.pack" "$newer"
# gc during a receive: the receiver holds the store from its first record, so gc refuses
# (exit 1, one line) and removes nothing, and the stream still lands whole afterwards.
G=$T_TMP/gcrace
mkdir -p "$G"
"$KEEL" store init "$G/s" > /dev/null
mkfifo "$G.fifo"
"$KEEL" pack receive --store "$G/s" --activate < "$G.fifo" > "$G.out" 2>&1 &
rxpid=$!
exec 7> "$G.fifo"
head -c $(( $(stat -c %s "$T_TMP/next.pack") / 2 )) "$T_TMP/next.pack" >&7
# Committed objects only: a "~tmp-" file listed now and renamed later is not an object removed.
committed() { ls "$1" 2>/dev/null | grep -v '^~tmp-' | sort; }
for _ in $(seq 100); do [ -n "$(committed "$G/s/objects")" ] && break; sleep 0.05; done
committed "$G/s/objects" > "$G.before"
check_status "gc while a receive is filing objects is refused" 1 "$KEEL" store gc "$G/s"
check "... with a one-line 'busy' error" sh -c 'one_line() { [ "$(wc -l < "$1")" = 1 ]; }; "$0" store gc "$1" 2> "$2.err"; one_line "$2.err" && grep -q busy "$2.err"' "$KEEL" "$G/s" "$G"
# (the receive may file more meanwhile: what counts is that every object seen before is still there)
committed "$G/s/objects" > "$G.after"
check "... and removes nothing" sh -c '[ -s "$0.before" ] && ! comm -23 "$0.before" "$0.after" | grep -q .' "$G"
tail -c +$(( $(stat -c %s "$T_TMP/next.pack") / 2 + 1 )) "$T_TMP/next.pack" >&7
exec 7>&-
wait "$rxpid"
check "the held receive still lands whole" sh -c '[ "$("$0" store ref "$1" box)" = "$2" ] && "$0" store verify "$1" > /dev/null' "$KEEL" "$G/s" "$next"
check "gc runs once the receive is done" sh -c '"$0" store gc "$1" | grep -q "^removed"' "$KEEL" "$G/s"
check "receiving the same stream again is idempotent" sh -c '"$0" pack receive --store "$1" < "$2" | grep -q "new 0,"' \
	"$KEEL" "$D" "$T_TMP/next.pack"

# O(1) memory per record: a 4 GiB object streamed from a pipe (never a file) into a store on disk.
# BLAKE3 of 4 GiB of zero bytes (check: head -c 4G /dev/zero | b3sum).
Z4G=7dde7c9fed144013fedbe2b0bbf2d82f004b60b589485851cdec29b27be408d7
big_dir=${KEEL_BIG_TMP:-/dev/shm}
if [ "$(df -Pk "$big_dir" 2>/dev/null | awk 'NR==2 {print $4}')" -gt $((5 * 1024 * 1024)) ] 2>/dev/null; then
	R=$(mktemp -d "$big_dir/keel-pack-XXXXXX")
	"$KEEL" store init "$R/s"
	{ printf 'SNAPPACK 1\nobj %s %d\n' "$Z4G" $((4 << 30)); dd if=/dev/zero bs=1M count=4096 status=none; printf 'end\n'; } |
		KEEL_REPORT_HWM=1 "$KEEL" pack receive --store "$R/s" > "$T_TMP/4g.out" 2> "$T_TMP/4g.err"
	st=$?
	hwm=$(awk '/VmHWM/ {print $4}' "$T_TMP/4g.err")
	check "4 GiB object received" sh -c '[ "$0" = 0 ] && [ "$(stat -c %s "$1/s/objects/$2")" = 4294967296 ]' "$st" "$R" "$Z4G"
	if [ -n "$hwm" ] && [ "$hwm" -lt 4096 ]; then
		pass "4 GiB object: peak RSS ${hwm} KiB (< 4 MiB)"
	else
		fail "4 GiB object: peak RSS" "VmHWM ${hwm:-unknown} KiB"
	fi
	rm -rf "$R"
else
	skip "4 GiB object" "less than 5 GiB free in $big_dir"
fi
exit 0
