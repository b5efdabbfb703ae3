/* BLAKE3: portable compression, run-time path selection, the tree, and the incremental hasher. */
/*
 * IMPLEMENTATION NOTES
 * The input is split into 1024-byte chunks; each chunk is hashed to a
 * chaining value (CV) and CVs are combined by parent nodes into a binary tree
 * whose every left subtree holds a power of two of chunks. The root node (a
 * lone chunk or the top parent) is compressed with ROOT, and its output is
 * extendable by running the root compression with counter 0, 1, 2, ...
 *
 * Speed comes from hashing many chunks (and many parents) at once on SIMD
 * lanes: whole subtrees are hashed level by level in batches of BATCH chunks
 * (pairing adjacent CVs, carrying an odd last one up unchanged, which yields
 * exactly the left-filled tree of the spec).
 *
 * The incremental hasher keeps a stack of subtree CVs and merges it lazily:
 * before adding a subtree that starts at chunk c, it merges the top two
 * entries while there are more entries than 1-bits in c. Merging only when
 * more input has arrived guarantees that the node that turns out to be the
 * root is never compressed without ROOT.
 */
#include <cpuid.h>
#include <errno.h>
#include <string.h>

#include "snap/blake3_int.h"
#include "snap/snap.h"

/* Chunks per batch hashed to CVs at once; 32 bytes of stack each. */
#ifndef BATCH
#define BATCH 256
#endif

const uint32_t snap_b3_iv[8] = B3_IV_INIT;

static const uint8_t sched[7][16] = B3_SCHED_INIT;

/* ---- portable compression ----------------------------------------------- */

static inline uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void st32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t rotr(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

#define G(a, b, c, d, x, y)                       \
	do {                                      \
		v[a] = v[a] + v[b] + (x);         \
		v[d] = rotr(v[d] ^ v[a], 16);     \
		v[c] = v[c] + v[d];               \
		v[b] = rotr(v[b] ^ v[c], 12);     \
		v[a] = v[a] + v[b] + (y);         \
		v[d] = rotr(v[d] ^ v[a], 8);      \
		v[c] = v[c] + v[d];               \
		v[b] = rotr(v[b] ^ v[c], 7);      \
	} while (0)

static void compress_state(uint32_t v[16], const uint32_t cv[8], const uint8_t block[64],
			   uint8_t block_len, uint64_t counter, uint8_t flags)
{
	uint32_t m[16];

	for (int i = 0; i < 16; i++)
		m[i] = ld32(block + 4 * i);
	for (int i = 0; i < 8; i++)
		v[i] = cv[i];
	v[8] = snap_b3_iv[0];
	v[9] = snap_b3_iv[1];
	v[10] = snap_b3_iv[2];
	v[11] = snap_b3_iv[3];
	v[12] = (uint32_t)counter;
	v[13] = (uint32_t)(counter >> 32);
	v[14] = block_len;
	v[15] = flags;
	B3_UNROLL
	for (int r = 0; r < 7; r++) {
		const uint8_t *s = sched[r];

		G(0, 4, 8, 12, m[s[0]], m[s[1]]);
		G(1, 5, 9, 13, m[s[2]], m[s[3]]);
		G(2, 6, 10, 14, m[s[4]], m[s[5]]);
		G(3, 7, 11, 15, m[s[6]], m[s[7]]);
		G(0, 5, 10, 15, m[s[8]], m[s[9]]);
		G(1, 6, 11, 12, m[s[10]], m[s[11]]);
		G(2, 7, 8, 13, m[s[12]], m[s[13]]);
		G(3, 4, 9, 14, m[s[14]], m[s[15]]);
	}
}

static void compress_in_place(uint32_t cv[8], const uint8_t block[64], uint8_t block_len,
			      uint64_t counter, uint8_t flags)
{
	uint32_t v[16];

	compress_state(v, cv, block, block_len, counter, flags);
	for (int i = 0; i < 8; i++)
		cv[i] = v[i] ^ v[i + 8];
}

static void compress_xof(const uint32_t cv[8], const uint8_t block[64], uint8_t block_len,
			 uint64_t counter, uint8_t flags, uint8_t out[64])
{
	uint32_t v[16];

	compress_state(v, cv, block, block_len, counter, flags);
	for (int i = 0; i < 8; i++) {
		st32(out + 4 * i, v[i] ^ v[i + 8]);
		st32(out + 32 + 4 * i, v[i + 8] ^ cv[i]);
	}
}

static void store_cv(uint8_t out[32], const uint32_t cv[8])
{
	for (int i = 0; i < 8; i++)
		st32(out + 4 * i, cv[i]);
}

static void portable_one(const uint8_t *in, size_t nblocks, const uint32_t key[8],
			 uint64_t counter, uint8_t flags, uint8_t fstart, uint8_t fend,
			 uint8_t out[32])
{
	uint32_t cv[8];

	memcpy(cv, key, sizeof(cv));
	for (size_t b = 0; b < nblocks; b++) {
		uint8_t f = flags;

		if (b == 0)
			f |= fstart;
		if (b + 1 == nblocks)
			f |= fend;
		compress_in_place(cv, in + b * B3_BLOCK_LEN, B3_BLOCK_LEN, counter, f);
	}
	store_cv(out, cv);
}

/* ---- run-time path selection -------------------------------------------- */

enum { LVL_PORTABLE, LVL_SSE41, LVL_AVX2, LVL_AVX512, LVL_N };
static const char *const lvl_names[LVL_N] = { "portable", "sse41", "avx2", "avx512" };

static int detected = -1; /* best level this CPU runs */
static int selected = -1; /* level in use (detected unless forced) */

static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (uint64_t)hi << 32 | lo;
}

