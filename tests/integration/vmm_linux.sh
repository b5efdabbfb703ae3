# Real Linux guests under keel's VMM, inside the test appliance VM (KVM-HERE.md): the checks run in
# tests/guest/appliance/vmm_linux.sh and report their own PASS/FAIL lines through the console log.
. "$(dirname "$0")/../lib.sh"
vt=$KEEL_TOP/tests/appliance/vmtest.sh
if [ ! -f "$vt" ]; then
	skip linux_guests "the test appliance (tests/appliance/vmtest.sh) is not in this tree"
	exit 0
fi
st=0
bash "$vt" --timeout 800 --keel "$KEEL" "$KEEL_TOP/tests/guest/appliance/vmm_linux.sh" >"$T_TMP/log" 2>&1 || st=$?
tr -d '\r' < "$T_TMP/log" | grep -E '^(PASS|FAIL|SKIP) vmm_linux: '
[ "$st" = 0 ] && pass appliance_run || fail appliance_run "vmtest.sh exit $st: $(tail -n 2 "$T_TMP/log" | tr '\n' ' ')"
