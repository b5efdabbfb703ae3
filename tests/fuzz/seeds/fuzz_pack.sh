#!/bin/bash
# Seed streams for fuzz_pack (first byte: the slicing seed, then a SNAPPACK 1 stream).
set -eu
out=$1
h() { printf '%s' "$1" | b3sum --no-names; }
top=$(cd "$(dirname "$0")/../../.." && pwd)
man=$(cat "$top/tests/fuzz/seeds/fuzz_manifest/minimal.txt")
printf 'xSNAPPACK 1\nend\n' > "$out/empty"
printf 'xSNAPPACK 1\nobj %s 5\nhelloobj %s 0\nend\n' "$(h hello)" "$(h '')" > "$out/two-objects"
printf 'xSNAPPACK 1\nobj %s 5\nhelloobj %s 5\nhelloend\n' "$(h hello)" "$(h hello)" > "$out/duplicate"
printf 'xSNAPPACK 1\nmanifest %s %d\n%s\nend\n' "$(h "$man
")" $((${#man} + 1)) "$man" > "$out/manifest"
printf 'xSNAPPACK 1\nobj %s 5\nhellp' "$(h hello)" > "$out/mismatch"
