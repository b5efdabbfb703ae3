/* CAR v1 codec and push reader: encodings match the reference JavaScript implementation's bytes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snap/car.h"
#include "tests/harness.h"

/* Facts printed by @ipld/car 5.4 + multiformats 14 (the IPFS reference implementation). */
#define CID_RAW_SHA256_EMPTY "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
#define CID_RAW_BLAKE3_ABC "bafkr4ideg6z2yocgkez77nr3outtvdnvjdcvqrs5phnqh7jvtrwnlpm5qu"
/* CarWriter.create([raw-sha256(""), raw-blake3("abc")]) then put(raw-sha256("") -> ""). */
#define JS_CAR_HEX                                                                          \
	"63a265726f6f747382d82a58250001551220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934c" \
	"a495991b7852b855d82a58250001551e206437b3ac38465133ffb63b75273a8db548c558465d79db03fd" \
	"359c6cd5bd9d856776657273696f6e012401551220e3b0c44298fc1c149afbf4c8996fb92427ae41e464" \
	"9b934ca495991b7852b855"

static const uint8_t sha256_empty[32] = {
	0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
	0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
};
/* BLAKE3-256("abc"), an official test vector. */
static const uint8_t b3_abc[32] = {
	0x64, 0x37, 0xb3, 0xac, 0x38, 0x46, 0x51, 0x33, 0xff, 0xb6, 0x3b, 0x75, 0x27, 0x3a, 0x8d, 0xb5,
	0x48, 0xc5, 0x58, 0x46, 0x5d, 0x79, 0xdb, 0x03, 0xfd, 0x35, 0x9c, 0x6c, 0xd5, 0xbd, 0x9d, 0x85,
};

