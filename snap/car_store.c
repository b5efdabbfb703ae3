/*
 * A store to and from CAR v1 files (the format itself is snap/car.c): which blocks an export
 * holds and in what order, and an import that verifies every block against its CID, files
 * objects as they verify and commits manifests only once the whole file was valid. Prints
 * nothing: `keel car` (snap/cmd_car.c) and, later, PID 1 importing from a USB stick use it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keel_config.h"
#include "snap/car.h"
#include "snap/snap.h"
#include "snap/store_int.h"

#define IO_BUF (1 << 20)
/* Manifests are held in memory until the whole file has been read; this many at most. */
#define MAX_MANIFESTS 64

/* ---- export ------------------------------------------------------------- */

struct plan_item {
	int kind;
	uint8_t id[SNAP_HASH_LEN];
};

struct plan {
	struct plan_item *items;
	size_t n, cap;
	/* Open-addressing set of ids already planned, so shared chunks go out once. */
	uint8_t (*set)[SNAP_HASH_LEN];
	uint8_t *used;
	size_t setcap;
};

static int plan_seen(struct plan *p, const uint8_t id[SNAP_HASH_LEN], int insert)
{
	size_t mask = p->setcap - 1, i;
	uint64_t h;

	memcpy(&h, id, sizeof(h));
	for (i = (size_t)h & mask; p->used[i]; i = (i + 1) & mask)
		if (!memcmp(p->set[i], id, SNAP_HASH_LEN))
			return 1;
	if (insert) {
		p->used[i] = 1;
		memcpy(p->set[i], id, SNAP_HASH_LEN);
	}
	return 0;
}

static int plan_grow_set(struct plan *p)
{
	struct plan old = *p;

	p->setcap = old.setcap ? old.setcap * 2 : 1024;
	p->set = calloc(p->setcap, sizeof(*p->set));
	p->used = calloc(p->setcap, 1);
	if (!p->set || !p->used) {
		free(p->set);
		free(p->used);
		*p = old;
		return -ENOMEM;
	}
	for (size_t i = 0; i < old.setcap; i++)
		if (old.used[i])
			plan_seen(p, old.set[i], 1);
	free(old.set);
	free(old.used);
	return 0;
}

static int plan_add(struct plan *p, int kind, const uint8_t id[SNAP_HASH_LEN])
{
	if ((p->n + 1) * 2 > p->setcap && plan_grow_set(p) < 0)
		return -ENOMEM;
	if (plan_seen(p, id, 1))
		return 0;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 256;
		struct plan_item *it = realloc(p->items, cap * sizeof(*it));
		if (!it)
			return -ENOMEM;
		p->items = it;
		p->cap = cap;
	}
	p->items[p->n].kind = kind;
	memcpy(p->items[p->n].id, id, SNAP_HASH_LEN);
	p->n++;
	return 0;
}

static void plan_free(struct plan *p)
{
	free(p->items);
	free(p->set);
	free(p->used);
}

static int add_object_cb(void *arg, const uint8_t id[SNAP_HASH_LEN])
{
	return plan_add(arg, SNAP_KIND_OBJECT, id);
}

/* Streams one stored item as a block, hashing what it sends; -EBADMSG when the store is corrupt. */
static int emit_block(const struct snap_source *src, int out, int kind, const uint8_t id[SNAP_HASH_LEN],
		      uint8_t *buf, char *err, size_t errlen)
{
	uint8_t prefix[SNAP_CAR_VARINT_MAX + SNAP_CAR_CID_MAX], got[SNAP_HASH_LEN];
	char hex[SNAP_HEX_LEN + 1];
	struct snap_car_cid cid;
	struct snap_b3 h;
	uint64_t off, len, pos = 0;
	int fd, r;

	snap_hex(id, hex);
	if ((r = src->locate(src->ctx, kind, id, &fd, &off, &len)) < 0) {
		snprintf(err, errlen, "%s %s: %s", kind == SNAP_KIND_MANIFEST ? "manifest" : "object", hex,
			 r == -ENOENT ? "not in the store" : strerror(-r));
		return r;
	}
	snap_car_cid_from_id(&cid, id);
	if ((r = snap_write_all(out, prefix, snap_car_block_prefix(&cid, len, prefix))) < 0)
		goto write_failed;
	snap_b3_init(&h);
	while (pos < len) {
		size_t want = len - pos < IO_BUF ? (size_t)(len - pos) : IO_BUF;
		ssize_t n = pread(fd, buf, want, (off_t)(off + pos));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			snprintf(err, errlen, "reading %s: %s", hex, n < 0 ? strerror(errno) : "shorter than its size");
			return r;
		}
		snap_b3_update(&h, buf, (size_t)n);
		if ((r = snap_write_all(out, buf, (size_t)n)) < 0)
			goto write_failed;
		pos += (uint64_t)n;
	}
	snap_b3_final(&h, got, sizeof(got));
	if (memcmp(got, id, SNAP_HASH_LEN)) {
		/* The block's CID names the true id, so any reader rejects what was sent. */
		snprintf(err, errlen, "%s is corrupt in the store (its bytes do not hash to its id)", hex);
		return -EBADMSG;
	}
	return 0;
