# keel as PID 1 in a PID namespace (unshare): restore from image and data store, rollback,
# failure records, corrupt/truncated/missing partitions, crash restarts, orphans, SIGTERM, SIGHUP.
# Sandboxes are a runner script we control (board.conf "runner"), speaking the --ready-fd protocol.
. "$(dirname "$0")/../lib.sh"

if ! unshare -fp --mount-proc true 2>/dev/null; then
	skip "all" "cannot create a PID namespace here (unshare -fp failed)"
	exit 0
fi

T=$T_TMP
[ -n "${KEEL_KEEP_TMP:-}" ] && trap - EXIT
K=$KEEL
mkdir -p "$T/run"

# ---- fixtures: a store with web (M1 <- M2) and db (D1); image built from it ----
$K store init "$T/s" >/dev/null
mkmem() { head -c 8192 /dev/urandom > "$1"; }
mkmem "$T/m1"; mkmem "$T/m2"; mkmem "$T/m3"; mkmem "$T/d1"
M1=$($K manifest create --store "$T/s" --name web --memory-file "$T/m1" --chunk 4096 --activate)
M2=$($K manifest create --store "$T/s" --name web --parent "$M1" --memory-file "$T/m2" --chunk 4096 --activate)
D1=$($K manifest create --store "$T/s" --name db --memory-file "$T/d1" --chunk 4096 --activate)
$K image build --store "$T/s" -o "$T/snap.img" >/dev/null || { fail "fixture: image build"; exit 0; }
# The data store's newer web snapshot M3 (parent M2, which only the image holds).
mkdir -p "$T/data"
$K store init "$T/data/store" >/dev/null
M3=$($K manifest create --store "$T/data/store" --name web --parent "$M2" --memory-file "$T/m3" --chunk 4096 --activate)

# The runner: behaviour per snapshot id from $RUN/behave-ID (default: healthy and running).
RUN=$T/run
cat > "$RUN/runner" <<'EOF'
#!/bin/bash
# keel vm restore (--image|--store) PATH ID --ready-fd N [--health M]
dir=$(dirname "$0")
kind=$3 id=$5 fd=$7
echo "${kind#--} $id" >> "$dir/launches"
b=$(cat "$dir/behave-$id" 2>/dev/null || cat "$dir/behave" 2>/dev/null || echo healthy)
case $b in
healthy) echo restored >&"$fd"; echo healthy >&"$fd"; exec sleep 1000 ;;
crash) echo restored >&"$fd"; echo healthy >&"$fd"; sleep 0.2; exit 1 ;;
never-healthy) echo restored >&"$fd"; exec sleep 1000 ;;
fail) echo "runner: restore failed" >&2; exit 1 ;;
stubborn) trap '' TERM; echo restored >&"$fd"; echo healthy >&"$fd"; while :; do sleep 1; done ;;
orphan) (sleep 0.5 &); echo restored >&"$fd"; echo healthy >&"$fd"; exec sleep 1000 ;;
esac
EOF
chmod +x "$RUN/runner"

board() { # board NAME [extra lines...]: the stub runner; unsigned snapshots allowed unless a line names a trusted key
	local f=$T/$1.conf; shift
	{
		case " $* " in *"trusted-key ="*) ;; *) echo "insecure-unsigned = yes" ;; esac
		echo "runner = $RUN/runner"
		echo "restart-backoff-ms = 50"
		echo "shutdown-timeout = 2"
		printf '%s\n' "$@"
	} > "$f"
	echo "$f"
}

KPID= UPID= LOG=
start_init() { # start_init CONF LOG
	LOG=$2
	: > "$RUN/launches"
	unshare -fp --mount-proc "$K" init --board "$1" > "$LOG" 2>&1 &
	UPID=$!
	KPID=
	for _ in $(seq 100); do
		KPID=$(cat /proc/$UPID/task/$UPID/children 2>/dev/null | awk '{print $1}')
		[ -n "$KPID" ] && break
		sleep 0.02
	done
}
wait_log() { # wait_log PATTERN [SECONDS]
	local i n=$(( ${2:-5} * 20 ))
	for ((i = 0; i < n; i++)); do
		grep -q -- "$1" "$LOG" && return 0
		sleep 0.05
	done
	return 1
}
stop_init() {
	[ -n "$KPID" ] && kill -TERM "$KPID" 2>/dev/null
	wait "$UPID" 2>/dev/null
	local st=$?
	KPID= UPID=
	return $st
}
launched() { grep -c -- "$1" "$RUN/launches" || true; }
short() { echo "${1:0:12}"; }

