#!/usr/bin/env bash
# keel's egress allow-list under PID 1 in the test appliance VM (Debian-kernel guests, a LAN
# namespace with a resolver): the checks run in tests/guest/appliance/egress.sh and report their
# own PASS/FAIL lines.
. "$(dirname "$0")/../lib.sh"
if ! command -v qemu-system-x86_64 >/dev/null; then
	skip egress "qemu-system-x86_64 is not installed"
	exit 0
fi
musl-gcc -static -O2 -Wall -Werror -o "$T_TMP/lan-dnsd" "$KEEL_TOP/tests/appliance/lan-dnsd.c" ||
	{ fail egress_lan_dnsd "tests/appliance/lan-dnsd.c does not build"; exit 0; }
st=0
bash "$KEEL_TOP/tests/appliance/vmtest.sh" --timeout 900 --keel "$KEEL" \
	--add "$T_TMP/lan-dnsd:/bin/lan-dnsd" --add "$KEEL_TOP/tests/guest/appliance/lan.sh:/lib/keel-test/lan.sh" \
	"$KEEL_TOP/tests/guest/appliance/egress.sh" >"$T_TMP/log" 2>&1 || st=$?
tr -d '\r' < "$T_TMP/log" | grep -E '^(PASS|FAIL|SKIP) egress: '
tr -d '\r' < "$T_TMP/log" | grep -E '^measured: ' | sed 's/^/egress: /'
[ "$st" = 0 ] && pass egress_appliance_run || fail egress_appliance_run "vmtest.sh exit $st: $(tr -d '\r' < "$T_TMP/log" | grep -vE '^(PASS|measured)' | tail -n 8 | tr '\n' ' ')"
