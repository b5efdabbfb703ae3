/*
 * The snapshot partition image: reader (a snap_source) and builder. Layout in snap.h.
 *
 * IMPLEMENTATION NOTES
 * - The reader trusts nothing: every offset and count is checked against the
 *   device size before anything is read or allocated, regions must sit in
 *   their one fixed order, index entries must be sorted and their objects
 *   laid out in index order without overlap. Structure is checked before the
 *   checksum so a fuzzer reaches the structural checks.
 * - The header checksum catches a flipped byte in header, table, index or
 *   metadata of an unsigned image too; objects are content-addressed and
 *   re-hashed by whoever reads them (snap_source_read / _check, image verify).
 */
#include <bearssl.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snap/snap.h"
#include "snap/store_int.h"

#define TABLE_ENTRY 96
#define INDEX_ENTRY 56
#define SIG_BYTES (SNAP_HASH_LEN + SNAP_SIG_LEN)
#define CSUM_OFF (SNAP_IMAGE_HEADER_BYTES - SNAP_HASH_LEN)
#define MAX_REFS 65536
#define MAX_META 65536
#define MAX_CHAIN 64

/* Header field offsets. */
enum {
	H_MAGIC = 0, H_VERSION = 8, H_HSIZE = 12, H_BLOCK = 16, H_FLAGS = 20, H_GEN = 24, H_SIZE = 32,
	H_TABLE_OFF = 40, H_TABLE_N = 48, H_INDEX_OFF = 56, H_INDEX_N = 64, H_META_OFF = 72, H_META_LEN = 80,
	H_SIG_OFF = 88, H_SIG_LEN = 96, H_DATA_OFF = 104, H_PARENT = 112, H_END = 144,
};

struct snap_image {
	int fd;
	uint64_t dev_size;
	uint8_t hdr[SNAP_IMAGE_HEADER_BYTES];
	uint32_t flags;
	uint64_t generation, size, nrefs, nobjects, data_off;
	uint8_t *table;          /* nrefs * TABLE_ENTRY */
	uint8_t *index;          /* nobjects * INDEX_ENTRY */
	char *meta;              /* NUL-terminated */
	uint64_t meta_len;
	uint8_t sig[SIG_BYTES];
	uint8_t id[SNAP_HASH_LEN];
	struct snap_image *parent;
};

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
	wr32(p, (uint32_t)v);
	wr32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t align_up(uint64_t v)
{
	return (v + SNAP_IMAGE_BLOCK - 1) & ~(uint64_t)(SNAP_IMAGE_BLOCK - 1);
}

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

int snap_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int device_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size) < 0)
			return -errno;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*size = (uint64_t)st.st_size;
	return 0;
}

static const char *kind_name(int kind)
{
	return kind == SNAP_KIND_MANIFEST ? "manifest" : "object";
}

static int entry_cmp(const uint8_t *a, const uint8_t *b)
{
	int c = memcmp(a, b, SNAP_HASH_LEN);

	if (c)
		return c;
	return (rd32(a + 32) > rd32(b + 32)) - (rd32(a + 32) < rd32(b + 32));
}

/* The hashed (and signed) bytes: header + table + index + metadata. */
static void region_hash(const struct snap_image *img, size_t hdr_len, uint8_t out[SNAP_HASH_LEN],
			uint8_t sha[32])
{
	struct snap_b3 h;
	br_sha256_context s;

	snap_b3_init(&h);
	snap_b3_update(&h, img->hdr, hdr_len);
	snap_b3_update(&h, img->table, img->nrefs * TABLE_ENTRY);
	snap_b3_update(&h, img->index, img->nobjects * INDEX_ENTRY);
	snap_b3_update(&h, img->meta, img->meta_len);
	snap_b3_final(&h, out, SNAP_HASH_LEN);
	if (sha) {
		br_sha256_init(&s);
		br_sha256_update(&s, img->hdr, SNAP_IMAGE_HEADER_BYTES);
		br_sha256_update(&s, img->table, img->nrefs * TABLE_ENTRY);
		br_sha256_update(&s, img->index, img->nobjects * INDEX_ENTRY);
		br_sha256_update(&s, img->meta, img->meta_len);
		br_sha256_out(&s, sha);
	}
}

