# Runs INSIDE the test appliance VM (tests/appliance/vmtest.sh, from tests/integration/disks_vm.sh):
# a Debian-kernel guest whose root filesystem is an ext4 disk (/dev/vda here: v1, /dev/vdb: v2, the
# same tree but one file) boots from it as a read-only object disk and is snapshotted; keel as PID 1
# (`keel init`, development mode, verify = full) restores it from a partition image with the disk
# served from the image, takes v2 as a push over its listener (objects-needed: only what the image
# lacks is sent; PID 1 copies the rest from the image), and after a restart with a flipped byte in
# a disk chunk only v2 has, refuses v2 naming the object and runs v1 from the image again. Prints PASS/FAIL and measured: lines; exits 1 on any FAIL.
. /lib/keel-test/lan.sh
. /lib/keel-test/rootfs.env       # MODEL_MD5: /opt/model.bin's MD5, as the host made it
T=/tmp/rootfs; D=$T/data; S=$T/store; bad=0
K=/guest/vmlinux I=/guest/initramfs.cpio
CL="console=ttyS0 reboot=t panic=-1 quiet keel.cmd=rootfs keel.root=/dev/vda"
ME=192.168.50.1 LAN=192.168.50.2
ok() { echo "PASS rootfs: $1"; }
no() { echo "FAIL rootfs: $1${2:+: $2}"; bad=1; }
wait_log() { i=0; while [ $i -lt $(($3 * 5)) ]; do grep -qE "$2" "$1" && return 0; sleep 0.2; i=$((i + 1)); done; return 1; }
mkdir -p $T $D
keel store init $S >/dev/null
keel key gen $T/priv.pem $T/pub.pem >/dev/null

# snap V DEV: boots the guest with DEV as its ro root disk and snapshots it as app; prints the
# signed manifest's id (ref app moved to it)
snap() {
	timeout 300 keel vm run --kernel $K --initrd $I --mem 256 --disk $2,ro --snapshot-on "keel-test: rootfs-ready" \
		--store $S --name app --nic none --cmdline "$CL" </dev/null >$T/snap-$1.log 2>&1
	id=$(keel manifest sign --key $T/priv.pem --store $S app 2>>$T/snap-$1.log) && keel store ref $S app $id >/dev/null && echo $id
}
v1=$(snap v1 /dev/vda)
mb=$(($(blockdev --getsize64 /dev/vda) / 1048576))
if grep -q "keel-test: root /dev/vda ext4 ro version v1" $T/snap-v1.log && [ -n "$v1" ]; then
	ok "a guest boots with the ${mb} MiB ext4 disk /dev/vda as its read-only root and is snapshotted"
else
	no "boot from the root disk" "$(grep -E 'keel-test|keel-guest|error' $T/snap-v1.log | tail -n 4 | tr '\n' ' ')"
fi
keel manifest show --store $S $v1 > $T/m1 2>&1
grep '^disk-chunk ' $T/m1 | cut -d' ' -f3 | sort > $T/c1
ok_disk=$(grep -c "^disk vda $(blockdev --getsize64 /dev/vda) 65536 ro" $T/m1)
[ "$ok_disk" = 1 ] && ok "the manifest names the root disk: $(wc -l < $T/c1) of $((mb * 16)) chunks stored" ||
	no "the disk in the manifest" "$(grep '^disk ' $T/m1)"
keel image build --store $S --ref app --key $T/priv.pem -o $T/snap.img > $T/img.log 2>&1 || no "image build" "$(tail -n 2 $T/img.log)"
v2=$(snap v2 /dev/vdb)
[ -n "$v2" ] && grep -q "version v2" $T/snap-v2.log || no "snapshot v2" "$(tail -n 3 $T/snap-v2.log | tr '\n' ' ')"
keel manifest show --store $S $v2 > $T/m2 2>&1
grep '^disk-chunk ' $T/m2 | cut -d' ' -f3 | sort > $T/c2
grep -vxF -f $T/c1 $T/c2 > $T/only2
n2=$(wc -l < $T/c2) new=$(wc -l < $T/only2)
new_b=0
for c in $(cat $T/only2); do new_b=$((new_b + $(stat -c %s $S/objects/$c))); done
echo "measured: rootfs v2 (one file differs) shares $((n2 - new)) of $n2 disk chunks with v1; $new new ($new_b bytes)"
[ "$new" -ge 1 ] && [ "$new" -le 4 ] && ok "v2 differs from v1 in $new of $n2 disk chunks" ||
	no "v2's disk shares all but a few chunks" "$new of $n2 new"

