/* Content-address parsing: exactly 64 lowercase hex characters, nothing else. */
#include <string.h>

#include "snap/snap.h"
#include "tests/harness.h"

static const char good[] = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

TEST(hex64_accepts_lowercase_64)
{
	CHECK(snap_is_hex64(good, 64));
}

TEST(hex64_rejects_uppercase_short_long_and_nonhex)
{
	char up[65];

	memcpy(up, good, 65);
	up[3] = 'A';
	CHECK(!snap_is_hex64(up, 64));
	CHECK(!snap_is_hex64(good, 63));
	CHECK(!snap_is_hex64(good, 65));
	memcpy(up, good, 65);
	up[10] = 'g';
	CHECK(!snap_is_hex64(up, 64));
	CHECK(!snap_is_hex64("", 0));
}

TEST(hex_roundtrip)
{
	uint8_t h[32];
	char back[65];

	REQUIRE(snap_unhex(good, 64, h) == 0);
	CHECK_EQ(h[0], 0xaf);
	CHECK_EQ(h[31], 0x62);
	snap_hex(h, back);
	CHECK_STR(back, good);
}
