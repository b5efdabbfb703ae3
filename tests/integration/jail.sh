#!/usr/bin/env bash
# The jail, from outside and from inside: a running VMM (by hand and under PID 1) and the
# listener are read from /proc (seccomp, no_new_privs, capabilities, uid, namespaces, root); then
# build/keel-attack (keel with test-only hooks) makes each of them try what an attacker who owns
# it would. Every attempt is killed by the filter (SIGSYS) or fails (ENOENT/EROFS), PID 1 logs it
# and goes on, and a jailed listener cannot move a ref.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_TOP/tests/unit/net/netns.sh"

TINY=$KEEL_BUILD/tests/guest/tiny.elf
ATK=$KEEL_BUILD/keel-attack
[ -c /dev/kvm ] || { skip all "no /dev/kvm on this machine"; exit 0; }
[ "$(id -u)" = 0 ] || { skip all "the jail needs root"; exit 0; }
[ -x "$ATK" ] || { fail setup "build/keel-attack missing"; exit 0; }

S=$T_TMP/store
"$KEEL" vm run --kernel "$TINY" --store "$S" --cmdline "tiny=count n=100000 d=20000000" --snapshot-on "count 2." \
	--name slow </dev/null >/dev/null 2>"$T_TMP/snap.err" || { fail setup "snapshot: $(cat "$T_TMP/snap.err")"; exit 0; }
"$KEEL" vm run --kernel "$TINY" --store "$S" --cmdline "tiny=count n=6" --snapshot-on "count 2." \
	--name quick </dev/null >/dev/null 2>>"$T_TMP/snap.err" || { fail setup "snapshot: $(cat "$T_TMP/snap.err")"; exit 0; }

