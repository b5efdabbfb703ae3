# CAR v1 export/import: round trips, interop with the IPFS reference implementation both ways,
# and every kind of bad input failing with one line while the store stays intact.
. "$(dirname "$0")/../lib.sh"

S=$T_TMP/store
F=$T_TMP/files
mkdir -p "$F"

# ---- helpers that write CAR bytes by hand (hex), independent of keel's encoder ----
hex2bin() { printf '%s' "$1" | perl -e 'local $/; print pack("H*", <STDIN>)'; } # hex2bin HEX > FILE
varint() { # minimal LEB128 of $1 as hex
	local v=$1 out=""
	while [ "$v" -ge 128 ]; do out+=$(printf '%02x' $(( (v & 127) | 128 ))); v=$(( v >> 7 )); done
	printf '%s%02x' "$out" "$v"
}
filehex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
cid_sha() { printf '01551220%s' "$(sha256sum < "$1" | cut -c1-64)"; }
cid_b3() { printf '01551e20%s' "$(b3sum --no-names < "$1")"; }
header() { # header CIDHEX... -> varint + DAG-CBOR header
	local body n=$#
	body="a265726f6f7473$(printf '%02x' $((0x80 + n)))"
	for c in "$@"; do body+="d82a58$(printf '%02x' $(( ${#c} / 2 + 1 )))00$c"; done
	body+="6776657273696f6e01"
	printf '%s%s' "$(varint $(( ${#body} / 2 )))" "$body"
}
section() { # section CIDHEX DATAHEX
	printf '%s%s%s' "$(varint $(( (${#1} + ${#2}) / 2 )))" "$1" "$2"
}
store_ok() { "$KEEL" store verify "$S" >/dev/null 2>&1; }
nfiles() { find "$1" -type f | wc -l; }

# ---- fixtures: objects, and a manifest that names them ----
head -c 3000000 /dev/urandom > "$F/big"
echo hello > "$F/hello"
: > "$F/empty"
head -c 8192 /dev/urandom > "$F/chunk0"
head -c 300 /dev/urandom > "$F/vcpu0"
head -c 200 /dev/urandom > "$F/vmstate"
head -c 100 /dev/urandom > "$F/devices"
b3() { b3sum --no-names < "$1"; }
cat > "$F/manifest" <<EOF
keel-manifest 1
name demo
parent none
kernel $(b3 "$F/big")
initrd none
cmdline console=ttyS0
memory 16384 8192
chunk 0 $(b3 "$F/chunk0")
vcpus 1
vcpu 0 $(b3 "$F/vcpu0")
vm-state $(b3 "$F/vmstate")
devices $(b3 "$F/devices")
policy-cpu-quota 100
policy-net off
policy-health-marker 
policy-health-timeout 30
created 1700000000
EOF
MAN=$(b3 "$F/manifest")
MAN_OBJS="big chunk0 vcpu0 vmstate devices"

check "store init" "$KEEL" store init "$S"
check "store put of the fixtures" sh -c "'$KEEL' store put '$S' '$F/big' '$F/hello' '$F/empty' > '$T_TMP/put.out'"
IDS=$(awk '{print $1}' "$T_TMP/put.out" | tr '\n' ' ')
check "store put printed the BLAKE3 ids" test "$IDS" = "$(b3 "$F/big") $(b3 "$F/hello") $(b3 "$F/empty") "

# ---- keel alone: export, ls, import into a second store ----
# shellcheck disable=SC2086
check "export objects" sh -c "'$KEEL' car export --store '$S' $IDS > '$T_TMP/objs.car'"
check "ls lists the 3 roots and 3 blocks" sh -c \
	"'$KEEL' car ls < '$T_TMP/objs.car' > '$T_TMP/ls' && [ \$(grep -c '^root bafkr4i' '$T_TMP/ls') = 3 ] && [ \$(grep -c '^block bafkr4i' '$T_TMP/ls') = 3 ]"
check "ls reports the blocks' BLAKE3 ids" sh -c "[ \"\$(awk '/^block/{print \$4}' '$T_TMP/ls' | tr '\n' ' ')\" = '$IDS' ]"
S2=$T_TMP/store2
"$KEEL" store init "$S2" >/dev/null 2>&1
check "import into another store prints the root ids" sh -c \
	"'$KEEL' car import --store '$S2' < '$T_TMP/objs.car' > '$T_TMP/imp' && [ \"\$(tr '\n' ' ' < '$T_TMP/imp')\" = '$IDS' ]"
