# Debugging aid (keel.cmd=bootprof, with initcall_debug on the command line): the boot's slow
# initcalls (over 20 ms) and the kernel's view of its timers and clocks.
dmesg | awk '/initcall .* returned .* after [0-9]+ usecs/ { for (i = 1; i <= NF; i++) if ($i == "after" && $(i + 1) > 20000) print }'
dmesg | grep -iE 'clocksource|clockevent|tsc|apic timer|hpet|pit|rtc' | head -n 30
cat /sys/devices/system/clocksource/clocksource0/current_clocksource /sys/devices/system/clockevents/clockevent0/current_device 2>&1
echo "keel-guest: bootprof done"
