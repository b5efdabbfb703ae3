# The multi-call binary: static, versioned, strict about its command line.
. "$(dirname "$0")/../lib.sh"

check "keel is statically linked" sh -c "file '$KEEL' | grep -q 'statically linked' || file '$KEEL' | grep -q 'dynamically linked.*asan' "
if file "$KEEL" | grep -q 'statically linked'; then
	check "ldd finds no dynamic dependencies" sh -c "! ldd '$KEEL' 2>&1 | grep -q '=>'"
fi
check "version names musl, lwip 2.1.3 and bearssl 0.6" sh -c \
	"'$KEEL' version | grep -q '^musl ' && '$KEEL' version | grep -q '^lwip 2.1.3' && '$KEEL' version | grep -q '^bearssl 0.6'"
check "--help lists the commands" sh -c "'$KEEL' --help | grep -q '^  version '"
check "version --help explains it" sh -c "'$KEEL' version --help | grep -q 'usage: keel version'"
check_status "unknown command exits 2" 2 "$KEEL" no-such-command
check "unknown command gives one line on stderr" one_line_error "$T_TMP/.err"
check_status "bad argument exits 2" 2 "$KEEL" version --bogus
check "bad argument gives one line on stderr" one_line_error "$T_TMP/.err"
check_status "no command exits 2" 2 "$KEEL"
