#!/usr/bin/env bash
# Restore time with cgroup placement beside without, in the test appliance VM (the host's cgroup v2 has
# no controllers; nested KVM under TCG, so only the ratio means anything): `keel vm restore --timing` of
# the tiny guest, jailed as PID 1 runs it, alternately with and without --cgroup (the step PID 1's child
# takes: the manifest's limits written into its cgroup, joined). Runs only in `./build.sh bench`.
set -u
: "${KEEL_TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${KEEL:=$KEEL_TOP/build/keel}" "${KEEL_BUILD:=$KEEL_TOP/build}"
command -v qemu-system-x86_64 >/dev/null || { echo "limits: skipped (qemu-system-x86_64 not installed)"; exit 0; }
[ -f "$KEEL_BUILD/tests/guest/tiny.elf" ] || { echo "limits: skipped (no tiny guest)"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "N=${LIMITS_BENCH_RUNS:-15}" > "$tmp/inside.sh"
cat >> "$tmp/inside.sh" <<'IN'
mkdir -p /sys/fs/cgroup && mount -t cgroup2 -o ${CGOPT:-nsdelegate,favordynmods} cgroup2 /sys/fs/cgroup
S=/tmp/store
keel vm run --kernel /guest/tiny.elf --mem 128 --cmdline "tiny=count n=3" --snapshot-on "count 1." \
	--store $S --name t </dev/null >/dev/null 2>&1 || { echo "limits bench: snapshot failed"; exit 1; }
: > /tmp/plain; : > /tmp/cg
for i in $(seq $N); do
	keel vm restore --store $S t --timing </dev/null 2>>/tmp/plain >/dev/null
	keel vm restore --store $S t --timing --cgroup /sys/fs/cgroup/bench/t </dev/null 2>>/tmp/cg >/dev/null
done
# end to end: cgroup step + jail step + restore (restore call -> first guest exit); the cgroup's
# setup and its first mkdir are what PID 1 does once at boot, not per sandbox start
e2e() { awk '/timing: cgroup/ { c = $7 } /timing: jail/ { j = $3 }
	/ total / { for (i = 1; i <= NF; i++) if ($i == "total") t = $(i + 1); print c + j + t; c = 0 }' "$1" |
	sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
med() { grep -o "$1 [0-9.]* us" "$2" | awk '{ print $2 }' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
p=$(e2e /tmp/plain) c=$(e2e /tmp/cg)
echo "limits bench: restore (cgroup + jail + restore call -> first guest exit, median of $N, appliance VM): with cgroup placement $c us (cgroup step $(med cgroup /tmp/cg) us, restore $(med total /tmp/cg) us) vs without $p us (restore $(med total /tmp/plain) us) = $(awk "BEGIN { printf \"%.2f\", $c / $p }")"
IN
bash "$KEEL_TOP/tests/appliance/vmtest.sh" --timeout 600 --keel "$KEEL" \
	--add "$KEEL_BUILD/tests/guest/tiny.elf:/guest/tiny.elf" "$tmp/inside.sh" > "$tmp/log" 2>&1 ||
	{ echo "limits: bench run failed: $(tail -n 3 "$tmp/log" | tr '\n' ' ')"; exit 0; }
tr -d '\r' < "$tmp/log" | sed -n 's/^limits bench: /limits: /p'
