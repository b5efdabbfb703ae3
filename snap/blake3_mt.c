/* BLAKE3 one-shot hashing of a buffer on several threads. */
/*
 * IMPLEMENTATION NOTES
 * The buffer is cut into items of g chunks (g a power of two): item i covers
 * chunks [i*g, (i+1)*g), the last one possibly shorter. Each item is one
 * node of the BLAKE3 tree (its level is log2 g), so threads can hash items
 * to their CVs independently, taking the next item from a shared counter so
 * that a slow core does not hold the others up. The CVs of all items form
 * one level of the tree; pairing them level by level (odd one carried up)
 * gives the root's two children, exactly as the single-threaded hasher does.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap/blake3_int.h"
#include "snap/snap.h"

/* Below this, thread start-up costs more than it saves. */
#define MT_MIN_LEN (1u << 20)
/* Items per thread: enough for the shared counter to balance uneven cores. */
#define ITEMS_PER_THREAD 16
#define MIN_ITEM_CHUNKS 64
#define MAX_THREADS 64

struct mt_job {
	const uint8_t *in;
	size_t len;
	size_t item_len;
	size_t nitems;
	size_t next; /* atomic */
	uint8_t *cvs;
};

static void *mt_worker(void *arg)
{
	struct mt_job *j = arg;
	size_t i;

	while ((i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED)) < j->nitems) {
		size_t off = i * j->item_len;
		size_t n = j->len - off < j->item_len ? j->len - off : j->item_len;

		snap_b3_node_cv(j->in + off, n, off / B3_CHUNK_LEN, snap_b3_iv, 0,
				j->cvs + i * B3_OUT_LEN);
	}
	return NULL;
}

static void hash_one_thread(const void *buf, size_t len, uint8_t out[SNAP_HASH_LEN])
{
	snap_b3_hash_root(buf, len, snap_b3_iv, 0, out, SNAP_HASH_LEN);
}

void snap_b3_hash(const void *buf, size_t len, int nthreads, uint8_t out[SNAP_HASH_LEN])
{
	pthread_t tids[MAX_THREADS];
	struct mt_job j;
	size_t chunks, g;
	int started = 0;

	if (nthreads <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		nthreads = n > 0 ? (int)n : 1;
	}
	if (nthreads > MAX_THREADS)
		nthreads = MAX_THREADS;
	if (nthreads == 1 || len < MT_MIN_LEN) {
		hash_one_thread(buf, len, out);
		return;
	}

	chunks = (len + B3_CHUNK_LEN - 1) / B3_CHUNK_LEN;
	for (g = MIN_ITEM_CHUNKS; g * ITEMS_PER_THREAD * (size_t)nthreads < chunks; g *= 2)
		;
	j.in = buf;
	j.len = len;
	j.item_len = g * B3_CHUNK_LEN;
	j.nitems = (chunks + g - 1) / g;
	j.next = 0;
	j.cvs = j.nitems >= 2 ? malloc(j.nitems * B3_OUT_LEN) : NULL;
	if (!j.cvs) {
		hash_one_thread(buf, len, out);
		return;
	}

	/* A thread that fails to start only means fewer hands; the caller works too. */
	for (int t = 1; t < nthreads; t++)
		if (pthread_create(&tids[started], NULL, mt_worker, &j) == 0)
			started++;
	mt_worker(&j);
	for (int t = 0; t < started; t++)
		pthread_join(tids[t], NULL);

	snap_b3_reduce_to_two(j.cvs, j.nitems, snap_b3_iv, 0);
	snap_b3_root_parent(j.cvs, snap_b3_iv, 0, out, SNAP_HASH_LEN);
	free(j.cvs);
}