check "imported objects are byte-identical" sh -c \
	"'$KEEL' store get '$S2' $(b3 "$F/big") | cmp - '$F/big'"
check "second store verifies" "$KEEL" store verify "$S2"
check "importing the same file again is idempotent" sh -c "'$KEEL' car import --store '$S2' < '$T_TMP/objs.car' >/dev/null && '$KEEL' store verify '$S2'"
check_status "export of an unknown id fails" 1 "$KEEL" car export --store "$S" "$(printf '%064d' 0)"
check "export of an unknown id says so in one line" one_line_error "$T_TMP/.err"
check_status "export to a terminal-less pipe with no ids is a usage error" 2 "$KEEL" car export --store "$S"
check_status "import without --store is a usage error" 2 sh -c "'$KEEL' car import < /dev/null"
check "car --help explains export and import" sh -c "'$KEEL' car --help | grep -q 'usage: keel car export' && '$KEEL' car --help | grep -q 'keel car import'"
check_status "unknown subcommand exits 2" 2 "$KEEL" car frobnicate
check "unknown subcommand gives one line" one_line_error "$T_TMP/.err"

# ---- manifests: a CAR with objects and a manifest; manifest committed only when complete ----
car_of() { # car_of OUT FILE... (blake3 CIDs, first file is the root)
	local out=$1 c; shift
	{
		hex2bin "$(header "$(cid_b3 "$1")")"
		for f in "$@"; do
			c=$(cid_b3 "$f")
			hex2bin "$(varint $(( ${#c} / 2 + $(stat -c %s "$f") )))$c"
			cat "$f"
		done
	} > "$out"
}
partial=()
for o in chunk0 vcpu0 vmstate devices; do partial+=("$F/$o"); done
car_of "$T_TMP/man-missing.car" "$F/manifest" "${partial[@]}"
S3=$T_TMP/store3
"$KEEL" store init "$S3" >/dev/null 2>&1
check_status "manifest whose objects are missing is not committed (exit 1)" 1 sh -c "'$KEEL' car import --store '$S3' < '$T_TMP/man-missing.car'"
check "missing object is named in one line" sh -c "one_line() { [ \$(wc -l < \"\$1\") -eq 1 ]; }; one_line '$T_TMP/.err' && grep -q '$(b3 "$F/big")' '$T_TMP/.err'"
check "no manifest file was written" test "$(nfiles "$S3/manifests")" = 0
check "the verified objects stayed and the store verifies" sh -c "[ \$(find '$S3/objects' -type f | wc -l) = 4 ] && '$KEEL' store verify '$S3'"
full=()
for o in $MAN_OBJS; do full+=("$F/$o"); done
car_of "$T_TMP/man.car" "$F/manifest" "${full[@]}"
check "manifest with all its objects is committed" sh -c "'$KEEL' car import --store '$S3' < '$T_TMP/man.car' > '$T_TMP/imp' && [ \"\$(cat '$T_TMP/imp')\" = '$MAN' ] && [ -f '$S3/manifests/$MAN' ]"
check "store verifies after the manifest import" "$KEEL" store verify "$S3"
check "manifest export carries the manifest and its 5 objects" sh -c \
	"'$KEEL' car export --store '$S3' '$MAN' > '$T_TMP/mexp.car' && '$KEEL' car ls < '$T_TMP/mexp.car' > '$T_TMP/mls' && [ \$(grep -c '^block' '$T_TMP/mls') = 6 ] && tail -n 1 '$T_TMP/mls' | grep -q ' $MAN\$'"
