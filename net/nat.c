/*
 * Sandbox links in nat mode: each sandbox's virtio-net is one end of a private point-to-point
 * Ethernet (a SOCK_SEQPACKET socket; PID 1 made the pair), and this is the other end.
 *
 * Every clone of a snapshot sees the same network: it is 10.0.2.15/24 and keel's side is the
 * router 10.0.2.2 (ARP, DHCP), so clones never conflict and need nothing keel-specific. Inbound,
 * a TCP connection to one of the appliance's forwarded ports (board.conf sandbox.NAME.forward =
 * OUTER:INNER) is translated on the fly: its destination becomes 10.0.2.15:INNER, the guest sees
 * the real client's address and answers through the router, and its answers get the appliance's
 * address and port OUTER back. A connection exists only after a client's SYN made it; the guest
 * cannot open one (no outbound traffic: the egress step adds an allow-list), and anything it
 * sends that belongs to no connection is dropped and counted; a TCP segment gets a reset back,
 * so a restored clone's connections from before its snapshot die at the first segment it sends.
 *
 * IMPLEMENTATION NOTES
 * - Packets are rewritten, not proxied: no TCP state or buffers here, the two ends' own TCP
 *   (window scaling, retransmits) runs end to end. The connection table is per sandbox and
 *   bounded; a full table refuses new connections to that sandbox only.
 * - Checksums: a frame from the uplink may carry a partial TCP checksum (a local veth's
 *   offload), so inbound segments get theirs computed whole; outbound ones (the guest's NIC has
 *   no offloads: its checksums are whole) are patched incrementally (RFC 1624). A segment merged
 *   by the uplink's GRO is cut back into MTU-sized segments for the guest.
 * - Everything from the guest is parsed from its length field inwards before any byte is used
 *   (fuzz_nat).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "net/nat.h"

#define GUEST_IP 0x0a00020fu          /* 10.0.2.15 */
#define GW_IP 0x0a000202u             /* 10.0.2.2 */
#define MASK 0xffffff00u
#define ETH 14
#define MTU 1500
#define FRAME_MAX (ETH + 4 + MTU)
#define ET_IP 0x0800
#define ET_ARP 0x0806
#define ET_HELLO 0x88b5               /* the VMM's announcement: its guest's MAC (virtio_net.c) */
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10
#define CONNS 256
#define SYN_MS 30000u                 /* a half-open connection */
#define IDLE_MS 600000u               /* an established one without a segment */
#define CLOSED_MS 5000u               /* after FINs both ways (the ends keep TIME_WAIT themselves) */
#define LEASE_S 86400u
#define PENDING 16                    /* DNS queries a guest has at the resolver at once */
#define PENDING_MS 5000u
#define RESOLVED 64                   /* addresses a guest's allowed names resolved to */
#define TTL_MIN_S 60u                 /* a guest connects a little after it resolved */
#define TTL_MAX_S 86400u
#define LOGGED 32                     /* refused destinations said once each, per sandbox */
/* the appliance ports of the guests' DNS queries, then of their connections out */
#define DNS_PORTS 512
#define OUT_PORTS (NET_NAT_PORT_LAST - NET_NAT_PORT_FIRST + 1 - DNS_PORTS)
_Static_assert(OUT_PORTS >= NET_MAX_SANDBOX_LINKS * CONNS, "a port for every connection");
_Static_assert(DNS_PORTS >= NET_MAX_SANDBOX_LINKS * PENDING, "a port for every query");

static const uint8_t gw_mac[6] = { 0x02, 0x6b, 0x65, 0x65, 0x6c, 0x02 };

/*
 * A connection through the router: a client's to a forwarded port (outer: the appliance's port
 * it came to, inner: the guest's), or the guest's out (out = 1; outer: the appliance's port it
 * goes from, inner: the guest's).
 */
struct conn {
	uint32_t peer, last;
	uint16_t pport, outer, inner;
	uint8_t used, est, fin, out;     /* est: its SYN was answered; fin: 1 from the peer, 2 from the guest */
};

/* A guest's DNS query at the board's resolver. */
struct query {
	uint32_t since;
	uint16_t gport, gid, id, port;   /* the guest's port and id; ours */
	uint16_t rules;                  /* the allow-list entries its name matches */
	uint16_t qlen;
	uint8_t used;
	uint8_t q[NET_DNS_NAME + 6];     /* its question: name, type, class */
};

/* An address an allowed name resolved to, and the entries (rules) that allowed the name. */
struct resolved {
	uint32_t addr, until;            /* until: now_ms() */
	uint16_t rules;
};

struct nat_link {
	struct net_sandbox cfg;
	uint8_t mac[6];
	int mac_known;
	int dup;                         /* bridged: its MAC is another bridged guest's (clones) */
	unsigned hot;                    /* the connection last used */
	struct conn c[CONNS];
	struct query q[PENDING];
	struct resolved r[RESOLVED];
	uint64_t logged[LOGGED];         /* refused destinations said (address << 16 | port, or a name's hash) */
	unsigned nlogged;
	struct net_nat_counts n;
};

struct net_nat {
	struct nat_link *l;
	size_t n, nbridged;
	struct net_nat_uplink up;
	/* who has an appliance port of [NET_NAT_PORT_FIRST, LAST]: 1 + link * CONNS|PENDING + slot, 0 free */
	uint16_t owner[DNS_PORTS + OUT_PORTS];
	unsigned next_dns, next_out;     /* where the search for a free port starts: least recently used */
	uint8_t rx[FRAME_MAX + 1];       /* one frame from a guest (a longer one is too long) */
	uint8_t tx[FRAME_MAX];           /* one frame to a guest */
};

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }

static uint32_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