static int detect(void)
{
	unsigned a, b, c, d;
	int lvl = LVL_PORTABLE;
	uint64_t xcr0;

	if (!__get_cpuid(1, &a, &b, &c, &d))
		return lvl;
	if (c & bit_SSE4_1)
		lvl = LVL_SSE41;
	/* AVX state must be enabled by the OS, not only present in the CPU. */
	if (!(c & bit_OSXSAVE) || !(c & bit_AVX))
		return lvl;
	xcr0 = xgetbv0();
	if ((xcr0 & 0x6) != 0x6 || __get_cpuid_max(0, NULL) < 7)
		return lvl;
	__cpuid_count(7, 0, a, b, c, d);
	if (b & bit_AVX2)
		lvl = LVL_AVX2;
	/* opmask, ZMM_Hi256 and Hi16_ZMM state (XCR0 bits 5-7) plus XMM/YMM. */
	if ((b & bit_AVX512F) && (b & bit_AVX512VL) && (xcr0 & 0xe6) == 0xe6)
		lvl = LVL_AVX512;
	return lvl;
}

static int level(void)
{
	int l = __atomic_load_n(&selected, __ATOMIC_RELAXED);

	if (l < 0) {
		/* Racing first callers compute the same answer; either store wins. */
		l = detect();
		__atomic_store_n(&detected, l, __ATOMIC_RELAXED);
		__atomic_store_n(&selected, l, __ATOMIC_RELAXED);
	}
	return l;
}

const char *snap_b3_impl(void)
{
	return lvl_names[level()];
}

int snap_b3_force_impl(const char *name)
{
	level();
	for (int i = 0; i < LVL_N; i++) {
		if (strcmp(name, lvl_names[i]))
			continue;
		if (i > __atomic_load_n(&detected, __ATOMIC_RELAXED))
			return -ENOTSUP;
		__atomic_store_n(&selected, i, __ATOMIC_RELAXED);
		return 0;
	}
	return -EINVAL;
}