rm -f "$S2/objects/$(b3 "$F/chunk0")"
"$KEEL" car import --store "$S2" < "$T_TMP/man.car" >/dev/null 2>&1
rm -f "$S2/objects/$(b3 "$F/chunk0")"
check_status "export of a manifest whose object is missing fails" 1 sh -c "'$KEEL' car export --store '$S2' '$MAN' > '$T_TMP/partial.car'"
check "it names the missing object and wrote nothing" sh -c "grep -q '$(b3 "$F/chunk0")' '$T_TMP/.err' && [ ! -s '$T_TMP/partial.car' ]"
# truncated right after the manifest block's first bytes: objects may stay, manifest never.
S4=$T_TMP/store4
"$KEEL" store init "$S4" >/dev/null 2>&1
mlen=$(stat -c %s "$T_TMP/man.car")
head -c $(( mlen - 10 )) "$T_TMP/man.car" > "$T_TMP/man-trunc.car"
check_status "truncated manifest CAR fails" 1 sh -c "'$KEEL' car import --store '$S4' < '$T_TMP/man-trunc.car'"
check "truncation error names a byte offset in one line" sh -c "[ \$(wc -l < '$T_TMP/.err') = 1 ] && grep -q 'byte [0-9]' '$T_TMP/.err'"
check "truncated file: the manifest it carried was not committed" test "$(nfiles "$S4/manifests")" = 0
check "truncated file: store verifies" "$KEEL" store verify "$S4"

