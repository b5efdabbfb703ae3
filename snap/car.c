/* CAR v1: varints, binary CIDs, the DAG-CBOR header, and a push reader that verifies blocks. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap/car.h"

/*
 * IMPLEMENTATION NOTES
 * The reader never holds a whole block: a section's CID is collected byte by byte into a small
 * buffer (a CID we accept is at most SNAP_CAR_CID_MAX bytes), then the block's bytes pass
 * through the hashers to the sink. Only the header is buffered, and it is capped before any
 * allocation. The varints that frame sections are read one byte at a time into vbuf so a
 * varint split across two feed() calls needs no special case.
 */

enum { ST_HDR_LEN, ST_HDR, ST_SEC_LEN, ST_CID, ST_DATA, ST_FAILED };

/* ---- varints ------------------------------------------------------------ */

size_t snap_car_varint_put(uint64_t v, uint8_t out[SNAP_CAR_VARINT_MAX])
{
	size_t n = 0;

	while (v >= 0x80 && n < SNAP_CAR_VARINT_MAX - 1) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

int snap_car_varint_get(const uint8_t *p, size_t len, uint64_t *v)
{
	uint64_t x = 0;

	for (size_t i = 0; i < len && i < SNAP_CAR_VARINT_MAX; i++) {
		x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			/* A last group of zero could have been left out: not minimal. */
			if (i > 0 && p[i] == 0)
				return -EBADMSG;
			*v = x;
			return (int)i + 1;
		}
	}
	return len >= SNAP_CAR_VARINT_MAX ? -EOVERFLOW : -EAGAIN;
}

/* ---- CIDs --------------------------------------------------------------- */

void snap_car_cid_from_id(struct snap_car_cid *cid, const uint8_t id[SNAP_HASH_LEN])
{
	cid->codec = SNAP_CAR_CODEC_RAW;
	cid->mh = SNAP_CAR_MH_BLAKE3;
	memcpy(cid->digest, id, SNAP_CAR_DIGEST_LEN);
}

size_t snap_car_cid_encode(const struct snap_car_cid *cid, uint8_t out[SNAP_CAR_CID_MAX])
{
	size_t n = 0;

	n += snap_car_varint_put(1, out + n);
	n += snap_car_varint_put(cid->codec, out + n);
	n += snap_car_varint_put(cid->mh, out + n);
	n += snap_car_varint_put(SNAP_CAR_DIGEST_LEN, out + n);
	memcpy(out + n, cid->digest, SNAP_CAR_DIGEST_LEN);
	return n + SNAP_CAR_DIGEST_LEN;
}

/* Reads a varint inside a CID, turning its errors into reasons. */
static int cid_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v, const char **why)
{
	int r = snap_car_varint_get(p + *pos, len - *pos, v);

	if (r == -EBADMSG)
		*why = "non-minimal varint in a CID";
	else if (r == -EOVERFLOW)
		*why = "over-long varint in a CID";
	if (r < 0)
		return r;
	*pos += (size_t)r;
	return 0;
}

