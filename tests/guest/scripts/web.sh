# Web test guest: eth0 gets keel.addr (default 10.0.2.15/24) with keel.gw (default 10.0.2.2) as its
# router, or a DHCP lease with keel.addr=dhcp; busybox httpd serves /www on port 80 with a CGI
# counter (/cgi-bin/count: "count N", one more per request) and /big (keel.big= MiB of zeros).
addr=10.0.2.15/24 gw=10.0.2.2 big=0
for a in $(cat /proc/cmdline); do
	case $a in keel.addr=*) addr=${a#keel.addr=} ;; keel.gw=*) gw=${a#keel.gw=} ;; keel.big=*) big=${a#keel.big=} ;; esac
done
ip link set lo up
ip link set eth0 up || { echo "keel-test: no eth0"; ls /sys/class/net; }
if [ "$addr" = dhcp ]; then
	udhcpc -i eth0 -n -q -t 5 -s /etc/keel/udhcpc.sh || echo "keel-test: no DHCP lease"
else
	ip addr add "$addr" dev eth0
	ip route add default via "$gw"
fi
mkdir -p /www/cgi-bin
echo "hello from keel-guest" > /www/index.html
cat > /www/cgi-bin/count <<'CGI'
#!/bin/sh
n=$(cat /tmp/count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > /tmp/count
printf 'Content-Type: text/plain\r\n\r\ncount %s\n' "$n"
CGI
chmod +x /www/cgi-bin/count
[ "$big" -gt 0 ] && dd if=/dev/zero of=/www/big bs=1M count="$big" 2>/dev/null
httpd -p 80 -h /www
echo "keel-test: net $(ip -4 addr show dev eth0 | sed -n 's/.*inet \([0-9./]*\).*/\1/p') mac $(cat /sys/class/net/eth0/address)"
echo "keel-test: web-up"
