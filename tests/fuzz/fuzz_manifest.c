/* libFuzzer: the strict manifest parser; whatever it accepts must format back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snap/snap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snap_manifest m;
	struct snap_pubkey k;
	char err[256], *out;
	size_t len;

	if (snap_manifest_parse(data, size, &m, err, sizeof(err)) < 0) {
		/* a refusal always names a line */
		if (strncmp(err, "line ", 5) != 0)
			abort();
		return 0;
	}
	/* canonical: one spelling per manifest, so the id is a function of the meaning */
	if (snap_manifest_format(&m, &out, &len) < 0 || len != size || memcmp(out, data, size) != 0)
		abort();
	free(out);
	memset(&k, 0, sizeof(k));
	memcpy(k.id, m.sig_keyid, sizeof(k.id));
	k.q[0] = 4;
	/* a key id that matches but a point that is not on the curve: refused, no crash */
	if (m.has_signature && snap_manifest_verify(data, size, &k, 1) == 0)
		abort();
	snap_manifest_free(&m);
	return 0;
}
