/*
 * virtio-blk backed by a host file, read-only or read-write, or by a manifest's read-only disk
 * read straight from its chunk objects (snap/disk.c: each chunk re-hashed on its first read; a
 * corrupt one is an I/O error for the guest and one line naming the object). Requests are
 * served synchronously.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap/snap.h"
#include "vmm/vmm_int.h"

#define BLK_F_SEG_MAX (1ULL << 2)
#define BLK_F_RO (1ULL << 5)
#define BLK_F_FLUSH (1ULL << 9)
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

struct blk {
	int fd;
	int ro;
	uint64_t capacity;     /* 512-byte sectors */
	struct snap_disk *obj; /* or an object disk (not owned) */
	void (*warn)(void *ctx, const char *line);
	void *warn_ctx;
	int warned;
	char path[200];
};
_Static_assert(sizeof(struct blk) <= VMM_DEV_PRIV, "virtio-blk state must fit the device's room");

static struct blk *blk(const struct vmm_virtio *d)
{
	return (struct blk *)(void *)d->priv;
}

static int blk_count(const struct vmm_config *cfg)
{
	return cfg->ndisks;
}

static int blk_init(struct vmm_virtio *d, const struct vmm_config *cfg, int i, char *err, size_t errlen)
{
	const char *path = cfg->disks[i].path;
	int ro = cfg->disks[i].ro;
	struct blk *b = blk(d);
	uint64_t bytes = 0;
	int fd, e = 0;

	b->fd = -1;
	b->warn = cfg->warn;
	b->warn_ctx = cfg->warn_ctx;
	if (cfg->disks[i].object) {
		b->obj = cfg->disks[i].object;
		b->ro = 1;
		b->capacity = snap_disk_bytes(b->obj) / 512;
		snprintf(b->path, sizeof(b->path), "%s (chunk objects)", path ? path : "disk");
		d->features |= BLK_F_SEG_MAX | BLK_F_FLUSH | BLK_F_RO;
		return 0;
	}
	fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0 || (e = -snap_file_bytes(fd, &bytes)) > 0 || bytes < 512) {
		e = fd < 0 ? errno : e > 0 ? e : EINVAL;
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "disk %s: %s", path, strerror(e));
		return -e;
	}
	b->fd = fd;
	b->ro = ro;
	b->capacity = bytes / 512;
	snprintf(b->path, sizeof(b->path), "%s", path);
	d->features |= BLK_F_SEG_MAX | BLK_F_FLUSH | (ro ? BLK_F_RO : 0);
	return 0;
}

static void blk_destroy(struct vmm_virtio *d)
{
	if (blk(d)->fd >= 0)
		close(blk(d)->fd);
	blk(d)->fd = -1;
}

static void blk_config(const struct vmm_virtio *d, uint64_t off, uint8_t *data, unsigned len)
{
	uint8_t cfg[16];
	uint32_t seg_max = VMM_CHAIN_MAX - 2;

	memset(cfg, 0, sizeof(cfg));
	memcpy(cfg, &blk(d)->capacity, 8);
	memcpy(cfg + 12, &seg_max, 4);
	if (off < sizeof(cfg))
		memcpy(data, cfg + off, len < sizeof(cfg) - off ? len : sizeof(cfg) - off);
}

static uint8_t serve(struct blk *d, struct vmm_vbuf *b, unsigned n, uint32_t *written)
{
	uint32_t type;
	uint64_t sector, off;
	unsigned i;

	memcpy(&type, b[0].p, 4);
	memcpy(&sector, b[0].p + 8, 8);
	if (sector > d->capacity)
		return S_IOERR;
	off = sector * 512;
	switch (type) {
	case T_IN:
	case T_OUT:
		for (i = 1; i < n - 1; i++) {
			ssize_t r;

			if ((type == T_IN) != b[i].write)
				return S_IOERR;
			if (b[i].len > d->capacity * 512 - off)
				return S_IOERR;
			if (type == T_OUT && d->ro)
				return S_IOERR;
			if (d->obj) {
				char err[256];

				if (snap_disk_read(d->obj, b[i].p, b[i].len, off, err, sizeof(err)) < 0) {
					if (d->warn && d->warned++ < 8)   /* said for the first bad reads only */
						d->warn(d->warn_ctx, err);
					return S_IOERR;
				}
				r = (ssize_t)b[i].len;
			} else {
				r = type == T_IN ? pread(d->fd, b[i].p, b[i].len, (off_t)off) :
						   pwrite(d->fd, b[i].p, b[i].len, (off_t)off);
			}
			if (r != (ssize_t)b[i].len)
				return S_IOERR;
			off += b[i].len;
			if (type == T_IN)
				*written += b[i].len;
		}
		return S_OK;
	case T_FLUSH:
		return d->obj || fdatasync(d->fd) == 0 ? S_OK : S_IOERR;
	case T_GET_ID:
		if (n < 3 || !b[1].write)
			return S_IOERR;
		memset(b[1].p, 0, b[1].len);
		memcpy(b[1].p, "keel-virtio-blk", b[1].len < 15 ? b[1].len : 15);
		*written += b[1].len < 20 ? b[1].len : 20;
		return S_OK;
	default:
		return S_UNSUPP;
	}
}

/* A request needs a readable header and a writable status byte; anything less is a fault. */
static int blk_chain(struct vmm_virtio *d, unsigned q, struct vmm_vbuf *b, unsigned n, uint32_t *written,
		     const char **why)
{
	uint8_t st;

	(void)q;
	if (n < 2 || b[0].write || b[0].len < 16 || !b[n - 1].write) {
		*why = "request without a 16-byte header and a status byte";
		return -1;
	}
	st = serve(blk(d), b, n, written);
	b[n - 1].p[b[n - 1].len - 1] = st;
	*written += 1;
	return 0;
}

void vmm_blk_backing(const struct vmm_virtio *d, int *fd, const char **path, int *ro)
{
	*fd = blk(d)->obj ? -1 : blk(d)->fd;
	*path = blk(d)->path;
	*ro = blk(d)->ro;
}

static void blk_save(const struct vmm_virtio *d, void *state)
{
	struct vmstate_blk st = { .capacity = blk(d)->capacity, .ro = (uint32_t)blk(d)->ro };

	memcpy(state, &st, sizeof(st));
}

static int blk_load(struct vmm_virtio *d, const void *state, char *err, size_t errlen)
{
	struct vmstate_blk st;

	memcpy(&st, state, sizeof(st));
	if (st.capacity != blk(d)->capacity || st.ro != (uint32_t)blk(d)->ro) {
		snprintf(err, errlen, "disk %s differs from the snapshot's (%llu sectors%s)", blk(d)->path,
			 (unsigned long long)st.capacity, st.ro ? ", ro" : "");
		return -EINVAL;
	}
	return 0;
}

const struct vmm_virtio_ops vmm_virtio_blk_ops = {
	.name = "virtio-blk",
	.device_id = VMM_VIRTIO_BLK,
	.nqueues = 1,
	.count = blk_count,
	.init = blk_init,
	.chain = blk_chain,
	.config = blk_config,
	.destroy = blk_destroy,
	.state_size = sizeof(struct vmstate_blk),
	.save = blk_save,
	.load = blk_load,
};
