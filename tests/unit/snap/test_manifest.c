/* Manifest v1: canonical round trip, strict parsing with the line named, ECDSA P-256 keys and signatures. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel_config.h"
#include "snap/snap.h"
#include "tests/harness.h"
#include "tests/unit/snap/fixtures.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"

static const char good[] =
	"keel-manifest 1\n"
	"name web-1.a_b\n"
	"parent " H3 "\n"
	"kernel " H1 "\n"
	"initrd none\n"
	"cmdline console=ttyS0 quiet\n"
	"memory 8388608 2097152\n"
	"chunk 0 " H1 "\n"
	"chunk 3 " H2 "\n"
	"vcpus 2\n"
	"vcpu 0 " H1 "\n"
	"vcpu 1 " H2 "\n"
	"vm-state " H1 "\n"
	"devices " H2 "\n"
	"policy-cpu-quota 150\n"
	"policy-net on\n"
	"policy-health-marker keel-guest: ready\n"
	"policy-health-timeout 30\n"
	"created 1700000000\n";

/* good with line `lineno` (1-based) replaced by `with` ("" deletes it); malloc'd. */
static char *edit(int lineno, const char *with)
{
	char *out = malloc(sizeof(good) + strlen(with) + 2), *o = out;
	const char *p = good;

	for (int n = 1; *p; n++) {
		const char *nl = strchr(p, '\n');
		size_t len = (size_t)(nl - p) + 1;
		if (n == lineno) {
			if (*with) {
				strcpy(o, with);
				o += strlen(with);
				*o++ = '\n';
			}
		} else {
			memcpy(o, p, len);
			o += len;
		}
		p += len;
	}
	*o = 0;
	return out;
}

/* Parse must fail with an error that names `line` and contains `what`. */
static void refuse(const char *text, size_t len, unsigned line, const char *what)
{
	struct snap_manifest m;
	char err[256], want[32];

	CHECK(snap_manifest_parse(text, len, &m, err, sizeof(err)) < 0);
	snprintf(want, sizeof(want), "line %u: ", line);
	if (strncmp(err, want, strlen(want)) || !strstr(err, what))
		t_fail(__FILE__, __LINE__, "error \"%s\" should start \"%s\" and say \"%s\"", err, want, what);
}

static void refuse_edit(int lineno, const char *with, unsigned line, const char *what)
{
	char *t = edit(lineno, with);

	refuse(t, strlen(t), line, what);
	free(t);
}

TEST(canonical_manifest_round_trips_byte_for_byte)
{
	struct snap_manifest m;
	char err[256], *out;
	size_t len;

	REQUIRE(snap_manifest_parse(good, strlen(good), &m, err, sizeof(err)) == 0);
	CHECK_STR(m.name, "web-1.a_b");
	CHECK(m.has_parent && m.has_kernel && !m.has_initrd);
	CHECK_STR(m.cmdline, "console=ttyS0 quiet");
	CHECK_EQ(m.memory_bytes, 8388608);
	CHECK_EQ(m.chunk_bytes, 2097152);
	CHECK_EQ(m.nchunks, 2);
	CHECK_EQ(m.chunks[1].index, 3);
	CHECK_EQ(m.chunks[1].id[0], 0x22);
	CHECK_EQ(m.vcpus, 2);
	CHECK_EQ(m.cpu_quota, 150);
	CHECK_EQ(m.net, 1);
	CHECK_STR(m.health_marker, "keel-guest: ready");
	CHECK_EQ(m.created, 1700000000);
	CHECK(!m.has_signature);
	CHECK_EQ(m.signed_len, strlen(good));
	REQUIRE(snap_manifest_format(&m, &out, &len) == 0);
	CHECK_EQ(len, strlen(good));
	CHECK(len == strlen(good) && !memcmp(out, good, len));
	free(out);
	snap_manifest_free(&m);
}

