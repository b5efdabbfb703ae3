# Snapshot test: a counter with the guest's uptime and wall clock, read after each count is
# announced (so the line cut by a snapshot ends with values read after the restore).
i=0
while [ $i -lt 12 ]; do
	i=$((i + 1))
	printf 'keel-test: count %s ' "$i"
	printf 'up %s date %s\n' "$(cut -d' ' -f1 /proc/uptime)" "$(date +%s)"
	sleep 1
done
poweroff -f