write_failed:
	snprintf(err, errlen, "writing the CAR: %s", strerror(-r));
	return r;
}

/* One command-line id: a hex64 object or manifest, or a ref name for its manifest. */
static int resolve_arg(const struct snap_source *src, const char *arg, int *kind, uint8_t id[SNAP_HASH_LEN],
		       char *err, size_t errlen)
{
	uint64_t off, len;
	int fd, r;

	if (snap_is_hex64(arg, strlen(arg))) {
		snap_unhex(arg, SNAP_HEX_LEN, id);
		*kind = SNAP_KIND_MANIFEST;
		r = src->locate(src->ctx, SNAP_KIND_MANIFEST, id, &fd, &off, &len);
		if (r == -ENOENT) {
			*kind = SNAP_KIND_OBJECT;
			r = src->locate(src->ctx, SNAP_KIND_OBJECT, id, &fd, &off, &len);
		}
		if (r < 0)
			snprintf(err, errlen, "%s: %s", arg,
				 r == -ENOENT ? "no such object or manifest in the store" : strerror(-r));
		return r;
	}
	*kind = SNAP_KIND_MANIFEST;
	r = snap_source_resolve(src, arg, id);
	if (r < 0)
		snprintf(err, errlen, "%s: %s", arg,
			 r == -ENOENT ? "no such ref" : r == -EINVAL ? "neither a hex64 id nor a ref name" : strerror(-r));
	return r;
}

static int plan_manifest(const struct snap_source *src, struct plan *p, const uint8_t id[SNAP_HASH_LEN],
			 char *err, size_t errlen)
{
	struct snap_manifest m;
	char hex[SNAP_HEX_LEN + 1], perr[160];
	uint8_t *buf;
	size_t len;
	int r;

	snap_hex(id, hex);
	if ((r = snap_source_read(src, SNAP_KIND_MANIFEST, id, &buf, &len)) < 0) {
		snprintf(err, errlen, "manifest %s: %s", hex, r == -EBADMSG ? "corrupt in the store" : strerror(-r));
		return r;
	}
	r = snap_manifest_parse(buf, len, &m, perr, sizeof(perr));
	free(buf);
	if (r < 0) {
		snprintf(err, errlen, "manifest %s: %s", hex, perr);
		return r;
	}
	r = snap_manifest_each_object(&m, add_object_cb, p);
	snap_manifest_free(&m);
	if (r == 0)
		r = plan_add(p, SNAP_KIND_MANIFEST, id);
	if (r < 0)
		snprintf(err, errlen, "manifest %s: %s", hex, strerror(-r));
	return r;
}

