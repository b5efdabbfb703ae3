/* libFuzzer target for the CAR v1 reader: input byte 0 picks the feed size, the rest is the file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snap/car.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct balance {
	int open;
	uint64_t want, got;
};

static int f_begin(void *ctx, const struct snap_car_cid *cid, uint64_t len)
{
	struct balance *b = ctx;
	(void)cid;
	if (b->open)
		abort();
	b->open = 1;
	b->want = len;
	b->got = 0;
	return 0;
}

static int f_data(void *ctx, const void *buf, size_t len)
{
	struct balance *b = ctx;
	(void)buf;
	if (!b->open)
		abort();
	b->got += len;
	if (b->got > b->want)
		abort();
	return 0;
}

static int f_end(void *ctx, const struct snap_car_cid *cid, const uint8_t b3[SNAP_HASH_LEN])
{
	struct balance *b = ctx;
	(void)cid;
	(void)b3;
	/* end() promises every byte arrived. */
	if (!b->open || b->got != b->want)
		abort();
	b->open = 0;
	return 0;
}

static void f_abort(void *ctx)
{
	struct balance *b = ctx;
	if (!b->open)
		abort();
	b->open = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct balance b = { 0, 0, 0 };
	struct snap_car_sink sink = { .ctx = &b, .begin = f_begin, .data = f_data, .end = f_end, .abort = f_abort };
	struct snap_car_rx rx;
	struct snap_car_cid roots[4], cid;
	size_t step, nroots;
	const char *why;
	int r = 0;

	if (size < 1)
		return 0;
	step = data[0] ? data[0] : 1;
	data++, size--;

	/* The codec entry points on their own, with the same bytes. */
	snap_car_header_parse(data, size, roots, 4, &nroots, &why);
	snap_car_cid_parse(data, size, &cid, &why);

	snap_car_rx_init(&rx, &sink, 1 << 20);
	for (size_t i = 0; i < size && r == 0; i += step)
		r = snap_car_rx_feed(&rx, data + i, size - i < step ? size - i : step);
	if (r == 0)
		r = snap_car_rx_finish(&rx);
	/* Every failure names a byte offset; every success leaves no block open. */
	if (r != 0 && strncmp(snap_car_rx_error(&rx), "byte ", 5) != 0)
		abort();
	if (r == 0 && b.open)
		abort();
	snap_car_rx_free(&rx);
	if (b.open)
		abort();
	return 0;
}
