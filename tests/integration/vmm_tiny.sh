# keel vm run with the tiny test guest on the host's /dev/kvm: boot, console, exits, errors.
. "$(dirname "$0")/../lib.sh"
TINY=$KEEL_BUILD/tests/guest/tiny.elf

if [ ! -c /dev/kvm ] || ! "$KEEL" version >/dev/null 2>&1; then
	skip boot "no /dev/kvm on this machine"
	exit 0
fi
[ -f "$TINY" ] || { fail boot "tiny guest not built ($TINY)"; exit 0; }

out=$T_TMP/out
vm() { "$KEEL" vm run --kernel "$TINY" "$@" </dev/null >"$out" 2>"$T_TMP/err"; }

check_status poweroff_exits_0 0 vm --cmdline "tiny=hello"
check console_shows_guest_output grep -qx "tiny: hello" "$out"
vm --cmdline "tiny=count n=7 d=50"
check counter_runs_to_the_end grep -qx "tiny: count 7." "$out"
check tsc_is_monotonic grep -qx "tiny: tsc monotonic" "$out"
check_status two_vcpus_1g_boot 0 vm --cmdline "tiny=hello" --vcpus 2 --mem 1024
check_status reset_port_cf9_exits_1 1 vm --cmdline "tiny=cf9"
check reset_is_one_line one_line_error "$T_TMP/err"
check_status reset_i8042_exits_1 1 vm --cmdline "tiny=kbd"
check_status triple_fault_exits_1 1 vm --cmdline "tiny=triple"
# No power-down line, no ACPI: keel itself sees every vCPU halted with interrupts off and stops.
check_status dead_guest_is_a_stop_found_by_keel 0 timeout 30 "$KEEL" vm run --kernel "$TINY" --cmdline "tiny=dead"
check dead_guest_stop_said_in_one_line grep -q "halted with interrupts off" "$T_TMP/.err"
check_status dead_guest_with_an_ap_never_started_stops 0 timeout 30 "$KEEL" vm run --kernel "$TINY" --vcpus 2 \
	--cmdline "tiny=dead"
check_status idle_guest_with_interrupts_on_keeps_running 124 timeout 4 "$KEEL" vm run --kernel "$TINY" \
	--cmdline "tiny=idle"
check_status missing_kernel_exits_1 1 "$KEEL" vm run --kernel "$T_TMP/nope"
check missing_kernel_one_line one_line_error "$T_TMP/.err"
printf 'garbage, not a kernel' > "$T_TMP/junk"
check_status junk_kernel_exits_1 1 "$KEEL" vm run --kernel "$T_TMP/junk"
check_status bad_mem_exits_2 2 "$KEEL" vm run --kernel "$TINY" --mem lots
check_status too_little_mem_exits_1 1 "$KEEL" vm run --kernel "$TINY" --mem 8
check_status bad_vcpus_exits_2 2 "$KEEL" vm run --kernel "$TINY" --vcpus 0
check_status no_kernel_exits_2 2 "$KEEL" vm run
check_status help_exits_0 0 "$KEEL" vm --help

# A hostile driver (tiny=blkattack): zero-length descriptors at 0, in RAM, past RAM and as the
# status byte, a chain that wraps the address space, one across the end of RAM, a loop longer
# than the queue, a head and an available index past the ring. Each must leave the device in
# DEVICE_NEEDS_RESET having written nothing; the VMM stays up and a good read still completes.
printf 'keel-disk-bytes!%0496d' 0 > "$T_TMP/disk.img"
st=0
"$KEEL" vm run --kernel "$TINY" --mem 64 --cmdline "tiny=blkattack m=64" --disk "$T_TMP/disk.img,ro" \
	</dev/null >"$out" 2>"$T_TMP/attack.err" || st=$?
check hostile_virtio_guest_does_not_crash_the_vmm [ "$st" = 0 ]
for a in zero-len-at-0 zero-len-in-ram zero-len-past-ram zero-len-status wraps-address-space \
	crosses-end-of-ram chain-longer-than-queue head-past-queue avail-index-past-ring; do
	check "refuses_$a" grep -qx "tiny: attack $a needs-reset used 0" "$out"
done
check good_request_after_attacks_completes grep -qx "tiny: blk read status 0 used 1 data keel-disk-bytes!" "$out"
check malformed_queue_logged_in_one_line_each grep -q "virtio-blk.*needs reset" "$T_TMP/attack.err"
