/* Which snapshot each sandbox restores: newest in the data store, else the image; failure records. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "init/pid1_int.h"

#define FAILED_MAX 4096

static void failed_add(struct init_stores *st, const uint8_t id[SNAP_HASH_LEN])
{
	if (init_failed_has(st, id) || st->nfailed >= FAILED_MAX)
		return;
	if (st->nfailed == st->capfailed) {
		size_t cap = st->capfailed ? st->capfailed * 2 : 16;
		void *p = realloc(st->failed, cap * SNAP_HASH_LEN);
		if (!p)
			return;
		st->failed = p;
		st->capfailed = cap;
	}
	memcpy(st->failed[st->nfailed++], id, SNAP_HASH_LEN);
}

/* The record file: one "HEX64 reason" line per failed snapshot; bad lines are skipped. */
static void failed_load(struct init_stores *st)
{
	char buf[8192];
	size_t have = 0;
	int fd = open(st->failed_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - have);
		char *p = buf, *nl;
		if (n <= 0)
			break;
		have += (size_t)n;
		while ((nl = memchr(p, '\n', have - (size_t)(p - buf)))) {
			uint8_t id[SNAP_HASH_LEN];
			if (nl - p >= SNAP_HEX_LEN && snap_unhex(p, SNAP_HEX_LEN, id) == 0)
				failed_add(st, id);
			p = nl + 1;
		}
		have -= (size_t)(p - buf);
		memmove(buf, p, have);
		if (have == sizeof(buf))
			have = 0;
	}
	close(fd);
}

int init_failed_has(const struct init_stores *st, const uint8_t id[SNAP_HASH_LEN])
{
	for (size_t i = 0; i < st->nfailed; i++)
		if (!memcmp(st->failed[i], id, SNAP_HASH_LEN))
			return 1;
	return 0;
}

void init_failed_record(struct init_stores *st, const uint8_t id[SNAP_HASH_LEN], const char *why)
{
	char hex[SNAP_HEX_LEN + 1], line[400];
	int fd, n;

	failed_add(st, id);
	if (!st->failed_path[0])
		return;
	snap_hex(id, hex);
	n = snprintf(line, sizeof(line), "%s %s\n", hex, why);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		line[sizeof(line) - 2] = '\n';
		line[sizeof(line) - 1] = 0;
		n = (int)sizeof(line) - 1;
	}
	for (char *p = line + SNAP_HEX_LEN + 1; *p && p < line + n - 1; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	fd = open(st->failed_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		init_log("recording the failure in %s: %s", st->failed_path, strerror(errno));
		return;
	}
	if (write(fd, line, (size_t)n) != n || fsync(fd) < 0)
		init_log("recording the failure in %s: %s", st->failed_path, strerror(errno));
	close(fd);
}

static void open_image(struct init_stores *st, const struct init_board *b)
{
	struct snap_image_info info;
	char err[256], hex[SNAP_HEX_LEN + 1];
	int rc;

	snprintf(st->image_path, sizeof(st->image_path), "%s", b->image);
	rc = snap_image_open(b->image, &st->image, err, sizeof(err));
	if (rc < 0) {
		init_log("snapshot partition refused: %s", err);
		return;
	}
	snap_image_get_info(st->image, &info);
	snap_hex(info.id, hex);
	hex[16] = 0;
	if (b->ntrusted_keys == 0) {
		init_timeline("partition opened: %s image %s generation %llu, %llu refs (no trusted keys: "
			      "signature not checked)", b->image, hex, (unsigned long long)info.generation,
			      (unsigned long long)info.nrefs);
		return;
	}
	rc = snap_image_check_sig(st->image, st->keys, (size_t)st->nkeys);
	if (rc < 0) {
		init_log("snapshot partition refused: %s", snap_sig_strerror(rc));
		snap_image_close(st->image);
		st->image = NULL;
		return;
	}
	init_timeline("partition opened: %s image %s generation %llu, %llu refs, signature good", b->image, hex,
		      (unsigned long long)info.generation, (unsigned long long)info.nrefs);
}

