/* Fixtures shared by the snap unit tests: stores, streams and manifests built on the fly. */
#ifndef KEEL_TEST_SNAP_FIXTURES_H
#define KEEL_TEST_SNAP_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "snap/snap.h"

struct fx_buf {
	uint8_t *p;
	size_t len, cap;
};

void fx_put(struct fx_buf *b, const void *p, size_t n);
void fx_puts(struct fx_buf *b, const char *s);
/* Appends "obj <id> <len>\n" + payload; id (may be NULL) gets the object's id. */
void fx_obj(struct fx_buf *b, const void *data, size_t len, uint8_t *id);
/* Appends a manifest record for buf[0..len). */
void fx_manifest(struct fx_buf *b, const void *data, size_t len, uint8_t *id);

/* A fresh store at <tmpdir>/NAME (created and opened). */
struct snap_store *fx_store(const char *name);
/*
 * Fills a manifest named NAME whose every object slot points at obj (the
 * caller makes sure obj is present); returns its canonical bytes (malloc'd).
 */
char *fx_manifest_text(const char *name, const uint8_t obj[SNAP_HASH_LEN], size_t *len);
/* The same with another `created` (the version anti-rollback compares). */
char *fx_manifest_text_at(const char *name, const uint8_t obj[SNAP_HASH_LEN], uint64_t created, size_t *len);
/* Puts an object "keep-object" and a manifest for it, and points ref "keep" at it. */
void fx_seed(struct snap_store *s, uint8_t keep_id[SNAP_HASH_LEN]);
/* 1 when verify finds nothing, no temp file is left and ref "keep" still points at keep_id. */
int fx_intact(struct snap_store *s, const uint8_t keep_id[SNAP_HASH_LEN]);
/* Feeds len bytes in pseudo-random slices (1..max bytes, seeded); returns the first error. */
int fx_feed_split(struct snap_pack_rx *rx, const void *buf, size_t len, size_t max, uint32_t seed);
/* Count of leftover temp files in the store's directories. */
int fx_temps(struct snap_store *s);

/* s = n - s on P-256; the (r, n - s) twin of a signed manifest (malloc'd, NULL if unparsable). */
void fx_twin_s(uint8_t s[32]);
char *fx_high_s_twin(const uint8_t *sbuf, size_t slen, size_t *tlen);

#endif
