# VMM speed on the host's /dev/kvm with the tiny guest: KVM setup order, restore latency
# (restore call -> first guest exit) for 128 MiB and 1 GiB snapshots, per-step times, RSS.
set -u
: "${KEEL:=build/keel}" "${KEEL_BUILD:=build}"
TINY=$KEEL_BUILD/tests/guest/tiny.elf
if [ ! -c /dev/kvm ] || [ ! -f "$TINY" ]; then
	echo "vmm: skipped (no /dev/kvm or no tiny guest)"
	exit 0
fi
tmp=$(mktemp -d); [ -n "${VMM_BENCH_KEEP:-}" ] && echo "vmm: keeping $tmp"
trap '[ -n "${VMM_BENCH_KEEP:-}" ] || rm -rf "$tmp"' EXIT
N=${VMM_BENCH_RUNS:-15}

# median FIELD FILE: median of "FIELD X us" over the timing lines in FILE
median() { grep -o "$1 [0-9.]* us" "$2" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# best FIELD FILE: the smallest (keel's own cost when the busy host did not get in the way)
best() { grep -o "$1 [0-9.]* us" "$2" | awk '{print $2}' | sort -n | head -n 1; }
ratio() { awk "BEGIN { printf \"%.2f\", $1 / $2 }"; }

# These machines run other work beside the bench: the timed runs get SCHED_FIFO (chrt) where
# allowed, keel and its peer alike, so the figures are their own cost rather than the run queue's.
RT=
chrt -f 10 true 2>/dev/null && RT="chrt -f 10"
: > "$tmp/boot"; : > "$tmp/boot_bad"
for i in $(seq "$N"); do
	$RT "$KEEL" vm run --kernel "$TINY" --cmdline tiny=hello --timing </dev/null 2>>"$tmp/boot" >/dev/null
	$RT "$KEEL" vm run --kernel "$TINY" --cmdline tiny=hello --timing --irqchip-first </dev/null 2>>"$tmp/boot_bad" >/dev/null
done
for f in boot boot_bad; do
	eval "${f}_setup=\$(awk '{print}' \"\$tmp/$f\" | sed -E 's/.*vm_create ([0-9.]+) us, mem_slots ([0-9.]+) us, irqchip ([0-9.]+) us, vcpus ([0-9.]+) us.*/\\1 \\2 \\3 \\4/' | awk '{print \$1+\$2+\$3+\$4}' | sort -n | awk '{a[NR]=\$1} END {print a[int((NR+1)/2)]}')"
done
echo "vmm kvm setup path (VM, 256 MiB slot, irqchip+PIT, vCPU; median of $N): keel memory-first ${boot_setup} us vs irqchip-first ${boot_bad_setup} us = $(ratio "$boot_setup" "$boot_bad_setup")"
echo "vmm boot steps (median us): vm_create $(median vm_create "$tmp/boot") mem_slots $(median mem_slots "$tmp/boot") irqchip $(median irqchip "$tmp/boot") vcpus $(median vcpus "$tmp/boot") vcpu_state $(median vcpu_state "$tmp/boot")"

# Restores run SETTLE seconds apart: tearing a VM down leaves the host's RCU/SRCU busy for tens of
# ms, which slows the next VM's memory slot and irqchip setup by milliseconds; an appliance's
# restores do not follow a teardown, so spacing them measures keel's cost rather than that.
SETTLE=${VMM_BENCH_SETTLE:-0.1}
S=$tmp/store
for m in 128 1024; do
	"$KEEL" vm run --kernel "$TINY" --mem "$m" --cmdline "tiny=count n=3" --snapshot-on "count 1." \
		--store "$S" --name "t$m" </dev/null >/dev/null 2>&1 || { echo "vmm: snapshot of $m MiB failed"; exit 0; }
	: > "$tmp/r$m"
done
"$KEEL" image build --store "$S" -o "$tmp/snap.img" >/dev/null 2>&1
for i in $(seq "$N"); do
	for m in 128 1024; do
		sleep "$SETTLE"
		$RT "$KEEL" vm restore --store "$S" "t$m" --timing </dev/null 2>>"$tmp/r$m" >/dev/null
		sleep "$SETTLE"
		$RT "$KEEL" vm restore --image "$tmp/snap.img" "t$m" --timing </dev/null 2>>"$tmp/i$m" >/dev/null
	done
done
r128=$(median total "$tmp/r128"); r1g=$(median total "$tmp/r1024")
i128=$(median total "$tmp/i128"); i1g=$(median total "$tmp/i1024")
echo "vmm restore latency (restore call -> first guest exit, median of $N): keel 1 GiB ${r1g} us vs keel 128 MiB ${r128} us = $(ratio "$r1g" "$r128") (goal: < 1000 us, flat)"
echo "vmm restore latency from the partition image (median of $N): keel 1 GiB ${i1g} us vs keel 128 MiB ${i128} us = $(ratio "$i1g" "$i128")"
echo "vmm restore latency, image vs store, 128 MiB: keel image ${i128} us vs keel store ${r128} us = $(ratio "$i128" "$r128")"
b128=$(best total "$tmp/r128"); b1g=$(best total "$tmp/r1024")
echo "vmm restore latency, best of $N (host noise excluded): keel 1 GiB ${b1g} us vs keel 128 MiB ${b128} us = $(ratio "$b1g" "$b128")"
for m in 128 1024; do
	printf 'vmm restore steps %s MiB (median us, slowest first):' "$m"
	for f in manifest map vm_create mem_slots irqchip vcpus devices vm_state vcpu_state first_exit; do
		echo "$(median "$f" "$tmp/r$m") $f"
	done | sort -rn | awk '{ printf " %s %s", $2, $1 } END { print "" }'
done
# The jail (init/jail.c) beside no jail, as PID 1 restores: into a network namespace made
# beforehand (PID 1 makes one at boot; here `ip netns add`), from the partition image and from
# the store (bound into the jail). Jailed cost = the jail step + the restore after it.
NS=keel-bench-$$
if ip netns add "$NS" 2>/dev/null; then
	: > "$tmp/jn"; : > "$tmp/ji"; : > "$tmp/js"
	for i in $(seq "$N"); do
		sleep "$SETTLE"
		$RT "$KEEL" vm restore --no-jail --image "$tmp/snap.img" t128 --timing </dev/null 2>>"$tmp/jn" >/dev/null
		sleep "$SETTLE"
		$RT "$KEEL" vm restore --netns "/run/netns/$NS" --image "$tmp/snap.img" t128 --timing </dev/null \
			2>>"$tmp/ji" >/dev/null
		sleep "$SETTLE"
		$RT "$KEEL" vm restore --netns "/run/netns/$NS" --store "$S" t128 --timing </dev/null \
			2>>"$tmp/js" >/dev/null
	done
	ip netns del "$NS"
	jn=$(median total "$tmp/jn")
	for k in ji js; do
		grep -o "jail [0-9.]* us" "$tmp/$k" | awk '{print $2}' > "$tmp/$k.jail"
		grep -o "total [0-9.]* us" "$tmp/$k" | awk '{print $2}' > "$tmp/$k.total"
		eval "${k}_sum=\$(paste \"\$tmp/$k.jail\" \"\$tmp/$k.total\" | awk '{print \$1 + \$2}' | sort -n | awk '{a[NR]=\$1} END {print a[int((NR+1)/2)]}')"
		eval "${k}_jail=\$(sort -n \"\$tmp/$k.jail\" | awk '{a[NR]=\$1} END {print a[int((NR+1)/2)]}')"
	done
	echo "vmm restore with the jail, 128 MiB from the image (jail step + restore, median of $N): keel jailed ${ji_sum} us (jail ${ji_jail} us) vs keel unjailed ${jn} us = $(ratio "$ji_sum" "$jn") (goal: the jail adds < 300 us)"
	echo "vmm restore with the jail, 128 MiB from the store (bound into the jail, median of $N): keel jailed ${js_sum} us (jail ${js_jail} us) vs keel unjailed image ${jn} us = $(ratio "$js_sum" "$jn")"
else
	echo "vmm restore with the jail: skipped (cannot make a network namespace here)"
fi
if command -v /usr/bin/time >/dev/null; then
	rss=$(/usr/bin/time -f %M "$KEEL" vm restore --store "$S" t1024 </dev/null 2>&1 >/dev/null | tail -n 1)
	echo "vmm RSS of a restored 1 GiB tiny guest (max, guest pages touched included): keel ${rss} KiB vs goal 2048 KiB = $(ratio "$rss" 2048)"
fi
