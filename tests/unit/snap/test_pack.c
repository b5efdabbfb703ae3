/* SNAPPACK 1: every invariant of the seed, one test each, against a real directory store. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel_config.h"
#include "snap/snap.h"
#include "tests/harness.h"
#include "tests/unit/snap/fixtures.h"

#define MAGIC "SNAPPACK 1\n"

static int has(struct snap_store *s, int kind, const uint8_t id[32])
{
	return snap_store_has(s, kind, id) == 1;
}

/* Runs a whole stream through a fresh rx in random slices; returns feed's or finish's error. */
static int run(struct snap_store *s, const struct fx_buf *b, const struct snap_pack_limits *lim, int *has_m,
	       uint8_t mid[32], char *msg, size_t msglen)
{
	struct snap_pack_rx rx;
	int r;

	snap_pack_rx_init(&rx, s, lim);
	r = fx_feed_split(&rx, b->p, b->len, 4096, 7);
	if (r == 0)
		r = snap_pack_rx_finish(&rx, has_m, mid);
	if (msg)
		snprintf(msg, msglen, "%s", snap_pack_rx_error(&rx));
	snap_pack_rx_free(&rx);
	return r;
}

TEST(magic_spells_the_wire_version_and_capabilities_say_it)
{
	char buf[256] = { 0 };
	FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");

	CHECK_STR(SNAP_WIRE_MAGIC, "SNAPPACK 1\n");
	CHECK_EQ(SNAP_WIRE_VERSION, 1);
	REQUIRE(f);
	REQUIRE(snap_print_capabilities(f) == 0);
	fclose(f);
	CHECK(!strncmp(buf, "snappack 1\n", 11));
	CHECK(strstr(buf, "capabilities obj manifest") != NULL);
}

TEST(valid_stream_files_objects_and_manifest_in_any_slicing)
{
	struct snap_store *s = fx_store("s");
	struct fx_buf b = { 0 };
	uint8_t a[32], c[32], mid[32], got[32];
	char *text;
	size_t tlen;
	int hm;

	REQUIRE(s);
	fx_puts(&b, MAGIC);
	fx_obj(&b, "alpha", 5, a);
	fx_obj(&b, "", 0, c);   /* a zero-length object is a valid record */
	text = fx_manifest_text("box", a, &tlen);
	REQUIRE(text);
	fx_manifest(&b, text, tlen, mid);
	fx_puts(&b, "end\n");
	for (uint32_t seed = 1; seed <= 3; seed++) {
		struct snap_pack_rx rx;
		snap_pack_rx_init(&rx, s, NULL);
		/* max slice 1: byte by byte; then larger random slices */
		REQUIRE(fx_feed_split(&rx, b.p, b.len, seed == 1 ? 1 : 97 * seed, seed) == 0);
		CHECK(snap_pack_rx_done(&rx));
		REQUIRE(snap_pack_rx_finish(&rx, &hm, got) == 0);
		CHECK_EQ(hm, 1);
		CHECK(!memcmp(got, mid, 32));
		snap_pack_rx_free(&rx);
	}
	CHECK(has(s, SNAP_KIND_OBJECT, a));
	CHECK(has(s, SNAP_KIND_OBJECT, c));
	CHECK(has(s, SNAP_KIND_MANIFEST, mid));
	CHECK_EQ(snap_store_verify(s, NULL, NULL), 0);
	free(text);
	free(b.p);
	snap_store_close(s);
}

