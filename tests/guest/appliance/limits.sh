# Runs INSIDE the test appliance VM (tests/appliance/vmtest.sh, one CPU): keel as PID 1 (`keel init`,
# development mode) puts every sandbox in a cgroup v2 of its own with the limits its manifest asks for,
# narrowed by board.conf. Tiny guests (/guest/tiny.elf) spin, hog memory and beat. Prints
# PASS/FAIL lines; exits 1 on any FAIL.
T=/tmp/lim; D=$T/data; S=$D/store; bad=0
ok() { echo "PASS limits: $1"; }
no() { echo "FAIL limits: $1${2:+: $2}"; bad=1; }
mkdir -p $T $D /sys/fs/cgroup
mount -t cgroup2 -o nsdelegate,favordynmods cgroup2 /sys/fs/cgroup 2>/dev/null   # as the board mounts it
snap() { # NAME MODE [vm run options]: a snapshot of the tiny guest, taken as it says hello
	n=$1 m=$2; shift 2
	timeout 60 keel vm run --kernel /guest/tiny.elf --mem 128 --cmdline "tiny=$m" --snapshot-on "tiny: hello" \
		--store $S --name "$n" "$@" </dev/null >/dev/null 2>$T/snap-$n.err || no "snapshot $n" "$(cat $T/snap-$n.err)"
}
up() { cut -d' ' -f1 /proc/uptime; }
# usage_usec of cgroup $1 over $2 seconds, as percent of one CPU
cpu_pct() {
	u0=$(sed -n 's/^usage_usec //p' "$1/cpu.stat"); t0=$(up)
	sleep "$2"
	u1=$(sed -n 's/^usage_usec //p' "$1/cpu.stat"); t1=$(up)
	awk "BEGIN{printf \"%d\", ($u1 - $u0) / (($t1 - $t0) * 1e6) * 100 + 0.5}"
}
# wait_log FILE REGEX SECONDS
wait_log() { i=0; while [ $i -lt $(($3 * 5)) ]; do grep -qE "$2" "$1" && return 0; sleep 0.2; i=$((i + 1)); done; return 1; }
start_init() { # BOARD LOG
	keel init --board "$1" > "$2" 2>&1 &
	ipid=$!
	CG=/sys/fs/cgroup/keel-$ipid
}
stop_init() { kill -TERM $ipid; i=0; while kill -0 $ipid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done; }

snap spin spin --cpu-quota 50
snap narrow idle
snap wide idle --cpu-quota 50
snap hog "hog m=120"
snap beat "count n=100000000 d=30000000"
snap flood flood
snap esc esc

# The attack first: without a cgroup's limits the spinning guest takes the whole CPU.
mkdir -p /sys/fs/cgroup/free
(echo 0 > /sys/fs/cgroup/free/cgroup.procs && exec keel vm restore --store $S spin) >/dev/null 2>&1 &
fp=$!
sleep 2
free=$(cpu_pct /sys/fs/cgroup/free 5)
kill $fp; wait $fp 2>/dev/null
if [ "$free" -ge 80 ]; then ok "unlimited, the spinning guest takes ${free}% of the CPU"; else no "unlimited spin takes the CPU" "${free}%"; fi

