# Runs INSIDE the test appliance VM (tests/appliance/vmtest.sh): keel as PID 1 (`keel init`,
# development mode) gives sandboxes with policy-net on a private nat link and forwards the
# appliance's ports to them. The LAN is a namespace behind a veth pair; the guests are the Debian
# kernel + busybox httpd (tests/guest/scripts/web.sh). Prints PASS/FAIL lines; exits 1 on any FAIL.
T=/tmp/nic; D=$T/data; S=$D/store; bad=0
K=/guest/vmlinux I=/guest/initramfs.cpio
CL="console=ttyS0 reboot=t panic=-1 quiet keel.cmd=web"
LAN=192.168.50.2 ME=192.168.50.1
ok() { echo "PASS nic: $1"; }
no() { echo "FAIL nic: $1${2:+: $2}"; bad=1; }
up() { cut -d' ' -f1 /proc/uptime; }
wait_log() { i=0; while [ $i -lt $(($3 * 5)) ]; do grep -qE "$2" "$1" && return 0; sleep 0.2; i=$((i + 1)); done; return 1; }
mkdir -p $T $D
keel store init $S >/dev/null

snap() { # NAME MARKER [vm run options]
	n=$1 m=$2; shift 2
	timeout 150 keel vm run --kernel $K --initrd $I --mem 256 --snapshot-on "$m" --store $S --name "$n" "$@" \
		</dev/null > $T/snap-$n.log 2>&1 || no "snapshot $n" "$(tail -n 3 $T/snap-$n.log | tr '\n' ' ')"
	tail -n 1 $T/snap-$n.log
}
# httpd already serving when the snapshot is taken; its NIC without link until PID 1 gives it one
id=$(snap web "keel-test: web-up" --nic none --cmdline "$CL keel.probe=$LAN:9999")
keel store ref $S web2 $id >/dev/null
keel store ref $S web3 $id >/dev/null
# the network configured after restore, from keel's DHCP answer
snap webd "keel-test: web-start" --nic none --cmdline "$CL keel.addr=dhcp" >/dev/null
# no NIC at all (policy-net off)
snap nonet "keel-test: web-up" --cmdline "$CL" >/dev/null
grep -q "keel-test: no eth0" $T/snap-nonet.log && ok "a guest snapshotted without --nic has no NIC" ||
	no "a guest snapshotted without --nic has no NIC"

# The LAN: a namespace behind veth pair vk (keel's) <-> veth0 (lan.sh).
. /lib/keel-test/lan.sh
lan_up $LAN/24
# a listener on the LAN that no guest may reach (no outbound traffic in nat mode)
lan sh -c "while :; do nc -l -p 9999 </dev/null >> $T/reached 2>&1; echo connection >> $T/reached; done" &
lanl=$!

cat > $T/board.conf <<EOF
data-dir = $D
insecure-unsigned = yes
verify = manifest
nic = vk
address = $ME/24
listener-plaintext = yes
port = 7070
restart-backoff-ms = 100
sandbox.web.forward = 8080:80
sandbox.web.health-timeout = 0
sandbox.web2.forward = 8081:80
sandbox.web2.forward = 8082:80
sandbox.web2.health-timeout = 0
sandbox.web3.net = none
sandbox.web3.health-timeout = 0
sandbox.webd.forward = 8090:80
sandbox.webd.health-timeout = 0
sandbox.nonet.health-timeout = 0
EOF
keel init --board $T/board.conf > $T/init.log 2>&1 &
ipid=$!
get() { lan timeout 5 wget -q -O- "http://$ME:$1$2" 2>&1; }
# Seconds from now until the forwarded port 8080 answers (polled), or nothing within 5 s.
answer_after() {
	t0=$(up)
	for i in $(seq 1 100); do
		r=$(lan timeout 2 wget -q -O- "http://$ME:8080/index.html" 2>/dev/null)
		[ "$r" = "hello from keel-guest" ] && { awk "BEGIN{print $(up) - $t0}"; return 0; }
		sleep 0.05
	done
	return 1
}
# At boot the network process comes up after the sandboxes (and five guests share one CPU here).
if wait_log $T/init.log 'sandbox web restored' 120 && dt=$(answer_after); then
	echo "measured: at boot, the forwarded port answered ${dt} s after 'sandbox web restored'"
else
	no "sandbox web restored and answers" "$(grep -v probe $T/init.log | tail -n 5 | tr '\n' ' ')"
