#!/usr/bin/env bash
# keel's link layer choices: an address from DHCP (lwIP's client against busybox udhcpd), IPv6
# link-local ping, and a TAP device instead of AF_PACKET.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_TOP/tests/unit/net/netns.sh"

netns_or_skip

cleanup() {
	listener_stop
	[ -n "${DPID:-}" ] && kill "$DPID" 2>/dev/null
	netns_down
	rm -rf "$T_TMP"
}
trap cleanup EXIT
netns_up "l$$" $(( $$ % 200 + 23 )) || { fail setup "cannot create the veth pair"; exit 0; }
cd "$T_TMP"
S=$T_TMP/appliance W=$T_TMP/work
"$KEEL" store init "$S" && "$KEEL" store init "$W" && "$KEEL" key gen priv.pem pub.pem >/dev/null ||
	{ fail setup "store/key"; exit 0; }
head -c 300000 /dev/urandom > mem
id=$("$KEEL" manifest create --store "$W" --name demo --memory-file mem --chunk 65536 --sign priv.pem)
"$KEEL" pack send --store "$W" --manifest "$id" > demo.pack
if command -v ping >/dev/null; then PING=ping; else PING="busybox ping"; fi

# ---- DHCP
if busybox udhcpd --help 2>&1 | grep -q udhcpd; then
	cat > udhcpd.conf <<-EOF
	start $NET_PFX.100
	end $NET_PFX.110
	interface $IF_B
	max_leases 10
	lease_file $T_TMP/leases
	pidfile $T_TMP/udhcpd.pid
	option subnet 255.255.255.0
	option lease 600
	EOF
	touch leases
	inb busybox udhcpd -f udhcpd.conf >udhcpd.log 2>&1 &
	DPID=$!
	if listener_start "$T_TMP/ld" --dhcp --port 7070 --store "$S" --trust pub.pem; then
		ip=$(sed -n 's/^listening \(.*\):7070$/\1/p' "$T_TMP/ld.out")
		check dhcp_lease_from_the_pool sh -c "case '$ip' in $NET_PFX.10[0-9]|$NET_PFX.110) true;; *) false;; esac"
		check dhcp_address_answers_ping inb $PING -c 2 -W 2 "$ip"
		check push_to_dhcp_address_ok [ "$(inb "$KEEL" push --to "$ip:7070" demo.pack 2>/dev/null)" = "ok $id" ]
	else
		fail dhcp_listener_comes_up "no lease within 10 s: $(tail -n 2 "$T_TMP/ld.err" | tr '\n' ' ')"
	fi
	listener_stop
	kill "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; DPID=
else
	skip dhcp "busybox has no udhcpd"
fi

# ---- IPv6 link-local (lwIP derives it from the interface MAC, EUI-64)
if listener_start "$T_TMP/l6" --ip "$APP_IP/24" --port 7070 --store "$S" --trust pub.pem; then
	mac=$(ip -n "$NS_A" -o link show "$IF_A" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
	IFS=: read -r a b c d e f <<< "$mac"
	ll=$(printf 'fe80::%x:%x:%x:%x' $(( (0x$a ^ 2) << 8 | 0x$b )) $(( 0x$c << 8 | 0xff )) \
		$(( 0xfe << 8 | 0x$d )) $(( 0x$e << 8 | 0x$f )))
	sleep 2 # duplicate address detection
	check ipv6_link_local_answers_ping inb $PING -6 -c 2 -W 2 "$ll%$IF_B"
	check kernel_ipv6_is_off_on_the_appliance_interface \
		[ "$(ina cat "/proc/sys/net/ipv6/conf/$IF_A/disable_ipv6")" = 1 ]
	listener_stop
fi

# ---- TAP: lwIP behind /dev/net/tun, the kernel on the other end in the same namespace
if [ -c /dev/net/tun ]; then
	tap=kt$$
	ip netns exec "$NS_A" "$KEEL" net listen --if "tap:$tap" --ip 10.88.0.2/24 --port 7070 --store "$S" --trust pub.pem \
		> tap.out 2> tap.err &
	LPID=$!
	for _ in $(seq 50); do grep -q listening tap.out && break; sleep 0.1; done
	ina ip addr add 10.88.0.1/24 dev "$tap" && ina ip link set "$tap" up
	check tap_listener_answers_ping ina $PING -c 2 -W 2 10.88.0.2
	check push_over_tap_ok [ "$(ina "$KEEL" push --to 10.88.0.2:7070 demo.pack 2>/dev/null)" = "ok $id" ]
	listener_stop
else
	skip tap "no /dev/net/tun"
fi
