# `keel store` and `keel manifest`/`keel key` from the command line: ids, corruption reports, refs, gc, signatures.
. "$(dirname "$0")/../lib.sh"

S=$T_TMP/s
check "store init" "$KEEL" store init "$S"
check "store init again is fine" "$KEEL" store init "$S"
printf 'hello world' > "$T_TMP/a"
head -c 3000000 /dev/urandom > "$T_TMP/b"
ida=$("$KEEL" store put "$S" "$T_TMP/a")
check "put prints the BLAKE3 id" sh -c '[ "$0" = "$("$1" b3sum "$2" | cut -d" " -f1)" ]' "$ida" "$KEEL" "$T_TMP/a"
check "the object lives at objects/<id>" test -f "$S/objects/$ida"
idb=$(cat "$T_TMP/b" | "$KEEL" store put "$S" -)
check "get returns the bytes" sh -c '"$0" store get "$1" "$2" | cmp -s - "$3"' "$KEEL" "$S" "$idb" "$T_TMP/b"
check "verify passes on a clean store" "$KEEL" store verify "$S"
check_status "get of a bad id is a usage error" 2 "$KEEL" store get "$S" ../../etc/passwd
check_status "get of an absent id fails" 1 "$KEEL" store get "$S" 0000000000000000000000000000000000000000000000000000000000000000

cp "$S/objects/$ida" "$T_TMP/saved"
chmod u+w "$S/objects/$ida"
printf 'HELLO world' > "$S/objects/$ida"
check_status "get of a corrupt object fails" 1 "$KEEL" store get "$S" "$ida"
check "... naming the id" grep -q "$ida" "$T_TMP/.err"
check_status "verify of a corrupt store exits 1" 1 "$KEEL" store verify "$S"
check "... naming the corrupt object" grep -q "objects/$ida: corrupt" "$T_TMP/.err"
cp "$T_TMP/saved" "$S/objects/$ida"

m=$("$KEEL" manifest create --store "$S" --name web --kernel "$ida" --memory 8192 --chunk 4096 --created 7)
check "manifest create prints an id that is in manifests/" test -f "$S/manifests/$m"
check "manifest show prints the canonical text" sh -c '"$0" manifest show --store "$1" "$2" | head -n 2 | tail -n 1 | grep -qx "name web"' \
	"$KEEL" "$S" "$m"
check_status "ref to an absent manifest fails" 1 "$KEEL" store ref "$S" web "$ida"
check "ref set" "$KEEL" store ref "$S" web "$m"
check "ref get" sh -c '[ "$("$0" store ref "$1" web)" = "$2" ]' "$KEEL" "$S" "$m"
check_status "ref name with a slash is a usage error" 2 "$KEEL" store ref "$S" ../web "$m"
check "refs list" sh -c '"$0" store ref "$1" | grep -qx "web $2"' "$KEEL" "$S" "$m"

check "gc removes only what no ref reaches" sh -c '"$0" store gc "$1" | grep -q "^removed 1 file" && test -f "$1/objects/$2" && ! test -f "$1/objects/$3"' \
	"$KEEL" "$S" "$ida" "$idb"
check "verify after gc" "$KEEL" store verify "$S"
check_status "store commands on a non-store fail" 1 "$KEEL" store verify "$T_TMP"
check "... in one line" one_line_error "$T_TMP/.err"

# Signatures: keys from openssl (SEC1 and PKCS#8) and from keel key gen.
if command -v openssl > /dev/null 2>&1; then
	openssl ecparam -name prime256v1 -genkey -noout -out "$T_TMP/sec1.pem" 2>/dev/null
	openssl pkcs8 -topk8 -nocrypt -in "$T_TMP/sec1.pem" -out "$T_TMP/p8.pem"
	openssl ec -in "$T_TMP/sec1.pem" -pubout -out "$T_TMP/pub.pem" 2>/dev/null
	sm=$("$KEEL" manifest sign --key "$T_TMP/sec1.pem" --store "$S" "$m")
	check "sign files the signed manifest and prints its id" test -f "$S/manifests/$sm"
	check "verify with the right key" "$KEEL" manifest verify --key "$T_TMP/pub.pem" --store "$S" "$sm"
	check_status "verify of the unsigned manifest fails" 1 "$KEEL" manifest verify --key "$T_TMP/pub.pem" --store "$S" "$m"
	check "PKCS#8 key signs the same way" sh -c '"$0" manifest sign --key "$1" --store "$2" "$3" | grep -qx "$4"' \
		"$KEEL" "$T_TMP/p8.pem" "$S" "$m" "$sm"
	"$KEEL" store get "$S" "$sm" > "$T_TMP/signed"
	# openssl agrees: the signature line's r||s, as DER, over the bytes before that line.
	if command -v python3 > /dev/null 2>&1; then
		python3 - "$T_TMP/signed" "$T_TMP" <<'EOF'