int snap_car_export(struct snap_store *st, const char *const *args, size_t nargs, int fd, char *err, size_t errlen)
{
	struct snap_car_cid *roots = NULL;
	struct plan plan = { 0 };
	struct snap_source src;
	uint8_t *hdr = NULL, *buf = NULL, v[SNAP_CAR_VARINT_MAX];
	size_t nroots = 0;
	int r = -ENOMEM, hn;

	err[0] = 0;
	if (nargs == 0 || nargs > SNAP_CAR_MAX_ROOTS) {
		snprintf(err, errlen, "%zu roots (1..%d)", nargs, SNAP_CAR_MAX_ROOTS);
		return -EINVAL;
	}
	snap_store_source(st, &src);
	roots = calloc(nargs, sizeof(*roots));
	hdr = malloc(SNAP_CAR_MAX_HEADER);
	buf = malloc(IO_BUF);
	if (!roots || !hdr || !buf) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nargs; i++) {
		uint8_t id[SNAP_HASH_LEN];
		int kind;

		if ((r = resolve_arg(&src, args[i], &kind, id, err, errlen)) < 0)
			goto out;
		snap_car_cid_from_id(&roots[nroots++], id);
		if (kind == SNAP_KIND_MANIFEST)
			r = plan_manifest(&src, &plan, id, err, errlen);
		else if ((r = plan_add(&plan, SNAP_KIND_OBJECT, id)) < 0)
			snprintf(err, errlen, "out of memory");
		if (r < 0)
			goto out;
	}
	/* Every block must be there before the first byte goes out: a missing one is a clean failure. */
	for (size_t k = 0; k < plan.n; k++) {
		char hex[SNAP_HEX_LEN + 1];
		uint64_t off, len;
		int bfd;

		r = src.locate(src.ctx, plan.items[k].kind, plan.items[k].id, &bfd, &off, &len);
		if (r < 0) {
			snap_hex(plan.items[k].id, hex);
			snprintf(err, errlen, "%s %s: %s", plan.items[k].kind == SNAP_KIND_MANIFEST ? "manifest" : "object",
				 hex, r == -ENOENT ? "not in the store" : strerror(-r));
			goto out;
		}
	}
	hn = snap_car_header_encode(roots, nroots, hdr, SNAP_CAR_MAX_HEADER);
	if (hn < 0) {
		r = hn;
		snprintf(err, errlen, "cannot encode the header: %s", strerror(-hn));
		goto out;
	}
	if ((r = snap_write_all(fd, v, snap_car_varint_put((uint64_t)hn, v))) < 0 ||
	    (r = snap_write_all(fd, hdr, (size_t)hn)) < 0) {
		snprintf(err, errlen, "writing the CAR: %s", strerror(-r));
		goto out;
	}
	for (size_t k = 0; k < plan.n; k++)
		if ((r = emit_block(&src, fd, plan.items[k].kind, plan.items[k].id, buf, err, errlen)) < 0)
			goto out;
	r = 0;
out:
	plan_free(&plan);
	free(buf);
	free(hdr);
	free(roots);
	return r;
}

/* ---- import ------------------------------------------------------------- */

enum { M_PREFIX, M_OBJECT, M_DUP, M_MANIFEST };

struct pending_manifest {
	uint8_t id[SNAP_HASH_LEN];
	uint8_t *buf;
	size_t len;
};

struct importer {
	struct snap_store *st;
	struct snap_store_writer w;
	int mode;
	uint8_t pre[sizeof(SNAP_MANIFEST_MAGIC) - 1];
	size_t pre_len;
	uint64_t blen;
	struct snap_car_cid cid;
	uint8_t *mbuf;
	size_t mlen;
	struct snap_b3 dup;         /* M_DUP: the reader leaves BLAKE3 to us (hashes_blake3) */
	struct pending_manifest man[MAX_MANIFESTS];
	size_t nman;
	const struct snap_car_cid *roots;
	size_t nroots;
	uint8_t (*root_id)[SNAP_HASH_LEN];
	uint8_t *root_found;
	uint64_t stored, dups;
	char msg[200];
};

static int imp_roots(void *ctx, const struct snap_car_cid *roots, size_t n)
{
	struct importer *im = ctx;

	im->roots = roots;
	im->nroots = n;
	im->root_id = calloc(n ? n : 1, sizeof(*im->root_id));
	im->root_found = calloc(n ? n : 1, 1);
	return im->root_id && im->root_found ? 0 : -ENOMEM;
}

/* Enough of the block is known (its first bytes, or all of it): pick where its bytes go. */
static int imp_decide(struct importer *im)
{
	int r;

	if (im->pre_len == sizeof(im->pre) && !memcmp(im->pre, SNAP_MANIFEST_MAGIC, sizeof(im->pre))) {
		if (im->blen > CONFIG_SNAP_MAX_MANIFEST_BYTES) {
			snprintf(im->msg, sizeof(im->msg), "manifest block of %llu bytes exceeds the limit of %d",
				 (unsigned long long)im->blen, CONFIG_SNAP_MAX_MANIFEST_BYTES);
			return -EFBIG;
		}
		if (im->nman == MAX_MANIFESTS) {
			snprintf(im->msg, sizeof(im->msg), "more than %d manifest blocks", MAX_MANIFESTS);
			return -E2BIG;
		}
		if (!(im->mbuf = malloc((size_t)im->blen)))
			return -ENOMEM;
		memcpy(im->mbuf, im->pre, im->pre_len);
		im->mlen = im->pre_len;
		im->mode = M_MANIFEST;
		return 0;
	}
	/* Known BLAKE3 id already filed: the bytes are still verified, but nothing is staged. */
	if (im->cid.mh == SNAP_CAR_MH_BLAKE3 && snap_store_has(im->st, SNAP_KIND_OBJECT, im->cid.digest) == 1) {
		im->mode = M_DUP;
		snap_b3_init(&im->dup);
		snap_b3_update(&im->dup, im->pre, im->pre_len);
		return 0;
	}
	if ((r = snap_store_begin(im->st, &im->w)) < 0)
		return r;
	im->mode = M_OBJECT;
	return im->pre_len ? snap_store_write(&im->w, im->pre, im->pre_len) : 0;
}

