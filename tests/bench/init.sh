#!/usr/bin/env bash
# keel init (PID 1 of a PID namespace) from its start to every sandbox restored, for 1, 4 and 16
# tiny-guest sandboxes of 128 MiB on the host's /dev/kvm, against a shell that launches the same
# `keel vm restore --ready-fd` children itself; and PID 1's RSS with 16 sandboxes running.
set -u
: "${KEEL_TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${KEEL:=$KEEL_TOP/build/keel}"
: "${KEEL_BUILD:=$KEEL_TOP/build}"
TINY=$KEEL_BUILD/tests/guest/tiny.elf

[ -c /dev/kvm ] || { echo "init: skipped (no /dev/kvm)"; exit 0; }
[ -f "$TINY" ] || { echo "init: skipped (no tiny guest at $TINY)"; exit 0; }
unshare -fp --mount-proc true 2>/dev/null || { echo "init: skipped (no PID namespaces)"; exit 0; }
T=$(mktemp -d /tmp/keel-bench-init-XXXXXX)
UPID=
cleanup() {
	[ -n "$UPID" ] && kill "$UPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

# One snapshot of a spinning tiny guest with 128 MiB; 16 refs to it (one per sandbox).
S=$T/data/store
mkdir -p "$T/data"
# GUEST=spin makes every sandbox burn a CPU (16 spinning guests on a 2-CPU host then starve the
# later restores); the default, idle, is a guest halted the way an idle service waits.
GUEST=${INIT_BENCH_GUEST:-idle}
# These machines run other work beside the bench: the timed runs get SCHED_FIFO (chrt) where
# allowed, keel and its peer alike, so the figures are their own cost rather than the run queue's.
RT=
chrt -f 10 true 2>/dev/null && RT="chrt -f 10"
[ "$GUEST" = spin ] && RT=   # 16 spinning real-time guests would starve the host
id=$("$KEEL" vm run --kernel "$TINY" --cmdline "tiny=$GUEST" --mem 128 --store "$S" --snapshot-on "tiny: hello" \
	--name g </dev/null 2>"$T/snap.err" | tail -n 1)
if [ "${#id}" != 64 ]; then
	echo "init: skipped (tiny guest snapshot failed: $(head -c 200 "$T/snap.err"))"
	exit 0
fi
for i in $(seq 0 15); do "$KEEL" store ref "$S" "g$i" "$id" >/dev/null; done

# ms between the timeline's "init start" and the last "restored" line of a log.
span() {
	awk '/\] init start/ { gsub(/\[|\]/, "", $2); s = $2 } / restored \(/ { gsub(/\[|\]/, "", $2); e = $2; n++ }
	     END { if (n) printf "%.2f %d", e - s, n; else print "0 0" }' "$1"
}

# rss_kib PID
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

run_init() { # N -> prints "MS COUNT RSS"
	local n=$1 conf=$T/b$1.conf log=$T/b$1.log kpid= i
	{
		echo "data-dir = $T/data"
		echo "verify = manifest"
		echo "insecure-unsigned = yes"
		echo "shutdown-timeout = 2"
		for i in $(seq 0 $((n - 1))); do echo "sandbox.g$i.health-timeout = 0"; done
	} > "$conf"
	$RT unshare -fp --mount-proc "$KEEL" init --board "$conf" > "$log" 2>&1 &
	UPID=$!
	for i in $(seq 400); do
		[ -z "$kpid" ] && kpid=$(awk '{print $1}' /proc/$UPID/task/$UPID/children 2>/dev/null)
		[ "$(grep -c ' restored (' "$log")" -ge "$n" ] && break
		sleep 0.025
	done
	[ -z "$kpid" ] && kpid=$(awk '{print $1}' /proc/$UPID/task/$UPID/children 2>/dev/null)
	local rss
	rss=$(rss_kib "$kpid")
	kill -TERM "$kpid" 2>/dev/null
	wait "$UPID" 2>/dev/null
	UPID=
	echo "$(span "$log") ${rss:-0}"
}

# The peer: bash starts the N restores itself and waits for each "restored" on its ready pipe.
run_shell() { # N -> ms
	local n=$1 i t0 t1
	t0=$(date +%s%N)
	for i in $(seq 0 $((n - 1))); do
		mkfifo "$T/f$i"
		$RT "$KEEL" vm restore --store "$S" "g$i" --ready-fd 3 </dev/null >/dev/null 2>&1 3>"$T/f$i" &
		echo $! > "$T/p$i"
	done
	for i in $(seq 0 $((n - 1))); do head -n 1 "$T/f$i" >/dev/null; done
	t1=$(date +%s%N)
	for i in $(seq 0 $((n - 1))); do kill "$(cat "$T/p$i")" 2>/dev/null; rm -f "$T/f$i" "$T/p$i"; done
	wait 2>/dev/null
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e6 }'
}

for n in 1 4 16; do
	read -r ms got rss < <(run_init "$n")
	if [ "$got" != "$n" ]; then
		echo "init: $n sandboxes: only $got restored (see a rerun with the log kept)"
		continue
	fi
	peer=$(run_shell "$n")
	echo "init start to $n sandboxes restored (128 MiB $GUEST tiny guests): keel init ${ms} ms vs shell-launched restores ${peer} ms = $(awk -v a="$ms" -v b="$peer" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
	[ "$n" = 16 ] && echo "PID-1 RSS with 16 sandboxes: keel init ${rss} KiB vs goal 4096 KiB = $(awk -v a="$rss" 'BEGIN { printf "%.2f", a / 4096 }')"
done
exit 0
