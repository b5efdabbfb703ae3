#!/usr/bin/env bash
# The update listener with TLS (BearSSL): keel push --tls and openssl s_client with client
# certificates get through; clients without a certificate from the CA get no byte into the store.
# The client side has TX checksum offload off here, so keel verifies full TCP checksums itself.
. "$(dirname "$0")/../lib.sh"
. "$KEEL_TOP/tests/unit/net/netns.sh"

netns_or_skip openssl
"$KEEL" net listen --help | grep -q -- --tls || { skip all "keel built without CONFIG_NET_TLS"; exit 0; }

cleanup() {
	listener_stop
	netns_down
	rm -rf "$T_TMP"
}
trap cleanup EXIT
netns_up "t$$" $(( $$ % 200 + 21 )) || { fail setup "cannot create the veth pair"; exit 0; }
command -v ethtool >/dev/null && inb ethtool -K "$IF_B" tx off >/dev/null 2>&1

cd "$T_TMP"
S=$T_TMP/appliance W=$T_TMP/work
"$KEEL" store init "$S" && "$KEEL" store init "$W" && "$KEEL" key gen priv.pem pub.pem >/dev/null ||
	{ fail setup "store/key"; exit 0; }

# ec_cert NAME CN CA [SAN]: an EC P-256 key NAME.key and NAME.pem issued by CA (CA "-": self-signed
# CA), with subjectAltName SAN when given.
ec_cert() {
	local name=$1 cn=$2 ca=$3 san=${4:-}
	openssl ecparam -name prime256v1 -genkey -noout -out "$name.key" 2>/dev/null || return 1
	if [ "$ca" = - ]; then
		openssl req -x509 -new -key "$name.key" -subj "/CN=$cn" -days 3 -out "$name.pem" 2>/dev/null
	else
		openssl req -new -key "$name.key" -subj "/CN=$cn" ${san:+-addext "subjectAltName=$san"} \
			-out "$name.csr" 2>/dev/null &&
			openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -days 3 \
				-copy_extensions copy -out "$name.pem" 2>/dev/null
	fi
}
# Two CAs, as ./build.sh image makes them: ca issues appliances' certificates (clients check
# the appliance against it), opca issues operators' (the listener's --ca).
ec_cert ca keel-test-ca - && ec_cert srv appliance ca "DNS:box1.appliance.test" &&
	ec_cert opca keel-operator-ca - && ec_cert cli workstation opca &&
	ec_cert rogueca rogue-ca - && ec_cert rogue intruder rogueca || { fail setup "openssl certificates"; exit 0; }

snap() {
	head -c "$(( $2 * 1024 ))" /dev/urandom > "mem$1"
	"$KEEL" manifest create --store "$W" --name demo --memory-file "mem$1" --chunk 262144 --sign priv.pem \
		--created "$(next_created)"
}
ref() { "$KEEL" store ref "$S" demo 2>/dev/null; }
nobj() { find "$S/objects" -type f | wc -l; }
intact() {
	echo "ref $(ref) objects $(nobj), want $1 and $2"
	[ "$(ref)" = "$1" ] && [ "$(nobj)" = "$2" ] && "$KEEL" store verify "$S"
}
sclient() { inb timeout 30 openssl s_client -connect "$APP_IP:7070" -quiet "$@" 2>/dev/null; }

# One CA for both: a copy of any appliance's certificate would pass as an operator's. Refused.
listener_start "$T_TMP/l0" --ip "$APP_IP/24" --port 7070 --store "$S" --trust pub.pem \
	--tls --cert srv.pem --key srv.key --ca ca.pem 2>/dev/null && listener_stop
check listener_refuses_a_client_ca_that_issued_its_own_certificate \
	grep -q "also issued this listener's own certificate" "$T_TMP/l0.err"
if ! listener_start "$T_TMP/l" --ip "$APP_IP/24" --port 7070 --store "$S" --trust pub.pem \
	--tls --cert srv.pem --key srv.key --ca opca.pem; then
	fail tls_listener_starts "no \"listening\" line"
	exit 0
fi
pass tls_listener_starts

