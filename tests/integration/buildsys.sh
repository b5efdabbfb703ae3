#!/usr/bin/env bash
# build.sh's generated Makefile takes the generated-header directory from the build directory it
# is given (GEN), not from a fixed build/gen: a KEEL_BUILD_DIR build must not compile against
# another build's keel_config.h. One object is compiled against a second config directory whose
# KEEL_VERSION is marked, and the mark must be in the object.
. "$(dirname "$0")/../lib.sh"

mk=$KEEL_BUILD/Makefile
lwip=$(ls -d "$KEEL_BUILD"/src/lwip-*/ 2>/dev/null | head -n 1)
bear=$(ls -d "$KEEL_BUILD"/src/bearssl-*/ 2>/dev/null | head -n 1)
if [ ! -f "$mk" ] || [ ! -f "$KEEL_BUILD/gen/keel_config.h" ] || [ -z "$lwip" ] || [ -z "$bear" ]; then
	skip makefile_gen_dir "no generated Makefile or sources in $KEEL_BUILD (run ./build.sh)"
	exit 0
fi
check "the generated Makefile names no fixed build/gen" sh -c '! grep -q "build/gen" "$0"' "$mk"

G=$T_TMP/gen
mkdir -p "$G"
mark="gen-dir-test-$$"
sed "s/^#define KEEL_VERSION .*/#define KEEL_VERSION \"$mark\"/" "$KEEL_BUILD/gen/keel_config.h" > "$G/keel_config.h"
make --no-print-directory -s -f "$mk" TOP="$KEEL_TOP" GEN="$G" LWIP="${lwip%/}" BEAR="${bear%/}" \
	O="$T_TMP/obj" BIN="$T_TMP/bin" CC=gcc VARIANT=check VCFLAGS= VLDFLAGS= "$T_TMP/obj/init/cmd_version.o" \
	> "$T_TMP/make.log" 2>&1
check "an object built with GEN=DIR uses DIR's keel_config.h" grep -aq "$mark" "$T_TMP/obj/init/cmd_version.o"