TEST(header_line_rejected_the_moment_the_cap_is_hit)
{
	struct snap_store *s = fx_store("s");
	struct snap_pack_rx rx;
	uint8_t keep[32];
	char junk[SNAP_PACK_MAX_HEADER_BYTES];

	REQUIRE(s);
	fx_seed(s, keep);
	memset(junk, 'a', sizeof(junk));
	snap_pack_rx_init(&rx, s, NULL);
	REQUIRE(snap_pack_rx_feed(&rx, MAGIC, 11) == 0);
	/* cap - 1 bytes without a newline: still waiting */
	CHECK_EQ(snap_pack_rx_feed(&rx, junk, sizeof(junk) - 1), 0);
	/* the byte that reaches the cap fails at once, before any more input */
	CHECK_EQ(snap_pack_rx_feed(&rx, junk, 1), -EINVAL);
	CHECK(strstr(snap_pack_rx_error(&rx), "byte 139:") != NULL);
	CHECK(strstr(snap_pack_rx_error(&rx), "cap") != NULL);
	/* sticky: nothing more is accepted */
	CHECK_EQ(snap_pack_rx_feed(&rx, "\n", 1), -EINVAL);
	snap_pack_rx_free(&rx);

	/* A newline as the last byte inside the cap is parsed (and refused as a bad header, not as too long). */
	snap_pack_rx_init(&rx, s, NULL);
	REQUIRE(snap_pack_rx_feed(&rx, MAGIC, 11) == 0);
	junk[sizeof(junk) - 1] = '\n';
	CHECK_EQ(snap_pack_rx_feed(&rx, junk, sizeof(junk)), -EINVAL);
	CHECK(strstr(snap_pack_rx_error(&rx), "bad record header") != NULL);
	snap_pack_rx_free(&rx);
	CHECK(fx_intact(s, keep));
	snap_store_close(s);
}

TEST(longest_valid_header_fits_the_cap)
{
	char line[SNAP_PACK_MAX_HEADER_BYTES + 1];
	int n = snprintf(line, sizeof(line), "manifest %064d %llu\n", 0, (unsigned long long)UINT64_MAX);

	CHECK_EQ(n, 95);
	CHECK(n <= SNAP_PACK_MAX_HEADER_BYTES);
}

TEST(bad_magic_rejected_at_its_first_wrong_byte)
{
	struct snap_store *s = fx_store("s");
	struct snap_pack_rx rx;

	REQUIRE(s);
	snap_pack_rx_init(&rx, s, NULL);
	CHECK_EQ(snap_pack_rx_feed(&rx, "SNAPPACK 2\n", 11), -EINVAL);
	CHECK(strstr(snap_pack_rx_error(&rx), "byte 9:") != NULL);
	snap_pack_rx_free(&rx);
	snap_store_close(s);
}

TEST(hex64_validated_on_read)
{
	static const char *const bad[] = {
		"obj AF1349B9F5F9A1A6A0404DEA36DCC9499BCB25C9ADC112B7CC9A93CAE41F3262 0\n",   /* uppercase */
		"obj af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f326 0\n",    /* 63 digits */
		"obj af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f32622 0\n",  /* 65 digits */
		"obj gf1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262 0\n",   /* not hex */
		"obj ../../../../etc/passwd 0\n",
		"manifest af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f326/ 0\n",
	};
	struct snap_store *s = fx_store("s");
	uint8_t keep[32];

	REQUIRE(s);
	fx_seed(s, keep);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fx_buf b = { 0 };
		char msg[256];
		fx_puts(&b, MAGIC);
		fx_puts(&b, bad[i]);
		fx_puts(&b, "end\n");
		CHECK_EQ(run(s, &b, NULL, NULL, NULL, msg, sizeof(msg)), -EINVAL);
		CHECK(strstr(msg, "hex64") != NULL);
		free(b.p);
	}
	CHECK(fx_intact(s, keep));
	snap_store_close(s);
}

