/*
 * Addresses and allow-list entries as board.conf and `keel net listen` write them. Pure (no
 * lwIP): board.c validates board.conf with these whether or not the listener is built, and
 * net/nat.c decides with net_host_match which DNS names a sandbox may ask for.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

int net_parse_ipv4(const char *s, int want_prefix, uint32_t *ip, unsigned *prefix)
{
	unsigned v[4], p = 32;
	const char *q = s;

	for (int i = 0; i < 4; i++) {
		unsigned x = 0;
		int digits = 0;

		while (*q >= '0' && *q <= '9' && digits < 4) {
			x = x * 10 + (unsigned)(*q++ - '0');
			digits++;
		}
		if (!digits || digits > 3 || x > 255)
			return -EINVAL;
		v[i] = x;
		if (i < 3 && *q++ != '.')
			return -EINVAL;
	}
	if (*q == '/') {
		int digits = 0;

		q++;
		p = 0;
		while (*q >= '0' && *q <= '9' && digits < 3) {
			p = p * 10 + (unsigned)(*q++ - '0');
			digits++;
		}
		if (!digits || p > 32)
			return -EINVAL;
	} else if (want_prefix) {
		return -EINVAL;
	}
	if (*q)
		return -EINVAL;
	*ip = v[0] << 24 | v[1] << 16 | v[2] << 8 | v[3];
	if (prefix)
		*prefix = p;
	return 0;
}

/* A DNS name as a rule may give it: labels of [a-z0-9-_], 1..63 bytes, dots between. */
static int host_ok(const char *h)
{
	size_t n = strlen(h), label = 0;

	if (!n || n > NET_HOST_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];

		if (c == '.') {
			if (!label)
				return 0;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label != 0;
}

int net_parse_allow(const char *s, struct net_allow *a)
{
	const char *colon = strrchr(s, ':');
	char what[NET_HOST_MAX + 4];
	size_t n;
	unsigned prefix;

	memset(a, 0, sizeof(*a));
	if (!colon || (n = (size_t)(colon - s)) == 0 || n >= sizeof(what))
		return -EINVAL;
	if (!strcmp(colon + 1, "*")) {
		a->port = 0;
	} else {
		char *end;
		unsigned long p = strtoul(colon + 1, &end, 10);

		if (colon[1] < '0' || colon[1] > '9' || *end || p < 1 || p > 65535)
			return -EINVAL;
		a->port = (uint16_t)p;
	}
	memcpy(what, s, n);
	what[n] = 0;
	if (what[0] >= '0' && what[0] <= '9' && net_parse_ipv4(what, 0, &a->addr, &prefix) == 0) {
		a->mask = prefix ? 0xffffffffu << (32 - prefix) : 0;
		if (a->addr & ~a->mask)
			return -EINVAL;   /* 192.0.2.1/24: say the network */
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		what[i] = (char)(what[i] >= 'A' && what[i] <= 'Z' ? what[i] + 32 : what[i]);
	if (what[n - 1] == '.')
		what[--n] = 0;   /* a fully qualified name's root */
	if (!host_ok(what[0] == '*' && what[1] == '.' ? what + 2 : what))
		return -EINVAL;
	memcpy(a->host, what, n + 1);
	return 0;
}

int net_host_match(const char *host, const char *name)
{
	size_t hl, nl;

	if (host[0] != '*')
		return !strcmp(host, name);
	/* "*.example.com": a name under example.com, not example.com itself */
	hl = strlen(host + 1);
	nl = strlen(name);
	return nl > hl && !strcmp(name + nl - hl, host + 1);
}
