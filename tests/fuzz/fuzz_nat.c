/*
 * libFuzzer target for keel's side of a sandbox link (net/nat.c): a script of frames of any
 * bytes and length from the guest and from the uplink (the LAN), with shortcuts that make the
 * uplink frames well-formed TCP segments to forwarded ports so connections really open, the
 * guest's frames DNS queries to its router, and the uplink's the resolver's answers to them
 * (under the id keel chose) and segments to the ports of the guest's connections out.
 * Invariants: everything sent to the uplink is a well-formed IPv4 packet with a right header
 * checksum, from the appliance's address; every frame to the guest fits the link's MTU and is
 * addressed from the router; ASan+UBSan catch any read outside a frame.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/nat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ME 0xc0a83201u

static uint16_t csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	for (; n > 1; p += 2, n -= 2)
		s += (uint32_t)(p[0] << 8 | p[1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint16_t dns_id;

/* Bridge mode's frames out: from the bridged guest's own MAC, never multicast-sourced, MTU-sized. */
static int wire(void *arg, const uint8_t *f, size_t len)
{
	(void)arg;
	if (len < 14 || len > 14 + 4 + 1500 || (f[6] & 1))
		abort();
	return 0;
}   /* the id of the last query keel sent the resolver */

static uint32_t my_ip(void *arg)
{
	(void)arg;
	return ME;
}

static int uplink(void *arg, const uint8_t *pkt, size_t len, uint32_t dst)
{
	(void)arg;
	(void)dst;
	if (len < 20 || len > 1500 || (pkt[0] >> 4) != 4 || (size_t)(pkt[2] << 8 | pkt[3]) != len ||
	    csum(pkt, (size_t)(pkt[0] & 15) * 4) != 0 ||
	    (uint32_t)(pkt[12] << 24 | pkt[13] << 16 | pkt[14] << 8 | pkt[15]) != ME)
		abort();
	if (len >= 30 && pkt[9] == 17 && pkt[22] == 0 && pkt[23] == 53)
		dns_id = (uint16_t)(pkt[28] << 8 | pkt[29]);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct net_sandbox sb[3] = { { .name = "a", .nfwd = 2, .fwd = { { 8080, 80 }, { 8081, 80 } }, .nallow = 2,
				       .allow = { { .addr = 0xc0a83200u, .mask = 0xffffff00u },
						  { .host = "*.example.com", .port = 443 } } },
				     { .name = "b", .nfwd = 1, .fwd = { { 9090, 22 } } },
				     { .name = "c", .bridge = 1 } };
	struct net_nat_uplink up = { .ip = my_ip, .send = uplink, .dns = 0xc0a83235u, .send_frame = wire,
				     .mac = { 0x02, 0x11, 0, 0, 0, 9 } };
	struct net_nat *nat;
	int sv[3][2];
	uint8_t f[4096], r[4096];

	for (int i = 0; i < 3; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv[i]) < 0)
			abort();
		sb[i].fd = sv[i][0];
	}
	if (net_nat_new(&nat, sb, 3, &up) < 0)
		abort();
	while (size >= 3) {
		unsigned op = data[0], len = (unsigned)(data[1] | data[2] << 8) % sizeof(f);

		data += 3;
		size -= 3;
		if (len > size)
			len = (unsigned)size;
		memcpy(f, data, len);
		data += len;
		size -= len;
		if (op & 1) {
			if ((op & 4) && len >= 54) {   /* an IPv4 TCP packet from the guest's address that parses */
				f[12] = 0x08, f[13] = 0x00, f[14] = 0x45, f[20] = f[21] = 0, f[23] = 6;
				f[16] = (uint8_t)((len - 14) >> 8), f[17] = (uint8_t)(len - 14);
				f[26] = 10, f[27] = 0, f[28] = 2, f[29] = 15;
				if (op & 8)   /* to the client of a connection the uplink script opened */
					f[30] = 192, f[31] = 168, f[32] = 50, f[33] = 1 + (op >> 4 & 1), f[34] = 0, f[35] = 80;
				if (op & 0x20) {   /* a DNS query to the router (one question, no answers) */
					f[23] = 17;
					f[30] = 10, f[31] = 0, f[32] = 2, f[33] = 2, f[36] = 0, f[37] = 53;
					f[38] = (uint8_t)((len - 34) >> 8), f[39] = (uint8_t)(len - 34);
					f[44] &= 7, f[46] = 0, f[47] = 1, f[48] = f[49] = f[50] = f[51] = 0;
				}
				f[24] = f[25] = 0;
				uint16_t c = csum(f + 14, 20);
				f[24] = (uint8_t)(c >> 8), f[25] = (uint8_t)c;
			}
			net_nat_guest_frame(nat, (op >> 1) % 3, f, len);
		} else {
			if ((op & 2) && len >= 54) {   /* make it a TCP segment to us that parses */
				unsigned ports[3] = { 8080, 8081, 9090 };
				f[12] = 0x08, f[13] = 0x00, f[14] = 0x45, f[20] = f[21] = 0, f[23] = 6;
				f[16] = (uint8_t)((len - 14) >> 8), f[17] = (uint8_t)(len - 14);
				f[30] = 192, f[31] = 168, f[32] = 50, f[33] = 1;
				f[36] = (uint8_t)(ports[op % 3] >> 8), f[37] = (uint8_t)ports[op % 3];
				f[46] = 0x50;   /* a 20-byte TCP header */
				if (op & 4)
					f[47] = 0x02;   /* SYN */
				if (op & 0x40)   /* to one of the first ports of the guests' connections out */
					f[36] = 0xa0, f[37] = (uint8_t)(op >> 7);
				if (op & 0x20) {   /* the resolver's answer to the last query */
					f[23] = 17;
					f[26] = 192, f[27] = 168, f[28] = 50, f[29] = 53, f[34] = 0, f[35] = 53;
					f[36] = 0x9e, f[37] = (uint8_t)(op >> 7);
					f[38] = (uint8_t)((len - 34) >> 8), f[39] = (uint8_t)(len - 34);
					f[42] = (uint8_t)(dns_id >> 8), f[43] = (uint8_t)dns_id;
				}
			}
			if ((op & 0x80) && len >= 14)   /* to the bridged guest's MAC, as it said hello with */
				net_nat_bridge_frame(nat, f, len);
			else
				net_nat_uplink_frame(nat, f, len);
		}
		for (int i = 0; i < 3; i++) {
			ssize_t n;

			while ((n = read(sv[i][1], r, sizeof(r))) > 0)
				if (n < 14 || n > 14 + 4 + 1500 || (i < 2 && (r[6] != 0x02 || r[7] != 0x6b)))
					abort();   /* too long for the guest's MTU, or (nat) not from the router */
		}
	}
	net_nat_free(nat);
	for (int i = 0; i < 3; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
	return 0;
}