# 1. Every autostart sandbox restored from the image, in parallel, with a timeline.
c=$(board boot "image = $T/snap.img" "sandbox.web.health-timeout = 5" "sandbox.db.health-timeout = 5")
start_init "$c" "$T/boot.log"
check "boot: web and db become healthy from the image" eval 'wait_log "sandbox db healthy" 5 && wait_log "sandbox web healthy" 5'
check "boot: web restored from the image's ref" grep -q "image $M2" "$RUN/launches"
check "boot: timeline has init start, partition opened, restored, healthy" sh -c \
	"grep -q '] init start' '$LOG' && grep -q '] partition opened' '$LOG' && grep -q '] sandbox web restored' '$LOG' && grep -q '] sandbox web healthy' '$LOG'"
check_status "boot: SIGTERM exits 0 in development mode" 0 stop_init
check "boot: both sandboxes stopped on shutdown" sh -c "grep -q 'sandbox web: stopped' '$LOG' && grep -q 'sandbox db: stopped' '$LOG'"

# 2. The data store's newest snapshot wins over the image.
c=$(board data "image = $T/snap.img" "data-dir = $T/data" "sandbox.web.health-timeout = 5")
start_init "$c" "$T/data.log"
check "data store: newest snapshot (M3) restored from the data store" wait_log "sandbox web healthy" 5
check "data store: launched with --store and M3" grep -q "store $M3" "$RUN/launches"
stop_init

# 3. Never healthy -> rollback to the parent in the image; the failure is recorded and not retried.
echo never-healthy > "$RUN/behave-$M3"
c=$(board rollback "image = $T/snap.img" "data-dir = $T/data" "sandbox.web.health-timeout = 1")
start_init "$c" "$T/rb.log"
check "never healthy: rolled back to M2 from the image" wait_log "rolling back to $(short "$M2") (image)" 6
check "never healthy: M2 becomes healthy" wait_log "sandbox web healthy ($(short "$M2")" 5
check "never healthy: failure recorded on the data partition" grep -q "^$M3 " "$T/data/keel-init-failed"
stop_init
start_init "$c" "$T/rb2.log"
wait_log "sandbox web healthy" 5
check "never healthy: next boot does not retry M3" sh -c "[ \$(grep -c '$M3' '$RUN/launches') = 0 ] && grep -q '$M2' '$RUN/launches'"
stop_init
rm -f "$RUN/behave-$M3" "$T/data/keel-init-failed"

# 4. Restore fails (runner exits 1) -> rollback.
echo fail > "$RUN/behave-$M3"
start_init "$c" "$T/fail.log"
check "restore failure: rolled back to M2" wait_log "sandbox web healthy ($(short "$M2")" 5
check "restore failure: reason logged" grep -q "exit status 1 before it was healthy" "$LOG"
stop_init
rm -f "$RUN/behave-$M3" "$T/data/keel-init-failed"

# 5. Corrupt object in the newest snapshot (data store) -> named, rolled back.
obj=$($K manifest show --store "$T/data/store" "$M3" | awk '$1 == "chunk" {print $3; exit}')
cp "$T/data/store/objects/$obj" "$T/obj.save"
chmod u+w "$T/data/store/objects/$obj"
printf '\x00\x01' | dd of="$T/data/store/objects/$obj" bs=1 seek=100 conv=notrunc 2>/dev/null
start_init "$c" "$T/corrupt.log"
check "corrupt data-store object: rolled back to M2" wait_log "sandbox web healthy ($(short "$M2")" 5
check "corrupt data-store object: the object is named" grep -q "corrupt object $obj" "$LOG"
stop_init
cp "$T/obj.save" "$T/data/store/objects/$obj"
rm -f "$T/data/keel-init-failed"