# 1. CPU: policy-cpu-quota 50 holds a spinning guest to half a CPU; board narrows, never widens.
cat > $T/a.conf <<EOF
data-dir = $D
insecure-unsigned = yes
verify = manifest
sandbox.spin.health-timeout = 0
sandbox.narrow.health-timeout = 0
sandbox.narrow.cpu-quota = 30
sandbox.narrow.memory-max = 64M
sandbox.wide.health-timeout = 0
sandbox.wide.cpu-quota = 80
EOF
start_init $T/a.conf $T/a.log
if wait_log $T/a.log 'sandbox spin restored' 60 && wait_log $T/a.log 'sandbox narrow restored' 30; then
	sleep 1
	pct=$(cpu_pct $CG/sandbox-spin 10)
	thr=$(sed -n 's/^nr_throttled //p' $CG/sandbox-spin/cpu.stat)
	if [ "$pct" -le 55 ] && [ "$pct" -ge 30 ] && [ "${thr:-0}" -gt 0 ]; then
		ok "policy-cpu-quota 50: the spinning guest used ${pct}% of one CPU over 10 s (cpu.stat; throttled $thr times)"
	else
		no "policy-cpu-quota 50 holds the spinning guest to <= 55%" "${pct}%, nr_throttled $thr"
	fi
	[ "$(cat $CG/sandbox-spin/cpu.max)" = "50000 100000" ] && ok "cpu.max of spin is 50000 100000" ||
		no "cpu.max of spin" "$(cat $CG/sandbox-spin/cpu.max)"
	[ "$(cat $CG/sandbox-spin/memory.oom.group)" = 1 ] && ok "memory.oom.group is 1" || no "memory.oom.group is 1"
	[ "$(cat $CG/sandbox-spin/memory.max)" = $(((128 + 16) << 20)) ] &&
		ok "memory.max of spin: its 128 MiB + 16 MiB for the VMM" || no "memory.max of spin" "$(cat $CG/sandbox-spin/memory.max)"
	[ "$(cat $CG/sandbox-spin/pids.max)" = 9 ] && ok "pids.max of spin is 9 (1 vCPU + 8)" || no "pids.max of spin" "$(cat $CG/sandbox-spin/pids.max)"
	[ "$(cat $CG/sandbox-narrow/cpu.max)" = "30000 100000" ] && [ "$(cat $CG/sandbox-narrow/memory.max)" = 67108864 ] &&
		ok "board.conf narrows: the cgroup shows cpu.max 30000 100000, memory.max 64 MiB" ||
		no "board.conf narrows" "$(cat $CG/sandbox-narrow/cpu.max) $(cat $CG/sandbox-narrow/memory.max)"
	grep -q "sandbox narrow: limits cpu 30% of one CPU, memory 64 MiB, pids 9" $T/a.log &&
		ok "one line at boot gives each sandbox's limits" || no "limits line" "$(grep limits $T/a.log | head -n 3)"
	echo "measured: an idle tiny sandbox's cgroup memory.peak $(($(cat $CG/sandbox-narrow/memory.peak) >> 10)) KiB, spin's $(($(cat $CG/sandbox-spin/memory.peak) >> 10)) KiB, of which $(awk '/^(kernel|sec_pagetables|anon) / { printf "%s %d KiB ", $1, $2 / 1024 }' $CG/sandbox-spin/memory.stat)(memory.max allows 16 MiB beside the guest)"
	grep -E 'keel-init|limits' $T/a.log | head -n 3
else
	no "sandboxes spin and narrow restored" "$(tail -n 5 $T/a.log)"
fi
if grep -q "sandbox wide: not started: board.conf sandbox.wide.cpu-quota 80 is wider than the manifest's policy-cpu-quota 50" $T/a.log &&
   ! grep -q "sandbox wide restored" $T/a.log && ! grep -q "wide.*failed" $T/a.log; then
	ok "a board value wider than the manifest is refused with one line, no snapshot blamed"
else
	no "wider board value refused" "$(grep wide $T/a.log | head -n 3)"
fi
stop_init
[ -d $CG ] && no "keel init removes its cgroups at exit" || ok "keel init removes its cgroups at exit"