static int check_header(struct snap_image *img, char *err, size_t errlen)
{
	const uint8_t *h = img->hdr;
	uint64_t table_off, index_off, meta_off, sig_off, sig_len, want;
	uint32_t v;

	if (memcmp(h + H_MAGIC, SNAP_IMAGE_MAGIC, 8))
		return fail(err, errlen, -EINVAL, "not a keel image (bad magic at byte 0)");
	v = rd32(h + H_VERSION);
	if (v != SNAP_IMAGE_VERSION)
		return fail(err, errlen, -EPROTONOSUPPORT, "image format version %u is not supported (this keel reads %d)",
			    v, SNAP_IMAGE_VERSION);
	if (rd32(h + H_HSIZE) != SNAP_IMAGE_HEADER_BYTES || rd32(h + H_BLOCK) != SNAP_IMAGE_BLOCK)
		return fail(err, errlen, -EINVAL, "header size / block size (bytes 12..19) must be 4096");
	img->flags = rd32(h + H_FLAGS);
	if (img->flags & ~(SNAP_IMAGE_F_THIN | SNAP_IMAGE_F_SIGNED))
		return fail(err, errlen, -EPROTONOSUPPORT, "unknown feature flags 0x%x (byte 20)", img->flags);
	img->generation = rd64(h + H_GEN);
	img->size = rd64(h + H_SIZE);
	table_off = rd64(h + H_TABLE_OFF);
	img->nrefs = rd64(h + H_TABLE_N);
	index_off = rd64(h + H_INDEX_OFF);
	img->nobjects = rd64(h + H_INDEX_N);
	meta_off = rd64(h + H_META_OFF);
	img->meta_len = rd64(h + H_META_LEN);
	sig_off = rd64(h + H_SIG_OFF);
	sig_len = rd64(h + H_SIG_LEN);
	img->data_off = rd64(h + H_DATA_OFF);
	for (size_t i = H_END; i < CSUM_OFF; i++)
		if (h[i])
			return fail(err, errlen, -EINVAL, "reserved header byte %zu is not zero", i);
	if (!(img->flags & SNAP_IMAGE_F_THIN))
		for (size_t i = H_PARENT; i < H_PARENT + SNAP_HASH_LEN; i++)
			if (h[i])
				return fail(err, errlen, -EINVAL, "parent id set (byte %zu) without the thin flag", i);
	/* Counts first, so the multiplications below cannot overflow. */
	if (img->nrefs > MAX_REFS)
		return fail(err, errlen, -EINVAL, "%llu refs (byte 48) exceed %d", (unsigned long long)img->nrefs,
			    MAX_REFS);
	if (img->nobjects > img->dev_size / INDEX_ENTRY)
		return fail(err, errlen, -EINVAL, "index count %llu (byte 64) cannot fit the device",
			    (unsigned long long)img->nobjects);
	if (img->meta_len > MAX_META)
		return fail(err, errlen, -EINVAL, "metadata length %llu (byte 80) exceeds %d",
			    (unsigned long long)img->meta_len, MAX_META);
	if (table_off != SNAP_IMAGE_HEADER_BYTES)
		return fail(err, errlen, -EINVAL, "table offset (byte 40) must be 4096");
	want = table_off + img->nrefs * TABLE_ENTRY;
	if (index_off != want)
		return fail(err, errlen, -EINVAL, "index offset %llu (byte 56) must follow the table at %llu",
			    (unsigned long long)index_off, (unsigned long long)want);
	want = index_off + img->nobjects * INDEX_ENTRY;
	if (meta_off != want)
		return fail(err, errlen, -EINVAL, "metadata offset (byte 72) must follow the index at %llu",
			    (unsigned long long)want);
	want = meta_off + img->meta_len;
	if (sig_off != want)
		return fail(err, errlen, -EINVAL, "signature offset (byte 88) must follow the metadata at %llu",
			    (unsigned long long)want);
	if (sig_len != ((img->flags & SNAP_IMAGE_F_SIGNED) ? SIG_BYTES : 0))
		return fail(err, errlen, -EINVAL, "signature length %llu (byte 96) does not match the signed flag",
			    (unsigned long long)sig_len);
	if (img->data_off != align_up(sig_off + sig_len))
		return fail(err, errlen, -EINVAL, "first object offset (byte 104) must be %llu",
			    (unsigned long long)align_up(sig_off + sig_len));
	if (img->size < img->data_off || img->size % SNAP_IMAGE_BLOCK)
		return fail(err, errlen, -EINVAL, "image size %llu (byte 32) is not a block multiple past the index",
			    (unsigned long long)img->size);
	if (img->size > img->dev_size)
		return fail(err, errlen, -ENODATA, "truncated: the header says %llu bytes, the device has %llu",
			    (unsigned long long)img->size, (unsigned long long)img->dev_size);
	return 0;
}

