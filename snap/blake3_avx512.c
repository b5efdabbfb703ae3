/* BLAKE3 on AVX-512: sixteen inputs hashed side by side, one input per 32-bit lane. */
#include <immintrin.h>

#include "snap/blake3_int.h"

static const uint8_t sched[7][16] = B3_SCHED_INIT;
static const uint32_t iv[8] = B3_IV_INIT;

#define V __m512i
#ifndef PREFETCH
#define PREFETCH 128
#endif

static inline V add(V a, V b)
{
	return _mm512_add_epi32(a, b);
}

static inline V xor(V a, V b)
{
	return _mm512_xor_si512(a, b);
}

/*
 * Four G functions side by side, step by step: (a,b,c,d) index the first,
 * the others are the next columns (or diagonals) of the state.
 */
#define G4(a0, b0, c0, d0, a1, b1, c1, d1, a2, b2, c2, d2, a3, b3, c3, d3, r, o)        \
	do {                                                                               \
		v[a0] = add(add(v[a0], v[b0]), m[sched[r][o + 0]]);                        \
		v[a1] = add(add(v[a1], v[b1]), m[sched[r][o + 2]]);                        \
		v[a2] = add(add(v[a2], v[b2]), m[sched[r][o + 4]]);                        \
		v[a3] = add(add(v[a3], v[b3]), m[sched[r][o + 6]]);                        \
		v[d0] = _mm512_ror_epi32(xor(v[d0], v[a0]), 16);                           \
		v[d1] = _mm512_ror_epi32(xor(v[d1], v[a1]), 16);                           \
		v[d2] = _mm512_ror_epi32(xor(v[d2], v[a2]), 16);                           \
		v[d3] = _mm512_ror_epi32(xor(v[d3], v[a3]), 16);                           \
		v[c0] = add(v[c0], v[d0]);                                                 \
		v[c1] = add(v[c1], v[d1]);                                                 \
		v[c2] = add(v[c2], v[d2]);                                                 \
		v[c3] = add(v[c3], v[d3]);                                                 \
		v[b0] = _mm512_ror_epi32(xor(v[b0], v[c0]), 12);                           \
		v[b1] = _mm512_ror_epi32(xor(v[b1], v[c1]), 12);                           \
		v[b2] = _mm512_ror_epi32(xor(v[b2], v[c2]), 12);                           \
		v[b3] = _mm512_ror_epi32(xor(v[b3], v[c3]), 12);                           \
		v[a0] = add(add(v[a0], v[b0]), m[sched[r][o + 1]]);                        \
		v[a1] = add(add(v[a1], v[b1]), m[sched[r][o + 3]]);                        \
		v[a2] = add(add(v[a2], v[b2]), m[sched[r][o + 5]]);                        \
		v[a3] = add(add(v[a3], v[b3]), m[sched[r][o + 7]]);                        \
		v[d0] = _mm512_ror_epi32(xor(v[d0], v[a0]), 8);                            \
		v[d1] = _mm512_ror_epi32(xor(v[d1], v[a1]), 8);                            \
		v[d2] = _mm512_ror_epi32(xor(v[d2], v[a2]), 8);                            \
		v[d3] = _mm512_ror_epi32(xor(v[d3], v[a3]), 8);                            \
		v[c0] = add(v[c0], v[d0]);                                                 \
		v[c1] = add(v[c1], v[d1]);                                                 \
		v[c2] = add(v[c2], v[d2]);                                                 \
		v[c3] = add(v[c3], v[d3]);                                                 \
		v[b0] = _mm512_ror_epi32(xor(v[b0], v[c0]), 7);                            \
		v[b1] = _mm512_ror_epi32(xor(v[b1], v[c1]), 7);                            \
		v[b2] = _mm512_ror_epi32(xor(v[b2], v[c2]), 7);                            \
		v[b3] = _mm512_ror_epi32(xor(v[b3], v[c3]), 7);                            \
	} while (0)

#define ROUND(r)                                                                         \
	do {                                                                             \
		G4(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, r, 0);          \
		G4(0, 5, 10, 15, 1, 6, 11, 12, 2, 7, 8, 13, 3, 4, 9, 14, r, 8);          \
	} while (0)

/*
 * Rows r[0..15] become columns: r[i] word j ends up in r[j] word i.
 * 32- and 64-bit unpacks transpose 4x4 blocks inside each 128-bit lane;
 * two rounds of 128-bit lane shuffles then put the blocks in place.
 */