/* RFC 1071 sum of big-endian 16-bit words, not folded. */
static uint32_t sum16(uint32_t s, const uint8_t *p, size_t n)
{
	while (n > 1) {
		s += get16(p);
		p += 2;
		n -= 2;
	}
	if (n)
		s += (uint32_t)p[0] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static void ip_csum(uint8_t *ip, size_t ihl)
{
	put16(ip + 10, 0);
	put16(ip + 10, fold(sum16(0, ip, ihl)));
}

/* A 20-byte IPv4 header of keel's own: tot bytes in all, proto, src -> dst (host order). */
static void ip_header(uint8_t *ip, size_t tot, uint8_t proto, uint32_t src, uint32_t dst)
{
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)tot);
	ip[8] = 64;
	ip[9] = proto;
	put32(ip + 12, src);
	put32(ip + 16, dst);
	ip_csum(ip, 20);
}

/* The checksum of a TCP or UDP segment l4 (len bytes, its checksum field at csum_off) in ip. */
static void l4_csum(const uint8_t *ip, uint8_t *l4, size_t len, size_t csum_off)
{
	uint32_t s = sum16(0, ip + 12, 8) + ip[9] + (uint32_t)len;
	uint16_t v;

	put16(l4 + csum_off, 0);
	v = fold(sum16(s, l4, len));
	put16(l4 + csum_off, v || ip[9] != 17 ? v : 0xffff);   /* UDP's 0 says "none" */
}

/* RFC 1624: the checksum at c after one 16-bit word changed from old to new. */
static void csum_patch(uint8_t *c, uint16_t old, uint16_t new)
{
	uint32_t s = (uint16_t)~get16(c) + (uint32_t)(uint16_t)~old + new;

	put16(c, fold(s));
}

static void csum_patch32(uint8_t *c, uint32_t old, uint32_t new)
{
	csum_patch(c, (uint16_t)(old >> 16), (uint16_t)(new >> 16));
	csum_patch(c, (uint16_t)old, (uint16_t)new);
}

/* ---- the appliance ports of the guests' connections and queries ---- */

/* A free port of the owner map's [base, base + n) for who (searched from *next on); 0: none. */
static uint16_t port_take(struct net_nat *nat, unsigned base, unsigned n, unsigned *next, uint16_t who)
{
	for (unsigned k = 0; k < n; k++) {
		unsigned i = base + (*next + k) % n;

		if (!nat->owner[i]) {
			nat->owner[i] = who;
			*next = (*next + k + 1) % n;
			return (uint16_t)(NET_NAT_PORT_FIRST + i);
		}
	}
	return 0;
}

static void port_release(struct net_nat *nat, uint16_t port)
{
	if (port >= NET_NAT_PORT_FIRST && port <= NET_NAT_PORT_LAST)
		nat->owner[port - NET_NAT_PORT_FIRST] = 0;
}

/* The owner of an appliance port in [base, base + n), or 0. */
static unsigned port_owner(const struct net_nat *nat, uint16_t port, unsigned base, unsigned n)
{
	if (port < NET_NAT_PORT_FIRST + base || port >= NET_NAT_PORT_FIRST + base + n)
		return 0;
	return nat->owner[port - NET_NAT_PORT_FIRST];
}

static void nat_log(struct net_nat *nat, const char *fmt, ...)
{
	char line[320];
	va_list ap;

	if (!nat->up.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	nat->up.log(nat->up.log_arg, line);
}

/* 1 the first time key (a refused destination) comes up, while there is room to remember it. */
static int first_refusal(struct net_nat *nat, struct nat_link *l, uint64_t key)
{
	for (unsigned i = 0; i < l->nlogged && i < LOGGED; i++)
		if (l->logged[i] == key)
			return 0;
	if (l->nlogged == LOGGED) {
		l->nlogged++;
		nat_log(nat, "sandbox %s: more refused destinations than %d: counted, not logged", l->cfg.name,
			LOGGED);
	}
	if (l->nlogged >= LOGGED)
		return 0;
	l->logged[l->nlogged++] = key;
	return 1;
}

/* ---- connections ---- */

static void conn_free(struct net_nat *nat, struct conn *c)
{
	if (c->used && c->out)
		port_release(nat, c->outer);
	c->used = 0;
}

static int expired(const struct conn *c, uint32_t now)
{
	uint32_t age = now - c->last;

	if (c->fin == 3)
		return age >= CLOSED_MS;
	return age >= (c->est ? IDLE_MS : SYN_MS);
}

static int conn_is(const struct conn *c, uint32_t peer, uint16_t pport, uint16_t port, int guest_side)
{
	return c->used && c->peer == peer && c->pport == pport && (guest_side ? c->inner : c->outer) == port;
}

/* The connection of client peer:pport on the appliance's port (guest_side 0) or the guest's (1). */
static struct conn *find(struct nat_link *l, uint32_t peer, uint16_t pport, uint16_t port, int guest_side)
{
	if (conn_is(&l->c[l->hot], peer, pport, port, guest_side))
		return &l->c[l->hot];
	for (unsigned i = 0; i < CONNS; i++)
		if (conn_is(&l->c[i], peer, pport, port, guest_side)) {
			l->hot = i;
			return &l->c[i];
		}
	return NULL;
}

/*
 * A free slot, else the one that expired first, else the oldest closed one (FINs both ways: only a
 * late retransmission could still need it); NULL when every connection is open.
 */
static struct conn *conn_new(struct net_nat *nat, struct nat_link *l, uint32_t now)
{
	struct conn *best = NULL, *closed = NULL, *c;

	for (unsigned i = 0; i < CONNS; i++) {
		c = &l->c[i];

		if (!c->used)
			return c;
		if (expired(c, now) && (!best || now - c->last > now - best->last))
			best = c;
		if (c->fin == 3 && (!closed || now - c->last > now - closed->last))
			closed = c;
	}
	c = best ? best : closed;
	if (c)
		conn_free(nat, c);
	return c;
}

/* Flags seen on a connection's segment (from: 1 the peer, 2 the guest). */
static void track(struct net_nat *nat, struct conn *c, uint8_t flags, int from, uint32_t now)
{
	if (flags & TCP_RST) {
		conn_free(nat, c);
		return;
	}
	if (flags & TCP_FIN)
		c->fin |= (uint8_t)from;
	if (from == (c->out ? 1 : 2))
		c->est = 1;
	c->last = now;
}

/* ---- frames to the guest ---- */

static void to_guest(struct nat_link *l, const uint8_t *frame, size_t len)
{
	ssize_t w = write(l->cfg.fd, frame, len);

	if (w == (ssize_t)len) {
		l->n.in++;
		l->n.in_bytes += len;
	} else {
		l->n.link_full++;
	}
}

/* Ethernet header of a frame from the router to the guest (or to everyone before its MAC is known). */
static uint8_t *eth_to_guest(struct nat_link *l, uint8_t *f, uint16_t type)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	memcpy(f, l->mac_known ? l->mac : bcast, 6);
	memcpy(f + 6, gw_mac, 6);
	put16(f + 12, type);
	return f + ETH;
}