int snap_car_cid_parse(const uint8_t *p, size_t len, struct snap_car_cid *cid, const char **why)
{
	uint64_t version, codec, mh, dlen;
	size_t pos = 0;
	int r;

	*why = "truncated CID";
	if (len >= 1 && p[0] == SNAP_CAR_MH_SHA2_256) {
		*why = "CIDv0 (a bare sha2-256 multihash) is not supported; use CIDv1";
		return -EPROTONOSUPPORT;
	}
	if ((r = cid_varint(p, len, &pos, &version, why)) < 0)
		return r;
	if (version != 1) {
		*why = "unsupported CID version (only CIDv1 is accepted)";
		return -EPROTONOSUPPORT;
	}
	if ((r = cid_varint(p, len, &pos, &codec, why)) < 0)
		return r;
	if (codec != SNAP_CAR_CODEC_RAW && codec != SNAP_CAR_CODEC_DAG_PB &&
	    codec != SNAP_CAR_CODEC_DAG_CBOR) {
		*why = "unsupported CID codec (accepted: raw, dag-pb, dag-cbor)";
		return -EPROTONOSUPPORT;
	}
	if ((r = cid_varint(p, len, &pos, &mh, why)) < 0)
		return r;
	if (mh != SNAP_CAR_MH_BLAKE3 && mh != SNAP_CAR_MH_SHA2_256) {
		*why = "unsupported multihash (accepted: blake3, sha2-256)";
		return -EPROTONOSUPPORT;
	}
	if ((r = cid_varint(p, len, &pos, &dlen, why)) < 0)
		return r;
	if (dlen != SNAP_CAR_DIGEST_LEN) {
		*why = "multihash digest length is not 32";
		return -EBADMSG;
	}
	if (len - pos < SNAP_CAR_DIGEST_LEN) {
		*why = "truncated CID";
		return -EAGAIN;
	}
	cid->codec = codec;
	cid->mh = mh;
	memcpy(cid->digest, p + pos, SNAP_CAR_DIGEST_LEN);
	*why = NULL;
	return (int)(pos + SNAP_CAR_DIGEST_LEN);
}

void snap_car_cid_string(const struct snap_car_cid *cid, char out[SNAP_CAR_CID_STR_MAX])
{
	static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
	uint8_t bin[SNAP_CAR_CID_MAX];
	size_t n = snap_car_cid_encode(cid, bin), o = 0;
	uint32_t acc = 0;
	int bits = 0;

	out[o++] = 'b';
	for (size_t i = 0; i < n; i++) {
		acc = acc << 8 | bin[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[o++] = b32[(acc >> bits) & 31];
		}
	}
	if (bits > 0)
		out[o++] = b32[(acc << (5 - bits)) & 31];
	out[o] = 0;
}

/* ---- DAG-CBOR header ---------------------------------------------------- */

struct cbor_out {
	uint8_t *p;
	size_t cap, len;
	int err;
};

static void co_bytes(struct cbor_out *o, const void *b, size_t n)
{
	if (o->err || o->cap - o->len < n) {
		o->err = -ENOSPC;
		return;
	}
	memcpy(o->p + o->len, b, n);
	o->len += n;
}

/* A CBOR head with the shortest argument encoding, as DAG-CBOR requires. */
static void co_head(struct cbor_out *o, unsigned major, uint64_t arg)
{
	uint8_t h[9];
	size_t n;

	if (arg < 24) {
		h[0] = (uint8_t)(major << 5 | arg);
		n = 1;
	} else if (arg < 0x100) {
		h[0] = (uint8_t)(major << 5 | 24);
		h[1] = (uint8_t)arg;
		n = 2;
	} else if (arg < 0x10000) {
		h[0] = (uint8_t)(major << 5 | 25);
		h[1] = (uint8_t)(arg >> 8);
		h[2] = (uint8_t)arg;
		n = 3;
	} else {
		/* Callers never exceed SNAP_CAR_MAX_ROOTS; larger arguments are not needed. */
		o->err = -E2BIG;
		return;
	}
	co_bytes(o, h, n);
}

int snap_car_header_encode(const struct snap_car_cid *roots, size_t nroots, uint8_t *out, size_t cap)
{
	struct cbor_out o = { out, cap, 0, 0 };
	uint8_t cid[1 + SNAP_CAR_CID_MAX];

	if (nroots > SNAP_CAR_MAX_ROOTS)
		return -E2BIG;
	/* DAG-CBOR orders map keys by length, then bytes: "roots" before "version". */
	co_head(&o, 5, 2);
	co_head(&o, 3, 5);
	co_bytes(&o, "roots", 5);
	co_head(&o, 4, nroots);
	for (size_t i = 0; i < nroots; i++) {
		/* A link is tag 42 over the CID's bytes behind the identity multibase prefix 0x00. */
		size_t n = 1 + snap_car_cid_encode(&roots[i], cid + 1);

		cid[0] = 0;
		co_head(&o, 6, 42);
		co_head(&o, 2, n);
		co_bytes(&o, cid, n);
	}
	co_head(&o, 3, 7);
	co_bytes(&o, "version", 7);
	co_head(&o, 0, SNAP_CAR_VERSION);
	return o.err ? o.err : (int)o.len;
}

