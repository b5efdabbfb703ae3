#!/usr/bin/env bash
# Read-only object disks served to a Debian-kernel guest in the test appliance VM: the checks run
# in tests/guest/appliance/disks.sh and report their own PASS/FAIL lines.
. "$(dirname "$0")/../lib.sh"
if ! command -v qemu-system-x86_64 >/dev/null; then
	skip disks_vm "qemu-system-x86_64 is not installed"
	exit 0
fi
st=0
bash "$KEEL_TOP/tests/appliance/vmtest.sh" --timeout 600 --keel "$KEEL" \
	"$KEEL_TOP/tests/guest/appliance/disks.sh" >"$T_TMP/log" 2>&1 || st=$?
tr -d '\r' < "$T_TMP/log" | grep -E '^(PASS|FAIL|SKIP) disks: '
[ "$st" = 0 ] && pass disks_vm_appliance_run || fail disks_vm_appliance_run "vmtest.sh exit $st: $(tr -d '\r' < "$T_TMP/log" | grep -vE '^PASS' | tail -n 8 | tr '\n' ' ')"
