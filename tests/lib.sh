# Shared helpers for tests/integration/*.sh: each check prints PASS/FAIL/SKIP lines that build.sh counts.
# Environment from build.sh: KEEL (binary under test), KEEL_TOP, KEEL_BUILD.
set -u
: "${KEEL:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/keel}"
: "${KEEL_TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${KEEL_BUILD:=$KEEL_TOP/build}"
T_SUITE=$(basename "$0" .sh)
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/keel-$T_SUITE-XXXXXX")
trap 'rm -rf "$T_TMP"' EXIT

pass() { echo "PASS $T_SUITE: $1"; }
fail() { echo "FAIL $T_SUITE: $1${2:+: $2}"; }
skip() { echo "SKIP $T_SUITE: $1: $2"; }

# check NAME CMD...: PASS when CMD exits 0.
check() {
	local name=$1; shift
	if "$@" >"$T_TMP/.out" 2>&1; then pass "$name"; else fail "$name" "$(tail -n 3 "$T_TMP/.out" | tr '\n' ' ')"; fi
}

# check_status NAME WANT CMD...: PASS when CMD exits with status WANT.
check_status() {
	local name=$1 want=$2 st=0; shift 2
	"$@" >"$T_TMP/.out" 2>"$T_TMP/.err" || st=$?
	if [ "$st" = "$want" ]; then pass "$name"; else fail "$name" "exit $st, wanted $want; $(head -c 300 "$T_TMP/.err")"; fi
}

# one_line_error FILE: stderr holds exactly one line.
one_line_error() { [ "$(wc -l < "$1")" -eq 1 ]; }

# next_created: a `created` one above the last this test made (a file counter, so it also
# counts in $(...) subshells): activation refuses any version not newer than one it accepted.
next_created() {
	local v
	v=$(( $(cat "$T_TMP/.created" 2>/dev/null || echo 1800000000) + 1 ))
	echo "$v" > "$T_TMP/.created"
	echo "$v"
}
