/* The directory store: write-once objects and manifests named by their hash, refs by validated name. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "snap/snap.h"
#include "snap/store_int.h"

/*
 * IMPLEMENTATION NOTES
 * Every name this file opens is either a hex64 produced by snap_hex() from a
 * binary id, a name that passed snap_name_valid(), or a temp name built here
 * ("~tmp-..."; '~' is in neither alphabet, so a temp can never collide with an
 * object, a manifest or a ref). All opens are relative to directory fds
 * (openat), so nothing an input says can reach outside DIR.
 * Stale temp files (a crash mid-write) are ignored by readers and verify and
 * removed by gc once they are older than SNAP_TMP_STALE_S.
 */

#define TMP_PREFIX "~tmp-"
#define SNAP_TMP_STALE_S 600

struct fd_slot {
	int kind;
	uint8_t id[SNAP_HASH_LEN];
	int fd;
	uint64_t len;
};

struct snap_store {
	char *dir;
	int dirfd, objfd, manfd, reffd;
	int logfd;               /* DIR/logs (ref histories); -1 until a store without one needs it */
	/* fds handed out by locate(): owned here, closed by snap_store_close */
	struct fd_slot *slots;
	size_t nslots, capslots;
};

static int sub_open(int dirfd, const char *name, int create)
{
	int fd;

	if (create && mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int snap_store_init(const char *dir)
{
	static const char *const subs[] = { "objects", "manifests", "refs", "logs" };
	int dfd, ret = 0;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		int fd = sub_open(dfd, subs[i], 1);
		if (fd < 0) {
			ret = fd;
			goto out_close;
		}
		close(fd);
	}
	if (fsync(dfd) < 0)
		ret = -errno;
out_close:
	close(dfd);
	return ret;
}

int snap_store_open(const char *dir, struct snap_store **out)
{
	struct snap_store *s;
	int ret;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->dirfd = s->objfd = s->manfd = s->reffd = s->logfd = -1;
	s->dir = strdup(dir);
	if (!s->dir) {
		ret = -ENOMEM;
		goto err_free;
	}
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		ret = -errno;
		goto err_close;
	}
	/* A directory without all three parts is not a store (ENOTDIR, not ENOENT: DIR exists). */
	if ((s->objfd = sub_open(s->dirfd, "objects", 0)) < 0 ||
	    (s->manfd = sub_open(s->dirfd, "manifests", 0)) < 0 ||
	    (s->reffd = sub_open(s->dirfd, "refs", 0)) < 0) {
		ret = -ENOTDIR;
		goto err_close;
	}
	/* Stores made before ref histories existed have no logs/: made at the first ref_set. */
	s->logfd = sub_open(s->dirfd, "logs", 0);
	if (s->logfd < 0)
		s->logfd = -1;
	*out = s;
	return 0;

err_close:
	snap_store_close(s);
	return ret;
err_free:
	free(s);
	return ret;
}

void snap_store_close(struct snap_store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nslots; i++)
		close(s->slots[i].fd);
	free(s->slots);
	if (s->logfd >= 0)
		close(s->logfd);
	if (s->reffd >= 0)
		close(s->reffd);
	if (s->manfd >= 0)
		close(s->manfd);
	if (s->objfd >= 0)
		close(s->objfd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->dir);
	free(s);
}

const char *snap_store_dir(const struct snap_store *s)
{
	return s->dir;
}

static int kind_fd(const struct snap_store *s, int kind)
{
	if (kind == SNAP_KIND_OBJECT)
		return s->objfd;
	if (kind == SNAP_KIND_MANIFEST)
		return s->manfd;
	return -EINVAL;
}

/* ---- staging: unique temp file, fsync, rename, fsync of the directory ---- */

static int tmp_create(int dirfd, char name[40])
{
	static unsigned seq;
	for (int tries = 0; tries < 16; tries++) {
		uint32_t rnd = 0;
		int fd;

		if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
			rnd = (uint32_t)time(NULL) ^ (uint32_t)tries << 24;
		snprintf(name, 40, TMP_PREFIX "%d-%u-%08x", (int)getpid(), __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED),
			 rnd);
		fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

/* A listing of the store directory dirfd (its own descriptor, so dirfd stays usable). NULL + errno. */
static DIR *dir_open(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		errno = ENOMEM;
	}
	return d;
}

int snap_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Makes the staged file dirfd/tmp durable under final, then the directory entry. */
static int tmp_publish(int dirfd, int fd, const char *tmp, const char *final)
{
	if (fsync(fd) < 0 || renameat(dirfd, tmp, dirfd, final) < 0) {
		int e = -errno;
		unlinkat(dirfd, tmp, 0);
		return e;
	}
	if (fsync(dirfd) < 0)
		return -errno;
	return 0;
}

static int writer_begin(struct snap_store *s, struct snap_store_writer *w)
{
	int fd;

	w->store = s;
	w->fd = -1;
	w->len = 0;
	snap_b3_init(&w->hash);
	fd = tmp_create(s->objfd, w->tmp);
	if (fd < 0)
		return fd;
	w->fd = fd;
	return 0;
}

int snap_store_begin(struct snap_store *s, struct snap_store_writer *w)
{
	return writer_begin(s, w);
}

int snap_store_write(struct snap_store_writer *w, const void *buf, size_t len)
{
	int ret;

	if (w->fd < 0)
		return -EBADF;
	ret = snap_write_all(w->fd, buf, len);
	if (ret < 0)
		return ret;
	snap_b3_update(&w->hash, buf, len);
	w->len += len;
	return 0;
}

