# Runs INSIDE the test appliance VM (tests/appliance/vmtest.sh): keel boots, snapshots and
# restores the Debian kernel + busybox guest. Prints PASS/FAIL lines; exits 1 on any FAIL.
K=/guest/vmlinux I=/guest/initramfs.cpio
CL="console=ttyS0 reboot=t panic=-1 acpi=off quiet"
T=/tmp/vmm; mkdir -p $T; S=$T/store; bad=0
ok() { echo "PASS vmm_linux: $1"; }
no() { echo "FAIL vmm_linux: $1${2:+: $2}"; bad=1; }
t() { n=$1; shift; if "$@"; then ok "$n"; else no "$n"; fi; }
run() { c=$1; shift; keel vm run --kernel $K --initrd $I --mem 256 --rng --cmdline "$CL keel.cmd=$c" "$@" </dev/null; }

run boot > $T/boot.log 2>&1; st=$?
t boot_to_shell_marker grep -q "keel-test: shell-up" $T/boot.log
t poweroff_exits_0 [ "$st" = 0 ]
keel vm run --kernel /guest/vmlinuz --initrd $I --mem 256 --cmdline "$CL keel.cmd=boot" </dev/null > $T/bz.log 2>&1; st=$?
t bzimage_boots_and_powers_off sh -c "[ $st = 0 ] && grep -q 'keel-test: shell-up' $T/bz.log"
keel vm run --kernel $K --initrd $I --mem 256 --vcpus 2 --cmdline "$CL keel.cmd=boot" </dev/null > $T/smp.log 2>&1; st=$?
t two_vcpus_boot sh -c "[ $st = 0 ] && grep -q 'keel-test: shell-up' $T/smp.log"

id=$(run counter --snapshot-on "keel-test: count 3 " --store $S --name counter 2>$T/snap.err | tail -n 1)
t snapshot_of_counter_guest [ ${#id} = 64 ]
sleep 3
t0=$(date +%s)
keel vm restore --store $S counter > $T/r.log 2>&1; st=$?
t1=$(date +%s)
first=$(grep -m1 '^up ' $T/r.log)
t restored_counter_powers_off_0 [ "$st" = 0 ]
t counter_continues grep -q "keel-test: count 4 " $T/r.log
t counter_not_restarted sh -c "! grep -q 'keel-test: count 1 ' $T/r.log"
up=$(echo "$first" | cut -d' ' -f2 | cut -d. -f1); d=$(echo "$first" | cut -d' ' -f4)
t uptime_positive_after_restore [ "${up:-0}" -gt 0 ]
t date_right_after_restore_within_1s sh -c "[ ${d:-0} -ge $((t0 - 1)) ] && [ ${d:-0} -le $((t1 + 1)) ]"
for i in 1 2 3 4 5 6 7 8; do keel vm restore --store $S counter > $T/c$i.log 2>&1 & done
wait
n=0; for i in 1 2 3 4 5 6 7 8; do grep -q "keel-test: count 12 " $T/c$i.log && n=$((n + 1)); done
t eight_concurrent_restores [ $n = 8 ]

rid=$(run rng --snapshot-on "keel-test: rng-ready" --store $S --name rng 2>/dev/null | tail -n 1)
sleep 2
keel vm restore --store $S rng > $T/a.log 2>&1
keel vm restore --store $S rng > $T/b.log 2>&1
a=$(grep -o 'urandom [0-9a-f]*' $T/a.log); b=$(grep -o 'urandom [0-9a-f]*' $T/b.log)
t clones_read_different_urandom sh -c "[ -n '$a' ] && [ -n '$b' ] && [ '$a' != '$b' ]"

printf 'keel-disk-bytes!%0500d' 0 > $T/ro.img; dd if=/dev/zero of=$T/ro.img bs=1M count=1 seek=1 2>/dev/null
dd if=/dev/zero of=$T/rw.img bs=1M count=2 2>/dev/null
run blk --disk $T/ro.img,ro --disk $T/rw.img > $T/blk.log 2>&1
t virtio_blk_read grep -q "keel-test: vda keel-disk-bytes!" $T/blk.log
t virtio_blk_write sh -c "head -c 16 $T/rw.img | grep -q written-by-guest"
t virtio_blk_ro_refuses_writes sh -c "head -c 16 $T/ro.img | grep -q keel-disk-bytes!"
exit $bad
