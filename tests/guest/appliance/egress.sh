# Runs INSIDE the test appliance VM (tests/appliance/vmtest.sh): keel as PID 1 (`keel init`,
# development mode) lets sandbox guests (Debian kernel + busybox, tests/guest/scripts/web.sh)
# connect out only to what board.conf allows. The LAN is a namespace (lan.sh) with listeners and
# a resolver (lan-dnsd); the test drives each guest through its forwarded port's CGIs. Prints
# PASS/FAIL lines; exits 1 on any FAIL.
. /lib/keel-test/lan.sh
T=/tmp/egress; D=$T/data; S=$D/store; bad=0
K=/guest/vmlinux I=/guest/initramfs.cpio
CL="console=ttyS0 reboot=t panic=-1 quiet keel.cmd=web"
ME=192.168.50.1 LAN=192.168.50.2 API=192.168.50.3 EVIL=192.168.50.4 DNS=192.168.50.53
ok() { echo "PASS egress: $1"; }
no() { echo "FAIL egress: $1${2:+: $2}"; bad=1; }
wait_log() { i=0; while [ $i -lt $(($3 * 5)) ]; do grep -qE "$2" "$1" && return 0; sleep 0.2; i=$((i + 1)); done; return 1; }
mkdir -p $T $D
keel store init $S >/dev/null

id=$(timeout 150 keel vm run --kernel $K --initrd $I --mem 256 --snapshot-on "keel-test: web-up" --store $S \
	--name app --nic none --cmdline "$CL" </dev/null 2>$T/snap.log | tail -n 1)
[ -n "$id" ] || no "snapshot" "$(tail -n 3 $T/snap.log | tr '\n' ' ')"
keel store ref $S other $id >/dev/null
# two guests for bridge mode (their MACs differ: a snapshot's NIC MAC comes from its name), which
# ask the LAN's DHCP server for an address after restore
for b in br1 br2; do
	timeout 150 keel vm run --kernel $K --initrd $I --mem 256 --snapshot-on "keel-test: web-start" --store $S \
		--name $b --nic none --cmdline "$CL keel.addr=dhcp" </dev/null >/dev/null 2>$T/snap-$b.log ||
		no "snapshot $b" "$(tail -n 3 $T/snap-$b.log | tr '\n' ' ')"
done

lan_up $LAN/24 $API/24 $EVIL/24 $DNS/24
lan lan-dnsd $DNS api.example.test=$API evil.example.test=$EVIL > $T/dns.log 2>&1 &
mkdir -p $T/www && echo "hello from the LAN api" > $T/www/index.html
lan httpd -f -p $API:9002 -h $T/www &
cat > $T/udhcpd.conf <<EOF2
start 192.168.50.100
end 192.168.50.120
interface veth0
lease_file $T/leases
option subnet 255.255.255.0
EOF2
touch $T/leases
lan udhcpd -f $T/udhcpd.conf > $T/udhcpd.log 2>&1 &
# listeners on every LAN address (busybox nc binds no one address): 9001 may be reached from the
# guest at $LAN only; 9003 and 9005 never. Each notes its connections.
for p in 9003 9005; do
	lan sh -c "while :; do nc -l -p $p </dev/null >/dev/null 2>&1; echo $p >> $T/reached; sleep 0.1; done" &
done
lan sh -c "while :; do nc -l -p 9001 </dev/null >/dev/null 2>&1; echo 9001 >> $T/allowed; sleep 0.1; done" &