void init_stores_open(struct init_stores *st, const struct init_board *b)
{
	int rc;

	init_stores_close(st);
	for (int i = 0; i < b->ntrusted_keys; i++) {
		rc = snap_key_load_pub(b->trusted_keys[i], &st->keys[st->nkeys]);
		if (rc < 0)
			init_log("trusted key %s: %s", b->trusted_keys[i], strerror(-rc));
		else
			st->nkeys++;
	}
	st->insecure_unsigned = b->ntrusted_keys == 0 && b->insecure_unsigned;
	if (b->ntrusted_keys == 0)
		init_log(b->insecure_unsigned ?
			 "insecure-unsigned = yes: no trusted keys, snapshots are started without any signature check" :
			 "no trusted-key in board.conf: no sandbox will start (insecure-unsigned = yes allows unsigned snapshots)");
	if (b->verify == INIT_VERIFY_MANIFEST)
		init_log("verify = manifest: manifests and state blobs are re-hashed, guest memory chunks are mapped "
			 "without re-hashing");
	if (b->image[0])
		open_image(st, b);
	else
		init_log("no snapshot partition configured (image =)");
	if (!b->data_dir[0])
		return;
	snprintf(st->data_store, sizeof(st->data_store), "%s/store", b->data_dir);
	snprintf(st->failed_path, sizeof(st->failed_path), "%s/keel-init-failed", b->data_dir);
	rc = snap_store_init(st->data_store);
	if (rc == 0)
		rc = snap_store_open(st->data_store, &st->data);
	if (rc < 0) {
		init_log("data store %s: %s; only the image's snapshots are used", st->data_store, strerror(-rc));
		st->data = NULL;
	}
	failed_load(st);
}

void init_stores_close(struct init_stores *st)
{
	if (st->image)
		snap_image_close(st->image);
	if (st->data)
		snap_store_close(st->data);
	free(st->failed);
	memset(st, 0, sizeof(*st));
}

/* Reads and parses a manifest from a source (hash re-verified). */
static int read_manifest(const struct snap_source *src, const uint8_t id[SNAP_HASH_LEN], struct snap_manifest *m,
			 char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	int rc = snap_source_read(src, SNAP_KIND_MANIFEST, id, &buf, &len);

	if (rc < 0) {
		snprintf(err, errlen, "%s", strerror(-rc));
		return rc;
	}
	rc = snap_manifest_parse(buf, len, m, err, errlen);
	free(buf);
	return rc;
}

static int have_cand(const struct init_cand *c, int n, const uint8_t id[SNAP_HASH_LEN])
{
	for (int i = 0; i < n; i++)
		if (!memcmp(c[i].id, id, SNAP_HASH_LEN))
			return 1;
	return 0;
}

static int in_source(const struct snap_source *src, const uint8_t id[SNAP_HASH_LEN])
{
	int fd;
	uint64_t off, len;

	return src->locate(src->ctx, SNAP_KIND_MANIFEST, id, &fd, &off, &len) == 0;
}

/* Adds start and its parent chain; parents may live in either store (data store first). */
static int add_chain(struct init_stores *st, const uint8_t start[SNAP_HASH_LEN], struct init_cand *out, int n,
		     int max)
{
	struct snap_source ds, is;
	uint8_t id[SNAP_HASH_LEN];
	char err[200];

	if (st->data)
		snap_store_source(st->data, &ds);
	if (st->image)
		snap_image_source(st->image, &is);
	memcpy(id, start, SNAP_HASH_LEN);
	while (n < max && !have_cand(out, n, id)) {
		struct snap_manifest m;
		const struct snap_source *src = NULL;
		int image = 0;

		if (st->data && in_source(&ds, id)) {
			src = &ds;
		} else if (st->image && in_source(&is, id)) {
			src = &is;
			image = 1;
		} else {
			break;
		}
		memcpy(out[n].id, id, SNAP_HASH_LEN);
		out[n].in_image = image;
		n++;
		if (read_manifest(src, id, &m, err, sizeof(err)) < 0)
			break;  /* kept as a candidate: restoring it fails and is recorded, naming why */
		if (!m.has_parent) {
			snap_manifest_free(&m);
			break;
		}
		memcpy(id, m.parent, SNAP_HASH_LEN);
		snap_manifest_free(&m);
	}
	return n;
}

/*
 * The data store's earlier values of ref name, newest first. The history may
 * end with a value the ref never took (a crash between writing the history
 * and moving the ref), so the walk starts below the ref's current value.
 * Entries whose manifest is gone (never pushed whole, collected) are skipped.
 */
static int add_history(struct init_stores *st, const char *name, const uint8_t cur[SNAP_HASH_LEN],
		       struct init_cand *out, int n, int max)
{
	struct snap_ref_log_entry e[SNAP_REF_LOG_MAX];
	struct snap_source ds;
	int k, bad, from;