void snap_store_abort(struct snap_store_writer *w)
{
	if (w->fd < 0)
		return;
	close(w->fd);
	w->fd = -1;
	unlinkat(w->store->objfd, w->tmp, 0);
}

int snap_store_commit(struct snap_store_writer *w, const uint8_t *expect, uint8_t *id)
{
	uint8_t got[SNAP_HASH_LEN];
	char hex[SNAP_HEX_LEN + 1];
	int ret;

	if (w->fd < 0)
		return -EBADF;
	snap_b3_final(&w->hash, got, sizeof(got));
	if (id)
		memcpy(id, got, sizeof(got));
	if (expect && memcmp(expect, got, sizeof(got)) != 0) {
		snap_store_abort(w);
		return -EBADMSG;
	}
	snap_hex(got, hex);
	if (faccessat(w->store->objfd, hex, F_OK, 0) == 0) {
		/* Write-once: the entry is never replaced, so a mapping of it never sees a new inode. */
		snap_store_abort(w);
		return 0;
	}
	ret = tmp_publish(w->store->objfd, w->fd, w->tmp, hex);
	close(w->fd);
	w->fd = -1;
	return ret;
}

static int put_in(struct snap_store *s, int dirfd, const void *buf, size_t len, uint8_t id[SNAP_HASH_LEN])
{
	char tmp[40], hex[SNAP_HEX_LEN + 1];
	int fd, ret;

	snap_b3_hash(buf, len, 1, id);
	snap_hex(id, hex);
	/* Write-once: an existing entry already holds exactly these bytes (or verify will say otherwise). */
	if (faccessat(dirfd, hex, F_OK, 0) == 0)
		return 0;
	(void)s;
	fd = tmp_create(dirfd, tmp);
	if (fd < 0)
		return fd;
	ret = snap_write_all(fd, buf, len);
	if (ret < 0) {
		unlinkat(dirfd, tmp, 0);
		goto out_close;
	}
	ret = tmp_publish(dirfd, fd, tmp, hex);
out_close:
	close(fd);
	return ret;
}

int snap_store_put_buf(struct snap_store *s, int kind, const void *buf, size_t len, uint8_t id[SNAP_HASH_LEN])
{
	if (kind == SNAP_KIND_MANIFEST)
		return snap_store_put_manifest(s, buf, len, id, NULL, 0);
	if (kind != SNAP_KIND_OBJECT)
		return -EINVAL;
	return put_in(s, s->objfd, buf, len, id);
}

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, SNAP_HASH_LEN);
}

void snap_ids_sort(uint8_t (*ids)[SNAP_HASH_LEN], size_t n)
{
	if (n)
		qsort(ids, n, SNAP_HASH_LEN, id_cmp);
}

int snap_id_among(const uint8_t (*have)[SNAP_HASH_LEN], size_t n, const uint8_t id[SNAP_HASH_LEN])
{
	return n && bsearch(id, have, n, SNAP_HASH_LEN, id_cmp) != NULL;
}

struct need_ctx {
	struct snap_store *s;
	const uint8_t (*have)[SNAP_HASH_LEN];
	size_t nhave;
	uint8_t missing[SNAP_HASH_LEN];
	int err;
};

static int need_one(void *arg, const uint8_t id[SNAP_HASH_LEN])
{
	struct need_ctx *c = arg;
	int r = snap_store_has(c->s, SNAP_KIND_OBJECT, id);

	if (r == 1 || (r == 0 && snap_id_among(c->have, c->nhave, id)))
		return 0;
	memcpy(c->missing, id, SNAP_HASH_LEN);
	c->err = r < 0 ? r : -ENOENT;
	return 1;
}

int snap_store_put_manifest(struct snap_store *s, const void *buf, size_t len, uint8_t id[SNAP_HASH_LEN],
			    char *err, size_t errlen)
{
	return snap_store_put_manifest_have(s, buf, len, NULL, 0, id, err, errlen);
}

int snap_store_put_manifest_have(struct snap_store *s, const void *buf, size_t len, const uint8_t (*have)[SNAP_HASH_LEN],
				 size_t nhave, uint8_t id[SNAP_HASH_LEN], char *err, size_t errlen)
{
	struct snap_manifest m;
	struct need_ctx c = { .s = s, .have = have, .nhave = nhave };
	char lerr[160];
	int ret;

	if (!err) {
		err = lerr;
		errlen = sizeof(lerr);
	}
	ret = snap_manifest_parse(buf, len, &m, err, errlen);
	if (ret < 0)
		return ret;
	snap_manifest_each_object(&m, need_one, &c);
	snap_manifest_free(&m);
	if (c.err) {
		char hex[SNAP_HEX_LEN + 1];
		snap_hex(c.missing, hex);
		snprintf(err, errlen, "manifest names object %s which is %s", hex,
			 c.err == -ENOENT ? "not in the store" : strerror(-c.err));
		return c.err;
	}
	ret = put_in(s, s->manfd, buf, len, id);
	if (ret < 0)
		snprintf(err, errlen, "cannot store the manifest: %s", strerror(-ret));
	return ret;
}