void snap_b3_many(const uint8_t *in, size_t stride, size_t n, size_t nblocks,
		  const uint32_t key[8], uint64_t counter, int inc, uint8_t flags,
		  uint8_t fstart, uint8_t fend, uint8_t *out)
{
	static const struct {
		int lvl;
		size_t lanes;
		snap_b3_lanes_fn *fn;
	} paths[] = {
		{ LVL_AVX512, 16, snap_b3_lanes16_avx512 },
		{ LVL_AVX2, 8, snap_b3_lanes8_avx2 },
		{ LVL_SSE41, 4, snap_b3_lanes4_sse41 },
	};
	int lvl = level();

	for (size_t p = 0; p < sizeof(paths) / sizeof(paths[0]); p++) {
		size_t w = paths[p].lanes;

		if (lvl < paths[p].lvl)
			continue;
		while (n >= w) {
			paths[p].fn(in, stride, nblocks, key, counter, inc, flags, fstart, fend, out);
			in += w * stride;
			out += w * B3_OUT_LEN;
			counter += inc ? w : 0;
			n -= w;
		}
	}
	for (; n > 0; n--) {
		portable_one(in, nblocks, key, counter, flags, fstart, fend, out);
		in += stride;
		out += B3_OUT_LEN;
		counter += inc ? 1 : 0;
	}
}

/* ---- nodes and the tree ------------------------------------------------- */

/* A node not yet compressed: its last compression can give a CV or root output. */
struct b3_output {
	uint32_t cv[8];
	uint8_t block[64];
	uint64_t counter;
	uint8_t block_len;
	uint8_t flags;
};

static void output_cv(const struct b3_output *o, uint8_t out[32])
{
	uint32_t cv[8];

	memcpy(cv, o->cv, sizeof(cv));
	compress_in_place(cv, o->block, o->block_len, o->counter, o->flags);
	store_cv(out, cv);
}

static void output_root(const struct b3_output *o, uint8_t *out, size_t outlen)
{
	uint8_t blk[64];

	for (uint64_t n = 0; outlen > 0; n++) {
		size_t take = outlen < sizeof(blk) ? outlen : sizeof(blk);

		compress_xof(o->cv, o->block, o->block_len, n, o->flags | B3_ROOT, blk);
		memcpy(out, blk, take);
		out += take;
		outlen -= take;
	}
}

static void parent_output(const uint8_t cvs[64], const uint32_t key[8], uint8_t flags,
			  struct b3_output *o)
{
	memcpy(o->cv, key, sizeof(o->cv));
	memcpy(o->block, cvs, 64);
	o->counter = 0;
	o->block_len = B3_BLOCK_LEN;
	o->flags = flags | B3_PARENT;
}

/* A chunk of 0..1024 bytes with everything but its last block compressed. */
static void chunk_output(const uint8_t *in, size_t len, const uint32_t key[8], uint64_t counter,
			 uint8_t flags, struct b3_output *o)
{
	size_t nb = len ? (len - 1) / B3_BLOCK_LEN : 0;

	memcpy(o->cv, key, sizeof(o->cv));
	for (size_t b = 0; b < nb; b++)
		compress_in_place(o->cv, in + b * B3_BLOCK_LEN, B3_BLOCK_LEN, counter,
				  flags | (b == 0 ? B3_CHUNK_START : 0));
	memset(o->block, 0, sizeof(o->block));
	memcpy(o->block, in + nb * B3_BLOCK_LEN, len - nb * B3_BLOCK_LEN);
	o->block_len = (uint8_t)(len - nb * B3_BLOCK_LEN);
	o->counter = counter;
	o->flags = flags | B3_CHUNK_END | (nb == 0 ? B3_CHUNK_START : 0);
}

/* CVs of every chunk of in[0..len), 0 < len <= BATCH chunks; returns how many. */
static size_t level_cvs(const uint8_t *in, size_t len, uint64_t counter, const uint32_t key[8],
			uint8_t flags, uint8_t *out)
{
	size_t full = len / B3_CHUNK_LEN, rest = len % B3_CHUNK_LEN;

	if (full)
		snap_b3_many(in, B3_CHUNK_LEN, full, B3_CHUNK_LEN / B3_BLOCK_LEN, key, counter, 1,
			     flags, B3_CHUNK_START, B3_CHUNK_END, out);
	if (rest) {
		struct b3_output o;

		chunk_output(in + full * B3_CHUNK_LEN, rest, key, counter + full, flags, &o);
		output_cv(&o, out + full * B3_OUT_LEN);
		full++;
	}
	return full;
}

