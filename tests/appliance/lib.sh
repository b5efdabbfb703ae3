# Helpers shared by tests/appliance/*.sh (sourced, not run).
# Callers set: top (repository top) and B (build directory).

ap_die() { printf '%s: error: %s\n' "${AP_NAME:-appliance}" "$*" >&2; exit 1; }

# ap_mod_order NAME...: the names plus their dependencies (from build/kernel/modules.dep), each after
# everything it depends on: the order to insmod them in.
ap_mod_order() {
	local dep=$B/kernel/modules.dep
	[ -f "$dep" ] || ap_die "$dep missing (run tests/appliance/kernel.sh)"
	declare -A seen=()
	local out=()
	_ap_visit() {
		local m=$1 d line
		[ -n "${seen[$m]:-}" ] && return 0
		seen[$m]=1
		line=$(grep -m1 "^$m:" "$dep") || ap_die "module $m is not in $dep"
		for d in ${line#*:}; do _ap_visit "$d"; done
		out+=("$m")
	}
	local m
	for m in "$@"; do _ap_visit "$m"; done
	printf '%s\n' "${out[@]}"
}

# ap_busybox DIR: a static busybox as DIR/bin/busybox plus one symlink per applet in DIR/bin.
ap_busybox() {
	local d=$1 bb=/bin/busybox a
	file -L "$bb" 2>/dev/null | grep -q 'statically linked' || ap_die "$bb is not a static busybox (apt-get install busybox-static)"
	mkdir -p "$d/bin" "$d/sbin" "$d/usr/bin" "$d/usr/sbin"
	cp "$bb" "$d/bin/busybox"
	for a in $("$bb" --list); do
		[ "$a" = busybox ] || ln -sf busybox "$d/bin/$a"
	done
}

# ap_cpio DIR OUT: a newc archive of DIR's tree, every entry owned by 0:0, in a stable order. Only what was
# staged into DIR goes in, so nothing of the host leaks.
ap_cpio() {
	local d=$1 out=$2
	# A private temporary name, renamed into place: concurrent runs never see a half-written archive.
	(cd "$d" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$out.$$.tmp" ||
		{ rm -f "$out.$$.tmp"; ap_die "cpio of $d failed"; }
	mv "$out.$$.tmp" "$out"
}

# ap_newer OUT INPUT...: true when OUT is missing or older than any INPUT (files or directories' files).
ap_newer() {
	local out=$1; shift
	[ -e "$out" ] || return 0
	[ -n "$(find "$@" -newer "$out" -print -quit 2>/dev/null)" ]
}

# ap_host_accel: "kvm" when the host's /dev/kvm can run a Linux guest (real VT-x/AMD-V), else "tcg".
# The paravirtual /dev/kvm of these machines (kvm_pvm, no vmx/svm flag) cannot; see KVM-HERE.md.
ap_host_accel() {
	if [ -n "${KEEL_APPLIANCE_ACCEL:-}" ]; then echo "$KEEL_APPLIANCE_ACCEL"; return; fi
	if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo && [ ! -d /sys/module/kvm_pvm ]; then
		echo kvm
	else
		echo tcg
	fi
}