TEST(sender_writes_lowercase_hex64_headers_the_parser_accepts)
{
	struct snap_store *s = fx_store("s"), *d = fx_store("d");
	struct snap_source src;
	uint8_t ids[2][32];
	char path[512];
	struct stat st;
	int fd;

	REQUIRE(s && d);
	REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, "one", 3, ids[0]) == 0);
	REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, "two!", 4, ids[1]) == 0);
	snprintf(path, sizeof(path), "%s/p", t_tmpdir());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	REQUIRE(fd >= 0);
	snap_store_source(s, &src);
	REQUIRE(snap_pack_send(fd, &src, (const uint8_t(*)[32])ids, 2, NULL) == 0);
	REQUIRE(fstat(fd, &st) == 0);
	{
		char *buf = malloc((size_t)st.st_size + 1);
		struct snap_pack_rx rx;
		char hex[65];
		REQUIRE(pread(fd, buf, (size_t)st.st_size, 0) == st.st_size);
		buf[st.st_size] = 0;
		snap_hex(ids[0], hex);
		CHECK(!strncmp(buf, MAGIC "obj ", 15));
		CHECK(!strncmp(buf + 15, hex, 64));
		CHECK(!strcmp(buf + st.st_size - 4, "end\n"));
		snap_pack_rx_init(&rx, d, NULL);
		CHECK_EQ(snap_pack_rx_feed(&rx, buf, (size_t)st.st_size), 0);
		CHECK_EQ(snap_pack_rx_finish(&rx, NULL, NULL), 0);
		snap_pack_rx_free(&rx);
		free(buf);
	}
	close(fd);
	CHECK(has(d, SNAP_KIND_OBJECT, ids[0]) && has(d, SNAP_KIND_OBJECT, ids[1]));
	snap_store_close(s);
	snap_store_close(d);
}

TEST(mismatch_removes_the_staged_bytes_and_aborts_the_whole_stream)
{
	struct snap_store *s = fx_store("s");
	struct fx_buf b = { 0 };
	uint8_t keep[32], a[32], bad[32], c[32];
	char msg[256], hex[65];
	size_t off_bad;

	REQUIRE(s);
	fx_seed(s, keep);
	fx_puts(&b, MAGIC);
	fx_obj(&b, "good-first", 10, a);
	off_bad = b.len;
	fx_obj(&b, "tampered!!", 10, bad);
	b.p[b.len - 1] ^= 1;            /* flip one payload bit: the hash no longer matches */
	fx_obj(&b, "good-after", 10, c);
	fx_puts(&b, "end\n");
	CHECK_EQ(run(s, &b, NULL, NULL, NULL, msg, sizeof(msg)), -EBADMSG);
	snap_hex(bad, hex);
	CHECK(strstr(msg, hex) != NULL);
	{
		char want[32];
		snprintf(want, sizeof(want), "byte %zu:", off_bad);
		CHECK(!strncmp(msg, want, strlen(want)));
	}
	CHECK(has(s, SNAP_KIND_OBJECT, a));      /* verified before the bad record: may stay */
	CHECK(!has(s, SNAP_KIND_OBJECT, bad));
	CHECK(!has(s, SNAP_KIND_OBJECT, c));     /* nothing past the bad record is trusted */
	CHECK(fx_intact(s, keep));
	free(b.p);
	snap_store_close(s);
}

TEST(mismatch_detected_however_the_payload_is_sliced)
{
	struct snap_store *s = fx_store("s");
	struct fx_buf b = { 0 };
	uint8_t keep[32], id[32];
	size_t big = 3 * 1024 * 1024 + 17;
	uint8_t *data = malloc(big);

	REQUIRE(s && data);
	fx_seed(s, keep);
	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i * 2654435761u >> 13);
	fx_puts(&b, MAGIC);
	fx_obj(&b, data, big, id);
	b.p[b.len - 1234567] ^= 0x80;
	fx_puts(&b, "end\n");
	for (uint32_t seed = 1; seed <= 3; seed++) {
		struct snap_pack_rx rx;
		int r;
		snap_pack_rx_init(&rx, s, NULL);
		r = fx_feed_split(&rx, b.p, b.len, 65536 / seed + 1, seed);
		if (r == 0)
			r = snap_pack_rx_finish(&rx, NULL, NULL);
		CHECK_EQ(r, -EBADMSG);
		snap_pack_rx_free(&rx);
	}
	CHECK(!has(s, SNAP_KIND_OBJECT, id));
	CHECK(fx_intact(s, keep));
	free(data);
	free(b.p);
	snap_store_close(s);
}