/* A reset from (src:sport) to the guest's (dport), answering a segment with seq, ack, flags, len. */
static void reset_guest(struct net_nat *nat, struct nat_link *l, uint32_t src, uint16_t sport, uint16_t dport,
			uint32_t seq, uint32_t ack, uint8_t flags, uint32_t seglen)
{
	uint8_t *ip = eth_to_guest(l, nat->tx, ET_IP), *t = ip + 20;

	ip_header(ip, 40, 6, src, GUEST_IP);
	memset(t, 0, 20);
	put16(t, sport);
	put16(t + 2, dport);
	if (flags & TCP_ACK) {
		put32(t + 4, ack);
		t[13] = TCP_RST;
	} else {
		put32(t + 8, seq + seglen + !!(flags & TCP_SYN) + !!(flags & TCP_FIN));
		t[13] = TCP_RST | TCP_ACK;
	}
	t[12] = 5 << 4;
	l4_csum(ip, t, 20, 16);
	l->n.resets++;
	to_guest(l, nat->tx, ETH + 40);
}

/* ---- the uplink side: forwarded ports ---- */

static struct nat_link *forward_of(struct net_nat *nat, uint16_t port, uint16_t *inner)
{
	for (size_t i = 0; i < nat->n; i++)
		for (unsigned f = 0; f < nat->l[i].cfg.nfwd; f++)
			if (nat->l[i].cfg.fwd[f].outer == port) {
				*inner = nat->l[i].cfg.fwd[f].inner;
				return &nat->l[i];
			}
	return NULL;
}

/*
 * One segment to the guest: ip's header (ihl) and TCP header (thl) with the payload's
 * [off, off + plen), to dst:dport; flags other than the first segment's or the last one's
 * dropped where a cut needs it. eth: the frame's Ethernet header (NULL: the router's).
 */
static void segment_to_guest(struct net_nat *nat, struct nat_link *l, const uint8_t *eth, const uint8_t *ip,
			     size_t ihl, size_t thl, size_t off, size_t plen, int first, int last, uint32_t dst,
			     uint16_t dport, uint16_t id)
{
	uint8_t *o = eth ? (uint8_t *)memcpy(nat->tx, eth, ETH) + ETH : eth_to_guest(l, nat->tx, ET_IP), *t = o + ihl;
	const uint8_t *tcp = ip + ihl;

	memcpy(o, ip, ihl + thl);
	memcpy(t + thl, tcp + thl + off, plen);
	put16(o + 2, (uint16_t)(ihl + thl + plen));
	put16(o + 4, id);
	put32(o + 16, dst);
	ip_csum(o, ihl);
	put16(t + 2, dport);
	put32(t + 4, get32(tcp + 4) + (uint32_t)off);
	if (!last)
		t[13] &= (uint8_t)~(TCP_FIN | 0x08);   /* FIN and PSH stay with the last piece */
	if (!first)
		t[13] &= (uint8_t)~0x80;               /* CWR with the first */
	l4_csum(o, t, thl + plen, 16);
	to_guest(l, nat->tx, ETH + ihl + thl + plen);
}

static int dns_from_resolver(struct net_nat *nat, const uint8_t *ip, size_t ihl, size_t tot);

/* A TCP segment (tot bytes of IP) to the guest's dst:dport, cut to MTU-sized pieces if merged (GRO, GSO). */
static void cut_to_guest(struct net_nat *nat, struct nat_link *l, const uint8_t *eth, const uint8_t *ip, size_t ihl,
			 size_t thl, size_t tot, uint32_t dst, uint16_t dport)
{
	size_t plen = tot - ihl - thl, mss = MTU - ihl - thl;

	for (size_t off = 0, k = 0;; k++) {   /* a bare ACK or SYN is one piece of no payload */
		size_t n = plen - off < mss ? plen - off : mss;

		segment_to_guest(nat, l, eth, ip, ihl, thl, off, n, off == 0, off + n >= plen, dst, dport,
				 (uint16_t)(get16(ip + 4) + k));
		off += n;
		if (off >= plen)
			return;
	}
}

/*
 * The connection a segment from peer to the appliance belongs to: a guest's connection out (who:
 * its port's owner; *l set here) or one to a port forwarded to *l's guest port inner (a client's
 * SYN makes it); NULL.
 */
static struct conn *conn_in(struct net_nat *nat, const uint8_t *tcp, uint32_t peer, unsigned who,
			    struct nat_link **l, uint16_t inner, uint32_t now)
{
	uint16_t pport = get16(tcp), port = get16(tcp + 2);
	struct conn *c;

