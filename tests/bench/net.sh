#!/usr/bin/env bash
# Ingest throughput of a 1 GiB pack over a veth pair into a tmpfs store: keel's lwIP listener
# (plain and TLS) against the host kernel's TCP receiving the same bytes with `nc -l > file`,
# in the same run on the same veth; and the listener's peak RSS while receiving.
set -u
: "${KEEL_TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${KEEL:=$KEEL_TOP/build/keel}"
. "$KEEL_TOP/tests/unit/net/netns.sh"
MIB=${KEEL_BENCH_NET_MIB:-1024}

if ! why=$(netns_usable); then
	echo "net: skipped ($why)"
	exit 0
fi
T=$(mktemp -d /tmp/keel-bench-net-XXXXXX)
cleanup() {
	listener_stop
	[ -n "${NCPID:-}" ] && kill "$NCPID" 2>/dev/null
	netns_down
	umount "$T/fs" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/fs"
mount -t tmpfs -o size=$(( MIB * 3 + 512 ))m tmpfs "$T/fs" || { echo "net: skipped (no tmpfs)"; exit 0; }
netns_up "b$$" $(( $$ % 200 + 22 )) || { echo "net: skipped (no veth)"; exit 0; }
cd "$T"

W=$T/fs/work S=$T/fs/appliance
"$KEEL" store init "$W" && "$KEEL" store init "$S" && "$KEEL" key gen priv.pem pub.pem >/dev/null || exit 1
head -c $(( MIB << 20 )) /dev/urandom > "$T/fs/mem"
id=$("$KEEL" manifest create --store "$W" --name bench --memory-file "$T/fs/mem" --sign priv.pem) || exit 1
rm -f "$T/fs/mem"
"$KEEL" pack send --store "$W" --manifest "$id" > "$T/fs/bench.pack" || exit 1
bytes=$(stat -c %s "$T/fs/bench.pack")

now() { date +%s.%N; }
rate() { awk -v b="$bytes" -v t="$1" 'BEGIN { printf "%.0f", b / t / 1048576 }'; }

# Peer: the kernel's TCP on the same veth (given an address for this run only), into tmpfs.
ip -n "$NS_A" addr add "$NET_PFX.3/24" dev "$IF_A"
ina sh -c "nc -l -p 7071 > '$T/fs/nc.out'" &
NCPID=$!
sleep 0.5
t0=$(now)
inb nc -N "$NET_PFX.3" 7071 < "$T/fs/bench.pack"
wait "$NCPID"; NCPID=
t_nc=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')
rm -f "$T/fs/nc.out"
ip -n "$NS_A" addr flush dev "$IF_A"
inb ip neigh flush all

# keel: the lwIP listener filing into the store (hash-verified, fsync'd, manifest committed).
listener_start "$T/l" --ip "$APP_IP/24" --port 7070 --store "$S" --trust pub.pem || exit 1
t0=$(now)
out=$(inb nc -N "$APP_IP" 7070 < "$T/fs/bench.pack")
t_keel=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')
hwm=$(hwm_kib "$LPID")
listener_stop
[ "$out" = "ok $id" ] || echo "net: listener answered: $out"

echo "net-ingest: keel $(rate "$t_keel") MiB/s vs nc -l $(rate "$t_nc") MiB/s = $(awk -v a="$t_nc" -v b="$t_keel" 'BEGIN { printf "%.2f", a / b }') (goal >= 0.8)"
echo "net-rss: keel listener peak ${hwm} KiB vs goal 8192 KiB = $(awk -v a="$hwm" 'BEGIN { printf "%.2f", a / 8192 }')"

# TLS: same pack, keel push --tls (BearSSL both ends) into a fresh store.
command -v openssl >/dev/null || { echo "net-tls: skipped (no openssl)"; exit 0; }
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -subj /CN=bench-ca -days 2 -out ca.pem 2>/dev/null
for n in srv cli; do
	openssl ecparam -name prime256v1 -genkey -noout -out $n.key 2>/dev/null
	openssl req -new -key $n.key -subj /CN=$n -out $n.csr 2>/dev/null
	openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out $n.pem 2>/dev/null
done
rm -rf "$S" && "$KEEL" store init "$S"
listener_start "$T/lt" --ip "$APP_IP/24" --port 7070 --store "$S" --trust pub.pem \
	--tls --cert srv.pem --key srv.key --ca ca.pem || exit 1
t0=$(now)
out=$(inb "$KEEL" push --to "$APP_IP:7070" --tls --cert cli.pem --key cli.key --ca ca.pem "$T/fs/bench.pack" 2>/dev/null)
t_tls=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')
hwm=$(hwm_kib "$LPID")
listener_stop
[ "$out" = "ok $id" ] || echo "net: TLS listener answered: $out"
echo "net-ingest-tls: keel $(rate "$t_tls") MiB/s vs nc -l $(rate "$t_nc") MiB/s = $(awk -v a="$t_nc" -v b="$t_tls" 'BEGIN { printf "%.2f", a / b }')"
echo "net-rss-tls: keel listener peak ${hwm} KiB vs goal 8192 KiB = $(awk -v a="$hwm" 'BEGIN { printf "%.2f", a / 8192 }')"