TEST(empty_cmdline_and_marker_and_no_chunks_round_trip)
{
	struct snap_manifest m;
	char *t = edit(6, "cmdline "), *u, *out;
	size_t len;

	/* drop the chunk lines (all memory zero) and empty the marker */
	u = t;
	t = malloc(strlen(u) + 1);
	{
		const char *p = u;
		char *o = t;
		while (*p) {
			const char *nl = strchr(p, '\n');
			size_t n = (size_t)(nl - p) + 1;
			if (strncmp(p, "chunk ", 6)) {
				if (!strncmp(p, "policy-health-marker ", 21)) {
					memcpy(o, "policy-health-marker \n", 22);
					o += 22;
				} else {
					memcpy(o, p, n);
					o += n;
				}
			}
			p += n;
		}
		*o = 0;
	}
	free(u);
	REQUIRE(snap_manifest_parse(t, strlen(t), &m, NULL, 0) == 0);
	CHECK_EQ(m.nchunks, 0);
	CHECK_STR(m.cmdline, "");
	REQUIRE(snap_manifest_format(&m, &out, &len) == 0);
	CHECK(len == strlen(t) && !memcmp(out, t, len));
	free(out);
	free(t);
	snap_manifest_free(&m);
}

TEST(unknown_version_refused_on_line_1)
{
	refuse_edit(1, "keel-manifest 2", 1, "unknown manifest version '2'");
	refuse_edit(1, "something else", 1, "not a keel manifest");
}

TEST(unknown_field_refused_naming_it)
{
	refuse_edit(16, "policy-gpu on", 16, "unknown field 'policy-gpu'");
}

TEST(field_out_of_order_refused)
{
	char *t = edit(3, "");     /* no parent: kernel comes where parent belongs */

	refuse(t, strlen(t), 3, "out of order");
	free(t);
	/* a chunk after vcpus */
	t = edit(11, "chunk 1 " H1);
	refuse(t, strlen(t), 11, "'chunk' out of order");
	free(t);
}

TEST(duplicate_field_refused)
{
	char *t = edit(4, "kernel " H1 "\nkernel " H1);

	refuse(t, strlen(t), 5, "duplicate field 'kernel'");
	free(t);
}

TEST(bad_hex_refused)
{
	refuse_edit(4, "kernel " "1111111111111111111111111111111111111111111111111111111111111ABC", 4, "bad hex");
	refuse_edit(4, "kernel 1234", 4, "bad hex");
	refuse_edit(8, "chunk 0 " "g111111111111111111111111111111111111111111111111111111111111111", 8, "bad hex");
}

TEST(trailing_garbage_refused)
{
	refuse_edit(10, "vcpus 2 extra", 10, "trailing garbage");
	refuse_edit(16, "policy-net on ", 16, "stray space");
	{
		size_t cap = sizeof(good) + 400;
		char *t = malloc(cap);
		snprintf(t, cap, "%ssignature ecdsa-p256 %s %s%s\nname again\n", good, H1, H2, H3);
		refuse(t, strlen(t), 21, "trailing garbage after the signature");
		free(t);
	}
}

TEST(missing_final_newline_refused_naming_the_last_line)
{
	refuse(good, strlen(good) - 1, 19, "missing final newline");
	refuse("", 0, 1, "empty");
}

TEST(missing_field_refused)
{
	refuse_edit(19, "", 19, "missing field 'created'");
}

TEST(values_out_of_range_refused)
{
	char line[64];

	refuse_edit(7, "memory 8388608 3000", 7, "power of two");
	refuse_edit(7, "memory 1000000 4096", 7, "multiple");
	refuse_edit(8, "chunk 4 " H1, 8, "out of range");        /* 8 MiB / 2 MiB = 4 chunks: 0..3 */
	refuse_edit(9, "chunk 0 " H2, 9, "not strictly ascending");
	refuse_edit(7, "memory 08388608 2097152", 7, "leading zero");
	refuse_edit(15, "policy-cpu-quota 201", 15, "out of range");
	refuse_edit(15, "policy-cpu-quota 0", 15, "at least 1");
	refuse_edit(16, "policy-net maybe", 16, "'on' or 'off'");
	refuse_edit(2, "name ../etc", 2, "bad name");
	refuse_edit(6, "cmdline a\tb", 6, "non-printable");
	refuse_edit(12, "vcpu 0 " H2, 12, "out of order");
	snprintf(line, sizeof(line), "vcpus %d", CONFIG_VMM_MAX_VCPUS + 1);
	refuse_edit(10, line, 10, "out of range");
	refuse_edit(19, "created 18446744073709551616", 19, "overflows");
}

