/* libFuzzer target for the ref history parser: any bytes, a bounded entry count, no read past the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snap/snap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_ref_log_entry e[SNAP_REF_LOG_MAX];
	char *copy = malloc(size ? size : 1);
	int bad = -1, n;

	if (!copy)
		return 0;
	/* An exact-size copy, so ASan catches a read one byte past the input. */
	memcpy(copy, data, size);
	n = snap_ref_log_parse(copy, size, e, size ? (int)(data[0] % SNAP_REF_LOG_MAX) + 1 : 1, &bad);
	if (n < 0 || n > SNAP_REF_LOG_MAX || bad < 0)
		abort();
	free(copy);
	return 0;
}
