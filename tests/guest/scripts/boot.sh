# Boot test: a shell runs and reports how many CPUs the kernel brought up, then the guest powers off.
echo "keel-test: shell-up"
echo "keel-test: cpus $(grep -c '^processor' /proc/cpuinfo)"
poweroff -f