import sys
data = open(sys.argv[1], 'rb').read()
cut = data.rindex(b'\nsignature ') + 1
open(sys.argv[2] + '/body', 'wb').write(data[:cut])
sig = bytes.fromhex(data[cut:].split()[3].decode())
def der_int(b):
    b = b.lstrip(b'\0') or b'\0'
    if b[0] & 0x80: b = b'\0' + b
    return b'\x02' + bytes([len(b)]) + b
body = der_int(sig[:32]) + der_int(sig[32:])
open(sys.argv[2] + '/sig.der', 'wb').write(b'\x30' + bytes([len(body)]) + body)
# The (r, n - s) twin: as valid for plain ECDSA (openssl), another manifest id.
n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551
hs = (n - int.from_bytes(sig[32:], 'big')).to_bytes(32, 'big')
body = der_int(sig[:32]) + der_int(hs)
open(sys.argv[2] + '/sig-high.der', 'wb').write(b'\x30' + bytes([len(body)]) + body)
line = data[cut:].split(b' ')
line[3] = (sig[:32] + hs).hex().encode() + b'\n'
open(sys.argv[2] + '/signed-high', 'wb').write(data[:cut] + b' '.join(line))
EOF
		check "openssl verifies keel's signature" openssl dgst -sha256 -verify "$T_TMP/pub.pem" -signature "$T_TMP/sig.der" "$T_TMP/body"
		check "openssl also accepts its high-s twin" openssl dgst -sha256 -verify "$T_TMP/pub.pem" -signature "$T_TMP/sig-high.der" "$T_TMP/body"
		check_status "keel manifest verify refuses the high-s twin" 1 "$KEEL" manifest verify --key "$T_TMP/pub.pem" "$T_TMP/signed-high"
		check "... in one line" one_line_error "$T_TMP/.err"
		check "... saying why" grep -q "high-s\\|low-s\\|s > n/2" "$T_TMP/.err"
	else
		skip "openssl verifies keel's signature" "python3 is not installed (needed to re-encode r||s as DER)"
	fi
	printf 'x' >> "$T_TMP/signed"
	check_status "a tampered signed file does not verify" 1 "$KEEL" manifest verify --key "$T_TMP/pub.pem" "$T_TMP/signed"
else
	skip "openssl keys" "openssl is not installed"
fi
check "key gen" "$KEEL" key gen "$T_TMP/k.pem" "$T_TMP/k.pub"
"$KEEL" manifest show --store "$S" "$m" > "$T_TMP/plain"
"$KEEL" manifest sign --key "$T_TMP/k.pem" "$T_TMP/plain" -o "$T_TMP/plain.signed"
check "sign a file, verify it with keel's own key" "$KEEL" manifest verify --key "$T_TMP/k.pub" "$T_TMP/plain.signed"
check "the signature line names the key id" sh -c 'tail -n 1 "$0" | grep -q "^signature ecdsa-p256 $("$1" key id "$2") "' \
	"$T_TMP/plain.signed" "$KEEL" "$T_TMP/k.pub"
printf 'keel-manifest 1\nname x\nbogus 1\n' > "$T_TMP/broken"
check_status "show of a malformed manifest fails" 1 "$KEEL" manifest show "$T_TMP/broken"
check "... naming the line" grep -q "line 3: unknown field 'bogus'" "$T_TMP/.err"
exit 0