# confined PID UID: the checks every jailed process passes; prints what is wrong.
confined() {
	local p=$1 uid=$2 st ns a b
	st=$(cat "/proc/$p/status") || { echo "no process $p"; return 1; }
	echo "$st" | grep -q $'^Seccomp:\t2$' || echo "Seccomp is not 2"
	echo "$st" | grep -q $'^NoNewPrivs:\t1$' || echo "NoNewPrivs is not 1"
	for f in CapEff CapPrm CapBnd CapAmb CapInh; do
		echo "$st" | grep -q "^$f:"$'\t0000000000000000$' || echo "$f is not 0"
	done
	echo "$st" | grep -q "^Uid:"$'\t'"$uid"$'\t'"$uid" || echo "uid is not $uid"
	echo "$st" | grep -q "^Gid:"$'\t'"$uid"$'\t'"$uid" || echo "gid is not $uid"
	for ns in mnt net ipc uts; do
		a=$(readlink "/proc/$p/ns/$ns") b=$(readlink "/proc/1/ns/$ns")
		[ "$a" != "$b" ] || echo "its $ns namespace is PID 1's"
	done
	[ ! -e "/proc/$p/root/etc" ] || echo "its root has /etc: not the empty root"
	[ "$(stat -L -c %i "/proc/$p/root")" != "$(stat -c %i /)" ] || echo "its root is the host's /"
}
threads_filtered() { # PID: every thread of a running VMM added its own filter (2 filters)
	local t n=0
	for t in /proc/"$1"/task/*; do
		grep -q $'^Seccomp_filters:\t2$' "$t/status" || return 1
		n=$((n + 1))
	done
	[ "$n" -ge 2 ]
}

# ---- a VMM restored by hand ----
"$KEEL" vm restore --store "$S" slow </dev/null >"$T_TMP/r.out" 2>"$T_TMP/r.err" &
VP=$!
for _ in $(seq 50); do grep -q "count 4" "$T_TMP/r.out" && break; sleep 0.1; done
why=$(confined "$VP" 64900)
check "vm restore: jailed (seccomp, no_new_privs, no capabilities, uid 64900, own namespaces, empty root)" \
	test -z "$why"
[ -n "$why" ] && echo "$why"
check "vm restore: each running thread narrowed its own filter" threads_filtered "$VP"
check "vm restore: its root holds only the bound store" test "$(ls "/proc/$VP/root")" = src
kill -9 "$VP" 2>/dev/null; wait "$VP" 2>/dev/null
check_status "vm restore --no-jail still runs, with a warning" 0 "$KEEL" vm restore --no-jail --store "$S" quick
"$KEEL" vm restore --no-jail --store "$S" quick </dev/null 2>&1 >/dev/null | grep -q "unconfined" &&
	pass "vm restore --no-jail says it is unconfined" || fail "vm restore --no-jail says it is unconfined"

# ---- the VMM attacked from inside (its guest running, every filter in place) ----
# (the shell's own "Bad system call" line is not wanted in the log: hence the braces)
for a in shadow exec socket ptrace mount kill1; do
	{ KEEL_ATTACK=vmm:$a "$ATK" vm restore --store "$S" quick </dev/null >/dev/null 2>"$T_TMP/a.err"; st=$?; } 2>/dev/null
	check "vmm attack $a: killed by the filter (SIGSYS)" test "$st" = $((128 + 31))
done

# ---- PID 1: its sandbox's VMM jailed; an attack kills it, PID 1 logs, restarts and goes on ----
mkdir -p "$T_TMP/data"
B=$T_TMP/board.conf
printf '%s\n' "insecure-unsigned = yes" "data-dir = $T_TMP/data" "restart-backoff-ms = 100" "shutdown-timeout = 2" \
	"sandbox.slow.autostart = yes" "sandbox.slow.health-timeout = 0" > "$B"
cp -r "$S" "$T_TMP/data/store"
LOG=$T_TMP/init.log
start_pid1() { # BINARY [ENV...]
	local bin=$1; shift
	env "$@" unshare -fp --mount-proc "$bin" init --board "$B" > "$LOG" 2>&1 &
	UPID=$!
}
stop_pid1() { pkill -TERM -P "$UPID" 2>/dev/null; wait "$UPID" 2>/dev/null; }
wait_log() { for _ in $(seq "$((${2:-10} * 10))"); do grep -q -- "$1" "$LOG" && return 0; sleep 0.1; done; return 1; }

start_pid1 "$KEEL"
if wait_log "sandbox slow restored" 15; then
	VP=$(pgrep -f "keel init --board $B" | while read -r p; do
		grep -q $'^Seccomp:\t2$' "/proc/$p/status" 2>/dev/null && echo "$p"; done | head -n 1)
	why=$( [ -n "$VP" ] && confined "$VP" 64501 || echo "no jailed VMM found")
	check "PID 1's sandbox: its VMM is jailed as uid 64501 (slot 0)" test -z "$why"
	[ -n "$why" ] && echo "$why"
	check "PID 1's sandbox: each running thread narrowed its own filter" threads_filtered "$VP"
else
	fail "PID 1's sandbox restores jailed" "$(tail -n 5 "$LOG")"
fi
stop_pid1

start_pid1 "$ATK" KEEL_ATTACK=jail:refuse
check "PID 1: a jail the host refuses is logged" wait_log "not started: jail: slow: refused by the test hook" 15
sleep 2.5
check "PID 1: and retried later" test "$(grep -c "not started: jail: slow" "$LOG")" -ge 2
check "PID 1: and blames no snapshot (no failure record, no rollback)" \
	sh -c "! grep -Eq 'snapshot .* failed|rolling back|giving up' '$LOG' && [ ! -s '$T_TMP/data/keel-init-failed' ]"
stop_pid1

start_pid1 "$ATK" KEEL_ATTACK=vmm:kill1
check "PID 1: a VMM killed by its filter is logged as such" wait_log "a system call its jail forbids" 15
check "PID 1: and restarted with backoff" wait_log "restart 1/" 5
check "PID 1: still running after it" kill -0 "$UPID"
stop_pid1
check "PID 1: shuts down cleanly afterwards" grep -q "power off" "$LOG"

# ---- the listener: jailed child, attacked, and it cannot move a ref ----
netns_usable >/dev/null || { skip listener "no network namespaces here"; exit 0; }
cleanup() { listener_stop; netns_down; rm -rf "$T_TMP"; }
trap cleanup EXIT
netns_up "j$$" $(( $$ % 200 + 20 )) || { fail setup "veth pair"; exit 0; }
L=$T_TMP/lstore
"$KEEL" store init "$L" >/dev/null
if listener_start "$T_TMP/l" --ip "$APP_IP/24" --port 7070 --store "$L"; then
	LC=$(cat "/proc/$LPID/task/$LPID/children" 2>/dev/null | awk '{print $1}')
	why=$( [ -n "$LC" ] && confined "$LC" 64500 || echo "no listener child")
	check "listener: the child is jailed as uid 64500" test -z "$why"
	[ -n "$why" ] && echo "$why"
	check "listener: the privileged parent is not (it moves refs)" grep -q $'^Seccomp:\t0$' "/proc/$LPID/status"
	check "listener: refs/ is root's, objects/ the listener's" \
		test "$(stat -c %u "$L/refs"):$(stat -c %u "$L/objects")" = 0:64500
fi
listener_stop
# KIND WANT: the jailed listener under attack WHAT
for a in exec socket ptrace mount kill1; do
	: > "$T_TMP/la.err"
	KEEL_ATTACK=listener:$a ip netns exec "$NS_A" "$ATK" net listen --if "$IF_A" --ip "$APP_IP/24" --port 7070 \
		--store "$L" >/dev/null 2>"$T_TMP/la.err"; st=$?
	check "listener attack $a: killed by the filter (SIGSYS)" grep -q "killed by signal 31" "$T_TMP/la.err"
done
KEEL_ATTACK=listener:ref timeout 3 ip netns exec "$NS_A" "$ATK" net listen --if "$IF_A" --ip "$APP_IP/24" \
	--port 7070 --store "$L" >/dev/null 2>"$T_TMP/la.err"
check "listener attack ref: writing a ref fails (read-only in its jail)" grep -q "attack ref: Read-only file system" "$T_TMP/la.err"
check "listener attack ref: no ref appeared" test ! -e "$L/refs/demo"
KEEL_ATTACK=listener:shadow timeout 3 ip netns exec "$NS_A" "$ATK" net listen --if "$IF_A" --ip "$APP_IP/24" \
	--port 7070 --store "$L" >/dev/null 2>"$T_TMP/la.err"
check "listener attack shadow: /etc/shadow is not there" grep -q "attack shadow: No such file" "$T_TMP/la.err"