	if (who) {
		/* an answer to a guest's connection out */
		*l = &nat->l[(who - 1) / CONNS];
		c = &(*l)->c[(who - 1) % CONNS];
		return c->used && c->out && c->peer == peer && c->pport == pport && c->outer == port ? c : NULL;
	}
	c = find(*l, peer, pport, port, 0);
	if (c)
		return c;
	if ((tcp[13] & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN)
		return NULL;
	c = conn_new(nat, *l, now);
	if (!c) {
		(*l)->n.full++;
		return NULL;
	}
	memset(c, 0, sizeof(*c));
	c->used = 1;
	c->peer = peer;
	c->pport = pport;
	c->outer = port;
	c->inner = inner;
	return c;
}

int net_nat_uplink_frame(struct net_nat *nat, const uint8_t *f, size_t len)
{
	const uint8_t *ip = f + ETH, *tcp;
	size_t ihl, thl, tot;
	struct nat_link *l = NULL;
	struct conn *c;
	uint16_t port, inner = 0;
	uint32_t now;
	unsigned who;

	if (!nat || len < ETH + 28 || get16(f + 12) != ET_IP || (ip[0] >> 4) != 4 || (ip[9] != 6 && ip[9] != 17))
		return 0;
	ihl = (size_t)(ip[0] & 15) * 4;
	tot = get16(ip + 2);
	if (ihl < 20 || tot < ihl + 8 || tot > len - ETH || (get16(ip + 6) & 0x3fff) ||
	    get32(ip + 16) != nat->up.ip(nat->up.arg))
		return 0;   /* not a whole segment to us: lwIP's to judge */
	if (ip[9] == 17)
		return dns_from_resolver(nat, ip, ihl, tot);
	if (tot < ihl + 20)
		return 0;
	tcp = ip + ihl;
	port = get16(tcp + 2);
	who = port_owner(nat, port, DNS_PORTS, OUT_PORTS);
	if (!who && !(l = forward_of(nat, port, &inner)))
		return 0;
	now = now_ms();
	c = conn_in(nat, tcp, get32(ip + 12), who, &l, inner, now);
	thl = (size_t)(tcp[12] >> 4) * 4;
	if (!c || thl < 20 || ihl + thl > tot) {
		if (l)
			l->n.stale++;
		return 1;
	}
	track(nat, c, tcp[13], 1, now);
	/* track may have freed c (a reset): the segment still goes to the guest */
	cut_to_guest(nat, l, NULL, ip, ihl, thl, tot, GUEST_IP, c->inner);
	return 1;
}

/* ---- bridge mode: the guest is a station of the board NIC's LAN ---- */

static int mac_eq(const uint8_t *a, const uint8_t *b)
{
	return !memcmp(a, b, 6);
}

static struct nat_link *bridged_mac(struct net_nat *nat, const uint8_t *mac)
{
	for (size_t i = 0; i < nat->n; i++)
		if (nat->l[i].cfg.bridge && nat->l[i].mac_known && !nat->l[i].dup && mac_eq(nat->l[i].mac, mac))
			return &nat->l[i];
	return NULL;
}

/*
 * The guest's MAC, learnt from its VMM's hello (or its first frame): refused when it is the
 * board NIC's or another bridged guest's (clones of one snapshot share theirs); then every
 * frame of the link is dropped until a VMM says hello with a MAC of its own.
 */
static void bridge_learn(struct net_nat *nat, struct nat_link *l, const uint8_t *mac)
{
	struct nat_link *o;
	char m[18];

	l->mac_known = 0;
	o = bridged_mac(nat, mac);
	memcpy(l->mac, mac, 6);
	l->mac_known = 1;
	l->dup = (o && o != l) || mac_eq(mac, nat->up.mac);
	if (l->dup) {
		snprintf(m, sizeof(m), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
		nat_log(nat, "sandbox %s: not bridged: its MAC %s is %s's (clones of one snapshot share it)", l->cfg.name,
			m, o && o != l ? o->cfg.name : "the board NIC");
	}
}

/* A frame from a bridged guest: out of the board NIC, if it is its own and for the LAN. */
static void bridge_from_guest(struct net_nat *nat, struct nat_link *l, const uint8_t *f, size_t len)
{
	if (get16(f + 12) == ET_HELLO || !l->mac_known) {
		bridge_learn(nat, l, f + 6);
		if (get16(f + 12) == ET_HELLO)
			return;
	}
	/* its own source MAC only; nothing to another sandbox or to the appliance itself */
	if (l->dup || !mac_eq(f + 6, l->mac) || (!(f[0] & 1) && (bridged_mac(nat, f) || mac_eq(f, nat->up.mac)))) {
		l->n.spoofed++;
		return;
	}
	if (nat->up.send_frame && nat->up.send_frame(nat->up.arg, f, len) == 0) {
		l->n.out++;
		l->n.out_bytes += len;
	} else {
		l->n.link_full++;
	}
}

/*
 * A frame of the LAN to a bridged guest as a guest's NIC (no offloads) takes it: TCP and UDP
 * checksums whole (a local veth leaves them partial), a segment merged by GSO or GRO cut.
 */
static void bridge_to_guest(struct net_nat *nat, struct nat_link *l, const uint8_t *f, size_t len)
{
	const uint8_t *ip = f + ETH;
	size_t ihl = 0, tot = 0, thl;
	int l4 = 0;

	if (len >= ETH + 20 && get16(f + 12) == ET_IP && (ip[0] >> 4) == 4) {
		ihl = (size_t)(ip[0] & 15) * 4;
		tot = get16(ip + 2);
		l4 = ihl >= 20 && tot >= ihl + 8 && tot <= len - ETH && !(get16(ip + 6) & 0x3fff) &&
		     (ip[9] == 6 || ip[9] == 17);
	}
	if (l4 && ip[9] == 6 && tot > MTU) {
		thl = (size_t)(ip[ihl + 12] >> 4) * 4;
		if (thl >= 20 && ihl + thl <= tot)
			cut_to_guest(nat, l, f, ip, ihl, thl, tot, get32(ip + 16), get16(ip + ihl + 2));
		else
			l->n.malformed++;
		return;
	}
	if (len > FRAME_MAX || (l4 && tot > MTU)) {
		l->n.malformed++;   /* too long for the guest's MTU, and nothing to cut */
		return;
	}
	memcpy(nat->tx, f, len);
	if (l4 && (ip[9] == 17 ? tot >= ihl + 8 : tot >= ihl + 20))
		l4_csum(nat->tx + ETH, nat->tx + ETH + ihl, tot - ihl, ip[9] == 6 ? 16 : 6);
	to_guest(l, nat->tx, len);
}

int net_nat_bridge_frame(struct net_nat *nat, const uint8_t *f, size_t len)
{
	struct nat_link *l;

	if (!nat || !nat->nbridged || len < ETH)
		return 0;
	if (f[0] & 1) {
		for (size_t i = 0; i < nat->n; i++)
			if (nat->l[i].cfg.bridge && nat->l[i].mac_known && !nat->l[i].dup)
				bridge_to_guest(nat, &nat->l[i], f, len);
		return 0;
	}
	l = bridged_mac(nat, f);
	if (!l)
		return 0;
	bridge_to_guest(nat, l, f, len);
	return 1;
}

size_t net_nat_bridged(const struct net_nat *nat)
{
	return nat ? nat->nbridged : 0;
}

/* ---- the guest side ---- */

static void arp(struct net_nat *nat, struct nat_link *l, const uint8_t *a, size_t len)
{
	uint8_t *o;

	/* a request for the router, from the guest's own MAC */
	if (len < 28 || get16(a) != 1 || get16(a + 2) != ET_IP || a[4] != 6 || a[5] != 4 || get16(a + 6) != 1 ||
	    get32(a + 24) != GW_IP) {
		l->n.denied++;
		return;
	}
	o = eth_to_guest(l, nat->tx, ET_ARP);
	memcpy(o, a, 6);                   /* htype, ptype, hlen, plen */
	put16(o + 6, 2);
	memcpy(o + 8, gw_mac, 6);
	put32(o + 14, GW_IP);
	memcpy(o + 18, a + 8, 10);         /* the asker's MAC and address */
	memset(o + 28, 0, 18);             /* padded to the 60-byte minimum */
	to_guest(l, nat->tx, 60);
}

/* DHCP option `code` of the options in [p, end): its value and length, or NULL. */
static const uint8_t *dhcp_opt(const uint8_t *p, const uint8_t *end, uint8_t code, size_t *len)
{
	while (p < end && *p != 255) {
		if (*p == 0) {
			p++;
			continue;
		}
		if (end - p < 2 || (size_t)(end - p - 2) < p[1])
			return NULL;
		if (*p == code) {
			*len = p[1];
			return p + 2;
		}
		p += 2 + p[1];
	}
	return NULL;
}

/*
 * A DHCP server of one address: DISCOVER gets an OFFER, REQUEST an ACK, of 10.0.2.15/24 via
 * 10.0.2.2, which is also the guest's DNS server.
 */
static void dhcp(struct net_nat *nat, struct nat_link *l, const uint8_t *b, size_t len)
{
	const uint8_t *t;
	uint8_t *ip, *u, *o, type;
	size_t tl, n;

	if (len < 240 || b[0] != 1 || b[1] != 1 || b[2] != 6 || get32(b + 236) != 0x63825363 ||
	    !(t = dhcp_opt(b + 240, b + len, 53, &tl)) || tl != 1 || (t[0] != 1 && t[0] != 3)) {
		l->n.denied++;
		return;
	}
	type = t[0] == 1 ? 2 : 5;
	ip = eth_to_guest(l, nat->tx, ET_IP);
	u = ip + 20;
	o = u + 8;
	memset(ip, 0, 20 + 8 + 300);
	o[0] = 2;
	o[1] = 1;
	o[2] = 6;
	memcpy(o + 4, b + 4, 4);           /* xid */
	memcpy(o + 10, b + 10, 2);         /* flags */
	put32(o + 16, GUEST_IP);           /* yiaddr */
	put32(o + 20, GW_IP);              /* siaddr */
	memcpy(o + 28, b + 28, 16);        /* chaddr */
	put32(o + 236, 0x63825363);
	n = 240;
	o[n++] = 53, o[n++] = 1, o[n++] = type;
	o[n++] = 54, o[n++] = 4, put32(o + n, GW_IP), n += 4;
	o[n++] = 51, o[n++] = 4, put32(o + n, LEASE_S), n += 4;
	o[n++] = 1, o[n++] = 4, put32(o + n, MASK), n += 4;
	o[n++] = 3, o[n++] = 4, put32(o + n, GW_IP), n += 4;
	o[n++] = 6, o[n++] = 4, put32(o + n, GW_IP), n += 4;   /* keel's DNS for the allowed names */
	o[n++] = 255;
	n = 300;                           /* BOOTP's minimum message */
	ip_header(ip, 20 + 8 + n, 17, GW_IP, 0xffffffffu);
	put16(u, 67);
	put16(u + 2, 68);
	put16(u + 4, (uint16_t)(8 + n));
	l4_csum(ip, u, 8 + n, 6);
	l->n.leases++;
	to_guest(l, nat->tx, ETH + 20 + 8 + n);
}

/* ---- the guest's way out: its allow-list ---- */

/* A UDP datagram from the router's src:sport to the guest's dport (id >= 0: a DNS id put first). */
static void udp_to_guest(struct net_nat *nat, struct nat_link *l, uint16_t sport, uint16_t dport,
			 const uint8_t *data, size_t n, int id)
{
	uint8_t *ip = eth_to_guest(l, nat->tx, ET_IP), *u = ip + 20;

	memcpy(u + 8, data, n);
	if (id >= 0)
		put16(u + 8, (uint16_t)id);
	ip_header(ip, 28 + n, 17, GW_IP, GUEST_IP);
	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, (uint16_t)(8 + n));
	l4_csum(ip, u, 8 + n, 6);
	to_guest(l, nat->tx, ETH + 28 + n);
}

/* An ICMP message from the router to the guest: type, code, the 4 bytes after its checksum, data. */
static void icmp_to_guest(struct net_nat *nat, struct nat_link *l, uint8_t type, uint8_t code, const uint8_t *rest,
			  const uint8_t *data, size_t n)
{
	uint8_t *ip = eth_to_guest(l, nat->tx, ET_IP), *m = ip + 20;

	if (n > MTU - 28)
		n = MTU - 28;
	ip_header(ip, 28 + n, 1, GW_IP, GUEST_IP);
	m[0] = type;
	m[1] = code;
	put16(m + 2, 0);
	memcpy(m + 4, rest, 4);
	memcpy(m + 8, data, n);
	put16(m + 2, fold(sum16(0, m, 8 + n)));
	to_guest(l, nat->tx, ETH + 28 + n);
}

/* 1 when the allow-list of l lets its guest connect to peer:port (by address, or by a name it resolved). */
static int allowed(const struct nat_link *l, uint32_t peer, uint16_t port, uint32_t now)
{
	const struct net_sandbox *sb = &l->cfg;
	unsigned a = peer >> 24;

	/* nothing of this host, the guests' network, loopback, multicast or broadcast */
	if (!a || a == 127 || a >= 224 || (peer & MASK) == (GUEST_IP & MASK))
		return 0;
	for (unsigned k = 0; k < sb->nallow; k++)
		if (!sb->allow[k].host[0] && (peer & sb->allow[k].mask) == sb->allow[k].addr &&
		    (!sb->allow[k].port || sb->allow[k].port == port))
			return 1;
	for (unsigned i = 0; i < RESOLVED; i++) {
		const struct resolved *r = &l->r[i];

		if (!r->rules || r->addr != peer || (int32_t)(r->until - now) <= 0)
			continue;
		for (unsigned k = 0; k < sb->nallow; k++)
			if ((r->rules >> k & 1) && (!sb->allow[k].port || sb->allow[k].port == port))
				return 1;
	}
	return 0;
}

/* Addresses an allowed name (of allow-list entries rules) resolved to, for ttl seconds. */
static void remember(struct nat_link *l, const uint32_t *addrs, int n, uint16_t rules, uint32_t ttl, uint32_t now)
{
	uint32_t until;

	ttl = ttl < TTL_MIN_S ? TTL_MIN_S : ttl > TTL_MAX_S ? TTL_MAX_S : ttl;
	until = now + ttl * 1000u;
	for (int k = 0; k < n; k++) {
		struct resolved *r = NULL;

		for (unsigned i = 0; i < RESOLVED && !r; i++)
			if (l->r[i].rules && l->r[i].addr == addrs[k])
				r = &l->r[i];
		if (r) {
			r->rules |= rules;
			if ((int32_t)(until - r->until) > 0)
				r->until = until;
			continue;
		}
		/* a free entry, else the one that runs out first */
		r = &l->r[0];
		for (unsigned i = 0; i < RESOLVED; i++) {
			if (!l->r[i].rules || (int32_t)(l->r[i].until - now) <= 0) {
				r = &l->r[i];
				break;
			}
			if ((int32_t)(l->r[i].until - r->until) < 0)
				r = &l->r[i];
		}
		r->addr = addrs[k];
		r->rules = rules;
		r->until = until;
	}
}

/* The guest's connection out to peer:pport from its port sport, on an appliance port of its own. */
static struct conn *conn_out(struct net_nat *nat, struct nat_link *l, uint32_t peer, uint16_t pport,
			     uint16_t sport, uint32_t now)
{
	struct conn *c = conn_new(nat, l, now);
	uint16_t port = 0;

	if (c)
		port = port_take(nat, DNS_PORTS, OUT_PORTS, &nat->next_out,
				 (uint16_t)(1 + (size_t)(l - nat->l) * CONNS + (size_t)(c - l->c)));
	if (!port) {
		l->n.full++;
		return NULL;
	}
	memset(c, 0, sizeof(*c));
	c->used = c->out = 1;
	c->peer = peer;
	c->pport = pport;
	c->outer = port;
	c->inner = sport;
	c->last = now;
	return c;
}

static void refuse_log(struct net_nat *nat, struct nat_link *l, uint32_t peer, uint16_t port)
{
	l->n.refused++;
	if (first_refusal(nat, l, (uint64_t)peer << 16 | port))
		nat_log(nat, "sandbox %s: connection to %u.%u.%u.%u:%u refused (not on its allow list)", l->cfg.name,
			peer >> 24, peer >> 16 & 255, peer >> 8 & 255, peer & 255, port);
}

static uint64_t name_key(const char *name)
{
	uint64_t h = 1469598103934665603ull;   /* FNV-1a; the top bit set: never an address's key */

	while (*name)
		h = (h ^ (uint8_t)*name++) * 1099511628211ull;
	return h | 1ull << 63;
}

/*
 * A guest's query to the router's port 53: a name on its allow-list goes to the board's resolver
 * from an appliance port of its own, under an id of keel's; any other name is answered NXDOMAIN
 * at once (REFUSED for a name no host could have), so the guest fails fast.
 */
static void dns_from_guest(struct net_nat *nat, struct nat_link *l, const uint8_t *ip, size_t ihl, size_t tot)
{
	const uint8_t *u = ip + ihl, *m = u + 8;
	size_t ulen = get16(u + 4), n, qend;
	char name[NET_DNS_NAME];
	uint8_t answer[NET_DNS_NAME + 32];
	uint16_t qtype, rules = 0, id;
	uint32_t me = nat->up.ip(nat->up.arg), now = now_ms();
	struct query *q;
	uint8_t *o;
	int r;

	if (ulen < 8 || ulen > tot - ihl || (n = ulen - 8) > MTU - 28) {
		l->n.malformed++;
		return;
	}
	r = net_dns_query(m, n, name, &qtype, &qend);
	if (r == -1 || qend > sizeof(answer)) {
		l->n.malformed++;
		return;
	}
	l->n.dns++;
	for (unsigned k = 0; k < l->cfg.nallow && r == 0; k++)
		if (l->cfg.allow[k].host[0] && net_host_match(l->cfg.allow[k].host, name))
			rules |= (uint16_t)(1u << k);
	if (!rules || !nat->up.dns || !me) {
		if (!rules) {
			l->n.dns_refused++;
			if (r == 0 && first_refusal(nat, l, name_key(name)))
				nat_log(nat, "sandbox %s: DNS name %s refused (not on its allow list)", l->cfg.name, name);
		}
		/* NXDOMAIN for a name not listed, REFUSED for one no host has, SERVFAIL with no resolver */
		udp_to_guest(nat, l, 53, get16(u), answer, net_dns_refusal(answer, m, qend, r ? 5 : rules ? 2 : 3), -1);
		return;
	}
	/* a free slot, else the oldest query (its answer is late) */
	q = &l->q[0];
	for (unsigned i = 0; i < PENDING; i++) {
		if (!l->q[i].used) {
			q = &l->q[i];
			break;
		}
		if (now - l->q[i].since > now - q->since)
			q = &l->q[i];
	}
	if (q->used)
		port_release(nat, q->port);
	memset(q, 0, sizeof(*q));
	q->port = port_take(nat, 0, DNS_PORTS, &nat->next_dns,
			    (uint16_t)(1 + (size_t)(l - nat->l) * PENDING + (size_t)(q - l->q)));
	if (!q->port) {
		l->n.full++;
		return;
	}
	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id))
		id = (uint16_t)(now ^ (now >> 16) ^ q->port);
	q->used = 1;
	q->since = now;
	q->gport = get16(u);
	q->gid = get16(m);
	q->id = id;
	q->rules = rules;
	q->qlen = (uint16_t)(qend - 12);
	memcpy(q->q, m + 12, q->qlen);
	/* the query as the appliance's, from its port */
	o = nat->tx + ETH;
	memcpy(o + 28, m, n);
	put16(o + 28, id);
	ip_header(o, 28 + n, 17, me, nat->up.dns);
	put16(o + 20, q->port);
	put16(o + 22, 53);
	put16(o + 24, (uint16_t)(8 + n));
	l4_csum(o, o + 20, 8 + n, 6);
	if (nat->up.send(nat->up.arg, o, 28 + n, nat->up.dns) == 0) {
		l->n.out++;
		l->n.out_bytes += 28 + n;
	} else {
		l->n.link_full++;
	}
}