struct cbor_in {
	const uint8_t *p;
	size_t len, pos;
};

/* Reads one head; rejects non-minimal arguments, indefinite lengths and reserved values. */
static int ci_head(struct cbor_in *c, unsigned *major, uint64_t *arg, const char **why)
{
	unsigned ai;
	size_t n;
	uint64_t v = 0;

	if (c->pos >= c->len) {
		*why = "header ends inside a CBOR item";
		return -EBADMSG;
	}
	*major = c->p[c->pos] >> 5;
	ai = c->p[c->pos] & 31;
	c->pos++;
	if (ai < 24) {
		*arg = ai;
		return 0;
	}
	if (ai > 27) {
		*why = "indefinite-length or reserved CBOR item in the header";
		return -EBADMSG;
	}
	n = (size_t)1 << (ai - 24);
	if (c->len - c->pos < n) {
		*why = "header ends inside a CBOR item";
		return -EBADMSG;
	}
	for (size_t i = 0; i < n; i++)
		v = v << 8 | c->p[c->pos + i];
	c->pos += n;
	if ((n == 1 && v < 24) || (n == 2 && v < 0x100) || (n == 4 && v < 0x10000) ||
	    (n == 8 && v < 0x100000000ULL)) {
		*why = "non-minimal CBOR integer in the header (not DAG-CBOR)";
		return -EBADMSG;
	}
	*arg = v;
	return 0;
}

static int ci_roots(struct cbor_in *c, struct snap_car_cid *roots, size_t max, size_t *nroots,
		    const char **why)
{
	unsigned major;
	uint64_t n, arg;
	int r;

	if ((r = ci_head(c, &major, &n, why)) < 0)
		return r;
	if (major != 4) {
		*why = "header roots is not a list";
		return -EBADMSG;
	}
	if (n > max) {
		*why = "header has too many roots";
		return -E2BIG;
	}
	for (uint64_t i = 0; i < n; i++) {
		if ((r = ci_head(c, &major, &arg, why)) < 0)
			return r;
		if (major != 6 || arg != 42) {
			*why = "header root is not a CID link (CBOR tag 42)";
			return -EBADMSG;
		}
		if ((r = ci_head(c, &major, &arg, why)) < 0)
			return r;
		if (major != 2 || arg < 1 || arg > c->len - c->pos) {
			*why = "header root link is not a byte string within the header";
			return -EBADMSG;
		}
		if (c->p[c->pos] != 0) {
			*why = "header root link lacks the 0x00 multibase prefix";
			return -EBADMSG;
		}
		r = snap_car_cid_parse(c->p + c->pos + 1, (size_t)arg - 1, &roots[i], why);
		if (r == -EAGAIN) {
			*why = "header root CID is truncated";
			return -EBADMSG;
		}
		if (r < 0)
			return r;
		if ((uint64_t)r != arg - 1) {
			*why = "header root link has bytes after its CID";
			return -EBADMSG;
		}
		c->pos += (size_t)arg;
	}
	*nroots = (size_t)n;
	return 0;
}