int snap_store_has(struct snap_store *s, int kind, const uint8_t id[SNAP_HASH_LEN])
{
	char hex[SNAP_HEX_LEN + 1];
	struct stat st;
	int dfd = kind_fd(s, kind);

	if (dfd < 0)
		return dfd;
	snap_hex(id, hex);
	if (fstatat(dfd, hex, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	return S_ISREG(st.st_mode) ? 1 : 0;
}

int snap_store_hash_pread(int fd, uint64_t off, uint64_t len, uint8_t out[SNAP_HASH_LEN])
{
	size_t cap = len < (1 << 20) ? (size_t)len : (1 << 20);
	uint8_t *buf = malloc(cap ? cap : 1);
	struct snap_b3 h;
	uint64_t done = 0;

	if (!buf)
		return -ENOMEM;
	snap_b3_init(&h);
	while (done < len) {
		size_t want = len - done < cap ? (size_t)(len - done) : cap;
		ssize_t n = pread(fd, buf, want, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return n < 0 ? -errno : -EIO;
		}
		snap_b3_update(&h, buf, (size_t)n);
		done += (uint64_t)n;
	}
	free(buf);
	snap_b3_final(&h, out, SNAP_HASH_LEN);
	return 0;
}

/* Hashes len bytes of fd from off; uses mmap so large files hash multithreaded. */
int snap_store_hash_fd(int fd, uint64_t off, uint64_t len, uint8_t out[SNAP_HASH_LEN])
{
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t base = off & ~(uint64_t)(pg - 1), delta = off - base;
	void *map;

	if (len == 0) {
		snap_b3_hash("", 0, 1, out);
		return 0;
	}
	if (len > SIZE_MAX - delta)
		return -EFBIG;
	map = mmap(NULL, (size_t)(len + delta), PROT_READ, MAP_SHARED, fd, (off_t)base);
	if (map == MAP_FAILED)
		return snap_store_hash_pread(fd, off, len, out);   /* not mappable (a pipe-like file) */
	snap_b3_hash((uint8_t *)map + delta, (size_t)len, 0, out);
	munmap(map, (size_t)(len + delta));
	return 0;
}

int snap_store_get(struct snap_store *s, int kind, const uint8_t id[SNAP_HASH_LEN], uint8_t **buf, size_t *len)
{
	struct snap_source src;

	snap_store_source(s, &src);
	return snap_source_read(&src, kind, id, buf, len);
}

/* ---- refs ---------------------------------------------------------------- */

int snap_store_ref_get(struct snap_store *s, const char *name, uint8_t id[SNAP_HASH_LEN])
{
	char buf[SNAP_HEX_LEN + 2];
	ssize_t n;
	int fd;

	if (!snap_name_valid(name, strlen(name)))
		return -EINVAL;
	fd = openat(s->reffd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	do
		n = read(fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0)
		return -errno;
	if (n != SNAP_HEX_LEN + 1 || buf[SNAP_HEX_LEN] != '\n' || snap_unhex(buf, SNAP_HEX_LEN, id) < 0)
		return -EBADMSG;
	return 0;
}

/* ---- ref histories ------------------------------------------------------- */

/* The longest line a well-formed log holds: hex64, space, 20 digits, newline. */
#define LOG_LINE_MAX (SNAP_HEX_LEN + 1 + 20 + 1)
/* A log bigger than this is not ours; only its first LOG_READ_MAX bytes are parsed. */
#define LOG_READ_MAX (4 * SNAP_REF_LOG_MAX * LOG_LINE_MAX)

/* One line without its newline: "HEX64 DIGITS" (1..20 digits, no overflow). 0 or -1. */
static int log_line(const char *p, size_t n, struct snap_ref_log_entry *e)
{
	uint64_t t = 0;

	if (n < SNAP_HEX_LEN + 2 || n > LOG_LINE_MAX - 1 || p[SNAP_HEX_LEN] != ' ' ||
	    snap_unhex(p, SNAP_HEX_LEN, e->id) < 0)
		return -1;
	for (size_t i = SNAP_HEX_LEN + 1; i < n; i++) {
		unsigned d = (unsigned)(p[i] - '0');
		if (d > 9 || t > (UINT64_MAX - d) / 10)
			return -1;
		t = t * 10 + d;
	}
	e->time = t;
	return 0;
}

int snap_ref_log_parse(const char *buf, size_t len, struct snap_ref_log_entry *out, int max, int *bad)
{
	size_t pos = 0;
	int n = 0, nbad = 0;

	while (pos < len && max > 0) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t linelen = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		struct snap_ref_log_entry e;

		/* A last line without its newline was never written whole: bad like any other. */
		if (!nl || log_line(buf + pos, linelen, &e) < 0) {
			nbad++;
		} else {
			if (n == max) {
				memmove(out, out + 1, (size_t)(max - 1) * sizeof(*out));
				n--;
			}
			out[n++] = e;
		}
		pos += linelen + (nl ? 1 : 0);
	}
	if (bad)
		*bad = nbad;
	return n;
}

int snap_store_ref_log(struct snap_store *s, const char *name, struct snap_ref_log_entry *out, int max, int *bad)
{
	char *buf;
	size_t have = 0;
	int fd, ret;

	if (bad)
		*bad = 0;
	if (!snap_name_valid(name, strlen(name)))
		return -EINVAL;
	if (s->logfd < 0)
		return 0;
	fd = openat(s->logfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	buf = malloc(LOG_READ_MAX);
	if (!buf) {
		ret = -ENOMEM;
		goto out_close;
	}
	while (have < LOG_READ_MAX) {
		ssize_t r = read(fd, buf + have, LOG_READ_MAX - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			goto out_free;
		}
		if (r == 0)
			break;
		have += (size_t)r;
	}
	ret = snap_ref_log_parse(buf, have, out, max, bad);
out_free:
	free(buf);
out_close:
	close(fd);
	return ret;
}

/*
 * Stages the history with id appended (unless it is already the newest
 * value) as a temp file in logs/; *tmp names it for log_publish. The ref's
 * value before history began (a store from before logs/) opens the log.
 */
static int log_stage(struct snap_store *s, const char *name, const uint8_t id[SNAP_HASH_LEN], char tmp[40])
{
	struct snap_ref_log_entry e[SNAP_REF_LOG_MAX + 1];
	char text[(SNAP_REF_LOG_MAX + 1) * LOG_LINE_MAX + 1];
	uint8_t cur[SNAP_HASH_LEN];
	size_t len = 0;
	int n, fd, ret;

	if (s->logfd < 0) {
		s->logfd = sub_open(s->dirfd, "logs", 1);
		if (s->logfd < 0) {
			ret = s->logfd;
			s->logfd = -1;
			return ret;
		}
	}
	n = snap_store_ref_log(s, name, e, SNAP_REF_LOG_MAX, NULL);
	if (n < 0)
		return n;
	if (n == 0 && snap_store_ref_get(s, name, cur) == 0 && memcmp(cur, id, SNAP_HASH_LEN)) {
		memcpy(e[0].id, cur, SNAP_HASH_LEN);
		e[0].time = 0;
		n = 1;
	}
	if (n == 0 || memcmp(e[n - 1].id, id, SNAP_HASH_LEN)) {
		memcpy(e[n].id, id, SNAP_HASH_LEN);
		e[n].time = (uint64_t)time(NULL);
		n++;
	}
	for (int i = n > SNAP_REF_LOG_MAX ? n - SNAP_REF_LOG_MAX : 0; i < n; i++) {
		char hex[SNAP_HEX_LEN + 1];
		snap_hex(e[i].id, hex);
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s %llu\n", hex,
					(unsigned long long)e[i].time);
	}
	fd = tmp_create(s->logfd, tmp);
	if (fd < 0)
		return fd;
	ret = snap_write_all(fd, text, len);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	if (ret < 0)
		unlinkat(s->logfd, tmp, 0);
	return ret;
}

static int log_publish(struct snap_store *s, const char *tmp, const char *name)
{
	if (renameat(s->logfd, tmp, s->logfd, name) < 0) {
		int e = -errno;
		unlinkat(s->logfd, tmp, 0);
		return e;
	}
	return fsync(s->logfd) < 0 ? -errno : 0;
}

/* ---- refs ---------------------------------------------------------------- */

int snap_store_ref_set(struct snap_store *s, const char *name, const uint8_t id[SNAP_HASH_LEN])
{
	char tmp[40], logtmp[40], line[SNAP_HEX_LEN + 2];
	int fd, ret;

	if (!snap_name_valid(name, strlen(name)))
		return -EINVAL;
	ret = snap_store_has(s, SNAP_KIND_MANIFEST, id);
	if (ret <= 0)
		return ret < 0 ? ret : -ENOENT;
	/* History first (see snap.h): a ref never moves without its new value on record. */
	ret = log_stage(s, name, id, logtmp);
	if (ret < 0)
		return ret;
	ret = log_publish(s, logtmp, name);
	if (ret < 0)
		return ret;
	snap_hex(id, line);
	line[SNAP_HEX_LEN] = '\n';
	fd = tmp_create(s->reffd, tmp);
	if (fd < 0)
		return fd;
	ret = snap_write_all(fd, line, SNAP_HEX_LEN + 1);
	if (ret < 0) {
		unlinkat(s->reffd, tmp, 0);
		goto out_close;
	}
	ret = tmp_publish(s->reffd, fd, tmp, name);
out_close:
	close(fd);
	return ret;
}

int snap_store_ref_delete(struct snap_store *s, const char *name)
{
	if (!snap_name_valid(name, strlen(name)))
		return -EINVAL;
	if (unlinkat(s->reffd, name, 0) < 0)
		return -errno;
	if (fsync(s->reffd) < 0)
		return -errno;
	/* A deleted ref's history must not bring its snapshots back (gc keeps what histories name). */
	if (s->logfd >= 0 && unlinkat(s->logfd, name, 0) == 0 && fsync(s->logfd) < 0)
		return -errno;
	return 0;
}

/* strict: an unreadable ref stops the walk with its error instead of being skipped. */
static int ref_walk(struct snap_store *s, int strict,
		    int (*fn)(void *arg, const char *name, const uint8_t id[SNAP_HASH_LEN]), void *arg)
{
	struct dirent *de;
	DIR *d;
	int ret = 0;

	d = dir_open(s->reffd);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		uint8_t id[SNAP_HASH_LEN];
		if (!snap_name_valid(de->d_name, strlen(de->d_name)))
			continue;
		ret = snap_store_ref_get(s, de->d_name, id);
		if (ret < 0) {
			if (strict)
				break;
			ret = 0;
			continue;
		}
		ret = fn(arg, de->d_name, id);
		if (ret)
			break;
	}
	closedir(d);
	return ret;
}

int snap_store_ref_each(struct snap_store *s, int (*fn)(void *arg, const char *name, const uint8_t id[SNAP_HASH_LEN]),
			void *arg)
{
	return ref_walk(s, 0, fn, arg);
}

/*
 * Anti-rollback floors: DIR/floors/NAME holds the highest `created` ever accepted for NAME from
 * a peer (decimal, one line), written like a ref (temp, fsync, rename, directory fsync). Only
 * ever raised; gc and ref histories do not touch it, so it outlives every ref-log rollover.
 */
int snap_store_floor_get(struct snap_store *s, const char *name, uint64_t *created)
{
	char buf[32], *end;
	ssize_t n;
	int dfd, fd;

	if (!snap_name_valid(name, strlen(name)))
		return -EINVAL;
	dfd = sub_open(s->dirfd, "floors", 0);
	if (dfd < 0)
		return dfd == -ENOENT ? -ENOENT : dfd;
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	close(dfd);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 1 || buf[n - 1] != '\n')
		return -EBADMSG;
	buf[n - 1] = 0;
	errno = 0;
	*created = strtoull(buf, &end, 10);
	if (*end || errno || buf[0] < '0' || buf[0] > '9')
		return -EBADMSG;
	return 0;
}

