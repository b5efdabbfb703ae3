/* BLAKE3 on AVX2: eight inputs hashed side by side, one input per 32-bit lane. */
#include <immintrin.h>

#include "snap/blake3_int.h"

static const uint8_t sched[7][16] = B3_SCHED_INIT;
static const uint32_t iv[8] = B3_IV_INIT;

#define V __m256i
#ifndef PREFETCH
#define PREFETCH 128
#endif

static inline V add(V a, V b)
{
	return _mm256_add_epi32(a, b);
}

static inline V xor(V a, V b)
{
	return _mm256_xor_si256(a, b);
}

static inline V rot16(V x)
{
	return _mm256_shuffle_epi8(x, _mm256_set_epi8(13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2,
						      13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2));
}

static inline V rot12(V x)
{
	return _mm256_or_si256(_mm256_srli_epi32(x, 12), _mm256_slli_epi32(x, 20));
}

static inline V rot8(V x)
{
	return _mm256_shuffle_epi8(x, _mm256_set_epi8(12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1,
						      12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1));
}

static inline V rot7(V x)
{
	return _mm256_or_si256(_mm256_srli_epi32(x, 7), _mm256_slli_epi32(x, 25));
}

#define G(a, b, c, d, x, y)                              \
	do {                                             \
		v[a] = add(add(v[a], v[b]), (x));        \
		v[d] = rot16(xor(v[d], v[a]));           \
		v[c] = add(v[c], v[d]);                  \
		v[b] = rot12(xor(v[b], v[c]));           \
		v[a] = add(add(v[a], v[b]), (y));        \
		v[d] = rot8(xor(v[d], v[a]));            \
		v[c] = add(v[c], v[d]);                  \
		v[b] = rot7(xor(v[b], v[c]));            \
	} while (0)

#define ROUND(r)                                                          \
	do {                                                              \
		G(0, 4, 8, 12, m[sched[r][0]], m[sched[r][1]]);           \
		G(1, 5, 9, 13, m[sched[r][2]], m[sched[r][3]]);           \
		G(2, 6, 10, 14, m[sched[r][4]], m[sched[r][5]]);          \
		G(3, 7, 11, 15, m[sched[r][6]], m[sched[r][7]]);          \
		G(0, 5, 10, 15, m[sched[r][8]], m[sched[r][9]]);          \
		G(1, 6, 11, 12, m[sched[r][10]], m[sched[r][11]]);        \
		G(2, 7, 8, 13, m[sched[r][12]], m[sched[r][13]]);         \
		G(3, 4, 9, 14, m[sched[r][14]], m[sched[r][15]]);         \
	} while (0)

/* Rows r[0..7] become columns: r[i] word j ends up in r[j] word i. */
static inline __attribute__((always_inline)) void transpose8(V r[8])
{
	V t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
	V t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
	V t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
	V t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
	/* u_j: word j (low half) and word j+4 (high half) of rows 0-3 or 4-7 */
	V u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
	V u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
	V u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
	V u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);

	r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
	r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
	r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
	r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
	r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
	r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
	r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
	r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

void snap_b3_lanes8_avx2(const uint8_t *in, size_t stride, size_t nblocks, const uint32_t key[8],
			 uint64_t counter, int inc, uint8_t flags, uint8_t fstart, uint8_t fend,
			 uint8_t *out)
{
	V h[8], v[16], m[16], lo, hi;
	uint32_t clo[8], chi[8];

	B3_UNROLL
	for (int i = 0; i < 8; i++)
		h[i] = _mm256_set1_epi32((int)key[i]);
	B3_UNROLL
	for (int k = 0; k < 8; k++) {
		uint64_t c = counter + (inc ? (uint64_t)k : 0);

		clo[k] = (uint32_t)c;
		chi[k] = (uint32_t)(c >> 32);
	}
	lo = _mm256_loadu_si256((const V *)clo);
	hi = _mm256_loadu_si256((const V *)chi);
	for (size_t b = 0; b < nblocks; b++) {
		uint8_t f = flags | (b == 0 ? fstart : 0) | (b + 1 == nblocks ? fend : 0);
		const uint8_t *p = in + b * B3_BLOCK_LEN;

		B3_UNROLL
		for (int k = 0; k < 8; k++) {
			_mm_prefetch((const char *)(p + k * stride + PREFETCH), _MM_HINT_T0);
			m[k] = _mm256_loadu_si256((const V *)(p + k * stride));
			m[8 + k] = _mm256_loadu_si256((const V *)(p + k * stride + 32));
		}
		transpose8(m);
		transpose8(m + 8);
		B3_UNROLL
		for (int i = 0; i < 8; i++)
			v[i] = h[i];
		B3_UNROLL
		for (int i = 0; i < 4; i++)
			v[8 + i] = _mm256_set1_epi32((int)iv[i]);
		v[12] = lo;
		v[13] = hi;
		v[14] = _mm256_set1_epi32(B3_BLOCK_LEN);
		v[15] = _mm256_set1_epi32(f);
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
	transpose8(h);
	B3_UNROLL
	for (int k = 0; k < 8; k++)
		_mm256_storeu_si256((V *)(out + 32 * k), h[k]);
}
