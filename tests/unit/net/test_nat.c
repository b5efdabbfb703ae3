/*
 * A sandbox's nat link (net/nat.c) against a scripted guest on a socketpair and a recording
 * uplink: ARP and DHCP for the router, a forwarded connection both ways with whole checksums,
 * and the guest's attempts at everything else (connections out, spoofed sources, junk).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/nat.h"
#include "net/net_int.h"
#include "tests/harness.h"

#define ME 0xc0a83201u      /* 192.168.50.1, the appliance */
#define PEER 0xc0a83202u    /* 192.168.50.2, a LAN client */
#define GUEST 0x0a00020fu
#define GW 0x0a000202u

static uint8_t sent[4][2048];
static size_t sent_len[4], nsent;
static uint32_t sent_to;

static uint32_t my_ip(void *arg)
{
	(void)arg;
	return ME;
}

static int record(void *arg, const uint8_t *pkt, size_t len, uint32_t dst)
{
	(void)arg;
	if (nsent < 4 && len <= sizeof(sent[0])) {
		memcpy(sent[nsent], pkt, len);
		sent_len[nsent++] = len;
	}
	sent_to = dst;
	return 0;
}

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v & 0xffff); }
static unsigned get16(const uint8_t *p) { return (unsigned)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }

static uint16_t csum(uint32_t s, const uint8_t *p, size_t n)
{
	for (; n > 1; p += 2, n -= 2)
		s += (uint32_t)(p[0] << 8 | p[1]);
	if (n)
		s += (uint32_t)p[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* An Ethernet + IPv4 + TCP frame with whole checksums; returns its length. */
static size_t tcp_frame(uint8_t *f, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t flags,
			uint32_t seq, uint32_t ack, size_t plen)
{
	uint8_t *ip = f + 14, *t = ip + 20;
	uint32_t s;

	memset(f, 0, 14 + 40 + plen);
	memcpy(f, (uint8_t[]){ 0x02, 0x6b, 0x65, 0x65, 0x6c, 0x02 }, 6);
	memcpy(f + 6, (uint8_t[]){ 0x52, 0x54, 0, 0x12, 0x34, 0x56 }, 6);
	put16(f + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, (unsigned)(40 + plen));
	ip[8] = 64;
	ip[9] = 6;
	put32(ip + 12, src);
	put32(ip + 16, dst);
	put16(ip + 10, csum(0, ip, 20));
	put16(t, sport);
	put16(t + 2, dport);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = 5 << 4;
	t[13] = flags;
	put16(t + 14, 65535);
	for (size_t i = 0; i < plen; i++)
		t[20 + i] = (uint8_t)('a' + i % 26);
	s = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + 6 + (uint32_t)(20 + plen);
	put16(t + 16, csum(s, t, 20 + plen));
	return 14 + 40 + plen;
}

static int ip_ok(const uint8_t *ip)
{
	return csum(0, ip, 20) == 0;
}

static struct net_nat *nat;
static int guest = -1;

static void setup(void)
{
	struct net_sandbox sb = { .name = "web", .nfwd = 2, .fwd = { { 8080, 80 }, { 8081, 80 } } };
	struct net_nat_uplink up = { .ip = my_ip, .send = record };
	int sv[2];

	nsent = 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) < 0)
		return;
	sb.fd = sv[0];
	guest = sv[1];
	net_nat_new(&nat, &sb, 1, &up);
}

/* What the guest received next; 0 when nothing. */
static size_t recv_guest(uint8_t *buf, size_t cap)
{
	ssize_t r = read(guest, buf, cap);

	return r > 0 ? (size_t)r : 0;
}

TEST(arp_for_the_router_is_answered_and_nothing_else)
{
	uint8_t f[60] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06 }, r[2048];
	uint8_t *a = f + 14;

	setup();
	REQUIRE(nat != NULL);
	put16(a, 1);
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, 1);
	memcpy(a + 8, f + 6, 6);
	put32(a + 14, GUEST);
	put32(a + 24, GW);
	net_nat_guest_frame(nat, 0, f, sizeof(f));
	REQUIRE(recv_guest(r, sizeof(r)) == 60);
	CHECK(!memcmp(r, f + 6, 6));                 /* to the asker */
	CHECK_EQ(get16(r + 14 + 6), 2);
	CHECK_EQ(get32(r + 14 + 14), GW);
	CHECK_EQ(get32(r + 14 + 24), GUEST);
	put32(a + 24, PEER);                          /* another address: no answer */
	net_nat_guest_frame(nat, 0, f, sizeof(f));
	CHECK_EQ(recv_guest(r, sizeof(r)), 0);
	CHECK_EQ(net_nat_counts(nat, 0)->denied, 1);
}