TEST(too_few_vcpu_lines_refused)
{
	refuse_edit(12, "", 12, "vcpu");
}

TEST(oversized_manifest_refused_with_e2big)
{
	size_t n = (size_t)CONFIG_SNAP_MAX_MANIFEST_BYTES + 1;
	char *big = malloc(n);
	struct snap_manifest m;

	REQUIRE(big);
	memset(big, '\n', n);
	CHECK_EQ(snap_manifest_parse(big, n, &m, NULL, 0), -E2BIG);
	free(big);
}

static int count_ids(void *arg, const uint8_t id[32])
{
	int *c = arg;

	c[id[0]]++;
	return 0;
}

TEST(manifest_names_kernel_chunks_vcpus_state_and_devices)
{
	struct snap_manifest m;
	int c[256] = { 0 };

	REQUIRE(snap_manifest_parse(good, strlen(good), &m, NULL, 0) == 0);
	CHECK_EQ(snap_manifest_each_object(&m, count_ids, c), 0);
	CHECK_EQ(c[0x11], 4);   /* kernel, chunk 0, vcpu 0, vm-state */
	CHECK_EQ(c[0x22], 3);   /* chunk 3, vcpu 1, devices */
	CHECK_EQ(c[0x33], 0);   /* the parent is not an object of this snapshot */
	snap_manifest_free(&m);
}

TEST(signature_covers_the_bytes_before_it_and_names_the_key)
{
	struct snap_privkey k, other;
	struct snap_manifest m;
	uint8_t *sbuf;
	size_t slen;

	REQUIRE(snap_key_generate(&k) == 0);
	REQUIRE(snap_key_generate(&other) == 0);
	REQUIRE(snap_manifest_sign(good, strlen(good), &k, &sbuf, &slen) == 0);
	CHECK(slen > strlen(good) && !memcmp(sbuf, good, strlen(good)));
	REQUIRE(snap_manifest_parse(sbuf, slen, &m, NULL, 0) == 0);
	CHECK(m.has_signature);
	CHECK_EQ(m.signed_len, strlen(good));
	CHECK(!memcmp(m.sig_keyid, k.pub.id, 32));
	snap_manifest_free(&m);
	{
		uint8_t id[32];
		snap_b3_hash(k.pub.q, 65, 1, id);
		CHECK(!memcmp(id, k.pub.id, 32));
		CHECK_EQ(k.pub.q[0], 4);
	}
	CHECK_EQ(snap_manifest_verify(sbuf, slen, &k.pub, 1), 0);
	{
		struct snap_pubkey both[2] = { other.pub, k.pub };
		CHECK_EQ(snap_manifest_verify(sbuf, slen, both, 2), 0);
	}
	CHECK_EQ(snap_manifest_verify(sbuf, slen, &other.pub, 1), -ENOKEY);
	CHECK_EQ(snap_manifest_verify(good, strlen(good), &k.pub, 1), -ENOKEY);
	/* one changed byte in the signed part: still parses, no longer verifies */
	sbuf[strlen("keel-manifest 1\nname web-")] = '2';
	CHECK_EQ(snap_manifest_verify(sbuf, slen, &k.pub, 1), -EKEYREJECTED);
	free(sbuf);
}