TEST(second_manifest_rejected)
{
	struct snap_store *s = fx_store("s");
	struct fx_buf b = { 0 };
	uint8_t keep[32], a[32], m1[32], m2[32];
	char *t1, *t2, msg[256];
	size_t l1, l2;

	REQUIRE(s);
	fx_seed(s, keep);
	fx_puts(&b, MAGIC);
	fx_obj(&b, "x", 1, a);
	t1 = fx_manifest_text("one", a, &l1);
	t2 = fx_manifest_text("two", a, &l2);
	fx_manifest(&b, t1, l1, m1);
	fx_manifest(&b, t2, l2, m2);
	fx_puts(&b, "end\n");
	CHECK_EQ(run(s, &b, NULL, NULL, NULL, msg, sizeof(msg)), -EINVAL);
	CHECK(strstr(msg, "second manifest") != NULL);
	CHECK(!has(s, SNAP_KIND_MANIFEST, m1) && !has(s, SNAP_KIND_MANIFEST, m2));
	CHECK(fx_intact(s, keep));
	free(t1);
	free(t2);
	free(b.p);
	snap_store_close(s);
}

TEST(record_after_the_manifest_rejected_and_manifest_not_committed)
{
	struct snap_store *s = fx_store("s");
	struct fx_buf b = { 0 };
	uint8_t keep[32], a[32], m[32], late[32];
	char *t, msg[256];
	size_t l;

	REQUIRE(s);
	fx_seed(s, keep);
	fx_puts(&b, MAGIC);
	fx_obj(&b, "x", 1, a);
	t = fx_manifest_text("one", a, &l);
	fx_manifest(&b, t, l, m);
	fx_obj(&b, "late", 4, late);
	fx_puts(&b, "end\n");
	CHECK_EQ(run(s, &b, NULL, NULL, NULL, msg, sizeof(msg)), -EINVAL);
	CHECK(strstr(msg, "after the manifest") != NULL);
	CHECK(!has(s, SNAP_KIND_MANIFEST, m));
	CHECK(!has(s, SNAP_KIND_OBJECT, late));
	CHECK(fx_intact(s, keep));
	free(t);
	free(b.p);
	snap_store_close(s);
}

TEST(manifest_committed_only_after_end_and_eof)
{
	struct snap_store *s = fx_store("s");
	struct fx_buf b = { 0 };
	struct snap_pack_rx rx;
	uint8_t keep[32], a[32], m[32];
	char *t;
	size_t l;
	int hm = -1;

	REQUIRE(s);
	fx_seed(s, keep);
	fx_puts(&b, MAGIC);
	fx_obj(&b, "x", 1, a);
	t = fx_manifest_text("one", a, &l);
	fx_manifest(&b, t, l, m);
	fx_puts(&b, "end\n");

	/* EOF before end: the verified object may stay, the manifest never appears. */
	snap_pack_rx_init(&rx, s, NULL);
	CHECK_EQ(snap_pack_rx_feed(&rx, b.p, b.len - 4), 0);
	CHECK(!has(s, SNAP_KIND_MANIFEST, m));
	CHECK_EQ(snap_pack_rx_finish(&rx, &hm, NULL), -EPIPE);
	CHECK_EQ(hm, 0);
	CHECK(strstr(snap_pack_rx_error(&rx), "before the end trailer") != NULL);
	snap_pack_rx_free(&rx);
	CHECK(has(s, SNAP_KIND_OBJECT, a));
	CHECK(!has(s, SNAP_KIND_MANIFEST, m));
	CHECK(fx_intact(s, keep));

	/* "end" read but no finish yet: still not observable. */
	snap_pack_rx_init(&rx, s, NULL);
	CHECK_EQ(snap_pack_rx_feed(&rx, b.p, b.len), 0);
	CHECK(snap_pack_rx_done(&rx));
	CHECK(!has(s, SNAP_KIND_MANIFEST, m));
	CHECK_EQ(snap_pack_rx_finish(&rx, &hm, NULL), 0);
	CHECK_EQ(hm, 1);
	CHECK(has(s, SNAP_KIND_MANIFEST, m));
	snap_pack_rx_free(&rx);
	free(t);
	free(b.p);
	snap_store_close(s);
}

