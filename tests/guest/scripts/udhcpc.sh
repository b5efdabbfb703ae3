# udhcpc's event script (web.sh with keel.addr=dhcp): the lease's address, mask and router.
case $1 in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	[ -n "$router" ] && ip route add default via "${router%% *}"
	echo "keel-test: lease $ip/${mask:-24} router $router"
	;;
esac
