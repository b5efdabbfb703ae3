/* Sandbox links in nat mode (net/nat.c). No lwIP in this interface: fuzz_nat drives it alone. */
#ifndef KEEL_NET_NAT_H
#define KEEL_NET_NAT_H

#include <stddef.h>
#include <stdint.h>

#include "net/net.h"

/* One sandbox link's traffic; drops by reason. */
struct net_nat_counts {
	uint64_t in, in_bytes;           /* frames to the guest (forwarded connections, ARP, DHCP) */
	uint64_t out, out_bytes;         /* the guest's packets that went out of the appliance */
	uint64_t resets, leases;         /* resets sent to the guest; DHCP answers */
	uint64_t malformed;              /* from the guest: not Ethernet/ARP/IPv4 as it must be */
	uint64_t denied;                 /* from the guest: no connection, not to the router, spoofed */
	uint64_t refused;                /* connections out to a destination not on the allow-list */
	uint64_t dns, dns_refused;       /* the guest's DNS queries; those for names not on the list */
	uint64_t stale;                  /* from the uplink: a segment of no connection */
	uint64_t full;                   /* new connections refused: the sandbox's table is full */
	uint64_t link_full;              /* frames the guest's link had no room for */
	uint64_t spoofed;                /* bridged: frames from a MAC not the guest's, or to a sibling's */
};

/* The board NIC's side, as the listener's lwIP has it. */
struct net_nat_uplink {
	uint32_t (*ip)(void *arg);       /* the appliance's address (host order), 0: none yet */
	/* Sends an IPv4 packet (header included) to dst (host order) out of the board NIC. */
	int (*send)(void *arg, const uint8_t *pkt, size_t len, uint32_t dst);
	void *arg;
	void (*log)(void *log_arg, const char *line);   /* refusals, once per destination; may be NULL */
	void *log_arg;
	uint32_t dns;                    /* the board's resolver (host order); 0: names are not served */
	/* Bridge mode: an Ethernet frame out of the board NIC as it is; the NIC's own MAC. */
	int (*send_frame)(void *arg, const uint8_t *frame, size_t len);
	uint8_t mac[6];
};

struct net_nat;
/* Takes the links (their fds are made nonblocking; net_nat_free does not close them). */
int net_nat_new(struct net_nat **out, const struct net_sandbox *sb, size_t n, const struct net_nat_uplink *up);
void net_nat_free(struct net_nat *nat);
/* An Ethernet frame from the uplink: 1 when it was a forwarded port's (consumed), 0 lwIP's. */
int net_nat_uplink_frame(struct net_nat *nat, const uint8_t *f, size_t len);
/*
 * Bridge mode: any Ethernet frame from the uplink. 1: it was a bridged guest's (consumed); 0:
 * not (a broadcast or multicast one was copied to every bridged guest and is lwIP's too).
 */
int net_nat_bridge_frame(struct net_nat *nat, const uint8_t *f, size_t len);
/* The number of bridged links. */
size_t net_nat_bridged(const struct net_nat *nat);
int net_nat_fd(const struct net_nat *nat, size_t i);
/* Reads and handles up to max frames from sandbox i's link. */
void net_nat_poll(struct net_nat *nat, size_t i, int max);
/* One frame from sandbox i's guest (net_nat_poll's step; fuzz_nat calls it directly). */
void net_nat_guest_frame(struct net_nat *nat, size_t i, const uint8_t *f, size_t len);
const struct net_nat_counts *net_nat_counts(const struct net_nat *nat, size_t i);

/* ---- net/dns.c: the DNS messages of the guests' gateway ---- */
#define NET_DNS_NAME 256
/*
 * A guest's query m (n bytes): its name (lower case, dotted), type and where its question ends.
 * 0; -1 not a one-question standard query; -2 a name of characters no host name has (name is
 * then "", *qtype and *qend are set).
 */
int net_dns_query(const uint8_t *m, size_t n, char name[NET_DNS_NAME], uint16_t *qtype, size_t *qend);
/*
 * The resolver's answer m to the question q (qlen bytes from the query's name to its class):
 * the IPv4 addresses it gives (up to max) and their least TTL; -1 not an answer to q.
 */
int net_dns_answer(const uint8_t *m, size_t n, const uint8_t *q, size_t qlen, uint32_t *addrs, int max,
		   uint32_t *ttl);
/* The answer to query (its header and question, qend bytes) with rcode and nothing else, in out. */
size_t net_dns_refusal(uint8_t *out, const uint8_t *query, size_t qend, unsigned rcode);

#endif