TEST(dhcp_discover_gets_an_offer_of_the_one_address)
{
	uint8_t f[14 + 20 + 8 + 300], r[2048], *ip = f + 14, *u = ip + 20, *b = u + 8;

	setup();
	REQUIRE(nat != NULL);
	memset(f, 0, sizeof(f));
	memset(f, 0xff, 6);
	memcpy(f + 6, (uint8_t[]){ 0x52, 0x54, 0, 0x12, 0x34, 0x56 }, 6);
	put16(f + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, 20 + 8 + 300);
	ip[8] = 64;
	ip[9] = 17;
	put32(ip + 16, 0xffffffffu);
	put16(ip + 10, csum(0, ip, 20));
	put16(u, 68);
	put16(u + 2, 67);
	put16(u + 4, 8 + 300);
	b[0] = 1, b[1] = 1, b[2] = 6;
	put32(b + 4, 0x12345678);
	memcpy(b + 28, f + 6, 6);
	put32(b + 236, 0x63825363);
	b[240] = 53, b[241] = 1, b[242] = 1, b[243] = 255;
	net_nat_guest_frame(nat, 0, f, sizeof(f));
	REQUIRE(recv_guest(r, sizeof(r)) > 14 + 28 + 240);
	CHECK(ip_ok(r + 14));
	CHECK_EQ(get32(r + 14 + 28 + 4), 0x12345678);        /* xid */
	CHECK_EQ(get32(r + 14 + 28 + 16), GUEST);             /* yiaddr */
	CHECK_EQ(r[14 + 28 + 240], 53);
	CHECK_EQ(r[14 + 28 + 242], 2);                        /* OFFER */
	CHECK(net_frame_l4_csum_ok(r, 14 + 20 + 8 + 300));
	CHECK_EQ(net_nat_counts(nat, 0)->leases, 1);
}

TEST(forwarded_connection_is_translated_both_ways_with_whole_checksums)
{
	uint8_t f[2048], r[2048];
	size_t n;

	setup();
	REQUIRE(nat != NULL);
	/* a client's SYN to the appliance's 8081 reaches the guest's 80, from the client itself */
	n = tcp_frame(f, PEER, 40000, ME, 8081, 0x02, 1000, 0, 0);
	CHECK_EQ(net_nat_uplink_frame(nat, f, n), 1);
	n = recv_guest(r, sizeof(r));
	REQUIRE(n == 54);
	CHECK_EQ(get32(r + 14 + 12), PEER);
	CHECK_EQ(get32(r + 14 + 16), GUEST);
	CHECK_EQ(get16(r + 34 + 2), 80);
	CHECK(ip_ok(r + 14));
	CHECK(net_frame_l4_csum_ok(r, n));
	/* the guest's SYN-ACK leaves as the appliance's 8081 */
	n = tcp_frame(f, GUEST, 80, PEER, 40000, 0x12, 5000, 1001, 10);
	net_nat_guest_frame(nat, 0, f, n);
	REQUIRE(nsent == 1);
	CHECK_EQ(sent_to, PEER);
	CHECK_EQ(get32(sent[0] + 12), ME);
	CHECK_EQ(get16(sent[0] + 20), 8081);
	CHECK(ip_ok(sent[0]));
	memcpy(f + 14, sent[0], sent_len[0]);            /* check its TCP sum as a frame */
	CHECK(net_frame_l4_csum_ok(f, 14 + sent_len[0]));
	/* other ports and other protocols are lwIP's */
	n = tcp_frame(f, PEER, 40001, ME, 7070, 0x02, 1, 0, 0);
	CHECK_EQ(net_nat_uplink_frame(nat, f, n), 0);
	/* a segment of no connection is dropped and counted */
	n = tcp_frame(f, PEER, 40002, ME, 8080, 0x10, 1, 1, 0);
	CHECK_EQ(net_nat_uplink_frame(nat, f, n), 1);
	CHECK_EQ(recv_guest(r, sizeof(r)), 0);
	CHECK_EQ(net_nat_counts(nat, 0)->stale, 1);
}

TEST(a_merged_segment_reaches_the_guest_in_mtu_sized_pieces)
{
	uint8_t f[8192], r[2048];
	size_t n, total = 0, k = 0;

	setup();
	REQUIRE(nat != NULL);
	n = tcp_frame(f, PEER, 40000, ME, 8080, 0x02, 1000, 0, 0);
	net_nat_uplink_frame(nat, f, n);
	recv_guest(r, sizeof(r));
	n = tcp_frame(f, PEER, 40000, ME, 8080, 0x18 | 0x01, 1001, 1, 4000);   /* PSH, ACK, FIN */
	CHECK_EQ(net_nat_uplink_frame(nat, f, n), 1);
	while ((n = recv_guest(r, sizeof(r))) > 0) {
		CHECK(n <= 14 + 1500);
		CHECK(net_frame_l4_csum_ok(r, n));
		CHECK_EQ(get32(r + 34 + 4), 1001 + total);
		total += n - 54;
		CHECK_EQ(!!(r[34 + 13] & 0x01), total == 4000);   /* FIN with the last piece only */
		k++;
	}
	CHECK_EQ(total, 4000);
	CHECK_EQ(k, 3);
}

