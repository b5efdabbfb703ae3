# Runs INSIDE the test appliance VM (tests/appliance/vmtest.sh): keel boots, snapshots and
# restores the Debian kernel + busybox guest, which finds its vCPUs, UART, virtio devices and
# VM generation ID through keel's ACPI tables. Prints PASS/FAIL lines; exits 1 on any FAIL.
K=/guest/vmlinux I=/guest/initramfs.cpio
CL="console=ttyS0 reboot=t panic=-1 quiet"
T=/tmp/vmm; mkdir -p $T; S=$T/store; bad=0
# Every guest run is bounded on its own: one stuck step fails its own checks, not the whole file.
TO="timeout 150"
ok() { echo "PASS vmm_linux: $1"; }
no() { echo "FAIL vmm_linux: $1${2:+: $2}"; bad=1; }
t() { n=$1; shift; if "$@"; then ok "$n"; else no "$n"; fi; }
run() { c=$1; shift; $TO keel vm run --kernel $K --initrd $I --mem 256 --rng --cmdline "$CL keel.cmd=$c" "$@" </dev/null; }
t_start=$(date +%s)
phase() { echo "vmm_linux: $1 done at $(( $(date +%s) - t_start )) s"; }

# loglevel=0 silences the kernel's "reboot: Power down" line: only the ACPI S5 write can end the VM with 0.
$TO keel vm run --kernel $K --initrd $I --mem 256 --cmdline "$CL loglevel=0 keel.cmd=boot" </dev/null > $T/boot.log 2>&1; st=$?
t boot_to_shell_marker grep -q "keel-test: shell-up" $T/boot.log
t poweroff_exits_0_through_acpi_s5 sh -c "[ $st = 0 ] && ! grep -q 'Power down' $T/boot.log"
t one_vcpu_seen grep -q "keel-test: cpus 1" $T/boot.log
# acpi=off: the MP table and the console's power-down line still serve such a guest.
$TO keel vm run --kernel /guest/vmlinuz --initrd $I --mem 256 --cmdline "$CL acpi=off keel.cmd=boot" </dev/null > $T/bz.log 2>&1; st=$?
t bzimage_with_acpi_off_boots_and_powers_off sh -c "[ $st = 0 ] && grep -q 'keel-test: shell-up' $T/bz.log"
$TO keel vm run --kernel $K --initrd $I --mem 256 --vcpus 2 --cmdline "$CL keel.cmd=boot" </dev/null > $T/smp.log 2>&1; st=$?
t two_vcpus_boot sh -c "[ $st = 0 ] && grep -q 'keel-test: cpus 2' $T/smp.log"
$TO keel vm run --kernel $K --initrd $I --mem 256 --cmdline "console=ttyS0 reboot=a panic=-1 quiet keel.cmd=reboot" \
	</dev/null > $T/reboot.log 2>&1; st=$?
t reboot_through_fadt_reset_register_exits_1 sh -c "[ $st = 1 ] && grep -q 'guest reset (port 0xcf9)' $T/reboot.log"
phase boots

