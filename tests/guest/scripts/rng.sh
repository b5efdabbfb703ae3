# Clone test: after a restore the VMM writes a new VM generation ID and raises the GED interrupt; the
# kernel's vmgenid driver reseeds the RNG ("crng reseeded due to virtual machine fork"). Wait for that
# (the notification is asynchronous), then show what /dev/urandom gives. The test runs this guest without
# virtio-rng, so nothing but the generation ID can make two clones differ.
echo "keel-test: rng-ready"
i=0
while [ $i -lt 50 ] && ! dmesg | grep -q 'crng reseeded due to virtual machine fork'; do
	sleep 0.1
	i=$((i + 1))
done
dmesg | grep -q 'crng reseeded due to virtual machine fork' && echo "keel-test: vmfork-reseeded"
printf 'keel-test: urandom %s\n' "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
poweroff -f
