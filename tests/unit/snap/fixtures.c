/* Fixtures shared by the snap unit tests (see fixtures.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"
#include "tests/unit/snap/fixtures.h"

void fx_put(struct fx_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void fx_puts(struct fx_buf *b, const char *s)
{
	fx_put(b, s, strlen(s));
}

static void record(struct fx_buf *b, const char *kw, const void *data, size_t len, uint8_t *id)
{
	uint8_t h[SNAP_HASH_LEN];
	char hex[SNAP_HEX_LEN + 1], line[128];

	snap_b3_hash(data, len, 1, h);
	snap_hex(h, hex);
	snprintf(line, sizeof(line), "%s %s %zu\n", kw, hex, len);
	fx_puts(b, line);
	fx_put(b, data, len);
	if (id)
		memcpy(id, h, sizeof(h));
}

void fx_obj(struct fx_buf *b, const void *data, size_t len, uint8_t *id)
{
	record(b, "obj", data, len, id);
}

void fx_manifest(struct fx_buf *b, const void *data, size_t len, uint8_t *id)
{
	record(b, "manifest", data, len, id);
}

struct snap_store *fx_store(const char *name)
{
	char path[512];
	struct snap_store *s = NULL;

	snprintf(path, sizeof(path), "%s/%s", t_tmpdir(), name);
	if (snap_store_init(path) < 0 || snap_store_open(path, &s) < 0)
		return NULL;
	return s;
}

char *fx_manifest_text(const char *name, const uint8_t obj[SNAP_HASH_LEN], size_t *len)
{
	return fx_manifest_text_at(name, obj, 1700000000, len);
}

char *fx_manifest_text_at(const char *name, const uint8_t obj[SNAP_HASH_LEN], uint64_t created, size_t *len)
{
	struct snap_manifest m;
	char *text = NULL;

	snap_manifest_init(&m);
	snprintf(m.name, sizeof(m.name), "%s", name);
	m.has_kernel = 1;
	memcpy(m.kernel, obj, SNAP_HASH_LEN);
	m.memory_bytes = 2 * 4096;
	m.chunk_bytes = 4096;
	m.chunks = calloc(1, sizeof(*m.chunks));
	m.nchunks = 1;
	m.chunks[0].index = 1;
	memcpy(m.chunks[0].id, obj, SNAP_HASH_LEN);
	memcpy(m.vcpu[0], obj, SNAP_HASH_LEN);
	memcpy(m.vm_state, obj, SNAP_HASH_LEN);
	memcpy(m.devices, obj, SNAP_HASH_LEN);
	m.created = created;
	if (snap_manifest_format(&m, &text, len) < 0)
		text = NULL;
	snap_manifest_free(&m);
	return text;
}

void fx_seed(struct snap_store *s, uint8_t keep_id[SNAP_HASH_LEN])
{
	uint8_t obj[SNAP_HASH_LEN];
	size_t len;
	char *text;

	if (snap_store_put_buf(s, SNAP_KIND_OBJECT, "keep-object", 11, obj) < 0)
		abort();
	text = fx_manifest_text("keep", obj, &len);
	if (!text || snap_store_put_manifest(s, text, len, keep_id, NULL, 0) < 0 ||
	    snap_store_ref_set(s, "keep", keep_id) < 0)
		abort();
	free(text);
}

static int count_temps(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += de->d_name[0] == '~';
	closedir(d);
	return n;
}

int fx_temps(struct snap_store *s)
{
	char path[512];
	int n = 0;

	snprintf(path, sizeof(path), "%s/objects", snap_store_dir(s));
	n += count_temps(path);
	snprintf(path, sizeof(path), "%s/manifests", snap_store_dir(s));
	n += count_temps(path);
	snprintf(path, sizeof(path), "%s/refs", snap_store_dir(s));
	n += count_temps(path);
	snprintf(path, sizeof(path), "%s/logs", snap_store_dir(s));
	n += count_temps(path);
	return n;
}

int fx_intact(struct snap_store *s, const uint8_t keep_id[SNAP_HASH_LEN])
{
	uint8_t id[SNAP_HASH_LEN];

	if (snap_store_verify(s, NULL, NULL) != 0 || fx_temps(s) != 0)
		return 0;
	return snap_store_ref_get(s, "keep", id) == 0 && !memcmp(id, keep_id, SNAP_HASH_LEN);
}

int fx_feed_split(struct snap_pack_rx *rx, const void *buf, size_t len, size_t max, uint32_t seed)
{
	const uint8_t *p = buf;
	uint32_t x = seed ? seed : 1;

	while (len) {
		size_t n;
		int r;
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		n = 1 + x % max;
		if (n > len)
			n = len;
		r = snap_pack_rx_feed(rx, p, n);
		if (r < 0)
			return r;
		p += n;
		len -= n;
	}
	return 0;
}

/* The P-256 group order, big-endian, and n - s for the test's own forgeries. */
static const uint8_t order_n[32] = {
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

void fx_twin_s(uint8_t s[32])
{
	int carry = 0;

	for (int i = 31; i >= 0; i--) {
		int v = order_n[i] - s[i] - carry;

		carry = v < 0;
		s[i] = (uint8_t)(v + (carry ? 256 : 0));
	}
}

/* The (r, n - s) twin of a signed manifest: as valid under plain ECDSA, with another id. */
char *fx_high_s_twin(const uint8_t *sbuf, size_t slen, size_t *tlen)
{
	struct snap_manifest m;
	char *text = NULL;

	if (snap_manifest_parse(sbuf, slen, &m, NULL, 0) != 0)
		return NULL;
	fx_twin_s(m.sig + 32);
	if (snap_manifest_format(&m, &text, tlen) != 0)
		text = NULL;
	snap_manifest_free(&m);
	return text;
}
