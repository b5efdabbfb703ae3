/* The link layer's own checks: address parsing and the TCP/UDP checksum it verifies for lwIP. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "net/net_int.h"
#include "net/net.h"
#include "tests/harness.h"

TEST(ipv4_with_prefix_parses_to_host_order)
{
	uint32_t ip = 0;
	unsigned p = 0;

	CHECK_EQ(net_parse_ipv4("10.77.1.2/24", 1, &ip, &p), 0);
	CHECK_EQ(ip, 0x0a4d0102);
	CHECK_EQ(p, 24);
	CHECK_EQ(net_parse_ipv4("192.168.0.1", 0, &ip, NULL), 0);
	CHECK_EQ(ip, 0xc0a80001);
}

TEST(ipv4_parser_refuses_malformed_addresses)
{
	uint32_t ip;
	unsigned p;

	CHECK_EQ(net_parse_ipv4("10.0.0.1", 1, &ip, &p), -EINVAL);      /* prefix required */
	CHECK_EQ(net_parse_ipv4("10.0.0.256/8", 1, &ip, &p), -EINVAL);
	CHECK_EQ(net_parse_ipv4("10.0.0/8", 1, &ip, &p), -EINVAL);
	CHECK_EQ(net_parse_ipv4("10.0.0.1/33", 1, &ip, &p), -EINVAL);
	CHECK_EQ(net_parse_ipv4("10.0.0.1/24x", 1, &ip, &p), -EINVAL);
	CHECK_EQ(net_parse_ipv4("1000.0.0.1/8", 1, &ip, &p), -EINVAL);
	CHECK_EQ(net_parse_ipv4("", 0, &ip, &p), -EINVAL);
}

/* An Ethernet + IPv4 + UDP frame with a correct checksum (computed here independently). */
static size_t udp_frame(uint8_t *f, const char *payload)
{
	size_t plen = strlen(payload), ulen = 8 + plen, iplen = 20 + ulen;
	uint32_t sum = 0;

	memset(f, 0, 14 + iplen);
	f[12] = 0x08;
	uint8_t *ip = f + 14, *u = ip + 20;
	ip[0] = 0x45;
	ip[2] = (uint8_t)(iplen >> 8);
	ip[3] = (uint8_t)iplen;
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, (uint8_t[]){ 10, 0, 0, 1 }, 4);
	memcpy(ip + 16, (uint8_t[]){ 10, 0, 0, 2 }, 4);
	u[0] = 0x30; u[1] = 0x39;           /* 12345 */
	u[2] = 0x1b; u[3] = 0x9e;           /* 7070 */
	u[4] = (uint8_t)(ulen >> 8);
	u[5] = (uint8_t)ulen;
	memcpy(u + 8, payload, plen);
	/* RFC 768 by the book: 16-bit big-endian words of pseudo header and datagram. */
	for (int i = 12; i < 20; i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	sum += 17 + (uint32_t)ulen;
	for (size_t i = 0; i < ulen; i += 2)
		sum += (uint32_t)(u[i] << 8 | (i + 1 < ulen ? u[i + 1] : 0));
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	sum = ~sum & 0xffff;
	if (sum == 0)
		sum = 0xffff;
	u[6] = (uint8_t)(sum >> 8);
	u[7] = (uint8_t)sum;
	return 14 + iplen;
}

TEST(correct_udp_checksum_is_accepted_and_a_flipped_bit_is_not)
{
	uint8_t f[256];
	size_t n = udp_frame(f, "SNAPPACK 1\nodd");

	CHECK_EQ(net_frame_l4_csum_ok(f, n), 1);
	f[n - 1] ^= 0x10;
	CHECK_EQ(net_frame_l4_csum_ok(f, n), 0);
}

TEST(frames_lwip_checks_itself_pass_through)
{
	uint8_t f[256];
	size_t n = udp_frame(f, "x");

	f[14 + 6] = 0x20;                    /* IPv4 "more fragments": lwIP drops it */
	f[n - 1] ^= 1;
	CHECK_EQ(net_frame_l4_csum_ok(f, n), 1);
	f[12] = 0x08;
	f[13] = 0x06;                        /* ARP */
	CHECK_EQ(net_frame_l4_csum_ok(f, n), 1);
}

TEST(checksum_sums_odd_lengths_like_rfc1071)
{
	/* 0x0001 + 0xf203 + 0xf4f5 + 0xf6f7 = 0x2ddf0 -> 0xddf2 (RFC 1071 example). */
	static const uint8_t b[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	uint16_t s = net_csum_fold(net_csum_add(0, b, sizeof(b)));

	/* The sum comes out in memory byte order: compare as bytes. */
	uint8_t out[2];
	memcpy(out, &s, 2);
	CHECK_EQ(out[0], 0xdd);
	CHECK_EQ(out[1], 0xf2);
}