v1=$(snap 1 2048)
out=$(inb "$KEEL" push --to "$APP_IP:7070" --tls --cert cli.pem --key cli.key --ca ca.pem \
	--store "$W" --manifest "$v1" 2>push.err); st=$?
check keel_push_tls_with_client_cert_ok [ "$st:$out" = "0:ok $v1" ]
check keel_push_tls_moves_the_ref [ "$(ref)" = "$v1" ]
# --server-name: the certificate's subjectAltName must name the appliance asked for.
out=$(inb "$KEEL" push --to "$APP_IP:7070" --tls --cert cli.pem --key cli.key --ca ca.pem \
	--server-name box1.appliance.test --store "$W" --manifest "$v1" 2>push.err); st=$?
check keel_push_tls_server_name_that_matches_ok [ "$st:$out" = "0:ok $v1" ]
out=$(inb "$KEEL" push --to "$APP_IP:7070" --tls --cert cli.pem --key cli.key --ca ca.pem \
	--server-name box2.appliance.test --store "$W" --manifest "$v1" 2>push.err); st=$?
refused_naming() { [ "$1" = 1 ] && [ -z "$2" ] && one_line_error push.err && grep -q "does not name" push.err; }
check keel_push_tls_other_server_name_refused refused_naming "$st" "$out"

v2=$(snap 2 1024)
"$KEEL" pack send --store "$W" --manifest "$v2" > v2.pack
out=$(sclient -cert cli.pem -key cli.key -CAfile ca.pem < v2.pack)
check openssl_s_client_with_client_cert_ok [ "$out" = "ok $v2" ]
check openssl_s_client_moves_the_ref [ "$(ref)" = "$v2" ]
n=$(nobj)

v3=$(snap 3 1024)
"$KEEL" pack send --store "$W" --manifest "$v3" > v3.pack
out=$(sclient -CAfile ca.pem < v3.pack)
check client_without_cert_gets_no_ok [ "${out:0:2}" != ok ]
check client_without_cert_files_nothing intact "$v2" "$n"
check server_logs_missing_client_cert grep -q "TLS failed" "$T_TMP/l.err"

out=$(sclient -cert rogue.pem -key rogue.key -CAfile ca.pem < v3.pack)
check client_cert_from_other_ca_gets_no_ok [ "${out:0:2}" != ok ]
check client_cert_from_other_ca_files_nothing intact "$v2" "$n"

# The appliance's own certificate and key (as if copied off a box) presented as a client's.
out=$(sclient -cert srv.pem -key srv.key -CAfile ca.pem < v3.pack)
check appliance_certificate_as_client_gets_no_ok [ "${out:0:2}" != ok ]
check appliance_certificate_as_client_files_nothing intact "$v2" "$n"

check_status keel_push_tls_with_rogue_cert_fails 1 inb "$KEEL" push --to "$APP_IP:7070" --tls \
	--cert rogue.pem --key rogue.key --ca ca.pem v3.pack
check keel_push_with_rogue_cert_files_nothing intact "$v2" "$n"

check_status keel_push_tls_rejects_server_from_other_ca 1 inb "$KEEL" push --to "$APP_IP:7070" --tls \
	--cert cli.pem --key cli.key --ca rogueca.pem v3.pack
out=$(inb timeout 20 nc -N "$APP_IP" 7070 < v3.pack)
check plaintext_stream_to_tls_listener_files_nothing intact "$v2" "$n"

