# Debugging aid (keel.cmd=bootprof, with initcall_debug on the command line): the boot's slow
# initcalls (over 20 ms), its milestones, and the kernel's view of its timers and clocks.
dmesg | awk '/initcall .* returned .* after [0-9]+ usecs/ { for (i = 1; i <= NF; i++) if ($i == "after" && $(i + 1) > 20000) print }'
dmesg | grep -E 'sched offset|Run /init|Freeing unused kernel image .initmem|clocksource: Switched|Calibrating|APIC timer|rtc_cmos|TSC deadline'
cat /sys/devices/system/clocksource/clocksource0/current_clocksource /sys/devices/system/clockevents/clockevent0/current_device 2>&1
echo "keel-guest: bootprof up $(cut -d' ' -f1 /proc/uptime)"
echo "keel-guest: bootprof done"
