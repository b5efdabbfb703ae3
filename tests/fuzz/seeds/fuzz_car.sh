#!/usr/bin/env bash
# Writes seed CAR files for fuzz_car into DIR: byte 0 is the feed size, the rest a CAR v1 file.
# The CIDs are computed with sha256sum and b3sum, so the seeds do not depend on keel itself.
set -eu
dir=${1:?usage: fuzz_car.sh DIR}
mkdir -p "$dir"

hexbytes() { printf '%s' "$1" | sed 's/../\\x&/g' | xargs -0 printf '%b'; }
varint() { # minimal LEB128 of $1 as hex
	local v=$1 out=""
	while [ "$v" -ge 128 ]; do out+=$(printf '%02x' $(( (v & 127) | 128 ))); v=$(( v >> 7 )); done
	printf '%s%02x' "$out" "$v"
}
cid() { # cid MH-HEX DATA -> CIDv1 raw hex
	local d
	if [ "$1" = 12 ]; then d=$(printf '%s' "$2" | sha256sum | cut -c1-64)
	else d=$(printf '%s' "$2" | b3sum --no-names 2>/dev/null || printf '%s' "$2" | sha256sum | cut -c1-64); fi
	printf '0155%s20%s' "$1" "$d"
}
header() { # header CIDHEX... -> varint + DAG-CBOR
	local body n=$#
	body="a265726f6f7473$(printf '%02x' $((0x80 + n)))"
	for c in "$@"; do body+="d82a5825 00$c"; done
	body="${body// /}6776657273696f6e01"
	printf '%s%s' "$(varint $(( ${#body} / 2 )))" "$body"
}
section() { # section CIDHEX DATA
	local dh
	dh=$(printf '%s' "$2" | od -An -v -tx1 | tr -d ' \n')
	printf '%s%s%s' "$(varint $(( ${#1} / 2 + ${#2} )))" "$1" "$dh"
}
seed() { # seed NAME STEP HEX
	{ printf '%b' "\\x$(printf '%02x' "$2")"; hexbytes "$3"; } > "$dir/$1"
}

a=$(cid 12 abc); e=$(cid 12 ""); l=$(cid 12 "a longer block of text for the fuzzer")
b=$(cid 1e abc)
car_sha=$(header "$a" "$e")$(section "$a" abc)$(section "$e" "")$(section "$l" "a longer block of text for the fuzzer")
car_b3=$(header "$b")$(section "$b" abc)
seed sha256-three 255 "$car_sha"
seed sha256-three-bytewise 1 "$car_sha"
seed sha256-three-step7 7 "$car_sha"
seed blake3-one 64 "$car_b3"
seed header-only 16 "$(header "$a")"
seed empty-roots 16 "0ea265726f6f7473806776657273696f6e01"
seed carv2-pragma 16 "0aa16776657273696f6e02"
seed cidv0-block 32 "$(header "$a")2312$(printf '%s' "$a" | cut -c9-)"
seed truncated 32 "$(printf '%s' "$car_sha" | head -c 200)"