TEST(eof_inside_a_payload_is_a_length_that_lies)
{
	struct snap_store *s = fx_store("s");
	struct fx_buf b = { 0 };
	uint8_t keep[32];
	char msg[256];

	REQUIRE(s);
	fx_seed(s, keep);
	fx_puts(&b, MAGIC);
	/* claims 1000 bytes, carries 5 and the trailer, which the payload swallows */
	fx_puts(&b, "obj af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262 1000\nshortend\n");
	CHECK_EQ(run(s, &b, NULL, NULL, NULL, msg, sizeof(msg)), -EPIPE);
	CHECK(strstr(msg, "inside a record payload") != NULL);
	CHECK(fx_intact(s, keep));      /* the staged temp file is gone */
	free(b.p);
	snap_store_close(s);
}

TEST(non_decimal_overflowing_and_noncanonical_lengths_rejected)
{
	static const char *const lens[] = { "-1", "+1", "1x", "0x10", "", " 1", "01",
					    "18446744073709551616", "99999999999999999999999" };
	struct snap_store *s = fx_store("s");
	uint8_t keep[32];

	REQUIRE(s);
	fx_seed(s, keep);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct fx_buf b = { 0 };
		char line[160], msg[256];
		fx_puts(&b, MAGIC);
		snprintf(line, sizeof(line), "obj af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262 %s\n",
			 lens[i]);
		fx_puts(&b, line);
		fx_puts(&b, "end\n");
		CHECK_EQ(run(s, &b, NULL, NULL, NULL, msg, sizeof(msg)), -EINVAL);
		CHECK(strstr(msg, "length") != NULL);
	}
	CHECK(fx_intact(s, keep));
	snap_store_close(s);
}

TEST(duplicates_skipped_but_still_read_and_verified)
{
	struct snap_store *s = fx_store("s");
	struct fx_buf b = { 0 }, bad = { 0 };
	struct snap_pack_rx rx;
	uint8_t keep[32], a[32];
	char msg[256];

	REQUIRE(s);
	fx_seed(s, keep);
	REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, "present", 7, a) == 0);
	fx_puts(&b, MAGIC);
	fx_obj(&b, "present", 7, NULL);
	fx_obj(&b, "present", 7, NULL);
	fx_puts(&b, "end\n");
	snap_pack_rx_init(&rx, s, NULL);
	CHECK_EQ(fx_feed_split(&rx, b.p, b.len, 3, 9), 0);
	CHECK_EQ(snap_pack_rx_finish(&rx, NULL, NULL), 0);
	CHECK_EQ(rx.duplicates, 2);
	CHECK_EQ(rx.stored, 0);
	snap_pack_rx_free(&rx);

	/* the same id with other bytes: refused although the object is present */
	fx_puts(&bad, MAGIC);
	fx_obj(&bad, "present", 7, NULL);
	bad.p[bad.len - 1] = 'X';
	fx_puts(&bad, "end\n");
	CHECK_EQ(run(s, &bad, NULL, NULL, NULL, msg, sizeof(msg)), -EBADMSG);
	CHECK(strstr(msg, "does not hash") != NULL);
	CHECK(fx_intact(s, keep));
	free(b.p);
	free(bad.p);
	snap_store_close(s);
}

