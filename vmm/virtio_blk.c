/* virtio-blk backed by a host file, read-only or read-write; requests are served synchronously. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/vmm_int.h"

#define BLK_F_SEG_MAX (1ULL << 2)
#define BLK_F_RO (1ULL << 5)
#define BLK_F_FLUSH (1ULL << 9)
#define F_VERSION_1 (1ULL << 32)
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

int vmm_virtio_blk_init(struct vmm_virtio *d, const char *path, int ro)
{
	struct stat st;
	int fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < 512) {
		close(fd);
		return -EINVAL;
	}
	memset(d, 0, sizeof(*d));
	d->device_id = VMM_VIRTIO_BLK;
	d->nqueues = 1;
	d->fd = fd;
	d->ro = ro;
	d->capacity = (uint64_t)st.st_size / 512;
	d->features = F_VERSION_1 | BLK_F_SEG_MAX | BLK_F_FLUSH | (ro ? BLK_F_RO : 0);
	snprintf(d->path, sizeof(d->path), "%s", path);
	return 0;
}

void vmm_virtio_blk_config(struct vmm_virtio *d, uint64_t off, uint8_t *data, unsigned len)
{
	uint8_t cfg[16];
	uint32_t seg_max = VMM_CHAIN_MAX - 2;

	memset(cfg, 0, sizeof(cfg));
	memcpy(cfg, &d->capacity, 8);
	memcpy(cfg + 12, &seg_max, 4);
	if (off < sizeof(cfg))
		memcpy(data, cfg + off, len < sizeof(cfg) - off ? len : sizeof(cfg) - off);
}

static uint8_t serve(struct vmm_virtio *d, struct vmm_vbuf *b, unsigned n, uint32_t *written)
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
			r = type == T_IN ? pread(d->fd, b[i].p, b[i].len, (off_t)off) :
					   pwrite(d->fd, b[i].p, b[i].len, (off_t)off);
			if (r != (ssize_t)b[i].len)
				return S_IOERR;
			off += b[i].len;
			if (type == T_IN)
				*written += b[i].len;
		}
		return S_OK;
	case T_FLUSH:
		return fdatasync(d->fd) == 0 ? S_OK : S_IOERR;
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
static int blk_chain(struct vmm_virtio *d, struct vmm_vbuf *b, unsigned n, uint32_t *written, const char **why)
{
	uint8_t st;

	if (n < 2 || b[0].write || b[0].len < 16 || !b[n - 1].write) {
		*why = "request without a 16-byte header and a status byte";
		return -1;
	}
	st = serve(d, b, n, written);
	b[n - 1].p[b[n - 1].len - 1] = st;
	*written += 1;
	return 0;
}

int vmm_virtio_blk_notify(struct vmm *vm, struct vmm_virtio *d, unsigned qi)
{
	return vmm_virtio_serve(vm, d, qi, blk_chain);
}