static int imp_begin(void *ctx, const struct snap_car_cid *cid, uint64_t len)
{
	struct importer *im = ctx;

	im->cid = *cid;
	im->blen = len;
	im->pre_len = 0;
	im->mode = M_PREFIX;
	return len < sizeof(im->pre) ? imp_decide(im) : 0;
}

static int imp_data(void *ctx, const void *buf, size_t len)
{
	struct importer *im = ctx;
	const uint8_t *p = buf;
	int r;

	if (im->mode == M_PREFIX) {
		size_t n = sizeof(im->pre) - im->pre_len;
		if (n > len)
			n = len;
		memcpy(im->pre + im->pre_len, p, n);
		im->pre_len += n;
		p += n;
		len -= n;
		if (im->pre_len < sizeof(im->pre))
			return 0;
		if ((r = imp_decide(im)) < 0)
			return r;
	}
	switch (im->mode) {
	case M_OBJECT:
		return len ? snap_store_write(&im->w, p, len) : 0;
	case M_MANIFEST:
		memcpy(im->mbuf + im->mlen, p, len);
		im->mlen += len;
		return 0;
	case M_DUP:
		snap_b3_update(&im->dup, p, len);
		return 0;
	default:
		return 0;
	}
}

static int mismatch(struct importer *im, const struct snap_car_cid *cid)
{
	char cs[SNAP_CAR_CID_STR_MAX];

	snap_car_cid_string(cid, cs);
	snprintf(im->msg, sizeof(im->msg), "block %s: bytes do not match its CID", cs);
	return -EBADMSG;
}

/*
 * The reader checked sha2-256 CIDs; blake3 ones are checked here (hashes_blake3): by the store's
 * writer before it files the object, or by our own hash for duplicates and manifests. b3 is the
 * claimed BLAKE3 id, NULL for a sha2-256 block.
 */
static int imp_end(void *ctx, const struct snap_car_cid *cid, const uint8_t *b3)
{
	struct importer *im = ctx;
	uint8_t id[SNAP_HASH_LEN];
	int r = 0;

	if (im->mode == M_PREFIX && (r = imp_decide(im)) < 0)
		return r;
	if (im->mode == M_OBJECT) {
		r = snap_store_commit(&im->w, b3, id);
		im->mode = M_PREFIX;
		if (r == -EBADMSG)
			return mismatch(im, cid);
		if (r < 0)
			return r;
		im->stored++;
	} else if (im->mode == M_DUP) {
		snap_b3_final(&im->dup, id, sizeof(id));
		if (memcmp(id, cid->digest, SNAP_HASH_LEN))
			return mismatch(im, cid);
		im->dups++;
	} else if (im->mode == M_MANIFEST) {
		size_t k;

		snap_b3_hash(im->mbuf, im->mlen, 1, id);
		if (b3 && memcmp(id, b3, SNAP_HASH_LEN))
			return mismatch(im, cid);
		for (k = 0; k < im->nman; k++)
			if (!memcmp(im->man[k].id, id, SNAP_HASH_LEN))
				break;
		if (k < im->nman) {
			free(im->mbuf);
		} else {
			memcpy(im->man[k].id, id, SNAP_HASH_LEN);
			im->man[k].buf = im->mbuf;
			im->man[k].len = im->mlen;
			im->nman++;
		}
		im->mbuf = NULL;
	}
	for (size_t k = 0; k < im->nroots; k++)
		if (im->roots[k].codec == cid->codec && im->roots[k].mh == cid->mh &&
		    !memcmp(im->roots[k].digest, cid->digest, SNAP_CAR_DIGEST_LEN)) {
			memcpy(im->root_id[k], id, SNAP_HASH_LEN);
			im->root_found[k] = 1;
		}
	im->mode = M_PREFIX;
	return 0;
}

static void imp_abort(void *ctx)
{
	struct importer *im = ctx;

	if (im->mode == M_OBJECT)
		snap_store_abort(&im->w);
	free(im->mbuf);
	im->mbuf = NULL;
	im->mode = M_PREFIX;
}