static size_t unhex(const char *s, uint8_t *out)
{
	size_t n = strlen(s) / 2;

	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(s + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void sha_cid(struct snap_car_cid *c, const uint8_t d[32])
{
	c->codec = SNAP_CAR_CODEC_RAW;
	c->mh = SNAP_CAR_MH_SHA2_256;
	memcpy(c->digest, d, 32);
}

TEST(varint_encodes_minimally_and_round_trips)
{
	static const struct { uint64_t v; const char *hex; } k[] = {
		{ 0, "00" }, { 1, "01" }, { 127, "7f" }, { 128, "8001" }, { 300, "ac02" },
		{ 16384, "808001" }, { 0x7fffffffffffffffULL, "ffffffffffffffff7f" },
	};
	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		uint8_t want[16], got[SNAP_CAR_VARINT_MAX];
		size_t wn = unhex(k[i].hex, want), gn = snap_car_varint_put(k[i].v, got);
		uint64_t back = 0;

		CHECK_EQ(gn, wn);
		CHECK(memcmp(got, want, wn) == 0);
		CHECK_EQ(snap_car_varint_get(got, gn, &back), (int)gn);
		CHECK(back == k[i].v);
	}
}

TEST(varint_rejects_non_minimal_overlong_and_reports_truncation)
{
	uint64_t v;

	CHECK_EQ(snap_car_varint_get((const uint8_t *)"\x80\x00", 2, &v), -EBADMSG);
	CHECK_EQ(snap_car_varint_get((const uint8_t *)"\x81\x00", 2, &v), -EBADMSG);
	CHECK_EQ(snap_car_varint_get((const uint8_t *)"\xff\xff\x00", 3, &v), -EBADMSG);
	CHECK_EQ(snap_car_varint_get((const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10, &v),
		 -EOVERFLOW);
	CHECK_EQ(snap_car_varint_get((const uint8_t *)"\x80", 1, &v), -EAGAIN);
	CHECK_EQ(snap_car_varint_get((const uint8_t *)"", 0, &v), -EAGAIN);
}

TEST(cid_text_and_bytes_match_the_reference_implementation)
{
	struct snap_car_cid c, back;
	char s[SNAP_CAR_CID_STR_MAX];
	uint8_t bin[SNAP_CAR_CID_MAX], want[64];
	const char *why;
	size_t n;

	sha_cid(&c, sha256_empty);
	snap_car_cid_string(&c, s);
	CHECK_STR(s, CID_RAW_SHA256_EMPTY);

	snap_car_cid_from_id(&c, b3_abc);
	snap_car_cid_string(&c, s);
	CHECK_STR(s, CID_RAW_BLAKE3_ABC);
	n = snap_car_cid_encode(&c, bin);
	CHECK_EQ(n, 36);
	CHECK_EQ(unhex("01551e206437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85", want), 36);
	CHECK(memcmp(bin, want, 36) == 0);
	CHECK_EQ(snap_car_cid_parse(bin, n, &back, &why), 36);
	CHECK(back.codec == SNAP_CAR_CODEC_RAW && back.mh == SNAP_CAR_MH_BLAKE3);
	CHECK(memcmp(back.digest, b3_abc, 32) == 0);
	for (size_t i = 0; i < n; i++)
		CHECK_EQ(snap_car_cid_parse(bin, i, &back, &why), -EAGAIN);
}

TEST(cid_parse_refuses_v0_other_versions_codecs_hashes_and_lengths)
{
	struct snap_car_cid c;
	uint8_t b[80];
	const char *why = NULL;

	/* CIDv0: 0x12 0x20 digest. */
	memset(b, 0, sizeof(b));
	b[0] = 0x12, b[1] = 0x20;
	CHECK_EQ(snap_car_cid_parse(b, 34, &c, &why), -EPROTONOSUPPORT);
	CHECK(why && strstr(why, "CIDv0"));
	/* Version 2. */
	b[0] = 0x02, b[1] = 0x55, b[2] = 0x1e, b[3] = 0x20;
	CHECK_EQ(snap_car_cid_parse(b, 36, &c, &why), -EPROTONOSUPPORT);
	/* dag-json (0x0129) is not accepted. */
	b[0] = 0x01, b[1] = 0xa9, b[2] = 0x02, b[3] = 0x1e, b[4] = 0x20;
	CHECK_EQ(snap_car_cid_parse(b, 37, &c, &why), -EPROTONOSUPPORT);
	CHECK(why && strstr(why, "codec"));
	/* sha2-512 (0x13) is not accepted. */
	b[0] = 0x01, b[1] = 0x55, b[2] = 0x13, b[3] = 0x40;
	CHECK_EQ(snap_car_cid_parse(b, 68, &c, &why), -EPROTONOSUPPORT);
	CHECK(why && strstr(why, "multihash"));
	/* A blake3 multihash with a 64-byte digest. */
	b[2] = 0x1e, b[3] = 0x40;
	CHECK_EQ(snap_car_cid_parse(b, 68, &c, &why), -EBADMSG);
	/* Non-minimal codec varint (0x55 written as d5 00). */
	b[0] = 0x01, b[1] = 0xd5, b[2] = 0x00, b[3] = 0x1e, b[4] = 0x20;
	CHECK_EQ(snap_car_cid_parse(b, 37, &c, &why), -EBADMSG);
	CHECK(why && strstr(why, "non-minimal"));
	/* dag-pb and dag-cbor are accepted (stored as opaque bytes). */
	b[0] = 0x01, b[1] = 0x70, b[2] = 0x12, b[3] = 0x20;
	CHECK_EQ(snap_car_cid_parse(b, 36, &c, &why), 36);
	b[1] = 0x71;
	CHECK_EQ(snap_car_cid_parse(b, 36, &c, &why), 36);
}

TEST(header_encoding_is_byte_identical_to_the_reference_writer)
{
	struct snap_car_cid roots[2], back[4];
	uint8_t want[512], got[512];
	size_t wn = unhex(JS_CAR_HEX, want), nroots = 0;
	const char *why = NULL;
	int n;

	sha_cid(&roots[0], sha256_empty);
	snap_car_cid_from_id(&roots[1], b3_abc);
	n = snap_car_header_encode(roots, 2, got, sizeof(got));
	REQUIRE(n > 0);
	/* The reference file: varint(0x63) header, then one section. */
	CHECK_EQ(want[0], n);
	CHECK(memcmp(want + 1, got, (size_t)n) == 0);
	CHECK_EQ(snap_car_header_parse(want + 1, want[0], back, 4, &nroots, &why), 0);
	CHECK_EQ(nroots, 2);
	CHECK(memcmp(&back[0], &roots[0], sizeof(roots[0])) == 0);
	CHECK(memcmp(&back[1], &roots[1], sizeof(roots[1])) == 0);
	CHECK(wn > (size_t)n + 1);
	CHECK_EQ(snap_car_header_encode(roots, 2, got, 20), -ENOSPC);
}

/* "version" first, as some writers order it, with one root. */
static const char hdr_version_first[] =
	"a26776657273696f6e016572"
	"6f6f747381d82a58250001551220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static int parse_hex_header(const char *hex, size_t max, const char **why)
{
	uint8_t b[4096];
	struct snap_car_cid roots[4];
	size_t n = unhex(hex, b), nroots;

	return snap_car_header_parse(b, n, roots, max, &nroots, why);
}

TEST(header_parse_accepts_either_key_order_and_rejects_what_is_not_strict_carv1)
{
	const char *why = NULL;

	CHECK_EQ(parse_hex_header(hdr_version_first, 4, &why), 0);
	CHECK_EQ(parse_hex_header(hdr_version_first, 0, &why), -E2BIG);
	/* CARv2 pragma {version: 2}. */
	CHECK_EQ(parse_hex_header("a16776657273696f6e02", 4, &why), -EPROTONOSUPPORT);
	CHECK(why && strstr(why, "CARv2"));
	/* Version 3 with roots. */
	CHECK_EQ(parse_hex_header("a265726f6f7473806776657273696f6e03", 4, &why), -EPROTONOSUPPORT);
	/* No roots. */
	CHECK_EQ(parse_hex_header("a16776657273696f6e01", 4, &why), -EBADMSG);
	/* Empty roots list is a valid header. */
	CHECK_EQ(parse_hex_header("a265726f6f7473806776657273696f6e01", 4, &why), 0);
	/* Non-minimal version integer (1 as 0x18 0x01). */
	CHECK_EQ(parse_hex_header("a265726f6f7473806776657273696f6e1801", 4, &why), -EBADMSG);
	/* Indefinite-length map. */
	CHECK_EQ(parse_hex_header("bf65726f6f7473806776657273696f6e01ff", 4, &why), -EBADMSG);
	/* Repeated key. */
	CHECK_EQ(parse_hex_header("a26776657273696f6e016776657273696f6e01", 4, &why), -EBADMSG);
	/* Unknown third key. */
	CHECK_EQ(parse_hex_header("a365726f6f7473806776657273696f6e0161786101", 4, &why), -EBADMSG);
	/* Trailing byte after the map. */
	CHECK_EQ(parse_hex_header("a265726f6f7473806776657273696f6e0100", 4, &why), -EBADMSG);
	/* A root that is a plain byte string, not tag 42. */
	CHECK_EQ(parse_hex_header("a265726f6f7473814100" "6776657273696f6e01", 4, &why), -EBADMSG);
	/* A root link without the 0x00 prefix. */
	CHECK_EQ(parse_hex_header("a265726f6f747381d82a4101" "6776657273696f6e01", 4, &why), -EBADMSG);
	/* Not a map at all. */
	CHECK_EQ(parse_hex_header("80", 4, &why), -EBADMSG);
	/* A map that ends early. */
	CHECK_EQ(parse_hex_header("a265726f6f7473", 4, &why), -EBADMSG);
}

/* ---- push reader -------------------------------------------------------- */

struct rec {
	int roots, begins, ends, aborts;
	size_t nroots;
	uint64_t bytes;
	uint8_t last_b3[32];
	int fail_end;
};

static int r_roots(void *ctx, const struct snap_car_cid *roots, size_t n)
{
	struct rec *r = ctx;
	(void)roots;
	r->roots++;
	r->nroots = n;
	return 0;
}
static int r_begin(void *ctx, const struct snap_car_cid *cid, uint64_t len)
{
	struct rec *r = ctx;
	(void)cid;
	(void)len;
	r->begins++;
	return 0;
}
static int r_data(void *ctx, const void *buf, size_t len)
{
	struct rec *r = ctx;
	(void)buf;
	r->bytes += len;
	return 0;
}
static int r_end(void *ctx, const struct snap_car_cid *cid, const uint8_t b3[32])
{
	struct rec *r = ctx;
	(void)cid;
	r->ends++;
	memcpy(r->last_b3, b3, 32);
	return r->fail_end ? -ENOSPC : 0;
}
static void r_abort(void *ctx)
{
	struct rec *r = ctx;
	r->aborts++;
}

/* Builds a CAR of the given blocks, each named by its BLAKE3 (or SHA-256 when sha is set). */
static size_t build_car(uint8_t *out, const char *const *blocks, size_t n, int sha)
{
	struct snap_car_cid cids[8];
	uint8_t hdr[1024];
	size_t o = 0;
	int hn;

	for (size_t i = 0; i < n; i++) {
		uint8_t d[32];
		if (sha) {
			br_sha256_context s;
			br_sha256_init(&s);
			br_sha256_update(&s, blocks[i], strlen(blocks[i]));
			br_sha256_out(&s, d);
			sha_cid(&cids[i], d);
		} else {
			snap_b3_hash(blocks[i], strlen(blocks[i]), 1, d);
			snap_car_cid_from_id(&cids[i], d);
		}
	}
	hn = snap_car_header_encode(cids, 1, hdr, sizeof(hdr));
	o += snap_car_varint_put((uint64_t)hn, out + o);
	memcpy(out + o, hdr, (size_t)hn);
	o += (size_t)hn;
	for (size_t i = 0; i < n; i++) {
		o += snap_car_block_prefix(&cids[i], strlen(blocks[i]), out + o);
		memcpy(out + o, blocks[i], strlen(blocks[i]));
		o += strlen(blocks[i]);
	}
	return o;
}

static struct snap_car_sink rec_sink(struct rec *r)
{
	struct snap_car_sink s = { .ctx = r, .roots = r_roots, .begin = r_begin, .data = r_data, .end = r_end,
				   .abort = r_abort };
	return s;
}

static const char *const blocks3[] = { "abc", "", "the third block, a little longer than the others" };

TEST(reader_verifies_blocks_fed_whole_or_byte_by_byte)
{
	uint8_t car[2048];
	size_t n = build_car(car, blocks3, 3, 0);

	for (int bytewise = 0; bytewise < 2; bytewise++) {
		struct rec r = { 0 };
		struct snap_car_sink s = rec_sink(&r);
		struct snap_car_rx rx;

		snap_car_rx_init(&rx, &s, 0);
		if (bytewise) {
			for (size_t i = 0; i < n; i++)
				CHECK_EQ(snap_car_rx_feed(&rx, car + i, 1), 0);
		} else {
			CHECK_EQ(snap_car_rx_feed(&rx, car, n), 0);
		}
		CHECK_EQ(snap_car_rx_finish(&rx), 0);
		CHECK_STR(snap_car_rx_error(&rx), "");
		CHECK_EQ(r.roots, 1);
		CHECK_EQ(r.nroots, 1);
		CHECK_EQ(r.begins, 3);
		CHECK_EQ(r.ends, 3);
		CHECK_EQ(r.aborts, 0);
		CHECK_EQ(r.bytes, 3 + 0 + strlen(blocks3[2]));
		CHECK_EQ(rx.blocks, 3);
		snap_car_rx_free(&rx);
	}
}

TEST(reader_verifies_sha256_blocks_and_reports_their_blake3_id)
{
	uint8_t car[2048];
	size_t n = build_car(car, blocks3, 1, 1);
	struct rec r = { 0 };
	struct snap_car_sink s = rec_sink(&r);
	struct snap_car_rx rx;

	snap_car_rx_init(&rx, &s, 0);
	CHECK_EQ(snap_car_rx_feed(&rx, car, n), 0);
	CHECK_EQ(snap_car_rx_finish(&rx), 0);
	CHECK_EQ(r.ends, 1);
	CHECK(memcmp(r.last_b3, b3_abc, 32) == 0);
	snap_car_rx_free(&rx);
}

TEST(reader_reads_the_reference_writers_file)
{
	uint8_t car[512];
	size_t n = unhex(JS_CAR_HEX, car);
	struct rec r = { 0 };
	struct snap_car_sink s = rec_sink(&r);
	struct snap_car_rx rx;

	snap_car_rx_init(&rx, &s, 0);
	CHECK_EQ(snap_car_rx_feed(&rx, car, n), 0);
	CHECK_EQ(snap_car_rx_finish(&rx), 0);
	CHECK_EQ(r.nroots, 2);
	CHECK_EQ(r.ends, 1);
	snap_car_rx_free(&rx);
}

TEST(reader_rejects_a_block_whose_bytes_do_not_match_and_aborts_it)
{
	uint8_t car[2048];
	size_t n = build_car(car, blocks3, 3, 0);
	struct rec r = { 0 };
	struct snap_car_sink s = rec_sink(&r);
	struct snap_car_rx rx;

	car[n - 1] ^= 1; /* last byte of the third block */
	snap_car_rx_init(&rx, &s, 0);
	CHECK_EQ(snap_car_rx_feed(&rx, car, n), -EBADMSG);
	CHECK(strstr(snap_car_rx_error(&rx), "do not match its CID") != NULL);
	CHECK(strncmp(snap_car_rx_error(&rx), "byte ", 5) == 0);
	CHECK_EQ(r.ends, 2);
	CHECK_EQ(r.aborts, 1);
	/* Sticky: more input and finish() give the same error. */
	CHECK_EQ(snap_car_rx_feed(&rx, car, 1), -EBADMSG);
	CHECK_EQ(snap_car_rx_finish(&rx), -EBADMSG);
	snap_car_rx_free(&rx);
	CHECK_EQ(r.aborts, 1);
}

TEST(reader_truncated_anywhere_but_a_block_boundary_fails_at_finish)
{
	uint8_t car[2048];
	size_t n = build_car(car, blocks3, 3, 0);
	/* Clean boundaries: after the header, after block 1 and after block 2 (each prefix is
	 * one varint byte + a 36-byte CID). */
	size_t b0 = 1 + car[0], b1 = b0 + 37 + 3, b2 = b1 + 37 + 0;

	for (size_t cut = 0; cut < n; cut++) {
		struct rec r = { 0 };
		struct snap_car_sink s = rec_sink(&r);
		struct snap_car_rx rx;
		int boundary = cut == b0 || cut == b1 || cut == b2;

		snap_car_rx_init(&rx, &s, 0);
		CHECK_EQ(snap_car_rx_feed(&rx, car, cut), 0);
		if (boundary)
			CHECK_EQ(snap_car_rx_finish(&rx), 0);
		else
			CHECK_EQ(snap_car_rx_finish(&rx), -EPIPE);
		CHECK_EQ(r.begins, r.ends + r.aborts);
		snap_car_rx_free(&rx);
	}
}

TEST(reader_refuses_oversized_header_and_block_before_buffering_them)
{
	struct rec r = { 0 };
	struct snap_car_sink s = rec_sink(&r);
	struct snap_car_rx rx;
	uint8_t b[16];
	size_t n = snap_car_varint_put(SNAP_CAR_MAX_HEADER + 1, b);
	uint8_t car[2048];
	size_t cn = build_car(car, blocks3, 1, 0);

	snap_car_rx_init(&rx, &s, 0);
	CHECK_EQ(snap_car_rx_feed(&rx, b, n), -EFBIG);
	CHECK(rx.hdr == NULL);
	CHECK(strstr(snap_car_rx_error(&rx), "header of 65537 bytes") != NULL);
	snap_car_rx_free(&rx);

	/* The block holds 3 bytes: a limit of 2 refuses it before begin(), 3 takes it. */
	snap_car_rx_init(&rx, &s, 2);
	CHECK_EQ(snap_car_rx_feed(&rx, car, cn), -EFBIG);
	CHECK(strstr(snap_car_rx_error(&rx), "block of 3 bytes exceeds the limit of 2") != NULL);
	CHECK_EQ(r.begins, 0);
	snap_car_rx_free(&rx);
	/* A section length far over the limit is refused before any CID byte is read. */
	{
		uint8_t h[SNAP_CAR_MAX_HEADER];
		size_t hn = 1 + car[0];
		memcpy(h, car, hn);
		hn += snap_car_varint_put(1000, h + hn);
		snap_car_rx_init(&rx, &s, 2);
		CHECK_EQ(snap_car_rx_feed(&rx, h, hn), -EFBIG);
		CHECK(strstr(snap_car_rx_error(&rx), "section of 1000 bytes") != NULL);
		snap_car_rx_free(&rx);
	}
	snap_car_rx_init(&rx, &s, 3);
	CHECK_EQ(snap_car_rx_feed(&rx, car, cn), 0);
	CHECK_EQ(snap_car_rx_finish(&rx), 0);
	snap_car_rx_free(&rx);
}

TEST(reader_rejects_non_minimal_section_length_empty_section_and_cid_overrun)
{
	uint8_t car[2048], bad[2048];
	size_t n = build_car(car, blocks3, 1, 0);
	size_t hend = 1 + car[0]; /* header is < 128 bytes: one varint byte */
	struct rec r = { 0 };
	struct snap_car_sink s = rec_sink(&r);
	struct snap_car_rx rx;

	/* Section length 39 written as a7 00. */
	memcpy(bad, car, hend);
	bad[hend] = (uint8_t)(car[hend] | 0x80);
	bad[hend + 1] = 0;
	memcpy(bad + hend + 2, car + hend + 1, n - hend - 1);
	snap_car_rx_init(&rx, &s, 0);
	CHECK_EQ(snap_car_rx_feed(&rx, bad, n + 1), -EBADMSG);
	CHECK(strstr(snap_car_rx_error(&rx), "non-minimal varint") != NULL);
	snap_car_rx_free(&rx);

	/* Empty section. */
	memcpy(bad, car, hend);
	bad[hend] = 0;
	snap_car_rx_init(&rx, &s, 0);
	CHECK_EQ(snap_car_rx_feed(&rx, bad, hend + 1), -EBADMSG);
	snap_car_rx_free(&rx);

	/* A section of 10 bytes cannot hold a 36-byte CID. */
	memcpy(bad, car, n);
	bad[hend] = 10;
	snap_car_rx_init(&rx, &s, 0);
	CHECK_EQ(snap_car_rx_feed(&rx, bad, n), -EBADMSG);
	CHECK(strstr(snap_car_rx_error(&rx), "past the end of its section") != NULL);
	snap_car_rx_free(&rx);

	/* A CIDv0 block. */
	memcpy(bad, car, n);
	bad[hend + 1] = 0x12;
	snap_car_rx_init(&rx, &s, 0);
	CHECK_EQ(snap_car_rx_feed(&rx, bad, n), -EPROTONOSUPPORT);
	CHECK(strstr(snap_car_rx_error(&rx), "CIDv0") != NULL);
	snap_car_rx_free(&rx);
	CHECK_EQ(r.begins, 0);
}

TEST(reader_stops_when_the_sink_refuses_a_block)
{
	uint8_t car[2048];
	size_t n = build_car(car, blocks3, 2, 0);
	struct rec r = { .fail_end = 1 };
	struct snap_car_sink s = rec_sink(&r);
	struct snap_car_rx rx;

	snap_car_rx_init(&rx, &s, 0);
	CHECK_EQ(snap_car_rx_feed(&rx, car, n), -ENOSPC);
	CHECK_EQ(r.ends, 1);
	CHECK_EQ(r.begins, 1);
	CHECK(strstr(snap_car_rx_error(&rx), "No space left") != NULL);
	snap_car_rx_free(&rx);
}

TEST(reader_rejects_empty_input_and_carv2)
{
	struct rec r = { 0 };
	struct snap_car_sink s = rec_sink(&r);
	struct snap_car_rx rx;
	/* CARv2 pragma: varint(10) {version: 2}. */
	static const uint8_t v2[] = { 0x0a, 0xa1, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x02 };

	snap_car_rx_init(&rx, &s, 0);
	CHECK(snap_car_rx_finish(&rx) < 0);
	CHECK(strstr(snap_car_rx_error(&rx), "empty file") != NULL);
	snap_car_rx_free(&rx);

	snap_car_rx_init(&rx, &s, 0);
	CHECK_EQ(snap_car_rx_feed(&rx, v2, sizeof(v2)), -EPROTONOSUPPORT);
	CHECK(strstr(snap_car_rx_error(&rx), "CARv2") != NULL);
	snap_car_rx_free(&rx);
}

static int seen_null_b3;
static int r_end_hashing_sink(void *ctx, const struct snap_car_cid *cid, const uint8_t *b3)
{
	struct rec *r = ctx;
	(void)cid;
	r->ends++;
	if (b3)
		memcpy(r->last_b3, b3, 32);
	else
		seen_null_b3++;
	return 0;
}

TEST(sink_that_hashes_blake3_gets_the_claimed_id_and_sha256_is_still_checked)
{
	uint8_t car[2048];
	size_t n = build_car(car, blocks3, 1, 0);
	struct rec r = { 0 };
	struct snap_car_sink s = { .ctx = &r, .begin = r_begin, .data = r_data, .end = r_end_hashing_sink,
				   .abort = r_abort, .hashes_blake3 = 1 };
	struct snap_car_rx rx;

	/* A blake3 block with wrong bytes reaches end() with the claimed id: the sink must check. */
	car[n - 1] ^= 1;
	snap_car_rx_init(&rx, &s, 0);
	CHECK_EQ(snap_car_rx_feed(&rx, car, n), 0);
	CHECK_EQ(snap_car_rx_finish(&rx), 0);
	CHECK_EQ(r.ends, 1);
	CHECK(memcmp(r.last_b3, b3_abc, 32) == 0);
	snap_car_rx_free(&rx);

	/* sha2-256 blocks are verified by the reader either way, and end() gets no BLAKE3 id. */
	n = build_car(car, blocks3, 1, 1);
	memset(&r, 0, sizeof(r));
	seen_null_b3 = 0;
	snap_car_rx_init(&rx, &s, 0);
	CHECK_EQ(snap_car_rx_feed(&rx, car, n), 0);
	CHECK_EQ(snap_car_rx_finish(&rx), 0);
	CHECK_EQ(seen_null_b3, 1);
	snap_car_rx_free(&rx);
	car[n - 1] ^= 1;
	memset(&r, 0, sizeof(r));
	snap_car_rx_init(&rx, &s, 0);
	CHECK_EQ(snap_car_rx_feed(&rx, car, n), -EBADMSG);
	CHECK_EQ(r.ends, 0);
	CHECK_EQ(r.aborts, 1);
	snap_car_rx_free(&rx);
}