int snap_car_header_parse(const uint8_t *p, size_t len, struct snap_car_cid *roots, size_t max,
			  size_t *nroots, const char **why)
{
	struct cbor_in c = { p, len, 0 };
	int have_roots = 0, have_version = 0, r;
	uint64_t nkeys, klen, version = 0;
	unsigned major;

	*nroots = 0;
	if ((r = ci_head(&c, &major, &nkeys, why)) < 0)
		return r;
	if (major != 5) {
		*why = "header is not a CBOR map";
		return -EBADMSG;
	}
	if (nkeys > 2) {
		*why = "header has keys other than roots and version";
		return -EBADMSG;
	}
	for (uint64_t k = 0; k < nkeys; k++) {
		if ((r = ci_head(&c, &major, &klen, why)) < 0)
			return r;
		if (major != 3 || klen > c.len - c.pos) {
			*why = "header map key is not a text string within the header";
			return -EBADMSG;
		}
		if (klen == 5 && !memcmp(c.p + c.pos, "roots", 5) && !have_roots) {
			c.pos += 5;
			if ((r = ci_roots(&c, roots, max, nroots, why)) < 0)
				return r;
			have_roots = 1;
		} else if (klen == 7 && !memcmp(c.p + c.pos, "version", 7) && !have_version) {
			c.pos += 7;
			if ((r = ci_head(&c, &major, &version, why)) < 0)
				return r;
			if (major != 0) {
				*why = "header version is not an unsigned integer";
				return -EBADMSG;
			}
			have_version = 1;
		} else {
			*why = "header has an unknown or repeated key";
			return -EBADMSG;
		}
	}
	if (c.pos != c.len) {
		*why = "bytes after the header map";
		return -EBADMSG;
	}
	if (!have_version) {
		*why = "header has no version";
		return -EBADMSG;
	}
	if (version == 2) {
		*why = "CARv2 is not supported (only CAR version 1)";
		return -EPROTONOSUPPORT;
	}
	if (version != SNAP_CAR_VERSION) {
		*why = "unsupported CAR version (only 1)";
		return -EPROTONOSUPPORT;
	}
	if (!have_roots) {
		*why = "header has no roots";
		return -EBADMSG;
	}
	*why = NULL;
	return 0;
}

size_t snap_car_block_prefix(const struct snap_car_cid *cid, uint64_t datalen,
			     uint8_t out[SNAP_CAR_VARINT_MAX + SNAP_CAR_CID_MAX])
{
	uint8_t bin[SNAP_CAR_CID_MAX];
	size_t n = snap_car_cid_encode(cid, bin);
	size_t v = snap_car_varint_put(n + datalen, out);

	memcpy(out + v, bin, n);
	return v + n;
}

/* ---- push reader -------------------------------------------------------- */

void snap_car_rx_init(struct snap_car_rx *rx, const struct snap_car_sink *sink, uint64_t max_block)
{
	memset(rx, 0, sizeof(*rx));
	rx->sink = sink;
	rx->max_block = max_block ? max_block : SNAP_CAR_DEFAULT_MAX_BLOCK;
	if (rx->max_block > UINT64_MAX - SNAP_CAR_CID_MAX)
		rx->max_block = UINT64_MAX - SNAP_CAR_CID_MAX;
	rx->state = ST_HDR_LEN;
}

static void close_block(struct snap_car_rx *rx)
{
	if (rx->in_block && rx->sink->abort)
		rx->sink->abort(rx->sink->ctx);
	rx->in_block = 0;
}

