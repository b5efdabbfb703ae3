# VMM speed on the host's /dev/kvm with the tiny guest: KVM setup order, restore latency
# (restore call -> first guest exit) for 128 MiB and 1 GiB snapshots, per-step times, RSS.
set -u
: "${KEEL:=build/keel}" "${KEEL_BUILD:=build}"
TINY=$KEEL_BUILD/tests/guest/tiny.elf
if [ ! -c /dev/kvm ] || [ ! -f "$TINY" ]; then
	echo "vmm: skipped (no /dev/kvm or no tiny guest)"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
N=${VMM_BENCH_RUNS:-15}

# median FIELD FILE: median of "FIELD X us" over the timing lines in FILE
median() { grep -o "$1 [0-9.]* us" "$2" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk "BEGIN { printf \"%.2f\", $1 / $2 }"; }

: > "$tmp/boot"; : > "$tmp/boot_bad"
for i in $(seq "$N"); do
	"$KEEL" vm run --kernel "$TINY" --cmdline tiny=hello --timing </dev/null 2>>"$tmp/boot" >/dev/null
	"$KEEL" vm run --kernel "$TINY" --cmdline tiny=hello --timing --irqchip-first </dev/null 2>>"$tmp/boot_bad" >/dev/null
done
for f in boot boot_bad; do
	eval "${f}_setup=\$(awk '{print}' \"\$tmp/$f\" | sed -E 's/.*vm_create ([0-9.]+) us, mem_slots ([0-9.]+) us, irqchip ([0-9.]+) us, vcpus ([0-9.]+) us.*/\\1 \\2 \\3 \\4/' | awk '{print \$1+\$2+\$3+\$4}' | sort -n | awk '{a[NR]=\$1} END {print a[int((NR+1)/2)]}')"
done
echo "vmm kvm setup path (VM, 256 MiB slot, irqchip+PIT, vCPU; median of $N): keel memory-first ${boot_setup} us vs irqchip-first ${boot_bad_setup} us = $(ratio "$boot_setup" "$boot_bad_setup")"
echo "vmm boot steps (median us): vm_create $(median vm_create "$tmp/boot") mem_slots $(median mem_slots "$tmp/boot") irqchip $(median irqchip "$tmp/boot") vcpus $(median vcpus "$tmp/boot") vcpu_state $(median vcpu_state "$tmp/boot")"

S=$tmp/store
for m in 128 1024; do
	"$KEEL" vm run --kernel "$TINY" --mem "$m" --cmdline "tiny=count n=3" --snapshot-on "count 1." \
		--store "$S" --name "t$m" </dev/null >/dev/null 2>&1 || { echo "vmm: snapshot of $m MiB failed"; exit 0; }
	: > "$tmp/r$m"
	for i in $(seq "$N"); do
		"$KEEL" vm restore --store "$S" "t$m" --timing </dev/null 2>>"$tmp/r$m" >/dev/null
	done
done
r128=$(median total "$tmp/r128"); r1g=$(median total "$tmp/r1024")
echo "vmm restore latency (restore call -> first guest exit, median of $N): keel 1 GiB ${r1g} us vs keel 128 MiB ${r128} us = $(ratio "$r1g" "$r128") (goal: < 1000 us, flat)"
for m in 128 1024; do
	echo "vmm restore steps $m MiB (median us): manifest $(median manifest "$tmp/r$m") map $(median map "$tmp/r$m") vm_create $(median vm_create "$tmp/r$m") mem_slots $(median mem_slots "$tmp/r$m") irqchip $(median irqchip "$tmp/r$m") vcpus $(median vcpus "$tmp/r$m") devices $(median devices "$tmp/r$m") vm_state $(median vm_state "$tmp/r$m") vcpu_state $(median vcpu_state "$tmp/r$m") first_exit $(median first_exit "$tmp/r$m")"
done
if command -v /usr/bin/time >/dev/null; then
	rss=$(/usr/bin/time -f %M "$KEEL" vm restore --store "$S" t1024 </dev/null 2>&1 >/dev/null | tail -n 1)
	echo "vmm RSS of a restored 1 GiB tiny guest (max, guest pages touched included): keel ${rss} KiB vs goal 2048 KiB = $(ratio "$rss" 2048)"
fi