/*
 * One tree level up: CV pairs to parent CVs, an odd last CV carried up.
 * In place is safe: each lane group reads its inputs before writing, and
 * writes only below the inputs still to be read.
 */
static size_t reduce_once(uint8_t *cvs, size_t n, const uint32_t key[8], uint8_t flags)
{
	size_t np = n / 2;

	snap_b3_many(cvs, 2 * B3_OUT_LEN, np, 1, key, 0, 0, flags | B3_PARENT, 0, 0, cvs);
	if (n & 1) {
		memmove(cvs + np * B3_OUT_LEN, cvs + (n - 1) * B3_OUT_LEN, B3_OUT_LEN);
		np++;
	}
	return np;
}

void snap_b3_reduce_to_two(uint8_t *cvs, size_t n, const uint32_t key[8], uint8_t flags)
{
	while (n > 2)
		n = reduce_once(cvs, n, key, flags);
}

void snap_b3_root_parent(const uint8_t cvs[64], const uint32_t key[8], uint8_t flags,
			 uint8_t *out, size_t outlen)
{
	struct b3_output o;

	parent_output(cvs, key, flags, &o);
	output_root(&o, out, outlen);
}

/* Bytes in the left subtree of a node of len > 1024 bytes: a power of two of chunks. */
static size_t left_len(size_t len)
{
	uint64_t full = (len - 1) / B3_CHUNK_LEN;

	return (size_t)(UINT64_C(1) << (63 - __builtin_clzll(full))) * B3_CHUNK_LEN;
}

/* CV of a node of at most BATCH chunks; its own frame keeps the big array off the recursion. */
static __attribute__((noinline)) void batch_node_cv(const uint8_t *in, size_t len, uint64_t counter,
						     const uint32_t key[8], uint8_t flags,
						     uint8_t out[32])
{
	uint8_t cvs[BATCH * B3_OUT_LEN];
	size_t n = level_cvs(in, len, counter, key, flags, cvs);

	while (n > 1)
		n = reduce_once(cvs, n, key, flags);
	memcpy(out, cvs, B3_OUT_LEN);
}

void snap_b3_node_cv(const uint8_t *in, size_t len, uint64_t counter, const uint32_t key[8],
		     uint8_t flags, uint8_t out[32])
{
	uint8_t pair[64];
	struct b3_output o;
	size_t left;

	if (len <= (size_t)BATCH * B3_CHUNK_LEN) {
		batch_node_cv(in, len, counter, key, flags, out);
		return;
	}
	left = left_len(len);
	snap_b3_node_cv(in, left, counter, key, flags, pair);
	snap_b3_node_cv(in + left, len - left, counter + left / B3_CHUNK_LEN, key, flags,
			pair + B3_OUT_LEN);
	parent_output(pair, key, flags, &o);
	output_cv(&o, out);
}

/* The two child CVs of a complete subtree of s >= 2 chunks (a power of two). */
static void subtree_two_cvs(const uint8_t *in, uint64_t s, uint64_t counter,
			    const uint32_t key[8], uint8_t flags, uint8_t out[64])
{
	size_t half = (size_t)s / 2 * B3_CHUNK_LEN;

	if (s <= BATCH) {
		uint8_t cvs[BATCH * B3_OUT_LEN];
		size_t n = level_cvs(in, (size_t)s * B3_CHUNK_LEN, counter, key, flags, cvs);

		snap_b3_reduce_to_two(cvs, n, key, flags);
		memcpy(out, cvs, 64);
		return;
	}
	snap_b3_node_cv(in, half, counter, key, flags, out);
	snap_b3_node_cv(in + half, half, counter + s / 2, key, flags, out + B3_OUT_LEN);
}

