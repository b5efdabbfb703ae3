/* BearSSL: primitives keel relies on, checked against known answers. */
#include <string.h>

#include "bearssl.h"
#include "net/net.h"

const char *net_tls_selftest(void)
{
	/* FIPS 180-2 example: SHA-256("abc"). */
	static const unsigned char want[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	unsigned char got[32];
	br_sha256_context sc;

	br_sha256_init(&sc);
	br_sha256_update(&sc, "abc", 3);
	br_sha256_out(&sc, got);
	if (memcmp(got, want, sizeof(got)) != 0)
		return "sha256 self-test FAILED";
	return "sha256 known-answer ok";
}