cat > $T/board.conf <<EOF2
data-dir = $D
insecure-unsigned = yes
verify = manifest
nic = vk
address = $ME/24
dns = $DNS
restart-backoff-ms = 100
net-stats = 3
sandbox.app.forward = 8080:80
sandbox.app.allow = $LAN:9001, api.example.test:9002
sandbox.app.health-timeout = 0
sandbox.other.forward = 8081:80
sandbox.other.allow = api.example.test:9002
sandbox.other.health-timeout = 0
bridge = yes
sandbox.br1.net = bridge
sandbox.br1.health-timeout = 0
sandbox.br2.net = bridge
sandbox.br2.health-timeout = 0
EOF2
keel init --board $T/board.conf > $T/init.log 2>&1 &
ipid=$!
cgi() { lan timeout ${3:-10} wget -q -O- "http://$ME:$1/cgi-bin/$2" 2>&1; }
secs() { sed -n 's/.* in \([0-9.]*\) s.*/\1/p'; }
under1() { awk "BEGIN{exit !(${1:-9} < 1.0)}"; }
wait_log $T/init.log 'listener ready' 120 && wait_log $T/init.log 'sandbox other restored' 60 ||
	no "sandboxes and the network process up" "$(tail -n 5 $T/init.log | tr '\n' ' ')"
i=0; until [ "$(cgi 8080 count)" = "count 1" ] || [ $i -ge 50 ]; do sleep 0.2; i=$((i + 1)); done

# allowed: an address:port, a name:port (resolved by keel's DNS at the router)
r=$(cgi 8080 "try?$LAN:9001")
[ "${r%% *}" = rc=0 ] && [ -s $T/allowed ] && ok "the guest reaches an allowed address:port ($r)" ||
	no "allowed address:port" "'$r'"
r=$(cgi 8080 "fetch?api.example.test:9002/index.html")
[ "$r" = "hello from the LAN api" ] && grep -q "query api.example.test" $T/dns.log &&
	ok "the guest reaches an allowed name's port over HTTP, resolved through keel's DNS" ||
	no "allowed name" "'$r'; resolver saw: $(tr '\n' ' ' < $T/dns.log)"
# refused: a host not listed, a listed name's other port; fast, logged, counted
r=$(cgi 8080 "try?$EVIL:9005")
t=$(echo "$r" | secs)
[ "${r%% *}" != rc=0 ] && under1 "$t" && grep -q "sandbox app: connection to $EVIL:9005 refused" $T/init.log &&
	ok "a host not on the list is refused in $t s and logged" || no "host not listed" "'$r'; $(grep refused $T/init.log | tail -n 2)"
r=$(cgi 8080 "try?api.example.test:9003")
t=$(echo "$r" | secs)
[ "${r%% *}" != rc=0 ] && under1 "$t" && grep -q "connection to $API:9003 refused" $T/init.log &&
	ok "a listed name's unlisted port is refused in $t s" || no "unlisted port" "'$r'"
# the attack on a name rule: the other sandbox connects to the name's address without asking
r=$(cgi 8081 "try?$API:9002")
[ "${r%% *}" != rc=0 ] && grep -q "sandbox other: connection to $API:9002 refused" $T/init.log &&
	ok "a name rule does not let a guest connect by address before keel resolved the name for it" ||
	no "address bypass of a name rule" "'$r'"
r=$(cgi 8081 "fetch?api.example.test:9002/index.html")
[ "$r" = "hello from the LAN api" ] && ok "... and it does once the guest asked keel's DNS" || no "other by name" "'$r'"
# names not listed fail at the router and never reach the resolver
r=$(cgi 8080 "lookup?evil.example.test")
t=$(echo "$r" | secs)
if echo "$r" | grep -qi "NXDOMAIN\|can't find" && under1 "$t" && ! grep -q "query evil" $T/dns.log &&
	grep -q "sandbox app: DNS name evil.example.test refused" $T/init.log; then
	ok "a name not listed gets NXDOMAIN in $t s from keel and never reaches the resolver"
else
	no "unlisted name" "'$(echo "$r" | tr '\n' ' ')'; resolver saw: $(tr '\n' ' ' < $T/dns.log)"
fi
[ ! -s $T/reached ] && ok "nothing refused reached the LAN" || no "refused connections reached the LAN" "$(cat $T/reached)"

# bridge mode: each guest takes a lease from the LAN's DHCP server and answers on it; neither
# ever sees the other's frames (its ARP for the other is never answered)
lease() { wait_log $T/init.log "$1\\| keel-test: lease" 60 &&
	sed -n "s/.*$1| keel-test: lease \([0-9.]*\).*/\1/p" $T/init.log | tail -n 1; }
