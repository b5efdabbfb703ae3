# Reset test: reboot through whatever the command line's reboot= picks (reboot=a: the FADT reset register).
echo "keel-test: rebooting"
reboot -f