id=$(run counter --snapshot-on "keel-test: count 3 " --store $S --name counter 2>$T/snap.err | tail -n 1)
t snapshot_of_counter_guest [ ${#id} = 64 ]
sleep 3
t0=$(date +%s)
$TO keel vm restore --store $S counter > $T/r.log 2>&1; st=$?
t1=$(date +%s)
first=$(grep -m1 '^up ' $T/r.log)
t restored_counter_powers_off_0 [ "$st" = 0 ]
t counter_continues grep -q "keel-test: count 4 " $T/r.log
t counter_not_restarted sh -c "! grep -q 'keel-test: count 1 ' $T/r.log"
up=$(echo "$first" | cut -d' ' -f2 | cut -d. -f1); d=$(echo "$first" | cut -d' ' -f4)
t uptime_positive_after_restore [ "${up:-0}" -gt 0 ]
t date_right_after_restore_within_1s sh -c "[ ${d:-0} -ge $((t0 - 1)) ] && [ ${d:-0} -le $((t1 + 1)) ]"
phase counter
for i in 1 2 3 4 5 6 7 8; do $TO keel vm restore --store $S counter > $T/c$i.log 2>&1 & done
# keel runs from the initramfs here: the jail's root is made by MS_MOVE + chroot, not pivot_root
sleep 1
jp=; for p in /proc/[0-9]*; do
	[ "$(cat $p/comm 2>/dev/null)" = keel ] && grep -q "^Seccomp:[[:space:]]*2" $p/status 2>/dev/null && jp=${p#/proc/} && break
done
t restore_jailed_with_an_empty_root sh -c "[ -n '$jp' ] && [ \"\$(ls /proc/$jp/root 2>&1)\" = src ] &&
	grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$jp/status && grep -q '^CapBnd:[[:space:]]*0000000000000000' /proc/$jp/status"
wait
n=0; for i in 1 2 3 4 5 6 7 8; do grep -q "keel-test: count 12 " $T/c$i.log && n=$((n + 1)); done
t eight_concurrent_restores [ $n = 8 ]
phase clones

# No guest-side help and no virtio-rng: the new VM generation ID alone must make the clones' RNGs differ.
rid=$($TO keel vm run --kernel $K --initrd $I --mem 256 --cmdline "$CL keel.cmd=rng" --snapshot-on "keel-test: rng-ready" \
	--store $S --name rng </dev/null 2>/dev/null | tail -n 1)
sleep 2
$TO keel vm restore --store $S rng > $T/a.log 2>&1
$TO keel vm restore --store $S rng > $T/b.log 2>&1
a=$(grep -o 'urandom [0-9a-f]*' $T/a.log); b=$(grep -o 'urandom [0-9a-f]*' $T/b.log)
t restored_kernels_reseed_on_vmgenid_change sh -c "grep -q 'keel-test: vmfork-reseeded' $T/a.log && grep -q 'keel-test: vmfork-reseeded' $T/b.log"
t clones_read_different_urandom sh -c "[ -n '$a' ] && [ -n '$b' ] && [ '$a' != '$b' ]"
phase rng

printf 'keel-disk-bytes!%0500d' 0 > $T/ro.img; dd if=/dev/zero of=$T/ro.img bs=1M count=1 seek=1 2>/dev/null
dd if=/dev/zero of=$T/rw.img bs=1M count=2 2>/dev/null
run blk --disk $T/ro.img,ro --disk $T/rw.img > $T/blk.log 2>&1
t virtio_blk_read grep -q "keel-test: vda keel-disk-bytes!" $T/blk.log
t virtio_blk_write sh -c "head -c 16 $T/rw.img | grep -q written-by-guest"
t virtio_blk_ro_refuses_writes sh -c "head -c 16 $T/ro.img | grep -q keel-disk-bytes!"
t virtio_rng_reads_hwrng grep -Eq "keel-test: hwrng [0-9a-f]{32}" $T/blk.log
phase blk

# virtio-net on a TAP device (keel vm run --nic tap:NAME): the guest answers ping and serves HTTP.
$TO keel vm run --kernel $K --initrd $I --mem 256 --nic tap:kt0 --cmdline "$CL keel.cmd=web" </dev/null > $T/tap.log 2>&1 &
tp=$!
i=0; while [ $i -lt 50 ] && ! ip link show kt0 >/dev/null 2>&1; do sleep 0.1; i=$((i + 1)); done
ip link set kt0 up; ip addr add 10.0.2.2/24 dev kt0
i=0; while [ $i -lt 90 ] && ! grep -q "keel-test: web-up" $T/tap.log; do sleep 1; i=$((i + 1)); done
t nic_guest_has_eth0_with_its_address grep -q "keel-test: net 10.0.2.15/24 mac" $T/tap.log
t nic_guest_answers_ping ping -c 2 -W 5 10.0.2.15
c1=$(timeout 20 wget -q -O- http://10.0.2.15/cgi-bin/count 2>&1); c2=$(timeout 20 wget -q -O- http://10.0.2.15/cgi-bin/count 2>&1)
if [ "$c1" = "count 1" ] && [ "$c2" = "count 2" ]; then ok nic_guest_serves_http; else no nic_guest_serves_http "got '$c1' then '$c2'"; fi
kill $tp 2>/dev/null; wait $tp 2>/dev/null
phase nic
if [ $bad != 0 ]; then
	for f in $T/*.log; do echo "--- $f"; tail -n 15 $f; done
fi
exit $bad