/* The attacks: a guest opening connections of its own, spoofing, sending junk. */
TEST(guest_cannot_open_connections_and_gets_a_reset_at_once)
{
	uint8_t f[2048], r[2048];
	size_t n;

	setup();
	REQUIRE(nat != NULL);
	n = tcp_frame(f, GUEST, 33333, PEER, 9999, 0x02, 777, 0, 0);
	net_nat_guest_frame(nat, 0, f, n);
	CHECK_EQ(nsent, 0);                                   /* nothing left the appliance */
	n = recv_guest(r, sizeof(r));
	REQUIRE(n == 54);
	CHECK_EQ(r[34 + 13], 0x14);                           /* RST, ACK */
	CHECK_EQ(get32(r + 34 + 8), 778);
	CHECK_EQ(get32(r + 14 + 12), PEER);
	CHECK(net_frame_l4_csum_ok(r, n));
	/* a spoofed source address, UDP anywhere, IPv6, a bad header checksum, a runt: all dropped */
	n = tcp_frame(f, 0x0a000263, 80, PEER, 40000, 0x12, 1, 1, 0);
	net_nat_guest_frame(nat, 0, f, n);
	n = tcp_frame(f, GUEST, 80, PEER, 40000, 0x12, 1, 1, 0);
	f[14 + 10] ^= 1;
	net_nat_guest_frame(nat, 0, f, n);
	f[12] = 0x86, f[13] = 0xdd;
	net_nat_guest_frame(nat, 0, f, n);
	net_nat_guest_frame(nat, 0, f, 10);
	CHECK_EQ(nsent, 0);
	CHECK_EQ(net_nat_counts(nat, 0)->malformed, 2);
	CHECK_EQ(net_nat_counts(nat, 0)->denied, 2);
	CHECK_EQ(net_nat_counts(nat, 0)->refused, 1);      /* the SYN out: no allow list */
	/* and it never answers a reset with a reset */
	n = tcp_frame(f, GUEST, 33333, PEER, 9999, 0x04, 1, 0, 0);
	net_nat_guest_frame(nat, 0, f, n);
	CHECK_EQ(recv_guest(r, sizeof(r)), 0);
}

/* Many short connections: closed ones make room at once, open ones are never pushed out. */
TEST(closed_connections_make_room_open_ones_are_kept)
{
	uint8_t f[2048], r[2048];
	size_t n;
	unsigned i;

	setup();
	REQUIRE(nat != NULL);
	for (i = 0; i < 300; i++) {   /* more than the table holds, each opened and closed both ways */
		n = tcp_frame(f, PEER, (uint16_t)(20000 + i), ME, 8080, 0x02, 1, 0, 0);
		net_nat_uplink_frame(nat, f, n);
		n = tcp_frame(f, GUEST, 80, PEER, (uint16_t)(20000 + i), 0x12 | 0x01, 1, 2, 0);
		net_nat_guest_frame(nat, 0, f, n);
		n = tcp_frame(f, PEER, (uint16_t)(20000 + i), ME, 8080, 0x11, 2, 2, 0);
		net_nat_uplink_frame(nat, f, n);
		while (recv_guest(r, sizeof(r)))
			;
	}
	CHECK_EQ(net_nat_counts(nat, 0)->full, 0);
	/* 256 open ones: the next client is refused, and every open one still passes */
	setup();
	REQUIRE(nat != NULL);
	for (i = 0; i < 257; i++) {
		n = tcp_frame(f, PEER, (uint16_t)(30000 + i), ME, 8080, 0x02, 1, 0, 0);
		net_nat_uplink_frame(nat, f, n);
	}
	CHECK_EQ(net_nat_counts(nat, 0)->full, 1);
	n = tcp_frame(f, GUEST, 80, PEER, 30000, 0x12, 1, 2, 0);
	nsent = 0;
	net_nat_guest_frame(nat, 0, f, n);
	CHECK_EQ(nsent, 1);
}

/* ---- egress: the allow-list, keel's DNS for the guest ---- */

#define RESOLVER 0xc0a83235u   /* 192.168.50.53 */
#define API 0xcb007105u        /* 203.0.113.5: what api.example.com resolves to */

static char logged[64][320];
static unsigned nlogged;

static void log_line(void *arg, const char *line)
{
	(void)arg;
	if (nlogged < 64)
		snprintf(logged[nlogged], sizeof(logged[0]), "%s", line);
	nlogged++;
}