TEST(signatures_are_low_s_and_the_high_s_twin_is_refused)
{
	struct snap_privkey k;
	int low = 0, i;

	REQUIRE(snap_key_generate(&k) == 0);
	for (i = 0; i < 32; i++) {
		char name[24], *text, *twin;
		uint8_t other[32];
		uint8_t *sbuf;
		size_t slen, tlen, n;
		struct snap_manifest m;

		snprintf(name, sizeof(name), "name web-%d", i);
		text = edit(2, name);
		REQUIRE(text);
		n = strlen(text);
		REQUIRE(snap_manifest_sign(text, n, &k, &sbuf, &slen) == 0);
		REQUIRE(snap_manifest_parse(sbuf, slen, &m, NULL, 0) == 0);
		/* s <= n/2 exactly when s <= n - s */
		memcpy(other, m.sig + 32, 32);
		fx_twin_s(other);
		low += memcmp(m.sig + 32, other, 32) <= 0;
		snap_manifest_free(&m);
		CHECK_EQ(snap_manifest_verify(sbuf, slen, &k.pub, 1), 0);
		twin = fx_high_s_twin(sbuf, slen, &tlen);
		REQUIRE(twin);
		CHECK(tlen == slen && memcmp(twin, sbuf, slen) != 0);
		CHECK_EQ(snap_manifest_verify(twin, tlen, &k.pub, 1), -EDOM);
		free(twin);
		free(sbuf);
		free(text);
	}
	CHECK_EQ(low, 32);
}

TEST(signing_again_replaces_the_signature_line)
{
	struct snap_privkey a, b;
	uint8_t *s1, *s2;
	size_t l1, l2;

	REQUIRE(snap_key_generate(&a) == 0 && snap_key_generate(&b) == 0);
	REQUIRE(snap_manifest_sign(good, strlen(good), &a, &s1, &l1) == 0);
	REQUIRE(snap_manifest_sign(s1, l1, &b, &s2, &l2) == 0);
	CHECK_EQ(l1, l2);
	CHECK_EQ(snap_manifest_verify(s2, l2, &b.pub, 1), 0);
	CHECK_EQ(snap_manifest_verify(s2, l2, &a.pub, 1), -ENOKEY);
	free(s1);
	free(s2);
}

TEST(keys_save_and_load_as_pem)
{
	struct snap_privkey k, k2;
	struct snap_pubkey p;
	char priv[512], pub[512];

	snprintf(priv, sizeof(priv), "%s/k.pem", t_tmpdir());
	snprintf(pub, sizeof(pub), "%s/k.pub", t_tmpdir());
	REQUIRE(snap_key_generate(&k) == 0);
	REQUIRE(snap_key_save_priv(priv, &k) == 0);
	REQUIRE(snap_key_save_pub(pub, &k.pub) == 0);
	REQUIRE(snap_key_load_priv(priv, &k2) == 0);
	REQUIRE(snap_key_load_pub(pub, &p) == 0);
	CHECK(!memcmp(k.x, k2.x, 32));
	CHECK(!memcmp(k.pub.q, p.q, 65));
	CHECK(!memcmp(k.pub.id, p.id, 32));
	/* a private key is not a public key and the other way round */
	CHECK(snap_key_load_pub(priv, &p) < 0);
	CHECK(snap_key_load_priv(pub, &k2) < 0);
}

TEST(openssl_keys_sec1_and_pkcs8_load_and_agree)
{
	struct snap_privkey a, b;
	struct snap_pubkey p;
	char d[512], path[600];
	const char *dir = t_tmpdir();

	if (t_sh("command -v openssl >/dev/null") != 0)
		t_skip("openssl is not installed");
	snprintf(d, sizeof(d), "%s", dir);
	REQUIRE(t_sh("cd '%s' && openssl ecparam -name prime256v1 -genkey -noout -out sec1.pem 2>/dev/null && "
		     "openssl pkcs8 -topk8 -nocrypt -in sec1.pem -out p8.pem && "
		     "openssl ec -in sec1.pem -pubout -out pub.pem 2>/dev/null", d) == 0);
	snprintf(path, sizeof(path), "%s/sec1.pem", d);
	REQUIRE(snap_key_load_priv(path, &a) == 0);
	snprintf(path, sizeof(path), "%s/p8.pem", d);
	REQUIRE(snap_key_load_priv(path, &b) == 0);
	snprintf(path, sizeof(path), "%s/pub.pem", d);
	REQUIRE(snap_key_load_pub(path, &p) == 0);
	CHECK(!memcmp(a.x, b.x, 32));
	CHECK(!memcmp(a.pub.q, p.q, 65));
	/* another curve is refused, not misread */
	REQUIRE(t_sh("cd '%s' && openssl ecparam -name secp384r1 -genkey -noout -out p384.pem 2>/dev/null && "
		     "openssl ec -in p384.pem -pubout -out p384.pub 2>/dev/null", d) == 0);
	snprintf(path, sizeof(path), "%s/p384.pem", d);
	CHECK(snap_key_load_priv(path, &a) < 0);
	snprintf(path, sizeof(path), "%s/p384.pub", d);
	CHECK_EQ(snap_key_load_pub(path, &p), -ENOTSUP);
}