int snap_store_floor_raise(struct snap_store *s, const char *name, uint64_t created)
{
	char tmp[40], line[32];
	uint64_t cur;
	int dfd, fd, ret, len;

	ret = snap_store_floor_get(s, name, &cur);
	if (ret == 0 && cur >= created)
		return 0;
	if (ret < 0 && ret != -ENOENT)
		return ret;
	dfd = sub_open(s->dirfd, "floors", 1);
	if (dfd < 0)
		return dfd;
	len = snprintf(line, sizeof(line), "%llu\n", (unsigned long long)created);
	fd = tmp_create(dfd, tmp);
	if (fd < 0) {
		close(dfd);
		return fd;
	}
	ret = snap_write_all(fd, line, (size_t)len);
	if (ret < 0)
		unlinkat(dfd, tmp, 0);
	else
		ret = tmp_publish(dfd, fd, tmp, name);
	close(fd);
	close(dfd);
	return ret;
}

int snap_store_floor_accept(struct snap_store *s, const char *name, uint64_t created, char *err, size_t errlen)
{
	uint64_t floor;
	int r = snap_store_floor_get(s, name, &floor);

	if (r == -ENOENT)
		return snap_store_floor_raise(s, name, created);
	if (r < 0) {
		snprintf(err, errlen, "the version record of %s is unreadable (%s): refusing to activate", name,
			 strerror(-r));
		return r;
	}
	if (created <= floor) {
		snprintf(err, errlen, "%s version %llu (created) is not newer than version %llu already accepted: "
			 "refused as a replay or downgrade", name, (unsigned long long)created, (unsigned long long)floor);
		return -ESTALE;
	}
	return snap_store_floor_raise(s, name, created);
}

