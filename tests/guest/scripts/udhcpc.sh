# udhcpc's event script (web.sh with keel.addr=dhcp): the lease's address, mask, router and DNS server.
case $1 in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	[ -n "$router" ] && ip route add default via "${router%% *}"
	[ -n "$dns" ] && echo "nameserver ${dns%% *}" > /etc/resolv.conf
	echo "keel-test: lease $ip/${mask:-24} router $router dns $dns"
	;;
esac
