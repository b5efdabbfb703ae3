/*
 * The few DNS messages keel's gateway reads and writes for its guests (RFC 1035): a guest's
 * query (one question, its name checked against the sandbox's allow-list by net/nat.c), the
 * board resolver's answer to it (its addresses allow the guest's connections), and the refusal
 * of a name the guest may not ask for.
 *
 * IMPLEMENTATION NOTES
 * - Both messages come from outside keel's trust (the guest's query always; the answer is the
 *   resolver's, but anyone on the LAN can send one): every length and compression pointer is
 *   checked against the message's end before a byte is read, and pointers may only go backwards
 *   (no loops). fuzz_nat drives both through nat.c.
 * - An answer counts only if its question is the query's, byte for byte but for letter case.
 */
#include <string.h>

#include "net/nat.h"

#define HDR 12
#define TYPE_A 1
#define CLASS_IN 1

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }

static char lower(uint8_t c) { return (char)(c >= 'A' && c <= 'Z' ? c + 32 : c); }

int net_dns_query(const uint8_t *m, size_t n, char name[NET_DNS_NAME], uint16_t *qtype, size_t *qend)
{
	size_t p = HDR, o = 0;
	int odd = 0;

	/* a standard query (QR 0, opcode 0) of one question and no answers */
	if (n < HDR + 5 || (m[2] & 0xf8) || get16(m + 4) != 1 || get16(m + 6) || get16(m + 8))
		return -1;
	while (m[p]) {
		size_t len = m[p];

		if (len > 63 || p + 1 + len >= n)   /* a compressed name or one past the end */
			return -1;
		if (o + len + 1 > NET_DNS_NAME - 1)
			return -1;
		if (o)
			name[o++] = '.';
		for (size_t i = 0; i < len; i++) {
			char c = lower(m[p + 1 + i]);

			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
				odd = 1;   /* not a host name: no rule could name it */
			name[o++] = c;
		}
		p += 1 + len;
	}
	name[o] = 0;
	if (!o || p + 5 > n || get16(m + p + 3) != CLASS_IN)
		return -1;
	*qtype = get16(m + p + 1);
	*qend = p + 5;
	if (odd)
		name[0] = 0;
	return odd ? -2 : 0;
}

/* The end of the (possibly compressed) name at p, or 0 when it runs out of m. */
static size_t skip_name(const uint8_t *m, size_t n, size_t p)
{
	while (p < n) {
		if (m[p] == 0)
			return p + 1;
		if ((m[p] & 0xc0) == 0xc0)
			return p + 2 <= n ? p + 2 : 0;   /* a pointer ends the name where it stands */
		if (m[p] & 0xc0)
			return 0;
		p += 1 + (size_t)m[p];
	}
	return 0;
}

int net_dns_answer(const uint8_t *m, size_t n, const uint8_t *q, size_t qlen, uint32_t *addrs, int max,
		   uint32_t *ttl)
{
	size_t p = HDR + qlen;
	unsigned an;
	int k = 0;

	/* a response (QR 1) to the one question q (the query's from its name to its class) */
	if (n < p || !(m[2] & 0x80) || get16(m + 4) != 1)
		return -1;
	for (size_t i = 0; i < qlen; i++)
		if (lower(m[HDR + i]) != lower(q[i]))
			return -1;
	*ttl = 0;
	if ((m[3] & 15) != 0)
		return 0;   /* NXDOMAIN, SERVFAIL, ...: no addresses, the guest still gets the answer */
	an = get16(m + 6);
	for (unsigned i = 0; i < an; i++) {
		size_t rd;
		uint32_t t;

		p = skip_name(m, n, p);
		if (!p || n - p < 10)
			return -1;
		rd = get16(m + p + 8);
		if (n - p - 10 < rd)
			return -1;
		t = get32(m + p + 4);
		if (get16(m + p) == TYPE_A && get16(m + p + 2) == CLASS_IN && rd == 4 && k < max) {
			addrs[k++] = get32(m + p + 10);
			if (!*ttl || t < *ttl)
				*ttl = t;
		}
		p += 10 + rd;
	}
	return k;
}

size_t net_dns_refusal(uint8_t *out, const uint8_t *query, size_t qend, unsigned rcode)
{
	memmove(out, query, qend);
	out[2] = (uint8_t)(0x80 | (query[2] & 0x01));   /* QR, opcode 0, RD as asked */
	out[3] = (uint8_t)(0x80 | (rcode & 15));         /* RA */
	memset(out + 4, 0, 8);
	out[5] = 1;                                      /* the question alone */
	return qend;
}