static int check_index(struct snap_image *img, char *err, size_t errlen)
{
	uint64_t end = img->data_off;
	char hex[SNAP_HEX_LEN + 1];

	for (uint64_t i = 0; i < img->nobjects; i++) {
		const uint8_t *e = img->index + i * INDEX_ENTRY;
		uint64_t eoff = SNAP_IMAGE_HEADER_BYTES + img->nrefs * TABLE_ENTRY + i * INDEX_ENTRY;
		uint32_t kind = rd32(e + 32);
		uint64_t off = rd64(e + 40), len = rd64(e + 48);

		snap_hex(e, hex);
		if ((kind != SNAP_KIND_OBJECT && kind != SNAP_KIND_MANIFEST) || rd32(e + 36))
			return fail(err, errlen, -EINVAL, "index entry %llu (byte %llu): bad kind",
				    (unsigned long long)i, (unsigned long long)eoff);
		if (i > 0 && entry_cmp(e - INDEX_ENTRY, e) >= 0)
			return fail(err, errlen, -EINVAL, "index entry %llu (byte %llu, %s): not sorted or duplicate",
				    (unsigned long long)i, (unsigned long long)eoff, hex);
		if (off % SNAP_IMAGE_BLOCK || off < end)
			return fail(err, errlen, -EINVAL,
				    "index entry %llu (byte %llu, %s %s): offset %llu unaligned or overlapping",
				    (unsigned long long)i, (unsigned long long)eoff, kind_name((int)kind), hex,
				    (unsigned long long)off);
		if (len > img->size || off > img->size - len)
			return fail(err, errlen, -EINVAL, "index entry %llu (byte %llu, %s %s): past the image end",
				    (unsigned long long)i, (unsigned long long)eoff, kind_name((int)kind), hex);
		end = align_up(off + len);
	}
	if (end != img->size)
		return fail(err, errlen, -EINVAL, "image size %llu does not end at the last object (%llu)",
			    (unsigned long long)img->size, (unsigned long long)end);
	return 0;
}