void snap_b3_hash_root(const uint8_t *in, size_t len, const uint32_t key[8], uint8_t flags,
		       uint8_t *out, size_t outlen)
{
	uint8_t cvs[64];
	struct b3_output o;
	size_t left;

	if (len <= B3_CHUNK_LEN) {
		chunk_output(in, len, key, 0, flags, &o);
		output_root(&o, out, outlen);
		return;
	}
	if (len <= (size_t)BATCH * B3_CHUNK_LEN) {
		uint8_t batch[BATCH * B3_OUT_LEN];
		size_t n = level_cvs(in, len, 0, key, flags, batch);

		snap_b3_reduce_to_two(batch, n, key, flags);
		snap_b3_root_parent(batch, key, flags, out, outlen);
		return;
	}
	left = left_len(len);
	snap_b3_node_cv(in, left, 0, key, flags, cvs);
	snap_b3_node_cv(in + left, len - left, left / B3_CHUNK_LEN, key, flags, cvs + B3_OUT_LEN);
	snap_b3_root_parent(cvs, key, flags, out, outlen);
}

/* ---- incremental hasher ------------------------------------------------- */

static void hasher_init(struct snap_b3 *h, const uint32_t key[8], uint8_t flags)
{
	memcpy(h->key, key, sizeof(h->key));
	memcpy(h->cv, key, sizeof(h->cv));
	h->chunk_counter = 0;
	memset(h->buf, 0, sizeof(h->buf));
	h->buf_len = 0;
	h->blocks_compressed = 0;
	h->flags = flags;
	h->stack_len = 0;
}

void snap_b3_init(struct snap_b3 *h)
{
	hasher_init(h, snap_b3_iv, 0);
}

void snap_b3_init_keyed(struct snap_b3 *h, const uint8_t key[32])
{
	uint32_t k[8];

	for (int i = 0; i < 8; i++)
		k[i] = ld32(key + 4 * i);
	hasher_init(h, k, B3_KEYED_HASH);
}

void snap_b3_init_derive_key(struct snap_b3 *h, const char *context)
{
	uint8_t ck[32];
	uint32_t k[8];

	hasher_init(h, snap_b3_iv, B3_DERIVE_KEY_CONTEXT);
	snap_b3_update(h, context, strlen(context));
	snap_b3_final(h, ck, sizeof(ck));
	for (int i = 0; i < 8; i++)
		k[i] = ld32(ck + 4 * i);
	hasher_init(h, k, B3_DERIVE_KEY_MATERIAL);
}

/* Lazy merge before adding a subtree that starts at chunk `at` (see the notes). */
static void merge_stack(struct snap_b3 *h, uint64_t at)
{
	while (h->stack_len > __builtin_popcountll(at)) {
		uint8_t *pair = h->stack + (h->stack_len - 2) * B3_OUT_LEN;
		struct b3_output o;

		parent_output(pair, h->key, h->flags, &o);
		output_cv(&o, pair);
		h->stack_len--;
	}
}

static int chunk_in_progress(const struct snap_b3 *h)
{
	return h->buf_len || h->blocks_compressed;
}

/* The full chunk in progress is not the last one: compress its last block, push its CV. */
static void finish_chunk(struct snap_b3 *h)
{
	uint8_t f = h->flags | B3_CHUNK_END | (h->blocks_compressed ? 0 : B3_CHUNK_START);

	compress_in_place(h->cv, h->buf, h->buf_len, h->chunk_counter, f);
	merge_stack(h, h->chunk_counter);
	store_cv(h->stack + h->stack_len * B3_OUT_LEN, h->cv);
	h->stack_len++;
	h->chunk_counter++;
	memcpy(h->cv, h->key, sizeof(h->cv));
	h->buf_len = 0;
	h->blocks_compressed = 0;
}