struct presence {
	struct snap_store *st;
	uint8_t missing[SNAP_HASH_LEN];
};

static int present_cb(void *arg, const uint8_t id[SNAP_HASH_LEN])
{
	struct presence *pr = arg;

	if (snap_store_has(pr->st, SNAP_KIND_OBJECT, id) == 1)
		return 0;
	memcpy(pr->missing, id, SNAP_HASH_LEN);
	return -ENOENT;
}

/* After a complete, valid file: every manifest must parse and find its objects, then all commit. */
static int commit_manifests(struct importer *im, char *err, size_t errlen)
{
	char hex[SNAP_HEX_LEN + 1], miss[SNAP_HEX_LEN + 1], perr[200];
	struct presence pr = { im->st, { 0 } };
	struct snap_manifest m;
	int r;

	for (size_t k = 0; k < im->nman; k++) {
		snap_hex(im->man[k].id, hex);
		if (snap_manifest_parse(im->man[k].buf, im->man[k].len, &m, perr, sizeof(perr)) < 0) {
			snprintf(err, errlen, "manifest %s not committed: %s", hex, perr);
			return -EINVAL;
		}
		r = snap_manifest_each_object(&m, present_cb, &pr);
		snap_manifest_free(&m);
		if (r < 0) {
			snap_hex(pr.missing, miss);
			snprintf(err, errlen, "manifest %s not committed: object %s is neither in the file nor the store",
				 hex, miss);
			return r;
		}
	}
	for (size_t k = 0; k < im->nman; k++) {
		uint8_t id[SNAP_HASH_LEN];

		snap_hex(im->man[k].id, hex);
		r = snap_store_put_manifest(im->st, im->man[k].buf, im->man[k].len, id, perr, sizeof(perr));
		if (r < 0) {
			snprintf(err, errlen, "manifest %s not committed: %s", hex, perr[0] ? perr : strerror(-r));
			return r;
		}
	}
	return 0;
}

int snap_car_rx_read_fd(struct snap_car_rx *rx, int fd, char *err, size_t errlen, const char *sink_msg)
{
	uint8_t *buf = malloc(IO_BUF);
	int r = 0;

	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (;;) {
		ssize_t n = read(fd, buf, IO_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "reading at byte %llu: %s", (unsigned long long)rx->off,
				 strerror(errno));
			break;
		}
		if (n == 0) {
			r = snap_car_rx_finish(rx);
			break;
		}
		if ((r = snap_car_rx_feed(rx, buf, (size_t)n)) < 0)
			break;
	}
	free(buf);
	if (r < 0 && !err[0]) {
		/* A sink that explained itself gets its words, placed at the block's offset. */
		if (sink_msg && sink_msg[0])
			snprintf(err, errlen, "byte %llu: %s", (unsigned long long)rx->item_off, sink_msg);
		else
			snprintf(err, errlen, "%s", snap_car_rx_error(rx));
	}
	return r;
}

int snap_car_import(struct snap_store *st, int fd, uint64_t max_block,
		    int (*root)(void *arg, const uint8_t id[SNAP_HASH_LEN]), void *arg, char *err, size_t errlen)
{
	struct importer im;
	struct snap_car_sink sink = { .ctx = &im, .roots = imp_roots, .begin = imp_begin, .data = imp_data,
				      .end = imp_end, .abort = imp_abort, .hashes_blake3 = 1 };
	struct snap_car_rx rx;
	int r, lockfd = -1;

	err[0] = 0;
	memset(&im, 0, sizeof(im));
	im.w.fd = -1;
	im.st = st;
	if ((r = snap_store_hold(st, &lockfd)) < 0) {
		snprintf(err, errlen, "locking the store: %s", strerror(-r));
		return r;
	}
	snap_car_rx_init(&rx, &sink, max_block);
	r = snap_car_rx_read_fd(&rx, fd, err, errlen, im.msg);
	if (r == 0)
		r = commit_manifests(&im, err, errlen);
	for (size_t k = 0; r == 0 && k < im.nroots; k++)
		if (im.root_found[k] && root && (r = root(arg, im.root_id[k])) < 0)
			snprintf(err, errlen, "%s", strerror(-r));
	snap_car_rx_free(&rx);
	for (size_t k = 0; k < im.nman; k++)
		free(im.man[k].buf);
	free(im.root_id);
	free(im.root_found);
	snap_store_unhold(lockfd);
	return r;
}
