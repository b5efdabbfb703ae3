# Runs INSIDE the test appliance VM (tests/appliance/vmtest.sh): a Debian-kernel guest given a
# read-only disk is snapshotted; the disk becomes chunk objects of its manifest, and a restore
# (from the store, from a partition image, by PID 1) serves it from those objects: the guest's
# MD5 of /dev/vda is the image's. A flipped byte in a chunk is refused naming the object.
T=/tmp/disks; S=$T/store; bad=0
K=/guest/vmlinux I=/guest/initramfs.cpio
CL="console=ttyS0 reboot=t panic=-1 quiet keel.cmd=vdsum"
ok() { echo "PASS disks: $1"; }
no() { echo "FAIL disks: $1${2:+: $2}"; bad=1; }
mkdir -p $T
keel store init $S >/dev/null
# an 8 MiB image: random first and last MiB, zeros between
dd if=/dev/urandom of=$T/root.img bs=1048576 count=1 2>/dev/null
dd if=/dev/zero bs=1048576 count=6 2>/dev/null >> $T/root.img
dd if=/dev/urandom bs=1048576 count=1 2>/dev/null >> $T/root.img
want=$(md5sum $T/root.img | cut -d' ' -f1)
id=$(timeout 150 keel vm run --kernel $K --initrd $I --mem 256 --disk $T/root.img,ro --snapshot-on "keel-test: vdsum-ready" \
	--store $S --name dk --cmdline "$CL" </dev/null 2>$T/snap.err | tail -n 1)
keel manifest show --store $S dk > $T/m 2>&1
if grep -qx "disk vda 8388608 65536 ro" $T/m && [ "$(grep -c '^disk-chunk ' $T/m)" = 32 ]; then
	ok "vm run --disk FILE,ro --snapshot-on records the disk in the manifest (32 of 128 chunks stored)"
else
	no "the disk in the manifest" "$(grep '^disk' $T/m | head -n 3 | tr '\n' ' ') $(tail -n 2 $T/snap.err)"
fi
rm -f $T/root.img   # from here on the disk is only its objects
sum() { sed -n 's/.*keel-test: vda md5 \([0-9a-f]*\) .*/\1/p' "$1" | tail -n 1; }
timeout 120 keel vm restore --store $S dk > $T/r1.log 2>&1
[ "$(sum $T/r1.log)" = "$want" ] && ok "restored from the store, the guest reads the disk from its chunk objects (md5 $want)" ||
	no "restore from the store" "$(tail -n 4 $T/r1.log | tr "\n" " ")"
# from a partition image
keel image build --store $S --ref dk -o $T/snap.img > $T/img.log 2>&1
timeout 120 keel vm restore --image $T/snap.img dk > $T/r2.log 2>&1
[ "$(sum $T/r2.log)" = "$want" ] && ok "restored from a partition image, the disk is served from the image" ||
	no "restore from the image" "$(tail -n 3 $T/img.log | tr '\n' ' ') $(grep -E 'keel-test|disk' $T/r2.log | tail -n 3 | tr '\n' ' ')"
# a flipped byte in one chunk object
c=$(grep '^disk-chunk ' $T/m | head -n 1 | cut -d' ' -f3)
chmod u+w $S/objects/$c
printf 'X' | dd of=$S/objects/$c bs=1 seek=1000 conv=notrunc 2>/dev/null
timeout 120 keel vm restore --store $S dk > $T/r3.log 2>&1
if grep -q "chunk 0 (object $c) is corrupt" $T/r3.log && [ "$(sum $T/r3.log)" != "$want" ]; then
	ok "a flipped byte in a disk chunk is refused naming the object; the guest sees an I/O error"
else
	no "corrupt disk chunk" "$(grep -E 'keel-test|corrupt' $T/r3.log | tail -n 3 | tr '\n' ' ')"
fi
exit $bad