static void setup_allow(void)
{
	static const char *const rules[] = { "192.0.2.0/24:*", "api.example.com:443", "*.cdn.example:80" };
	struct net_sandbox sb = { .name = "app" };
	struct net_nat_uplink up = { .ip = my_ip, .send = record, .log = log_line, .dns = RESOLVER };
	int sv[2];

	nsent = 0;
	nlogged = 0;
	for (unsigned k = 0; k < 3; k++)
		if (net_parse_allow(rules[k], &sb.allow[sb.nallow++]))
			return;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) < 0)
		return;
	sb.fd = sv[0];
	guest = sv[1];
	net_nat_new(&nat, &sb, 1, &up);
}

/* Ethernet + IPv4 + UDP with whole checksums around payload p (n bytes); returns the frame's length. */
static size_t udp_frame(uint8_t *f, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, const uint8_t *p,
			size_t n)
{
	uint8_t *ip = f + 14, *u = ip + 20;
	uint32_t s;

	memset(f, 0, 14 + 28);
	memcpy(f, (uint8_t[]){ 0x02, 0x6b, 0x65, 0x65, 0x6c, 0x02 }, 6);
	memcpy(f + 6, (uint8_t[]){ 0x52, 0x54, 0, 0x12, 0x34, 0x56 }, 6);
	put16(f + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, (unsigned)(28 + n));
	ip[8] = 64;
	ip[9] = 17;
	put32(ip + 12, src);
	put32(ip + 16, dst);
	put16(ip + 10, csum(0, ip, 20));
	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, (unsigned)(8 + n));
	memcpy(u + 8, p, n);
	s = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + 17 + (uint32_t)(8 + n);
	put16(u + 6, csum(s, u, 8 + n));
	return 14 + 28 + n;
}

/* A query for name's A record (id); its length. */
static size_t dns_query(uint8_t *m, uint16_t id, const char *name)
{
	size_t n = 12;

	memset(m, 0, 12);
	put16(m, id);
	m[2] = 0x01;   /* RD */
	put16(m + 4, 1);
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t len = dot ? (size_t)(dot - name) : strlen(name);

		m[n++] = (uint8_t)len;
		memcpy(m + n, name, len);
		n += len;
		name += len + (dot ? 1 : 0);
	}
	m[n++] = 0;
	put16(m + n, 1);
	put16(m + n + 2, 1);
	return n + 4;
}

/* The resolver's answer to query q (qn bytes) under id: one A record addr (name by pointer). */
static size_t dns_answer(uint8_t *m, const uint8_t *q, size_t qn, uint16_t id, uint32_t addr)
{
	memcpy(m, q, qn);
	put16(m, id);
	m[2] |= 0x80;
	m[3] = 0x80;
	put16(m + 6, 1);
	m[qn] = 0xc0, m[qn + 1] = 12;
	put16(m + qn + 2, 1);
	put16(m + qn + 4, 1);
	put32(m + qn + 6, 300);
	put16(m + qn + 10, 4);
	put32(m + qn + 12, addr);
	return qn + 16;
}

TEST(allow_list_entries_parse_strictly)
{
	struct net_allow a;

	CHECK_EQ(net_parse_allow("API.Example.com.:443", &a), 0);
	CHECK(!strcmp(a.host, "api.example.com"));
	CHECK_EQ(a.port, 443);
	CHECK_EQ(net_parse_allow("192.0.2.0/24:*", &a), 0);
	CHECK_EQ(a.addr, 0xc0000200u);
	CHECK_EQ(a.mask, 0xffffff00u);
	CHECK_EQ(a.port, 0);
	CHECK_EQ(net_parse_allow("10.1.2.3:22", &a), 0);
	CHECK_EQ(a.mask, 0xffffffffu);
	CHECK(net_host_match("*.cdn.example", "a.b.cdn.example"));
	CHECK(!net_host_match("*.cdn.example", "cdn.example"));
	CHECK(!net_host_match("*.cdn.example", "evilcdn.example"));
	CHECK(!net_host_match("api.example.com", "api.example.com.evil"));
	CHECK_EQ(net_parse_allow("192.0.2.1/24:*", &a), -EINVAL);   /* host bits set */
	CHECK_EQ(net_parse_allow("api.example.com", &a), -EINVAL);
	CHECK_EQ(net_parse_allow("api.example.com:0", &a), -EINVAL);
	CHECK_EQ(net_parse_allow("api.example.com:65536", &a), -EINVAL);
	CHECK_EQ(net_parse_allow("a..b:80", &a), -EINVAL);
	CHECK_EQ(net_parse_allow("a b:80", &a), -EINVAL);
	CHECK_EQ(net_parse_allow(":80", &a), -EINVAL);
	CHECK_EQ(net_parse_allow("*:80", &a), -EINVAL);
}