static const uint8_t *find_entry(const struct snap_image *img, int kind, const uint8_t id[SNAP_HASH_LEN])
{
	uint8_t key[36];
	uint64_t lo = 0, hi = img->nobjects;

	memcpy(key, id, SNAP_HASH_LEN);
	wr32(key + 32, (uint32_t)kind);
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		const uint8_t *e = img->index + mid * INDEX_ENTRY;
		int c = entry_cmp(e, key);
		if (c == 0)
			return e;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int check_table(struct snap_image *img, char *err, size_t errlen)
{
	for (uint64_t i = 0; i < img->nrefs; i++) {
		const uint8_t *e = img->table + i * TABLE_ENTRY;
		uint64_t eoff = SNAP_IMAGE_HEADER_BYTES + i * TABLE_ENTRY;
		size_t n = strnlen((const char *)e, SNAP_NAME_MAX);

		if (!snap_name_valid((const char *)e, n))
			return fail(err, errlen, -EINVAL, "ref table entry %llu (byte %llu): bad name",
				    (unsigned long long)i, (unsigned long long)eoff);
		for (size_t k = n; k < SNAP_NAME_MAX; k++)
			if (e[k])
				return fail(err, errlen, -EINVAL, "ref table entry %llu (byte %llu): bytes after the name",
					    (unsigned long long)i, (unsigned long long)eoff);
		if (i > 0 && strncmp((const char *)e - TABLE_ENTRY, (const char *)e, SNAP_NAME_MAX) >= 0)
			return fail(err, errlen, -EINVAL, "ref table entry %llu (byte %llu): not sorted or duplicate",
				    (unsigned long long)i, (unsigned long long)eoff);
		if (!find_entry(img, SNAP_KIND_MANIFEST, e + SNAP_NAME_MAX) && !(img->flags & SNAP_IMAGE_F_THIN))
			return fail(err, errlen, -EINVAL, "ref '%.*s' (byte %llu): its manifest is not in the image",
				    (int)n, (const char *)e, (unsigned long long)eoff);
	}
	return 0;
}

/* The bytes between the signature and the first object are zero, so no byte there goes unchecked. */
static int check_padding(struct snap_image *img, char *err, size_t errlen)
{
	uint8_t pad[SNAP_IMAGE_BLOCK];
	uint64_t from = rd64(img->hdr + H_SIG_OFF) + rd64(img->hdr + H_SIG_LEN);
	size_t n = (size_t)(img->data_off - from);
	int rc;

	if (n == 0)
		return 0;
	rc = snap_pread_full(img->fd, pad, n, from);
	if (rc < 0)
		return fail(err, errlen, rc, "reading the index padding: %s", strerror(-rc));
	for (size_t i = 0; i < n; i++)
		if (pad[i])
			return fail(err, errlen, -EINVAL, "padding byte %llu before the first object is not zero",
				    (unsigned long long)(from + i));
	return 0;
}

int snap_image_open_fd(int fd, struct snap_image **out, char *err, size_t errlen)
{
	struct snap_image *img;
	uint8_t sum[SNAP_HASH_LEN];
	uint64_t sig_len;
	int rc;

	*out = NULL;
	img = calloc(1, sizeof(*img));
	if (!img) {
		close(fd);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	img->fd = fd;
	rc = device_size(fd, &img->dev_size);
	if (rc < 0) {
		fail(err, errlen, rc, "cannot size the image: %s", strerror(-rc));
		goto out_close;
	}
	if (img->dev_size < SNAP_IMAGE_HEADER_BYTES) {
		rc = fail(err, errlen, -ENODATA, "truncated: %llu bytes, shorter than the 4096-byte header",
			  (unsigned long long)img->dev_size);
		goto out_close;
	}
	rc = snap_pread_full(fd, img->hdr, sizeof(img->hdr), 0);
	if (rc < 0) {
		fail(err, errlen, rc, "reading the header: %s", strerror(-rc));
		goto out_close;
	}
	rc = check_header(img, err, errlen);
	if (rc < 0)
		goto out_close;
	/* check_header bounded every region by the image size, itself <= the device size. */
	img->table = malloc(img->nrefs * TABLE_ENTRY + 1);
	img->index = malloc(img->nobjects * INDEX_ENTRY + 1);
	img->meta = malloc(img->meta_len + 1);
	if (!img->table || !img->index || !img->meta) {
		rc = fail(err, errlen, -ENOMEM, "out of memory for the index");
		goto out_close;
	}
	sig_len = (img->flags & SNAP_IMAGE_F_SIGNED) ? SIG_BYTES : 0;
	if ((rc = snap_pread_full(fd, img->table, img->nrefs * TABLE_ENTRY, rd64(img->hdr + H_TABLE_OFF))) < 0 ||
	    (rc = snap_pread_full(fd, img->index, img->nobjects * INDEX_ENTRY, rd64(img->hdr + H_INDEX_OFF))) < 0 ||
	    (rc = snap_pread_full(fd, img->meta, img->meta_len, rd64(img->hdr + H_META_OFF))) < 0 ||
	    (rc = snap_pread_full(fd, img->sig, sig_len, rd64(img->hdr + H_SIG_OFF))) < 0) {
		fail(err, errlen, rc, "reading the index: %s", strerror(-rc));
		goto out_close;
	}
	img->meta[img->meta_len] = 0;
	if (memchr(img->meta, 0, img->meta_len)) {
		rc = fail(err, errlen, -EINVAL, "metadata holds a NUL byte");
		goto out_close;
	}
	rc = check_padding(img, err, errlen);
	if (rc < 0)
		goto out_close;
	rc = check_index(img, err, errlen);
	if (rc < 0)
		goto out_close;
	rc = check_table(img, err, errlen);
	if (rc < 0)
		goto out_close;
	region_hash(img, CSUM_OFF, sum, NULL);
	if (memcmp(sum, img->hdr + CSUM_OFF, SNAP_HASH_LEN)) {
		rc = fail(err, errlen, -EBADMSG, "header checksum mismatch: header, ref table, index or metadata "
						 "(bytes 0..%llu) are corrupt",
			  (unsigned long long)rd64(img->hdr + H_SIG_OFF));
		goto out_close;
	}
	region_hash(img, SNAP_IMAGE_HEADER_BYTES, img->id, NULL);
	*out = img;
	return 0;
out_close:
	snap_image_close(img);
	return rc;
}

int snap_image_fds(const struct snap_image *img, int *fds, int max)
{
	int n = 0;

	for (; img && n < max; img = img->parent)
		fds[n++] = img->fd;
	return n;
}

int snap_image_open(const char *path, struct snap_image **out, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*out = NULL;
	if (fd < 0) {
		int e = errno;
		return fail(err, errlen, -e, "%s: %s", path, strerror(e));
	}
	return snap_image_open_fd(fd, out, err, errlen);
}

void snap_image_close(struct snap_image *img)
{
	if (!img)
		return;
	if (img->fd >= 0)
		close(img->fd);
	free(img->table);
	free(img->index);
	free(img->meta);
	free(img);
}

void snap_image_get_info(const struct snap_image *img, struct snap_image_info *info)
{
	memset(info, 0, sizeof(*info));
	info->version = rd32(img->hdr + H_VERSION);
	info->flags = img->flags;
	info->generation = img->generation;
	info->size = img->size;
	info->nrefs = img->nrefs;
	info->nobjects = img->nobjects;
	memcpy(info->id, img->id, SNAP_HASH_LEN);
	memcpy(info->parent, img->hdr + H_PARENT, SNAP_HASH_LEN);
	if (img->flags & SNAP_IMAGE_F_SIGNED)
		memcpy(info->sig_keyid, img->sig, SNAP_HASH_LEN);
	info->meta = img->meta;
}

int snap_image_check_sig(const struct snap_image *img, const struct snap_pubkey *keys, size_t nkeys)
{
	uint8_t sum[SNAP_HASH_LEN], sha[32];

	if (!(img->flags & SNAP_IMAGE_F_SIGNED))
		return -ENOKEY;
	for (size_t i = 0; i < nkeys; i++) {
		if (memcmp(keys[i].id, img->sig, SNAP_HASH_LEN))
			continue;
		region_hash(img, SNAP_IMAGE_HEADER_BYTES, sum, sha);
		return snap_verify_digest(&keys[i], sha, img->sig + SNAP_HASH_LEN);
	}
	return -ENOKEY;
}

int snap_image_set_parent(struct snap_image *img, struct snap_image *parent)
{
	if (!(img->flags & SNAP_IMAGE_F_THIN) || memcmp(img->hdr + H_PARENT, parent->id, SNAP_HASH_LEN))
		return -EINVAL;
	img->parent = parent;
	return 0;
}

static int img_locate(void *ctx, int kind, const uint8_t id[SNAP_HASH_LEN], int *fd, uint64_t *off, uint64_t *len)
{
	const struct snap_image *img = ctx;

	for (; img; img = img->parent) {
		const uint8_t *e = find_entry(img, kind, id);
		if (e) {
			*fd = img->fd;
			*off = rd64(e + 40);
			*len = rd64(e + 48);
			return 0;
		}
	}
	return -ENOENT;
}

static int img_ref(void *ctx, const char *name, uint8_t id[SNAP_HASH_LEN])
{
	const struct snap_image *img = ctx;
	uint64_t lo = 0, hi = img->nrefs;

	if (!snap_name_valid(name, strlen(name)))
		return -EINVAL;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		const uint8_t *e = img->table + mid * TABLE_ENTRY;
		int c = strncmp((const char *)e, name, SNAP_NAME_MAX);
		if (c == 0) {
			memcpy(id, e + SNAP_NAME_MAX, SNAP_HASH_LEN);
			return 0;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -ENOENT;
}

void snap_image_source(struct snap_image *img, struct snap_source *src)
{
	src->ctx = img;
	src->locate = img_locate;
	src->ref = img_ref;
}

int snap_image_ref_each(const struct snap_image *img,
			int (*fn)(void *arg, const char *name, const uint8_t id[SNAP_HASH_LEN]), void *arg)
{
	for (uint64_t i = 0; i < img->nrefs; i++) {
		const uint8_t *e = img->table + i * TABLE_ENTRY;
		char name[SNAP_NAME_MAX + 1];
		int rc;

		memcpy(name, e, SNAP_NAME_MAX);
		name[SNAP_NAME_MAX] = 0;
		rc = fn(arg, name, e + SNAP_NAME_MAX);
		if (rc)
			return rc;
	}
	return 0;
}

int snap_image_entry_each(const struct snap_image *img,
			  int (*fn)(void *arg, int kind, const uint8_t id[SNAP_HASH_LEN], uint64_t off, uint64_t len),
			  void *arg)
{
	for (uint64_t i = 0; i < img->nobjects; i++) {
		const uint8_t *e = img->index + i * INDEX_ENTRY;
		int rc = fn(arg, (int)rd32(e + 32), e, rd64(e + 40), rd64(e + 48));
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- builder ---- */

struct item {
	uint8_t e[INDEX_ENTRY];
};

struct build {
	const struct snap_image_build_opts *o;
	struct snap_source src;
	struct item *items;
	size_t n, cap;
	uint8_t *table;
	size_t nrefs, refcap;
	char *err;
	size_t errlen;
};

static int add_item(struct build *b, int kind, const uint8_t id[SNAP_HASH_LEN])
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		struct item *p = realloc(b->items, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		b->items = p;
		b->cap = cap;
	}
	memset(&b->items[b->n], 0, sizeof(b->items[b->n]));
	memcpy(b->items[b->n].e, id, SNAP_HASH_LEN);
	wr32(b->items[b->n].e + 32, (uint32_t)kind);
	b->n++;
	return 0;
}

static int add_object_cb(void *arg, const uint8_t id[SNAP_HASH_LEN])
{
	return add_item(arg, SNAP_KIND_OBJECT, id);
}

/* A manifest, its objects, and its parents as far as the store has them. */
static int add_chain(struct build *b, const uint8_t start[SNAP_HASH_LEN])
{
	uint8_t id[SNAP_HASH_LEN];
	char hex[SNAP_HEX_LEN + 1], perr[160];

	memcpy(id, start, SNAP_HASH_LEN);
	for (int depth = 0; depth < MAX_CHAIN; depth++) {
		struct snap_manifest m;
		uint8_t *buf;
		size_t len;
		int rc;

		snap_hex(id, hex);
		rc = snap_source_read(&b->src, SNAP_KIND_MANIFEST, id, &buf, &len);
		if (rc == -ENOENT && depth > 0)
			return 0;
		if (rc < 0)
			return fail(b->err, b->errlen, rc, "manifest %s: %s", hex, strerror(-rc));
		rc = snap_manifest_parse(buf, len, &m, perr, sizeof(perr));
		free(buf);
		if (rc < 0)
			return fail(b->err, b->errlen, rc, "manifest %s: %s", hex, perr);
		rc = add_item(b, SNAP_KIND_MANIFEST, id);
		if (!rc)
			rc = snap_manifest_each_object(&m, add_object_cb, b);
		if (rc < 0) {
			snap_manifest_free(&m);
			return fail(b->err, b->errlen, rc, "out of memory");
		}
		if (!m.has_parent) {
			snap_manifest_free(&m);
			return 0;
		}
		memcpy(id, m.parent, SNAP_HASH_LEN);
		snap_manifest_free(&m);
	}
	return 0;
}

static int add_ref(struct build *b, const char *name)
{
	uint8_t id[SNAP_HASH_LEN];
	size_t n = strlen(name);
	int rc;

	if (!snap_name_valid(name, n))
		return fail(b->err, b->errlen, -EINVAL, "'%s' is not a valid ref name", name);
	rc = b->src.ref(b->src.ctx, name, id);
	if (rc < 0)
		return fail(b->err, b->errlen, rc, "ref '%s': %s", name, strerror(-rc));
	if (b->nrefs == b->refcap) {
		size_t cap = b->refcap ? b->refcap * 2 : 16;
		uint8_t *p;
		if (cap > MAX_REFS)
			return fail(b->err, b->errlen, -E2BIG, "more than %d refs", MAX_REFS);
		p = realloc(b->table, cap * TABLE_ENTRY);
		if (!p)
			return fail(b->err, b->errlen, -ENOMEM, "out of memory");
		b->table = p;
		b->refcap = cap;
	}
	memset(b->table + b->nrefs * TABLE_ENTRY, 0, TABLE_ENTRY);
	memcpy(b->table + b->nrefs * TABLE_ENTRY, name, n);
	memcpy(b->table + b->nrefs * TABLE_ENTRY + SNAP_NAME_MAX, id, SNAP_HASH_LEN);
	b->nrefs++;
	return add_chain(b, id);
}

static int ref_cb(void *arg, const char *name, const uint8_t id[SNAP_HASH_LEN])
{
	(void)id;
	return add_ref(arg, name);
}

static int created_of(struct snap_source *src, const uint8_t id[SNAP_HASH_LEN], uint64_t *created)
{
	struct snap_manifest m;
	uint8_t *buf;
	size_t len;
	char perr[160];
	int rc = snap_source_read(src, SNAP_KIND_MANIFEST, id, &buf, &len);

	if (rc < 0)
		return rc;
	rc = snap_manifest_parse(buf, len, &m, perr, sizeof(perr));
	free(buf);
	if (rc < 0)
		return rc;
	*created = m.created;
	snap_manifest_free(&m);
	return 0;
}

/*
 * An image built on top of another must not take a sandbox back: each ref it moves must point
 * at a newer manifest (by `created`, as on every other path that activates) than the parent's,
 * and an explicit generation must be above the parent's.
 */
static int check_not_older(struct build *b, struct snap_source *psrc)
{
	struct snap_image_info pi;

	snap_image_get_info(b->o->parent, &pi);
	if (b->o->generation && b->o->generation <= pi.generation)
		return fail(b->err, b->errlen, -ESTALE, "generation %llu is not above the parent image's %llu",
			    (unsigned long long)b->o->generation, (unsigned long long)pi.generation);
	for (size_t i = 0; i < b->nrefs; i++) {
		const char *name = (const char *)b->table + i * TABLE_ENTRY;
		const uint8_t *id = b->table + i * TABLE_ENTRY + SNAP_NAME_MAX;
		uint8_t pid[SNAP_HASH_LEN];
		uint64_t c, pc;
		char nm[SNAP_NAME_MAX + 1];
		int rc;

		snprintf(nm, sizeof(nm), "%.*s", SNAP_NAME_MAX, name);
		if (psrc->ref(psrc->ctx, nm, pid) < 0 || !memcmp(id, pid, SNAP_HASH_LEN))
			continue;
		if ((rc = created_of(&b->src, id, &c)) < 0 || (rc = created_of(psrc, pid, &pc)) < 0)
			return fail(b->err, b->errlen, rc, "ref '%s': manifest unreadable: %s", nm, strerror(-rc));
		if (c <= pc)
			return fail(b->err, b->errlen, -ESTALE, "ref '%s': version %llu (created) is not newer than "
				    "version %llu in the parent image: refused as a downgrade", nm,
				    (unsigned long long)c, (unsigned long long)pc);
	}
	return 0;
}

static int item_qcmp(const void *a, const void *b)
{
	return entry_cmp(((const struct item *)a)->e, ((const struct item *)b)->e);
}

static int name_qcmp(const void *a, const void *b)
{
	return strncmp(a, b, SNAP_NAME_MAX);
}

/* Copies one item from the store into the image, re-hashing as it goes. */
static int copy_item(struct build *b, int out, const uint8_t *e, uint8_t *buf, size_t bufsz)
{
	char hex[SNAP_HEX_LEN + 1];
	uint8_t sum[SNAP_HASH_LEN];
	struct snap_b3 h;
	uint64_t off, len, dst = rd64(e + 40), done = 0;
	int fd, rc, kind = (int)rd32(e + 32);

	snap_hex(e, hex);
	rc = b->src.locate(b->src.ctx, kind, e, &fd, &off, &len);
	if (rc < 0)
		return fail(b->err, b->errlen, rc, "%s %s: %s", kind_name(kind), hex, strerror(-rc));
	if (len != rd64(e + 48))
		return fail(b->err, b->errlen, -EIO, "%s %s changed size while building", kind_name(kind), hex);
	snap_b3_init(&h);
	while (done < len) {
		size_t n = len - done < bufsz ? (size_t)(len - done) : bufsz;
		rc = snap_pread_full(fd, buf, n, off + done);
		if (rc < 0)
			return fail(b->err, b->errlen, rc, "reading %s %s: %s", kind_name(kind), hex, strerror(-rc));
		snap_b3_update(&h, buf, n);
		rc = pwrite_full(out, buf, n, dst + done);
		if (rc < 0)
			return fail(b->err, b->errlen, rc, "writing the image: %s", strerror(-rc));
		done += n;
	}
	snap_b3_final(&h, sum, SNAP_HASH_LEN);
	if (memcmp(sum, e, SNAP_HASH_LEN))
		return fail(b->err, b->errlen, -EBADMSG, "%s %s in the store is corrupt", kind_name(kind), hex);
	return 0;
}

int snap_image_build(const struct snap_image_build_opts *o, char *err, size_t errlen)
{
	struct build b;
	struct snap_image img;
	struct snap_source psrc;
	char tmp[4096], meta[256];
	uint8_t *buf = NULL;
	uint64_t off;
	size_t kept = 0;
	int out = -1, rc;

	memset(&b, 0, sizeof(b));
	memset(&img, 0, sizeof(img));
	b.o = o;
	b.err = err;
	b.errlen = errlen;
	snap_store_source(o->store, &b.src);
	if (o->nrefs) {
		for (size_t i = 0; i < o->nrefs; i++)
			if ((rc = add_ref(&b, o->refs[i])) < 0)
				goto out;
	} else {
		rc = snap_store_ref_each(o->store, ref_cb, &b);
		if (rc < 0) {
			if (!err || !err[0])
				fail(err, errlen, rc, "listing refs: %s", strerror(-rc));
			goto out;
		}
	}
	if (b.nrefs == 0) {
		rc = fail(err, errlen, -ENOENT, "the store has no refs to put in the image");
		goto out;
	}
	qsort(b.table, b.nrefs, TABLE_ENTRY, name_qcmp);
	for (size_t i = 1; i < b.nrefs; i++)
		if (!name_qcmp(b.table + (i - 1) * TABLE_ENTRY, b.table + i * TABLE_ENTRY)) {
			rc = fail(err, errlen, -EINVAL, "ref '%s' given twice", (char *)b.table + i * TABLE_ENTRY);
			goto out;
		}
	qsort(b.items, b.n, sizeof(*b.items), item_qcmp);
	if (o->parent) {
		snap_image_source(o->parent, &psrc);
		if ((rc = check_not_older(&b, &psrc)) < 0)
			goto out;
	}
	/* Dedupe; a thin image leaves out what its parent holds. */
	for (size_t i = 0; i < b.n; i++) {
		int pfd;
		uint64_t poff, plen;
		if (kept && !entry_cmp(b.items[kept - 1].e, b.items[i].e))
			continue;
		if (o->parent && psrc.locate(psrc.ctx, (int)rd32(b.items[i].e + 32), b.items[i].e, &pfd, &poff,
					     &plen) == 0)
			continue;
		b.items[kept++] = b.items[i];
	}
	b.n = kept;
	snprintf(meta, sizeof(meta), "keel-image 1\ncreated %lld\nrefs %zu\nobjects %zu\n", (long long)time(NULL),
		 b.nrefs, b.n);
	img.nrefs = b.nrefs;
	img.nobjects = b.n;
	img.meta_len = strlen(meta);
	img.flags = (o->key ? SNAP_IMAGE_F_SIGNED : 0) | (o->parent ? SNAP_IMAGE_F_THIN : 0);
	off = SNAP_IMAGE_HEADER_BYTES + b.nrefs * TABLE_ENTRY + b.n * INDEX_ENTRY + img.meta_len;
	img.data_off = align_up(off + (o->key ? SIG_BYTES : 0));
	img.size = img.data_off;
	for (size_t i = 0; i < b.n; i++) {
		int fd;
		uint64_t soff, len;
		char hex[SNAP_HEX_LEN + 1];
		int kind = (int)rd32(b.items[i].e + 32);
		rc = b.src.locate(b.src.ctx, kind, b.items[i].e, &fd, &soff, &len);
		if (rc < 0) {
			snap_hex(b.items[i].e, hex);
			fail(err, errlen, rc, "%s %s: %s", kind_name(kind), hex, strerror(-rc));
			goto out;
		}
		wr64(b.items[i].e + 40, img.size);
		wr64(b.items[i].e + 48, len);
		img.size = align_up(img.size + len);
	}

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", o->out) >= sizeof(tmp)) {
		rc = fail(err, errlen, -ENAMETOOLONG, "output path too long");
		goto out;
	}
	out = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		rc = -errno;
		fail(err, errlen, rc, "%s: %s", tmp, strerror(-rc));
		goto out;
	}
	buf = malloc(1 << 20);
	if (!buf) {
		rc = fail(err, errlen, -ENOMEM, "out of memory");
		goto out_unlink;
	}
	for (size_t i = 0; i < b.n; i++)
		if ((rc = copy_item(&b, out, b.items[i].e, buf, 1 << 20)) < 0)
			goto out_unlink;
	if (ftruncate(out, (off_t)img.size) < 0) {
		rc = -errno;
		fail(err, errlen, rc, "sizing the image: %s", strerror(-rc));
		goto out_unlink;
	}

	/* Header, then checksum and signature over header + table + index + metadata. */
	img.table = b.table;
	img.index = (uint8_t *)b.items;
	img.meta = meta;
	memcpy(img.hdr + H_MAGIC, SNAP_IMAGE_MAGIC, 8);
	wr32(img.hdr + H_VERSION, SNAP_IMAGE_VERSION);
	wr32(img.hdr + H_HSIZE, SNAP_IMAGE_HEADER_BYTES);
	wr32(img.hdr + H_BLOCK, SNAP_IMAGE_BLOCK);
	wr32(img.hdr + H_FLAGS, img.flags);
	img.generation = o->generation;
	if (!img.generation) {
		struct snap_image_info pi;
		img.generation = 1;
		if (o->parent) {
			snap_image_get_info(o->parent, &pi);
			img.generation = pi.generation + 1;
		}
	}
	wr64(img.hdr + H_GEN, img.generation);
	wr64(img.hdr + H_SIZE, img.size);
	wr64(img.hdr + H_TABLE_OFF, SNAP_IMAGE_HEADER_BYTES);
	wr64(img.hdr + H_TABLE_N, b.nrefs);
	wr64(img.hdr + H_INDEX_OFF, SNAP_IMAGE_HEADER_BYTES + b.nrefs * TABLE_ENTRY);
	wr64(img.hdr + H_INDEX_N, b.n);
	wr64(img.hdr + H_META_OFF, SNAP_IMAGE_HEADER_BYTES + b.nrefs * TABLE_ENTRY + b.n * INDEX_ENTRY);
	wr64(img.hdr + H_META_LEN, img.meta_len);
	wr64(img.hdr + H_SIG_OFF, off);
	wr64(img.hdr + H_SIG_LEN, o->key ? SIG_BYTES : 0);
	wr64(img.hdr + H_DATA_OFF, img.data_off);
	if (o->parent)
		memcpy(img.hdr + H_PARENT, o->parent->id, SNAP_HASH_LEN);
	region_hash(&img, CSUM_OFF, img.hdr + CSUM_OFF, NULL);
	if (o->key) {
		uint8_t sha[32];
		region_hash(&img, SNAP_IMAGE_HEADER_BYTES, img.id, sha);
		memcpy(img.sig, o->key->pub.id, SNAP_HASH_LEN);
		rc = snap_sign_digest(o->key, sha, img.sig + SNAP_HASH_LEN);
		if (rc < 0) {
			fail(err, errlen, rc, "signing: %s", strerror(-rc));
			goto out_unlink;
		}
	}
	if ((rc = pwrite_full(out, img.hdr, SNAP_IMAGE_HEADER_BYTES, 0)) < 0 ||
	    (rc = pwrite_full(out, b.table, b.nrefs * TABLE_ENTRY, SNAP_IMAGE_HEADER_BYTES)) < 0 ||
	    (rc = pwrite_full(out, b.items, b.n * INDEX_ENTRY, SNAP_IMAGE_HEADER_BYTES + b.nrefs * TABLE_ENTRY)) < 0 ||
	    (rc = pwrite_full(out, meta, img.meta_len, off - img.meta_len)) < 0 ||
	    (o->key && (rc = pwrite_full(out, img.sig, SIG_BYTES, off)) < 0)) {
		fail(err, errlen, rc, "writing the image: %s", strerror(-rc));
		goto out_unlink;
	}
	if (fsync(out) < 0 || rename(tmp, o->out) < 0) {
		rc = -errno;
		fail(err, errlen, rc, "%s: %s", o->out, strerror(-rc));
		goto out_unlink;
	}
	rc = 0;
	goto out;
out_unlink:
	unlink(tmp);
out:
	if (out >= 0)
		close(out);
	free(buf);
	free(b.items);
	free(b.table);
	return rc;
}