# 5b. Rollback follows the ref's history: pushes V1, V2, V3; V3 never healthy -> V2 (not V1, not the image).
mkdir -p "$T/hdata"
$K store init "$T/hdata/store" >/dev/null
for v in 1 2 3; do mkmem "$T/v$v"; done
V1=$($K manifest create --store "$T/hdata/store" --name web --memory-file "$T/v1" --chunk 4096 --activate)
V2=$($K manifest create --store "$T/hdata/store" --name web --parent "$V1" --memory-file "$T/v2" --chunk 4096 --activate)
V3=$($K manifest create --store "$T/hdata/store" --name web --parent "$V1" --memory-file "$T/v3" --chunk 4096 --activate)
$K store log "$T/hdata/store" web > "$T/hlog.out"
check "history: keel store log lists V3 (current), V2, V1 newest first" sh -c \
	"[ \"\$(awk '{print \$1, \$3}' '$T/hlog.out' | tr '\n' ,)\" = '$V3 current,$V2 ,$V1 ,' ]"
echo never-healthy > "$RUN/behave-$V3"
c=$(board hist "image = $T/snap.img" "data-dir = $T/hdata" "sandbox.web.health-timeout = 1" "sandbox.db.autostart = no")
start_init "$c" "$T/hist.log"
check "history: V3 never healthy, rolled back to the previously pushed V2" wait_log "rolling back to $(short "$V2") (data store)" 6
check "history: V2 becomes healthy" wait_log "sandbox web healthy ($(short "$V2")" 5
check "history: neither V1 nor the image was launched" sh -c "! grep -q -e '$V1' -e '^image' '$RUN/launches'"
stop_init
start_init "$c" "$T/hist2.log"
check "history: after a restart V2 is picked again" wait_log "sandbox web healthy ($(short "$V2")" 5
check "history: after a restart V3 is not retried" sh -c "! grep -q '$V3' '$RUN/launches'"
stop_init
# Corrupt history lines are skipped with a log line; the good entries still lead to V2.
chmod u+w "$T/hdata/store/logs/web"
printf 'garbage\n\001\377 1\n' >> "$T/hdata/store/logs/web"
start_init "$c" "$T/hist3.log"
check "history: malformed lines are skipped and logged" wait_log "2 malformed lines in the history of ref web skipped" 5
check "history: with a damaged history V2 still runs" wait_log "sandbox web healthy ($(short "$V2")" 5
check "history: init still running" kill -0 "$KPID"
stop_init
# V2 restore fails too: the walk goes on to V1 (still before the image).
rm -f "$T/hdata/keel-init-failed"
echo fail > "$RUN/behave-$V2"
start_init "$c" "$T/hist4.log"
check "history: V3 and V2 failing roll back to V1" wait_log "sandbox web healthy ($(short "$V1")" 8
check "history: the image was not needed" sh -c "! grep -q '^image' '$RUN/launches'"
stop_init
rm -f "$RUN/behave-$V2" "$RUN/behave-$V3"
# A crash between writing the history and moving the ref leaves the history one entry ahead (V3 recorded,
# ref still V2): the walk starts below the ref's value, so V3 is never taken for an older snapshot.
rm -f "$T/hdata/keel-init-failed"
rm -f "$T/hdata/store/refs/web" "$T/hdata/store/logs/web"
printf '%s\n' "$V2" > "$T/hdata/store/refs/web"
printf '%s 1\n%s 2\n%s 3\n' "$V1" "$V2" "$V3" > "$T/hdata/store/logs/web"
echo fail > "$RUN/behave-$V2"
start_init "$c" "$T/hist5.log"
check "history ahead of the ref: V2 failing rolls back to V1" wait_log "sandbox web healthy ($(short "$V1")" 8
check "history ahead of the ref: V3 (never the ref's value) is not launched" sh -c "! grep -q '$V3' '$RUN/launches'"
stop_init
rm -f "$RUN/behave-$V2" "$T/hdata/keel-init-failed"