TEST(a_connection_out_to_an_allowed_address_is_translated_both_ways)
{
	uint8_t f[2048], r[2048];
	uint16_t outer;
	size_t n;

	setup_allow();
	REQUIRE(nat != NULL);
	n = tcp_frame(f, GUEST, 33333, 0xc0000207u, 22, 0x02, 100, 0, 0);
	net_nat_guest_frame(nat, 0, f, n);
	REQUIRE(nsent == 1);
	CHECK_EQ(sent_to, 0xc0000207u);
	CHECK_EQ(get32(sent[0] + 12), ME);
	outer = (uint16_t)get16(sent[0] + 20);
	CHECK(outer >= NET_NAT_PORT_FIRST && outer <= NET_NAT_PORT_LAST);
	CHECK(ip_ok(sent[0]));
	memcpy(f + 14, sent[0], sent_len[0]);
	CHECK(net_frame_l4_csum_ok(f, 14 + sent_len[0]));
	/* the server's SYN-ACK reaches the guest's port from the server */
	n = tcp_frame(f, 0xc0000207u, 22, ME, outer, 0x12, 900, 101, 0);
	CHECK_EQ(net_nat_uplink_frame(nat, f, n), 1);
	n = recv_guest(r, sizeof(r));
	REQUIRE(n == 54);
	CHECK_EQ(get32(r + 14 + 12), 0xc0000207u);
	CHECK_EQ(get32(r + 14 + 16), GUEST);
	CHECK_EQ(get16(r + 34 + 2), 33333);
	CHECK(net_frame_l4_csum_ok(r, n));
	/* anyone else at that appliance port is nobody's */
	n = tcp_frame(f, PEER, 22, ME, outer, 0x12, 900, 101, 0);
	CHECK_EQ(net_nat_uplink_frame(nat, f, n), 1);
	CHECK_EQ(recv_guest(r, sizeof(r)), 0);
	/* the guest's reset ends it: the port is free again, lwIP's to answer (with its own reset) */
	n = tcp_frame(f, GUEST, 33333, 0xc0000207u, 22, 0x04, 101, 0, 0);
	net_nat_guest_frame(nat, 0, f, n);
	CHECK_EQ(nsent, 2);
	n = tcp_frame(f, 0xc0000207u, 22, ME, outer, 0x10, 901, 101, 0);
	CHECK_EQ(net_nat_uplink_frame(nat, f, n), 0);
	CHECK_EQ(recv_guest(r, sizeof(r)), 0);
	CHECK_EQ(net_nat_counts(nat, 0)->stale, 1);
	CHECK_EQ(net_nat_counts(nat, 0)->refused, 0);
}

/*
 * The attacks on a name rule: connecting to its address before (or without) asking keel's DNS,
 * to a port the rule does not list, a spoofed answer from the LAN; and names not on the list.
 */