static inline __attribute__((always_inline)) void transpose16(V r[16])
{
	V a[16], b[16], c[16];

	B3_UNROLL
	for (int i = 0; i < 8; i++) {
		a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
		a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
	}
	/* b[4g + j]: in 128-bit lane L, word 4L+j of rows 4g..4g+3 */
	B3_UNROLL
	for (int g = 0; g < 4; g++) {
		b[4 * g + 0] = _mm512_unpacklo_epi64(a[4 * g], a[4 * g + 2]);
		b[4 * g + 1] = _mm512_unpackhi_epi64(a[4 * g], a[4 * g + 2]);
		b[4 * g + 2] = _mm512_unpacklo_epi64(a[4 * g + 1], a[4 * g + 3]);
		b[4 * g + 3] = _mm512_unpackhi_epi64(a[4 * g + 1], a[4 * g + 3]);
	}
	/* c[j], c[4+j]: lanes 0,1 (2,3) of row groups 0,1; c[8+j], c[12+j]: of groups 2,3 */
	B3_UNROLL
	for (int j = 0; j < 4; j++) {
		c[j] = _mm512_shuffle_i32x4(b[j], b[4 + j], 0x44);
		c[4 + j] = _mm512_shuffle_i32x4(b[j], b[4 + j], 0xee);
		c[8 + j] = _mm512_shuffle_i32x4(b[8 + j], b[12 + j], 0x44);
		c[12 + j] = _mm512_shuffle_i32x4(b[8 + j], b[12 + j], 0xee);
	}
	B3_UNROLL
	for (int j = 0; j < 4; j++) {
		r[j] = _mm512_shuffle_i32x4(c[j], c[8 + j], 0x88);
		r[4 + j] = _mm512_shuffle_i32x4(c[j], c[8 + j], 0xdd);
		r[8 + j] = _mm512_shuffle_i32x4(c[4 + j], c[12 + j], 0x88);
		r[12 + j] = _mm512_shuffle_i32x4(c[4 + j], c[12 + j], 0xdd);
	}
}

void snap_b3_lanes16_avx512(const uint8_t *in, size_t stride, size_t nblocks,
			    const uint32_t key[8], uint64_t counter, int inc, uint8_t flags,
			    uint8_t fstart, uint8_t fend, uint8_t *out)
{
	V h[16], v[16], m[16], lo, hi;
	uint32_t clo[16], chi[16];

	B3_UNROLL
	for (int i = 0; i < 8; i++)
		h[i] = _mm512_set1_epi32((int)key[i]);
	B3_UNROLL
	for (int k = 0; k < 16; k++) {
		uint64_t c = counter + (inc ? (uint64_t)k : 0);

		clo[k] = (uint32_t)c;
		chi[k] = (uint32_t)(c >> 32);
	}
	lo = _mm512_loadu_si512(clo);
	hi = _mm512_loadu_si512(chi);
	for (size_t b = 0; b < nblocks; b++) {
		uint8_t f = flags | (b == 0 ? fstart : 0) | (b + 1 == nblocks ? fend : 0);
		const uint8_t *p = in + b * B3_BLOCK_LEN;

		B3_UNROLL
		for (int k = 0; k < 16; k++) {
			_mm_prefetch((const char *)(p + k * stride + PREFETCH), _MM_HINT_T0);
			m[k] = _mm512_loadu_si512(p + k * stride);
		}
		transpose16(m);
		B3_UNROLL
		for (int i = 0; i < 8; i++)
			v[i] = h[i];
		B3_UNROLL
		for (int i = 0; i < 4; i++)
			v[8 + i] = _mm512_set1_epi32((int)iv[i]);
		v[12] = lo;
		v[13] = hi;
		v[14] = _mm512_set1_epi32(B3_BLOCK_LEN);
		v[15] = _mm512_set1_epi32(f);
		ROUND(0);
		ROUND(1);
		ROUND(2);
		ROUND(3);
		ROUND(4);
		ROUND(5);
		ROUND(6);
		B3_UNROLL
		for (int i = 0; i < 8; i++)
			h[i] = xor(v[i], v[i + 8]);
	}
	/* Rows 8..15 are don't-care: only the first 8 words of each output row are kept. */
	B3_UNROLL
	for (int i = 8; i < 16; i++)
		h[i] = h[i - 8];
	transpose16(h);
	B3_UNROLL
	for (int k = 0; k < 16; k++)
		_mm256_storeu_si256((__m256i *)(out + 32 * k), _mm512_castsi512_si256(h[k]));
}
