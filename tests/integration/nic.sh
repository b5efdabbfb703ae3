#!/usr/bin/env bash
# keel's NIC and nat links under PID 1 in the test appliance VM (real Debian-kernel guests, a LAN
# namespace): the checks run in tests/guest/appliance/nic.sh and report their own PASS/FAIL lines.
. "$(dirname "$0")/../lib.sh"
if ! command -v qemu-system-x86_64 >/dev/null; then
	skip nic "qemu-system-x86_64 is not installed"
	exit 0
fi
st=0
bash "$KEEL_TOP/tests/appliance/vmtest.sh" --timeout 700 --keel "$KEEL" \
	--add "$KEEL_TOP/tests/guest/appliance/lan.sh:/lib/keel-test/lan.sh" "$KEEL_TOP/tests/guest/appliance/nic.sh" >"$T_TMP/log" 2>&1 || st=$?
tr -d '\r' < "$T_TMP/log" | grep -E '^(PASS|FAIL|SKIP) nic: '
tr -d '\r' < "$T_TMP/log" | grep -E '^measured: ' | sed 's/^/nic: /'
[ "$st" = 0 ] && pass nic_appliance_run || fail nic_appliance_run "vmtest.sh exit $st: $(tr -d '\r' < "$T_TMP/log" | grep -vE '^(PASS|measured)' | tail -n 8 | tr '\n' ' ')"