TEST(manifest_payload_capped_before_buffering)
{
	struct snap_store *s = fx_store("s");
	struct snap_pack_limits lim = { .max_manifest_bytes = 100 };
	struct snap_pack_rx rx;
	uint8_t keep[32];
	char line[160];

	REQUIRE(s);
	fx_seed(s, keep);
	snap_pack_rx_init(&rx, s, &lim);
	REQUIRE(snap_pack_rx_feed(&rx, MAGIC, 11) == 0);
	snprintf(line, sizeof(line), "manifest af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262 101\n");
	/* refused at the header: no payload byte has been sent yet */
	CHECK_EQ(snap_pack_rx_feed(&rx, line, strlen(line)), -E2BIG);
	CHECK(rx.manifest == NULL);
	snap_pack_rx_free(&rx);

	/* the build-time cap applies when no smaller one is given */
	snap_pack_rx_init(&rx, s, NULL);
	REQUIRE(snap_pack_rx_feed(&rx, MAGIC, 11) == 0);
	snprintf(line, sizeof(line), "manifest af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262 %d\n",
		 CONFIG_SNAP_MAX_MANIFEST_BYTES + 1);
	CHECK_EQ(snap_pack_rx_feed(&rx, line, strlen(line)), -E2BIG);
	snap_pack_rx_free(&rx);
	CHECK(fx_intact(s, keep));
	snap_store_close(s);
}

TEST(manifest_naming_a_missing_object_never_committed)
{
	struct snap_store *s = fx_store("s");
	struct fx_buf b = { 0 };
	uint8_t keep[32], ghost[32], m[32];
	char *t, msg[256];
	size_t l;

	REQUIRE(s);
	fx_seed(s, keep);
	snap_b3_hash("never sent", 10, 1, ghost);
	fx_puts(&b, MAGIC);
	t = fx_manifest_text("keep", ghost, &l);
	fx_manifest(&b, t, l, m);
	fx_puts(&b, "end\n");
	CHECK_EQ(run(s, &b, NULL, NULL, NULL, msg, sizeof(msg)), -ENOENT);
	CHECK(strstr(msg, "not in the store") != NULL);
	CHECK(!has(s, SNAP_KIND_MANIFEST, m));
	CHECK(fx_intact(s, keep));
	free(t);
	free(b.p);
	snap_store_close(s);
}

TEST(trusted_keys_refuse_unsigned_and_accept_signed_manifests)
{
	struct snap_store *s = fx_store("s");
	struct snap_privkey k, other;
	struct snap_pack_limits lim = { 0 };
	uint8_t keep[32], a[32], m[32], *signed_buf;
	char *t, msg[256];
	size_t l, sl;

	REQUIRE(s);
	fx_seed(s, keep);
	REQUIRE(snap_key_generate(&k) == 0);
	REQUIRE(snap_key_generate(&other) == 0);
	lim.keys = &k.pub;
	lim.nkeys = 1;
	REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, "x", 1, a) == 0);
	t = fx_manifest_text("keep", a, &l);
	{
		struct fx_buf b = { 0 };
		fx_puts(&b, MAGIC);
		fx_manifest(&b, t, l, m);
		fx_puts(&b, "end\n");
		CHECK_EQ(run(s, &b, &lim, NULL, NULL, msg, sizeof(msg)), -ENOKEY);
		CHECK(strstr(msg, "not signed") != NULL);
		CHECK(!has(s, SNAP_KIND_MANIFEST, m));
		free(b.p);
	}
	{
		struct fx_buf b = { 0 };
		REQUIRE(snap_manifest_sign(t, l, &other, &signed_buf, &sl) == 0);
		fx_puts(&b, MAGIC);
		fx_manifest(&b, signed_buf, sl, m);
		fx_puts(&b, "end\n");
		CHECK_EQ(run(s, &b, &lim, NULL, NULL, msg, sizeof(msg)), -ENOKEY);
		CHECK(!has(s, SNAP_KIND_MANIFEST, m));
		free(signed_buf);
		free(b.p);
	}
	CHECK(fx_intact(s, keep));
	{
		/* the high-s twin of a good signature: valid for plain ECDSA, refused here */
		struct fx_buf b = { 0 };
		char *twin;
		size_t tl;
		uint8_t tm[32];

		REQUIRE(snap_manifest_sign(t, l, &k, &signed_buf, &sl) == 0);
		twin = fx_high_s_twin(signed_buf, sl, &tl);
		REQUIRE(twin);
		fx_puts(&b, MAGIC);
		fx_manifest(&b, twin, tl, tm);
		fx_puts(&b, "end\n");
		CHECK_EQ(run(s, &b, &lim, NULL, NULL, msg, sizeof(msg)), -EDOM);
		CHECK(!has(s, SNAP_KIND_MANIFEST, tm));
		free(twin);
		free(signed_buf);
		free(b.p);
	}
	{
		struct fx_buf b = { 0 };
		int hm;
		REQUIRE(snap_manifest_sign(t, l, &k, &signed_buf, &sl) == 0);
		fx_puts(&b, MAGIC);
		fx_manifest(&b, signed_buf, sl, m);
		fx_puts(&b, "end\n");
		CHECK_EQ(run(s, &b, &lim, &hm, NULL, msg, sizeof(msg)), 0);
		CHECK(has(s, SNAP_KIND_MANIFEST, m));
		free(signed_buf);
		free(b.p);
	}
	free(t);
	snap_store_close(s);
}