# 6. Flipped byte in an image object of M2 -> named, M1 used.
obj2=$($K manifest show --store "$T/s" "$M2" | awk '$1 == "chunk" {print $3; exit}')
off=$($K image ls -l "$T/snap.img" | awk -v id="$obj2" '$2 == id {print $3}')
cp "$T/snap.img" "$T/flip.img"
printf '\xff' | dd of="$T/flip.img" bs=1 seek=$((off + 17)) conv=notrunc 2>/dev/null
c=$(board flip "image = $T/flip.img" "sandbox.web.health-timeout = 5")
start_init "$c" "$T/flip.log"
check "flipped image object: M1 used" wait_log "sandbox web healthy ($(short "$M1")" 5
check "flipped image object: the object is named" grep -q "corrupt object $obj2" "$LOG"
stop_init
check_status "flipped image object: keel image verify exits 1" 1 "$K" image verify "$T/flip.img"
check "flipped image object: verify names it" grep -q "bad object $obj2" "$T_TMP/.err"

# 7. Flipped byte in header / index: partition refused, data store still used, init keeps running.
for where in 20 4200 4300; do
	cp "$T/snap.img" "$T/hdr.img"
	printf '\x5a' | dd of="$T/hdr.img" bs=1 seek=$where conv=notrunc 2>/dev/null
	c=$(board hdr "image = $T/hdr.img" "data-dir = $T/data" "sandbox.web.health-timeout = 5")
	start_init "$c" "$T/hdr$where.log"
	check "flipped image byte $where: partition refused" wait_log "snapshot partition refused" 3
	check "flipped image byte $where: web still runs from the data store" wait_log "sandbox web healthy ($(short "$M3")" 5
	check "flipped image byte $where: the image's M2 was not used" sh -c "! grep -q '$M2' '$RUN/launches'"
	check_status "flipped image byte $where: init still answers SIGTERM" 0 stop_init
done

# 8. Truncated image and missing partition: clear error, init keeps running.
head -c 6000 "$T/snap.img" > "$T/trunc.img"
c=$(board trunc "image = $T/trunc.img" "sandbox.web.health-timeout = 5")
start_init "$c" "$T/trunc.log"
check "truncated image: refused as truncated" wait_log "refused: truncated" 3
check "truncated image: sandbox reported as having no snapshot" wait_log "no snapshot named 'web'" 3
check "truncated image: init is still running" kill -0 "$KPID"
check_status "truncated image: SIGTERM exits 0" 0 stop_init
c=$(board missing "image = $T/no-such-partition" "sandbox.web.health-timeout = 5")
start_init "$c" "$T/missing.log"
check "missing partition: clear error naming it" wait_log "refused: $T/no-such-partition: No such file or directory" 3
sleep 0.3
check "missing partition: init is still running" kill -0 "$KPID"
check_status "missing partition: SIGTERM exits 0" 0 stop_init

# 9. Crash after healthy: restarted with backoff, stopped after the limit.
echo crash > "$RUN/behave"
c=$(board crash "image = $T/snap.img" "sandbox.web.restart-limit = 2" "sandbox.db.autostart = no")
start_init "$c" "$T/crash.log"
check "crash: restarted (1/2)" wait_log "restart 1/2" 5
check "crash: restarted (2/2)" wait_log "restart 2/2" 5
check "crash: gives up after the limit" wait_log "giving up (restart limit 2)" 5
sleep 0.5
check "crash: 3 launches in total" sh -c "[ \$(grep -c . '$RUN/launches') = 3 ]"
check "crash: init is still running" kill -0 "$KPID"
stop_init
rm -f "$RUN/behave"

# 10. Orphans are reaped.
echo orphan > "$RUN/behave"
c=$(board orphan "image = $T/snap.img" "sandbox.web.autostart = yes")
start_init "$c" "$T/orphan.log"
check "orphan: grandchild reparented to init is reaped" wait_log "reaped orphan" 5
zombies=$(for p in /proc/[0-9]*; do awk -v k="$KPID" '/^State:/ {s=$2} /^PPid:/ {pp=$2} END {if (s == "Z" && pp == k) print "z"}' "$p/status" 2>/dev/null; done | wc -l)
check "orphan: no zombie children of init" [ "$zombies" = 0 ]
stop_init
rm -f "$RUN/behave"