__attribute__((format(printf, 4, 5)))
static int fail(struct snap_car_rx *rx, int err, uint64_t at, const char *fmt, ...)
{
	va_list ap;
	int n;

	close_block(rx);
	n = snprintf(rx->msg, sizeof(rx->msg), "byte %llu: ", (unsigned long long)at);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(rx->msg))
		vsnprintf(rx->msg + n, sizeof(rx->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	rx->err = err < 0 ? err : -EBADMSG;
	rx->state = ST_FAILED;
	return rx->err;
}

static int varint_error(struct snap_car_rx *rx, int r, const char *what)
{
	return fail(rx, r, rx->item_off, "%s %s", r == -EBADMSG ? "non-minimal varint in" : "over-long varint in",
		    what);
}

static int got_header(struct snap_car_rx *rx)
{
	const char *why = NULL;
	int r;

	rx->roots = calloc(SNAP_CAR_MAX_ROOTS, sizeof(*rx->roots));
	if (!rx->roots)
		return fail(rx, -ENOMEM, rx->item_off, "out of memory for the header");
	r = snap_car_header_parse(rx->hdr, rx->hdr_len, rx->roots, SNAP_CAR_MAX_ROOTS, &rx->nroots, &why);
	free(rx->hdr);
	rx->hdr = NULL;
	if (r < 0)
		return fail(rx, r, rx->item_off, "%s", why ? why : "bad header");
	if (rx->sink->roots && (r = rx->sink->roots(rx->sink->ctx, rx->roots, rx->nroots)) < 0)
		return fail(rx, r, rx->item_off, "header roots refused: %s", strerror(-r));
	rx->state = ST_SEC_LEN;
	rx->item_off = rx->off;
	return 0;
}

static int block_done(struct snap_car_rx *rx)
{
	uint8_t b3[SNAP_HASH_LEN], sha[32];
	const uint8_t *id = b3;
	char cs[SNAP_CAR_CID_STR_MAX];
	int r = 0;

	if (rx->sink->hashes_blake3)
		id = rx->cid.mh == SNAP_CAR_MH_BLAKE3 ? rx->cid.digest : NULL;
	else
		snap_b3_final(&rx->b3, b3, sizeof(b3));
	if (rx->cid.mh == SNAP_CAR_MH_SHA2_256) {
		br_sha256_out(&rx->sha, sha);
		r = memcmp(sha, rx->cid.digest, sizeof(sha));
	} else if (!rx->sink->hashes_blake3) {
		r = memcmp(b3, rx->cid.digest, sizeof(b3));
	}
	if (r) {
		snap_car_cid_string(&rx->cid, cs);
		return fail(rx, -EBADMSG, rx->item_off, "block %s: bytes do not match its CID", cs);
	}
	rx->in_block = 0;
	if (rx->sink->end && (r = rx->sink->end(rx->sink->ctx, &rx->cid, id)) < 0) {
		snap_car_cid_string(&rx->cid, cs);
		return fail(rx, r, rx->item_off, "block %s: %s", cs, strerror(-r));
	}
	rx->blocks++;
	rx->state = ST_SEC_LEN;
	rx->item_off = rx->off;
	return 0;
}

static int got_cid(struct snap_car_rx *rx)
{
	int r;

	if (!rx->sink->hashes_blake3)
		snap_b3_init(&rx->b3);
	if (rx->cid.mh == SNAP_CAR_MH_SHA2_256)
		br_sha256_init(&rx->sha);
	if (rx->sink->begin && (r = rx->sink->begin(rx->sink->ctx, &rx->cid, rx->sec_left)) < 0)
		return fail(rx, r, rx->item_off, "cannot take a block: %s", strerror(-r));
	rx->in_block = 1;
	rx->state = ST_DATA;
	return rx->sec_left ? 0 : block_done(rx);
}

/* One byte of a varint that frames the header or a section. */
static int varint_byte(struct snap_car_rx *rx, uint8_t b, uint64_t *v)
{
	rx->vbuf[rx->vlen++] = b;
	return snap_car_varint_get(rx->vbuf, rx->vlen, v);
}

int snap_car_rx_feed(struct snap_car_rx *rx, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	const char *why;
	uint64_t v;
	size_t n;
	int r;

	if (rx->err)
		return rx->err;
	while (len > 0) {
		switch (rx->state) {
		case ST_HDR_LEN:
			r = varint_byte(rx, *p, &v);
			p++, len--, rx->off++;
			if (r == -EAGAIN)
				break;
			if (r < 0)
				return varint_error(rx, r, "the header length");
			rx->vlen = 0;
			if (v == 0)
				return fail(rx, -EBADMSG, rx->item_off, "empty header");
			if (v > SNAP_CAR_MAX_HEADER)
				return fail(rx, -EFBIG, rx->item_off, "header of %llu bytes exceeds the limit of %d",
					    (unsigned long long)v, SNAP_CAR_MAX_HEADER);
			rx->hdr = malloc((size_t)v);
			if (!rx->hdr)
				return fail(rx, -ENOMEM, rx->item_off, "out of memory for the header");
			rx->hdr_len = (size_t)v;
			rx->hdr_have = 0;
			rx->state = ST_HDR;
			break;
		case ST_HDR:
			n = rx->hdr_len - rx->hdr_have;
			if (n > len)
				n = len;
			memcpy(rx->hdr + rx->hdr_have, p, n);
			rx->hdr_have += n;
			p += n, len -= n, rx->off += n;
			if (rx->hdr_have == rx->hdr_len && (r = got_header(rx)) < 0)
				return r;
			break;
		case ST_SEC_LEN:
			r = varint_byte(rx, *p, &v);
			p++, len--, rx->off++;
			if (r == -EAGAIN)
				break;
			if (r < 0)
				return varint_error(rx, r, "a block section length");
			rx->vlen = 0;
			if (v == 0)
				return fail(rx, -EBADMSG, rx->item_off, "empty block section");
			/* The exact check waits for the CID's length; this one needs no bytes read. */
			if (v > rx->max_block + SNAP_CAR_CID_MAX)
				return fail(rx, -EFBIG, rx->item_off,
					    "block section of %llu bytes exceeds the block limit of %llu",
					    (unsigned long long)v, (unsigned long long)rx->max_block);
			rx->sec_left = v;
			rx->clen = 0;
			rx->state = ST_CID;
			break;
		case ST_CID:
			rx->cbuf[rx->clen++] = *p;
			p++, len--, rx->off++, rx->sec_left--;
			r = snap_car_cid_parse(rx->cbuf, rx->clen, &rx->cid, &why);
			if (r == -EAGAIN && rx->sec_left == 0)
				return fail(rx, -EBADMSG, rx->item_off, "block CID runs past the end of its section");
			if (r == -EAGAIN)
				break;
			if (r < 0)
				return fail(rx, r, rx->item_off, "%s", why);
			if (rx->sec_left > rx->max_block)
				return fail(rx, -EFBIG, rx->item_off, "block of %llu bytes exceeds the limit of %llu",
					    (unsigned long long)rx->sec_left, (unsigned long long)rx->max_block);
			if ((r = got_cid(rx)) < 0)
				return r;
			break;
		case ST_DATA:
			n = len < rx->sec_left ? len : (size_t)rx->sec_left;
			if (!rx->sink->hashes_blake3)
				snap_b3_update(&rx->b3, p, n);
			if (rx->cid.mh == SNAP_CAR_MH_SHA2_256)
				br_sha256_update(&rx->sha, p, n);
			if (rx->sink->data && (r = rx->sink->data(rx->sink->ctx, p, n)) < 0)
				return fail(rx, r, rx->off, "cannot store block bytes: %s", strerror(-r));
			p += n, len -= n, rx->off += n, rx->sec_left -= n;
			if (rx->sec_left == 0 && (r = block_done(rx)) < 0)
				return r;
			break;
		default:
			return rx->err;
		}
	}
	return 0;
}

int snap_car_rx_finish(struct snap_car_rx *rx)
{
	if (rx->err)
		return rx->err;
	switch (rx->state) {
	case ST_SEC_LEN:
		if (rx->vlen == 0)
			return 0;
		return fail(rx, -EPIPE, rx->off, "file ends inside a block section length");
	case ST_HDR_LEN:
		return fail(rx, -EPIPE, rx->off, rx->off ? "file ends inside the header length" : "empty file");
	case ST_HDR:
		return fail(rx, -EPIPE, rx->off, "file ends inside the header (%zu of %zu bytes)", rx->hdr_have,
			    rx->hdr_len);
	case ST_CID:
		return fail(rx, -EPIPE, rx->off, "file ends inside the CID of the block section at byte %llu",
			    (unsigned long long)rx->item_off);
	default:
		return fail(rx, -EPIPE, rx->off, "file ends inside the block section at byte %llu (%llu bytes missing)",
			    (unsigned long long)rx->item_off, (unsigned long long)rx->sec_left);
	}
}

const char *snap_car_rx_error(const struct snap_car_rx *rx)
{
	return rx->msg;
}

void snap_car_rx_free(struct snap_car_rx *rx)
{
	close_block(rx);
	free(rx->hdr);
	free(rx->roots);
	rx->hdr = NULL;
	rx->roots = NULL;
}
