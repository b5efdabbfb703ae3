# Restore benchmark guest (tests/bench/vmm_qemu.sh): prints numbered lines as fast as it can, so
# the first complete line after a resume marks "the guest executes again" within one loop turn,
# whatever instant the snapshot or migration caught.
i=0
while :; do
	i=$((i + 1))
	echo "keel-test: tick $i ."
done
