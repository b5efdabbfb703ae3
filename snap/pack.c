/* SNAPPACK 1: the push parser that files a stream into the directory store, and the sender. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "keel_config.h"
#include "snap/snap.h"
#include "snap/store_int.h"

/*
 * IMPLEMENTATION NOTES
 *   stream := "SNAPPACK 1\n" record* "end\n"
 *   record := "obj " hex64 " " len "\n" payload | "manifest " hex64 " " len "\n" payload
 * The parser is a byte-driven state machine over whatever slices the caller
 * pushes (one byte at a time works). Its state is fixed-size: a header line
 * buffer of SNAP_PACK_MAX_HEADER_BYTES, the claimed id, a count of payload
 * bytes still due and one staged temp file. Object payloads go straight from
 * the caller's buffer into the temp file while the writer hashes them; the
 * only payload held in memory is the manifest, capped. The first error is
 * sticky and everything after it is refused: a corrupt record taints the rest
 * of the stream, so nothing past it is filed. The manifest is committed by
 * finish() only: after "end" and EOF, so a truncated stream can file
 * verified objects but never make a snapshot visible.
 */

enum { S_MAGIC, S_HEADER, S_PAYLOAD, S_END };

#define MAGIC_LEN (sizeof(SNAP_WIRE_MAGIC) - 1)

_Static_assert(SNAP_WIRE_VERSION == 1 && sizeof(SNAP_WIRE_MAGIC) == 12, "the magic spells the wire version");