void snap_b3_update(struct snap_b3 *h, const void *buf, size_t len)
{
	const uint8_t *in = buf;

	while (len > 0) {
		if (chunk_in_progress(h)) {
			size_t take;

			if (h->blocks_compressed == B3_CHUNK_LEN / B3_BLOCK_LEN - 1 &&
			    h->buf_len == B3_BLOCK_LEN) {
				finish_chunk(h);
				continue;
			}
			if (h->buf_len == B3_BLOCK_LEN) {
				compress_in_place(h->cv, h->buf, B3_BLOCK_LEN, h->chunk_counter,
						  h->flags | (h->blocks_compressed ? 0 : B3_CHUNK_START));
				h->blocks_compressed++;
				h->buf_len = 0;
			}
			/* Whole blocks straight from the input, but never the chunk's
			 * last block nor the input's last bytes: those wait in buf. */
			while (h->buf_len == 0 && len > B3_BLOCK_LEN &&
			       h->blocks_compressed < B3_CHUNK_LEN / B3_BLOCK_LEN - 1) {
				compress_in_place(h->cv, in, B3_BLOCK_LEN, h->chunk_counter, h->flags);
				h->blocks_compressed++;
				in += B3_BLOCK_LEN;
				len -= B3_BLOCK_LEN;
			}
			take = B3_BLOCK_LEN - h->buf_len;
			if (take > len)
				take = len;
			memcpy(h->buf + h->buf_len, in, take);
			h->buf_len += (uint8_t)take;
			in += take;
			len -= take;
			continue;
		}
		if (len > B3_CHUNK_LEN) {
			/* Whole subtrees straight from the input, never the last chunk:
			 * it stays in the chunk state in case it is the root. */
			uint64_t s = UINT64_C(1) << (63 - __builtin_clzll((uint64_t)(len / B3_CHUNK_LEN)));

			while (h->chunk_counter & (s - 1))
				s >>= 1;
			merge_stack(h, h->chunk_counter);
			if (s == 1) {
				snap_b3_many(in, B3_CHUNK_LEN, 1, B3_CHUNK_LEN / B3_BLOCK_LEN, h->key,
					     h->chunk_counter, 1, h->flags, B3_CHUNK_START,
					     B3_CHUNK_END, h->stack + h->stack_len * B3_OUT_LEN);
				h->stack_len++;
			} else {
				subtree_two_cvs(in, s, h->chunk_counter, h->key, h->flags,
						h->stack + h->stack_len * B3_OUT_LEN);
				h->stack_len += 2;
			}
			h->chunk_counter += s;
			in += s * B3_CHUNK_LEN;
			len -= s * B3_CHUNK_LEN;
			continue;
		}
		/* Input follows the subtrees pushed so far, so none of them is the root. */
		merge_stack(h, h->chunk_counter);
		h->buf_len = (uint8_t)(len < B3_BLOCK_LEN ? len : B3_BLOCK_LEN);
		memcpy(h->buf, in, h->buf_len);
		in += h->buf_len;
		len -= h->buf_len;
	}
}

void snap_b3_final(const struct snap_b3 *h, uint8_t *out, size_t outlen)
{
	struct b3_output o;
	size_t i = h->stack_len;

	if (chunk_in_progress(h) || i == 0) {
		memcpy(o.cv, h->cv, sizeof(o.cv));
		memset(o.block, 0, sizeof(o.block));
		memcpy(o.block, h->buf, h->buf_len);
		o.block_len = h->buf_len;
		o.counter = h->chunk_counter;
		o.flags = h->flags | B3_CHUNK_END | (h->blocks_compressed ? 0 : B3_CHUNK_START);
	} else {
		/* The input ended on a subtree boundary: the top two entries are the root's children. */
		parent_output(h->stack + (i - 2) * B3_OUT_LEN, h->key, h->flags, &o);
		i -= 2;
	}
	while (i > 0) {
		uint8_t pair[64];

		memcpy(pair, h->stack + (i - 1) * B3_OUT_LEN, B3_OUT_LEN);
		output_cv(&o, pair + B3_OUT_LEN);
		parent_output(pair, h->key, h->flags, &o);
		i--;
	}
	output_root(&o, out, outlen);
}