	k = snap_store_ref_log(st->data, name, e, SNAP_REF_LOG_MAX, &bad);
	if (k < 0) {
		init_log("sandbox %s: history of ref %s unreadable: %s; rolling back to the image only", name,
			 name, strerror(-k));
		return n;
	}
	if (bad)
		init_log("sandbox %s: %d malformed line%s in the history of ref %s skipped", name, bad,
			 bad == 1 ? "" : "s", name);
	from = k;
	for (int i = k - 1; i >= 0; i--)
		if (!memcmp(e[i].id, cur, SNAP_HASH_LEN)) {
			from = i;
			break;
		}
	snap_store_source(st->data, &ds);
	for (int i = from - 1; i >= 0 && n < max; i--) {
		if (have_cand(out, n, e[i].id) || !in_source(&ds, e[i].id))
			continue;
		memcpy(out[n].id, e[i].id, SNAP_HASH_LEN);
		out[n].in_image = 0;
		n++;
	}
	return n;
}

int init_candidates(struct init_stores *st, const char *name, struct init_cand *out, int max)
{
	uint8_t id[SNAP_HASH_LEN];
	int n = 0;

	/* Newest pushed, then what ran before it (the ref's history), then the partition image. */
	if (st->data && snap_store_ref_get(st->data, name, id) == 0 && max > 0) {
		struct snap_source ds;
		snap_store_source(st->data, &ds);
		if (in_source(&ds, id)) {
			memcpy(out[n].id, id, SNAP_HASH_LEN);
			out[n].in_image = 0;
			n++;
		}
		n = add_history(st, name, id, out, n, max);
	}
	if (st->image) {
		struct snap_source is;
		snap_image_source(st->image, &is);
		if (is.ref(is.ctx, name, id) == 0)
			n = add_chain(st, id, out, n, max);
	}
	return n;
}

struct verify_ctx {
	const struct snap_source *src;
	char *what;
	size_t whatlen;
};

static int verify_object(void *arg, const uint8_t id[SNAP_HASH_LEN])
{
	struct verify_ctx *v = arg;
	char hex[SNAP_HEX_LEN + 1];
	int rc = snap_source_check(v->src, SNAP_KIND_OBJECT, id);

	if (rc < 0) {
		snap_hex(id, hex);
		snprintf(v->what, v->whatlen, "object %s", hex);
	}
	return rc;
}

/*
 * Who vouches for a candidate: a data-store manifest needs its own signature by a trusted key
 * (a ref anyone planted on the data partition is not enough); an image manifest is vouched for
 * by the image signature checked at open (it covers the index, and the index every manifest's
 * hash). Without trusted keys nothing starts unless the board says insecure-unsigned = yes.
 */
static int check_signed(const struct init_stores *st, const struct init_cand *c, const uint8_t *buf, size_t len)
{
	if (st->nkeys == 0)
		return st->insecure_unsigned ? 0 : -EPERM;
	if (c->in_image)
		return 0;
	return snap_manifest_verify(buf, len, st->keys, (size_t)st->nkeys);
}

int init_verify_snapshot(struct init_stores *st, const struct init_cand *c, int full, char *what, size_t whatlen,
			 struct init_policy *pol)
{
	struct snap_source src;
	struct snap_manifest m;
	struct verify_ctx v = { &src, what, whatlen };
	char hex[SNAP_HEX_LEN + 1], err[200];
	uint8_t *buf;
	size_t len;
	int rc;

	if (c->in_image) {
		if (!st->image)
			return -ENOENT;
		snap_image_source(st->image, &src);
	} else {
		if (!st->data)
			return -ENOENT;
		snap_store_source(st->data, &src);
	}
	snap_hex(c->id, hex);
	/* read (and re-hashed) once: the signature is checked on the bytes that are then parsed */
	rc = snap_source_read(&src, SNAP_KIND_MANIFEST, c->id, &buf, &len);
	if (rc < 0) {
		snprintf(what, whatlen, "manifest %s: %s", hex, strerror(-rc));
		return rc;
	}
	rc = check_signed(st, c, buf, len);
	if (rc < 0) {
		free(buf);
		snprintf(what, whatlen, "manifest %s: %s", hex,
			 rc == -EPERM ? "no trusted keys on this board" : snap_sig_strerror(rc));
		return rc;
	}
	rc = snap_manifest_parse(buf, len, &m, err, sizeof(err));
	free(buf);
	if (rc < 0) {
		snprintf(what, whatlen, "manifest %s: %s", hex, err);
		return rc;
	}
	if (pol) {
		pol->vcpus = m.vcpus;
		pol->cpu_quota = m.cpu_quota;
		pol->memory_bytes = m.memory_bytes;
		pol->net = m.net;
	}
	rc = full ? snap_manifest_each_object(&m, verify_object, &v) : 0;
	snap_manifest_free(&m);
	return rc;
}