TEST(bytes_after_end_rejected_and_manifest_not_committed)
{
	struct snap_store *s = fx_store("s");
	struct fx_buf b = { 0 };
	uint8_t keep[32], a[32], m[32];
	char *t, msg[256];
	size_t l;

	REQUIRE(s);
	fx_seed(s, keep);
	fx_puts(&b, MAGIC);
	fx_obj(&b, "x", 1, a);
	t = fx_manifest_text("keep", a, &l);
	fx_manifest(&b, t, l, m);
	fx_puts(&b, "end\nend\n");
	CHECK_EQ(run(s, &b, NULL, NULL, NULL, msg, sizeof(msg)), -EINVAL);
	CHECK(strstr(msg, "after the end") != NULL);
	CHECK(!has(s, SNAP_KIND_MANIFEST, m));
	CHECK(fx_intact(s, keep));
	free(t);
	free(b.p);
	snap_store_close(s);
}

TEST(object_and_stream_limits_refuse_at_the_header)
{
	struct snap_store *s = fx_store("s");
	struct snap_pack_limits lim = { .max_object_bytes = 10 };
	struct fx_buf b = { 0 };
	uint8_t keep[32], a[32];
	char msg[256];

	REQUIRE(s);
	fx_seed(s, keep);
	fx_puts(&b, MAGIC);
	fx_obj(&b, "eleven byte", 11, a);
	fx_puts(&b, "end\n");
	CHECK_EQ(run(s, &b, &lim, NULL, NULL, msg, sizeof(msg)), -EFBIG);
	lim.max_object_bytes = 0;
	lim.max_stream_bytes = 50;
	CHECK_EQ(run(s, &b, &lim, NULL, NULL, msg, sizeof(msg)), -EFBIG);
	CHECK(!has(s, SNAP_KIND_OBJECT, a));
	CHECK(fx_intact(s, keep));
	free(b.p);
	snap_store_close(s);
}

TEST(a_directory_that_is_not_a_store_is_refused)
{
	struct snap_store *s = NULL;
	char path[512];

	snprintf(path, sizeof(path), "%s/plain", t_tmpdir());
	REQUIRE(mkdir(path, 0755) == 0);
	CHECK_EQ(snap_store_open(path, &s), -ENOTDIR);
	snprintf(path, sizeof(path), "%s/file", t_tmpdir());
	REQUIRE(t_write_file(path, "x", 1) == 0);
	CHECK_EQ(snap_store_open(path, &s), -ENOTDIR);
	snprintf(path, sizeof(path), "%s/missing", t_tmpdir());
	CHECK_EQ(snap_store_open(path, &s), -ENOENT);
}

