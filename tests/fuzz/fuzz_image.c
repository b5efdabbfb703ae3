/* Fuzz target: the partition image header, ref table and index parser (and lookups on success). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "snap/snap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_ref(void *arg, const char *name, const uint8_t id[SNAP_HASH_LEN])
{
	struct snap_source *src = arg;
	uint8_t got[SNAP_HASH_LEN];
	int fd;
	uint64_t off, len;

	if (src->ref(src->ctx, name, got) != 0)
		abort();
	(void)src->locate(src->ctx, SNAP_KIND_MANIFEST, id, &fd, &off, &len);
	return 0;
}

static int on_entry(void *arg, int kind, const uint8_t id[SNAP_HASH_LEN], uint64_t off, uint64_t len)
{
	struct snap_source *src = arg;
	uint64_t o, l;
	int fd;

	if (src->locate(src->ctx, kind, id, &fd, &o, &l) != 0 || o != off || l != len)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_image *img;
	struct snap_source src;
	char err[256];
	int fd = memfd_create("fuzz-image", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	if (snap_image_open_fd(fd, &img, err, sizeof(err)) == 0) {
		snap_image_source(img, &src);
		snap_image_ref_each(img, on_ref, &src);
		snap_image_entry_each(img, on_entry, &src);
		snap_image_close(img);
	}
	return 0;
}
