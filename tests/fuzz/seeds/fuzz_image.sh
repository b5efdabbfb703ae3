#!/usr/bin/env bash
# Seeds for fuzz_image: small valid images (unsigned, signed, thin) built with keel, plus a bare header.
set -eu
out=$1
K=${KEEL:-$(cd "$(dirname "$0")/../../.." && pwd)/build/keel}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
"$K" store init "$t/s" >/dev/null
head -c 300 /dev/urandom > "$t/m"
id=$("$K" manifest create --store "$t/s" --name a --memory-file "$t/m" --chunk 4096 --activate)
"$K" manifest create --store "$t/s" --name b --parent "$id" --memory-file "$t/m" --chunk 4096 --activate >/dev/null
"$K" image build --store "$t/s" -o "$out/two-refs.img" >/dev/null
"$K" image build --store "$t/s" --ref a -o "$out/one-ref.img" >/dev/null
"$K" key gen "$t/k" "$t/k.pub" >/dev/null
"$K" image build --store "$t/s" --key "$t/k" -o "$out/signed.img" >/dev/null
"$K" image build --store "$t/s" --ref b --parent "$out/one-ref.img" -o "$out/thin.img" >/dev/null
# The index region alone (header + table + index + metadata) is where the parser works hardest.
for f in two-refs signed thin; do head -c 8192 "$out/$f.img" > "$out/$f-head.img"; done
