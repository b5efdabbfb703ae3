#!/usr/bin/env bash
# cgroup v2 limits per sandbox, in the test appliance VM (the host's cgroup v2 has no controllers): the
# checks run in tests/guest/appliance/limits.sh and report their own PASS/FAIL lines.
. "$(dirname "$0")/../lib.sh"
if ! command -v qemu-system-x86_64 >/dev/null; then
	skip limits "qemu-system-x86_64 is not installed"
	exit 0
fi
st=0
bash "$KEEL_TOP/tests/appliance/vmtest.sh" --timeout 600 --keel "$KEEL" \
	--add "$KEEL_BUILD/tests/guest/tiny.elf:/guest/tiny.elf" \
	"$KEEL_TOP/tests/guest/appliance/limits.sh" >"$T_TMP/log" 2>&1 || st=$?
tr -d '\r' < "$T_TMP/log" | grep -E '^(PASS|FAIL|SKIP) limits: '
tr -d '\r' < "$T_TMP/log" | grep -E '^measured: ' | sed 's/^/limits: /'
[ "$st" = 0 ] && pass limits_appliance_run || fail limits_appliance_run "vmtest.sh exit $st: $(tr -d '\r' < "$T_TMP/log" | grep -vE '^(PASS|measured)' | tail -n 8 | tr '\n' ' ')"
