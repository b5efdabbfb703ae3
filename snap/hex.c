/* Content addresses: lowercase hex64, validated the same way everywhere. */
#include <errno.h>

#include "snap/snap.h"

static const char digits[] = "0123456789abcdef";

void snap_hex(const uint8_t h[SNAP_HASH_LEN], char out[SNAP_HEX_LEN + 1])
{
	for (int i = 0; i < SNAP_HASH_LEN; i++) {
		out[2 * i] = digits[h[i] >> 4];
		out[2 * i + 1] = digits[h[i] & 15];
	}
	out[SNAP_HEX_LEN] = 0;
}

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int snap_is_hex64(const char *s, size_t len)
{
	if (len != SNAP_HEX_LEN)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (nibble(s[i]) < 0)
			return 0;
	return 1;
}

int snap_unhex(const char *s, size_t len, uint8_t out[SNAP_HASH_LEN])
{
	if (!snap_is_hex64(s, len))
		return -EINVAL;
	for (int i = 0; i < SNAP_HASH_LEN; i++)
		out[i] = (uint8_t)(nibble(s[2 * i]) << 4 | nibble(s[2 * i + 1]));
	return 0;
}

int snap_name_valid(const char *s, size_t len)
{
	if (len < 1 || len > SNAP_NAME_MAX)
		return 0;
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}