TEST(a_listed_name_allows_only_what_keels_resolver_answered)
{
	uint8_t f[2048], r[2048], q[512], a[512];
	size_t n, qn;
	uint16_t qport, qid;

	setup_allow();
	REQUIRE(nat != NULL);
	n = tcp_frame(f, GUEST, 33333, API, 443, 0x02, 100, 0, 0);
	net_nat_guest_frame(nat, 0, f, n);                     /* by address, unresolved: refused */
	CHECK_EQ(nsent, 0);
	REQUIRE(recv_guest(r, sizeof(r)) == 54);
	CHECK_EQ(r[34 + 13], 0x14);
	REQUIRE(nlogged == 1);
	CHECK(strstr(logged[0], "203.0.113.5:443") != NULL);
	/* the guest asks the router: the query goes to the board's resolver under keel's id and port */
	qn = dns_query(q, 0x1234, "API.example.com");
	n = udp_frame(f, GUEST, 5353, GW, 53, q, qn);
	net_nat_guest_frame(nat, 0, f, n);
	REQUIRE(nsent == 1);
	CHECK_EQ(sent_to, RESOLVER);
	CHECK_EQ(get32(sent[0] + 12), ME);
	CHECK_EQ(get16(sent[0] + 22), 53);
	qport = (uint16_t)get16(sent[0] + 20);
	qid = (uint16_t)get16(sent[0] + 28);
	CHECK(qport >= NET_NAT_PORT_FIRST && qport <= NET_NAT_PORT_LAST);
	CHECK(!memcmp(sent[0] + 28 + 2, q + 2, qn - 2));
	/* spoofed answers: from another address, under another id: consumed, nothing allowed */
	n = udp_frame(f, PEER, 53, ME, qport, a, dns_answer(a, q, qn, qid, API));
	CHECK_EQ(net_nat_uplink_frame(nat, f, n), 1);
	n = udp_frame(f, RESOLVER, 53, ME, qport, a, dns_answer(a, q, qn, (uint16_t)(qid + 1), API));
	CHECK_EQ(net_nat_uplink_frame(nat, f, n), 1);
	CHECK_EQ(recv_guest(r, sizeof(r)), 0);
	n = tcp_frame(f, GUEST, 33334, API, 443, 0x02, 100, 0, 0);
	net_nat_guest_frame(nat, 0, f, n);
	CHECK_EQ(nsent, 1);
	recv_guest(r, sizeof(r));
	/* the resolver's answer: to the guest under its own id, and the address is allowed on 443 */
	n = udp_frame(f, RESOLVER, 53, ME, qport, a, dns_answer(a, q, qn, qid, API));
	CHECK_EQ(net_nat_uplink_frame(nat, f, n), 1);
	n = recv_guest(r, sizeof(r));
	REQUIRE(n == 14 + 28 + qn + 16);
	CHECK(net_frame_l4_csum_ok(r, n));
	CHECK_EQ(get32(r + 14 + 12), GW);
	CHECK_EQ(get16(r + 34 + 2), 5353);
	CHECK_EQ(get16(r + 42), 0x1234);
	CHECK_EQ(get32(r + 42 + qn + 12), API);
	n = tcp_frame(f, GUEST, 33335, API, 443, 0x02, 100, 0, 0);
	net_nat_guest_frame(nat, 0, f, n);
	CHECK_EQ(nsent, 2);
	CHECK_EQ(get16(sent[1] + 22), 443);
	n = tcp_frame(f, GUEST, 33336, API, 80, 0x02, 100, 0, 0);   /* not the rule's port */
	net_nat_guest_frame(nat, 0, f, n);
	CHECK_EQ(nsent, 2);
	REQUIRE(recv_guest(r, sizeof(r)) == 54);
	CHECK_EQ(r[34 + 13], 0x14);
	/* names not listed: NXDOMAIN at once, nothing to the resolver; a wildcard's names go */
	qn = dns_query(q, 7, "evil.example.org");
	n = udp_frame(f, GUEST, 5353, GW, 53, q, qn);
	net_nat_guest_frame(nat, 0, f, n);
	n = recv_guest(r, sizeof(r));
	REQUIRE(n == 14 + 28 + qn);
	CHECK_EQ(r[42 + 3] & 15, 3);
	CHECK_EQ(get16(r + 42), 7);
	qn = dns_query(q, 8, "cdn.example");
	net_nat_guest_frame(nat, 0, f, udp_frame(f, GUEST, 5353, GW, 53, q, qn));
	REQUIRE(recv_guest(r, sizeof(r)) > 0);
	CHECK_EQ(r[42 + 3] & 15, 3);
	CHECK_EQ(nsent, 2);
	qn = dns_query(q, 9, "img.cdn.example");
	net_nat_guest_frame(nat, 0, f, udp_frame(f, GUEST, 5353, GW, 53, q, qn));
	CHECK_EQ(nsent, 3);
	CHECK_EQ(net_nat_counts(nat, 0)->dns, 4);
	CHECK_EQ(net_nat_counts(nat, 0)->dns_refused, 2);
	CHECK_EQ(net_nat_counts(nat, 0)->refused, 3);
}

TEST(refusals_are_said_once_per_destination_and_the_log_is_bounded)
{
	uint8_t f[2048], r[2048];
	size_t n;

	setup_allow();
	REQUIRE(nat != NULL);
	for (unsigned i = 0; i < 10000; i++) {
		n = tcp_frame(f, GUEST, (uint16_t)(1024 + i % 50000), 0x08080000u + i % 100, 443, 0x02, i, 0, 0);
		net_nat_guest_frame(nat, 0, f, n);
		recv_guest(r, sizeof(r));
	}
	CHECK_EQ(nsent, 0);
	CHECK_EQ(net_nat_counts(nat, 0)->refused, 10000);
	CHECK_EQ(net_nat_counts(nat, 0)->resets, 10000);
	CHECK_EQ(nlogged, 32 + 1);   /* 32 destinations said, then once that the rest are counted */
	CHECK(strstr(logged[32], "not logged") != NULL);
}