/*
 * The resolver's answer to a guest's query: its addresses allow that guest's connections under
 * the entries its name matched, and it goes to the guest with the guest's id. 1: consumed.
 */
static int dns_from_resolver(struct net_nat *nat, const uint8_t *ip, size_t ihl, size_t tot)
{
	const uint8_t *u = ip + ihl, *m = u + 8;
	unsigned who = port_owner(nat, get16(u + 2), 0, DNS_PORTS);
	size_t ulen = get16(u + 4), n;
	uint32_t addrs[16], ttl;
	struct nat_link *l;
	struct query *q;
	int k;

	if (!who)
		return 0;   /* lwIP's */
	l = &nat->l[(who - 1) / PENDING];
	q = &l->q[(who - 1) % PENDING];
	if (ulen < 8 + 12 || ulen > tot - ihl || (n = ulen - 8) > MTU - 28 || !nat->up.dns ||
	    get32(ip + 12) != nat->up.dns || get16(u) != 53 || !q->used || q->port != get16(u + 2) ||
	    get16(m) != q->id || (k = net_dns_answer(m, n, q->q, q->qlen, addrs, 16, &ttl)) < 0) {
		l->n.stale++;   /* late, spoofed or not an answer: the guest asks again */
		return 1;
	}
	remember(l, addrs, k, q->rules, ttl, now_ms());
	l->n.in++;
	udp_to_guest(nat, l, 53, q->gport, m, n, q->gid);
	port_release(nat, q->port);
	q->used = 0;
	return 1;
}