/* The activation proper, on manifest id already read and parsed as m. */
static int activate_parsed(struct snap_store *s, const uint8_t id[SNAP_HASH_LEN], const struct snap_manifest *m,
			   struct snap_activation *a, char *err, size_t errlen)
{
	struct snap_activation local;
	int ret;

	if (!a)
		a = &local;
	memset(a, 0, sizeof(*a));
	snprintf(a->name, sizeof(a->name), "%s", m->name);
	a->had_prev = snap_store_ref_get(s, m->name, a->prev) == 0;
	/* the ref already there: nothing moves, nothing is raised */
	if (a->had_prev && !memcmp(a->prev, id, SNAP_HASH_LEN))
		return 0;
	/* the floor is raised before the ref moves, so a crash between them cannot leave a window
	 * in which an older signed manifest is accepted again */
	ret = snap_store_floor_accept(s, m->name, m->created, err, errlen);
	if (ret == 0) {
		ret = snap_store_ref_set(s, m->name, id);
		if (ret < 0)
			snprintf(err, errlen, "ref %s not moved: %s", m->name, strerror(-ret));
		a->moved = ret == 0;
	}
	return ret;
}

/* Reads and parses manifest id; with keys, checks its signature first on the same bytes. */
static int read_manifest(struct snap_store *s, const uint8_t id[SNAP_HASH_LEN], const struct snap_pubkey *keys,
			 size_t nkeys, struct snap_manifest *m, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	int ret = snap_store_get(s, SNAP_KIND_MANIFEST, id, &buf, &len);

	if (ret < 0) {
		snprintf(err, errlen, "manifest unreadable: %s", strerror(-ret));
		return ret;
	}
	ret = keys ? snap_manifest_verify(buf, len, keys, nkeys) : 0;
	if (ret < 0)
		snprintf(err, errlen, "%s", snap_sig_strerror(ret));
	else
		ret = snap_manifest_parse(buf, len, m, err, errlen);
	free(buf);
	return ret;
}

int snap_store_activate(struct snap_store *s, const uint8_t id[SNAP_HASH_LEN], struct snap_activation *a,
			char *err, size_t errlen)
{
	struct snap_manifest m;
	int ret;

	if (a)
		memset(a, 0, sizeof(*a));
	ret = read_manifest(s, id, NULL, 0, &m, err, errlen);
	if (ret < 0)
		return ret;
	ret = activate_parsed(s, id, &m, a, err, errlen);
	snap_manifest_free(&m);
	return ret;
}

static int object_present(void *arg, const uint8_t id[SNAP_HASH_LEN])
{
	int r = snap_store_has(arg, SNAP_KIND_OBJECT, id);

	return r == 1 ? 0 : r < 0 ? r : -ENOENT;
}

struct fill {
	struct snap_store *s;
	const struct snap_source *from;
	const struct snap_fill *opt;
	size_t n;
	uint64_t bytes, since;          /* since: bytes copied since the last progress call */
	uint8_t bad[SNAP_HASH_LEN];      /* the object that failed, for the message */
};

