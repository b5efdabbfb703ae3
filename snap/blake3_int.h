/* BLAKE3 internals shared by the portable, SIMD and multithreaded files of snap/ (not public). */
#ifndef KEEL_SNAP_BLAKE3_INT_H
#define KEEL_SNAP_BLAKE3_INT_H

#include <stddef.h>
#include <stdint.h>

#define B3_BLOCK_LEN 64
#define B3_CHUNK_LEN 1024
#define B3_OUT_LEN 32

/* Domain flags of the compression function (BLAKE3 spec, table 3). */
enum {
	B3_CHUNK_START = 1 << 0,
	B3_CHUNK_END = 1 << 1,
	B3_PARENT = 1 << 2,
	B3_ROOT = 1 << 3,
	B3_KEYED_HASH = 1 << 4,
	B3_DERIVE_KEY_CONTEXT = 1 << 5,
	B3_DERIVE_KEY_MATERIAL = 1 << 6,
};

/*
 * The SIMD kernels keep their state and message in arrays of vectors; only
 * fully unrolled loops let the compiler hold those in registers instead of
 * on the stack (worth 25% at -O2).
 */
#define B3_UNROLL _Pragma("GCC unroll 16")

extern const uint32_t snap_b3_iv[8];
#define B3_IV_INIT \
	{ 0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19 }
/*
 * Message word order of each of the 7 rounds: the spec's permutation applied
 * r times. A macro so every file can hold a static copy the compiler folds.
 */
#define B3_SCHED_INIT                                                        \
	{                                                                    \
		{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },    \
		{ 2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8 },    \
		{ 3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1 },    \
		{ 10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6 },    \
		{ 12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4 },    \
		{ 9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7 },    \
		{ 11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13 },    \
	}

/*
 * The wide primitive every SIMD path offers: hash LANES independent inputs
 * side by side. Input k starts at in + k*stride and is nblocks full 64-byte
 * blocks long; it starts from cv = key and uses counter + k (inc) or counter
 * (!inc). Every block gets `flags`, the first also `fstart`, the last also
 * `fend`. Lane k's 32-byte chaining value goes to out + 32*k.
 * Chunks: stride 1024, nblocks 16, inc, fstart CHUNK_START, fend CHUNK_END.
 * Parents: stride 64, nblocks 1, !inc, flags | PARENT.
 */
typedef void snap_b3_lanes_fn(const uint8_t *in, size_t stride, size_t nblocks,
			      const uint32_t key[8], uint64_t counter, int inc, uint8_t flags,
			      uint8_t fstart, uint8_t fend, uint8_t *out);

snap_b3_lanes_fn snap_b3_lanes4_sse41;  /* 4 inputs */
snap_b3_lanes_fn snap_b3_lanes8_avx2;   /* 8 inputs */
snap_b3_lanes_fn snap_b3_lanes16_avx512; /* 16 inputs */

/* Same contract for any number n of inputs, on the widest path selected. */
void snap_b3_many(const uint8_t *in, size_t stride, size_t n, size_t nblocks,
		  const uint32_t key[8], uint64_t counter, int inc, uint8_t flags,
		  uint8_t fstart, uint8_t fend, uint8_t *out);

/*
 * Chaining value of one non-root node of the tree: the subtree covering
 * in[0..len), whose first chunk has index `counter`. len > 0 and the range
 * must be a real node (counter aligned to the largest power of two of chunks
 * below len, or the input's rightmost node).
 */
void snap_b3_node_cv(const uint8_t *in, size_t len, uint64_t counter, const uint32_t key[8],
		     uint8_t flags, uint8_t out[32]);

/* Root output (outlen bytes) of the whole input in[0..len), on this thread. */
void snap_b3_hash_root(const uint8_t *in, size_t len, const uint32_t key[8], uint8_t flags,
		       uint8_t *out, size_t outlen);

/* Reduces n > 2 adjacent chaining values (in place) to the two children of the root. */
void snap_b3_reduce_to_two(uint8_t *cvs, size_t n, const uint32_t key[8], uint8_t flags);

/* Root output of the parent of two chaining values (64 bytes at cvs), outlen bytes. */
void snap_b3_root_parent(const uint8_t cvs[64], const uint32_t key[8], uint8_t flags,
			 uint8_t *out, size_t outlen);

#endif
