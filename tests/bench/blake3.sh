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
times=$(mktemp)
trap 'rm -f "$f" "$times"' EXIT
size=$((1024 * 1024 * 1024))
head -c "$size" /dev/urandom > "$f"

want=$(b3sum "$f" | cut -d' ' -f1)
got=$("$KEEL" b3sum "$f" | cut -d' ' -f1)
if [ "$want" != "$got" ]; then
	echo "blake3: keel and b3sum disagree on the bench file"
	exit 1
fi

# Rounds interleave the contenders so a busy machine slows both alike; each
# figure is the best of 5. Besides wall time, user+system CPU time is kept:
# it is what the hashing costs even when other work shares the cores.
TIMEFORMAT='%R %U %S'
run() { # run LABEL CMD...
	local label=$1 t
	shift
	t=$( { time "$@" > /dev/null 2>&1; } 2>&1 )
	echo "$label $t" >> "$times"
}
for _ in 1 2 3 4 5; do
	run k1 "$KEEL" b3sum --num-threads 1 "$f"
	run p1 b3sum --num-threads 1 "$f"
	run kn "$KEEL" b3sum "$f"
	run pn b3sum "$f"
	run ks sh -c "cat '$f' | '$KEEL' b3sum"
	run ps sh -c "cat '$f' | b3sum"
done

impl=$("$KEEL" version | sed -n 's/^blake3 //p')
report() { # report TITLE KEEL_LABEL PEER_LABEL PEER_NAME [NOTE]
	awk -v size="$size" -v k="$2" -v p="$3" -v title="$1" -v peer="$4" -v note="${5:-}" '
		{ w = $2; c = $3 + $4
		  if (!($1 in bw) || w < bw[$1]) bw[$1] = w
		  if (!($1 in bc) || c < bc[$1]) bc[$1] = c }
		END { printf "%s: keel %.2f GB/s vs %s %.2f GB/s = %.2fx (cpu time %.2fx)%s\n",
			title, size / bw[k] / 1e9, peer, size / bw[p] / 1e9, bw[p] / bw[k],
			bc[p] / bc[k], note }' "$times"
}
report "blake3 1 thread ($impl)" k1 p1 "b3sum --num-threads 1" "; goal >= 1.0x"
report "blake3 $(nproc) threads ($impl)" kn pn "b3sum"
report "blake3 stdin pipe, streamed ($impl)" ks ps "b3sum"