TEST(udp_elsewhere_is_unreachable_at_once_and_the_router_answers_ping)
{
	uint8_t f[2048], r[2048], p[64];
	size_t n;

	setup_allow();
	REQUIRE(nat != NULL);
	memset(p, 'x', sizeof(p));
	n = udp_frame(f, GUEST, 5353, 0x08080808u, 53, p, 20);   /* another resolver */
	net_nat_guest_frame(nat, 0, f, n);
	CHECK_EQ(nsent, 0);
	n = recv_guest(r, sizeof(r));
	REQUIRE(n == 14 + 28 + 28);
	CHECK_EQ(r[14 + 9], 1);
	CHECK_EQ(r[34], 3);
	CHECK_EQ(r[35], 13);
	CHECK_EQ(csum(0, r + 34, 8 + 28), 0);
	CHECK_EQ(get32(r + 42 + 16), 0x08080808u);   /* the refused datagram's header, quoted */
	/* an echo request to the router */
	memset(f, 0, 14 + 28 + 16);
	n = udp_frame(f, GUEST, 0, GW, 0, p, 16);
	f[14 + 9] = 1;
	f[14 + 10] = f[14 + 11] = 0;
	put16(f + 14 + 10, csum(0, f + 14, 20));
	memset(f + 34, 0, 8);
	f[34] = 8;
	put16(f + 34 + 4, 0x55);
	put16(f + 34 + 6, 1);
	put16(f + 34 + 2, csum(0, f + 34, 8 + 16));
	net_nat_guest_frame(nat, 0, f, n);
	n = recv_guest(r, sizeof(r));
	REQUIRE(n == 14 + 28 + 16);
	CHECK_EQ(r[34], 0);
	CHECK_EQ(get16(r + 34 + 4), 0x55);
	CHECK_EQ(csum(0, r + 34, 8 + 16), 0);
	CHECK_EQ(nsent, 0);
}

/* ---- bridge mode ---- */

static const uint8_t MAC_A[6] = { 0x02, 0xaa, 0, 0, 0, 1 }, MAC_B[6] = { 0x02, 0xbb, 0, 0, 0, 2 },
		     MAC_ME[6] = { 0x02, 0x11, 0, 0, 0, 9 }, MAC_LAN[6] = { 0x02, 0x22, 0, 0, 0, 7 };
static uint8_t wire[8][2048];
static size_t wire_len[8], nwire;
static int guest_b = -1;

static int to_wire(void *arg, const uint8_t *f, size_t len)
{
	(void)arg;
	if (nwire < 8 && len <= sizeof(wire[0])) {
		memcpy(wire[nwire], f, len);
		wire_len[nwire] = len;
	}
	nwire++;
	return 0;
}

static void setup_bridge(void)
{
	struct net_sandbox sb[2] = { { .name = "a", .bridge = 1 }, { .name = "b", .bridge = 1 } };
	struct net_nat_uplink up = { .ip = my_ip, .send = record, .log = log_line, .send_frame = to_wire };
	int sv[2], sw[2];

	memcpy(up.mac, MAC_ME, 6);
	nwire = nsent = nlogged = 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sw) < 0)
		return;
	sb[0].fd = sv[0];
	guest = sv[1];
	sb[1].fd = sw[0];
	guest_b = sw[1];
	net_nat_new(&nat, sb, 2, &up);
}

/* A frame dst <- src of ethertype type with n bytes of payload p (NULL: zeros). */
static size_t eth_frame(uint8_t *f, const uint8_t *dst, const uint8_t *src, unsigned type, size_t n)
{
	memset(f, 0, 14 + n);
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16(f + 12, type);
	return 14 + (n < 46 ? 46 : n);
}

