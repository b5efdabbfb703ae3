#!/usr/bin/env bash
# How long a good signed push (4 MiB, `keel push` in store mode) takes while the listener is under
# attack, beside the same push unattacked, in one run on one veth pair: a spoofed SYN flood
# (48 SYNs every 0.2 s from the attacker's LAN addresses) and slow senders (4 `want?` connections
# trickling a byte every 5 s, plus 8 garbage senders). Medians of 5 pushes each, printed as ratios.
set -u
: "${KEEL_TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${KEEL:=$KEEL_TOP/build/keel}"
. "$KEEL_TOP/tests/unit/net/netns.sh"
N=${KEEL_BENCH_ATTACK_PUSHES:-5}

if ! why=$(netns_usable); then
	echo "net_attack: skipped ($why)"
	exit 0
fi
command -v python3 >/dev/null || { echo "net_attack: skipped (python3 missing)"; exit 0; }
T=$(mktemp -d /tmp/keel-bench-attack-XXXXXX)
PIDS=()
stop_attack() {
	for p in "${PIDS[@]}"; do pkill -P "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	PIDS=()
}
cleanup() {
	stop_attack
	listener_stop
	netns_down
	rm -rf "$T"
}
trap cleanup EXIT
netns_up "y$$" $(( $$ % 200 + 23 )) || { echo "net_attack: skipped (no veth)"; exit 0; }
cd "$T"
W=$T/work S=$T/appliance
"$KEEL" store init "$W" && "$KEEL" store init "$S" && "$KEEL" key gen priv.pem pub.pem >/dev/null || exit 1
listener_start "$T/l" --ip "$APP_IP/24" --port 7070 --store "$S" --trust pub.pem || exit 1

echo 1800000000 > "$T/created"
# push_ms: one fresh 4 MiB signed version pushed; prints milliseconds, or "fail".
push_ms() {
	local id t0 t1 out
	created=$(( $(cat "$T/created") + 1 ))   # a file: push_ms runs in $(...) subshells
	echo "$created" > "$T/created"
	head -c 4194304 /dev/urandom > mem
	id=$("$KEEL" manifest create --store "$W" --name demo --memory-file mem --chunk 262144 --sign priv.pem \
		--created "$created") || { echo fail; return; }
	t0=$(date +%s%N)
	out=$(inb timeout 60 "$KEEL" push --to "$APP_IP:7070" --store "$W" --manifest "$id" 2>>"$T/push.err")
	t1=$(date +%s%N)
	[ "$out" = "ok $id" ] && echo $(( (t1 - t0) / 1000000 )) || echo fail
}
# median_ms LABEL: N pushes; prints the median (or "fail" if any failed).
median_ms() {
	local i v all=()
	for i in $(seq "$N"); do
		v=$(push_ms)
		[ "$v" = fail ] && { echo fail; return; }
		all+=("$v")
	done
	printf '%s\n' "${all[@]}" | sort -n | sed -n "$(( (N + 1) / 2 ))p"
}
ratio() { [ "$1" = fail ] && echo "push failed" || awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

base=$(median_ms)
[ "$base" = fail ] && { echo "net_attack: the unattacked push failed: $(tail -n 2 "$T/push.err" "$T/l.err" 2>/dev/null | tr "\n" " ")"; exit 1; }

inb bash -c "while :; do python3 '$KEEL_TOP/tests/integration/synflood.py' $APP_IP 7070 48 $NET_PFX; sleep 0.2; done" &
PIDS+=($!)
sleep 1
syn=$(median_ms)
stop_attack

for i in 1 2 3 4; do
	inb bash -c "{ printf 'want? 1 1\n'; while :; do printf 0; sleep 5; done; } | nc $APP_IP 7070 >/dev/null 2>&1" 2>/dev/null &
	PIDS+=($!)
done
for i in 1 2 3 4 5 6 7 8; do
	inb bash -c "while :; do head -c 4000000 /dev/urandom | timeout 20 nc $APP_IP 7070 >/dev/null 2>&1; done" 2>/dev/null &
	PIDS+=($!)
done
sleep 2
slow=$(median_ms)
stop_attack

echo "net_attack: good 4 MiB push, median of $N: unattacked $base ms"
echo "net_attack: under a SYN flood (48 spoofed SYNs every 0.2 s): $syn ms ($(ratio "$syn" "$base"))"
echo "net_attack: under 4 slow want? senders and 8 garbage senders: $slow ms ($(ratio "$slow" "$base"))"
