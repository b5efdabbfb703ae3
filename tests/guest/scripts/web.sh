# Web test guest: eth0 gets keel.addr (default 10.0.2.15/24) with keel.gw (default 10.0.2.2) as its
# router, or a DHCP lease with keel.addr=dhcp; busybox httpd serves /www on port 80 with a CGI
# counter (/cgi-bin/count: "count N", one more per request) and /cgi-bin/big (keel.big= MiB of
# zeros, default 256, streamed: nothing is kept in guest memory).
# "keel-test: web-start" comes before the network is configured (a snapshot there takes its lease
# after restore), "keel-test: web-up" once httpd runs. keel.probe=HOST:PORT then tries a TCP
# connection out to HOST:PORT every 2 s and says how it ended and how long it took.
# The egress CGIs act for a test on the LAN side, through a forwarded port (query string after ?):
#   /cgi-bin/try?HOST:PORT      a TCP connection out (names resolve through the router's DNS):
#                               "rc=N in S s"
#   /cgi-bin/fetch?HOST:PORT/P  wget of http://HOST:PORT/P: its first line, or "failed rc=N in S s"
#   /cgi-bin/storm?A:PORT:N:K   storm (tests/guest/tools/storm.c): N connections to A..A+K-1
#   /cgi-bin/lookup?NAME        nslookup NAME at the router: its answer lines, "rc=N in S s"
#   /cgi-bin/neigh              the guest's neighbour table (ip neigh)
#   /cgi-bin/pull?HOST:PORT/P   downloads http://HOST:PORT/P: "pulled BYTES in S s"
addr=10.0.2.15/24 gw=10.0.2.2 big=256 probe=
for a in $(cat /proc/cmdline); do
	case $a in
	keel.addr=*) addr=${a#keel.addr=} ;; keel.gw=*) gw=${a#keel.gw=} ;;
	keel.big=*) big=${a#keel.big=} ;; keel.probe=*) probe=${a#keel.probe=} ;;
	esac
done
up() { cut -d' ' -f1 /proc/uptime; }
mkdir -p /www/cgi-bin
echo "hello from keel-guest" > /www/index.html
cat > /www/cgi-bin/count <<'CGI'
#!/bin/sh
n=$(cat /tmp/count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > /tmp/count
printf 'Content-Type: text/plain\r\n\r\ncount %s\n' "$n"
CGI
cat > /www/cgi-bin/big <<CGI
#!/bin/sh
printf 'Content-Type: application/octet-stream\r\nContent-Length: %s\r\n\r\n' $((big * 1048576))
dd if=/dev/zero bs=65536 count=$((big * 16)) 2>/dev/null
CGI
cat > /www/cgi-bin/try <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
a=$(echo "$QUERY_STRING" | tr -cd 'A-Za-z0-9.:-'); t0=$(cut -d' ' -f1 /proc/uptime)
nc -w 3 "${a%:*}" "${a##*:}" </dev/null >/dev/null 2>&1; rc=$?
echo "rc=$rc in $(awk "BEGIN{print $(cut -d' ' -f1 /proc/uptime) - $t0}") s"
CGI
cat > /www/cgi-bin/fetch <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
a=$(echo "$QUERY_STRING" | tr -cd 'A-Za-z0-9.:/_-'); t0=$(cut -d' ' -f1 /proc/uptime)
r=$(timeout 5 wget -q -O- "http://$a" 2>/dev/null); rc=$?
[ $rc = 0 ] && echo "$r" | head -n 1 || echo "failed rc=$rc in $(awk "BEGIN{print $(cut -d' ' -f1 /proc/uptime) - $t0}") s"
CGI
cat > /www/cgi-bin/storm <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
IFS=: read -r a p n k <<EOF
$(echo "$QUERY_STRING" | tr -cd '0-9.:')
EOF
storm "$a" "$p" "$n" "$k"
CGI
cat > /www/cgi-bin/lookup <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
a=$(echo "$QUERY_STRING" | tr -cd 'A-Za-z0-9.-'); t0=$(cut -d' ' -f1 /proc/uptime)
timeout 5 nslookup "$a" 10.0.2.2 2>&1 | grep -i 'address\|find\|NXDOMAIN\|refused' | grep -v '10.0.2.2'
echo "rc=$? in $(awk "BEGIN{print $(cut -d' ' -f1 /proc/uptime) - $t0}") s"
CGI
cat > /www/cgi-bin/pull <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
a=$(echo "$QUERY_STRING" | tr -cd 'A-Za-z0-9.:/_-'); t0=$(cut -d' ' -f1 /proc/uptime)
b=$(wget -q -O- "http://$a" 2>/dev/null | wc -c)
echo "pulled $b in $(awk "BEGIN{print $(cut -d' ' -f1 /proc/uptime) - $t0}") s"
CGI
cat > /www/cgi-bin/neigh <<'CGI'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
ip neigh
CGI
chmod +x /www/cgi-bin/pull /www/cgi-bin/neigh /www/cgi-bin/count /www/cgi-bin/big /www/cgi-bin/try /www/cgi-bin/fetch /www/cgi-bin/storm /www/cgi-bin/lookup
if [ ! -e /sys/class/net/eth0 ]; then
	echo "keel-test: no eth0 (interfaces: $(ls /sys/class/net | tr '\n' ' '))"
fi
echo "keel-test: web-start"
ip link set lo up
ip link set eth0 up 2>/dev/null
if [ "$addr" = dhcp ]; then
	chmod +x /etc/keel/udhcpc.sh
	udhcpc -i eth0 -n -q -t 10 -T 1 -s /etc/keel/udhcpc.sh 2>&1 | grep keel-test || echo "keel-test: no DHCP lease"
else
	ip addr add "$addr" dev eth0 2>/dev/null
	ip route add default via "$gw" 2>/dev/null
	echo "nameserver $gw" > /etc/resolv.conf
fi
httpd -p 80 -h /www
echo "keel-test: net $(ip -4 addr show dev eth0 2>/dev/null | sed -n 's/.*inet \([0-9./]*\).*/\1/p') mac $(cat /sys/class/net/eth0/address 2>/dev/null)"
echo "keel-test: web-up"
if [ -n "$probe" ]; then
	while :; do
		sleep 2
		t0=$(up)
		nc -w 3 "${probe%:*}" "${probe#*:}" </dev/null >/dev/null 2>&1
		rc=$?
		echo "keel-test: probe $probe rc=$rc in $(awk "BEGIN{print $(up) - $t0}") s"
	done
fi
