/* snap: BLAKE3, the object store, manifests, SNAPPACK 1, CAR v1 and the partition image. */
#ifndef KEEL_SNAP_H
#define KEEL_SNAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- BLAKE3-256 (snap/blake3*.c) ---------------------------------------- */

#define SNAP_HASH_LEN 32
#define SNAP_HEX_LEN 64

/* Incremental hasher; caller-allocated, no interior pointers, copyable. */
struct snap_b3 {
	uint32_t key[8];
	uint32_t cv[8];          /* chaining value of the chunk in progress */
	uint64_t chunk_counter;
	uint8_t buf[64];         /* partial block of the chunk in progress */
	uint8_t buf_len;
	uint8_t blocks_compressed;
	uint8_t flags;
	uint8_t stack_len;
	uint8_t stack[55 * 32];  /* chaining values of completed subtrees */
};

void snap_b3_init(struct snap_b3 *h);
void snap_b3_init_keyed(struct snap_b3 *h, const uint8_t key[32]);
void snap_b3_init_derive_key(struct snap_b3 *h, const char *context);
void snap_b3_update(struct snap_b3 *h, const void *buf, size_t len);
/* Extendable output: any outlen; does not change h (more updates may follow). */
void snap_b3_final(const struct snap_b3 *h, uint8_t *out, size_t outlen);
/* One-shot hash of a buffer using up to nthreads threads (0: one per online CPU). */
void snap_b3_hash(const void *buf, size_t len, int nthreads, uint8_t out[SNAP_HASH_LEN]);
/* Name of the compression path picked at run time: "avx2", "sse41" or "portable". */
const char *snap_b3_impl(void);
/* Forces a path by name ("portable", "sse41", "avx2"); -ENOTSUP if the CPU lacks it. */
int snap_b3_force_impl(const char *name);

/* ---- content addresses -------------------------------------------------- */

/* Lowercase hex of a hash, NUL-terminated (65 bytes). */
void snap_hex(const uint8_t h[SNAP_HASH_LEN], char out[SNAP_HEX_LEN + 1]);
/* 1 when s[0..len) is exactly 64 lowercase hex characters. */
int snap_is_hex64(const char *s, size_t len);
/* Parses a hex64; 0 or -EINVAL. */
int snap_unhex(const char *s, size_t len, uint8_t out[SNAP_HASH_LEN]);

/* ---- wire --------------------------------------------------------------- */

/* Prints the SNAPPACK wire version and capabilities (`keel version --capabilities`). */
int snap_print_capabilities(FILE *f);

#endif