out=$(inb "$KEEL" push --to "$APP_IP:7070" --tls --cert cli.pem --key cli.key --ca ca.pem v3.pack 2>/dev/null)
check good_tls_push_after_rejected_clients [ "$out:$(ref)" = "ok $v3:$v3" ]
check store_verifies_after_tls_pushes "$KEEL" store verify "$S"
# Chains: an operator certificate under one intermediate CA gets through; one under four (five
# certificates presented) is refused before any of it is checked past the cap.
ec_sub_ca() { # NAME CN ISSUER: an intermediate CA
	openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null &&
		openssl req -new -key "$1.key" -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign" -out "$1.csr" 2>/dev/null &&
		openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 3 \
			-copy_extensions copy -out "$1.pem" 2>/dev/null
}
if ec_sub_ca i1 inter1 opca && ec_sub_ca i2 inter2 i1 && ec_sub_ca i3 inter3 i2 && ec_sub_ca i4 inter4 i3 &&
	ec_cert short op-short i1 && ec_cert long op-long i4; then
	v3b=$(snap 31 256)
	"$KEEL" pack send --store "$W" --manifest "$v3b" > v3b.pack
	out=$(sclient -cert short.pem -key short.key -cert_chain i1.pem -CAfile ca.pem < v3b.pack)
	check client_chain_of_two_ok [ "$out:$(ref)" = "ok $v3b:$v3b" ]
	n=$(nobj)
	cat i4.pem i3.pem i2.pem i1.pem > long-chain.pem
	v5x=$(snap 32 256)
	"$KEEL" pack send --store "$W" --manifest "$v5x" > v5x.pack
	out=$(sclient -cert long.pem -key long.key -cert_chain long-chain.pem -CAfile ca.pem < v5x.pack)
	check client_chain_of_five_refused [ "${out:0:2}" != ok ]
	check client_chain_of_five_files_nothing intact "$v3b" "$n"
	check client_chain_of_five_logged grep -q "TLS failed: .*limit" "$T_TMP/l.err"
else
	fail client_chains "openssl intermediate CAs"
fi

listener_stop
check link_saw_no_bad_checksums grep -q "0 bad checksum" "$T_TMP/l.err"

# RSA: a listener with an RSA key and certificate from an RSA CA (ECDHE-RSA suites); clients with
# RSA certificates from that CA get through, the EC clients of the other CA do not.
rsa_cert() { # NAME CN CA
	local name=$1 cn=$2 ca=$3
	openssl genrsa -out "$name.key" 2048 2>/dev/null || return 1
	if [ "$ca" = - ]; then
		openssl req -x509 -new -key "$name.key" -subj "/CN=$cn" -days 3 -out "$name.pem" 2>/dev/null
	else
		openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr" 2>/dev/null &&
			openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial -days 3 \
				-out "$name.pem" 2>/dev/null
	fi
}
if rsa_cert rca keel-rsa-ca - && rsa_cert rsrv appliance rca && rsa_cert ropca keel-rsa-operator-ca - &&
	rsa_cert rcli workstation ropca &&
	listener_start "$T_TMP/r" --ip "$APP_IP/24" --port 7070 --store "$S" --trust pub.pem \
		--tls --cert rsrv.pem --key rsrv.key --ca ropca.pem; then
	pass rsa_tls_listener_starts
	v4=$(snap 4 512)
	out=$(inb "$KEEL" push --to "$APP_IP:7070" --tls --cert rcli.pem --key rcli.key --ca rca.pem \
		--store "$W" --manifest "$v4" 2>push.err); st=$?
	check keel_push_with_rsa_certificates_ok [ "$st:$out:$(ref)" = "0:ok $v4:$v4" ]
	# v2 again: a real, trusted, earlier signed update replayed by an authenticated peer
	"$KEEL" pack send --store "$W" --manifest "$v2" > v2again.pack
	out=$(sclient -cert rcli.pem -key rcli.key -CAfile rca.pem < v2again.pack)
	check replayed_earlier_signed_update_is_refused_naming_both_versions \
		sh -c 'case "$0" in "error "*"not newer than version"*) [ "$1" = "$2" ] ;; *) exit 1 ;; esac' "$out" "$(ref)" "$v4"
	v5=$(snap 5 512)
	"$KEEL" pack send --store "$W" --manifest "$v5" > v5.pack
	out=$(sclient -cert rcli.pem -key rcli.key -CAfile rca.pem < v5.pack)
	check openssl_s_client_with_rsa_certificate_ok [ "$out:$(ref)" = "ok $v5:$v5" ]
	n=$(nobj)
	check_status keel_push_with_ec_cert_of_other_ca_to_rsa_listener_fails 1 inb "$KEEL" push \
		--to "$APP_IP:7070" --tls --cert cli.pem --key cli.key --ca rca.pem v3.pack
	check ec_client_of_other_ca_files_nothing intact "$v5" "$n"
	listener_stop
else
	fail rsa_tls_listener_starts "openssl RSA certificates or the listener: $(tail -n 2 "$T_TMP/r.err" 2>/dev/null)"
fi