/*
 * An object the store lacks, copied from f->from when it is there: read with pread (no
 * verification on the way) and hashed once as it is stored; bytes that do not hash to the id
 * fail the activation (the stray object they made is harmless: it is filed under its own hash).
 */
static int object_fill(void *arg, const uint8_t id[SNAP_HASH_LEN])
{
	struct fill *f = arg;
	uint8_t got[SNAP_HASH_LEN], *buf;
	uint64_t off, len;
	int fd, r = snap_store_has(f->s, SNAP_KIND_OBJECT, id);

	if (r != 0 || !f->from)
		return r < 0 ? r : 0;
	memcpy(f->bad, id, SNAP_HASH_LEN);
	r = f->from->locate(f->from->ctx, SNAP_KIND_OBJECT, id, &fd, &off, &len);
	if (r < 0)
		return r == -ENOENT ? 0 : r;   /* the presence check names it */
	if (len > SIZE_MAX || !(buf = malloc(len ? (size_t)len : 1)))
		return -ENOMEM;
	r = snap_pread_full(fd, buf, (size_t)len, off);
	if (r == 0)
		r = snap_store_put_buf(f->s, SNAP_KIND_OBJECT, buf, (size_t)len, got);
	free(buf);
	if (r == 0 && memcmp(got, id, SNAP_HASH_LEN))
		r = -EBADMSG;
	if (r == 0) {
		f->n++;
		f->bytes += len;
		f->since += len;
		if (f->since >= SNAP_FILL_STEP && f->opt->progress) {
			f->since = 0;
			f->opt->progress(f->opt->arg);
		}
	}
	return r;
}

int snap_store_activate_signed(struct snap_store *s, const uint8_t id[SNAP_HASH_LEN],
			       const struct snap_pubkey *keys, size_t nkeys, const struct snap_fill *fill,
			       struct snap_activation *a, char *err, size_t errlen)
{
	struct snap_manifest m;
	struct fill f = { .s = s, .from = fill ? fill->src : NULL, .opt = fill };
	char hex[SNAP_HEX_LEN + 1];
	int ret;

	if (a)
		memset(a, 0, sizeof(*a));
	if (!nkeys) {
		snprintf(err, errlen, "no trusted keys configured");
		return -ENOKEY;
	}
	ret = read_manifest(s, id, keys, nkeys, &m, err, errlen);
	if (ret < 0)
		return ret;
	ret = f.from ? snap_manifest_each_object(&m, object_fill, &f) : 0;
	if (ret < 0) {
		snap_hex(f.bad, hex);
		snprintf(err, errlen, "object %s of the manifest could not be taken from the image: %s", hex,
			 ret == -EBADMSG ? "corrupt" : strerror(-ret));
	} else if ((ret = snap_manifest_each_object(&m, object_present, s)) < 0) {
		snprintf(err, errlen, "an object of the manifest is %s", ret == -ENOENT ? "missing" : strerror(-ret));
	} else {
		ret = activate_parsed(s, id, &m, a, err, errlen);   /* clears a */
	}
	if (a) {
		a->filled = f.n;
		a->filled_bytes = f.bytes;
	}
	snap_manifest_free(&m);
	return ret;
}

/* ---- the read side as a snap_source --------------------------------------- */

static int dir_locate(void *ctx, int kind, const uint8_t id[SNAP_HASH_LEN], int *fd, uint64_t *off, uint64_t *len)
{
	struct snap_store *s = ctx;
	char hex[SNAP_HEX_LEN + 1];
	struct stat st;
	int dfd = kind_fd(s, kind), f;

	if (dfd < 0)
		return dfd;
	for (size_t i = 0; i < s->nslots; i++) {
		if (s->slots[i].kind == kind && !memcmp(s->slots[i].id, id, SNAP_HASH_LEN)) {
			*fd = s->slots[i].fd;
			*off = 0;
			*len = s->slots[i].len;
			return 0;
		}
	}
	if (s->nslots == s->capslots) {
		size_t cap = s->capslots ? 2 * s->capslots : 16;
		struct fd_slot *n = realloc(s->slots, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->slots = n;
		s->capslots = cap;
	}
	snap_hex(id, hex);
	f = openat(dfd, hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (f < 0 && errno == EMFILE) {
		/*
		 * The fds handed out stay valid until close (callers keep or mmap
		 * them), so a large guest can need more than the usual soft limit
		 * of 1024: raise it to the hard limit once and retry.
		 */
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
				f = openat(dfd, hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		}
	}
	if (f < 0)
		return -errno;
	if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
		int e = -EBADMSG;   /* not a regular file where an object belongs */
		if (fstat(f, &st) < 0)
			e = -errno;
		close(f);
		return e;
	}
	s->slots[s->nslots].kind = kind;
	memcpy(s->slots[s->nslots].id, id, SNAP_HASH_LEN);
	s->slots[s->nslots].fd = f;
	s->slots[s->nslots].len = (uint64_t)st.st_size;
	s->nslots++;
	*fd = f;
	*off = 0;
	*len = (uint64_t)st.st_size;
	return 0;
}

static int dir_ref(void *ctx, const char *name, uint8_t id[SNAP_HASH_LEN])
{
	return snap_store_ref_get(ctx, name, id);
}

void snap_store_source(struct snap_store *s, struct snap_source *src)
{
	src->ctx = s;
	src->locate = dir_locate;
	src->ref = dir_ref;
}

/* ---- verify ------------------------------------------------------------- */

struct walk {
	struct snap_store *s;
	void (*bad)(void *arg, const char *path, int err);
	void *arg;
	int problems;
};

static void report(struct walk *w, const char *sub, const char *name, int err)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", sub, name);
	w->problems++;
	if (w->bad)
		w->bad(w->arg, path, err);
}