__attribute__((format(printf, 4, 5))) static int rx_fail(struct snap_pack_rx *rx, int err, uint64_t at,
							  const char *fmt, ...)
{
	va_list ap;
	int n;

	if (rx->err)
		return rx->err;
	rx->err = err;
	n = snprintf(rx->msg, sizeof(rx->msg), "byte %llu: ", (unsigned long long)at);
	if (n > 0 && (size_t)n < sizeof(rx->msg)) {
		va_start(ap, fmt);
		vsnprintf(rx->msg + n, sizeof(rx->msg) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	snap_store_abort(&rx->w);
	return err;
}

int snap_pack_rx_init(struct snap_pack_rx *rx, struct snap_store *s, const struct snap_pack_limits *lim)
{
	memset(rx, 0, sizeof(*rx));
	rx->store = s;
	rx->w.fd = -1;
	rx->w.store = s;
	rx->lockfd = -1;
	if (lim)
		rx->lim = *lim;
	if (rx->lim.max_manifest_bytes == 0 || rx->lim.max_manifest_bytes > (size_t)CONFIG_SNAP_MAX_MANIFEST_BYTES)
		rx->lim.max_manifest_bytes = (size_t)CONFIG_SNAP_MAX_MANIFEST_BYTES;
	rx->state = S_MAGIC;
	return 0;
}

/* A decimal u64 without sign, leading zeros or overflow. */
static int parse_len(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || (n > 1 && s[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)s[i] - '0';
		if (d > 9)
			return -EINVAL;
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int finish_record(struct snap_pack_rx *rx);

/* Room for len more bytes plus the reserve on the store's filesystem. */
static int check_space(struct snap_pack_rx *rx, uint64_t len)
{
	struct statvfs sv;
	uint64_t avail;

	if (statvfs(snap_store_dir(rx->store), &sv) < 0)
		return 0;   /* cannot tell: the write itself will report ENOSPC */
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (avail < rx->lim.reserve_bytes || avail - rx->lim.reserve_bytes < len)
		return -ENOSPC;
	return 0;
}

int snap_pack_header_parse(const char *l, size_t n, struct snap_pack_header *h)
{
	size_t kw, lenat;
	int r;

	memset(h, 0, sizeof(*h));
	if (n == 3 && !memcmp(l, "end", 3)) {
		h->kind = SNAP_PACK_END;
		return 0;
	}
	if (n > 4 && !memcmp(l, "obj ", 4))
		kw = 4, h->kind = SNAP_PACK_OBJ;
	else if (n > 9 && !memcmp(l, "manifest ", 9))
		kw = 9, h->kind = SNAP_PACK_MANIFEST;
	else
		return -ENOMSG;
	h->bad_at = kw;
	lenat = kw + SNAP_HEX_LEN + 1;
	if (n < lenat || l[lenat - 1] != ' ' || snap_unhex(l + kw, SNAP_HEX_LEN, h->id) < 0)
		return -EBADMSG;
	h->bad_at = lenat;
	r = parse_len(l + lenat, n - lenat, &h->len);
	if (r < 0)
		return r;
	h->bad_at = 0;
	return 0;
}

static int parse_header(struct snap_pack_rx *rx)
{
	struct snap_pack_header h;
	uint64_t len;
	char hex[SNAP_HEX_LEN + 1];
	int r = snap_pack_header_parse(rx->line, rx->line_len - 1, &h);   /* without "\n" */

	if (r == -ENOMSG)
		return rx_fail(rx, -EINVAL, rx->rec_off, "bad record header (want \"obj\", \"manifest\" or \"end\")");
	if (r == 0 && h.kind == SNAP_PACK_END) {
		rx->state = S_END;
		return 0;
	}
	if (rx->manifest)
		return rx_fail(rx, -EINVAL, rx->rec_off, "%s record after the manifest (the manifest must be last)",
			       h.kind == SNAP_PACK_OBJ ? "obj" : "second manifest");
	if (r == -EBADMSG)
		return rx_fail(rx, -EINVAL, rx->rec_off + h.bad_at, "bad hex64 in record header");
	if (r < 0)
		return rx_fail(rx, -EINVAL, rx->rec_off + h.bad_at, "%s record length in header",
			       r == -ERANGE ? "overflowing" : "non-decimal");
	memcpy(rx->claimed, h.id, SNAP_HASH_LEN);
	len = h.len;
	snap_hex(rx->claimed, hex);
	if (rx->lim.max_stream_bytes && (rx->off > rx->lim.max_stream_bytes || len > rx->lim.max_stream_bytes - rx->off))
		return rx_fail(rx, -EFBIG, rx->rec_off, "record %s of %llu bytes exceeds the stream limit", hex,
			       (unsigned long long)len);
	rx->remaining = len;
	if (!rx->held) {
		/* before the first "has" check: gc must not sweep what this stream counts on */
		r = snap_store_hold(rx->store, &rx->lockfd);
		if (r < 0)
			return rx_fail(rx, r, rx->rec_off, "locking the store: %s", strerror(-r));
		rx->held = 1;
	}
	rx->is_manifest = h.kind == SNAP_PACK_MANIFEST;
	rx->duplicate = 0;
	if (rx->is_manifest) {
		if (len > rx->lim.max_manifest_bytes)
			return rx_fail(rx, -E2BIG, rx->rec_off, "manifest %s of %llu bytes exceeds the cap of %zu",
				       hex, (unsigned long long)len, rx->lim.max_manifest_bytes);
		rx->manifest = malloc(len ? (size_t)len : 1);
		if (!rx->manifest)
			return rx_fail(rx, -ENOMEM, rx->rec_off, "no memory for manifest %s", hex);
		rx->manifest_len = 0;
	} else {
		rx->objects++;
		if (rx->lim.max_object_bytes && len > rx->lim.max_object_bytes)
			return rx_fail(rx, -EFBIG, rx->rec_off, "object %s of %llu bytes exceeds the object limit",
				       hex, (unsigned long long)len);
		r = snap_store_has(rx->store, SNAP_KIND_OBJECT, rx->claimed);
		if (r < 0)
			return rx_fail(rx, r, rx->rec_off, "object %s: %s", hex, strerror(-r));
		if (r == 1) {
			/* Write-once: skip the filing, but the bytes are still checked. */
			rx->duplicate = 1;
			rx->duplicates++;
			snap_b3_init(&rx->hash);
		} else {
			r = check_space(rx, len);
			if (r == 0)
				r = snap_store_begin(rx->store, &rx->w);
			if (r < 0)
				return rx_fail(rx, r, rx->rec_off, "object %s: %s", hex, strerror(-r));
		}
	}
	rx->state = S_PAYLOAD;
	if (len == 0)
		return finish_record(rx);
	return 0;
}

static int finish_record(struct snap_pack_rx *rx)
{
	uint8_t got[SNAP_HASH_LEN];
	char hex[SNAP_HEX_LEN + 1];
	int r = 0;

	snap_hex(rx->claimed, hex);
	if (rx->is_manifest) {
		snap_b3_hash(rx->manifest, rx->manifest_len, 1, got);
		if (memcmp(got, rx->claimed, SNAP_HASH_LEN))
			r = -EBADMSG;
	} else if (rx->duplicate) {
		snap_b3_final(&rx->hash, got, sizeof(got));
		if (memcmp(got, rx->claimed, SNAP_HASH_LEN))
			r = -EBADMSG;
	} else {
		r = snap_store_commit(&rx->w, rx->claimed, NULL);
		if (r == 0)
			rx->stored++;
	}
	if (r == -EBADMSG)
		return rx_fail(rx, r, rx->rec_off, "%s %s: payload does not hash to its id",
			       rx->is_manifest ? "manifest" : "object", hex);
	if (r < 0)
		return rx_fail(rx, r, rx->off, "object %s: %s", hex, strerror(-r));
	rx->state = S_HEADER;
	rx->line_len = 0;
	rx->rec_off = rx->off;
	return 0;
}

int snap_pack_rx_feed(struct snap_pack_rx *rx, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int r;

	if (rx->err)
		return rx->err;
	while (len > 0) {
		switch (rx->state) {
		case S_MAGIC:
			if (*p != (uint8_t)SNAP_WIRE_MAGIC[rx->line_len])
				return rx_fail(rx, -EINVAL, rx->off, "not a SNAPPACK 1 stream (bad magic)");
			p++, len--, rx->off++;
			if (++rx->line_len == MAGIC_LEN) {
				rx->state = S_HEADER;
				rx->line_len = 0;
				rx->rec_off = rx->off;
			}
			break;
		case S_HEADER: {
			/* Copy up to the newline, never past the cap. */
			size_t room = SNAP_PACK_MAX_HEADER_BYTES - rx->line_len;
			size_t take = len < room ? len : room;
			const uint8_t *nl = memchr(p, '\n', take);
			if (nl)
				take = (size_t)(nl - p) + 1;
			memcpy(rx->line + rx->line_len, p, take);
			rx->line_len += take;
			p += take, len -= take, rx->off += take;
			if (nl) {
				r = parse_header(rx);
				if (r < 0)
					return r;
			} else if (rx->line_len == SNAP_PACK_MAX_HEADER_BYTES) {
				return rx_fail(rx, -EINVAL, rx->off, "header line reaches the %d-byte cap without a newline",
					       SNAP_PACK_MAX_HEADER_BYTES);
			}
			break;
		}
		case S_PAYLOAD: {
			size_t take = rx->remaining < len ? (size_t)rx->remaining : len;
			if (rx->is_manifest) {
				memcpy(rx->manifest + rx->manifest_len, p, take);
				rx->manifest_len += take;
			} else if (rx->duplicate) {
				snap_b3_update(&rx->hash, p, take);
			} else {
				r = snap_store_write(&rx->w, p, take);
				if (r < 0) {
					char hex[SNAP_HEX_LEN + 1];
					snap_hex(rx->claimed, hex);
					return rx_fail(rx, r, rx->off, "object %s: %s", hex, strerror(-r));
				}
			}
			p += take, len -= take, rx->off += take;
			rx->remaining -= take;
			rx->bytes += take;
			if (rx->remaining == 0) {
				r = finish_record(rx);
				if (r < 0)
					return r;
			}
			break;
		}
		case S_END:
			return rx_fail(rx, -EINVAL, rx->off, "data after the end trailer");
		}
		if (rx->lim.max_stream_bytes && rx->off > rx->lim.max_stream_bytes)
			return rx_fail(rx, -EFBIG, rx->off, "stream exceeds the limit of %llu bytes",
				       (unsigned long long)rx->lim.max_stream_bytes);
	}
	return 0;
}

int snap_pack_rx_done(const struct snap_pack_rx *rx)
{
	return rx->state == S_END && !rx->err;
}

int snap_pack_rx_finish(struct snap_pack_rx *rx, int *has_manifest, uint8_t manifest_id[SNAP_HASH_LEN])
{
	char err[160], hex[SNAP_HEX_LEN + 1];
	uint8_t id[SNAP_HASH_LEN];
	int r;

	if (has_manifest)
		*has_manifest = 0;
	if (rx->err)
		return rx->err;
	if (rx->state != S_END) {
		const char *where = rx->state == S_PAYLOAD ? "inside a record payload (a length that lies?)"
				    : rx->state == S_MAGIC ? "inside the magic" : "before the end trailer";
		return rx_fail(rx, -EPIPE, rx->off, "stream ended %s", where);
	}
	if (!rx->manifest)
		return 0;
	snap_hex(rx->claimed, hex);
	if (rx->lim.nkeys) {
		r = snap_manifest_verify(rx->manifest, rx->manifest_len, rx->lim.keys, rx->lim.nkeys);
		if (r < 0)
			return rx_fail(rx, r, rx->rec_off, "manifest %s: %s", hex, snap_sig_strerror(r));
	}
	r = snap_store_put_manifest_have(rx->store, rx->manifest, rx->manifest_len, rx->lim.have, rx->lim.nhave, id, err,
					 sizeof(err));
	if (r < 0)
		return rx_fail(rx, r, rx->rec_off, "manifest %s: %s", hex, err);
	if (has_manifest)
		*has_manifest = 1;
	if (manifest_id)
		memcpy(manifest_id, id, SNAP_HASH_LEN);
	return 0;
}

const char *snap_pack_rx_error(const struct snap_pack_rx *rx)
{
	return rx->err ? rx->msg : "";
}

void snap_pack_rx_free(struct snap_pack_rx *rx)
{
	snap_store_abort(&rx->w);
	free(rx->manifest);
	rx->manifest = NULL;
	snap_store_unhold(rx->lockfd);
	rx->lockfd = -1;
	rx->held = 0;
}

/* ---- sender --------------------------------------------------------------- */

static int out_header(int fd, const char *kw, const uint8_t id[SNAP_HASH_LEN], uint64_t len)
{
	char hex[SNAP_HEX_LEN + 1], line[SNAP_PACK_MAX_HEADER_BYTES];
	int n;

	snap_hex(id, hex);
	/* Validated on write too: the id is hex64 by construction, and the line fits the cap. */
	n = snprintf(line, sizeof(line), "%s %s %llu\n", kw, hex, (unsigned long long)len);
	if (n < 0 || (size_t)n >= sizeof(line) || !snap_is_hex64(line + strlen(kw) + 1, SNAP_HEX_LEN))
		return -EINVAL;
	return snap_write_all(fd, line, (size_t)n);
}

#define SEND_BUF (1u << 20)

/* Streams one object, hashing as it goes: a corrupt stored object stops the stream. */
static int send_object(int out, const struct snap_source *src, const uint8_t id[SNAP_HASH_LEN], uint8_t *buf)
{
	uint8_t got[SNAP_HASH_LEN];
	struct snap_b3 h;
	uint64_t off, len, done = 0;
	int fd, r;

	r = src->locate(src->ctx, SNAP_KIND_OBJECT, id, &fd, &off, &len);
	if (r < 0)
		return r;
	r = out_header(out, "obj", id, len);
	if (r < 0)
		return r;
	snap_b3_init(&h);
	while (done < len) {
		size_t want = len - done < SEND_BUF ? (size_t)(len - done) : SEND_BUF;
		ssize_t n = pread(fd, buf, want, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EBADMSG;
		snap_b3_update(&h, buf, (size_t)n);
		r = snap_write_all(out, buf, (size_t)n);
		if (r < 0)
			return r;
		done += (uint64_t)n;
	}
	snap_b3_final(&h, got, sizeof(got));
	return memcmp(got, id, SNAP_HASH_LEN) ? -EBADMSG : 0;
}

int snap_pack_send(int fd, const struct snap_source *src, const uint8_t (*ids)[SNAP_HASH_LEN], size_t n,
		   const uint8_t *manifest_id)
{
	uint8_t *buf, *mbuf = NULL;
	size_t mlen = 0;
	int r;

	/* Read the manifest first: a missing or corrupt one must not cost a whole stream of objects. */
	if (manifest_id) {
		r = snap_source_read(src, SNAP_KIND_MANIFEST, manifest_id, &mbuf, &mlen);
		if (r < 0)
			return r;
	}
	buf = malloc(SEND_BUF);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	r = snap_write_all(fd, SNAP_WIRE_MAGIC, MAGIC_LEN);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = send_object(fd, src, ids[i], buf);
	if (r == 0 && manifest_id) {
		r = out_header(fd, "manifest", manifest_id, mlen);
		if (r == 0)
			r = snap_write_all(fd, mbuf, mlen);
	}
	if (r == 0)
		r = snap_write_all(fd, "end\n", 4);
out:
	free(buf);
	free(mbuf);
	return r;
}

struct collect {
	uint8_t (*ids)[SNAP_HASH_LEN];
	size_t n, cap;
};

static int collect_one(void *arg, const uint8_t id[SNAP_HASH_LEN])
{
	struct collect *c = arg;

	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		void *p = realloc(c->ids, cap * SNAP_HASH_LEN);
		if (!p)
			return -ENOMEM;
		c->ids = p;
		c->cap = cap;
	}
	memcpy(c->ids[c->n++], id, SNAP_HASH_LEN);
	return 0;
}

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, SNAP_HASH_LEN);
}

int snap_pack_send_manifest(int fd, const struct snap_source *src, const uint8_t manifest_id[SNAP_HASH_LEN])
{
	struct snap_manifest m;
	struct collect c = { 0 };
	uint8_t *buf;
	size_t len, u = 0;
	int r;

	r = snap_source_read(src, SNAP_KIND_MANIFEST, manifest_id, &buf, &len);
	if (r < 0)
		return r;
	r = snap_manifest_parse(buf, len, &m, NULL, 0);
	free(buf);
	if (r < 0)
		return r;
	r = snap_manifest_each_object(&m, collect_one, &c);
	snap_manifest_free(&m);
	if (r < 0)
		goto out;
	/* Each object once (chunks repeat: zero-like pages, shared state). */
	qsort(c.ids, c.n, SNAP_HASH_LEN, id_cmp);
	for (size_t i = 0; i < c.n; i++)
		if (i == 0 || memcmp(c.ids[i], c.ids[u - 1], SNAP_HASH_LEN))
			memmove(c.ids[u++], c.ids[i], SNAP_HASH_LEN);
	r = snap_pack_send(fd, src, (const uint8_t(*)[SNAP_HASH_LEN])c.ids, u, manifest_id);
out:
	free(c.ids);
	return r;
}