fi
wait_log $T/init.log 'listener ready' 60
# Restore with the NIC up: its VMM killed, PID 1 restores it again; how soon does the port answer?
vp=$(sed -n 's/.*sandbox web: restoring .*(pid \([0-9]*\)).*/\1/p' $T/init.log | tail -n 1)
kill -9 "$vp"
i=0; while [ "$(grep -c 'sandbox web restored' $T/init.log)" -lt 2 ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
if [ "$(grep -c 'sandbox web restored' $T/init.log)" -ge 2 ]; then
	if dt=$(answer_after); then
		echo "measured: restored again with the network up, the forwarded port answered ${dt} s after 'sandbox web restored'"
		# a measurement, not an assertion (goal < 1 s): it moved from 0.2 s to 1.6-3.4 s with
		# Debian's kernel 6.1.0-57 in the guests, keel unchanged (the same with keel at 1ec611c)
		ok "the forwarded port answers after a restore (${dt} s)"
	else
		no "the forwarded port answers after a restore" "nothing in 5 s"
	fi
else
	no "sandbox web restored again after its VMM was killed" "$(grep 'sandbox web:' $T/init.log | tail -n 3 | tr '\n' ' ')"
fi
wait_log $T/init.log 'sandbox web2 restored' 60
wait_log $T/init.log 'sandbox nonet restored' 60
sleep 1
c1=$(get 8080 /cgi-bin/count); c2=$(get 8080 /cgi-bin/count); d1=$(get 8081 /cgi-bin/count); d2=$(get 8082 /cgi-bin/count)
if [ "$c1" = "count 1" ] && [ "$c2" = "count 2" ] && [ "$d1" = "count 1" ] && [ "$d2" = "count 2" ]; then
	ok "two clones of one snapshot, each on its own ports, each with its own counter ($c2; $d2)"
else
	no "two clones answer with their own counters" "8080: '$c1' '$c2', 8081/8082: '$d1' '$d2'"
fi
grep -q "sandbox web: net nat: 10.0.2.15/24 via 10.0.2.2 (DHCP), forwards port 8080 -> 80" $T/init.log &&
	ok "PID 1 says what link each sandbox has" || no "the net line" "$(grep 'sandbox web: net' $T/init.log)"
grep -q "sandbox web3: net none (board.conf: its NIC has no link)" $T/init.log &&
	grep -q "sandbox nonet: net none (policy-net off: no NIC)" $T/init.log &&
	ok "net = none and policy-net off: no link" || no "net none lines" "$(grep ': net ' $T/init.log | tr '\n' ' ')"
# webd was snapshotted before its network was set up: it asks keel's DHCP server after restore
if wait_log $T/init.log 'webd\| keel-test: net 10.0.2.15/24' 60 && [ "$(get 8090 /index.html)" = "hello from keel-guest" ]; then
	ok "a guest restored before its network came up gets 10.0.2.15/24 from keel's DHCP and is forwarded"
else
	no "DHCP after restore" "$(grep 'webd|' $T/init.log | tail -n 4 | tr '\n' ' ')"
fi
# no outbound traffic: the guest's connection attempts to the LAN fail fast, and nothing arrives there
if wait_log $T/init.log 'web\| keel-test: probe .* rc=1 in' 20; then
	p=$(grep -m1 'web| keel-test: probe' $T/init.log | sed 's/.*rc=1 in \([0-9.]*\) s.*/\1/')
	if [ ! -s $T/reached ] && awk "BEGIN{exit !($p < 1.0)}"; then
		ok "the guest's outbound connection is refused at once (${p} s) and never reaches the LAN"
	else
		no "outbound refused fast and unseen" "${p} s; LAN saw: $(cat $T/reached 2>/dev/null)"
	fi
else
	no "outbound refused" "$(grep 'web| keel-test: probe' $T/init.log | head -n 2 | tr '\n' ' ')"
fi

kill -TERM $ipid
i=0; while kill -0 $ipid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
grep -q "listener: sandbox web link: to the guest" $T/init.log && ok "the network process counts each link at shutdown" ||
	no "link counters at shutdown"
grep "link: to the guest" $T/init.log | sed 's/^/nic: /'

# Forwards without an update listener (no TLS files, no listener-plaintext): the network process
# still runs, for the links alone, and nothing listens on the update port.
cat > $T/board2.conf <<EOF
data-dir = $D
insecure-unsigned = yes
verify = manifest
nic = vk
address = $ME/24
sandbox.web.forward = 8080:80
sandbox.web.health-timeout = 0
EOF
keel init --board $T/board2.conf > $T/init2.log 2>&1 &
ipid=$!
if wait_log $T/init2.log "listener ready" 60 && [ "$(get 8080 /index.html)" = "hello from keel-guest" ] &&
	grep -q "for the sandboxes' links and forwards only" $T/init2.log && ! lan timeout 5 nc -w 2 $ME 7070 </dev/null; then
	ok "forwards work without an update listener, and no update port is open"
else
	no "forwards without an update listener" "$(grep -v probe $T/init2.log | tail -n 6 | tr '\n' ' ')"
fi
kill -TERM $ipid
i=0; while kill -0 $ipid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
kill $lanl 2>/dev/null
lan_down
if [ $bad != 0 ]; then
	echo "--- init.log"; grep -v 'keel-test: probe' $T/init.log | tail -n 80
fi
exit $bad
