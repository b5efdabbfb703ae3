#!/usr/bin/env bash
# Seeds for fuzz_vmstate: the vCPU, VM and device blobs of a real tiny-guest snapshot (host /dev/kvm),
# each behind its selector byte (0 vCPU, 1 VM, 2 devices). Without /dev/kvm: no seeds, the fuzzer
# starts from nothing.
set -eu
out=$1
top=$(cd "$(dirname "$0")/../../.." && pwd)
K=${KEEL:-$top/build/keel}
TINY=${KEEL_BUILD:-$top/build}/tests/guest/tiny.elf
[ -c /dev/kvm ] && [ -f "$TINY" ] || exit 0
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
printf 'keel-disk-bytes!%0496d' 0 > "$t/disk"
"$K" vm run --kernel "$TINY" --mem 32 --cmdline "tiny=count n=3" --rng --disk "$t/disk" --snapshot-on "count 1." \
	--store "$t/s" --name t </dev/null >/dev/null 2>&1
"$K" manifest show --store "$t/s" t > "$t/m"
blob() { # SELECTOR FIELD NAME
	printf "\\x$1" > "$out/$3"
	"$K" store get "$t/s" "$(awk -v f="$2" '$1 == f { print $NF }' "$t/m")" >> "$out/$3"
}
blob 00 vcpu vcpu0
blob 01 vm-state vm
blob 02 devices devices