TEST(disk_full_aborts_cleanly_and_loses_nothing)
{
	struct snap_store *s;
	struct fx_buf b = { 0 };
	uint8_t keep[32], big_id[32], small[32];
	size_t big = 2 * 1024 * 1024;
	uint8_t *data;
	char path[512], msg[256];
	int r;

	snprintf(path, sizeof(path), "%s/tmpfs", t_tmpdir());
	REQUIRE(mkdir(path, 0755) == 0);
	if (geteuid() != 0 || mount("keeltest", path, "tmpfs", 0, "size=1m") < 0)
		t_skip("cannot mount a 1 MiB tmpfs here (need root and CAP_SYS_ADMIN)");
	snprintf(path, sizeof(path), "%s/tmpfs/s", t_tmpdir());
	REQUIRE(snap_store_init(path) == 0);
	REQUIRE(snap_store_open(path, &s) == 0);
	fx_seed(s, keep);
	data = malloc(big);
	REQUIRE(data);
	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i * 31 + (i >> 9));
	fx_puts(&b, MAGIC);
	fx_obj(&b, "fits", 4, small);
	fx_obj(&b, data, big, big_id);
	fx_puts(&b, "end\n");
	r = run(s, &b, NULL, NULL, NULL, msg, sizeof(msg));
	CHECK_EQ(r, -ENOSPC);
	CHECK(strstr(msg, "space") != NULL);
	CHECK(has(s, SNAP_KIND_OBJECT, small));
	CHECK(!has(s, SNAP_KIND_OBJECT, big_id));
	CHECK(fx_intact(s, keep));
	/* the write path too, past the up-front free-space check */
	{
		struct snap_store_writer w;
		REQUIRE(snap_store_begin(s, &w) == 0);
		CHECK_EQ(snap_store_write(&w, data, big), -ENOSPC);
		snap_store_abort(&w);
		CHECK(fx_intact(s, keep));
	}
	snap_store_close(s);
	free(data);
	free(b.p);
	snprintf(path, sizeof(path), "%s/tmpfs", t_tmpdir());
	umount2(path, MNT_DETACH);
}

TEST(rx_state_is_fixed_size)
{
	/* O(1) memory per record: the parser owns no buffer that grows with an object. */
	/* two BLAKE3 states (about 1.9 KiB each), the header line and counters */
	CHECK(sizeof(struct snap_pack_rx) < 8192);
}

TEST(sender_stops_before_end_when_a_stored_object_is_corrupt)
{
	struct snap_store *s = fx_store("s");
	struct snap_source src;
	uint8_t id[32];
	char path[600], hex[65], tail[4];
	struct stat st;
	int fd;

	REQUIRE(s);
	REQUIRE(snap_store_put_buf(s, SNAP_KIND_OBJECT, "pristine", 8, id) == 0);
	snap_hex(id, hex);
	snprintf(path, sizeof(path), "%s/objects/%s", snap_store_dir(s), hex);
	chmod(path, 0644);
	REQUIRE(t_write_file(path, "tampered", 8) == 0);
	snprintf(path, sizeof(path), "%s/out", t_tmpdir());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	REQUIRE(fd >= 0);
	snap_store_source(s, &src);
	CHECK_EQ(snap_pack_send(fd, &src, (const uint8_t(*)[32])&id, 1, NULL), -EBADMSG);
	REQUIRE(fstat(fd, &st) == 0);
	REQUIRE(st.st_size >= 4);
	REQUIRE(pread(fd, tail, 4, st.st_size - 4) == 4);
	CHECK(memcmp(tail, "end\n", 4) != 0);   /* no trailer: a receiver can never commit after it */
	close(fd);
	snap_store_close(s);
}
