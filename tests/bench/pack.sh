# `keel pack receive` into a store on tmpfs beside `cat > file` of the same ~1 GiB SNAPPACK 1 stream.
set -u
: "${KEEL:=$(cd "$(dirname "$0")/../.." && pwd)/build/keel}"

dir=/dev/shm
[ -d "$dir" ] && [ -w "$dir" ] || dir=${TMPDIR:-/tmp}
w=$(mktemp -d "$dir/keel-bench-pack-XXXXXX")
times=$(mktemp)
trap 'rm -rf "$w" "$times"' EXIT

# The stream: 1 GiB of random bytes as 512 objects of 2 MiB (guest memory chunks), plus one manifest.
"$KEEL" store init "$w/src" > /dev/null
head -c $((1024 * 1024 * 1024)) /dev/urandom > "$w/mem"
m=$("$KEEL" manifest create --store "$w/src" --name bench --memory-file "$w/mem" --chunk 2097152 --created 1)
rm -f "$w/mem"
"$KEEL" pack send --store "$w/src" --manifest "$m" > "$w/stream"
rm -rf "$w/src"
size=$(stat -c %s "$w/stream")

# Rounds interleave the two so a busy machine slows both alike; best of 5. Both read the
# stream through a pipe (as from a socket) and write it to tmpfs; keel also parses, hashes,
# stages in temp files, fsyncs and renames each object.
TIMEFORMAT='%R %U %S'
run() { # run LABEL CMD...
	local label=$1 t
	shift
	t=$( { time "$@" > /dev/null 2>&1; } 2>&1 )
	echo "$label $t" >> "$times"
}
for _ in 1 2 3 4 5; do
	rm -rf "$w/dst" "$w/out"
	"$KEEL" store init "$w/dst"
	run keel sh -c "cat '$w/stream' | '$KEEL' pack receive --store '$w/dst'"
	[ -f "$w/dst/manifests/$m" ] || { echo "pack: the bench stream was not received"; exit 1; }
	rm -rf "$w/dst"
	run cat sh -c "cat '$w/stream' | cat > '$w/out'"
	rm -f "$w/out"
done
awk -v size="$size" '
	{ if (!($1 in b) || $2 < b[$1]) b[$1] = $2 }
	END { printf "pack receive: keel %.2f GB/s vs cat > file %.2f GB/s = %.2fx (goal >= 0.8x; %d objects of 2 MiB on tmpfs)\n",
		size / b["keel"] / 1e9, size / b["cat"] / 1e9, b["cat"] / b["keel"], 512 }' "$times"
