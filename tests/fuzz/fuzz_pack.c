/* libFuzzer: random bytes in random slices through the SNAPPACK 1 push parser into a real temp store. */
#include <stdint.h>
#include <string.h>

#include "snap/snap.h"
#include "tests/fuzz/fuzz_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_pack_rx rx;
	struct snap_pack_limits lim = { .max_manifest_bytes = 65536 };
	uint32_t x;
	int r = 0, has_m;

	fuzz_store_open("keel-fuzz-pack-");
	if (size < 1)
		return 0;
	/* The first byte seeds the slicing; the rest is the stream. */
	x = data[0] * 2654435761u + 1;
	data++, size--;
	snap_pack_rx_init(&rx, store, &lim);
	while (size && r == 0) {
		size_t n = fuzz_slice(&x, 64, size);

		r = snap_pack_rx_feed(&rx, data, n);
		data += n;
		size -= n;
	}
	if (r == 0)
		r = snap_pack_rx_finish(&rx, &has_m, NULL);
	/* Invariants: an error always has its one-line message; nothing is left staged. */
	if (r < 0 && (!snap_pack_rx_error(&rx)[0] || strchr(snap_pack_rx_error(&rx), '\n')))
		abort();
	snap_pack_rx_free(&rx);
	fuzz_store_check();
	return 0;
}
