# BLAKE3 throughput of `keel b3sum` beside the b3sum tool on the same 1 GiB file in /dev/shm.
set -u
: "${KEEL:=$(cd "$(dirname "$0")/../.." && pwd)/build/keel}"

if ! command -v b3sum >/dev/null 2>&1; then
	echo "blake3: skipped: the b3sum tool is not installed (Debian package b3sum)"
	exit 0
fi
dir=/dev/shm
[ -d "$dir" ] && [ -w "$dir" ] || dir=${TMPDIR:-/tmp}
f=$(mktemp "$dir/keel-bench-blake3-XXXXXX")
trap 'rm -f "$f"' EXIT
size=$((1024 * 1024 * 1024))
head -c "$size" /dev/urandom > "$f"

# best CMD...: the fastest of 5 runs, in seconds.
best() {
	local t0 t1
	for _ in 1 2 3 4 5; do
		t0=$(date +%s.%N)
		"$@" > /dev/null
		t1=$(date +%s.%N)
		echo "$t0 $t1"
	done | awk '{ t = $2 - $1; if (NR == 1 || t < b) b = t } END { print b }'
}
gbps() { awk "BEGIN{printf \"%.2f\", $size / $1 / 1e9}"; }

want=$(b3sum "$f" | cut -d' ' -f1)
got=$("$KEEL" b3sum "$f" | cut -d' ' -f1)
if [ "$want" != "$got" ]; then
	echo "blake3: keel and b3sum disagree on the bench file"
	exit 1
fi

impl=$("$KEEL" version | sed -n 's/^blake3 //p')
k1=$(best "$KEEL" b3sum --num-threads 1 "$f")
p1=$(best b3sum --num-threads 1 "$f")
kn=$(best "$KEEL" b3sum "$f")
pn=$(best b3sum "$f")
echo "blake3 1 thread ($impl): keel $(gbps "$k1") GB/s vs b3sum --num-threads 1 $(gbps "$p1") GB/s = $(awk "BEGIN{printf \"%.2f\", $p1 / $k1}")x (goal >= 1.0x)"
echo "blake3 $(nproc) threads ($impl): keel $(gbps "$kn") GB/s vs b3sum $(gbps "$pn") GB/s = $(awk "BEGIN{printf \"%.2f\", $pn / $kn}")x"
st=$(best sh -c "'$KEEL' b3sum < '$f'")
ps=$(best sh -c "b3sum < '$f'")
echo "blake3 stdin stream ($impl): keel $(gbps "$st") GB/s vs b3sum $(gbps "$ps") GB/s = $(awk "BEGIN{printf \"%.2f\", $ps / $st}")x"