/* Re-hashes dirfd/name against its name; 0, -EBADMSG or -errno. */
static int check_file(int dirfd, const char *name, const uint8_t id[SNAP_HASH_LEN])
{
	uint8_t got[SNAP_HASH_LEN];
	struct stat st;
	int fd, ret;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EBADMSG;
	}
	ret = snap_store_hash_fd(fd, 0, (uint64_t)st.st_size, got);
	close(fd);
	if (ret < 0)
		return ret;
	return memcmp(got, id, SNAP_HASH_LEN) ? -EBADMSG : 0;
}

static int verify_dir(struct walk *w, int kind, const char *sub)
{
	int dirfd = kind_fd(w->s, kind);
	struct dirent *de;
	DIR *d;

	d = dir_open(dirfd);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		uint8_t id[SNAP_HASH_LEN];
		int r;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)))
			continue;
		if (snap_unhex(de->d_name, strlen(de->d_name), id) < 0) {
			report(w, sub, de->d_name, -EINVAL);
			continue;
		}
		r = check_file(dirfd, de->d_name, id);
		if (r == -ENOENT)
			continue;   /* listed, then swept by a concurrent gc (the listener's): not damage */
		if (r < 0) {
			report(w, sub, de->d_name, r);
			continue;
		}
		if (kind == SNAP_KIND_MANIFEST) {
			/* A filed manifest must still parse and find every object it names. */
			uint8_t *buf;
			size_t len;
			char err[160];
			struct snap_manifest m;
			struct need_ctx c = { .s = w->s };

			r = snap_store_get(w->s, kind, id, &buf, &len);
			if (r == -ENOENT)
				continue;
			if (r < 0) {
				report(w, sub, de->d_name, -EIO);
				continue;
			}
			r = snap_manifest_parse(buf, len, &m, err, sizeof(err));
			free(buf);
			if (r < 0) {
				report(w, sub, de->d_name, r);
				continue;
			}
			snap_manifest_each_object(&m, need_one, &c);
			snap_manifest_free(&m);
			/* a gc removes an unreferenced manifest before its objects: gone now, no fault */
			if (c.err && faccessat(dirfd, de->d_name, F_OK, 0) == 0)
				report(w, sub, de->d_name, c.err);
		}
	}
	closedir(d);
	return 0;
}

int snap_store_verify(struct snap_store *s, void (*bad)(void *arg, const char *path, int err), void *arg)
{
	struct walk w = { .s = s, .bad = bad, .arg = arg };
	struct dirent *de;
	DIR *d;
	int ret;

	ret = verify_dir(&w, SNAP_KIND_OBJECT, "objects");
	if (ret < 0)
		return ret;
	ret = verify_dir(&w, SNAP_KIND_MANIFEST, "manifests");
	if (ret < 0)
		return ret;
	d = dir_open(s->reffd);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		uint8_t id[SNAP_HASH_LEN];
		int r;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    !strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)))
			continue;
		if (!snap_name_valid(de->d_name, strlen(de->d_name))) {
			report(&w, "refs", de->d_name, -EINVAL);
			continue;
		}
		r = snap_store_ref_get(s, de->d_name, id);
		if (r == 0) {
			r = snap_store_has(s, SNAP_KIND_MANIFEST, id);
			r = r == 1 ? 0 : r < 0 ? r : -ENOENT;
		}
		if (r < 0)
			report(&w, "refs", de->d_name, r);
	}
	closedir(d);
	return w.problems;
}

/* ---- gc ------------------------------------------------------------------ */

/* An open-addressing set of ids (the mark set). */
struct idset {
	uint8_t (*v)[SNAP_HASH_LEN];
	uint8_t *used;
	size_t cap, n;
};

static size_t idset_slot(const struct idset *set, const uint8_t id[SNAP_HASH_LEN])
{
	uint64_t h;

	memcpy(&h, id, sizeof(h));   /* ids are uniformly distributed hashes */
	for (size_t i = (size_t)h & (set->cap - 1);; i = (i + 1) & (set->cap - 1))
		if (!set->used[i] || !memcmp(set->v[i], id, SNAP_HASH_LEN))
			return i;
}

static int idset_has(const struct idset *set, const uint8_t id[SNAP_HASH_LEN])
{
	return set->cap && set->used[idset_slot(set, id)];
}

/* 1 added, 0 already there, -ENOMEM. */
static int idset_add(struct idset *set, const uint8_t id[SNAP_HASH_LEN])
{
	size_t i;

	if (2 * (set->n + 1) > set->cap) {
		struct idset bigger = { .cap = set->cap ? 2 * set->cap : 256 };
		bigger.v = malloc(bigger.cap * SNAP_HASH_LEN);
		bigger.used = calloc(bigger.cap, 1);
		if (!bigger.v || !bigger.used) {
			free(bigger.v);
			free(bigger.used);
			return -ENOMEM;
		}
		for (size_t j = 0; j < set->cap; j++)
			if (set->used[j]) {
				size_t k = idset_slot(&bigger, set->v[j]);
				memcpy(bigger.v[k], set->v[j], SNAP_HASH_LEN);
				bigger.used[k] = 1;
				bigger.n++;
			}
		free(set->v);
		free(set->used);
		*set = bigger;
	}
	i = idset_slot(set, id);
	if (set->used[i])
		return 0;
	memcpy(set->v[i], id, SNAP_HASH_LEN);
	set->used[i] = 1;
	set->n++;
	return 1;
}