# 2. Memory: a guest past its budget is killed as a unit and restarted; PID 1 and the others go on.
cat > $T/b.conf <<EOF
data-dir = $D
insecure-unsigned = yes
verify = manifest
restart-backoff-ms = 200
sandbox.hog.health-timeout = 0
sandbox.hog.memory-max = 48M
sandbox.hog.restart-limit = 100
sandbox.beat.health-timeout = 0
EOF
start_init $T/b.conf $T/b.log
if wait_log $T/b.log 'sandbox hog: died .*out of memory' 90; then
	ok "hog: killed at memory.max 48 MiB as a unit ($(grep -m1 'sandbox hog: died' $T/b.log | sed 's/.*died (//; s/);.*//'))"
	n0=$(grep -c 'tiny: count' $T/b.log); sleep 3; n1=$(grep -c 'tiny: count' $T/b.log)
	grk=$(sed -n 's/^oom_group_kill //p' $CG/sandbox-hog/memory.events)
	if [ "${grk:-0}" -ge 1 ]; then ok "memory.events oom_group_kill $grk"; else no "oom_group_kill counted" "$(cat $CG/sandbox-hog/memory.events)"; fi
	if [ "$n1" -gt "$n0" ] && kill -0 $ipid && [ "$(cat $CG/sandbox-beat/cgroup.procs | wc -l)" -ge 1 ] &&
	   ! grep -q 'sandbox beat: died' $T/b.log; then
		ok "beat keeps beating and PID 1 runs on ($n0 -> $n1 lines)"
	else
		no "beat and PID 1 unaffected" "$n0 -> $n1; $(grep beat $T/b.log | tail -n 2)"
	fi
	if wait_log $T/b.log 'sandbox hog: restoring .*' 5 && [ "$(grep -c 'sandbox hog restored' $T/b.log)" -ge 2 ]; then
		ok "hog restarted by the supervisor ($(grep -c 'sandbox hog restored' $T/b.log) restores)"
	else
		no "hog restarted" "$(grep hog $T/b.log | tail -n 3)"
	fi
else
	no "hog killed for its memory" "$(grep -E 'hog|limits' $T/b.log | tail -n 5)"
fi
stop_init

# 3. Console streams: a guest printing as fast as it can for 10 s does not slow another sandbox's
# heartbeat or PID 1, through a console that is slow to read (a timestamping awk on a FIFO); a guest's
# escape sequences arrive escaped.
ESC=$(printf '\033')
stamp_init() { # BOARD LOG: keel init's output, each line stamped with the uptime it arrived at
	rm -f $T/fifo; mkfifo $T/fifo; : > "$2"
	awk '{ getline u < "/proc/uptime"; close("/proc/uptime"); split(u, a, " "); print a[1], $0; fflush() }' \
		< $T/fifo > "$2" &
	apid=$!
	keel init --board "$1" > $T/fifo 2>&1 &
	ipid=$!
}
beats() { # LOG FROM TO: beat lines that arrived in [FROM, TO), and the longest gap between two
	awk -v f="$2" -v t="$3" '$1 >= f && $1 < t && / beat\| tiny: count / { if (n && $1 - p > g) g = $1 - p; p = $1; n++ }
		END { printf "%d %.2f\n", n, g }' "$1"
}
printf '%s\n' "data-dir = $D" "insecure-unsigned = yes" "verify = manifest" "sandbox.beat.health-timeout = 0" > $T/c1.conf
cp $T/c1.conf $T/c2.conf
# The beat is a busy loop and the appliance has one emulated CPU: the flood gets a quarter of it (and
# so prints ~2 KB/s), the console 256 bytes/s of each sandbox.
printf '%s\n' "console-dir = $T/con" "console-rate = 256" "sandbox.flood.health-timeout = 0" \
	"sandbox.flood.cpu-quota = 25" "sandbox.esc.health-timeout = 0" >> $T/c2.conf
