#!/bin/bash
# Seeds for fuzz_conn (first byte: the slicing seed, then what a peer sends): the fuzz_pack
# streams as pushes, want rounds, and a round followed by a push.
set -eu
out=$1
top=$(cd "$(dirname "$0")/../../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$top/tests/fuzz/seeds/fuzz_pack.sh" "$tmp"
for f in "$tmp"/*; do cp "$f" "$out/push-$(basename "$f")"; done
h() { printf '%s' "$1" | b3sum --no-names; }
printf 'xwant? 1 2\n%s\n%s\n' "$(h hello)" "$(h '')" > "$out/want-two"
printf 'xwant? 1 1\n%s\nSNAPPACK 1\nobj %s 5\nhelloend\n' "$(h hello)" "$(h hello)" > "$out/want-then-push"
printf 'xwant? 1 0\n' > "$out/want-zero"
printf 'xGET / HTTP/1.0\n\n' > "$out/http"