struct mark {
	struct snap_store *s;
	struct idset objects, manifests;
	int err;
};

static int mark_object(void *arg, const uint8_t id[SNAP_HASH_LEN])
{
	struct mark *mk = arg;
	int r = idset_add(&mk->objects, id);

	if (r < 0) {
		mk->err = r;
		return 1;
	}
	return 0;
}

/* Marks a manifest, its objects and its parent chain. */
static int mark_manifest(struct mark *mk, const uint8_t start[SNAP_HASH_LEN])
{
	uint8_t id[SNAP_HASH_LEN];

	memcpy(id, start, SNAP_HASH_LEN);
	for (;;) {
		struct snap_manifest m;
		uint8_t *buf;
		size_t len;
		int r = idset_add(&mk->manifests, id);

		if (r <= 0)
			return r;   /* already marked (with its chain), or no memory */
		/* Unreadable or corrupt manifests keep their file but cannot name what they keep. */
		if (snap_store_get(mk->s, SNAP_KIND_MANIFEST, id, &buf, &len) < 0)
			return 0;
		r = snap_manifest_parse(buf, len, &m, NULL, 0);
		free(buf);
		if (r < 0)
			return 0;
		snap_manifest_each_object(&m, mark_object, mk);
		r = m.has_parent;
		memcpy(id, m.parent, SNAP_HASH_LEN);
		snap_manifest_free(&m);
		if (mk->err)
			return mk->err;
		if (!r)
			return 0;
	}
}

static int mark_ref(void *arg, const char *name, const uint8_t id[SNAP_HASH_LEN])
{
	struct snap_ref_log_entry e[SNAP_REF_LOG_MAX];
	struct mark *mk = arg;
	int r, n;

	r = mark_manifest(mk, id);
	/* The ref's history keeps its snapshots: they are what init rolls back to. */
	n = snap_store_ref_log(mk->s, name, e, SNAP_REF_LOG_MAX, NULL);
	if (n < 0 && r == 0)
		r = n;
	for (int i = 0; i < n && r == 0; i++)
		r = mark_manifest(mk, e[i].id);
	if (r < 0) {
		mk->err = r;
		return 1;
	}
	return 0;
}

/* Removes stale temp files and, when keep is given, hex64 entries not in it. */
static int sweep(int dirfd, const struct idset *keep, uint64_t *freed, int *removed)
{
	struct dirent *de;
	time_t now = time(NULL);
	DIR *d;

	d = dir_open(dirfd);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		uint8_t id[SNAP_HASH_LEN];
		struct stat st;
		int drop;

		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (!strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)))
			/* A temp file may belong to a write in progress; only old ones are debris. */
			drop = now - st.st_mtime > SNAP_TMP_STALE_S;
		else if (snap_unhex(de->d_name, strlen(de->d_name), id) == 0)
			drop = keep && !idset_has(keep, id);
		else
			drop = 0;   /* not ours: leave it for verify to name */
		if (drop && unlinkat(dirfd, de->d_name, 0) == 0) {
			(*removed)++;
			if (freed)
				*freed += (uint64_t)st.st_size;
		}
	}
	closedir(d);
	return fsync(dirfd) < 0 ? -errno : 0;
}

static int lock_open(struct snap_store *s)
{
	int fd = openat(s->dirfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);

	if (fd < 0 && (errno == EROFS || errno == EACCES))
		fd = openat(s->dirfd, "lock", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int snap_store_hold(struct snap_store *s, int *fd)
{
	int r = lock_open(s);

	*fd = -1;
	if (r == -ENOENT || r == -EROFS || r == -EACCES)
		return 0;   /* a store nobody can write: nothing to guard */
	if (r < 0)
		return r;
	while (flock(r, LOCK_SH) < 0) {
		if (errno != EINTR) {
			int e = -errno;
			close(r);
			return e;
		}
	}
	*fd = r;
	return 0;
}

void snap_store_unhold(int fd)
{
	if (fd >= 0)
		close(fd);
}

int snap_store_gc(struct snap_store *s, uint64_t *bytes_freed)
{
	struct mark mk = { .s = s };
	int removed = 0, ret, lockfd;

	if (bytes_freed)
		*bytes_freed = 0;
	lockfd = lock_open(s);
	if (lockfd < 0)
		return lockfd;
	if (flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(lockfd);
		return ret;
	}
	/* A ref that cannot be read keeps everything: better to keep garbage than drop a snapshot. */
	ret = ref_walk(s, 1, mark_ref, &mk);
	if (ret == 0 && mk.err)
		ret = mk.err;
	if (ret < 0)
		goto out;
	ret = sweep(s->manfd, &mk.manifests, bytes_freed, &removed);
	if (ret < 0)
		goto out;
	ret = sweep(s->objfd, &mk.objects, bytes_freed, &removed);
	if (ret < 0)
		goto out;
	ret = sweep(s->reffd, NULL, bytes_freed, &removed);
	if (ret == 0 && s->logfd >= 0)
		ret = sweep(s->logfd, NULL, bytes_freed, &removed);
	if (ret == 0)
		ret = removed;
out:
	free(mk.objects.v);
	free(mk.objects.used);
	free(mk.manifests.v);
	free(mk.manifests.used);
	close(lockfd);
	return ret;
}