# ---- bad input: each fails with exit 1 and one line, store verifies, no ref changes ----
check "a manifest and a ref in the store under test" sh -c "'$KEEL' car import --store '$S' < '$T_TMP/man.car' >/dev/null && '$KEEL' store ref '$S' demo '$MAN'"
refs_before=$(ls -l "$S/refs" 2>/dev/null; cat "$S"/refs/* 2>/dev/null)
objs_before=$(nfiles "$S/objects")
good_cid=$(cid_b3 "$F/hello")
good_hdr=$(header "$good_cid")
hello_hex=$(filehex "$F/hello")
bad() { # bad NAME WHY-PATTERN HEX [import options]
	local name=$1 why=$2 hex=$3; shift 3
	hex2bin "$hex" > "$T_TMP/bad.car"
	check_status "$name: exit 1" 1 sh -c "'$KEEL' car import --store '$S' $* < '$T_TMP/bad.car'"
	check "$name: one line on stderr" one_line_error "$T_TMP/.err"
	check "$name: the error says why, with a byte offset" grep -q "import: byte [0-9]*: .*$why" "$T_TMP/.err"
	check "$name: store verifies, refs unchanged" sh -c \
		"'$KEEL' store verify '$S' >/dev/null && [ \"\$(ls -l '$S/refs' 2>/dev/null; cat '$S'/refs/* 2>/dev/null)\" = \"\$1\" ]" _ "$refs_before"
}
bad "empty file" "empty file" ""
bad "wrong magic (not a CAR)" "ends inside the header" "$(printf 'SNAPPACK 1\n' | od -An -v -tx1 | tr -d ' \n')"
bad "truncated header" "ends inside the header" "${good_hdr:0:40}"
bad "truncated block" "ends inside the CID" "$good_hdr$(section "$good_cid" "$hello_hex" | head -c 60)"
flipped=$(section "$good_cid" "${hello_hex:0:10}ff")
bad "bytes that do not match a stored object's CID" "do not match its CID" "$good_hdr$flipped"
echo "an object the store does not have" > "$F/new"
new_cid=$(cid_b3 "$F/new")
new_hex=$(filehex "$F/new")
bad "bytes that do not match a new object's CID" "do not match its CID" "$good_hdr$(section "$new_cid" "${new_hex%??}ff")"
man_cid=$(cid_b3 "$F/manifest")
man_hex=$(filehex "$F/manifest")
bad "manifest bytes that do not match its CID" "do not match its CID" "$good_hdr$(section "$man_cid" "${man_hex%??}20")"
bad "CIDv0 block" "CIDv0" "$good_hdr$(section "1220${good_cid:8}" "$hello_hex")"
bad "CIDv0 root" "CIDv0" "$(header "1220${good_cid:8}")"
bad "unknown codec (dag-json)" "unsupported CID codec" "$good_hdr$(section "01a9021e20${good_cid:8}" "$hello_hex")"
bad "unknown multihash (sha2-512)" "unsupported multihash" "$good_hdr$(section "015513${good_cid:6}" "$hello_hex")"
bad "non-minimal section length varint" "non-minimal varint" "$good_hdr$(printf '%02x00' $(( 0x80 | (${#good_cid} + ${#hello_hex}) / 2 )))$good_cid$hello_hex"
bad "non-minimal header length varint" "non-minimal varint" "$(printf '%02x00' $(( 0x80 | 0x${good_hdr:0:2} )))${good_hdr:2}"
bad "oversized header length" "exceeds the limit" "80808001"
bad "block over --max-block" "block of 6 bytes exceeds the limit of 5" "$good_hdr$(section "$good_cid" "$hello_hex")" --max-block 5
bad "length that lies (longer than the file)" "bytes missing" "$good_hdr$(varint 5000)$good_cid$hello_hex"
bad "CARv2 pragma" "CARv2 is not supported" "0aa16776657273696f6e02"
bad "header with an unknown key" "keys other than" "$(varint 20)a365726f6f7473806776657273696f6e01617801"
check "bad inputs stored no new objects" test "$(nfiles "$S/objects")" = "$objs_before"
check_status "a store directory that is not one" 1 sh -c "'$KEEL' car import --store '$T_TMP/nostore' < '$T_TMP/objs.car'"
check "not-a-store gives one line" one_line_error "$T_TMP/.err"

# ---- disk full: import into a store on a tiny tmpfs ----
if unshare -m true 2>/dev/null; then
	st=0
	unshare -m sh -c "mkdir -p '$T_TMP/tiny' && mount -t tmpfs -o size=1m tmpfs '$T_TMP/tiny' &&
		'$KEEL' store init '$T_TMP/tiny/s' >/dev/null && '$KEEL' car import --store '$T_TMP/tiny/s' \
		< '$T_TMP/objs.car' > /dev/null 2> '$T_TMP/enospc.err'; echo \$? > '$T_TMP/enospc.st';
		'$KEEL' store verify '$T_TMP/tiny/s' > /dev/null 2>&1; echo \$? > '$T_TMP/enospc.verify';
		find '$T_TMP/tiny/s/objects' -type f ! -regex '.*/[0-9a-f]\{64\}' | wc -l > '$T_TMP/enospc.tmp'" 2>/dev/null || st=$?
	if [ "$st" = 0 ] && [ -f "$T_TMP/enospc.st" ]; then
		check "disk full: import fails with exit 1" test "$(cat "$T_TMP/enospc.st")" = 1
		check "disk full: one line naming ENOSPC" sh -c "[ \$(wc -l < '$T_TMP/enospc.err') = 1 ] && grep -qi 'no space' '$T_TMP/enospc.err'"
		check "disk full: store still verifies" test "$(cat "$T_TMP/enospc.verify")" = 0
		check "disk full: no staged temp file left" test "$(cat "$T_TMP/enospc.tmp")" = 0
	else
		skip "disk full" "cannot mount a tmpfs in a private mount namespace here"
	fi
else
	skip "disk full" "unshare -m is not permitted here"
fi

# ---- O(1) memory per block: a 1 GiB block streamed from a pipe into a store ----
big_dir=${KEEL_BIG_TMP:-/dev/shm}
if [ "$(df -Pk "$big_dir" 2>/dev/null | awk 'NR==2 {print $4}')" -gt $((3 * 1024 * 1024)) ] 2>/dev/null; then
	R=$(mktemp -d "$big_dir/keel-car-XXXXXX")
	"$KEEL" store init "$R/s" >/dev/null
	z=$(head -c 1G /dev/zero | b3sum --no-names)
	{ hex2bin "$(header "01551e20$z")$(varint $(( 36 + (1 << 30) )))01551e20$z"; head -c 1G /dev/zero; } |
		KEEL_REPORT_HWM=1 "$KEEL" car import --store "$R/s" > "$T_TMP/1g.out" 2> "$T_TMP/1g.err"
	st=$?
	hwm=$(awk '/VmHWM/ {print $4}' "$T_TMP/1g.err")
	check "1 GiB block imported from a pipe" sh -c '[ "$0" = 0 ] && [ "$(stat -c %s "$1/s/objects/$2")" = 1073741824 ]' "$st" "$R" "$z"
	if file -L "$KEEL" | grep -q 'dynamically linked'; then
		skip "1 GiB block: peak RSS" "sanitizer build: its shadow memory makes RSS meaningless"
	elif [ -n "$hwm" ] && [ "$hwm" -lt 8192 ]; then
		pass "1 GiB block: peak RSS ${hwm} KiB (< 8 MiB)"
	else
		fail "1 GiB block: peak RSS" "VmHWM ${hwm:-unknown} KiB; $(head -c 200 "$T_TMP/1g.err")"
	fi
	rm -rf "$R"
else
	skip "1 GiB block" "less than 3 GiB free in $big_dir"
fi

# ---- interop with the IPFS reference implementation (@ipld/car + multiformats, npm) ----
P=$KEEL_BUILD/car-peer
peer_setup() {
	command -v node >/dev/null && command -v npm >/dev/null || { echo "node/npm not installed"; return 1; }
	mkdir -p "$P"
	cp "$KEEL_TOP/tests/integration/car-peer.mjs" "$P/"
	[ -f "$P/node_modules/@ipld/car/package.json" ] && [ -f "$P/node_modules/@noble/hashes/blake3.js" ] &&
		[ -f "$P/node_modules/multiformats/package.json" ] && return 0
	(cd "$P" && npm install --no-audit --no-fund --no-save --prefix . \
		@ipld/car@5.4.7 multiformats@14.0.5 @noble/hashes@2.4.0 >"$P/npm.log" 2>&1) ||
		{ echo "npm registry unreachable ($(tail -n 1 "$P/npm.log"))"; return 1; }
}
if why=$(peer_setup); then
	peer() { node "$P/car-peer.mjs" "$@"; }
	check "their reader verifies our blocks and lists our roots" sh -c \
		"node '$P/car-peer.mjs' ls '$T_TMP/objs.car' > '$T_TMP/their.ls' && [ \$(grep -c '^block' '$T_TMP/their.ls') = 3 ]"
	check "their listing equals ours (roots, CIDs, lengths)" sh -c \
		"awk '{print \$1, \$2, \$3}' '$T_TMP/ls' | sed 's/ \$//' | diff - '$T_TMP/their.ls'"
	check "their reader reads our manifest export" sh -c \
		"node '$P/car-peer.mjs' ls '$T_TMP/mexp.car' | grep -c '^block' | grep -qx 6"
	check "they write sha2-256 raw blocks" sh -c \
		"node '$P/car-peer.mjs' write sha256 '$T_TMP/their-sha.car' '$F/big' '$F/hello' '$F/empty'"
	S5=$T_TMP/store5
	"$KEEL" store init "$S5" >/dev/null 2>&1
	check "we import their sha2-256 CAR and print BLAKE3 ids" sh -c \
		"'$KEEL' car import --store '$S5' < '$T_TMP/their-sha.car' > '$T_TMP/imp5' && [ \"\$(tr '\n' ' ' < '$T_TMP/imp5')\" = '$IDS' ]"
	check "store verify passes after their CAR" "$KEEL" store verify "$S5"
	check "their bytes came through unchanged" sh -c "'$KEEL' store get '$S5' $(b3 "$F/big") | cmp - '$F/big'"
	check "they write blake3 raw blocks (manifest and objects)" sh -c \
		"node '$P/car-peer.mjs' write blake3 '$T_TMP/their-b3.car' '$F/manifest' ${full[*]}"
	S6=$T_TMP/store6
	"$KEEL" store init "$S6" >/dev/null 2>&1
	check "we import their blake3 CAR and commit the manifest" sh -c \
		"'$KEEL' car import --store '$S6' < '$T_TMP/their-b3.car' >/dev/null && [ -f '$S6/manifests/$MAN' ] && '$KEEL' store verify '$S6'"
	check "our ls of their file matches theirs" sh -c \
		"'$KEEL' car ls < '$T_TMP/their-sha.car' | awk '{print \$1, \$2, \$3}' | sed 's/ \$//' > '$T_TMP/ours.ls' && node '$P/car-peer.mjs' ls '$T_TMP/their-sha.car' | diff - '$T_TMP/ours.ls'"
	cp "$T_TMP/objs.car" "$T_TMP/corrupt.car"
	printf 'X' | dd of="$T_TMP/corrupt.car" bs=1 seek=$(( $(stat -c %s "$T_TMP/corrupt.car") - 3 )) conv=notrunc 2>/dev/null
	check_status "their reader also rejects a corrupted block of ours" 1 node "$P/car-peer.mjs" ls "$T_TMP/corrupt.car"
else
	skip "interop with @ipld/car" "$why"
fi
