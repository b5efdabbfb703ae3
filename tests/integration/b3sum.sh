# `keel b3sum` prints what the b3sum tool prints, line for line, and fails like it.
. "$(dirname "$0")/../lib.sh"

if ! command -v b3sum >/dev/null 2>&1; then
	skip "b3sum comparison" "the b3sum tool is not installed (Debian package b3sum)"
	exit 0
fi

d=$T_TMP/files
mkdir -p "$d"
: > "$d/empty"
printf 'x' > "$d/one"
head -c 1024 /dev/urandom > "$d/k1024"
head -c 1025 /dev/urandom > "$d/k1025"
head -c $((1024 * 1024 + 1)) /dev/urandom > "$d/m1plus1"
head -c $((5 * 1024 * 1024 + 12345)) /dev/urandom > "$d/m5odd"
printf 'back\\slash' > "$d/back\\slash"
printf 'new\nline' > "$d/new
line"

same() { # same NAME ARGS...: stdout of keel b3sum and b3sum identical
	local name=$1; shift
	(cd "$d" && "$KEEL" b3sum "$@") > "$T_TMP/keel.out" 2>/dev/null
	(cd "$d" && b3sum "$@") > "$T_TMP/ref.out" 2>/dev/null
	if cmp -s "$T_TMP/keel.out" "$T_TMP/ref.out" && [ -s "$T_TMP/ref.out" ]; then
		pass "$name"
	else
		fail "$name" "$(diff "$T_TMP/keel.out" "$T_TMP/ref.out" | head -n 4 | tr '\n' ' ')"
	fi
}

same "0 bytes" empty
same "1 byte" one
same "1024 bytes" k1024
same "1025 bytes" k1025
same "1 MiB + 1 (mapped, threaded)" m1plus1
same "5 MiB odd size, one thread" --num-threads 1 m5odd
same "5 MiB odd size, all threads" m5odd
same "several files in order" empty one k1024 k1025 m1plus1 m5odd
same "names with backslash and newline are escaped" "back\\slash" "new
line"

("$KEEL" b3sum < "$d/m5odd") > "$T_TMP/keel.out"
(b3sum < "$d/m5odd") > "$T_TMP/ref.out"
check "stdin with no argument is named '-'" cmp "$T_TMP/keel.out" "$T_TMP/ref.out"
("$KEEL" b3sum - < "$d/k1025") > "$T_TMP/keel.out"
(b3sum - < "$d/k1025") > "$T_TMP/ref.out"
check "'-' reads stdin" cmp "$T_TMP/keel.out" "$T_TMP/ref.out"
cat "$d/m1plus1" | "$KEEL" b3sum > "$T_TMP/keel.out"
b3sum "$d/m1plus1" | sed 's|  .*|  -|' > "$T_TMP/ref.out"
check "a pipe is streamed" cmp "$T_TMP/keel.out" "$T_TMP/ref.out"

check_status "a missing file exits 1" 1 "$KEEL" b3sum "$d/one" "$d/missing" "$d/k1024"
cp "$T_TMP/.out" "$T_TMP/keel.out"
check "a missing file gives one line on stderr" one_line_error "$T_TMP/.err"
check "the missing file's line names it like b3sum" \
	grep -q "$d/missing: No such file or directory (os error 2)" "$T_TMP/.err"
b3sum "$d/one" "$d/k1024" > "$T_TMP/ref.out" 2>/dev/null
check "the other files are still hashed" cmp "$T_TMP/keel.out" "$T_TMP/ref.out"
check_status "a directory exits 1" 1 "$KEEL" b3sum "$d"
check "a directory is reported like b3sum" grep -q "Is a directory (os error 21)" "$T_TMP/.err"
check_status "a bad --num-threads exits 2" 2 "$KEEL" b3sum --num-threads x "$d/one"
check "a bad --num-threads gives one line on stderr" one_line_error "$T_TMP/.err"
check "--help explains it" sh -c "'$KEEL' b3sum --help | grep -q 'usage: keel b3sum'"
check "version names the BLAKE3 path" sh -c "'$KEEL' version | grep -Eq '^blake3 (portable|sse41|avx2|avx512)$'"
