/*
 * A manifest's read-only disk read straight from its chunk objects, wherever the source keeps
 * them (a directory store's files, the partition image's page-aligned ranges): nothing is
 * assembled or copied but the bytes asked for. Chunks the manifest leaves out read as zeros.
 *
 * IMPLEMENTATION NOTES
 * - Every listed chunk is located when the disk opens (a missing one, or one of the wrong
 *   length, refuses the disk at once, naming the object) and re-hashed the first time any of
 *   its bytes is read: a flipped byte fails that read with -EBADMSG and one line naming the
 *   object, and the chunk stays refused. The chunk is not hashed again once it passed (the
 *   image is a read-only partition; the store's objects are write-once).
 * - Lookup is a binary search of the manifest's ascending chunk list: memory is one small
 *   entry per stored chunk, whatever the disk's size.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#include "snap/snap.h"
#include "snap/store_int.h"

struct chunk {
	uint64_t index, off, len;
	int fd;
	int state;                 /* 0 not yet hashed, 1 good, -1 corrupt */
	uint8_t id[SNAP_HASH_LEN];
};

struct snap_disk {
	char name[SNAP_DISK_NAME_MAX + 1];
	uint64_t bytes, chunk_bytes;
	struct chunk *c;
	size_t n;
};

uint64_t snap_disk_bytes(const struct snap_disk *k)
{
	return k->bytes;
}

void snap_disk_close(struct snap_disk *k)
{
	if (!k)
		return;
	free(k->c);
	free(k);
}

int snap_disk_open(const struct snap_source *src, const struct snap_manifest_disk *d, struct snap_disk **out,
		   char *err, size_t errlen)
{
	struct snap_disk *k = calloc(1, sizeof(*k));
	char hex[SNAP_HEX_LEN + 1];
	int r;

	if (!k || !(k->c = calloc(d->nchunks ? d->nchunks : 1, sizeof(*k->c)))) {
		free(k);
		snprintf(err, errlen, "disk %s: out of memory", d->name);
		return -ENOMEM;
	}
	snprintf(k->name, sizeof(k->name), "%s", d->name);
	k->bytes = d->bytes;
	k->chunk_bytes = d->chunk_bytes;
	for (size_t i = 0; i < d->nchunks; i++) {
		struct chunk *c = &k->c[k->n];
		uint64_t want = d->bytes - d->chunks[i].index * d->chunk_bytes;

		if (want > d->chunk_bytes)
			want = d->chunk_bytes;
		c->index = d->chunks[i].index;
		memcpy(c->id, d->chunks[i].id, SNAP_HASH_LEN);
		r = src->locate(src->ctx, SNAP_KIND_OBJECT, c->id, &c->fd, &c->off, &c->len);
		if (r < 0 || c->len != want) {
			snap_hex(c->id, hex);
			snprintf(err, errlen, "disk %s: chunk %llu (object %s) %s", d->name, (unsigned long long)c->index,
				 hex, r < 0 ? strerror(-r) : "has the wrong length");
			snap_disk_close(k);
			return r < 0 ? r : -EBADMSG;
		}
		k->n++;
	}
	*out = k;
	return 0;
}

/*
 * 1 when the chunk's bytes hash to its id. With pread alone, on this thread: a VMM's vCPU serves
 * disk reads under a seccomp filter that allows no openat, fstat or thread.
 */
static int chunk_ok(const struct chunk *c)
{
	uint8_t got[SNAP_HASH_LEN];

	return snap_store_hash_pread(c->fd, c->off, c->len, got) == 0 && !memcmp(got, c->id, SNAP_HASH_LEN);
}

/* The listed chunk of index, or NULL (a chunk of zeros). */
static struct chunk *find(struct snap_disk *k, uint64_t index)
{
	size_t lo = 0, hi = k->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->c[mid].index == index)
			return &k->c[mid];
		if (k->c[mid].index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int snap_disk_read(struct snap_disk *k, void *buf, size_t len, uint64_t off, char *err, size_t errlen)
{
	uint8_t *p = buf;
	char hex[SNAP_HEX_LEN + 1];

	if (off > k->bytes || len > k->bytes - off)
		return -EINVAL;
	while (len) {
		uint64_t index = off / k->chunk_bytes, in = off % k->chunk_bytes;
		size_t n = (size_t)(k->chunk_bytes - in < len ? k->chunk_bytes - in : len);
		struct chunk *c = find(k, index);

		if (!c) {
			memset(p, 0, n);
		} else {
			if (c->state == 0)
				c->state = chunk_ok(c) ? 1 : -1;
			if (c->state < 0) {
				snap_hex(c->id, hex);
				snprintf(err, errlen, "disk %s: chunk %llu (object %s) is corrupt", k->name,
					 (unsigned long long)index, hex);
				return -EBADMSG;
			}
			int r = snap_pread_full(c->fd, p, n, c->off + in);

			if (r < 0) {
				snap_hex(c->id, hex);
				snprintf(err, errlen, "disk %s: chunk %llu (object %s): %s", k->name,
					 (unsigned long long)index, hex, r == -ENODATA ? "short read" : strerror(-r));
				return r == -ENODATA ? -EIO : r;
			}
		}
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

int snap_file_bytes(int fd, uint64_t *bytes)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		*bytes = (uint64_t)st.st_size;
		return 0;
	}
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, bytes) < 0 ? -errno : 0;
	return -EINVAL;
}

int snap_chunks_put(struct snap_store *s, int fd, uint64_t size, uint64_t chunk_bytes,
		    struct snap_manifest_chunk **list, size_t *n)
{
	uint64_t chunks = (size + chunk_bytes - 1) / chunk_bytes;
	uint8_t *buf = malloc(chunk_bytes);
	int r = 0;

	*list = calloc(chunks ? chunks : 1, sizeof(**list));
	*n = 0;
	if (!buf || !*list) {
		free(buf);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < chunks && !r; i++) {
		size_t want = (size_t)(size - i * chunk_bytes < chunk_bytes ? size - i * chunk_bytes : chunk_bytes), got = 0;
		int zero = 1;

		while (got < want) {
			ssize_t k = pread(fd, buf + got, want - got, (off_t)(i * chunk_bytes + got));

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				r = -errno;
				break;
			}
			if (k == 0)
				break;
			got += (size_t)k;
		}
		if (r)
			break;
		memset(buf + got, 0, want - got);   /* a file that shrank under us reads as zeros */
		for (size_t j = 0; j < want && zero; j++)
			zero = buf[j] == 0;
		if (zero)
			continue;   /* absent chunks read as zeros: they cost nothing */
		r = snap_store_put_buf(s, SNAP_KIND_OBJECT, buf, want, (*list)[*n].id);
		if (!r)
			(*list)[(*n)++].index = i;
	}
	free(buf);
	return r;
}