# 11. SIGTERM: every sandbox stops (SIGKILL for one that ignores SIGTERM) within the bound.
echo stubborn > "$RUN/behave-$D1"
c=$(board term "image = $T/snap.img" "sandbox.web.autostart = yes" "sandbox.db.autostart = yes")
start_init "$c" "$T/term.log"
wait_log "sandbox db healthy" 5
wait_log "sandbox web healthy" 5
t0=$(date +%s%N)
stop_init; st=$?
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
check "SIGTERM: exit 0" [ "$st" = 0 ]
check "SIGTERM: the stubborn sandbox was killed after shutdown-timeout" grep -q "sandbox db: did not stop in time" "$LOG"
check "SIGTERM: done within shutdown-timeout + 3 s (took ${ms} ms)" [ "$ms" -lt 5000 ]
check "SIGTERM: both sandboxes reported stopped" sh -c "grep -q 'sandbox web: stopped' '$LOG' && grep -q 'sandbox db: stopped' '$LOG'"
rm -f "$RUN/behave-$D1"

# 12. SIGHUP re-reads the configuration: a new sandbox starts.
c=$(board hup "image = $T/snap.img" "sandbox.web.autostart = yes")
start_init "$c" "$T/hup.log"
wait_log "sandbox web healthy" 5
echo "sandbox.db.autostart = yes" >> "$c"
kill -HUP "$KPID"
check "SIGHUP: newly configured db starts" wait_log "sandbox db healthy" 5
echo "bogus line" >> "$c"
kill -HUP "$KPID"
check "SIGHUP: a broken file is refused, init keeps going" wait_log "keeping the running configuration" 3
check "SIGHUP: init still running" kill -0 "$KPID"
stop_init

# 13. Trusted keys: a signed image is accepted, an unsigned one refused.
$K key gen "$T/priv.pem" "$T/pub.pem" >/dev/null
$K image build --store "$T/s" --key "$T/priv.pem" -o "$T/signed.img" >/dev/null
c=$(board signed "image = $T/signed.img" "trusted-key = $T/pub.pem" "sandbox.web.health-timeout = 5")
start_init "$c" "$T/signed.log"
check "signed image: signature good" wait_log "signature good" 3
check "signed image: web healthy" wait_log "sandbox web healthy" 5
stop_init
c=$(board unsigned "image = $T/snap.img" "trusted-key = $T/pub.pem")
start_init "$c" "$T/unsigned.log"
check "unsigned image with trusted keys: refused" wait_log "not signed by a trusted key" 3
stop_init
# A ref planted in the data store (unsigned manifest M3, all objects present): with trusted keys
# it is refused in one line, and web comes up from the signed image (M2) instead.
rm -f "$T/data/keel-init-failed"
c=$(board planted "image = $T/signed.img" "data-dir = $T/data" "trusted-key = $T/pub.pem" "sandbox.web.health-timeout = 5")
start_init "$c" "$T/planted.log"
check "planted unsigned ref: refused, saying why" wait_log "refused manifest $M3: not signed by a trusted key" 5
check "planted unsigned ref: web starts from the signed image instead" wait_log "sandbox web healthy ($(short "$M2")" 5
check "planted unsigned ref: never launched" sh -c '! grep -q "store $0" "$1"' "$M3" "$RUN/launches"
stop_init
rm -f "$T/data/keel-init-failed"
# No trusted keys: nothing starts, one line says why; insecure-unsigned = yes is the lab's way round.
printf 'runner = %s\nimage = %s\nshutdown-timeout = 2\nsandbox.web.health-timeout = 5\n' "$RUN/runner" "$T/snap.img" > "$T/nokeys.conf"
start_init "$T/nokeys.conf" "$T/nokeys.log"
check "no trusted keys: says no sandbox will start" wait_log "no trusted-key in board.conf: no sandbox will start" 3
check "no trusted keys: web not started" wait_log "sandbox web: not started: no trusted keys" 3
check "no trusted keys: nothing launched" sh -c '[ ! -s "$0" ]' "$RUN/launches"
stop_init

