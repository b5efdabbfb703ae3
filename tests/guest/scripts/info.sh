# Debugging aid (keel.cmd=info): what the kernel found through ACPI, then power off.
dmesg | grep -iE 'acpi|virtio|vmgenid|GED|ttyS|smpboot|clocksource|crng|IOAPIC|error|fail|warn' | head -n 80
ls /sys/bus/platform/devices /sys/bus/acpi/devices 2>&1 | tr '\n' ' '; echo
cat /proc/interrupts
poweroff -f
