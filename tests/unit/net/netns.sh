# Shared by tests/integration/net*.sh and tests/bench/net.sh (sourced, not run):
# two network namespaces joined by a veth pair. The appliance side (NS_A, IF_A)
# gets no kernel address: keel's lwIP owns it. The client side (NS_B, IF_B) is
# an ordinary kernel interface with ${NET_PFX}.1/24.

# netns_usable: 0 when this host lets us make namespaces and veth pairs (prints why not otherwise).
netns_usable() {
	[ "$(id -u)" = 0 ] || { echo "needs root for network namespaces"; return 1; }
	command -v ip >/dev/null || { echo "iproute2 (ip) missing"; return 1; }
	local t=keelprobe$$
	ip netns add "$t" 2>/dev/null || { echo "cannot create network namespaces here"; return 1; }
	ip netns del "$t"
	return 0
}

# netns_or_skip [TOOL...]: in a test script (tests/lib.sh sourced): the whole test is one SKIP line
# and the script ends unless network namespaces work here and every TOOL is installed.
netns_or_skip() {
	local why t
	why=$(netns_usable) || { skip all "$why"; exit 0; }
	for t in "$@"; do
		command -v "$t" >/dev/null || { skip all "$t is not installed"; exit 0; }
	done
}

# netns_up SUFFIX SUBNET_OCTET: sets NS_A NS_B IF_A IF_B NET_PFX APP_IP.
netns_up() {
	local sfx=$1 oct=$2
	NS_A=keel-a-$sfx NS_B=keel-b-$sfx IF_A=ka$sfx IF_B=kb$sfx
	NET_PFX=10.77.$oct APP_IP=10.77.$oct.2
	ip netns add "$NS_A" && ip netns add "$NS_B" || return 1
	ip link add "$IF_A" netns "$NS_A" type veth peer name "$IF_B" netns "$NS_B" || return 1
	ip -n "$NS_B" addr add "$NET_PFX.1/24" dev "$IF_B"
	ip -n "$NS_B" link set lo up
	ip -n "$NS_B" link set "$IF_B" up
	ip -n "$NS_A" link set lo up
	ip -n "$NS_A" link set "$IF_A" up
}

netns_down() {
	[ -n "${NS_A:-}" ] && ip netns del "$NS_A" 2>/dev/null
	[ -n "${NS_B:-}" ] && ip netns del "$NS_B" 2>/dev/null
	true
}

ina() { ip netns exec "$NS_A" "$@"; }
inb() { ip netns exec "$NS_B" "$@"; }

# listener_start LOGPREFIX ARGS...: runs `keel net listen` in NS_A; waits for its "listening" line.
# Sets LPID. Returns 1 (and shows the log) if it does not come up in 10 s.
listener_start() {
	local log=$1; shift
	: > "$log.out"
	ip netns exec "$NS_A" "$KEEL" net listen --if "$IF_A" "$@" > "$log.out" 2> "$log.err" &
	LPID=$!
	for _ in $(seq 100); do
		grep -q '^listening ' "$log.out" && return 0
		kill -0 "$LPID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$log.err" >&2
	return 1
}

listener_stop() {
	[ -n "${LPID:-}" ] || return 0
	kill "$LPID" 2>/dev/null
	wait "$LPID" 2>/dev/null
	LPID=
}

# rss_kib PID: resident set size of a process in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
