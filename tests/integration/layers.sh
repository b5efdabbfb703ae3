#!/usr/bin/env bash
# The layers, checked: libraries below (snap; vmm and net above it, beside each other), the
# application on top (init/ and every module's cmd_*.c). A library file never includes init/;
# a cmd_*.c file only init/cli.h, init/jail.h or init/cgroup.h (leaf headers); snap/ includes neither vmm/ nor net/; vmm/ and
# net/ do not include each other; a private header (*_int.h) is included only by its own module
# (and that module's unit tests; the fuzz harnesses are white-box and may include any).
# Then the check is shown to catch one planted violation of each kind.
. "$(dirname "$0")/../lib.sh"

# violations ROOT: one line per include that breaks a rule; nothing when the tree is clean.
violations() {
	local root=$1 f rel m kind base inc im
	for f in "$root"/init/*.[ch] "$root"/snap/*.[ch] "$root"/vmm/*.[ch] "$root"/net/*.[ch] \
		"$root"/tests/unit/*/*.c "$root"/tests/fuzz/*.c; do
		[ -f "$f" ] || continue
		rel=${f#"$root"/}
		case $rel in
		tests/unit/*) m=$(echo "$rel" | cut -d/ -f3) kind=test ;;
		tests/fuzz/*) m=fuzz kind=fuzz ;;
		*) m=${rel%%/*} kind=lib ;;
		esac
		base=${rel##*/}
		while read -r inc; do
			im=${inc%%/*}
			case $im in init|snap|vmm|net) ;; *) continue ;; esac   # lwip/, netif/: third-party
			case $inc in
			*_int.h) [ "$im" = "$m" ] || [ "$kind" = fuzz ] || echo "$rel: includes $inc, private to $im/" ;;
			esac
			[ "$kind" = lib ] && [ "$im" != "$m" ] || continue
			case $m:$im in
			snap:vmm|snap:net) echo "$rel: snap/ is below vmm/ and net/ but includes $inc" ;;
			vmm:net|net:vmm) echo "$rel: vmm/ and net/ do not include each other ($inc)" ;;
			snap:init|vmm:init|net:init)
				case $base:$inc in
				cmd_*.c:init/cli.h|cmd_*.c:init/jail.h|cmd_*.c:init/cgroup.h) ;;
				*) echo "$rel: only cmd_*.c files include init/, and only init/cli.h, init/jail.h or init/cgroup.h ($inc)" ;;
				esac ;;
			esac
		done < <(sed -n 's/^#include "\([a-z0-9_]*\/[a-z0-9_]*\.h\)".*/\1/p' "$f")
	done
}

v=$(violations "$KEEL_TOP")
check "the tree keeps its layers" [ -z "$v" ]
[ -n "$v" ] && echo "$v" | head -n 20

# plant ROOT FILE LINE: a copy of the tree with LINE added to FILE.
plant() {
	rm -rf "$T_TMP/tree"
	mkdir -p "$T_TMP/tree"
	(cd "$KEEL_TOP" && cp -r --parents init snap vmm net tests/unit tests/fuzz "$T_TMP/tree/")
	printf '%s\n' "$2" >> "$T_TMP/tree/$1"
}
caught() { # NAME FILE LINE WORDS: the planted line, and only it, is reported, naming the rule
	plant "$2" "$3"
	local out
	out=$(violations "$T_TMP/tree")
	if [ -n "$out" ] && ! echo "$out" | grep -vq "^$2: " && echo "$out" | grep -q "^$2: .*$4"; then
		pass "$1"
	else
		fail "$1" "got: $out"
	fi
}
caught "planted: a library file of snap/ including init/" snap/store.c '#include "init/init.h"' "only cmd_\*.c files"
caught "planted: a cmd_ file including init/init.h" snap/cmd_pack.c '#include "init/init.h"' "only init/cli.h"
caught "planted: snap/ including vmm/" snap/pack.c '#include "vmm/vmm.h"' "snap/ is below"
caught "planted: vmm/ including net/" vmm/vm.c '#include "net/net.h"' "do not include each other"
caught "planted: net/ including vmm's private header" net/conn.c '#include "vmm/vmm_int.h"' "private to vmm/"
caught "planted: a unit test including another module's private header" tests/unit/snap/test_store.c \
	'#include "net/net_int.h"' "private to net/"