# 14. The update listener runs in a child of init: a pushed, signed snapshot moves the sandbox onto it.
if [ ! -c /dev/net/tun ] || ! unshare -n true 2>/dev/null; then
	skip "listener" "no /dev/net/tun or no network namespaces"
	exit 0
fi
tap=ki$$
rm -f "$T/data/keel-init-failed"
mkmem "$T/m4"
M4=$($K manifest create --store "$T/s" --name web --parent "$M2" --memory-file "$T/m4" --chunk 4096 --sign "$T/priv.pem")
$K pack send --store "$T/s" --manifest "$M4" > "$T/m4.pack"
cat > "$T/net.conf" <<EOC
runner = $RUN/runner
image = $T/signed.img
data-dir = $T/data
nic = tap:$tap
address = 10.88.7.2/24
port = 7070
trusted-key = $T/pub.pem
shutdown-timeout = 2
sandbox.web.health-timeout = 5
EOC
# Without TLS files and without listener-plaintext = yes the listener does not start: one line says why.
LOG=$T/net0.log
unshare -fpn --mount-proc "$K" init --board "$T/net.conf" > "$LOG" 2>&1 &
UPID=$!
for _ in $(seq 100); do KPID=$(awk '{print $1}' /proc/$UPID/task/$UPID/children 2>/dev/null); [ -n "$KPID" ] && break; sleep 0.02; done
check "listener: no TLS files and no listener-plaintext: not started, one line says why" \
	wait_log "listener: not started: board.conf names no tls-cert, tls-key and tls-ca" 5
wait_log "sandbox web healthy" 5
check "listener: ... and no listener runs" sh -c '! grep -q "listener: started" "$0"' "$LOG"
stop_init
printf 'listener-plaintext = yes\nrestart-reset = 1\n' >> "$T/net.conf"
LOG=$T/net.log
: > "$RUN/launches"
unshare -fpn --mount-proc "$K" init --board "$T/net.conf" > "$LOG" 2>&1 &
UPID=$!
for _ in $(seq 100); do KPID=$(awk '{print $1}' /proc/$UPID/task/$UPID/children 2>/dev/null); [ -n "$KPID" ] && break; sleep 0.02; done
check "listener: started by init and ready" wait_log "listener ready on 10.88.7.2 port 7070" 5
check "listener: plaintext says so at start" grep -q "listener: PLAINTEXT (listener-plaintext = yes)" "$LOG"
inn() { nsenter -t "$KPID" -n "$@"; }
inn ip link set lo up
inn ip addr add 10.88.7.1/24 dev "$tap" && inn ip link set "$tap" up
wait_log "sandbox web healthy ($(short "$M2")" 5   # M3 in the data store is unsigned: refused
check "listener: push of a signed snapshot is accepted" sh -c \
	"[ \"\$(nsenter -t $KPID -n '$K' push --to 10.88.7.2:7070 '$T/m4.pack' 2>/dev/null)\" = 'ok $M4' ]"
check "listener: init restarts web onto the pushed snapshot" wait_log "sandbox web healthy ($(short "$M4")" 5
check "listener: launched from the data store" grep -q "store $M4" "$RUN/launches"
# A listener that ran healthy for restart-reset (1 s here) and then died starts its backoff over:
# killed twice, it comes back after 1 s both times (not 1 s, then 2 s).
lpid() {
	for c in $(cat /proc/"$KPID"/task/*/children 2>/dev/null); do
		tr '\0' ' ' < /proc/"$c"/cmdline 2>/dev/null | grep -q " init --board " && echo "$c"
	done | head -n 1
}
for round in 1 2; do
	sleep 1.5
	kill -KILL "$(lpid)" 2>/dev/null
	for _ in $(seq 50); do [ "$(grep -c "listener ready on" "$LOG")" -gt "$round" ] && break; sleep 0.1; done
done
check "listener: a crash after a healthy run restarts it in 1 s again" \
	sh -c '[ "$(grep -c "listener exited (killed by signal 9.*); restarting in 1000 ms" "$0")" = 2 ]' "$LOG"
check_status "listener: SIGTERM stops listener and sandboxes, exit 0" 0 stop_init