static void hello(size_t i, const uint8_t *mac)
{
	uint8_t f[64];
	static const uint8_t bc[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	net_nat_guest_frame(nat, i, f, eth_frame(f, bc, mac, 0x88b5, 0));
}

TEST(bridged_guests_are_stations_of_the_lan_and_never_see_each_other)
{
	static const uint8_t bc[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t f[2048], r[2048];
	size_t n;

	setup_bridge();
	REQUIRE(nat != NULL);
	CHECK_EQ(net_nat_bridged(nat), 2);
	hello(0, MAC_A);
	hello(1, MAC_B);
	CHECK_EQ(nlogged, 0);
	/* a's broadcast (its ARP, its DHCP) goes out as it is; so does its unicast to the LAN */
	n = eth_frame(f, bc, MAC_A, 0x0806, 28);
	net_nat_guest_frame(nat, 0, f, n);
	n = eth_frame(f, MAC_LAN, MAC_A, 0x0800, 100);
	net_nat_guest_frame(nat, 0, f, n);
	REQUIRE(nwire == 2);
	CHECK(!memcmp(wire[0], bc, 6) && !memcmp(wire[0] + 6, MAC_A, 6));
	CHECK(!memcmp(wire[1], MAC_LAN, 6));
	/* the attacks: another source MAC, a frame to the other sandbox, one to the appliance itself */
	net_nat_guest_frame(nat, 0, f, eth_frame(f, MAC_LAN, MAC_LAN, 0x0800, 100));
	net_nat_guest_frame(nat, 0, f, eth_frame(f, MAC_B, MAC_A, 0x0800, 100));
	net_nat_guest_frame(nat, 0, f, eth_frame(f, MAC_ME, MAC_A, 0x0800, 100));
	CHECK_EQ(nwire, 2);
	CHECK_EQ(recv_guest(r, sizeof(r)), 0);
	CHECK_EQ(read(guest_b, r, sizeof(r)), -1);
	CHECK_EQ(net_nat_counts(nat, 0)->spoofed, 3);
	/* from the LAN: a's unicast to a alone; a broadcast to both (and lwIP's too); others' not ours */
	CHECK_EQ(net_nat_bridge_frame(nat, f, eth_frame(f, MAC_A, MAC_LAN, 0x0806, 28)), 1);
	CHECK_EQ(recv_guest(r, sizeof(r)), 60);
	CHECK_EQ(read(guest_b, r, sizeof(r)), -1);
	CHECK_EQ(net_nat_bridge_frame(nat, f, eth_frame(f, bc, MAC_LAN, 0x0806, 28)), 0);
	CHECK_EQ(recv_guest(r, sizeof(r)), 60);
	CHECK_EQ(read(guest_b, r, sizeof(r)), 60);
	CHECK_EQ(net_nat_bridge_frame(nat, f, eth_frame(f, MAC_LAN, MAC_ME, 0x0800, 100)), 0);
	CHECK_EQ(net_nat_bridge_frame(nat, f, eth_frame(f, MAC_ME, MAC_LAN, 0x0800, 100)), 0);
	CHECK_EQ(recv_guest(r, sizeof(r)), 0);
	CHECK_EQ(nsent, 0);
}

TEST(a_clone_with_a_bridged_guests_mac_is_not_bridged)
{
	uint8_t f[2048], r[2048];

	setup_bridge();
	REQUIRE(nat != NULL);
	hello(0, MAC_A);
	hello(1, MAC_A);   /* b restored from a's snapshot: the same MAC */
	REQUIRE(nlogged == 1);
	CHECK(strstr(logged[0], "sandbox b: not bridged") && strstr(logged[0], "is a's"));
	net_nat_guest_frame(nat, 1, f, eth_frame(f, MAC_LAN, MAC_A, 0x0800, 100));
	CHECK_EQ(nwire, 0);
	CHECK_EQ(net_nat_counts(nat, 1)->spoofed, 1);
	/* frames to that MAC go to a only */
	CHECK_EQ(net_nat_bridge_frame(nat, f, eth_frame(f, MAC_A, MAC_LAN, 0x0806, 28)), 1);
	CHECK_EQ(recv_guest(r, sizeof(r)), 60);
	CHECK_EQ(read(guest_b, r, sizeof(r)), -1);
	/* nor may a guest take the board NIC's own MAC */
	hello(1, MAC_ME);
	CHECK_EQ(nlogged, 2);
	/* once its VMM says hello with a MAC of its own, it is a station */
	hello(1, MAC_B);
	net_nat_guest_frame(nat, 1, f, eth_frame(f, MAC_LAN, MAC_B, 0x0800, 100));
	CHECK_EQ(nwire, 1);
}

TEST(a_bridged_guest_gets_whole_checksums_and_mtu_sized_segments)
{
	uint8_t f[8192], r[2048];
	size_t n, total = 0, k = 0;

	setup_bridge();
	REQUIRE(nat != NULL);
	hello(0, MAC_A);
	/* a LAN host's segment with the partial sum a local veth leaves */
	n = tcp_frame(f, PEER, 40000, 0xc0a83265u, 80, 0x18, 1, 1, 100);
	memcpy(f, MAC_A, 6);
	memcpy(f + 6, MAC_LAN, 6);
	put16(f + 34 + 16, 0x1234);
	CHECK_EQ(net_nat_bridge_frame(nat, f, n), 1);
	n = recv_guest(r, sizeof(r));
	REQUIRE(n == 14 + 40 + 100);
	CHECK(net_frame_l4_csum_ok(r, n));
	CHECK_EQ(get32(r + 14 + 16), 0xc0a83265u);   /* nothing rewritten */
	/* a GSO segment of 4000 bytes: three pieces */
	n = tcp_frame(f, PEER, 40000, 0xc0a83265u, 80, 0x18, 101, 1, 4000);
	memcpy(f, MAC_A, 6);
	memcpy(f + 6, MAC_LAN, 6);
	CHECK_EQ(net_nat_bridge_frame(nat, f, n), 1);
	while ((n = recv_guest(r, sizeof(r))) > 0) {
		CHECK(n <= 14 + 1500);
		CHECK(!memcmp(r + 6, MAC_LAN, 6));
		CHECK(net_frame_l4_csum_ok(r, n));
		total += n - 54;
		k++;
	}
	CHECK_EQ(total, 4000);
	CHECK_EQ(k, 3);
}