static void tcp_from_guest(struct net_nat *nat, struct nat_link *l, uint8_t *ip, size_t ihl, size_t tot)
{
	uint8_t *t = ip + ihl;
	size_t thl = (size_t)(t[12] >> 4) * 4;
	uint32_t peer = get32(ip + 16), me = nat->up.ip(nat->up.arg), now = now_ms();
	uint16_t pport = get16(t + 2), sport = get16(t);
	uint8_t flags = t[13];
	struct conn *c;
	int refused = 0;

	if (thl < 20 || ihl + thl > tot) {
		l->n.malformed++;
		return;
	}
	c = find(l, peer, pport, sport, 1);
	if (!c && me && (flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == TCP_SYN) {
		if (peer != me && allowed(l, peer, pport, now))
			c = conn_out(nat, l, peer, pport, sport, now);
		else
			refuse_log(nat, l, peer, pport), refused = 1;
	}
	if (!c || !me) {
		/* no connection of a client's: a reset, so the guest gives up at once (never one for a reset) */
		l->n.denied += !refused;
		if (!(flags & TCP_RST))
			reset_guest(nat, l, peer, pport, sport, get32(t + 4), get32(t + 8), flags,
				    (uint32_t)(tot - ihl - thl));
		return;
	}
	track(nat, c, flags, 2, now);
	put32(ip + 12, me);
	put16(t, c->outer);
	csum_patch32(ip + 10, GUEST_IP, me);
	csum_patch32(t + 16, GUEST_IP, me);
	csum_patch(t + 16, sport, c->outer);
	if (ip[8] <= 1) {
		l->n.denied++;   /* its TTL would run out here */
		return;
	}
	ip[8]--;
	csum_patch(ip + 10, (uint16_t)((ip[8] + 1) << 8 | ip[9]), (uint16_t)(ip[8] << 8 | ip[9]));
	if (nat->up.send(nat->up.arg, ip, tot, peer) == 0) {
		l->n.out++;
		l->n.out_bytes += tot;
	} else {
		l->n.link_full++;
	}
}

void net_nat_guest_frame(struct net_nat *nat, size_t i, const uint8_t *f0, size_t len)
{
	struct nat_link *l = &nat->l[i];
	uint8_t *f = nat->rx, *ip;
	size_t ihl, tot;
	uint16_t type;

	if (len < ETH || len > FRAME_MAX || (f0[6] & 1)) {
		l->n.malformed++;
		return;
	}
	if (l->cfg.bridge) {
		bridge_from_guest(nat, l, f0, len);
		return;
	}
	if (f0 != f)
		memcpy(f, f0, len);
	/* the guest's MAC is whatever it sends from: the link is point to point */
	memcpy(l->mac, f + 6, 6);
	l->mac_known = 1;
	type = get16(f + 12);
	if (type == ET_HELLO) {
		/* its VMM (re)started: what was connected to the sandbox, and what it resolved, is gone */
		for (unsigned k = 0; k < CONNS; k++)
			conn_free(nat, &l->c[k]);
		for (unsigned k = 0; k < PENDING; k++)
			if (l->q[k].used)
				port_release(nat, l->q[k].port);
		memset(l->c, 0, sizeof(l->c));
		memset(l->q, 0, sizeof(l->q));
		memset(l->r, 0, sizeof(l->r));
		return;
	}
	if (type == ET_ARP) {
		arp(nat, l, f + ETH, len - ETH);
		return;
	}
	if (type != ET_IP) {
		l->n.denied++;   /* IPv6 and the rest: nothing routes them */
		return;
	}
	ip = f + ETH;
	if (len < ETH + 20 || (ip[0] >> 4) != 4)
		goto bad;
	ihl = (size_t)(ip[0] & 15) * 4;
	tot = get16(ip + 2);
	if (ihl < 20 || tot < ihl + 8 || tot > len - ETH || fold(sum16(0, ip, ihl)) != 0)
		goto bad;
	if (get16(ip + 6) & 0x3fff) {
		l->n.denied++;   /* fragments: keel's guests have a 1500-byte MTU end to end */
		return;
	}
	if (ip[9] == 17 && get16(ip + ihl + 2) == 67) {
		dhcp(nat, l, ip + ihl + 8, tot - ihl - 8);
		return;
	}
	if (get32(ip + 12) != GUEST_IP) {
		l->n.denied++;   /* a spoofed source */
		return;
	}
	if (ip[9] == 6) {
		tcp_from_guest(nat, l, ip, ihl, tot);
		return;
	}
	if (ip[9] == 17 && get32(ip + 16) == GW_IP && get16(ip + ihl + 2) == 53) {
		dns_from_guest(nat, l, ip, ihl, tot);
		return;
	}
	if (ip[9] == 1 && get32(ip + 16) == GW_IP && ip[ihl] == 8 && ip[ihl + 1] == 0) {
		/* an echo request to the router: its reply */
		icmp_to_guest(nat, l, 0, 0, ip + ihl + 4, ip + ihl + 8, tot - ihl - 8);
		return;
	}
	l->n.denied++;
	if (ip[9] == 17)   /* UDP nothing routes: "administratively prohibited", at once */
		icmp_to_guest(nat, l, 3, 13, (const uint8_t[4]){ 0 }, ip, ihl + 8);
	return;
bad:
	l->n.malformed++;
}

void net_nat_poll(struct net_nat *nat, size_t i, int max)
{
	for (int k = 0; k < max; k++) {
		ssize_t r = read(nat->l[i].cfg.fd, nat->rx, sizeof(nat->rx));

		if (r < 0)
			return;   /* EAGAIN: drained (a dead VMM's end stays with PID 1: no error here) */
		if (r == 0)
			return;
		net_nat_guest_frame(nat, i, nat->rx, (size_t)r);
	}
}

int net_nat_fd(const struct net_nat *nat, size_t i)
{
	return nat->l[i].cfg.fd;
}

const struct net_nat_counts *net_nat_counts(const struct net_nat *nat, size_t i)
{
	return &nat->l[i].n;
}

int net_nat_new(struct net_nat **out, const struct net_sandbox *sb, size_t n, const struct net_nat_uplink *up)
{
	struct net_nat *nat = calloc(1, sizeof(*nat));

	if (!nat || !(nat->l = calloc(n ? n : 1, sizeof(*nat->l)))) {
		free(nat);
		return -ENOMEM;
	}
	nat->n = n;
	nat->up = *up;
	for (size_t i = 0; i < n; i++) {
		nat->l[i].cfg = sb[i];
		nat->nbridged += sb[i].bridge != 0;
		if (sb[i].fd >= 0)
			fcntl(sb[i].fd, F_SETFL, fcntl(sb[i].fd, F_GETFL) | O_NONBLOCK);
	}
	*out = nat;
	return 0;
}

void net_nat_free(struct net_nat *nat)
{
	if (!nat)
		return;
	free(nat->l);
	free(nat);
}
