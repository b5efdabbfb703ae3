#!/usr/bin/env bash
# Sandbox networking, keel beside QEMU with the same Debian-kernel guest (busybox httpd,
# tests/guest/scripts/web.sh), all inside the test appliance VM in one run (nested KVM under TCG:
# only the ratios mean anything). Each does a 256 MiB HTTP download (a CGI streaming zeros) and
# 1000 small requests (one wget each, the same client cost for every peer):
#  - keel nat: PID 1's sandbox behind a forwarded port (SOCK_SEQPACKET link -> keel's network
#    process -> the board NIC, a veth) from a LAN namespace; its peer: QEMU user-mode networking
#    with a host forward (slirp: QEMU's own user-space NAT);
#  - keel TAP: `keel vm restore --nic tap:` (the VMM on a TAP, the kernel routes); its peer:
#    QEMU with a TAP NIC. keel TAP vs keel nat is the cost of keel's network process.
#  - outbound: the guest downloads 256 MiB from a LAN server through its allow-list (keel nat,
#    board.conf sandbox.web.allow) beside QEMU user-mode's guest downloading from the host, and
#    beside keel's own inbound (forwarded) figure.
#  - the VMM's RSS (minus guest pages) with and without a NIC.
# Runs only in `./build.sh bench`.
set -u
: "${KEEL_TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${KEEL:=$KEEL_TOP/build/keel}"
command -v qemu-system-x86_64 >/dev/null || { echo "nic: skipped (qemu-system-x86_64 not installed)"; exit 0; }
[ -x "$KEEL" ] || { echo "nic: skipped (no $KEEL)"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/inside.sh" <<IN
N=${NIC_REQS:-1000} MB=${NIC_MB:-256}
IN
cat >> "$tmp/inside.sh" <<'IN'
K=/guest/vmlinux I=/guest/initramfs.cpio T=/tmp/b S=/tmp/b/data/store
CL="console=ttyS0 reboot=t panic=-1 quiet keel.cmd=web keel.big=$MB"
mkdir -p $S
keel store init $S >/dev/null
now() { cut -d' ' -f1 /proc/uptime; }
wait_log() { i=0; while [ $i -lt $(($3 * 5)) ]; do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.2; i=$((i + 1)); done; return 1; }
# WHO URL-BASE [nsenter prefix...]: one download, then N small requests
measure() {
	who=$1 base=$2; shift 2
	"$@" sh -c "t0=\$(cut -d' ' -f1 /proc/uptime); b=\$(wget -q -O- $base/cgi-bin/big | wc -c);
		t1=\$(cut -d' ' -f1 /proc/uptime); echo bench-nic $who dl \$b \$(awk \"BEGIN{print \$t1 - \$t0}\")
		t0=\$t1; i=0; ok=0
		while [ \$i -lt $N ]; do wget -q -O- $base/index.html >/dev/null 2>&1 && ok=\$((ok + 1)); i=\$((i + 1)); done
		t1=\$(cut -d' ' -f1 /proc/uptime); echo bench-nic $who reqs \$ok \$(awk \"BEGIN{print \$t1 - \$t0}\")"
}
own_rss() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { path = $6; next } /^Size:/ { size = $2; next }
		/^Rss:/ { total += $2; if (path ~ /\/objects\// || (path == "" && size >= 2048) || size == 262144) guest += $2 }
		END { print total - guest }' "/proc/$1/smaps"
}
keel vm run --kernel $K --initrd $I --mem 256 --nic none --cmdline "$CL" --snapshot-on "keel-test: web-up" \
	--store $S --name web </dev/null > $T/snap.log 2>&1 || { echo "snapshot failed: $(tail -n 2 $T/snap.log)"; exit 1; }
keel vm run --kernel $K --initrd $I --mem 256 --cmdline "$CL" --snapshot-on "keel-test: web-up" \
	--store $S --name plain </dev/null > $T/snap2.log 2>&1

# a server of MB MiB of zeros for the guests' outbound downloads (LAN and appliance alike)
mkdir -p $T/www/cgi-bin
printf '#!/bin/sh\nprintf "Content-Type: application/octet-stream\\r\\nContent-Length: %%s\\r\\n\\r\\n" %s\ndd if=/dev/zero bs=65536 count=%s 2>/dev/null\n' \
	$((MB * 1048576)) $((MB * 16)) > $T/www/cgi-bin/big
chmod +x $T/www/cgi-bin/big
# WHO URL [nsenter prefix...]: the guest's CGI that pulls the server's big file
pull() {
	who=$1 url=$2; shift 2
	r=$("$@" wget -q -O- "$url" 2>/dev/null)
	echo "bench-nic $who dl $(echo "$r" | sed -n 's/pulled \([0-9]*\) in \([0-9.]*\) s/\1 \2/p')"
}

# ---- keel nat, from a LAN namespace through the forwarded port ----
. /lib/keel-test/lan.sh
lan_up 192.168.50.2/24
lan httpd -p 192.168.50.2:9000 -h $T/www
cat > $T/board.conf <<EOF
data-dir = $T/data
insecure-unsigned = yes
verify = manifest
nic = vk
address = 192.168.50.1/24
listener-plaintext = yes
port = 7070
sandbox.web.forward = 8080:80
sandbox.web.allow = 192.168.50.2:9000
sandbox.web.health-timeout = 0
EOF
keel init --board $T/board.conf > $T/init.log 2>&1 &
ip_=$!
wait_log $T/init.log "listener ready" 120
sleep 1
measure keel-nat http://192.168.50.1:8080 nsenter -t $ns -n
pull keel-out "http://192.168.50.1:8080/cgi-bin/pull?192.168.50.2:9000/cgi-bin/big" nsenter -t $ns -n
vp=$(sed -n 's/.*sandbox web: restoring .*(pid \([0-9]*\)).*/\1/p' $T/init.log | tail -n 1)
echo "bench-rss keel-nic $(own_rss $vp)"
kill -TERM $ip_; wait $ip_
grep "link: to the guest" $T/init.log | sed 's/^/bench-info /'

# ---- keel on a TAP, from the appliance itself ----
keel vm restore --store $S web --nic tap:kt0 > $T/kt.log 2>&1 &
kp=$!
i=0; while [ $i -lt 50 ] && ! ip link show kt0 >/dev/null 2>&1; do sleep 0.1; i=$((i + 1)); done
ip link set kt0 up; ip addr add 10.0.2.2/24 dev kt0
sleep 2
measure keel-tap http://10.0.2.15
kill $kp; wait $kp 2>/dev/null
ip link del kt0 2>/dev/null
# the same guest without a NIC, for the VMM's RSS
keel vm restore --store $S plain --no-jail > $T/kp.log 2>&1 &
kp=$!
sleep 5
echo "bench-rss keel-nonic $(own_rss $kp)"
kill $kp; wait $kp 2>/dev/null

# ---- QEMU, the same guest cold booted to httpd (acpi on: the Debian kernel finds virtio-mmio there) ----
Q="qemu-system-x86_64 -accel kvm -cpu host -M microvm,rtc=on -m 256M -smp 1 -display none -no-reboot -nodefaults"
$Q -serial file:$T/qt.log -kernel $K -initrd $I -append "$CL" \
	-netdev tap,id=n0,ifname=qt0,script=no,downscript=no -device virtio-net-device,netdev=n0 </dev/null &
qp=$!
i=0; while [ $i -lt 100 ] && ! ip link show qt0 >/dev/null 2>&1; do sleep 0.1; i=$((i + 1)); done
ip link set qt0 up; ip addr add 10.0.2.2/24 dev qt0
wait_log $T/qt.log "keel-test: web-up" 180 && sleep 1 && measure qemu-tap http://10.0.2.15
echo "bench-rss qemu-nic $(own_rss $qp)"
kill $qp; wait $qp 2>/dev/null
ip link del qt0 2>/dev/null
$Q -serial file:$T/qu.log -kernel $K -initrd $I -append "$CL" \
	-netdev user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80 -device virtio-net-device,netdev=n0 </dev/null &
qp=$!
httpd -p 127.0.0.1:9001 -h $T/www
wait_log $T/qu.log "keel-test: web-up" 180 && sleep 1 && measure qemu-user http://127.0.0.1:8080 &&
	pull qemu-out "http://127.0.0.1:8080/cgi-bin/pull?10.0.2.2:9001/cgi-bin/big"
kill $qp; wait $qp 2>/dev/null
lan_down
IN

st=0
bash "$KEEL_TOP/tests/appliance/vmtest.sh" --timeout 2400 --with-qemu --keel "$KEEL" \
	--add "$KEEL_TOP/tests/guest/appliance/lan.sh:/lib/keel-test/lan.sh" "$tmp/inside.sh" \
	> "$tmp/console" 2> "$tmp/err" || st=$?
out=$(tr -d '\r' < "$tmp/console")
grep -q "^bench-nic " <<< "$out" || {
	echo "nic: no results (vmtest.sh exit $st): $(tail -n 4 "$tmp/console" "$tmp/err" | tr '\n' ' ' | head -c 400)"
	exit 0
}
val() { awk -v w="$1" -v k="$2" -v f="$3" '$1 == "bench-nic" && $2 == w && $3 == k { print $f; exit }' <<< "$out"; }
rss() { awk -v w="$1" '$1 == "bench-rss" && $2 == w { print $3; exit }' <<< "$out"; }
mbs() { awk -v b="$(val "$1" dl 4)" -v s="$(val "$1" dl 5)" 'BEGIN { printf "%.1f", (s > 0 ? b / 1048576 / s : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
nic_rss=$(rss keel-nic) nonic_rss=$(rss keel-nonic)
for w in keel-out qemu-out; do
	echo "nic: $w: the guest downloaded $(val $w dl 4) bytes in $(val $w dl 5) s ($(mbs $w) MiB/s)"
done
for w in keel-nat keel-tap qemu-tap qemu-user; do
	echo "nic: $w: download $(val $w dl 4) bytes in $(val $w dl 5) s ($(mbs $w) MiB/s), $(val $w reqs 4) small requests in $(val $w reqs 5) s"
done
echo "nic download 256 MiB through a forwarded port (appliance, TCG): keel nat $(mbs keel-nat) MiB/s vs QEMU user-mode hostfwd $(mbs qemu-user) MiB/s = $(ratio "$(mbs keel-nat)" "$(mbs qemu-user)") (higher is better); on a TAP: keel $(mbs keel-tap) vs QEMU $(mbs qemu-tap) MiB/s = $(ratio "$(mbs keel-tap)" "$(mbs qemu-tap)")"
echo "nic $(val keel-nat reqs 4) small requests (one wget each): keel nat $(val keel-nat reqs 5) s vs QEMU user-mode $(val qemu-user reqs 5) s = $(ratio "$(val keel-nat reqs 5)" "$(val qemu-user reqs 5)") (lower is better); on a TAP: keel $(val keel-tap reqs 5) s vs QEMU $(val qemu-tap reqs 5) s = $(ratio "$(val keel-tap reqs 5)" "$(val qemu-tap reqs 5)")"
echo "nic outbound 256 MiB, the guest downloading through its allow-list (appliance, TCG): keel nat $(mbs keel-out) MiB/s vs QEMU user-mode $(mbs qemu-out) MiB/s = $(ratio "$(mbs keel-out)" "$(mbs qemu-out)") (higher is better); vs keel's inbound forwarded download $(mbs keel-nat) MiB/s = $(ratio "$(mbs keel-out)" "$(mbs keel-nat)")"
echo "nic VMM RSS minus guest pages: keel with a NIC (after the download) $(rss keel-nic) KiB, without $(rss keel-nonic) KiB (extra per NIC: $(( ${nic_rss:-0} - ${nonic_rss:-0} )) KiB); QEMU with a TAP NIC $(rss qemu-nic) KiB"
grep "^bench-info" <<< "$out" | sed 's/^bench-info /nic: /'
