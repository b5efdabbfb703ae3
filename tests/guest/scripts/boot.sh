# Boot test: a shell runs, then the guest powers off.
echo "keel-test: shell-up"
poweroff -f