/* good with read-only disks after its devices line (line 14). */
static char *with_disks(const char *disks)
{
	char line14[1024], *t;

	snprintf(line14, sizeof(line14), "devices " H2 "\n%s", disks);
	line14[strlen(line14) - 1] = 0;   /* edit() adds the last newline */
	t = edit(14, line14);
	return t;
}

TEST(disks_round_trip_and_their_chunks_are_objects)
{
	char *t = with_disks("disk root 1049088 65536 ro\n"
			     "disk-chunk 0 " H1 "\n"
			     "disk-chunk 16 " H3 "\n"
			     "disk swap 4096 4096 ro\n"
			     "disk var 8192 4096 ro\n"
			     "disk-chunk 1 " H2 "\n");
	struct snap_manifest m;
	char *out, err[200];
	size_t len;
	int c[256] = { 0 };

	REQUIRE(snap_manifest_parse(t, strlen(t), &m, err, sizeof(err)) == 0);
	REQUIRE(m.ndisks == 3);
	CHECK_STR(m.disks[0].name, "root");
	CHECK_EQ(m.disks[0].bytes, 1049088);
	CHECK_EQ(m.disks[0].nchunks, 2);
	CHECK_EQ(m.disks[0].chunks[1].index, 16);   /* the short last chunk of 17 */
	CHECK_EQ(m.disks[1].nchunks, 0);             /* all zeros */
	CHECK_EQ(m.disks[2].chunks[0].index, 1);
	CHECK_EQ(snap_manifest_each_object(&m, count_ids, c), 0);
	CHECK_EQ(c[0x33], 1);   /* a disk chunk (the parent is not an object) */
	CHECK_EQ(c[0x22], 4);
	REQUIRE(snap_manifest_format(&m, &out, &len) == 0);
	CHECK_EQ(len, strlen(t));
	CHECK(!memcmp(out, t, len));
	free(out);
	snap_manifest_free(&m);
	free(t);
}

TEST(bad_disk_lines_are_refused_naming_the_line)
{
	static const struct {
		const char *disks;
		unsigned line;
		const char *what;
	} bad[] = {
		{ "disk Root 4096 4096 ro\n", 15, "bad disk name" },
		{ "disk root 4096 4096 rw\n", 15, "read-only" },
		{ "disk root 4096 4096\n", 15, "read-only" },
		{ "disk root 1000 4096 ro\n", 15, "multiple of 512" },
		{ "disk root 4096 3000 ro\n", 15, "power of two" },
		{ "disk root 8192 4096 ro\ndisk-chunk 2 " H1 "\n", 16, "disk chunk index" },
		{ "disk root 8192 4096 ro\ndisk-chunk 1 " H1 "\ndisk-chunk 1 " H2 "\n", 17, "ascending" },
		{ "disk-chunk 0 " H1 "\n", 15, "before any disk" },
		{ "disk var 4096 4096 ro\ndisk root 4096 4096 ro\n", 16, "name order" },
		{ "disk root 4096 4096 ro\ndisk root 4096 4096 ro\n", 16, "name order" },
		{ "disk a 4096 4096 ro\ndisk b 4096 4096 ro\ndisk c 4096 4096 ro\ndisk d 4096 4096 ro\n"
		  "disk e 4096 4096 ro\n", 19, "more than 4" },
		{ "disk root 4096 4096 ro\ndisk-chunk 0 " H1 " x\n", 16, "" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *t = with_disks(bad[i].disks);

		refuse(t, strlen(t), bad[i].line, bad[i].what);
		free(t);
	}
	/* a disk line elsewhere is out of order */
	refuse_edit(6, "disk root 4096 4096 ro", 6, "out of order");
}