stamp_init $T/c1.conf $T/c1.log
wait_log $T/c1.log 'sandbox beat restored' 60; sleep 2; f=$(up); sleep 8; set -- $(beats $T/c1.log $f $(up))
alone=$1 gap0=$2
stop_init; wait $apid
stamp_init $T/c2.conf $T/c2.log
if wait_log $T/c2.log 'sandbox flood restored' 60 && wait_log $T/c2.log 'flood\| tiny: flood' 10; then
	sleep 1; f=$(up); sleep 4
	s0=$(up); kill -USR1 $ipid; sleep 6; t=$(up)
	set -- $(beats $T/c2.log $f $t)
	flooded=$1 gap1=$2
	sig=$(awk -v s="$s0" '/SIGUSR1: re-reading refs/ { printf "%.2f", $1 - s; exit }' $T/c2.log)
	shown=$(awk -v f="$f" -v t="$t" '$1 >= f && $1 < t && /flood\| tiny: flood/' $T/c2.log | wc -l)
	echo "measured: beat lines in 8 s alone $alone (longest gap $gap0 s), in 10 s beside the flood $flooded (longest gap $gap1 s); flood lines shown in 10 s: $shown; PID 1 answered SIGUSR1 in ${sig:-never} s"
	# the beat is a busy loop sharing the one CPU with the flood (at most 25%), PID 1 and the reader:
	# its rate falls with its share (about half here); a stalled console would show as a long gap
	if [ "$flooded" -ge $((alone * 10 / 8 / 3)) ] && awk "BEGIN{exit !($gap1 < 0.5)}"; then
		ok "beside a flooding guest another sandbox keeps its heartbeat ($flooded beats in 10 s beside it, $alone in 8 s alone, on one CPU; longest gap $gap1 s)"
	else
		no "heartbeat beside the flood" "$flooded beats in 10 s vs $alone in 8 s alone, longest gap $gap1 s"
	fi
	if [ -n "$sig" ] && awk "BEGIN{exit !($sig < 1)}"; then
		ok "PID 1 answers a signal in $sig s during the flood (its loop, and so its watchdog pets, keep their rhythm)"
	else
		no "PID 1 answers during the flood" "${sig:-no answer}"
	fi
	# within 1 KiB at once + 256 bytes/s: at most ~57 lines of ~63 bytes in 10 s
	if [ "$shown" -gt 5 ] && [ "$shown" -le 70 ] && grep -q 'flood| \[[0-9]* lines over 256 bytes/s not shown' $T/c2.log; then
		ok "the flood reaches the console within its budget ($shown lines in 10 s) and says what it left out"
	else
		no "flood rate-limited" "$shown lines; $(grep -m1 'not shown' $T/c2.log)"
	fi
	stop_init; wait $apid
	# the ring, saved at exit: the newest lines, among them ones the console never showed
	sed -n 's/.*flood| tiny: flood \([0-9]*\) .*/\1/p' $T/c2.log > $T/shown
	sed -n 's/^tiny: flood \([0-9]*\) .*/\1/p' $T/con/flood.log > $T/ring
	unseen=$(awk 'NR == FNR { s[$1] = 1; next } !($1 in s)' $T/shown $T/ring | wc -l)
	if [ "$(wc -l < $T/ring)" -gt 0 ] && [ "$(wc -c < $T/con/flood.log)" -le 16384 ] && [ "$unseen" -gt 0 ] &&
	   [ "$(tail -n 1 $T/ring)" -ge "$(tail -n 1 $T/shown)" ]; then
		ok "the ring (console-dir/flood.log, $(wc -c < $T/con/flood.log) bytes) keeps the newest lines, $unseen of them never shown on the console"
	else
		no "ring keeps the newest lines" "ring $(wc -l < $T/ring) lines, last $(tail -n 1 $T/ring), unseen $unseen, console last $(tail -n 1 $T/shown)"
	fi
else
	no "flood sandbox runs" "$(tail -n 5 $T/c2.log)"
fi
if grep -qF 'esc| tiny: esc \x1b[2J\x1b]0;owned\x07\x1b[31mred\x1b[0m bell\x07 back\x08 cr end' $T/c2.log &&
   ! grep -q "$ESC" $T/c2.log; then
	ok "a guest's escape sequences reach the console escaped (no ESC byte in the console's output)"
else
	no "escape sequences escaped" "$(grep 'esc|' $T/c2.log | head -n 2)"
fi
stop_init; wait $apid 2>/dev/null
exit $bad
