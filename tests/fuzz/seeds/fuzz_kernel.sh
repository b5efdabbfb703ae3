#!/usr/bin/env bash
# Seeds for fuzz_kernel: the tiny test guest (ELF) and the first 64 KiB of Debian's bzImage and
# vmlinux (setup header, ELF and program headers), when build.sh has fetched them.
set -eu
out=$1
B=${KEEL_BUILD:-$(cd "$(dirname "$0")/../../.." && pwd)/build}
[ -f "$B/tests/guest/tiny.elf" ] && cp "$B/tests/guest/tiny.elf" "$out/tiny.elf"
[ -f "$B/kernel/vmlinuz" ] && head -c 65536 "$B/kernel/vmlinuz" > "$out/bzimage-head"
[ -f "$B/kernel/vmlinux" ] && head -c 65536 "$B/kernel/vmlinux" > "$out/vmlinux-head"
exit 0