a1=$(lease br1) a2=$(lease br2)
r=$(lan timeout 10 wget -q -O- "http://$a1/index.html" 2>&1)
r2=$(lan timeout 10 wget -q -O- "http://$a2/index.html" 2>&1)
if [ -n "$a1" ] && [ -n "$a2" ] && [ "$r" = "hello from keel-guest" ] && [ "$r2" = "$r" ]; then
	ok "bridged guests take LAN addresses from a DHCP server on the LAN ($a1, $a2) and answer on them"
else
	no "bridged guests on the LAN" "leases '$a1' '$a2', answers '$r' '$r2'; $(grep 'br[12]|' $T/init.log | tail -n 4 | tr '\n' ' ')"
fi
if [ -n "$a1" ] && [ -n "$a2" ]; then
	r=$(lan timeout 10 wget -q -O- "http://$a2/cgi-bin/try?$a1:80" 2>&1)
	n1=$(lan timeout 10 wget -q -O- "http://$a1/cgi-bin/neigh" 2>&1)
	if [ "${r%% *}" != rc=0 ] && ! echo "$n1" | grep -q "$a2"; then
		ok "a bridged guest never reaches the other ($r); the other has no trace of it"
	else
		no "bridged guests isolated" "try: '$r'; br1's neighbours: $(echo "$n1" | tr '\n' ' ')"
	fi
fi

# 10 000 attempts to 256 denied destinations: keel's network process and the other sandbox keep
# running, the log stays bounded
npid=$(sed -n 's/.*listener: started on .*(pid \([0-9]*\)).*/\1/p' $T/init.log | tail -n 1)
lines0=$(wc -l < $T/init.log)
r=$(cgi 8080 "storm?198.51.100.0:443:10000:256" 600)
echo "measured: $r"
n=$(echo "$r" | sed -n 's/.*: \([0-9]*\) refused.*/\1/p')
lines=$(tail -n +$((lines0 + 1)) $T/init.log | grep -vc " link: to the guest")   # not net-stats' lines
logged=$(grep -c "sandbox app: connection to 198.51.100" $T/init.log)
if [ "${n:-0}" = 10000 ] && kill -0 "$npid" 2>/dev/null && cgi 8081 count | grep -q "^count [0-9]" && [ "$logged" -le 32 ] &&
	[ "$lines" -le 40 ]; then
	ok "10000 refused connections: all refused, network process (pid $npid) and the other sandbox still up, $lines log lines"
else
	no "connection storm" "refused ${n:-?}, pid $npid alive: $(kill -0 "$npid" 2>/dev/null && echo yes || echo no), $lines lines, $logged about it"
fi
r=$(cgi 8080 "try?$LAN:9001")
[ "${r%% *}" = rc=0 ] && ok "the stormed sandbox still reaches what it may" || no "after the storm" "'$r'"

# the counters on the console while it runs (net-stats = 3: every 3 s, the links whose counters moved)
if wait_log $T/init.log "listener: sandbox app link: .* [1-9][0-9]{4} connections out refused" 10; then
	ok "the console shows each link's counters while it runs: $(grep 'listener: sandbox app link:' $T/init.log | tail -n 1 | cut -c1-120)..."
else
	no "counters on the console while running" "$(grep 'link:' $T/init.log | tail -n 2 | tr '\n' ' ')"
fi
kill -TERM $ipid
i=0; while kill -0 $ipid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
c=$(grep "listener: sandbox app link:" $T/init.log | tail -n 1)
echo "egress: $c"
refused=$(echo "$c" | sed -n 's/.* \([0-9]*\) connections out refused.*/\1/p')
[ "${refused:-0}" -ge 10000 ] && ok "the shutdown line counts the refusals ($refused)" || no "counters at shutdown" "'$c'"
lan_down
if [ $bad != 0 ]; then
	echo "--- init.log"; grep -v 'keel-test: probe' $T/init.log | tail -n 60
fi
exit $bad
