/* Helpers over struct snap_source, the read side shared by the directory store and the image. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keel_config.h"
#include "snap/snap.h"
#include "snap/store_int.h"

int snap_source_read(const struct snap_source *src, int kind, const uint8_t id[SNAP_HASH_LEN], uint8_t **buf,
		     size_t *len)
{
	return snap_source_read_max(src, kind, id, kind == SNAP_KIND_MANIFEST ? CONFIG_SNAP_MAX_MANIFEST_BYTES : SIZE_MAX - 1,
				    buf, len);
}

int snap_source_read_max(const struct snap_source *src, int kind, const uint8_t id[SNAP_HASH_LEN], size_t max,
			 uint8_t **buf, size_t *len)
{
	uint8_t got[SNAP_HASH_LEN], *p;
	uint64_t off, n, done = 0;
	int fd, ret;

	ret = src->locate(src->ctx, kind, id, &fd, &off, &n);
	if (ret < 0)
		return ret;
	/* the length comes from disk (an image index, a file size): capped before any malloc */
	if (n > max || n > SIZE_MAX - 1)
		return -EFBIG;
	p = malloc(n ? (size_t)n : 1);
	if (!p)
		return -ENOMEM;
	while (done < n) {
		ssize_t r = pread(fd, p + done, (size_t)(n - done), (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ret = r < 0 ? -errno : -EBADMSG;   /* shorter than its entry says: corrupt */
			goto err_free;
		}
		done += (uint64_t)r;
	}
	snap_b3_hash(p, (size_t)n, 0, got);
	if (memcmp(got, id, SNAP_HASH_LEN)) {
		ret = -EBADMSG;
		goto err_free;
	}
	*buf = p;
	*len = (size_t)n;
	return 0;

err_free:
	free(p);
	return ret;
}

int snap_source_check(const struct snap_source *src, int kind, const uint8_t id[SNAP_HASH_LEN])
{
	uint8_t got[SNAP_HASH_LEN];
	uint64_t off, n;
	int fd, ret;

	ret = src->locate(src->ctx, kind, id, &fd, &off, &n);
	if (ret < 0)
		return ret;
	ret = snap_store_hash_fd(fd, off, n, got);
	if (ret < 0)
		return ret;
	return memcmp(got, id, SNAP_HASH_LEN) ? -EBADMSG : 0;
}

int snap_source_resolve(const struct snap_source *src, const char *name_or_hex, uint8_t id[SNAP_HASH_LEN])
{
	size_t len = strlen(name_or_hex);

	/* A hex64 is always an id, never a ref name, so one string cannot mean two things. */
	if (snap_is_hex64(name_or_hex, len))
		return snap_unhex(name_or_hex, len, id);
	if (!snap_name_valid(name_or_hex, len))
		return -EINVAL;
	return src->ref(src->ctx, name_or_hex, id);
}
