# Sourced by the appliance scripts (inside the test appliance VM): the LAN is a network namespace,
# held by a sleeping process, behind a veth pair: vk is keel's board NIC, veth0 the LAN's side
# (busybox ip names the peer veth0 whatever it is asked). Functions:
#   lan_up ADDR/P...   makes it, with these addresses on veth0; sets $ns (the holder's pid)
#   lan CMD...         runs CMD in the LAN namespace
#   lan_down           ends it
lan() { nsenter -t "$ns" -n "$@"; }
lan_up() {
	ip link add vk type veth peer vl
	unshare -n sleep 100000 &
	ns=$!
	sleep 0.3
	ip link set veth0 netns "$ns"
	ip link set vk up
	lan ip link set lo up
	lan ip link set veth0 up
	for a in "$@"; do lan ip addr add "$a" dev veth0; done
}
lan_down() { kill "$ns" 2>/dev/null; ip link del vk 2>/dev/null; return 0; }