lan_up $LAN/24
cat > $T/board.conf <<EOF
image = $T/snap.img
data-dir = $D
trusted-key = $T/pub.pem
verify = full
nic = vk
address = $ME/24
port = 7070
listener-plaintext = yes
restart-backoff-ms = 100
sandbox.app.health-marker = model md5
sandbox.app.health-timeout = 120
EOF
keel init --board $T/board.conf > $T/i1.log 2>&1 &
ipid=$!
if wait_log $T/i1.log "version v1 model md5 $MODEL_MD5 err *\$" 180 && grep -q "sandbox app: restoring .* from the image" $T/i1.log; then
	ok "PID 1 restores it from the partition image; the guest reads /opt/model.bin from the disk served by the image (md5 $MODEL_MD5)"
else
	no "PID 1 from the image" "$(grep -E 'sandbox app|rootfs version' $T/i1.log | tail -n 4 | tr '\n' ' ')"
fi
wait_log $T/i1.log 'listener ready' 60 || no "listener up" "$(grep listener $T/i1.log | tail -n 2)"
# push v2: objects-needed sends only what neither the data store nor the image has
lan timeout 300 keel push --to $ME:7070 --store $S --manifest $v2 > $T/push.out 2> $T/push.err
set -- $(sed -n 's/.*lacks \([0-9]*\) of \([0-9]*\) objects; sending \([0-9]*\) bytes.*/\1 \2 \3/p' $T/push.err | tail -n 1)
p2="$1 of $2 objects, $3 bytes"
all_b=0
for c in $(grep -owE '[0-9a-f]{64}' $T/m2 | sort -u); do
	[ -f $S/objects/$c ] && all_b=$((all_b + $(stat -c %s $S/objects/$c)))
done
echo "measured: rootfs push of v2 to a box running v1 from its image: $p2 of v2's $all_b ($new disk chunks, $new_b bytes; the rest is v2's guest memory from its own boot)"
took=$(sed -n 's/.*listener: \([0-9]*\) objects (\([0-9]*\) bytes) of the update taken from the image in \([0-9]*\) ms.*/\1 objects, \2 bytes, \3 ms/p' $T/i1.log | tail -n 1)
if grep -q "^ok " $T/push.out && wait_log $T/i1.log "version v2 model md5 $MODEL_MD5 err *\$" 180 && [ -n "$took" ]; then
	ok "v2 pushed to the box running v1 from its image sends $p2; PID 1 takes the rest from the image ($took); v2 runs with its disk"
else
	no "push v2 and run it" "$(cat $T/push.out $T/push.err | tail -n 2; grep -E 'sandbox app|rootfs version|listener' $T/i1.log | tail -n 4 | tr '\n' ' ')"
fi
kill -TERM $ipid; wait $ipid

# a flipped byte in a disk chunk only v2 has; the box restarts
c=$(head -n 1 $T/only2)
chmod u+w $D/store/objects/$c
printf 'X' | dd of=$D/store/objects/$c bs=1 seek=100 conv=notrunc 2>/dev/null
keel init --board $T/board.conf > $T/i2.log 2>&1 &
ipid=$!
if wait_log $T/i2.log "version v1 model md5 $MODEL_MD5 err *\$" 180 && grep -q "$c" $T/i2.log &&
   grep -q "sandbox app: rolling back to" $T/i2.log && ! grep -q "version v2 model" $T/i2.log; then
	ok "a corrupt disk chunk of v2 is refused naming the object ($(grep -m1 "$c" $T/i2.log | cut -c1-150)); v1 runs"
else
	no "corrupt disk chunk" "$(grep -E 'sandbox app|rootfs version' $T/i2.log | tail -n 4 | tr '\n' ' ')"
fi
kill -TERM $ipid; wait $ipid
lan_down
exit $bad
